"""Aligning two species' gene embeddings and ranking true orthologs: orthogonal Procrustes,
CSLS, mutual-nearest-neighbour refinement (supervised and unsupervised), ranks in chunks.

`a` (n_a × d) and `b` (n_b × d) are the two sides' vectors (human, mouse); a pair list is two
index arrays (ia, ib) into their rows; a mapping W (d × d, orthogonal) takes a onto b: a W ≈ b.
Vectors are prepared as MUSE and VecMap do (`normalize`: unit length, centred, unit length), so
a dot product is a cosine; a zero row (a gene without a vector) stays zero and out of the mean.

CSLS (Conneau et al. 2018) corrects cosine for hubs, vectors near to everything:
CSLS(x, y) = 2 cos(x, y) − r_b(x) − r_a(y), where r_b(x) is the mean cosine of x to its k
nearest rows of b and r_a(y) that of y to its k nearest rows of a. The rank of a true partner is
1 + the number of candidates scoring strictly higher (ties do not count against it): higher by
more than `TIE` (4e-6), since float32 products of unit vectors carry rounding of ~2e-7 that
differs between matrix columns, so a duplicate of the partner would otherwise outrank it by
noise. Every score matrix is computed a chunk of query rows at a time (memory chunk × n, never
n × n). `limit` restricts an induced dictionary to pairs within the first `limit` rows of both
sides, as MUSE's dico_max_rank does: nearest neighbours and radii are still taken among all rows.

The supervised fit (MUSE's refinement) starts from Procrustes on the training dictionary, then
re-induces the dictionary from mutual nearest neighbours under CSLS and refits, `refinements`
times, keeping the mapping that ranks the validation pairs best (mean reciprocal rank, CSLS,
a → b: MUSE's rank-1 rate says nothing where few genes reach rank 1, as on small models). The
unsupervised fit has no dictionary: following VecMap (Artetxe et al. 2018), each gene is
described by its sorted similarity profile within its own species (the rows of (X Xᵀ)^½ sorted,
sampled at `init_size` quantiles so that both species' profiles have one length), genes are
matched across species on those profiles (mutual nearest neighbours under CSLS) to give an
initial dictionary, and the same refinement follows, the mapping chosen by MUSE's unsupervised
criterion (mean cosine of each a row to its CSLS-nearest row of b). Genes are not ordered by
frequency as words are, so VecMap's "first init_size words" has no meaning here: every gene
gets a profile, and `init_size` is the profile's length, not a count of genes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gexnet.errors import GexnetError

Pairs = tuple[np.ndarray, np.ndarray]
MEASURES = ("cosine", "csls")
SPLITS = ("train", "validation", "held_out")
CHUNK = 4096
TIE = 4e-6  # score differences within float32 rounding of a product of unit vectors are ties


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Unit length, mean-centred, unit length again (float32 copy; zero rows stay zero)."""
    x = np.array(vectors, dtype=np.float32, copy=True)
    present = np.linalg.norm(x, axis=1) > 0  # zero rows: no vector, neither moved nor counted
    for step in ("unit", "centre", "unit"):
        if step == "centre":
            if present.any():
                x[present] -= x[present].mean(axis=0, keepdims=True)
        else:
            norms = np.linalg.norm(x, axis=1, keepdims=True)
            x /= np.where(norms > 0, norms, 1)
    return x


def procrustes(a_pairs: np.ndarray, b_pairs: np.ndarray) -> np.ndarray:
    """The orthogonal W minimising ||a_pairs W − b_pairs||_F: U Vᵀ from the SVD of
    a_pairsᵀ b_pairs."""
    if a_pairs.shape != b_pairs.shape:
        raise GexnetError(
            f"Procrustes needs matching pairs, not {a_pairs.shape} and {b_pairs.shape}"
        )
    u, _, vt = np.linalg.svd(a_pairs.astype(np.float64).T @ b_pairs.astype(np.float64))
    return (u @ vt).astype(np.float32)


def _check(a: np.ndarray, b: np.ndarray) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise GexnetError(f"the two sides' vectors differ in width: {a.shape} and {b.shape}")


