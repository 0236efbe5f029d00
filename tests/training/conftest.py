"""The training tests' corpus: the small simulated human compendium's, context 48."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from gexnet.corpus import normalize, qc
from gexnet.formats.io import write_table


def build_corpus(small_compendium, qc_table: Path, outdir: Path, species: str = "human",
                 **normalize_changes) -> Path:  # fmt: skip
    """The small simulated compendium's corpus of a species, context 48."""
    cfg, files = small_compendium
    settings = copy.deepcopy({k: cfg[k] for k in ("genes", "normalize", "tokens", "dense")})
    settings["tokens"]["context"] = 48
    settings["normalize"].update(normalize_changes)
    normalize.normalize(files[f"{species}_gene"], qc_table, outdir, settings, 10**8, 1)
    return outdir


@pytest.fixture(scope="module")
def corpus(small_compendium, tmp_path_factory) -> Path:
    cfg, files = small_compendium
    base = tmp_path_factory.mktemp("lm")
    write_table(qc.sample_qc(files["human_gene"], cfg["qc"], 10**8), base / "qc.parquet")
    return build_corpus(small_compendium, base / "qc.parquet", base / "corpus")


@pytest.fixture(scope="module")
def mouse_corpus(small_compendium, tmp_path_factory) -> Path:
    """The same for mouse: the second species of a mixed model."""
    cfg, files = small_compendium
    base = tmp_path_factory.mktemp("lm_mouse")
    write_table(qc.sample_qc(files["mouse_gene"], cfg["qc"], 10**8), base / "qc.parquet")
    return build_corpus(small_compendium, base / "qc.parquet", base / "corpus", "mouse")
