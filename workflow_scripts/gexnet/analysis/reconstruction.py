"""The autoencoder's linear baseline (PCA with the same latent size) and how well each model
reconstructs held-out samples.

PCA: the covariance of the scaled training values (the autoencoder's own genes, scaling and
training samples, up to `pca_samples` of them drawn from the seed), accumulated in float64 by
row blocks, and its top `latent` eigenvectors (signs fixed: each component's largest entry is
positive). Kept as a `LinearAutoencoder`, so that every reconstruction and perturbation result
runs the baseline through the same code as the autoencoder.

Reconstruction quality, on the autoencoder's held-out samples, in log10 units, for the
autoencoder, PCA and each gene's training mean:
- r2_all: 1 − SSE / SS around the mean of all held-out values, over every value at once (the
  seed's measure, R² 0.94 at full scale); every gene's mean alone already scores high on it;
- per-gene R² (1 − SSE / SS around the gene's held-out mean): its median and mean; the gene
  means score about 0 here, so this is the measure that says what a model adds;
- by range of the observed value (`value_ranges` edges): values, MSE, MAE, mean signed error
  and R² within the range (the seed saw poor accuracy at low values);
- a 2-D histogram of observed against predicted values (the density figure): bin centres,
  counts and the bins' width.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from gexnet.errors import GexnetError
from gexnet.formats.corpus import Corpus, Dense
from gexnet.formats.io import atomic_path, write_table
from gexnet.models.autoencoder import Autoencoder, LinearAutoencoder, load_trained

PCA_STREAM = 0x5043
DENSITY_BINS = 100
MODELS = ("autoencoder", "pca", "gene_mean")
TABLES = ("metrics", "ranges", "genes", "density")


def fit_pca(dense, rows: np.ndarray, center: np.ndarray, scale: np.ndarray, latent: int,
            max_samples: int, seed: int, block: int = 4096) -> LinearAutoencoder:  # fmt: skip
    """PCA of the scaled values of `rows` (up to `max_samples` of them, by seed; 0: all) as a
    LinearAutoencoder with `latent` components (fewer when there are fewer genes or rows)."""
    from scipy.linalg import eigh

    if max_samples and len(rows) > max_samples:
        rng = np.random.default_rng([seed, PCA_STREAM])
        rows = np.sort(rng.choice(rows, max_samples, replace=False))
    n = len(dense.columns)
    total, cross = np.zeros(n), np.zeros((n, n))
    for _, values in dense.blocks(rows, block):
        y = ((values - center) / scale).astype(np.float64)
        total += y.sum(axis=0)
        cross += y.T @ y
    mean = total / len(rows)
    cov = cross / len(rows) - np.outer(mean, mean)
    k = min(latent, n, len(rows))
    _, vectors = eigh(cov, subset_by_index=[n - k, n - 1])
    vectors = vectors[:, ::-1]  # largest first
    signs = np.sign(vectors[np.abs(vectors).argmax(axis=0), np.arange(k)])
    return LinearAutoencoder(center, scale, mean.astype(np.float32),
                             (vectors * signs).astype(np.float32))  # fmt: skip


def save_linear(model: LinearAutoencoder, outdir: str | Path, fitted_on: dict) -> None:
    """linear.safetensors and linear.json (components, what it was fitted on) in `outdir`."""
    from safetensors.torch import save_file

    outdir = Path(outdir)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(outdir / "linear.safetensors") as tmp:
        save_file(state, str(tmp))
    description = {"kind": "pca", "components": model.encoder[0].out_features,
                   "genes": model.encoder[0].in_features, **fitted_on}  # fmt: skip
    with atomic_path(outdir / "linear.json") as tmp:
        tmp.write_text(json.dumps(description, indent=2) + "\n")


def load_linear(directory: str | Path) -> LinearAutoencoder:
    from safetensors.torch import load_file

    state = load_file(str(Path(directory) / "linear.safetensors"))
    model = LinearAutoencoder(state["center"], state["scale"], state["decoder.0.bias"],
                              state["decoder.0.weight"])  # fmt: skip
    return model.eval()


class _Accumulator:
    """Streamed sums of one model's errors on held-out values."""

    def __init__(self, n_genes: int, edges: np.ndarray, top: float) -> None:
        self.edges, self.top = edges, top
        self.sse = np.zeros(n_genes)
        n_ranges = len(edges)
        self.range_sums = np.zeros((n_ranges, 6))  # n, se, ae, signed, y, y²
        self.density = np.zeros((DENSITY_BINS, DENSITY_BINS), np.int64)

    def add(self, y: np.ndarray, pred: np.ndarray) -> None:
        err = pred.astype(np.float64) - y
        self.sse += (err**2).sum(axis=0)
        which = np.searchsorted(self.edges, y, side="right") - 1  # y below the first edge: -1
        for r in range(len(self.edges)):
            here = which == r
            e, v = err[here], y[here].astype(np.float64)
            self.range_sums[r] += [here.sum(), (e**2).sum(), np.abs(e).sum(), e.sum(), v.sum(),
                                   (v**2).sum()]  # fmt: skip
        bins = lambda a: np.clip((a / self.top * DENSITY_BINS).astype(np.int64), 0,  # noqa: E731
                                 DENSITY_BINS - 1)  # fmt: skip
        cell = bins(y).ravel() * DENSITY_BINS + bins(pred).ravel()
        self.density += np.bincount(cell, minlength=DENSITY_BINS**2).reshape(self.density.shape)


