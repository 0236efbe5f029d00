"""Virtual experiments on a trained autoencoder and, beside it, its linear baseline (PCA with
the same latent size): the systematic single-gene knockout, configured perturbation requests and
master-regulator studies, each run through the batched engine (`gexnet.analysis.perturb`) on
samples chosen from the compendium's metadata (`gexnet.analysis.selection`), each writing
Parquet tables with a `model` column (autoencoder, linear) and a comparison of the two.

Tables (under the job's output directory):
- knockouts/: summary (a row per knocked-out gene and model: n_affected, mean_change_affected,
  score, top_up, top_down, the null's z, p and fdr), top_genes, comparison (autoencoder beside
  linear: top-gene overlap, rank correlation of the mean changes), and the effect matrices
  effects.json + effects_<model>.bin (knocked-out gene × gene mean change, float16, rows and
  columns in the model's gene order, readable with `effects`);
- a request's directory: summary, top_genes, comparison (the same columns);
- a study's directory: per_sample (each start sample's top genes: rank, score, null z and p),
  pairs (every pair of each sample's top genes: joint, additive, cooperation), genes (per gene
  over the study's start samples), best_pairs, comparison (both models' gene tables side by
  side; `differs`: in some sample's top for one model only; `rank_shift`: the autoencoder's mean
  rank minus the linear one's); with series_id for studies by series.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gexnet.analysis import perturb, selection
from gexnet.analysis.reconstruction import load_autoencoder, load_linear, open_dense
from gexnet.errors import GexnetError
from gexnet.formats.corpus import Corpus
from gexnet.formats.io import atomic_path, write_table
from gexnet.formats.matrixfile import MatrixFile, open_array, write_header

log = logging.getLogger(__name__)

MODELS = ("autoencoder", "linear")
EFFECTS_DTYPE = np.float16


@dataclass
class Setup:
    """A model directory's two models, their genes, samples (with metadata) and data."""

    perturbers: dict[str, perturb.Perturber]
    genes: pd.DataFrame
    samples: pd.DataFrame
    corpus_genes: pd.DataFrame
    dense: object

    def values(self, chosen: pd.DataFrame) -> np.ndarray:
        return self.dense.rows(chosen["row"].to_numpy())


def setup(model_dir: str | Path, compendium: str | Path, settings: dict) -> Setup:
    """Load an autoencoder and its linear baseline (linear.* beside it) for `settings` (the
    perturbation section: batch_size, iterations, max_multiple)."""
    model, description, genes, samples = load_autoencoder(model_dir)
    linear = load_linear(model_dir)
    options = {"batch_size": settings["batch_size"], "iterations": settings["iterations"],
               "max_multiple": settings["max_multiple"]}  # fmt: skip
    perturbers = {"autoencoder": perturb.Perturber(model, genes, **options),
                  "linear": perturb.Perturber(linear, genes, **options)}  # fmt: skip
    return Setup(perturbers, genes, selection.with_metadata(samples, compendium),
                 Corpus(description["corpus"]).genes, open_dense(description, genes))  # fmt: skip


