"""The gene language models' data source: batches of a token corpus (`gexnet.formats.corpus`)
for the trainer, which chooses the rows of every step (`gexnet.training.trainer`).

GPT: <cls> then the gene list shifted by one, every real gene a target. BERT: 15% of a sample's
genes (or levels) chosen, 80% masked, 10% replaced at random, 10% kept; the choice comes from
(seed, epoch, row), never from the batch or the process layout.
"""

from __future__ import annotations

import numpy as np
import torch

from gexnet.errors import GexnetError
from gexnet.formats.corpus import CLS, FIRST_GENE_TOKEN, MASK, PAD, TokenSequences
from gexnet.models.gene_lm import IGNORE


class GeneLMData:
    """A corpus's token sequences as the trainer's data source: the batch of `objective` for any
    rows and epoch (BERT masks drawn from (seed, epoch, row))."""

    def __init__(self, sequences: TokenSequences, objective: str, seed: int,
                 mask_fraction: float = 0.15) -> None:  # fmt: skip
        self.sequences, self.objective = sequences, objective
        self.seed, self.mask_fraction = seed, mask_fraction
        self.n_train, self.n_samples = sequences.n_train, sequences.n_samples

    def batch(self, rows: np.ndarray, epoch: int) -> dict[str, torch.Tensor]:
        return make_batch(self.sequences, self.objective, rows, self.seed, epoch,
                          self.mask_fraction)  # fmt: skip


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
