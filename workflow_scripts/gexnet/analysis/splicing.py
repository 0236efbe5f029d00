"""The splicing stage's analyses: prediction quality beside two baselines, DeepLIFT scores of
every SF for every isoform and gene, and their validation against a table of known edges.

Quality on the test samples (whole series the models never saw), per isoform and overall:
Spearman and Pearson correlation and mean squared error of the predicted log expression, for
each trained model and two baselines fitted on the training samples:
- `share`: the gene's expression times the isoform's mean share of it, log10(share ·
  (10^g − 1) + 1), share = Σ isoform / Σ gene over the training samples (scaled counts);
- `ridge`: a ridge regression of each isoform's log expression on the standardised SFs.

Attribution (`gexnet.analysis.deeplift`): on up to `max_samples` test samples (drawn by the
seed), against each configured reference: `median` (the test samples' median SF expression,
seed 001's) and `zero` (every SF at zero expression: a knockout, DeepRBP's); per SF × isoform
the mean attribution and the t-statistic mean / (sd / √n); per SF × gene the isoform of the
gene with the largest |t| (its signed t and mean).

Validation: a table of known SF → target edges (gene or transcript IDs, or symbols), e.g. CLIP
binding, or the demo's planted edges; ROC-AUC of |t| (and of the mean |attribution|) per SF
(among its scored targets) and over all SF × target pairs, at the table's level (isoforms for
transcript IDs, genes otherwise).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from gexnet.analysis.deeplift import Rescale, Scores, batch_size
from gexnet.errors import GexnetError
from gexnet.formats.corpus import Dense
from gexnet.formats.io import atomic_path, write_table
from gexnet.formats.isoforms import IsoformData
from gexnet.models.splicing import load_trained

log = logging.getLogger(__name__)

LN10 = np.log(10.0)
BLOCK = 2048
ATTRIBUTION_STREAM = 0x444C


def load(model_dir, data: IsoformData):
    """A trained net (eval mode) and its branch's gene reader (None without a branch)."""
    net, description = load_trained(model_dir)
    if len(data.isoforms) != net.config.n_isoforms or not np.array_equal(
        net.isoform_gene.numpy(), data.isoforms["gene"].to_numpy()
    ):
        raise GexnetError(f"{model_dir}: a model of another isoform data set than "
                          f"{data.directory}: retrain it")  # fmt: skip
    context = None
    if description["branch"]:
        context = Dense.of(data.corpus, description["branch"]["columns"])
    return net, context


def _blocks(data: IsoformData, rows: np.ndarray, context=None, block: int = BLOCK):
    rows = np.sort(rows)
    for i in range(0, len(rows), block):
        part = rows[i : i + block]
        values = data.read(part)
        if context is not None:
            values["context"] = context.rows(part)
        yield part, values


def predict(net, context, data: IsoformData, rows: np.ndarray):
    """(predictions, observed), samples × isoforms, over `rows` (sorted)."""
    predicted, observed = [], []
    with torch.no_grad():
        for _, v in _blocks(data, rows, context):
            ctx = torch.from_numpy(v["context"]) if "context" in v else None
            y = net(torch.from_numpy(v["factors"]), torch.from_numpy(v["genes"]), ctx)
            predicted.append(y.numpy())
            observed.append(v["isoforms"])
    return np.concatenate(predicted), np.concatenate(observed)


class ShareBaseline:
    """Each isoform's mean share of its gene's scaled count, times the gene's count."""

    def fit(self, data: IsoformData, rows: np.ndarray) -> ShareBaseline:
        self.gene = gene = data.isoforms["gene"].to_numpy()
        iso_sum, gene_sum = np.zeros(len(gene)), np.zeros(len(gene))
        for _, v in _blocks(data, rows):
            iso_sum += np.expm1(v["isoforms"].astype(np.float64) * LN10).sum(0)
            gene_sum += np.expm1(v["genes"][:, gene].astype(np.float64) * LN10).sum(0)
        self.share = np.clip(np.divide(iso_sum, gene_sum, out=np.zeros_like(iso_sum),
                                       where=gene_sum > 0), 0.0, 1.0)  # fmt: skip
        return self

    def predict(self, values: dict) -> np.ndarray:
        g = values["genes"][:, self.gene].astype(np.float64)
        return (np.log1p(self.share * np.expm1(g * LN10)) / LN10).astype(np.float32)


