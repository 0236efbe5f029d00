"""Alignment and ortholog ranks against independent oracles: scipy's orthogonal Procrustes,
brute-force CSLS, ranks and mutual nearest neighbours on full matrices in float64, and a planted
rotation recovered on held-out genes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes
from scipy.stats import ortho_group

from gexnet.analysis import align
from gexnet.errors import GexnetError


def clustered(n: int, d: int, rng, clusters: int = 20, spread: float = 0.5) -> np.ndarray:
    sizes = rng.dirichlet(np.ones(clusters) * 0.7)  # uneven clusters: distinct profiles
    centres = rng.normal(size=(clusters, d))
    return centres[rng.choice(clusters, n, p=sizes)] + spread * rng.normal(size=(n, d))


def rotated_copy(n=2000, d=32, noise=0.02, seed=0):
    rng = np.random.default_rng(seed)
    a = clustered(n, d, rng)
    q = ortho_group.rvs(d, random_state=seed)
    b = a @ q + noise * np.linalg.norm(a, axis=1).mean() * rng.normal(size=(n, d)) / np.sqrt(d)
    return align.normalize(a), align.normalize(b), q


def brute_force(a, b, ia, ib, k, measure):
    """Ranks by the full score matrix in float64: 1 + candidates strictly above the partner (by
    more than float32 rounding, align.TIE, so exact duplicates tie)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    s = a @ b.T
    if measure == "csls":
        r_b = np.sort(s, axis=1)[:, -k:].mean(axis=1)  # of each a row among b
        r_a = np.sort(s.T, axis=1)[:, -k:].mean(axis=1)  # of each b row among a
        s = 2 * s - r_b[:, None] - r_a[None, :]
    own = s[ia, ib]
    rank_ab = 1 + (s[ia] > own[:, None] + align.TIE).sum(axis=1)
    rank_ba = 1 + (s[:, ib].T > own[:, None] + align.TIE).sum(axis=1)
    return rank_ab, rank_ba


def test_procrustes_equals_scipy():
    rng = np.random.default_rng(0)
    for n, d in ((50, 8), (300, 40)):
        a, b = rng.normal(size=(n, d)), rng.normal(size=(n, d))
        w = align.procrustes(a, b)
        np.testing.assert_allclose(w, orthogonal_procrustes(a, b)[0], atol=1e-5)
        np.testing.assert_allclose(w @ w.T, np.eye(d), atol=1e-5)


