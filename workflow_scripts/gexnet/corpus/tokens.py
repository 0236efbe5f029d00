"""From binned samples to token sequences: top genes per sample, levels (the split of samples
is `gexnet.formats.corpus.validation_split`).

A sample's sequence is its expressed genes (non-zero counts) ordered by binned value, highest
first, at most `context` of them; genes with equal values go in token order (lowest first), so
sequences are a function of the data alone. Token IDs and the vocabulary are the corpus file
contract's (`gexnet.formats.corpus`).
"""

from __future__ import annotations

import numpy as np


def _ordered_bits(scores: np.ndarray) -> np.ndarray:
    """Scores → uint64 (below 2^32) with the same order: unsigned integers (bins) as they are,
    anything else through float32, negative numbers included."""
    scores = np.asarray(scores)
    if scores.dtype.kind == "u" and scores.dtype.itemsize <= 4:
        return scores.astype(np.uint64)
    bits = np.ascontiguousarray(scores, dtype=np.float32).view(np.uint32)
    return np.where(bits & 0x80000000, ~bits, bits | 0x80000000).astype(np.uint64)


def top_genes(scores: np.ndarray, expressed: np.ndarray, context: int) -> np.ndarray:
    """Per sample (rows of samples × genes), the indices of its top `context` expressed genes by
    score, highest first, lower index first among equals; -1 pads samples with fewer.

    Scores are float (z-scores) or integer (bins); each (score, gene) pair becomes one unique
    64-bit key, so the selection follows the rule exactly, ties at the cut included.
    """
    n_genes = scores.shape[1]
    keys = _ordered_bits(scores)
    keys <<= np.uint64(32)
    keys |= np.uint64(0xFFFFFFFF) - np.arange(n_genes, dtype=np.uint64)  # ≥ 1: lower gene first
    keys[~expressed] = 0  # below every expressed gene
    k = min(context, n_genes)
    if k == 0:
        return np.full((scores.shape[0], context), -1, np.int64)
    # select the top k keys (SIMD partition), sort only them; the key holds its gene
    top = np.partition(keys, n_genes - k, axis=1)[:, n_genes - k :]
    top.sort(axis=1)
    top = top[:, ::-1]
    genes = (np.uint64(0xFFFFFFFF) - (top & np.uint64(0xFFFFFFFF))).astype(np.int64)
    genes[top == 0] = -1
    if k < context:
        genes = np.pad(genes, ((0, 0), (0, context - k)), constant_values=-1)
    return genes


def within_sample_levels(values: np.ndarray, genes: np.ndarray, levels: int = 100) -> np.ndarray:
    """Expression level 1..levels of each chosen gene within its sample (rows of samples ×
    genes): non-zero values rank-binned with "min" ties; 0 for padding. BERT-expression's
    second channel (levels + 1 classes)."""
    out = np.zeros(genes.shape, dtype=np.uint8)
    for s in range(values.shape[0]):
        row = values[s]
        nonzero = np.sort(row[row > 0])
        chosen = genes[s] >= 0
        if nonzero.size and chosen.any():
            r = np.searchsorted(nonzero, row[genes[s, chosen]], side="left")
            out[s, chosen] = 1 + (r * levels) // nonzero.size
    return out