class RidgeBaseline:
    """Ridge regression of the isoforms on the standardised SFs (closed form, one solve)."""

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha

    def fit(self, data: IsoformData, rows: np.ndarray) -> RidgeBaseline:
        n_f = len(data.factors)
        xtx, xty = np.zeros((n_f + 1, n_f + 1)), np.zeros((n_f + 1, len(data.isoforms)))
        center, scale = data.factor_scaling()
        self.center, self.scale = center, scale
        for _, v in _blocks(data, rows):
            x = self._design(v["factors"])
            xtx += x.T @ x
            xty += x.T @ v["isoforms"].astype(np.float64)
        penalty = self.alpha * np.eye(n_f + 1)
        penalty[0, 0] = 0.0  # the intercept is not shrunk
        self.coef = np.linalg.solve(xtx + penalty, xty)
        return self

    def _design(self, factors: np.ndarray) -> np.ndarray:
        x = (factors.astype(np.float64) - self.center) / self.scale
        return np.hstack([np.ones((len(x), 1)), x])

    def predict(self, values: dict) -> np.ndarray:
        return (self._design(values["factors"]) @ self.coef).astype(np.float32)


def _rank(x: np.ndarray) -> np.ndarray:
    """Ranks (average for ties) of each column."""
    return pd.DataFrame(x).rank(axis=0).to_numpy()


def _pearson_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a - a.mean(0), b - b.mean(0)
    denominator = np.sqrt((a * a).sum(0) * (b * b).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (a * b).sum(0) / denominator, np.nan)


def quality(predicted: np.ndarray, observed: np.ndarray) -> tuple[pd.Series, pd.DataFrame]:
    """(overall, per isoform) Spearman, Pearson and MSE; overall correlations over all values,
    and the median of the per-isoform correlations."""
    p, o = predicted.astype(np.float64), observed.astype(np.float64)
    per = pd.DataFrame({
        "spearman": _pearson_columns(_rank(p), _rank(o)),
        "pearson": _pearson_columns(p, o),
        "mse": ((p - o) ** 2).mean(0),
    })  # fmt: skip
    flat_p, flat_o = p.reshape(-1, 1), o.reshape(-1, 1)
    overall = pd.Series({
        "spearman": float(_pearson_columns(_rank(flat_p), _rank(flat_o))[0]),
        "pearson": float(_pearson_columns(flat_p, flat_o)[0]),
        "mse": float(per["mse"].mean()),
        "median_isoform_spearman": float(per["spearman"].median()),
        "median_isoform_pearson": float(per["pearson"].median()),
    })  # fmt: skip
    return overall, per


def evaluate(data_dir: str | Path, models: dict[str, str | Path], ridge_alpha: float):
    """(overall, per isoform) quality tables of the models (name → directory) and baselines."""
    data = IsoformData(data_dir)
    train, test = np.sort(data.rows("train")), np.sort(data.rows("test"))
    baselines = {"share": ShareBaseline().fit(data, train),
                 "ridge": RidgeBaseline(ridge_alpha).fit(data, train)}  # fmt: skip
    rows_overall, rows_isoform = [], []

    def add(name: str, kind: str, predicted: np.ndarray, observed: np.ndarray) -> None:
        overall, per = quality(predicted, observed)
        rows_overall.append({"model": name, "kind": kind, **overall.to_dict()})
        rows_isoform.append(per.assign(model=name, kind=kind,
                                       transcript_id=data.isoforms["transcript_id"].to_numpy(),
                                       gene_id=data.isoforms["gene_id"].to_numpy()))  # fmt: skip

    for name, baseline in baselines.items():
        parts = [(baseline.predict(v), v["isoforms"]) for _, v in _blocks(data, test)]
        add(name, "baseline", np.concatenate([p for p, _ in parts]),
            np.concatenate([o for _, o in parts]))  # fmt: skip
    for name, directory in models.items():
        net, context = load(directory, data)
        add(name, "model", *predict(net, context, data, test))
    per = pd.concat(rows_isoform, ignore_index=True)
    return pd.DataFrame(rows_overall), per


