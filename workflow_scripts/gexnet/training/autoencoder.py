"""Training the expression autoencoder with the one trainer (`gexnet.training.trainer`).

Data: the corpus's dense log matrix (samples × vocabulary genes, `gexnet.formats.corpus`),
over the configured biotypes' genes (protein-coding by default). A batch reads its rows from the
file (positioned reads, never the whole matrix: 238k × 19.4k float16 is 9 GB) and keeps the
model's columns. The split is the autoencoder's own (`split_by`, by series by
default, so that no study sits on both sides), drawn from the seed over the corpus's samples.

Gene statistics over the training samples: mean and standard deviation (the scaling), minimum
(a knockout's floor level) and maximum, exact in one streamed pass; and observed-value
quantiles at q = 0, 0.01, ..., 1 from up to `stats_samples` training samples drawn
from the seed (the overexpression targets).

What a training job writes in its output directory: model.safetensors (weights, the scaling
buffers included), model.json (the architecture, the settings, the training fingerprint, the
corpus), genes.parquet (the model's genes in order: gene_id, symbol, biotype, column in the
dense matrix, center, scale, mean, std, minimum, maximum, quantiles), samples.parquet (every
corpus sample with its split here: geo_accession, series_id, split, row), and the trainer's
metrics.tsv (per step: samples, values, flops, samples_per_s, mfu) and validation.tsv (the
validation mean squared error in scaled units, per epoch).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from gexnet.errors import GexnetError
from gexnet.formats.corpus import Corpus, Dense, validation_split
from gexnet.formats.io import atomic_path, write_table
from gexnet.models.autoencoder import Autoencoder, AutoencoderConfig
from gexnet.training import trainer

WORK = ("samples", "values", "flops")
ARCHITECTURE = ("hidden", "latent", "activation", "norm", "dropout", "corruption",
                "corruption_level")  # fmt: skip
# what else decides the training data (the rest of the section is for later stages)
DATA_SETTINGS = ("biotypes", "scaling", "validation_fraction", "split_by", "stats_samples")
QUANTILES = np.linspace(0.0, 1.0, 101)
DRAW_STREAM = 0x4145  # the corruption draws' own stream beside (seed, epoch, row)
STATS_STREAM = 0x5354


def model_genes(corpus: Corpus, biotypes: list[str] | None) -> pd.DataFrame:
    """gene_id, symbol, biotype, column (in the dense matrix) of the genes a model reads."""
    genes = corpus.genes.assign(column=np.arange(len(corpus.genes)))
    if biotypes:
        genes = genes[genes["biotype"].isin(biotypes)]
    if genes.empty:
        raise GexnetError(f"{corpus.header_path}: no gene of biotypes {biotypes} in the corpus")
    return genes.reset_index(drop=True)


def split_samples(corpus: Corpus, fraction: float, by: str, seed: int) -> pd.DataFrame:
    """The corpus's samples (corpus row order) with this model's split column."""
    samples = pd.read_parquet(corpus.directory / "samples.parquet").sort_values("row")
    samples = samples.reset_index(drop=True)
    held = validation_split(samples, fraction, by, seed)
    samples["split"] = np.where(held, "validation", "train")
    if held.all() or not held.any():
        raise GexnetError(
            f"{corpus.directory}: the autoencoder's split (validation.fraction {fraction}, by "
            f"{by}) leaves {'no training' if held.all() else 'no validation'} sample among "
            f"{len(samples)}"
        )
    return samples


def gene_statistics(dense: Dense, rows: np.ndarray, block: int, stats_samples: int,
                    seed: int) -> pd.DataFrame:  # fmt: skip
    """mean, std, minimum, maximum (all `rows`, exact) and quantiles (QUANTILES, from up to
    `stats_samples` of them) of each of `dense`'s genes."""
    n = len(dense.columns)
    total, squares = np.zeros(n), np.zeros(n)
    low, high = np.full(n, np.inf), np.full(n, -np.inf)
    for _, values in dense.blocks(rows, block):
        total += values.sum(axis=0, dtype=np.float64)
        squares += (values.astype(np.float64) ** 2).sum(axis=0)
        low, high = np.minimum(low, values.min(axis=0)), np.maximum(high, values.max(axis=0))
    mean = total / len(rows)
    std = np.sqrt(np.maximum(squares / len(rows) - mean**2, 0.0))
    rng = np.random.default_rng([seed, STATS_STREAM])
    drawn = np.sort(rng.choice(rows, min(stats_samples, len(rows)), replace=False))
    sample = np.concatenate([v for _, v in dense.blocks(drawn, block)])
    quantiles = np.quantile(sample, QUANTILES, axis=0).T.astype(np.float32)  # genes × 101
    return pd.DataFrame({"mean": mean, "std": std, "minimum": low, "maximum": high,
                         "quantiles": list(quantiles)})  # fmt: skip


