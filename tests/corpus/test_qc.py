"""Sample QC against an independent computation on the whole matrix."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd

from gexnet.corpus import qc


def test_sample_qc_matches_direct_computation(small_compendium):
    cfg, files = small_compendium
    with h5py.File(files["human_gene"], "r") as f:
        counts = f["data/expression"][:].astype(np.int64)
        scp = f["meta/samples/singlecellprobability"][:]
    # a tiny block budget: many blocks must give the same answer as one pass
    table = qc.sample_qc(files["human_gene"], cfg["qc"], block_values=counts.shape[0] * 7)
    assert (table["total_counts"].to_numpy() == counts.sum(axis=0)).all()
    assert (table["detected_genes"].to_numpy() == (counts > 0).sum(axis=0)).all()
    expected_kept = (
        (counts.sum(axis=0) >= 1_000_000) & (scp < 0.5) & ((counts > 0).sum(axis=0) > 300)
    )
    assert (table["kept"].to_numpy() == expected_kept).all()
    truth = pd.read_parquet(files["qc"]).query("species == 'human'")
    assert (
        table["reasons"].replace("", "none").to_numpy() == truth["planted_failure"].to_numpy()
    ).all()


def test_summary_adds_up_with_samples_failing_several_rules():
    thresholds = {
        "min_total_counts": 100,
        "max_singlecell_probability": 0.5,
        "min_detected_genes": 2,
    }
    table = pd.DataFrame(
        {
            "total_counts": [500, 50, 50, 500, 500, 500],
            "detected_genes": [5, 5, 1, 5, 1, 5],
            "singlecellprobability": [0.1, 0.1, 0.9, 0.7, 0.1, np.nan],
        }
    )
    table["low_counts"] = table["total_counts"] < 100
    table["single_cell"] = table["singlecellprobability"] >= 0.5
    table["few_genes"] = table["detected_genes"] <= 2
    table["kept"] = ~table[list(qc.RULES)].any(axis=1)
    summary = qc.summarize(table, thresholds).set_index("step")["samples"]
    assert summary["input"] == 6 and summary["kept"] == 2 and summary["removed"] == 4
    assert summary["single-cell probability unknown (kept)"] == 1
    assert summary["fails low_counts"] == 2 and summary["fails few_genes"] == 2
    assert summary["removed by several rules"] == 1
    only = sum(summary[f"removed only by {r}"] for r in qc.RULES)
    assert only + summary["removed by several rules"] + summary["kept"] == summary["input"]
