"""Sample QC: per-sample metrics streamed from an ARCHS4-layout file, and why samples go.

Rules (thresholds from config, defaults as published): keep samples with total counts ≥
min_total_counts, singlecellprobability < max_singlecell_probability and more than
min_detected_genes non-zero genes.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from gexnet.formats.archs4 import Archs4File

RULES = ("low_counts", "single_cell", "few_genes")


def sample_qc(path: str | os.PathLike, thresholds: dict, block_values: int) -> pd.DataFrame:
    """One row per sample: metrics, a pass/fail flag per rule, kept, and the reasons."""
    with Archs4File(path) as f:
        table = f.samples(["geo_accession", "series_id", "singlecellprobability"])
        totals = np.zeros(f.n_samples, np.int64)
        detected = np.zeros(f.n_samples, np.int64)
        for block, counts in f.iter_sample_blocks(block_values):
            totals[block] = counts.sum(axis=0, dtype=np.int64)
            detected[block] = np.count_nonzero(counts, axis=0)
    table["total_counts"] = totals
    table["detected_genes"] = detected
    table["low_counts"] = totals < thresholds["min_total_counts"]
    table["single_cell"] = (
        table["singlecellprobability"] >= thresholds["max_singlecell_probability"]
    )
    table["few_genes"] = detected <= thresholds["min_detected_genes"]
    failed = table[list(RULES)].to_numpy()
    table["kept"] = ~failed.any(axis=1)
    table["reasons"] = [",".join(r for r, f in zip(RULES, row, strict=True) if f) for row in failed]
    return table


def summarize(table: pd.DataFrame, thresholds: dict) -> pd.DataFrame:
    """How many samples came in, how many each rule removed, and how many are kept.

    A sample can fail several rules: 'removed' counts each sample once, the per-rule rows count
    every sample that fails that rule, and 'removed only by' rows add up with kept to the input.
    """
    describe = {
        "low_counts": f"total counts < {thresholds['min_total_counts']:,}",
        "single_cell": f"singlecellprobability ≥ {thresholds['max_singlecell_probability']}",
        "few_genes": f"detected genes ≤ {thresholds['min_detected_genes']:,}",
    }
    n_rules = table[list(RULES)].sum(axis=1)
    rows = [("input", "all samples", len(table))]
    rows += [(f"fails {r}", describe[r], int(table[r].sum())) for r in RULES]
    rows += [
        (f"removed only by {r}", describe[r], int((table[r] & (n_rules == 1)).sum())) for r in RULES
    ]
    rows += [("removed by several rules", "", int((n_rules > 1).sum()))]
    unknown = int(table["singlecellprobability"].isna().sum())
    if unknown:  # not a removal: the source has no single-cell probability for these samples
        rows += [("single-cell probability unknown (kept)", "", unknown)]
    rows += [
        ("removed", "any rule", int((~table["kept"]).sum())),
        ("kept", "", int(table["kept"].sum())),
    ]
    return pd.DataFrame(rows, columns=["step", "rule", "samples"])
