"""Sample selection by split, series, accessions, metadata patterns and a seeded limit, with
one clear error for each way a selection can be wrong."""

from __future__ import annotations

import pandas as pd
import pytest

from gexnet.analysis import selection
from gexnet.errors import GexnetError


@pytest.fixture
def samples() -> pd.DataFrame:
    n = 12
    return pd.DataFrame({
        "geo_accession": [f"GSM{i}" for i in range(n)],
        "series_id": [f"GSE{i // 4}" for i in range(n)],
        "split": ["train"] * 8 + ["validation"] * 4,
        "row": list(range(n))[::-1],
        "characteristics_ch1": [f"tissue: lung,group: {'case' if i % 2 else 'control'}"
                                for i in range(n)],
    })  # fmt: skip


def test_conditions_combine_and_keep_corpus_row_order(samples):
    got = selection.select(samples, {"split": "train", "series": ["GSE1", "GSE0"],
                                     "where": {"characteristics_ch1": "group: case"}}, 0, "x")  # fmt: skip
    assert got["geo_accession"].tolist() == ["GSM7", "GSM5", "GSM3", "GSM1"]
    assert got["row"].is_monotonic_increasing
    assert len(selection.select(samples, {"split": "all"}, 0, "x")) == 12
    picked = selection.select(samples, {"samples": ["GSM2", "GSM9"]}, 0, "x")
    assert set(picked["geo_accession"]) == {"GSM2", "GSM9"}


def test_max_samples_draws_by_seed(samples):
    a = selection.select(samples, {"max_samples": 5}, 3, "x")
    b = selection.select(samples, {"max_samples": 5}, 3, "x")
    c = selection.select(samples, {"max_samples": 5}, 4, "x")
    assert len(a) == 5 and a.equals(b) and not a.equals(c)


@pytest.mark.parametrize(("spec", "message"), [
    ({"where": {"characteristics_ch1": "group: none"}}, "perturbation.samples: no sample"),
    ({"series": ["GSE9"]}, r"perturbation.samples.series: GSE9 not among"),
    ({"samples": ["GSM99"]}, r"perturbation.samples.samples: GSM99 not among"),
    ({"where": {"disease": "x"}}, r"no sample metadata column 'disease'"),
    ({"where": {"characteristics_ch1": "("}}, "is not a regular expression"),
])  # fmt: skip
def test_wrong_selections_are_named(samples, spec, message):
    with pytest.raises(GexnetError, match=message):
        selection.select(samples, spec, 0, "perturbation.samples")
