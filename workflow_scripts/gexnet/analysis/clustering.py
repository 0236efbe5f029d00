"""The clustering benchmark of GeneRAIN's evaluation: do an embedding's vectors group genes the
way a label source does?

Per trial: `groups` labels of one source drawn at random; genes in more than one of them left
out; the trial counts when every group keeps at least `min_genes` genes (else it is drawn again,
up to `max_attempts` draws in all). KMeans with as many clusters as groups (k-means++ starts,
the best of `n_init` by inertia) clusters the genes' vectors, and the clusters are scored against
the groups: adjusted Rand index, normalized mutual information (arithmetic normalisation) and the
Fowlkes–Mallows index, each as scikit-learn defines it. The null is the same trial on the
embedding's vectors shuffled across genes. Every embedding gets the same trials, drawn on the
genes they all have, so their scores pair up.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from gexnet.errors import GexnetError

log = logging.getLogger(__name__)

METRICS = ("ari", "nmi", "fowlkes_mallows")


# --- scores of a clustering against the true groups (scikit-learn's definitions) --------------


def contingency(truth: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Counts of genes per (true group, cluster)."""
    _, t = np.unique(truth, return_inverse=True)
    _, f = np.unique(found, return_inverse=True)
    table = np.zeros((t.max() + 1, f.max() + 1), np.int64)
    np.add.at(table, (t, f), 1)
    return table