def test_normalize_is_unit_centre_unit():
    rng = np.random.default_rng(1)
    x = rng.normal(2.0, 3.0, size=(200, 12))
    x[5] = 0  # a gene without a vector: stays zero, out of the mean
    keep = np.arange(len(x)) != 5
    y = np.zeros_like(x)
    y[keep] = x[keep] / np.linalg.norm(x[keep], axis=1, keepdims=True)
    y[keep] -= y[keep].mean(axis=0)
    np.testing.assert_allclose(y[keep].mean(axis=0), 0, atol=1e-12)  # the centring step
    y[keep] /= np.linalg.norm(y[keep], axis=1, keepdims=True)
    got = align.normalize(x)
    np.testing.assert_allclose(got, y, atol=1e-5)
    assert got.dtype == np.float32 and not got[5].any()
    np.testing.assert_allclose(np.linalg.norm(got[keep], axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("measure", ["cosine", "csls"])
def test_ranks_and_radii_equal_brute_force(measure):
    rng = np.random.default_rng(2)
    a = align.normalize(rng.normal(size=(300, 10)))
    b = align.normalize(rng.normal(size=(250, 10)))
    a[250:], b[200:] = a[:50], b[:50]  # duplicate rows: exact ties, which must not hurt
    ia = np.r_[np.arange(50), np.arange(250, 300), rng.integers(0, 300, 80)]
    ib = np.r_[np.arange(200, 250), np.arange(50), rng.integers(0, 250, 80)]
    got = align.ortholog_ranks(a, b, ia, ib, measure, k=7, chunk=64)  # chunks exercised
    rank_ab, rank_ba = brute_force(a, b, ia, ib, 7, measure)
    np.testing.assert_array_equal(got["rank_ab"], rank_ab)
    np.testing.assert_array_equal(got["rank_ba"], rank_ba)
    np.testing.assert_allclose(got["similarity"], np.sum(a[ia] * b[ib], axis=1), atol=1e-6)
    radii = align.neighbour_radii(a, b, 7, chunk=64)
    full = np.sort(a.astype(np.float64) @ b.T, axis=1)[:, -7:].mean(axis=1)
    np.testing.assert_allclose(radii, full, atol=1e-6)
    # a partner and its duplicate share one rank: the duplicate does not count against it
    twin = align.ortholog_ranks(a, b, ia[:50], ib[:50] - 200, measure, k=7, chunk=64)
    np.testing.assert_array_equal(twin["rank_ab"], got["rank_ab"][:50])


def test_ties_do_not_count_against_the_partner():
    b = align.normalize(np.eye(4) + 0.1)
    b = np.concatenate([b, b[:1]])  # row 4 duplicates row 0
    a = b[:1].copy()
    got = align.ortholog_ranks(a, b, np.array([0]), np.array([4]))
    assert got["rank_ab"][0] == 1


def test_mutual_nearest_neighbours_equal_brute_force():
    rng = np.random.default_rng(3)
    a = align.normalize(rng.normal(size=(200, 8)))
    b = align.normalize(a[rng.permutation(200)[:150]] + 0.3 * rng.normal(size=(150, 8)))
    ia, ib = align.mutual_nn(a, b, k=5, chunk=32)
    s = a.astype(np.float64) @ b.T
    r_b = np.sort(s, axis=1)[:, -5:].mean(axis=1)
    r_a = np.sort(s.T, axis=1)[:, -5:].mean(axis=1)
    csls = 2 * s - r_b[:, None] - r_a[None, :]
    best_ab, best_ba = csls.argmax(axis=1), csls.argmax(axis=0)
    expected = np.flatnonzero(best_ba[best_ab] == np.arange(200))
    np.testing.assert_array_equal(ia, expected)
    np.testing.assert_array_equal(ib, best_ab[expected])
    assert len(ia) > 50
    # limit keeps the full matrix's mutual pairs within the first 100 rows of both sides
    limited = align.mutual_nn(a, b, k=5, limit=100, chunk=32)
    within = (expected < 100) & (best_ab[expected] < 100)
    np.testing.assert_array_equal(limited[0], expected[within])
    np.testing.assert_array_equal(limited[1], best_ab[expected[within]])


def test_planted_rotation_is_recovered_on_held_out_genes():
    a, b, q = rotated_copy()
    n = len(a)
    split = align.split_dictionary(n, 0.05, 0.05, seed=1)
    idx = np.arange(n)
    parts = {s: (idx[split == s], idx[split == s]) for s in align.SPLITS}
    fit = align.fit_supervised(a, b, parts["train"], parts["validation"], refinements=3, k=10)
    assert np.linalg.norm(fit.mapping - q) / np.sqrt(len(q)) < 0.05
    assert fit.history["chosen"].sum() == 1 and len(fit.history) == 4
    held = parts["held_out"][0]
    for measure in align.MEASURES:
        ranks = align.ortholog_ranks(a @ fit.mapping, b, held, held, measure)
        for key in ("rank_ab", "rank_ba"):
            assert (ranks[key] == 1).mean() >= 0.99, (measure, key)
    # the shuffled control: the same fit on rows dealt at random ranks at chance (on a quarter
    # held out: the median of 100 ranks would wander by 5% of n alone)
    split = align.split_dictionary(n, 0.25, 0.05, seed=1)
    parts = {s: (idx[split == s], idx[split == s]) for s in align.SPLITS}
    shuffled = align.normalize(align.shuffle_rows(b, seed=2))
    control = align.fit_supervised(a, shuffled, parts["train"], parts["validation"], 1)
    held = parts["held_out"][0]
    ranks = align.ortholog_ranks(a @ control.mapping, shuffled, held, held)["rank_ab"]
    assert abs(np.median(ranks) / (n / 2) - 1) < 0.1


def test_unsupervised_alignment_finds_the_rotation_without_a_dictionary():
    a, b, _ = rotated_copy(n=1500, d=16, noise=0.01, seed=4)
    order = np.random.default_rng(5).permutation(len(b))
    b = b[order]  # nothing in the row order gives the pairs away
    fit = align.fit_unsupervised(a, b, refinements=3, k=10, init_size=500)
    partner = np.argsort(order)  # a's row i is b's row partner[i]
    ranks = align.ortholog_ranks(a @ fit.mapping, b, np.arange(len(a)), partner, "csls")
    assert (ranks["rank_ab"] == 1).mean() >= 0.9
    assert fit.history["chosen"].sum() == 1


def test_split_dictionary_by_seed():
    labels = align.split_dictionary(1000, 0.05, 0.1, seed=3)
    counts = {s: int((labels == s).sum()) for s in align.SPLITS}
    assert counts == {"train": 855, "validation": 95, "held_out": 50}
    np.testing.assert_array_equal(labels, align.split_dictionary(1000, 0.05, 0.1, seed=3))
    assert (labels != align.split_dictionary(1000, 0.05, 0.1, seed=4)).any()
    with pytest.raises(GexnetError, match=r"3 ortholog pairs are too few"):
        align.split_dictionary(3, 0.05, 0.05)


def test_dictionary_curve_grows_with_the_dictionary():
    a, b, _ = rotated_copy(n=1200, d=32, noise=0.6, seed=6)
    idx = np.arange(len(a))
    split = align.split_dictionary(len(a), 0.1, 0.05, seed=0)
    parts = {s: (idx[split == s], idx[split == s]) for s in align.SPLITS}
    curve = align.dictionary_curve(a, b, parts["train"], parts["validation"], parts["held_out"],
                                   fractions=(0.02, 0.5, 1.0), refinements=1)  # fmt: skip
    assert list(curve.columns) == ["fraction", "n_pairs", "measure", "direction", "rank1",
                                   "top10", "top100", "median_rank"]  # fmt: skip
    assert len(curve) == 3 * 2 * 2
    cosine = curve.query("measure == 'cosine' and direction == 'a_to_b'").set_index("fraction")
    assert cosine["n_pairs"].is_monotonic_increasing
    assert cosine.loc[1.0, "rank1"] > cosine.loc[0.02, "rank1"]


def test_bad_input_is_one_clear_error():
    rng = np.random.default_rng(7)
    a, b = align.normalize(rng.normal(size=(20, 4))), align.normalize(rng.normal(size=(20, 5)))
    with pytest.raises(GexnetError, match=r"differ in width: \(20, 4\) and \(20, 5\)"):
        align.ortholog_ranks(a, b, np.arange(3), np.arange(3))
    b = align.normalize(rng.normal(size=(20, 4)))
    with pytest.raises(GexnetError, match=r"unknown measure 'dot'"):
        align.ortholog_ranks(a, b, np.arange(3), np.arange(3), "dot")
    with pytest.raises(GexnetError, match=r"out of range for side b of 20 rows"):
        align.ortholog_ranks(a, b, np.arange(3), np.array([0, 1, 20]))
    one = (np.array([0]), np.array([0]))
    with pytest.raises(GexnetError, match=r"dictionary of 1 pair\(s\) is too small"):
        align.fit_supervised(a, b, one, one)


def test_refinement_stops_where_the_induced_dictionary_is_too_small():
    a, b, _ = rotated_copy(n=300, d=8, seed=8)
    idx = np.arange(300)
    fit = align.fit_supervised(a, b, (idx[:200], idx[:200]), (idx[200:], idx[200:]), 3, limit=1)
    assert len(fit.history) == 1  # limit 1: at most one induced pair, nothing to refit on
    assert fit.history["chosen"].tolist() == [True]
    np.testing.assert_allclose(fit.mapping, align.procrustes(a[:200], b[:200]))
