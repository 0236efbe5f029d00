"""The planted-truth scorecard: each check's score from its table, and its bar."""

from __future__ import annotations

import pandas as pd
import pytest

from gexnet.analysis import planted
from gexnet.formats.io import write_table


def test_scorecard_scores_each_table_against_its_bar(tmp_path):
    truth = tmp_path / "truth"
    qc = pd.DataFrame({"species": "human", "geo_accession": ["a", "b", "c", "d"],
                       "planted_failure": ["none", "none", "low_counts", "few_genes"]})  # fmt: skip
    write_table(qc, truth / "qc.parquet")
    programs = pd.DataFrame({"species": "human", "gene_id": ["L1", "L2", "C1"],
                             "biotype": ["lncRNA", "lncRNA", "protein_coding"],
                             "program": ["program_01", "program_02", "program_01"]})  # fmt: skip
    write_table(programs, truth / "programs.parquet")
    samples = pd.DataFrame({"geo_accession": ["a", "b", "c", "d"],
                            "kept": [True, False, False, False]})  # fmt: skip
    write_table(samples, tmp_path / "human_samples.parquet")
    comparison = pd.DataFrame({
        "source": ["planted_programs"] * 3 + ["planted_weak", "HPO"],
        "embedding": ["gpt", "baseline_shuffled", "baseline_random", "gpt", "gpt"],
        "mean_auroc": [0.95, 0.6, 0.5, 0.7, 0.55]})  # fmt: skip
    comparison.to_csv(tmp_path / "comparison.tsv", sep="\t", index=False)
    predictions = pd.DataFrame({"label": ["planted_programs:program_01"] * 2
                                + ["planted_programs:program_02"] * 2,
                                "gene_id": ["L1", "L2", "L1", "L2"],
                                "percentile": [100.0, 0.0, 0.0, 80.0]})  # fmt: skip
    write_table(predictions, tmp_path / "predictions.parquet")
    tables = {"qc": [tmp_path / "human_samples.parquet"],
              "comparison": [tmp_path / "comparison.tsv"],
              "lncrna:human:gpt": [tmp_path / "predictions.parquet"]}  # fmt: skip
    card = planted.scorecard(tables, truth).set_index(["stage", "check", "subject"])
    assert card.loc[("QC", "planted failures removed (share)", "human"), "met"]
    kept = card.loc[("QC", "clean samples kept (share)", "human")]
    assert kept["score"] == 0.5 and not kept["met"]
    shuffled = card.loc[("classifiers", "mean AUROC, planted_programs", "baseline_shuffled")]
    assert shuffled["bar"] == "0.45 – 0.55" and not shuffled["met"]
    assert card.loc[("classifiers", "mean AUROC, planted_programs", "gpt"), "met"]
    weak = card.loc[("classifiers", "mean AUROC, planted_weak", "gpt")]
    assert weak["bar"] == "" and pd.isna(weak["met"])  # compared, not held to a bar
    assert ("classifiers", "mean AUROC, HPO", "gpt") not in card.index
    lnc = card.loc[("lncRNA transfer", "planted lncRNA members: median percentile of their "
                    "program", "gpt")]  # fmt: skip
    assert lnc["score"] == pytest.approx(90.0) and lnc["met"]  # median of 100 and 80