def _check_pairs(a: np.ndarray, b: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> None:
    if len(ia) != len(ib):
        raise GexnetError(f"pair lists of different lengths: {len(ia)} and {len(ib)}")
    for name, index, n in (("a", ia, len(a)), ("b", ib, len(b))):
        if len(index) and (index.min() < 0 or index.max() >= n):
            raise GexnetError(f"pair indices out of range for side {name} of {n} rows")


def neighbour_radii(
    queries: np.ndarray, targets: np.ndarray, k: int = 10, chunk: int = CHUNK
) -> np.ndarray:
    """Per query row, the mean of its k largest cosines among the target rows."""
    import torch  # top-k: 3x numpy's partition; imported here so align's users need not load it

    _check(queries, targets)
    k = min(k, len(targets))
    out = np.empty(len(queries), np.float32)
    for start in range(0, len(queries), chunk):
        scores = torch.from_numpy(queries[start : start + chunk] @ targets.T)
        # torch's top-k: three times numpy's partition on one core, most of an alignment's time
        top = torch.topk(scores, k, dim=1, sorted=False).values
        out[start : start + chunk] = top.mean(dim=1).numpy()
    return out


def _ranks(queries, targets, true, q_radius, t_radius, chunk) -> np.ndarray:
    """1 + the number of targets scoring strictly above each query's true target (cosine when
    the radii are None, else CSLS)."""
    ranks = np.empty(len(queries), np.int64)
    for start in range(0, len(queries), chunk):
        scores = _scores(queries[start : start + chunk], targets, q_radius, t_radius, start)
        own = scores[np.arange(len(scores)), true[start : start + chunk]]
        ranks[start : start + chunk] = 1 + (scores > own[:, None] + TIE).sum(axis=1)
    return ranks


def _scores(queries, targets, q_radius, t_radius, start) -> np.ndarray:
    """One chunk's score matrix: cosine, or CSLS when the radii are given (in place: one
    chunk × n matrix in memory, not three)."""
    scores = queries @ targets.T
    if q_radius is not None:
        scores *= 2
        scores -= q_radius[start : start + len(queries), None]
        scores -= t_radius[None, :]
    return scores


def ortholog_ranks(
    a: np.ndarray, b: np.ndarray, ia: np.ndarray, ib: np.ndarray, measure: str = "cosine",
    k: int = 10, chunk: int = CHUNK,
) -> dict[str, np.ndarray]:  # fmt: skip
    """For pairs (ia, ib) of mapped, normalized vectors: each pair's cosine ("similarity"), the
    rank of b[ib] among all rows of b for the query a[ia] ("rank_ab") and of a[ia] among all
    rows of a for b[ib] ("rank_ba"), by `measure` (cosine or csls)."""
    _check(a, b)
    ia, ib = np.asarray(ia, np.int64), np.asarray(ib, np.int64)
    _check_pairs(a, b, ia, ib)
    if measure not in MEASURES:
        raise GexnetError(f"unknown measure {measure!r} ({', '.join(MEASURES)})")
    similarity = np.einsum("ij,ij->i", a[ia], b[ib])
    radius_ab = radius_ba = None  # r_b of a's rows, r_a of b's rows
    if measure == "csls":
        radius_ab, radius_ba = neighbour_radii(a, b, k, chunk), neighbour_radii(b, a, k, chunk)
    qa, qb = (None, None) if radius_ab is None else (radius_ab[ia], radius_ba[ib])
    rank_ab = _ranks(a[ia], b, ib, qa, radius_ba, chunk)
    rank_ba = _ranks(b[ib], a, ia, qb, radius_ab, chunk)
    return {"similarity": similarity, "rank_ab": rank_ab, "rank_ba": rank_ba}


def _csls_best(queries, targets, q_radius, t_radius, chunk) -> tuple[np.ndarray, np.ndarray]:
    """Per query, its CSLS-nearest target and their cosine."""
    best = np.empty(len(queries), np.int64)
    for start in range(0, len(queries), chunk):
        scores = _scores(queries[start : start + chunk], targets, q_radius, t_radius, start)
        best[start : start + chunk] = scores.argmax(axis=1)
    cosine = np.einsum("ij,ij->i", queries, targets[best])  # recomputed: scores are CSLS now
    return best, cosine


def mutual_nn(
    a: np.ndarray, b: np.ndarray, k: int = 10, limit: int | None = None, chunk: int = CHUNK,
    radii: tuple[np.ndarray, np.ndarray] | None = None,
) -> Pairs:  # fmt: skip
    """The dictionary of mutual nearest neighbours under CSLS (a's best in b whose best in a is
    that row of a), kept where both rows are among the first `limit` of their side (None: all;
    neighbours among all rows, as MUSE); sorted by ia. `radii` (r_b of a's rows, r_a of b's
    rows), when the caller has them, are not recomputed."""
    _check(a, b)
    if radii is None:
        radii = neighbour_radii(a, b, k, chunk), neighbour_radii(b, a, k, chunk)
    radius_ab, radius_ba = radii
    n = max(len(a), len(b)) if limit is None else limit
    best_ab, _ = _csls_best(a[:n], b, radius_ab[:n], radius_ba, chunk)
    best_ba, _ = _csls_best(b[:n], a, radius_ba[:n], radius_ab, chunk)
    back = np.full(len(b), -1)  # best_ba for b's rows within the limit, -1 beyond
    back[: len(best_ba)] = best_ba
    ia = np.flatnonzero(back[best_ab] == np.arange(len(best_ab)))
    return ia, best_ab[ia]


def split_dictionary(
    n_pairs: int, held_out_fraction: float = 0.05, validation_fraction: float = 0.05, seed: int = 0
) -> np.ndarray:
    """ "train", "validation" or "held_out" per pair, by seed: round(held_out_fraction × n)
    pairs held out, and round(validation_fraction × the rest) of the others for validation."""
    held = round(held_out_fraction * n_pairs)
    validation = round(validation_fraction * (n_pairs - held))
    train = n_pairs - held - validation
    if held < 1 or validation < 1 or train < 2:
        raise GexnetError(
            f"{n_pairs} ortholog pairs are too few to split into a training dictionary (at least "
            f"2 pairs), a validation part and held-out pairs (at least 1 each): {train} / "
            f"{validation} / {held} with held_out_fraction {held_out_fraction} and "
            f"validation_fraction {validation_fraction}"
        )
    order = np.random.default_rng(seed).permutation(n_pairs)
    labels = np.full(n_pairs, "train", dtype=object)
    labels[order[:held]] = "held_out"
    labels[order[held : held + validation]] = "validation"
    return labels


@dataclass
class Alignment:
    """A fitted mapping (a @ mapping ≈ b) and its fit: per iteration, the dictionary size, the
    selection score and whether it was chosen."""

    mapping: np.ndarray
    history: pd.DataFrame


def _refine(a, b, mapping, dictionary_size, score, refinements, k, limit) -> Alignment:
    """MUSE's refinement from a first mapping: re-induce the dictionary from mutual nearest
    neighbours under CSLS, refit, `refinements` times; keep the best-scoring mapping. Each
    mapping's CSLS radii are computed once, for its score and its next dictionary alike."""
    mappings, rows = [], []
    for iteration in range(refinements + 1):
        x = a @ mapping
        radii = neighbour_radii(x, b, k), neighbour_radii(b, x, k)
        mappings.append(mapping)
        rows.append((iteration, dictionary_size, score(x, radii)))
        if iteration == refinements:
            break
        ia, ib = mutual_nn(x, b, k, limit, radii=radii)
        if len(ia) < 2:  # nothing left to fit on: stop refining here
            break
        mapping, dictionary_size = procrustes(a[ia], b[ib]), len(ia)
    history = pd.DataFrame(rows, columns=["iteration", "dictionary_size", "score"])
    chosen = int(np.nanargmax(history["score"].to_numpy())) if history["score"].notna().any() else 0
    history["chosen"] = np.arange(len(history)) == chosen
    return Alignment(mappings[chosen], history)


def fit_supervised(
    a: np.ndarray, b: np.ndarray, train: Pairs, validation: Pairs, refinements: int = 5,
    k: int = 10, limit: int | None = None,
) -> Alignment:  # fmt: skip
    """Procrustes on the training dictionary, refined; each mapping scored by the mean
    reciprocal rank (CSLS, a → b) of the validation pairs, the best kept."""
    _check(a, b)
    ta, tb = (np.asarray(x, np.int64) for x in train)
    va, vb = (np.asarray(x, np.int64) for x in validation)
    _check_pairs(a, b, ta, tb)
    _check_pairs(a, b, va, vb)
    if len(ta) < 2:
        raise GexnetError(
            f"a training dictionary of {len(ta)} pair(s) is too small to fit an alignment "
            "(at least 2)"
        )
    if len(va) == 0:
        raise GexnetError("no validation pairs to choose among the refinements")

    def score(x, radii):
        radius_ab, radius_ba = radii
        ranks = _ranks(x[va], b, vb, radius_ab[va], radius_ba, CHUNK)
        return float((1 / ranks).mean())

    return _refine(a, b, procrustes(a[ta], b[tb]), len(ta), score, refinements, k, limit)


def similarity_profiles(x: np.ndarray, width: int, chunk: int = CHUNK) -> np.ndarray:
    """Each row's sorted similarity profile within its own side: its row of (X Xᵀ)^½ sorted
    in descending order and sampled at `width` evenly spaced positions, then normalized."""
    u, s, _ = np.linalg.svd(x.astype(np.float64), full_matrices=False)
    root = (u * s).astype(np.float32)  # (X Xᵀ)^½ = U S Uᵀ: rows of root @ uᵀ
    ut = u.T.astype(np.float32)
    positions = np.linspace(0, len(x) - 1, min(width, len(x))).round().astype(np.int64)
    out = np.empty((len(x), len(positions)), np.float32)
    for start in range(0, len(x), chunk):
        rows = -np.sort(-(root[start : start + chunk] @ ut), axis=1)
        out[start : start + chunk] = rows[:, positions]
    return normalize(out)


def fit_unsupervised(
    a: np.ndarray, b: np.ndarray, refinements: int = 5, k: int = 10, init_size: int = 1000,
    limit: int | None = None,
) -> Alignment:  # fmt: skip
    """No dictionary: an initial one from matching the genes' within-species similarity
    profiles across species (VecMap), Procrustes on it, then the refinement; each mapping scored
    by the mean cosine of a's rows to their CSLS-nearest rows of b, the best kept."""
    _check(a, b)
    width = min(init_size, len(a), len(b))
    ia, ib = mutual_nn(similarity_profiles(a, width), similarity_profiles(b, width), k, limit)
    if len(ia) < 2:
        raise GexnetError(
            f"the similarity profiles matched {len(ia)} gene(s) across species: too few to "
            "start an unsupervised alignment"
        )

    def score(x, radii):  # the first `limit` rows of a, each to its CSLS-nearest of all b
        radius_ab, radius_ba = radii
        return float(_csls_best(x[:limit], b, radius_ab[:limit], radius_ba, CHUNK)[1].mean())

    return _refine(a, b, procrustes(a[ia], b[ib]), len(ia), score, refinements, k, limit)


def rates(ranks: np.ndarray) -> dict[str, float]:
    """Share of ranks at 1, within the top 10 and top 100, and the median rank."""
    ranks = np.asarray(ranks)
    if len(ranks) == 0:
        return {"rank1": np.nan, "top10": np.nan, "top100": np.nan, "median_rank": np.nan}
    return {
        "rank1": float((ranks == 1).mean()),
        "top10": float((ranks <= 10).mean()),
        "top100": float((ranks <= 100).mean()),
        "median_rank": float(np.median(ranks)),
    }


def shuffle_rows(vectors: np.ndarray, seed: int) -> np.ndarray:
    """The shuffled control: the rows dealt to genes at random (by seed), a copy."""
    return np.asarray(vectors)[np.random.default_rng(seed).permutation(len(vectors))].copy()


def dictionary_curve(
    a: np.ndarray, b: np.ndarray, train: Pairs, validation: Pairs, held_out: Pairs,
    fractions: Sequence[float] = tuple(np.round(np.arange(1, 11) / 10, 1)), refinements: int = 5,
    k: int = 10, seed: int = 0,
) -> pd.DataFrame:  # fmt: skip
    """The supervised fit on growing shares of the training dictionary (nested: one seeded
    order, growing prefixes, at least 2 pairs), scored on the held-out pairs: fraction,
    n_pairs, measure, direction (a_to_b, b_to_a), rank1, top10, top100, median_rank."""
    ta, tb = (np.asarray(x, np.int64) for x in train)
    ha, hb = (np.asarray(x, np.int64) for x in held_out)
    order = np.random.default_rng(seed).permutation(len(ta))
    rows = []
    for fraction in fractions:
        used = order[: max(2, round(fraction * len(ta)))]
        fit = fit_supervised(a, b, (ta[used], tb[used]), validation, refinements, k)
        x = a @ fit.mapping
        for measure in MEASURES:
            ranks = ortholog_ranks(x, b, ha, hb, measure, k)
            for direction, key in (("a_to_b", "rank_ab"), ("b_to_a", "rank_ba")):
                rows.append({"fraction": float(fraction), "n_pairs": len(used),
                             "measure": measure, "direction": direction,
                             **rates(ranks[key])})  # fmt: skip
    return pd.DataFrame(rows)
