"""Batches for the gene language models from a token corpus (`gexnet.formats.corpus`).

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

import numpy as np
import torch

from gexnet.errors import GexnetError
from gexnet.formats.corpus import CLS, FIRST_GENE_TOKEN, MASK, PAD, TokenSequences
from gexnet.models.gene_lm import IGNORE

VALIDATION_EPOCH = 2**31 - 1  # the masks of validation samples: the same every epoch


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
    corpus: TokenSequences, objective: str, rows: np.ndarray, seed: int, epoch: int,
    mask_fraction: float = 0.15,
) -> dict[str, torch.Tensor]:  # fmt: skip
    """Inputs and targets (IGNORE where no loss) of `objective` for corpus rows."""
    tokens, levels = corpus.rows(rows)
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
