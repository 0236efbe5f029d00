"""The clustering benchmark: its scores against scikit-learn's metrics, its KMeans against
scikit-learn's KMeans, the trials' rules, and planted groups far above the shuffled null."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics
from sklearn.cluster import KMeans

from gexnet.analysis import clustering
from gexnet.errors import GexnetError

SETTINGS = {"trials": 40, "max_attempts": 200, "groups": 4, "min_genes": 4, "max_genes": 60,
            "n_init": 10, "sources": None}  # fmt: skip


@pytest.mark.parametrize("seed", range(25))
def test_scores_equal_scikit_learns(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 300))
    truth = rng.integers(0, rng.integers(1, 6), n)
    # unrelated, partly agreeing, and identical clusterings (with other label values)
    found = [rng.integers(0, 4, n), np.where(rng.random(n) < 0.7, truth, rng.integers(0, 4, n)),
             truth * 3 + 7]  # fmt: skip
    for f in found:
        got = clustering.scores(truth, f)
        assert got["ari"] == pytest.approx(metrics.adjusted_rand_score(truth, f), abs=1e-12)
        assert got["nmi"] == pytest.approx(metrics.normalized_mutual_info_score(truth, f),
                                           abs=1e-12)  # fmt: skip
        assert got["fowlkes_mallows"] == pytest.approx(metrics.fowlkes_mallows_score(truth, f),
                                                       abs=1e-12)  # fmt: skip


def blobs(rng, n=200, d=32, k=4, spread=6.0):
    centres = rng.normal(scale=spread, size=(k, d))
    group = rng.integers(0, k, n)
    return centres[group] + rng.normal(size=(n, d)), group


def test_kmeans_finds_separated_groups_as_scikit_learn_does():
    rng = np.random.default_rng(0)
    for seed in range(5):
        x, group = blobs(rng)
        found, inertia = clustering.kmeans(x, 4, 10, np.random.default_rng(seed))
        reference = KMeans(4, n_init=10, random_state=seed).fit(x)
        assert metrics.adjusted_rand_score(group, found) == 1.0
        assert inertia == pytest.approx(reference.inertia_, rel=1e-9)
        means = np.stack([x[found == c].mean(0) for c in range(4)])
        assert inertia == pytest.approx(((x - means[found]) ** 2).sum(), rel=1e-9)


def test_kmeans_optimum_on_unstructured_data_is_scikit_learns_within_a_percent():
    """No structure: both stop in local optima; the best of ten starts is as good on average."""
    rng = np.random.default_rng(1)
    ratios = []
    for seed in range(20):
        x = rng.normal(size=(100, 16))
        _, inertia = clustering.kmeans(x, 4, 10, np.random.default_rng(seed))
        ratios.append(inertia / KMeans(4, n_init=10, random_state=seed).fit(x).inertia_)
    assert np.mean(ratios) < 1.01 and max(ratios) < 1.03


def test_kmeans_needs_as_many_points_as_clusters():
    with pytest.raises(GexnetError, match="3 points for 4 clusters"):
        clustering.kmeans(np.zeros((3, 2)), 4, 2, np.random.default_rng(0))


def test_trials_keep_genes_of_one_group_and_groups_of_min_genes():
    rng = np.random.default_rng(0)
    # overlapping labels: "c" shares genes with "a"; "tiny" loses all but 2 to "a" when drawn
    members = {"a": np.arange(0, 12), "b": np.arange(20, 30), "c": np.arange(8, 18),
               "d": np.arange(40, 46), "e": np.arange(50, 58),
               "tiny": np.array([0, 1, 2, 3, 60, 61])}  # fmt: skip
    trials = clustering.draw_trials(members, SETTINGS, rng)
    assert len(trials) == SETTINGS["trials"]
    for chosen, rows, group in trials:
        assert len(set(chosen)) == 4
        assert len(set(rows)) == len(rows)  # no gene twice
        for g, name in enumerate(chosen):
            own = rows[group == g]
            assert set(own) <= set(members[name])
            assert len(own) >= SETTINGS["min_genes"]
            others = set().union(*(set(members[o]) for o in chosen if o != name))
            assert not set(own) & others  # genes of exactly one drawn group
        if {"a", "tiny"} <= set(chosen):
            raise AssertionError("a trial with a and tiny leaves tiny 2 genes: invalid")
    # too few draws: fewer trials, never an invalid one
    few = clustering.draw_trials(members, {**SETTINGS, "max_attempts": 5}, rng)
    assert len(few) <= 5
    assert clustering.draw_trials({"a": members["a"]}, SETTINGS, rng) == []


def planted(n_genes=400, dim=24, programs=8, seed=0):
    """Genes of `programs` programs of 30 genes near their program's centre, the rest noise;
    a labels table of the programs (source planted) and of random gene sets (source random)."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n_genes, dim))
    ids = [f"G{i:04d}" for i in range(n_genes)]
    rows = []
    for p in range(programs):
        member = np.arange(p * 30, (p + 1) * 30)
        vectors[member] = rng.normal(scale=3, size=dim) + 0.8 * rng.normal(size=(30, dim))
        rows += [("planted", f"p{p}", f"p{p}", ids[g]) for g in member]
        rows += [("random", f"r{p}", f"r{p}", ids[g]) for g in rng.choice(n_genes, 30, False)]
    labels = pd.DataFrame(rows, columns=["source", "term_id", "term_name", "gene_id"])
    genes = pd.DataFrame({"gene_id": ids})
    return genes, vectors.astype(np.float32), labels


