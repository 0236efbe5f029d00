"""The demo's results against its planted truth, as one table for the report: per check, what
was scored, on which subject, the score and the bar the tests hold it to (empty where a score is
shown for comparison only: the graded modules, where methods are meant to differ).

Each check reads a stage's summary table (and the truth tables beside the compendium); a stage
the run did not reach is left out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gexnet.analysis.classify import PLANTED_SOURCE
from gexnet.formats.io import read_table

TRAINED_AUROC = 0.9  # mean AUROC of a trained embedding on the planted programs
CHANCE = (0.45, 0.55)  # the shuffled baseline's
MEDIAN_ARI = 0.5  # clustering of the planted programs: trained embeddings
NULL_ARI = 0.05  # and their shuffled null
SPLICING_AUROC = 0.9  # |t| for the planted SF → transcript edges
LNCRNA_PERCENTILE = 90  # a planted lncRNA member's own program, median percentile

COLUMNS = ["stage", "check", "subject", "score", "bar", "met"]


def _row(stage, check, subject, score, low=None, high=None) -> dict:
    if low is None and high is None:
        bar, met = "", None
    else:
        bar = (f"≥ {low:g}" if high is None else f"≤ {high:g}" if low is None
               else f"{low:g} – {high:g}")  # fmt: skip
        met = bool((low is None or score >= low) and (high is None or score <= high))
    return {"stage": stage, "check": check, "subject": subject, "score": float(score),
            "bar": bar, "met": met}  # fmt: skip


def qc_rows(samples: pd.DataFrame, truth: pd.DataFrame, species: str) -> list[dict]:
    """Planted failures removed, clean samples kept."""
    planted = truth[truth["species"] == species].set_index("geo_accession")["planted_failure"]
    kept = samples.set_index("geo_accession")["kept"].reindex(planted.index)
    failing = planted != "none"
    return [
        _row("QC", "planted failures removed (share)", species, (~kept[failing]).mean(), 1.0),
        _row("QC", "clean samples kept (share)", species, kept[~failing].mean(), 1.0),
    ]


def classifier_rows(comparison: pd.DataFrame) -> list[dict]:
    rows = []
    planted = comparison[comparison["source"].str.startswith("planted_")]
    for r in planted.itertuples():
        check = f"mean AUROC, {r.source}"
        if r.source != PLANTED_SOURCE:  # graded modules: for comparison
            rows.append(_row("classifiers", check, r.embedding, r.mean_auroc))
        elif r.embedding == "baseline_shuffled":
            rows.append(_row("classifiers", check, r.embedding, r.mean_auroc, *CHANCE))
        elif not r.embedding.startswith("baseline_"):
            rows.append(_row("classifiers", check, r.embedding, r.mean_auroc, TRAINED_AUROC))
    return rows


def clustering_rows(summary: pd.DataFrame) -> list[dict]:
    rows = []
    for r in summary[summary["source"].str.startswith("planted_")].itertuples():
        check = f"median ARI, {r.source}"
        trained = not r.embedding.startswith("baseline_")
        if r.source == PLANTED_SOURCE and trained:
            rows.append(_row("clustering", check, r.embedding, r.median_ari, MEDIAN_ARI))
            rows.append(_row("clustering", f"{check}, shuffled vectors", r.embedding,
                             r.null_median_ari, None, NULL_ARI))  # fmt: skip
        else:
            rows.append(_row("clustering", check, r.embedding, r.median_ari))
    return rows


def lncrna_rows(predictions: pd.DataFrame, programs: pd.DataFrame, species: str,
                experiment: str) -> list[dict]:  # fmt: skip
    """The median percentile, within its own program's label, of each planted lncRNA member."""
    members = programs[(programs["species"] == species) & (programs["biotype"] == "lncRNA")
                       & programs["program"].notna()]  # fmt: skip
    label = predictions["label"].astype(str)
    planted = predictions[label.str.startswith(f"{PLANTED_SOURCE}:")]
    planted = planted.assign(program=label[planted.index].str.split(":").str[1])
    own = planted.merge(members[["gene_id", "program"]].astype({"gene_id": str}),
                        left_on=[planted["gene_id"].astype(str), "program"],
                        right_on=["gene_id", "program"])  # fmt: skip
    if own.empty:
        return []
    return [_row("lncRNA transfer", "planted lncRNA members: median percentile of their program",
                 experiment, own["percentile"].median(), LNCRNA_PERCENTILE)]  # fmt: skip


def splicing_rows(summary: pd.DataFrame) -> list[dict]:
    rows = []
    for r in summary[summary["kind"] != "baseline"].itertuples():
        if not np.isfinite(r.validation_auroc):
            continue
        if "permuted" in r.model:  # the control trained on permuted SFs: chance
            rows.append(_row("splicing", "ROC-AUC of |t|, planted edges", r.model,
                             r.validation_auroc, 0.4, 0.6))  # fmt: skip
        else:
            rows.append(_row("splicing", "ROC-AUC of |t|, planted edges", r.model,
                             r.validation_auroc, SPLICING_AUROC))  # fmt: skip
    return rows


def scorecard(tables: dict[str, list[Path]], truth: Path) -> pd.DataFrame:
    """The checks of the tables given (role -> paths: qc, comparison, clustering, splicing,
    lncrna with role names `lncrna:<species>:<experiment>`), against the truth folder."""
    rows = []
    read = read_table
    qc_truth = read(truth / "qc.parquet")
    for path in tables.get("qc", []):
        species = Path(path).name.split("_")[0]
        rows += qc_rows(read(path), qc_truth, species)
    for path in tables.get("comparison", []):
        rows += classifier_rows(read(path))
    for path in tables.get("clustering", []):
        rows += clustering_rows(read(path))
    programs = read(truth / "programs.parquet")
    for role, paths in tables.items():
        if role.startswith("lncrna:"):
            _, species, experiment = role.split(":")
            rows += lncrna_rows(read(paths[0]), programs, species, experiment)
    for path in tables.get("splicing", []):
        rows += splicing_rows(read(path))
    return pd.DataFrame(rows, columns=COLUMNS)
