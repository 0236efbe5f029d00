"""The gene language models' data source: batches of a token corpus (`gexnet.formats.corpus`)
for the trainer, which chooses the rows of every step (`gexnet.training.trainer`).

GPT: <cls> then the gene list shifted by one, every real gene a target. BERT: 15% of a sample's
genes (or levels) chosen, 80% masked, 10% replaced at random, 10% kept; the choice comes from
(seed, epoch, row), never from the batch or the process layout.

Every model reads its corpus through `JointSequences`: one species' corpus, two species'
corpora side by side (a mixed-species model), or one species' samples split in two halves whose
genes are distinct tokens (the pseudo-species control: every gene has a perfect "ortholog").
The joint vocabulary is the special tokens, then the first part's genes, then the second's; the
rows are the parts' training rows, then their validation rows, so the trainer's shuffle mixes
the species within every epoch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from gexnet.errors import GexnetError
from gexnet.formats.corpus import CLS, FIRST_GENE_TOKEN, MASK, PAD, TokenSequences
from gexnet.formats.embeddings import PSEUDO_SUFFIX
from gexnet.models.gene_lm import IGNORE

PSEUDO_STREAM = 0x5053  # the pseudo-species split's own random stream beside the seed


@dataclass
class Part:
    """One species' share of a joint corpus: its sequences and which of their rows train and
    validate."""

    sequences: TokenSequences
    species: str
    train_rows: np.ndarray
    validation_rows: np.ndarray


def whole(sequences: TokenSequences, species: str) -> Part:
    """All of a corpus: its own training and validation rows."""
    n_train, n_samples = sequences.n_train, sequences.n_samples
    return Part(sequences, species, np.arange(n_train), np.arange(n_train, n_samples))


def pseudo_halves(sequences: TokenSequences, species: str, seed: int) -> tuple[Part, Part]:
    """A corpus's samples dealt to two halves by a draw per sample from `seed` (training and
    validation samples alike); the second half is the pseudo species `<species>_pseudo`."""
    half = pseudo_half(sequences.n_samples, seed)
    rows = np.arange(sequences.n_samples)
    train = rows < sequences.n_train
    return (
        Part(sequences, species, rows[train & ~half], rows[~train & ~half]),
        Part(sequences, species + PSEUDO_SUFFIX, rows[train & half], rows[~train & half]),
    )


def pseudo_half(n_samples: int, seed: int) -> np.ndarray:
    """Per sample: whether it belongs to the second (pseudo) half."""
    return np.random.default_rng([seed, PSEUDO_STREAM]).random(n_samples) < 0.5


class JointSequences:
    """Parts' token sequences as one corpus (the interface of TokenSequences that make_batch
    reads): row i is the i-th of the parts' training rows (in part order), then of their
    validation rows; a part's gene tokens are offset by the genes of the parts before it
    (special tokens unchanged, levels unchanged)."""

    def __init__(self, parts: list[Part]) -> None:
        first = parts[0].sequences
        for part in parts[1:]:
            seqs = part.sequences
            if (seqs.context, seqs.n_levels) != (first.context, first.n_levels):
                raise GexnetError(
                    f"{first.corpus.directory} and {seqs.corpus.directory}: a joint model needs "
                    f"corpora of one context and number of levels (context {first.context} vs "
                    f"{seqs.context}, levels {first.n_levels} vs {seqs.n_levels})"
                )
        self.parts = parts
        self.context, self.n_levels = first.context, first.n_levels
        genes = [p.sequences.n_tokens - FIRST_GENE_TOKEN for p in parts]
        self.offsets = np.concatenate([[0], np.cumsum(genes)[:-1]]).astype(np.int64)
        self.n_tokens = FIRST_GENE_TOKEN + int(sum(genes))
        train = [(i, p.train_rows) for i, p in enumerate(parts)]
        validation = [(i, p.validation_rows) for i, p in enumerate(parts)]
        self.part_of = np.concatenate([np.full(len(r), i) for i, r in train + validation])
        self.row_of = np.concatenate([r for _, r in train + validation]).astype(np.int64)
        self.n_train = sum(len(r) for _, r in train)
        self.n_samples = len(self.row_of)
        self.vocabulary = self._vocabulary()

    def _vocabulary(self) -> pd.DataFrame:
        """token_id, token, gene_id, symbol, biotype, species: the special tokens ("" species),
        then each part's genes; a pseudo copy's tokens are its genes' IDs prefixed p_."""
        special = self.parts[0].sequences.vocabulary.iloc[:FIRST_GENE_TOKEN].assign(species="")
        bodies = []
        for part in self.parts:
            body = part.sequences.vocabulary.iloc[FIRST_GENE_TOKEN:].assign(species=part.species)
            if part.species.endswith(PSEUDO_SUFFIX):
                body = body.assign(token="p_" + body["gene_id"])
            bodies.append(body)
        table = pd.concat([special, *bodies], ignore_index=True)
        return table.assign(token_id=np.arange(len(table)))

    def rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Token IDs (joint vocabulary) and levels of joint rows."""
        rows = np.asarray(rows, dtype=np.int64)
        tokens = np.empty((len(rows), self.context), np.int64)
        levels = np.empty((len(rows), self.context), np.int64)
        parts = self.part_of[rows]
        for i, part in enumerate(self.parts):
            mine = parts == i
            if not mine.any():
                continue
            t, lv = part.sequences.rows(self.row_of[rows[mine]])
            tokens[mine] = np.where(t >= FIRST_GENE_TOKEN, t + self.offsets[i], t)
            levels[mine] = lv
        return tokens, levels

    def digest(self, seed: int) -> str:
        """What identifies the joint data: one corpus's own digest, else SHA-256 over the
        parts' corpus digests, species and the seed of a pseudo split."""
        digests = [p.sequences.corpus.digest for p in self.parts]
        if len(self.parts) == 1:
            return digests[0]
        layout = {"corpora": digests, "species": [p.species for p in self.parts],
                  "pseudo_seed": seed if self.pseudo else None}  # fmt: skip
        return hashlib.sha256(json.dumps(layout, sort_keys=True).encode()).hexdigest()

    @property
    def pseudo(self) -> bool:
        return any(p.species.endswith(PSEUDO_SUFFIX) for p in self.parts)


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