def scaling(stats: pd.DataFrame, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(center, scale) per gene: standard (mean, standard deviation; 1 where a gene is
    constant), center (mean, 1) or none (0, 1)."""
    n = len(stats)
    if kind == "none":
        return np.zeros(n, np.float32), np.ones(n, np.float32)
    center = stats["mean"].to_numpy(np.float32)
    if kind == "center":
        return center, np.ones(n, np.float32)
    std = stats["std"].to_numpy(np.float32)
    return center, np.where(std > 1e-6, std, 1.0).astype(np.float32)


class DenseData:
    """The trainer's data source: row i is the i-th training sample, then the validation ones;
    a batch holds their log values and the corruption draws from (seed, epoch, row)."""

    def __init__(self, dense: Dense, samples: pd.DataFrame, corruption: str, seed: int) -> None:
        train = samples.loc[samples["split"] == "train", "row"].to_numpy()
        held = samples.loc[samples["split"] == "validation", "row"].to_numpy()
        self.dense, self.row_of = dense, np.concatenate([train, held]).astype(np.int64)
        self.n_train, self.n_samples = len(train), len(self.row_of)
        self.corruption, self.seed = corruption, seed

    def batch(self, rows: np.ndarray, epoch: int) -> dict[str, torch.Tensor]:
        values = self.dense.rows(self.row_of[rows])
        out = {"values": torch.from_numpy(values)}
        if self.corruption != "none" and epoch != trainer.VALIDATION_EPOCH:
            draws = np.empty_like(values)
            for i, row in enumerate(rows):
                rng = np.random.default_rng([self.seed, DRAW_STREAM, epoch, int(row)])
                draws[i] = (rng.standard_normal(values.shape[1], np.float32)
                            if self.corruption == "gaussian"
                            else rng.random(values.shape[1], np.float32))  # fmt: skip
            out["draws"] = torch.from_numpy(draws)
        return out


def train(
    corpus_dir: str | Path, name: str, settings: dict, train_settings: dict, seed: int,
    outdir: str | Path, checkpoint_dir: str | Path, threads: int | None = None,
    block: int = 4096,
) -> None:  # fmt: skip
    """Train autoencoder `name` with `settings` (its effective autoencoder section) and
    `train_settings` on a corpus; write the model's files into `outdir`."""
    corpus = Corpus(corpus_dir)
    genes = model_genes(corpus, settings["biotypes"])
    dense = Dense.of(corpus, genes["column"].to_numpy())
    samples = split_samples(corpus, settings["validation_fraction"], settings["split_by"], seed)
    train_rows = samples.loc[samples["split"] == "train", "row"].to_numpy()
    stats = gene_statistics(dense, train_rows, block, settings["stats_samples"], seed)
    center, scale = scaling(stats, settings["scaling"])
    genes = pd.concat([genes, stats], axis=1).assign(center=center, scale=scale)
    config = AutoencoderConfig(len(genes), **{k: settings[k] for k in ARCHITECTURE})
    torch.manual_seed(seed)
    model = Autoencoder(config, center, scale)
    data = DenseData(dense, samples, config.corruption, seed)
    fingerprint = {"data": corpus.digest, "model": config.to_dict(),
                   "autoencoder": {k: settings[k] for k in DATA_SETTINGS}}  # fmt: skip
    job = trainer.Job(name=f"autoencoder/{name}", loss=lambda m, b: m.loss(b),
                      fingerprint=fingerprint, data_file=corpus.header_path, data_name="corpus",
                      work=model.work, work_columns=WORK, throughput="samples")  # fmt: skip
    with trainer.processes(train_settings, threads) as procs:
        metrics = trainer.fit(model, data, job, train_settings, seed, checkpoint_dir, procs)
        if procs.rank == 0:
            _write_model(Path(outdir), name, model, config, settings, metrics, genes, samples,
                         corpus)  # fmt: skip
        if procs.world > 1:
            trainer.dist.barrier()


def _write_model(outdir, name, model, config, settings, metrics, genes, samples, corpus) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(outdir / "model.safetensors") as tmp:
        save_file(state, str(tmp))
    write_table(genes, outdir / "genes.parquet")
    write_table(samples, outdir / "samples.parquet")
    metrics.flush(outdir)
    description = {
        "name": name, "model": config.to_dict(), "settings": settings,
        "training": metrics.fingerprint, "corpus": str(corpus.directory),
        "n_parameters": model.n_params(), "weights": "model.safetensors",
        "genes": "genes.parquet", "samples": "samples.parquet",
    }  # fmt: skip
    with atomic_path(outdir / "model.json") as tmp:
        tmp.write_text(json.dumps(description, indent=2) + "\n")