def _pairs(n: np.ndarray) -> float:
    return float((n * (n - 1) // 2).sum())


def adjusted_rand(truth: np.ndarray, found: np.ndarray) -> float:
    table = contingency(truth, found)
    index = _pairs(table)
    rows, columns = _pairs(table.sum(1)), _pairs(table.sum(0))
    expected = rows * columns / _pairs(np.array([table.sum()]))
    top = (rows + columns) / 2
    if top == expected:  # both partitions trivial (one group, or every gene alone)
        return 1.0
    return (index - expected) / (top - expected)


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def normalized_mutual_info(truth: np.ndarray, found: np.ndarray) -> float:
    table = contingency(truth, found)
    if table.shape[0] == table.shape[1] == 1:
        return 1.0
    n = table.sum()
    a, b = table.sum(1), table.sum(0)
    i, j = np.nonzero(table)
    nij = table[i, j]
    mi = float((nij / n * (np.log(nij) + np.log(n) - np.log(a[i]) - np.log(b[j]))).sum())
    mean = (_entropy(a) + _entropy(b)) / 2
    return max(mi, 0.0) / max(mean, np.finfo(float).eps)


def fowlkes_mallows(truth: np.ndarray, found: np.ndarray) -> float:
    table = contingency(truth, found)
    n = table.sum()
    tk = float((table**2).sum() - n)
    pk = float((table.sum(1) ** 2).sum() - n)
    qk = float((table.sum(0) ** 2).sum() - n)
    return float(np.sqrt(tk / pk) * np.sqrt(tk / qk)) if tk else 0.0


def scores(truth: np.ndarray, found: np.ndarray) -> dict[str, float]:
    return {"ari": adjusted_rand(truth, found), "nmi": normalized_mutual_info(truth, found),
            "fowlkes_mallows": fowlkes_mallows(truth, found)}  # fmt: skip


# --- KMeans: every start at once --------------------------------------------------------------


def kmeans(x: np.ndarray, k: int, n_init: int, rng: np.random.Generator, max_iter: int = 300,
           tol: float = 1e-4) -> tuple[np.ndarray, float]:  # fmt: skip
    """Lloyd's KMeans from `n_init` k-means++ starts run side by side; the labels and inertia of
    the best. `tol` is scikit-learn's: the centres' movement relative to the data's variance."""
    x = np.asarray(x, np.float64)
    n = len(x)
    if n < k:
        raise GexnetError(f"KMeans: {n} points for {k} clusters")
    sq = (x**2).sum(1)
    threshold = tol * x.var(0).sum()

    def distances(centres):  # starts × points × clusters, squared
        d = sq[None, :, None] - 2 * (x @ centres.transpose(0, 2, 1))
        return np.maximum(d + (centres**2).sum(2)[:, None, :], 0)

    # greedy k-means++ (as scikit-learn's): the first centre at random; each next one the best
    # of 2 + ln k candidates drawn by squared distance to the centres so far
    first = rng.integers(n, size=n_init)
    centres = np.empty((n_init, k, x.shape[1]))
    centres[:, 0] = x[first]
    closest = np.maximum(sq[None] - 2 * x[first] @ x.T + sq[first][:, None], 0)
    tries = 2 + int(np.log(k))
    for c in range(1, k):
        weights = np.cumsum(closest, axis=1)  # starts × points
        u = rng.random((n_init, tries)) * weights[:, -1:]
        pick = np.minimum((weights[:, None, :] < u[..., None]).sum(2), n - 1)  # starts × tries
        d = np.maximum(sq[pick][..., None] - 2 * x[pick] @ x.T + sq[None, None], 0)
        d = np.minimum(d, closest[:, None, :])
        best = d.sum(2).argmin(1)
        centres[:, c] = x[pick[np.arange(n_init), best]]
        closest = d[np.arange(n_init), best]
    members = np.eye(k, dtype=np.float64)
    for _ in range(max_iter):
        labels = distances(centres).argmin(2)  # starts × points
        onehot = members[labels]  # starts × points × clusters
        counts = onehot.sum(1)  # starts × clusters
        sums = onehot.transpose(0, 2, 1) @ x  # starts × clusters × dimensions
        moved = np.where(counts[..., None] > 0, sums / np.maximum(counts, 1)[..., None], centres)
        shift = ((moved - centres) ** 2).sum((1, 2))
        centres = moved
        if (shift <= threshold).all():
            break
    d = distances(centres)
    labels = d.argmin(2)
    inertia = np.take_along_axis(d, labels[..., None], 2)[..., 0].sum(1)
    best = int(np.argmin(inertia))
    return labels[best], float(inertia[best])


# --- trials -----------------------------------------------------------------------------------


def draw_trials(members: dict[str, np.ndarray], settings: dict, rng: np.random.Generator
                ) -> list[tuple[list[str], np.ndarray, np.ndarray]]:  # fmt: skip
    """Trials of one source: (the labels drawn, the genes' rows, each gene's group), until
    `trials` count or `max_attempts` draws are spent. `members`: label -> gene rows."""
    names = sorted(members)
    per_trial = settings["groups"]
    if len(names) < per_trial:
        return []
    trials = []
    for _ in range(settings["max_attempts"]):
        if len(trials) == settings["trials"]:
            break
        chosen = sorted(rng.choice(len(names), per_trial, replace=False))
        rows = np.concatenate([members[names[c]] for c in chosen])
        group = np.repeat(np.arange(per_trial), [len(members[names[c]]) for c in chosen])
        unique, count = np.unique(rows, return_counts=True)
        once = np.isin(rows, unique[count == 1])  # genes of exactly one chosen group
        rows, group = rows[once], group[once]
        if np.bincount(group, minlength=per_trial).min() >= settings["min_genes"]:
            trials.append(([names[c] for c in chosen], rows, group))
    return trials


def label_members(labels: pd.DataFrame, genes: pd.Index, settings: dict
                  ) -> dict[str, dict[str, np.ndarray]]:  # fmt: skip
    """Per source, label -> rows of its genes among `genes` (labels of min_genes to max_genes
    genes there; settings.sources picks the sources)."""
    chosen = settings["sources"]
    if chosen:
        unknown = set(chosen) - set(labels["source"])
        if unknown:
            raise GexnetError(f"clustering.sources: {sorted(unknown)} not in the labels table")
        labels = labels[labels["source"].isin(chosen)]
    row = pd.Series(np.arange(len(genes)), index=genes)
    labels = labels[labels["gene_id"].isin(genes)].drop_duplicates(["source", "term_id", "gene_id"])
    out = {}
    for (source, term), part in labels.groupby(["source", "term_id"], sort=True):
        if settings["min_genes"] <= len(part) <= settings["max_genes"]:
            out.setdefault(source, {})[str(term)] = row[part["gene_id"]].to_numpy()
    return out


def benchmark(embeddings: dict[str, tuple[pd.DataFrame, np.ndarray]], labels: pd.DataFrame,
              settings: dict, seed: int) -> pd.DataFrame:  # fmt: skip
    """The benchmark of every embedding (name -> genes table, vectors) on the same trials: one
    row per source, trial, embedding and null (False: its vectors; True: shuffled), with the
    three scores and the labels of the trial."""
    if not embeddings:
        raise GexnetError("clustering: no embedding to score")
    common = None
    for genes, _ in embeddings.values():
        ids = pd.Index(genes["gene_id"])
        common = ids if common is None else common.intersection(ids, sort=False)
    common = pd.Index(sorted(common))
    sources = label_members(labels, common, settings)
    if not sources:
        raise GexnetError(
            f"clustering: no label of {settings['min_genes']} to {settings['max_genes']} genes "
            f"among the {len(common):,} genes every embedding has"
        )
    rows = []
    for s, (source, members) in enumerate(sorted(sources.items())):
        trials = draw_trials(members, settings, np.random.default_rng([seed, s]))
        log.info("%s: %d trials of %d labels", source, len(trials), len(members))
        if len(trials) < settings["trials"]:
            log.warning("%s: %d valid trials of %d asked (%d draws)", source, len(trials),
                        settings["trials"], settings["max_attempts"])  # fmt: skip
        for e, (name, (genes, vectors)) in enumerate(embeddings.items()):
            at = pd.Index(genes["gene_id"]).get_indexer(common)
            for t, (chosen, members_rows, group) in enumerate(trials):
                rng = np.random.default_rng([seed, s, e, t])
                shuffled = rng.permutation(len(vectors))[at[members_rows]]
                for null, index in ((False, at[members_rows]), (True, shuffled)):
                    found, _ = kmeans(vectors[index], settings["groups"], settings["n_init"], rng)
                    rows.append({"source": source, "trial": t, "embedding": name, "null": null,
                                 **scores(group, found), "genes": len(group),
                                 "labels": " ".join(chosen)})  # fmt: skip
    return pd.DataFrame(rows)


def summary(trials: pd.DataFrame) -> pd.DataFrame:
    """Per source and embedding: trials, the median of each score on its vectors and on the
    shuffled ones, and one-sided tests that its scores exceed the null's (Mann–Whitney U; the
    Wilcoxon signed-rank test on the trials paired)."""
    from scipy.stats import mannwhitneyu, wilcoxon

    out = []
    for (source, name), part in trials.groupby(["source", "embedding"], sort=False):
        real = part[~part["null"]].sort_values("trial")
        null = part[part["null"]].sort_values("trial")
        row = {"source": source, "embedding": name, "trials": len(real)}
        for metric in METRICS:
            a, b = real[metric].to_numpy(), null[metric].to_numpy()
            row[f"median_{metric}"] = float(np.median(a))
            row[f"null_median_{metric}"] = float(np.median(b))
            row[f"mannwhitney_p_{metric}"] = float(mannwhitneyu(a, b, alternative="greater").pvalue)
            diff = a - b
            row[f"wilcoxon_p_{metric}"] = (
                float(wilcoxon(a, b, alternative="greater").pvalue) if (diff != 0).any() else 1.0
            )
        out.append(row)
    return pd.DataFrame(out)