def test_planted_programs_cluster_far_above_the_shuffled_null():
    genes, vectors, labels = planted()
    # a second embedding of the same genes in another order: the trials are the same genes
    order = np.random.default_rng(5).permutation(len(genes))
    embeddings = {"model": (genes, vectors),
                  "reordered": (genes.iloc[order].reset_index(drop=True), vectors[order])}  # fmt: skip
    trials = clustering.benchmark(embeddings, labels, SETTINGS, seed=3)
    assert set(trials["source"]) == {"planted", "random"}
    assert len(trials) == 2 * 2 * 2 * SETTINGS["trials"]  # sources × embeddings × null
    real = trials[~trials["null"]]
    # the same trials for every embedding: the same labels and gene counts
    by = real.pivot_table(index=["source", "trial"], columns="embedding", values="genes")
    assert (by["model"] == by["reordered"]).all()
    summary = clustering.summary(trials).set_index(["source", "embedding"])
    planted_row = summary.loc[("planted", "model")]
    assert planted_row["median_ari"] >= 0.9 and planted_row["null_median_ari"] <= 0.05
    assert planted_row["mannwhitney_p_ari"] < 1e-6 and planted_row["wilcoxon_p_ari"] < 1e-6
    # random gene sets carry no structure: the embedding is at its null
    assert summary.loc[("random", "model"), "median_ari"] < 0.1
    # deterministic
    again = clustering.benchmark(embeddings, labels, SETTINGS, seed=3)
    pd.testing.assert_frame_equal(trials, again)


def test_every_row_is_scikit_learns_scores_of_its_clustering(monkeypatch):
    """The benchmark's rows against scikit-learn's metrics computed directly on the clusters
    each KMeans call returned (recorded) and the trial's groups (its genes' labels)."""
    genes, vectors, labels = planted()
    found = []
    kmeans = clustering.kmeans

    def recording(x, k, n_init, rng):
        labels_, inertia = kmeans(x, k, n_init, rng)
        found.append(labels_)
        return labels_, inertia

    monkeypatch.setattr(clustering, "kmeans", recording)
    settings = {**SETTINGS, "trials": 10}
    trials = clustering.benchmark({"m": (genes, vectors)}, labels, settings, seed=1)
    members = labels.groupby("term_id")["gene_id"].apply(set)
    assert len(found) == len(trials)
    for row, clusters in zip(trials.itertuples(), found, strict=True):
        chosen = row.labels.split()
        group = []
        for term in chosen:
            others = set().union(*(members[o] for o in chosen if o != term))
            group += [term] * len(members[term] - others)
        # the rows hold genes group by group, in the order the labels were drawn
        assert len(group) == len(clusters) == row.genes
        assert row.ari == pytest.approx(metrics.adjusted_rand_score(group, clusters), abs=1e-12)
        assert row.nmi == pytest.approx(metrics.normalized_mutual_info_score(group, clusters),
                                        abs=1e-12)  # fmt: skip
        assert row.fowlkes_mallows == pytest.approx(
            metrics.fowlkes_mallows_score(group, clusters), abs=1e-12
        )


def test_no_label_in_range_is_an_error():
    genes, vectors, labels = planted()
    with pytest.raises(GexnetError, match="no label of 4 to 10 genes"):
        clustering.benchmark({"m": (genes, vectors)}, labels, {**SETTINGS, "max_genes": 10}, 0)
    with pytest.raises(GexnetError, match=r"clustering\.sources"):
        clustering.benchmark({"m": (genes, vectors)}, labels, {**SETTINGS, "sources": ["GO"]}, 0)