# --- attribution -----------------------------------------------------------------------------


REFERENCES = ("median", "knockout", "zero")


def reference_values(data: IsoformData, kind: str) -> np.ndarray:
    """A reference input of the SFs (log values): median (of the test samples; seed 001's),
    knockout (each SF two training standard deviations below its mean, not below zero:
    DeepRBP's zero, whose inputs are standardised, clipped at ±2 sd and mapped to [0, 1]) or
    zero (no expression at all: far outside what the net saw, so read with care)."""
    if kind == "median":
        return data.factors["median"].to_numpy(np.float32)
    if kind == "knockout":
        low = data.factors["mean"].to_numpy() - 2.0 * data.factors["std"].to_numpy()
        return np.maximum(low, 0.0).astype(np.float32)
    if kind == "zero":
        return np.zeros(len(data.factors), np.float32)
    raise GexnetError(
        f"splicing.deeplift.references: unknown reference {kind!r} ({', '.join(REFERENCES)})"
    )


def attribution_rows(data: IsoformData, max_samples: int, seed: int) -> np.ndarray:
    test = data.rows("test")
    if max_samples and len(test) > max_samples:
        rng = np.random.default_rng([seed, ATTRIBUTION_STREAM])
        test = rng.choice(test, max_samples, replace=False)
    return np.sort(test)


