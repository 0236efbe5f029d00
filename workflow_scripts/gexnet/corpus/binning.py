"""Library-size scaling, log transform and Binning-By-Gene: the arithmetic, on arrays.

Binning-By-Gene, per gene across the training samples (B bins, 2,000 by default):
- a zero count is bin 1;
- a non-zero value x of a gene with n non-zero values gets bin 2 + floor(r(x) · (B − 1) / n),
  where r(x) is the number of the gene's non-zero values strictly below x (0 for the smallest).

Ties: equal values share the bin of their lowest rank ("min" ranking), so the bin depends on the
value only — never on sample order, block layout or sort stability. On tie-free data this equals
the published rank-based binning (`direct_binning`, the oracle in the tests).

New samples are binned by a search against each gene's stored reference: evenly spaced order
statistics of its training values (`reference_sample`, `bin_against_reference`).
"""

from __future__ import annotations

import numpy as np

from gexnet.errors import GexnetError

ZERO_BIN = 1


def scale_log(counts: np.ndarray, totals: np.ndarray, scale_to: float) -> np.ndarray:
    """log10(count / total · scale_to + 1) as float32; counts are genes × samples.

    Computed in float32 through log1p (accurate near zero): within a few units in the last
    place of the float64 result, at several times its speed.
    """
    unsigned = np.asarray(counts).dtype.kind == "u"  # (compendium counts: nothing to check)
    if counts.size and not unsigned and not counts.min() >= 0:  # NaN fails the comparison too
        raise GexnetError("scale_log: negative or NaN counts in the input")
    factor = (scale_to / np.maximum(np.asarray(totals, np.float64), 1)).astype(np.float32)
    out = np.multiply(counts, factor, dtype=np.float32)
    np.log1p(out, out=out)
    out *= np.float32(1 / np.log(10))
    return out


def bin_genes(values: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Binning-By-Gene of training values (genes × samples, float32, ≥ 0).

    Returns the bins (uint16, same shape) and each gene's values sorted ascending, zeros first
    (for its reference). Per gene, each non-zero value is sorted together with its
    sample index as one 64-bit key (the float's bits, then the index): one SIMD sort gives the
    ranks and where each value goes back; no argsort, no per-value search, and zeros (half of a
    compendium) are never sorted. Ties (rare in real log values) are fixed afterwards from the
    start of their run, so tie-free data pays nothing for them.
    """
    n_genes, n_samples = values.shape
    if n_samples >= 2**32:
        raise ValueError("more than 2^32 samples in one gene block")
    values = np.ascontiguousarray(values, dtype=np.float32)
    if values.size and not values.min() >= 0:  # NaN fails the comparison too
        raise GexnetError("bin_genes: negative or NaN values in the input (expected >= 0)")
    out = np.full((n_genes, n_samples), ZERO_BIN, np.uint16)
    sorted_values = np.zeros((n_genes, n_samples), np.float32)
    bin_ids = np.arange(2, bins + 1, dtype=np.uint16)
    k = np.arange(bins - 1, dtype=np.int64)
    for g in range(n_genes):
        row = values[g]
        nonzero = np.flatnonzero(row > 0)  # -0.0 is zero
        n = nonzero.size
        if n == 0:
            continue
        key = row[nonzero].view(np.uint32).astype(np.uint64)  # positive floats sort like bits
        key <<= np.uint64(32)
        key |= nonzero.view(np.uint64)
        key.sort()
        sv = sorted_values[g, n_samples - n :]
        sv.view(np.uint32)[...] = key >> np.uint64(32)
        # sorted position p takes bin 2 + p · (B − 1) // n: bin j + 2 starts at ceil(j · n / (B − 1))
        first = (k * n + bins - 2) // (bins - 1)
        b = np.repeat(bin_ids, np.diff(first, append=n))
        # a value equal to the one before it takes the bin of its run's start ("min" ranks)
        same = sv[1:] == sv[:-1]
        tied = np.flatnonzero(same) + 1
        if tied.size:
            run_starts = np.flatnonzero(np.r_[True, ~same])
            b[tied] = b[run_starts[np.searchsorted(run_starts, tied, side="right") - 1]]
        key &= np.uint64(0xFFFFFFFF)
        out[g, key.view(np.int64)] = b
    return out, sorted_values


def reference_sample(sorted_nonzero: np.ndarray, fraction: float, bins: int) -> np.ndarray:
    """A gene's stored reference: evenly spaced order statistics of its sorted non-zero values.

    The published reference keeps 0.5% of the training values; at ARCHS4 scale that is about
    2,000 values a gene. Smaller compendia keep at least B − 1, so that binning against the
    reference stays within one bin of the training bins.
    """
    n = len(sorted_nonzero)
    if n == 0:
        return np.empty(0, dtype=np.float32)
    m = min(n, max(int(np.ceil(fraction * n)), bins - 1))
    return sorted_nonzero[(np.arange(m) * n) // m].astype(np.float32)


def bin_against_reference(values: np.ndarray, reference: np.ndarray, bins: int) -> np.ndarray:
    """Bins of one gene's values (any samples) against its stored reference subsample."""
    out = np.full(values.shape, ZERO_BIN, dtype=np.uint16)
    nonzero = values > 0
    m = len(reference)
    if m:
        r = np.searchsorted(reference, values[nonzero], side="left")
        # r = m (above every reference value, the training maximum included) is the top bin
        out[nonzero] = np.minimum(2 + (r * (bins - 1)) // m, bins)
    else:  # a gene never expressed in training: any expression is as high as it gets
        out[nonzero] = bins
    return out


def direct_binning(values: np.ndarray, bins: int) -> np.ndarray:
    """The published algorithm transcribed: per gene, argsort of argsort of the non-zero values.

    Kept as the independent oracle (tests) and the benchmark's baseline; ties take sort order.
    """
    out = np.full(values.shape, ZERO_BIN, dtype=np.uint16)
    for g in range(values.shape[0]):
        nonzero = np.flatnonzero(values[g] > 0)
        if nonzero.size:
            ranks = np.argsort(np.argsort(values[g, nonzero], kind="stable"), kind="stable")
            out[g, nonzero] = 2 + (ranks * (bins - 1)) // nonzero.size
    return out
