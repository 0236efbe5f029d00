"""The report's figures: what each panel shows, read back from the SVG."""

from __future__ import annotations

import re

import pandas as pd

from gexnet.analysis import classify
from gexnet.report import figures

from ..analysis.test_classify import source_metrics


def panels(svg: str) -> list[str]:
    return sorted(set(re.findall(r'<g id="(axes_\d+)"', svg)))


def test_auroc_figure_has_one_panel_per_source(tmp_path):
    metrics, _, _ = source_metrics()
    figures.auroc_by_source(classify.shared_auroc(metrics), "model", tmp_path / "auroc.svg")
    svg = (tmp_path / "auroc.svg").read_text()
    assert svg.lstrip().startswith("<?xml")
    assert panels(svg) == ["axes_1", "axes_2"]
    assert "<!-- H (20 labels) -->" in svg and "<!-- P (5 labels) -->" in svg


def test_qc_figure_counts_kept_samples_and_unknown_values(tmp_path):
    table = pd.DataFrame(
        {"total_counts": [2e6, 5e6, 1e3, 8e6], "singlecellprobability": [0.1, None, None, 0.9],
         "detected_genes": [3000, 4000, 100, 5000], "kept": [True, True, False, False]}
    )  # fmt: skip
    thresholds = {"min_total_counts": 1e6, "max_singlecell_probability": 0.5,
                  "min_detected_genes": 2000}  # fmt: skip
    figures.qc_metrics(table, thresholds, tmp_path / "qc.svg", "human sample QC")
    svg = (tmp_path / "qc.svg").read_text()
    assert panels(svg) == ["axes_1", "axes_2", "axes_3"]
    assert "human sample QC: 2 of 4 samples kept" in svg
    assert "single-cell probability (2 unknown)" in svg
    assert not list(tmp_path.glob("*.tmp*"))