def evaluate(dense, rows: np.ndarray, genes: pd.DataFrame, models: dict, edges: list[float],
             block: int = 1024) -> dict[str, pd.DataFrame]:  # fmt: skip
    """The tables of the module docstring for `models` (name → module taking log values; the
    gene means are added as "gene_mean") on the held-out `rows`."""
    edges = np.asarray(sorted(edges), dtype=np.float64)
    n = len(genes)
    top = max(float(genes["maximum"].max()), 1e-6) * 1.05
    names = [*models, "gene_mean"]
    acc = {name: _Accumulator(n, edges, top) for name in names}
    gene_sum, gene_sq = np.zeros(n), np.zeros(n)
    means = genes["mean"].to_numpy(np.float32)
    with torch.inference_mode():
        for _, y in dense.blocks(rows, block):
            gene_sum += y.sum(axis=0, dtype=np.float64)
            gene_sq += (y.astype(np.float64) ** 2).sum(axis=0)
            x = torch.from_numpy(y)
            for name, model in models.items():
                acc[name].add(y, model(x).numpy())
            acc["gene_mean"].add(y, np.broadcast_to(means, y.shape))
    m = len(rows)
    gene_ss = gene_sq - gene_sum**2 / m
    all_ss = gene_sq.sum() - gene_sum.sum() ** 2 / (m * n)
    gene_r2 = {
        name: 1.0 - a.sse / np.where(gene_ss > 0, gene_ss, np.nan) for name, a in acc.items()
    }
    metrics = pd.DataFrame([
        {"model": name, "samples": m, "genes": n, "r2_all": 1.0 - a.sse.sum() / all_ss,
         "mse": a.sse.sum() / (m * n), "gene_r2_median": np.nanmedian(gene_r2[name]),
         "gene_r2_mean": np.nanmean(gene_r2[name])}
        for name, a in acc.items()
    ])  # fmt: skip
    upper = [*edges[1:], np.inf]
    ranges = []
    for name, a in acc.items():
        for r, (lo, hi) in enumerate(zip(edges, upper, strict=True)):
            count, se, ae, signed, ys, yq = a.range_sums[r]
            ss = yq - ys**2 / count if count else np.nan
            ranges.append({
                "model": name, "range": f"[{lo:g}, {hi:g})", "lower": lo, "upper": hi,
                "values": int(count), "mse": se / count if count else np.nan,
                "mae": ae / count if count else np.nan,
                "mean_error": signed / count if count else np.nan,
                "r2": 1.0 - se / ss if count and ss > 0 else np.nan,
            })  # fmt: skip
    per_gene = genes[["gene_id", "symbol", "mean", "std"]].copy()
    for name in names:
        per_gene[f"r2_{name}"] = gene_r2[name]
    centres = (np.arange(DENSITY_BINS) + 0.5) / DENSITY_BINS * top
    density = []
    for name, a in acc.items():
        i, j = np.nonzero(a.density)
        density.append(pd.DataFrame({"model": name, "observed": centres[i],
                                     "predicted": centres[j], "count": a.density[i, j],
                                     "width": top / DENSITY_BINS}))  # fmt: skip
    return {"metrics": metrics, "ranges": pd.DataFrame(ranges), "genes": per_gene,
            "density": pd.concat(density, ignore_index=True)}  # fmt: skip


def write_tables(tables: dict[str, pd.DataFrame], outdir: str | Path) -> None:
    for name in TABLES:
        write_table(tables[name], Path(outdir) / f"{name}.parquet")


# --- a trained autoencoder's directory (written by gexnet.training.autoencoder) ---------------


def open_dense(description: dict, genes: pd.DataFrame) -> Dense:
    """The dense matrix a trained model reads (its corpus's, its genes' columns), checked to be
    the corpus it was trained on."""
    corpus = Corpus(description["corpus"])
    if corpus.digest != description["training"]["data"]:
        raise GexnetError(
            f"{corpus.header_path}: not the corpus autoencoder {description['name']} was trained "
            "on (it was rebuilt since); retrain the model"
        )
    return Dense.of(corpus, genes["column"].to_numpy())


def load_autoencoder(model_dir: str | Path) -> tuple[Autoencoder, dict, pd.DataFrame, pd.DataFrame]:
    """A trained autoencoder (eval mode), its description, genes and samples tables."""
    model, description = load_trained(model_dir)
    genes = pd.read_parquet(Path(model_dir) / description["genes"])
    samples = pd.read_parquet(Path(model_dir) / description["samples"])
    return model, description, genes, samples