def _both(results: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return pd.concat([t.assign(model=m) for m, t in results.items()], ignore_index=True)


def _tables(summaries: dict, means: dict) -> dict[str, pd.DataFrame]:
    """Both models' summaries as the summary, top_genes and comparison tables."""
    return {
        "summary": _both({m: t.table for m, t in summaries.items()}),
        "top_genes": _both({m: t.top_genes for m, t in summaries.items()}),
        "comparison": perturb.compare(
            summaries["autoencoder"].table,
            summaries["linear"].table,
            autoencoder_means=means["autoencoder"],
            linear_means=means["linear"],
        ),
    }


def _write(tables: dict[str, pd.DataFrame], outdir: Path) -> None:
    for name, table in tables.items():
        write_table(table, outdir / f"{name}.parquet")


# --- the systematic knockout -------------------------------------------------------------------


def knockouts(s: Setup, settings: dict, seed: int, outdir: str | Path) -> dict[str, pd.DataFrame]:
    """Every model gene knocked out alone on the selected samples, by both models."""
    outdir = Path(outdir)
    chosen = selection.select(s.samples, settings["samples"], seed, "perturbation.samples")
    x = s.values(chosen)
    n = len(s.genes)
    summaries, means = {}, {}
    header = {"rows": "knocked-out gene (model gene order)", "columns": "model gene order",
              "samples": chosen["geo_accession"].tolist(), "arrays": {}}  # fmt: skip
    for name, p in s.perturbers.items():
        path = outdir / f"effects_{name}.bin"
        with atomic_path(path) as tmp, MatrixFile(tmp, (n, n), EFFECTS_DTYPE, "w") as effects:
            summary = p.knockout_all(x, threshold=settings["threshold"], top=settings["top"],
                                     on_means=lambda idx, m, f=effects: f.write_rows(idx, m))  # fmt: skip
        header["arrays"][name] = {"file": path.name, "dtype": np.dtype(EFFECTS_DTYPE).name,
                                  "shape": [n, n]}  # fmt: skip
        summaries[name] = summary
        means[name] = _memmap(outdir, header, name)
    write_header(outdir / "effects.json", header)
    tables = _tables(summaries, means)
    _write(tables, outdir)
    return tables


def _memmap(outdir: Path, header: dict, name: str) -> np.ndarray:
    meta = header["arrays"][name]
    return np.memmap(outdir / meta["file"], dtype=meta["dtype"], mode="r",
                     shape=tuple(meta["shape"]))  # fmt: skip


def effects(directory: str | Path, model: str = "autoencoder") -> np.ndarray:
    """A knockouts directory's effect matrix of `model` (memory-mapped, float16)."""
    return open_array(Path(directory) / "effects.json", model)


def standardised(effects: np.ndarray) -> np.ndarray:
    """An effect matrix with each gene's (column's) changes as robust z-scores over all
    knockouts but its own: (change − median) / (1.4826 · MAD). Raw changes of any knockout
    concentrate on the genes a model's latent space carries (the program members), so which
    genes a knockout moves *more than other knockouts do* is read from these."""
    e = np.array(effects, dtype=np.float64)
    np.fill_diagonal(e, np.nan)
    median = np.nanmedian(e, axis=0)
    mad = 1.4826 * np.nanmedian(np.abs(e - median), axis=0)
    z = (np.asarray(effects, dtype=np.float64) - median) / np.where(mad > 0, mad, np.nan)
    np.fill_diagonal(z, 0.0)
    return z


# --- requests ------------------------------------------------------------------------------------


def request_perturbations(s: Setup, name: str, request: dict) -> list[perturb.Perturbation]:
    """A request's perturbations: its genes resolved (unknown or outside the model: an error),
    single, all pairs, or all at once, with its kind and amount."""
    genes = perturb.resolve_genes(request["genes"], s.genes, known=s.corpus_genes)
    kind = request["kind"]
    amount = {}
    if kind == "knockdown":
        amount = {"fraction": request["fraction"]}
    elif kind == "overexpress":
        amount = ({"times_max": request["times_max"]} if request.get("times_max") is not None
                  else {"quantile": request["quantile"]})  # fmt: skip
    combinations = request.get("combinations", "single")
    if combinations == "pairs":
        if len(genes) < 2:
            raise GexnetError(f"perturbation.requests.{name}: pairs need at least two genes")
        return perturb.pairs(genes, kind, **amount)
    if combinations == "all":
        return [perturb.Perturbation(tuple(genes), kind, **amount)]
    return perturb.singles(genes, kind, **amount)


def run_request(s: Setup, name: str, request: dict, settings: dict, seed: int,
                outdir: str | Path) -> dict[str, pd.DataFrame]:  # fmt: skip
    """One request on its samples, by both models, with the level-matched null."""
    spec = request.get("samples") or settings["samples"]
    perturbations = request_perturbations(s, name, request)
    chosen = selection.select(s.samples, spec, seed, f"perturbation.requests.{name}.samples")
    x = s.values(chosen)
    summaries = {
        m: p.summarize(perturbations, x, threshold=settings["threshold"], top=settings["top"],
                       null_genes=settings["null_genes"], seed=seed, keep_means=True)
        for m, p in s.perturbers.items()
    }  # fmt: skip
    tables = _tables(summaries, {m: t.means for m, t in summaries.items()})
    _write(tables, Path(outdir))
    return tables


# --- master-regulator studies --------------------------------------------------------------------


def study_groups(s: Setup, name: str, study: dict, max_samples: int, seed: int
                 ) -> list[tuple[str, pd.DataFrame, pd.DataFrame]]:  # fmt: skip
    """(series or "all", start samples, goal samples) of a study: samples matching both start
    and goal are left out of both (counted); by series, each series with both groups."""
    what = f"master_regulators.studies.{name}"
    pool = s.samples
    if study.get("series"):
        pool = selection.select(pool, {"series": study["series"]}, seed, f"{what}.series")
    start = selection.matches(pool, study["start"], f"{what}.start")
    goal = selection.matches(pool, study["goal"], f"{what}.goal")
    both = start & goal
    if both.any():
        log.warning("%s: %d samples match both start and goal: left out of both", what,
                    int(both.sum()))  # fmt: skip
    start, goal = start & ~both, goal & ~both
    if not start.any() or not goal.any():
        raise GexnetError(f"{what}: no {'start' if not start.any() else 'goal'} sample matches "
                          f"{study['start'] if not start.any() else study['goal']}")  # fmt: skip
    starts, goals = pool[start], pool[goal]
    if max_samples and len(starts) > max_samples:
        starts = selection.select(starts, {"max_samples": max_samples}, seed, f"{what}.start")
    if not study.get("by_series", True):
        return [("all", starts, goals)]
    groups, lacking = [], []
    for series, group in starts.groupby("series_id", sort=True):
        own_goal = goals[goals["series_id"] == series]
        if own_goal.empty:
            lacking.append(series)
            continue
        groups.append((series, group, own_goal))
    if lacking:
        log.warning("%s: %d series have start samples but no goal samples, left out: %s", what,
                    len(lacking), ", ".join(lacking))  # fmt: skip
    if not groups:
        raise GexnetError(f"{what}: no series holds both start and goal samples (by_series)")
    return groups


def run_study(s: Setup, name: str, study: dict, settings: dict, null_genes: int, seed: int,
              outdir: str | Path) -> dict[str, pd.DataFrame]:  # fmt: skip
    """A study's master regulators and pairs per start sample, by both models."""
    parts: dict[str, list[pd.DataFrame]] = {}
    for series, starts, goals in study_groups(s, name, study, settings["max_samples"], seed):
        log.info("%s: %d start and %d goal samples", series, len(starts), len(goals))
        for model, p in s.perturbers.items():
            result = p.master_regulators(
                s.values(starts), s.values(goals), top=settings["top"],
                pair_top=settings["pair_top"], pair_pool=settings["pair_pool"],
                redundancy=settings["redundancy"], null_genes=null_genes, seed=seed,
                sample_names=starts["geo_accession"].tolist(),
            )  # fmt: skip
            for table in ("per_sample", "pairs", "genes", "best_pairs"):
                frame = getattr(result, table).assign(model=model, series_id=series,
                                                      start_samples=len(starts))  # fmt: skip
                parts.setdefault(table, []).append(frame)
    tables = {k: pd.concat(v, ignore_index=True) for k, v in parts.items()}
    by = ["series_id", "gene_id", "symbol"]
    ae = tables["genes"][tables["genes"]["model"] == "autoencoder"].drop(columns="model")
    lin = tables["genes"][tables["genes"]["model"] == "linear"].drop(columns="model")
    both = ae.merge(lin, on=by, how="outer", suffixes=("_autoencoder", "_linear"))
    # where the models differ: a gene in some start sample's top for one model only
    both["differs"] = (both["n_top_autoencoder"].fillna(0) > 0) != (
        both["n_top_linear"].fillna(0) > 0
    )
    both["rank_shift"] = both["mean_rank_autoencoder"] - both["mean_rank_linear"]
    tables["comparison"] = both
    _write(tables, Path(outdir))
    return tables


def write_settings(outdir: str | Path, **values) -> None:
    """What a virtual experiment ran with (settings.json, last: its presence means done)."""
    with atomic_path(Path(outdir) / "settings.json") as tmp:
        tmp.write_text(json.dumps(values, indent=2, sort_keys=True, default=str) + "\n")


# --- the report's tables -----------------------------------------------------------------------

REPORT_COLUMNS = ("n_affected", "score", "z", "fdr", "top_up", "top_down")


def beside(summary: pd.DataFrame) -> pd.DataFrame:
    """A summary's perturbations, the autoencoder's columns beside the linear baseline's."""
    keep = ["perturbation", *REPORT_COLUMNS]
    ae = summary.loc[summary["model"] == "autoencoder", keep]
    lin = summary.loc[summary["model"] == "linear", keep]
    return ae.merge(lin, on="perturbation", suffixes=("", "_linear"))


def top_knockouts(summary: pd.DataFrame, n: int = 25) -> pd.DataFrame:
    """The `n` knockouts the autoencoder scores highest against their null (z)."""
    return beside(summary).nlargest(n, "z").reset_index(drop=True)


def top_regulators(genes: pd.DataFrame, n: int = 20) -> pd.DataFrame:
    """Per model, the `n` genes most often in the start samples' top, over the study's series:
    share of start samples, mean rank and mean score."""
    out = []
    for model, g in genes.groupby("model", sort=False):
        starts = g.drop_duplicates("series_id")["start_samples"].sum()
        agg = g.groupby(["gene_id", "symbol"]).agg(n_top=("n_top", "sum"),
                                                     mean_rank=("mean_rank", "mean"),
                                                     mean_score=("mean_score", "mean"))  # fmt: skip
        agg["share_top"] = agg["n_top"] / starts
        out.append(agg.nlargest(n, "n_top").reset_index().assign(model=model))
    return pd.concat(out, ignore_index=True)
