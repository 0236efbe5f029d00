"""GEO series and a bring-your-own matrix run through the same workflow as the demo, with only
the config changed: downloads from a local server, conversion, then sample QC."""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from gexnet import layout
from gexnet.config import validate
from gexnet.formats.archs4 import Archs4File

from .conftest import copy_workflow, run
from .http_fixtures import LocalServer
from .sources.test_byo import write_byo_fixture
from .sources.test_geo import write_geo_fixture

QC = {"min_total_counts": 1000, "max_singlecell_probability": 0.5, "min_detected_genes": 100}


def compendium_dir(run_config: dict) -> Path:
    """Where a run's converted compendium lives (a folder named by its settings)."""
    return layout.source_dir(validate(copy.deepcopy(run_config)))


def snakemake(workdir: Path, config: dict, target: str):
    (workdir / "run.yaml").write_text(yaml.safe_dump(config))
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    # (--configfile takes several files: the target goes first)
    cmd = [sys.executable, "-m", "snakemake", target, "--profile", "profiles/local", "--cores", "2",
           "--configfile", "run.yaml"]  # fmt: skip
    proc = run(cmd, workdir, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.e2e
def test_geo_series_run_through_the_pipeline(tmp_path):
    fixture = write_geo_fixture(tmp_path / "ncbi")
    workdir = copy_workflow(tmp_path / "wf")
    with LocalServer() as server:
        for s in fixture["series"]:
            gse = s["gse"]
            server.add(
                f"/counts/{gse}_raw_counts_GRCh38.p13_NCBI.tsv.gz", Path(s["counts"]).read_bytes()
            )
            server.add(f"/series/{gse[:-3]}nnn/{gse}/matrix/{gse}_series_matrix.txt.gz",
                       Path(s["matrix"]).read_bytes())  # fmt: skip
        server.add("/annot/Human.GRCh38.p13.annot.tsv.gz", Path(fixture["annotation"]).read_bytes())
        base = f"http://127.0.0.1:{server.port}"
        config = {
            "run": "geo",
            "source": "geo",
            "species": ["human"],
            "qc": QC,
            "geo": {
                "series": [s["gse"] for s in fixture["series"]],
                "counts_url": base + "/counts/{gse}_raw_counts_{build}_NCBI.tsv.gz",
                "series_matrix_url": base
                + "/series/{stub}/{gse}/matrix/{gse}_series_matrix.txt.gz",
                "annotation_url": base + "/annot/{organism}.{build}.annot.tsv.gz",
            },
            "download": {"retries": 2, "backoff_seconds": 0.01, "timeout_seconds": 10},
        }
        snakemake(workdir, config, "results/geo/qc/human_samples.parquet")
        assert len(server.requests) == 2 * len(fixture["series"]) + 1
    with Archs4File(workdir / compendium_dir(config) / "human_gene_geo.h5") as f:
        genes = f.features()["ensembl_gene"].tolist()
        samples = f.samples(["geo_accession", "series_id"])
        expected = fixture["counts"].loc[genes, samples["geo_accession"]].to_numpy()
        assert (f.read() == expected).all()
    qc = pd.read_parquet(workdir / "results" / "geo" / "qc" / "human_samples.parquet")
    assert qc["geo_accession"].tolist() == list(fixture["counts"].columns)
    per_series = qc.groupby("series_id").size().to_dict()
    assert per_series == fixture["samples_per_series"]
    assert qc["kept"].mean() > 0.9 and qc["singlecellprobability"].isna().all()


@pytest.mark.e2e
@pytest.mark.parametrize("fmt", ["tsv", "h5ad_sparse"])
def test_own_matrix_runs_through_the_pipeline(tmp_path, fmt):
    fixture = write_byo_fixture(tmp_path / "mine", fmt=fmt, id_type="symbol")
    workdir = copy_workflow(tmp_path / "wf")
    config = {
        "run": "mine",
        "source": "byo",
        "species": ["human"],
        "qc": QC,
        "byo": {"counts": str(fixture["counts"]), "samples": str(fixture["samples"])},
    }
    snakemake(workdir, config, "results/mine/qc/human_samples.parquet")
    with Archs4File(workdir / compendium_dir(config) / "human_gene_byo.h5") as f:
        expected = fixture["expected"]
        genes = f.features()["ensembl_gene"]
        assert sorted(genes) == sorted(expected.index)
        assert (f.read() == expected.loc[genes].to_numpy()).all()
    qc = pd.read_parquet(workdir / "results" / "mine" / "qc" / "human_samples.parquet")
    assert qc["geo_accession"].tolist() == list(fixture["sample_names"])
    assert np.array_equal(qc["total_counts"].to_numpy(), expected.sum(axis=0).to_numpy())
