"""Batches for the gene language models from a token corpus (`gexnet.normalize`).

Everything random is a function of (seed, epoch, sample row), never of the process layout:
- an epoch's order is a permutation of the training rows drawn from (seed, epoch);
- optimizer step s takes the next `global_batch` rows of it; the step's rows are split into
  world × accumulation micro-batches, micro-batch m of rank r holding slice m · world + r;
- a sample's BERT mask comes from (seed, epoch, row).
So one process and many, with the same global batch, see the same samples with the same masks at
every step, and a resumed run continues exactly where the interrupted one stopped.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from gexnet.errors import GexnetError
from gexnet.matrixfile import open_array
from gexnet.model import IGNORE
from gexnet.tokens import CLS, FIRST_GENE_TOKEN, MASK, PAD

VALIDATION_EPOCH = 2**31 - 1  # the masks of validation samples: the same every epoch


class Corpus:
    """A corpus's token and level arrays for one normalization (memory-mapped), optionally
    restricted to genes of some biotypes (renumbered; each sequence keeps its order).

    `digest` (SHA-256 of corpus.json's bytes) identifies the corpus: its description changes
    whenever a rebuild would change the arrays, and does not depend on where the corpus lies.
    """

    def __init__(self, directory: str | Path, normalization: str, biotypes=None) -> None:
        self.directory = Path(directory)
        header_path = self.directory / "corpus.json"
        if not header_path.exists():
            raise GexnetError(f"{header_path}: no corpus here (run the corpus rule first)")
        raw = header_path.read_bytes()
        self.header_path, self.digest = header_path, hashlib.sha256(raw).hexdigest()
        header = json.loads(raw)
        name = f"tokens_{normalization}"
        if name not in header["arrays"]:
            raise GexnetError(f"{header_path}: no {name} array (normalizations: binning, zscore)")
        self.tokens = open_array(header_path, name)
        self.levels = open_array(header_path, f"levels_{normalization}")
        self.n_train, self.n_samples = header["n_train"], header["n_samples"]
        self.context, self.n_levels = header["context"], header["levels"]
        vocabulary = pd.read_csv(
            self.directory / header["vocabulary"], sep="\t", keep_default_na=False
        )
        self.remap = None
        if biotypes:
            keep = (vocabulary["token_id"] < FIRST_GENE_TOKEN) | vocabulary["biotype"].isin(
                biotypes
            )
            if not keep[FIRST_GENE_TOKEN:].any():
                raise GexnetError(f"{header_path}: no gene of biotypes {list(biotypes)}")
            self.remap = np.where(keep, np.cumsum(keep) - 1, -1).astype(np.int64)
            vocabulary = vocabulary[keep].assign(token_id=lambda v: np.arange(len(v)))
        self.vocabulary = vocabulary.reset_index(drop=True)
        self.n_tokens = len(self.vocabulary)

    def sequences(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Token IDs and levels (int64, len(rows) × context) of corpus rows."""
        order = np.argsort(rows)  # memory maps read fastest in order
        tokens = np.empty((len(rows), self.context), np.int64)
        levels = np.empty((len(rows), self.context), np.int64)
        tokens[order] = self.tokens[rows[order]]
        levels[order] = self.levels[rows[order]]
        if self.remap is not None:  # drop other biotypes, close the gaps, pad the end
            mapped = self.remap[tokens]
            kept = mapped >= 0
            shift = np.argsort(~kept, axis=1, kind="stable")  # kept positions first, in order
            tokens = np.where(
                np.take_along_axis(kept, shift, 1), np.take_along_axis(mapped, shift, 1), PAD
            )
            levels = np.where(tokens != PAD, np.take_along_axis(levels, shift, 1), 0)
        return tokens, levels


def steps_per_epoch(n_train: int, global_batch: int) -> int:
    return n_train // global_batch  # the last partial batch of an epoch is left out


def step_rows(n_train: int, global_batch: int, seed: int, epoch: int, step: int) -> np.ndarray:
    """The training rows of optimizer step `step` of `epoch` (all ranks, all micro-batches)."""
    order = _epoch_order(n_train, seed, epoch)
    return order[step * global_batch : (step + 1) * global_batch]


@functools.lru_cache(maxsize=1)
def _epoch_order(n_train: int, seed: int, epoch: int) -> np.ndarray:
    """The epoch's shuffle, made once per epoch rather than at every step (read-only)."""
    order = np.random.default_rng([seed, epoch]).permutation(n_train)
    order.flags.writeable = False
    return order


def micro_batches(rows: np.ndarray, rank: int, world: int, accum: int) -> list[np.ndarray]:
    """This rank's micro-batches of a step: slice m · world + rank for m = 0..accum − 1."""
    parts = np.array_split(rows, world * accum)
    return [parts[m * world + rank] for m in range(accum)]


def make_batch(
    corpus: Corpus, objective: str, rows: np.ndarray, seed: int, epoch: int,
    mask_fraction: float = 0.15,
) -> dict[str, torch.Tensor]:  # fmt: skip
    """Inputs and targets (IGNORE where no loss) of `objective` for corpus rows."""
    tokens, levels = corpus.sequences(rows)
    present = tokens != PAD
    if objective == "gpt":  # <cls>, then the list shifted by one: predict every gene
        inputs = np.concatenate([np.full((len(rows), 1), CLS), tokens[:, :-1]], axis=1)
        targets = np.where(present, tokens, IGNORE)
        return _tensors(tokens=inputs, targets=targets)
    # BERT: choose positions; 80% masked, 10% replaced at random, 10% kept
    chosen = np.zeros(tokens.shape, bool)
    action = np.zeros(tokens.shape)
    random_pick = np.zeros(tokens.shape)
    for i, row in enumerate(rows):
        rng = np.random.default_rng([seed, epoch, int(row)])
        chosen[i] = rng.random(tokens.shape[1]) < mask_fraction
        action[i] = rng.random(tokens.shape[1])
        random_pick[i] = rng.random(tokens.shape[1])
    chosen &= present
    masked, replaced = chosen & (action < 0.8), chosen & (action >= 0.8) & (action < 0.9)
    if objective == "bert_genes":
        genes = FIRST_GENE_TOKEN + (random_pick * (corpus.n_tokens - FIRST_GENE_TOKEN)).astype(int)
        inputs = np.where(masked, MASK, np.where(replaced, genes, tokens))
        return _tensors(tokens=inputs, targets=np.where(chosen, tokens, IGNORE))
    if objective == "bert_expr":
        mask_level = corpus.n_levels + 1
        random_level = 1 + (random_pick * corpus.n_levels).astype(int)
        inputs = np.where(masked, mask_level, np.where(replaced, random_level, levels))
        return _tensors(tokens=tokens, levels=inputs, targets=np.where(chosen, levels, IGNORE))
    raise GexnetError(f"unknown objective {objective!r}")


def _tensors(**arrays: np.ndarray) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.int64)) for k, v in arrays.items()}