def attribute(model_dir: str | Path, data_dir: str | Path, references: list[str],
              max_samples: int, seed: int, budget: int = 2**22
              ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """(SF × isoform scores, SF × gene scores, completeness check per reference)."""
    data = IsoformData(data_dir)
    net, context = load(model_dir, data)
    engine = Rescale(net, torch.float32)
    rows = attribution_rows(data, max_samples, seed)
    block = batch_size(len(data.isoforms), len(data.factors), budget)
    isoform_tables, gene_tables, checks = [], [], []
    for kind in references:
        reference = torch.from_numpy(reference_values(data, kind))
        scores = Scores(len(data.isoforms), len(data.factors))
        worst = 0.0
        for _, v in _blocks(data, rows, context, block):
            ctx = torch.from_numpy(v["context"]) if "context" in v else None
            b = engine.attribute(torch.from_numpy(v["factors"]), torch.from_numpy(v["genes"]),
                                 ctx, reference)  # fmt: skip
            gap = (b.attributions.sum(2) - (b.output - b.reference_output)).abs().max().item()
            worst = max(worst, gap)
            scores.add(b.attributions)
        checks.append({"reference": kind, "samples": scores.n,
                       "max_completeness_error": worst})  # fmt: skip
        table = _isoform_table(data, scores, kind)
        isoform_tables.append(table)
        gene_tables.append(gene_scores(table))
        log.info("%s reference: %d samples, completeness within %.2e", kind, scores.n, worst)
    return (pd.concat(isoform_tables, ignore_index=True),
            pd.concat(gene_tables, ignore_index=True), pd.DataFrame(checks))  # fmt: skip


def _isoform_table(data: IsoformData, scores: Scores, reference: str) -> pd.DataFrame:
    n_i, n_f = len(data.isoforms), len(data.factors)
    return pd.DataFrame({
        "reference": reference,
        "factor_id": np.tile(data.factors["gene_id"].to_numpy(), n_i),
        "factor": np.tile(data.factors["symbol"].to_numpy(), n_i),
        "transcript_id": np.repeat(data.isoforms["transcript_id"].to_numpy(), n_f),
        "gene_id": np.repeat(data.isoforms["gene_id"].to_numpy(), n_f),
        "symbol": np.repeat(data.isoforms["symbol"].to_numpy(), n_f),
        "t": scores.t.ravel(),
        "mean": scores.mean.ravel(),
        "mean_abs": scores.mean_abs.ravel(),
    })  # fmt: skip


def gene_scores(isoforms: pd.DataFrame) -> pd.DataFrame:
    """Per reference, SF and gene: the scores of the gene's isoform with the largest |t|."""
    order = isoforms.assign(magnitude=isoforms["t"].abs()).sort_values(
        ["reference", "factor_id", "gene_id", "magnitude", "transcript_id"],
        ascending=[True, True, True, False, True], kind="stable",
    )  # fmt: skip
    best = order.drop_duplicates(["reference", "factor_id", "gene_id"])
    return best.drop(columns="magnitude").rename(columns={"transcript_id": "top_isoform"})


def top_targets(genes: pd.DataFrame, n: int) -> pd.DataFrame:
    """Each SF's `n` genes of largest |t|, per reference, ranked."""
    ranked = genes.assign(magnitude=genes["t"].abs()).sort_values(
        ["reference", "factor", "magnitude"], ascending=[True, True, False], kind="stable"
    )  # fmt: skip
    top = ranked.groupby(["reference", "factor_id"], sort=False).head(n).copy()
    top["rank"] = top.groupby(["reference", "factor_id"]).cumcount() + 1
    return top.drop(columns="magnitude")[
        ["reference", "factor", "factor_id", "rank", "symbol", "gene_id", "top_isoform", "t",
         "mean"]
    ]  # fmt: skip


# --- validation ------------------------------------------------------------------------------


def known_edges(path: str | Path, species: str) -> pd.DataFrame:
    """factor, target and level (isoform or gene) of a table of known edges: the demo's planted
    truth (its transcripts), or a table with columns factor and target."""
    table = pd.read_parquet(path) if str(path).endswith(".parquet") else pd.read_csv(
        path, sep=None, engine="python", dtype=str)  # fmt: skip
    if {"splicing_factor_id", "transcript_id"} <= set(table.columns):
        if "species" in table:
            table = table[table["species"] == species]
        return pd.DataFrame({"factor": table["splicing_factor_id"],
                             "target": table["transcript_id"], "level": "isoform"})  # fmt: skip
    if not {"factor", "target"} <= set(table.columns):
        raise GexnetError(f"{path}: a table of known edges needs columns factor and target "
                          f"(it has {', '.join(map(str, table.columns))})")  # fmt: skip
    target = table["target"].astype(str).str.replace(r"\.\d+$", "", regex=True)
    level = np.where(target.str.startswith("ENST") | target.str.startswith("ENSMUST"),
                     "isoform", "gene")  # fmt: skip
    if len(set(level)) > 1:
        raise GexnetError(f"{path}: targets mix transcript and gene IDs; give one level")
    return pd.DataFrame({"factor": table["factor"].astype(str), "target": target,
                         "level": level})  # fmt: skip


SCORES = {"abs_t": lambda t: t["t"].abs(), "mean_abs": lambda t: t["mean_abs"]}


def validate(isoforms: pd.DataFrame, genes: pd.DataFrame, edges: pd.DataFrame) -> pd.DataFrame:
    """ROC-AUC of each score (abs_t: |t|, DeepRBP's; mean_abs: mean |attribution|, which a
    median reference needs: its samples' attributions cancel in t) for the known edges against
    every other scored SF × target pair, per reference: per SF and overall (factor "all")."""
    from sklearn.metrics import roc_auc_score

    level = edges["level"].iloc[0] if len(edges) else "gene"
    scores = isoforms if level == "isoform" else genes
    target_column = "transcript_id" if level == "isoform" else "gene_id"
    known = pd.MultiIndex.from_frame(edges[["factor", "target"]])
    rows = []
    for reference, part in scores.groupby("reference", sort=True):
        # factors and targets given by ID or symbol
        factor_key = np.where(part["factor_id"].isin(edges["factor"]), part["factor_id"],
                              part["factor"])  # fmt: skip
        target_key = part[target_column].to_numpy()
        if level == "gene":
            target_key = np.where(pd.Series(target_key).isin(edges["target"]), target_key,
                                  part["symbol"].to_numpy())  # fmt: skip
        positive = pd.MultiIndex.from_arrays([factor_key, target_key]).isin(known)
        by_factor = pd.Series(np.arange(len(part))).groupby(part["factor"].to_numpy())
        for score, of in SCORES.items():
            value = of(part).to_numpy()
            scored = {"reference": reference, "score": score, "level": level,
                      "edges": len(edges)}  # fmt: skip
            if 0 < positive.sum() < len(positive):
                rows.append({**scored, "factor": "all", "pairs": len(positive),
                             "scored_edges": int(positive.sum()),
                             "auroc": roc_auc_score(positive, value)})  # fmt: skip
            for factor, idx in by_factor:
                y = positive[idx.to_numpy()]
                if 0 < y.sum() < len(y):
                    rows.append({**scored, "factor": factor, "pairs": len(y),
                                 "scored_edges": int(y.sum()),
                                 "auroc": roc_auc_score(y, value[idx.to_numpy()])})  # fmt: skip
    if not rows:
        raise GexnetError("no known edge is among the scored SF × target pairs: check the "
                          "table's IDs against the data set's SFs and isoforms")  # fmt: skip
    return pd.DataFrame(rows)


# --- what the jobs write ---------------------------------------------------------------------


def write_quality(data_dir, models: dict[str, str | Path], ridge_alpha: float, out: Path) -> None:
    """overall.parquet and isoforms.parquet (the quality tables) into directory `out`."""
    overall, per = evaluate(data_dir, models, ridge_alpha)
    write_table(overall, out / "overall.parquet")
    write_table(per, out / "isoforms.parquet")
    log.info("test-sample quality:\n%s", overall.to_string(index=False))


def write_attribution(model_dir, data_dir, deeplift: dict, seed: int, out: Path) -> None:
    """isoforms.parquet, genes.parquet, checks.parquet and top_targets.tsv into `out`."""
    isoforms, genes, checks = attribute(model_dir, data_dir, deeplift["references"],
                                        deeplift["max_samples"], seed)  # fmt: skip
    write_table(isoforms, out / "isoforms.parquet")
    write_table(genes, out / "genes.parquet")
    write_table(checks, out / "checks.parquet")
    with atomic_path(out / "top_targets.tsv") as tmp:
        top_targets(genes, deeplift["top_targets"]).to_csv(tmp, sep="\t", index=False)


def write_validation(attribution_dir: Path, edges_path, species: str, out: Path) -> None:
    """ROC-AUC table (TSV) of one model's scores against the known edges."""
    isoforms = pd.read_parquet(attribution_dir / "isoforms.parquet")
    genes = pd.read_parquet(attribution_dir / "genes.parquet")
    table = validate(isoforms, genes, known_edges(edges_path, species))
    with atomic_path(out) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    log.info("validation:\n%s", table[table["factor"] == "all"].to_string(index=False))


def summary(overall: pd.DataFrame, validations: dict[str, pd.DataFrame],
            reference: str) -> pd.DataFrame:  # fmt: skip
    """One row per model and baseline: quality, and the overall ROC-AUC of |t| at
    `reference`."""
    table = overall.copy()
    table["validation_auroc"] = np.nan
    for model, v in validations.items():
        hit = v[(v["factor"] == "all") & (v["reference"] == reference) & (v["score"] == "abs_t")]
        if len(hit):
            table.loc[table["model"] == model, "validation_auroc"] = float(hit["auroc"].iloc[0])
    return table
