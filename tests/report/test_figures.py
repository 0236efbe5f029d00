"""The figures: what each panel shows (read back from the SVG), the catalogue's kinds against
their drawing functions and captions, rendering from tables, and the figures' index."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pandas as pd
import pytest

from gexnet import cli
from gexnet.analysis import classify
from gexnet.errors import GexnetError
from gexnet.formats.io import write_table
from gexnet.report import catalogue, figures

from ..analysis.test_classify import source_metrics

CAPTIONS = Path(__file__).resolve().parents[2] / "rules" / "report" / "figures"


def panels(svg: str) -> list[str]:
    return sorted(set(re.findall(r'<g id="(axes_\d+)"', svg)))


def draw(kind: str, tmp_path: Path, **tables) -> dict[str, list[str]]:
    """The DataFrames a figure of `kind` reads, written as Parquet tables: role -> paths."""
    files = {}
    for role, table in tables.items():
        parts = table if isinstance(table, list) else [table]
        files[role] = []
        for i, part in enumerate(parts):
            path = tmp_path / f"{role}_{i}.parquet"
            write_table(part, path)
            files[role].append(str(path))
    return files


def test_every_kind_has_its_drawing_function_caption_and_section():
    for name, kind in catalogue.KINDS.items():
        function = getattr(figures, name)
        arguments = inspect.signature(function).parameters
        assert set(kind.tables) <= set(arguments), name
        assert set(kind.several) <= set(kind.tables) and set(kind.optional) <= set(kind.tables)
        assert kind.section in catalogue.SECTIONS, name
        caption = (CAPTIONS / f"{name}.rst").read_text()
        assert len(caption) > 200 and "{{" not in caption, name  # plain text: not re-rendered
    assert list(catalogue.SECTIONS.values()) == sorted(catalogue.SECTIONS.values())  # DAG order


def test_auroc_figure_has_one_panel_per_source_and_its_tests(tmp_path):
    metrics, _, _ = source_metrics()
    files = draw("classifier_auroc", tmp_path, auroc=classify.shared_auroc_table(metrics),
                 comparison=classify.comparison(metrics, "model"))  # fmt: skip
    out = tmp_path / "auroc.svg"
    catalogue.render("classifier_auroc", files, {"reference": "model"}, [out])
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml")
    assert panels(svg) == ["axes_1", "axes_2"]
    assert "<!-- H (20 labels) -->" in svg and "<!-- P (5 labels) -->" in svg
    assert "<!-- p=" in svg or "<!-- p<0.001 -->" in svg  # paired tests under the boxes


def test_qc_figure_counts_kept_samples_and_unknown_values(tmp_path):
    table = pd.DataFrame(
        {"total_counts": [2e6, 5e6, 1e3, 8e6], "singlecellprobability": [0.1, None, None, 0.9],
         "detected_genes": [3000, 4000, 100, 5000], "kept": [True, True, False, False]}
    )  # fmt: skip
    thresholds = {"min_total_counts": 1e6, "max_singlecell_probability": 0.5,
                  "min_detected_genes": 2000}  # fmt: skip
    files = draw("qc_metrics", tmp_path, table=table)
    outputs = [tmp_path / "qc.svg", tmp_path / "qc.pdf", tmp_path / "qc.png"]
    catalogue.render("qc_metrics", files, {"thresholds": thresholds, "title": "human sample QC"},
                     outputs)  # fmt: skip
    svg = outputs[0].read_text()
    assert panels(svg) == ["axes_1", "axes_2", "axes_3"]
    assert "human sample QC: 2 of 4 samples kept" in svg
    assert "single-cell probability (2 unknown)" in svg
    assert outputs[1].read_bytes().startswith(b"%PDF")
    assert outputs[2].read_bytes().startswith(b"\x89PNG")
    assert not list(tmp_path.glob("*.tmp*"))


def test_a_wrong_table_or_kind_is_one_clear_error(tmp_path):
    with pytest.raises(GexnetError, match="no figure kind 'pie'"):
        catalogue.render("pie", {}, {}, [tmp_path / "x.pdf"])
    with pytest.raises(GexnetError, match="reads the tables table; not extra"):
        catalogue.render("qc_metrics", {"table": ["a"], "extra": ["b"]}, {}, [tmp_path / "x.pdf"])
    with pytest.raises(GexnetError, match=r"missing\.parquet: no such table"):
        catalogue.render("qc_metrics", {"table": [str(tmp_path / "missing.parquet")]}, {},
                         [tmp_path / "x.pdf"])  # fmt: skip
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(GexnetError, match=r"bad\.parquet: not a readable table"):
        catalogue.render("qc_metrics", {"table": [str(bad)]}, {}, [tmp_path / "x.pdf"])
    with pytest.raises(GexnetError, match="one table table, not 2"):
        catalogue.render("qc_metrics", {"table": [str(bad), str(bad)]}, {}, [tmp_path / "x.pdf"])
    assert not (tmp_path / "x.pdf").exists()
    with pytest.raises(GexnetError, match="give a table as ROLE=PATH"):
        catalogue.parse_tables(["nothing"])


def test_the_command_line_draws_and_indexes(tmp_path):
    metrics, _, _ = source_metrics()
    files = draw("classifier_auroc", tmp_path, auroc=classify.shared_auroc_table(metrics),
                 comparison=classify.comparison(metrics, "model"))  # fmt: skip
    tables = [f"{role}={path}" for role, paths in files.items() for path in paths]
    out = tmp_path / "f.pdf"
    assert cli.main(["figure", "draw", "classifier_auroc", *tables, "--options",
                     '{"reference": "model"}', "--out", str(out)]) == 0  # fmt: skip
    assert out.read_bytes().startswith(b"%PDF")
    spec = ('{"figures": [{"name": "qc_metrics_human", "kind": "qc_metrics", "subject": "human",'
            ' "tables": {"table": ["results/x/qc/human_samples.parquet"]}}]}')  # fmt: skip
    index = tmp_path / "index.tsv"
    assert cli.main(["figure", "index", "--spec", spec, "--out", str(index)]) == 0
    row = pd.read_csv(index, sep="\t").iloc[0]
    assert row["figure"] == "qc_metrics_human" and "human samples" in row["shows"]
    assert row["section"] == "02 Sample quality control"
    assert row["tables"] == "results/x/qc/human_samples.parquet"
    assert cli.main(["figure", "draw", "qc_metrics", "table", "--out", str(out)]) == 2
