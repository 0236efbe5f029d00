"""Binning-By-Gene against independent oracles: the published argsort-of-argsort algorithm on
tie-free data, scipy's "min" ranks on tied data, and the rule written out for edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata

from gexnet.corpus import binning
from gexnet.errors import GexnetError


def min_rank_bins(values: np.ndarray, bins: int) -> np.ndarray:
    """The documented rule, per gene: zeros 1, else 2 + floor((rank_min − 1) · (B − 1) / n)."""
    out = np.ones(values.shape, dtype=np.int64)
    for g, row in enumerate(values):
        nonzero = row > 0
        n = int(nonzero.sum())
        if n:
            rank = rankdata(row[nonzero], method="min").astype(np.int64)
            out[g, nonzero] = 2 + (rank - 1) * (bins - 1) // n
    return out


def tie_free(rng: np.random.Generator, n_genes: int, n_samples: int, zero_share) -> np.ndarray:
    """Distinct non-zero values per gene (log of a permutation), zeros at a per-gene share."""
    values = np.log1p(
        np.stack([rng.permutation(n_samples) + 1 for _ in range(n_genes)]).astype(np.float64)
    ).astype(np.float32)
    for g, share in enumerate(np.resize(np.asarray(zero_share, dtype=float), n_genes)):
        values[g, rng.random(n_samples) < share] = 0
    for row in values:  # the oracle comparison below is only valid without ties
        nonzero = row[row > 0]
        assert np.unique(nonzero).size == nonzero.size
    return values


def tied(rng: np.random.Generator, n_genes: int, n_samples: int) -> np.ndarray:
    """Heavy ties: gamma values rounded to one decimal, about a third zeros."""
    values = np.round(rng.gamma(2.0, 1.0, size=(n_genes, n_samples)), 1).astype(np.float32)
    values[rng.random((n_genes, n_samples)) < 0.3] = 0
    return values


# n_nonzero below and above B − 1 for both bin counts
SHAPES = [(6, 300), (4, 1500), (3, 6000)]


@pytest.mark.parametrize("bins", [2000, 10])
@pytest.mark.parametrize(("n_genes", "n_samples"), SHAPES)
def test_bins_equal_the_published_algorithm_without_ties(bins, n_genes, n_samples):
    rng = np.random.default_rng(n_samples + bins)
    values = tie_free(rng, n_genes, n_samples, zero_share=[0.0, 0.2, 0.7])
    out, sorted_values = binning.bin_genes(values, bins)
    expected = binning.direct_binning(values, bins)
    assert out.dtype == np.uint16
    assert (out == expected).all()
    assert (out == min_rank_bins(values, bins)).all()
    assert (sorted_values == np.sort(values, axis=1)).all()
    # every bin in range; zeros alone in bin 1
    assert out.min() >= 1 and out.max() <= bins
    assert ((out == 1) == (values == 0)).all()


@pytest.mark.parametrize("bins", [2000, 10])
def test_gene_blocks_give_the_same_bins(bins):
    rng = np.random.default_rng(7)
    for values in (tie_free(rng, 37, 2500, [0.0, 0.5, 0.95]), tied(rng, 37, 2500)):
        reference, sorted_values = binning.bin_genes(values, bins)
        for height in (1, 3, 16):  # genes binned a few at a time, as by gene blocks
            for g0 in range(0, 37, height):
                out, sv = binning.bin_genes(values[g0 : g0 + height], bins)
                assert (out == reference[g0 : g0 + height]).all(), height
                assert (sv == sorted_values[g0 : g0 + height]).all(), height


@pytest.mark.parametrize("bins", [2000, 10, 3])
@pytest.mark.parametrize(("n_genes", "n_samples"), SHAPES)
def test_ties_take_the_bin_of_their_lowest_rank(bins, n_genes, n_samples):
    rng = np.random.default_rng(n_samples * bins)
    values = tied(rng, n_genes, n_samples)
    assert any(np.unique(r[r > 0]).size < (r > 0).sum() for r in values), "data must have ties"
    out, sorted_values = binning.bin_genes(values, bins)
    assert (out == min_rank_bins(values, bins)).all()
    assert (sorted_values == np.sort(values, axis=1)).all()
    # the bin depends on the value only
    for g in range(n_genes):
        for v in np.unique(values[g])[:20]:
            assert np.unique(out[g, values[g] == v]).size == 1


def test_sample_order_does_not_change_a_value_s_bin():
    rng = np.random.default_rng(3)
    values = tied(rng, 5, 800)
    out, _ = binning.bin_genes(values, 50)
    perm = rng.permutation(800)
    shuffled, _ = binning.bin_genes(values[:, perm], 50)
    assert (shuffled == out[:, perm]).all()


def test_edge_cases():
    bins = 2000
    values = np.zeros((5, 7), np.float32)
    values[1, 4] = 3.5  # one non-zero value
    values[2] = 1.25  # constant non-zero gene
    values[3] = [0, 2, 2, 0, 1, 5, 5]
    values[4] = [1, 2, 3, 4, 5, 6, 7]
    values[:, 6] = 0  # an all-zero sample
    out, sorted_values = binning.bin_genes(values, bins)
    assert (out[0] == 1).all(), "all-zero gene"
    assert (out[:, 6] == 1).all(), "all-zero sample"
    assert out[1].tolist() == [1, 1, 1, 1, 2, 1, 1], "single non-zero value"
    assert out[2].tolist() == [2, 2, 2, 2, 2, 2, 1], "constant non-zero gene"
    # gene 3: non-zero 2, 2, 1, 5 → min ranks 1, 1, 0, 3 of n = 4
    assert out[3].tolist() == [1, 2 + 1999 // 4, 2 + 1999 // 4, 1, 2, 2 + 3 * 1999 // 4, 1]
    assert out[4].tolist() == [2 + r * 1999 // 6 for r in range(6)] + [1]
    assert (out == min_rank_bins(values, bins)).all()
    assert (sorted_values == np.sort(values, axis=1)).all()
    # a gene with no sample at all and an empty block
    assert binning.bin_genes(np.zeros((3, 0), np.float32), bins)[0].shape == (3, 0)
    assert binning.bin_genes(np.zeros((0, 4), np.float32), bins)[0].shape == (0, 4)


def test_negative_zero_counts_as_zero():
    values = np.array([[0.5, -0.0, 0.2, 0.3, 0.0]], np.float32)
    out, sorted_values = binning.bin_genes(values, 10)
    assert out.tolist() == [[2 + 2 * 9 // 3, 1, 2, 2 + 9 // 3, 1]]
    assert (sorted_values[0, 2:] == np.array([0.2, 0.3, 0.5], np.float32)).all()


@pytest.mark.parametrize("bad", [np.nan, -1.0, -1e-30, -np.inf])
def test_negative_or_nan_values_are_rejected(bad):
    values = np.ones((3, 5), np.float32)
    values[2, 3] = bad
    with pytest.raises(GexnetError, match="negative or NaN"):
        binning.bin_genes(values, 10)
    counts = np.ones((3, 5))
    counts[1, 1] = bad
    with pytest.raises(GexnetError, match="negative or NaN"):
        binning.scale_log(counts, np.full(5, 10.0), 1e7)


def test_scale_log_matches_the_formula():
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 5000, size=(40, 30)).astype(np.uint32)
    counts[:, 3] = 0  # a sample with no counts: total taken as 1, values 0
    totals = counts.sum(axis=0, dtype=np.int64)
    out = binning.scale_log(counts, totals, 1e7)
    assert out.dtype == np.float32
    expected = np.log10(counts / np.maximum(totals, 1) * 1e7 + 1)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert (out[:, 3] == 0).all() and ((out > 0) == (counts > 0)).all()


def _training_bins_against_reference(values: np.ndarray, bins: int, fraction: float):
    """(training bins, bins against the reference, reference sizes) of each gene."""
    train, sorted_values = binning.bin_genes(values, bins)
    again, sizes = np.empty_like(train), []
    for g, row in enumerate(sorted_values):
        nonzero = row[row > 0]
        reference = binning.reference_sample(nonzero, fraction, bins)
        assert (np.diff(reference) >= 0).all()
        assert set(reference.tolist()) <= set(nonzero.tolist())
        sizes.append(len(reference))
        again[g] = binning.bin_against_reference(values[g], reference, bins)
    return train.astype(np.int64), again.astype(np.int64), np.array(sizes)


@pytest.mark.parametrize("bins", [2000, 10])
@pytest.mark.parametrize("make", ["tie_free", "tied"])
def test_reference_reproduces_training_bins_within_one(bins, make):
    rng = np.random.default_rng(bins)
    # 300 and 1500 non-zero values are below B − 1 = 1999, 6000 above; all above B − 1 = 9
    for n_samples in (300, 1500, 6000):
        if make == "tie_free":
            values = tie_free(rng, 4, n_samples, [0.0, 0.3])
        else:
            values = tied(rng, 4, n_samples)
        train, again, sizes = _training_bins_against_reference(values, bins, 0.005)
        n_nonzero = (values > 0).sum(axis=1)
        expected_sizes = np.minimum(n_nonzero, np.maximum(np.ceil(0.005 * n_nonzero), bins - 1))
        assert (sizes == expected_sizes).all()
        assert np.abs(again - train).max() <= 1
        assert again.max() <= bins, "the training maximum stays in the top bin"
        assert ((again == 1) == (values == 0)).all()
        # a reference holding every value (fewer than B − 1 of them) reproduces them exactly
        exact = sizes == n_nonzero
        assert (again[exact] == train[exact]).all()
        assert exact.all() == (bins == 2000 and n_samples < 2000)


def test_reference_of_a_large_gene_at_the_published_fraction():
    rng = np.random.default_rng(11)
    n, bins = 500_000, 2000
    values = rng.lognormal(0.0, 1.0, size=(1, n)).astype(np.float32)
    values[0, rng.random(n) < 0.1] = 0
    train, again, sizes = _training_bins_against_reference(values, bins, 0.005)
    n_nonzero = int((values > 0).sum())
    assert sizes[0] == int(np.ceil(0.005 * n_nonzero)) >= bins - 1  # 0.5 % is the binding size
    assert np.abs(again - train).max() <= 1
    assert again.max() == bins, "the training maximum is in the top bin, not above it"
    assert (again == train).mean() > 0.5
    # the training bins themselves follow the rule
    assert (train == min_rank_bins(values, bins)).all()


def test_new_values_against_reference_stay_within_one_bin_of_the_rule():
    rng = np.random.default_rng(5)
    bins = 50
    training = tied(rng, 3, 4000)
    new = np.round(rng.gamma(2.0, 1.0, size=(3, 1000)), 2).astype(np.float32)
    new[:, :100] = 0
    new[:, 100:110] = 1e6  # above every training value: the top bin
    for g in range(3):
        # the rule for a new value: r = number of training non-zero values strictly below it
        nonzero = np.sort(training[g][training[g] > 0])
        r = np.searchsorted(nonzero, new[g], side="left")
        # (r = n, above the training maximum, is the top bin B)
        exact = np.where(new[g] > 0, np.minimum(2 + r * (bins - 1) // nonzero.size, bins), 1)
        reference = binning.reference_sample(nonzero, 0.005, bins)
        approx = binning.bin_against_reference(new[g], reference, bins).astype(np.int64)
        assert np.abs(approx - exact).max() <= 1
        assert (approx[:100] == 1).all() and (approx[100:110] == bins).all()


def test_gene_never_expressed_in_training():
    reference = binning.reference_sample(np.empty(0, np.float32), 0.005, 2000)
    assert reference.size == 0
    out = binning.bin_against_reference(np.array([0, 0.5, 3.0], np.float32), reference, 2000)
    assert out.tolist() == [1, 2000, 2000]
    # against a reference: its minimum is bin 2, values above its maximum the top bin
    reference = np.array([1.0, 2.0, 3.0], np.float32)
    out = binning.bin_against_reference(np.array([0, 0.5, 1, 2, 3, 3.5], np.float32), reference, 10)
    assert out.tolist() == [1, 2, 2, 2 + 9 // 3, 2 + 2 * 9 // 3, 10]
