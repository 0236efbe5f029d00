"""Thousands of L2-regularised logistic regressions on one shared feature matrix, with CV.

For every label l (a column of Y) this minimises, over the genes valid for it,

    F_l(w, b) = ½‖w‖² + C · Σ_{i valid} logloss(y_il, x_i·w + b)

which is scikit-learn's `LogisticRegression(C=C)` objective (lbfgs; intercept fitted, not
penalised). Genes not valid for a label are ignored entirely, as if absent.

    W, b = fit(X, Y, valid, C=1.0)                      # W: d × L, b: L
    scores = cross_validate(X, Y, valid, fold_of(len(X), 5, seed=0), C=1.0)
    auroc(scores, Y, valid), auprc(scores, Y, valid)    # per label (ranking_metrics: both)

Algorithm: L-BFGS over a structured base Hessian, batched over a chunk of labels at once
(labels × genes arrays), every step measured along its line.

- Labels with identical valid columns (all labels of one source, the common case) share one
  geometry per training set: its genes, their mean μ and the eigenvectors V of the centred Gram
  (X−μ)ᵀ(X−μ) = V Λ Vᵀ. The solver works in Z = [(X−μ)V, 1] (the ones column carries the
  intercept), where ZᵀZ = diag(Λ, n). Labels with a valid set of their own are pooled into
  chunks over the union of their genes; a label's other genes sit at margin −∞, where loss,
  gradient and curvature are exactly zero, so one code path serves both.
- The Hessian is H = C·Zᵀ diag(s) Z + diag(1…1, 0), s = p(1 − p). The base Hessian P keeps s
  exactly on each label's 64 genes of largest curvature (at most a 32nd of the genes: its
  positives and the negatives near the boundary, which dominate H for rare labels) and their
  mean s̄ elsewhere:
  P = diag(C·s̄·Λ + 1, C·s̄·n) + BᵀB, inverted by Woodbury through a 64 × 64 Cholesky factor
  per label, rebuilt every `BASE_EVERY` iterations. At the start (w = 0, b = the log-odds of
  the prevalence) s is uniform and P is exactly H: the first step is Newton's. L-BFGS adds the
  curvature P misses from the last 5 (step, gradient change) pairs.
- An iteration costs two products with Z, the gradient and the step's change of the margins;
  everything else is a pass over the genes or work in d dimensions. (Newton–CG, which this
  replaced, spent two more per conjugate-gradient iteration, about 62 per fit against 22 here
  on the benchmark data; its speed leaned on bfloat16 products, which only some CPUs have.)
- Step length: one trial at t = 1 gives φ'(1) and φ''(1) of φ(t) = F(θ + t·δ); t = 1 where
  |φ'(1)| ≤ |φ'(0)|/10. A step that stopped short is extended by Newton's step on φ' from 1
  (quasi-Newton steps on the logistic loss often fall short: where it is nearly exponential,
  a unit step moves a margin by about one); one that went past the minimum is cut to the root
  of the quadratic through φ'(0), φ'(1) and φ''(1). The next gradient gives φ'(t) for free: a
  step still well past the minimum (2% on the benchmark data) is checked, and taken back where
  F did not fall.
- Margins x·w + b are kept per label and gene; the positives, a few per cent of the genes,
  as indices, so that the residual σ(m) − y and the line's terms touch them alone. Where F is
  compared, a positive's loss is softplus(−m), which loses nothing where m is large.
- Chunks (× folds) run on one worker thread per core, single-threaded in each. The products
  go through numpy's BLAS, which measured faster than torch's for these shapes (OpenBLAS
  against MKL on AMD EPYC, the step's product most), the rest through torch.
- Stopping rule, per label: ‖∇F(w, b)‖₂ ≤ tol · ‖∇F(0, b₀)‖₂ (the gradient at the start).
  scikit-learn's default lbfgs fits end at 6e-3 to 1e-1 by this measure on 16 labels of the
  benchmark data; the default tol = 1e-3 is tighter than all of them. Float32 carries the
  gradient to about 1e-6 relative; for tol < 1e-6 the solver works in float64 throughout.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import functools
import itertools
import math
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import threadpoolctl
import torch
from torch.nn.functional import softplus

F32, F64 = torch.float32, torch.float64
NEAR = 0.1  # a step length is taken where |φ'(t)| ≤ NEAR·|φ'(0)|
MAX_STEP = 10.0  # the longest extension of a quasi-Newton step from its one trial
BASE_EVERY = 4  # iterations between rebuilds of the base Hessian (measured: 1–3 cost more
#                 time for about as many iterations, 5 and more add iterations)
FLOAT32_TOL = 1e-6  # below this tol, float32 rounding of the gradient would decide: use float64
CHUNK_BYTES = 24 * 2**20  # one genes × labels array; glibc maps blocks over 32 MiB afresh each
#                           time, and the page faults cost more than the arithmetic
Progress = Callable[[int, int], None]


# --- folds ----------------------------------------------------------------------------------


def fold_of(n_genes: int, folds: int, seed: int) -> np.ndarray:
    """Fold index per gene: a seeded permutation cut into `folds` near-equal parts."""
    if not 2 <= folds <= min(n_genes, 32767):
        raise ValueError(f"folds must be in 2..{min(n_genes, 32767)}, got {folds}")
    perm = np.random.default_rng(seed).permutation(n_genes)
    out = np.empty(n_genes, dtype=np.int8 if folds <= 127 else np.int16)
    out[perm] = np.arange(n_genes) * folds // n_genes  # parts of ⌊n/folds⌋ or ⌈n/folds⌉ genes
    return out


# --- fitting --------------------------------------------------------------------------------


def fit(
    X: np.ndarray,
    Y: np.ndarray,
    valid: np.ndarray | None = None,
    C: float = 1.0,
    tol: float = 1e-3,
    max_iter: int = 100,
    label_chunk: int | None = None,
    progress: Progress | bool | None = None,
    threads: int | None = None,
    cost: dict | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One logistic regression per label: W (d × L float32), b (L float32).

    X: genes × d features; Y: genes × L bool, the positives; valid: genes × L bool, the genes
    that count for each label (None: all). A label stops when its gradient norm is ≤ tol × its
    norm at the start; its iterations are capped at max_iter (a RuntimeWarning counts the
    labels that hit the cap). Labels with no positive or no negative among their valid genes get
    NaN. label_chunk: labels solved together (default: as many as keep one genes × labels
    float32 array near 24 MiB); memory is a few such arrays per thread. progress: a callable
    (labels done, labels), or True for a tqdm bar. threads: chunks solved at once, each on one
    core (default: all cores this process may use). cost: a dict which, where given, gets what
    the fits took (a `Cost`) under the key None.
    """
    X, Y, valid = _check(X, Y, valid)
    W = np.full((X.shape[1], Y.shape[1]), np.nan, dtype=np.float32)
    b = np.full(Y.shape[1], np.nan, dtype=np.float32)
    groups = _groups(valid, label_chunk)
    tasks = [(i, part) for i, group in enumerate(groups) for part in group.chunks()]
    shared = _Shared(key for i, _ in tasks for key in (("labels", i), ("geometry", i)))
    solver = _Solver(C, tol, max_iter)

    def work(task) -> int:
        i, part = task
        group, chunk = groups[i], groups[i].labels[part]
        Yg, Vg = shared.get(("labels", i), lambda: group.label_major(Y, valid))
        geo = shared.get(("geometry", i), lambda: solver.geometry(X, group.rows))
        tally = None if cost is None else cost.setdefault(None, Cost())
        W[:, chunk], b[chunk] = solver.solve(geo, Yg[part], Vg[part], group.shared, tally)
        shared.release(("labels", i), ("geometry", i))
        return len(chunk)

    _run(tasks, work, threads, progress, Y.shape[1])
    solver.warn()
    return W, b


def cross_validate(
    X: np.ndarray,
    Y: np.ndarray,
    valid: np.ndarray | None,
    folds: np.ndarray,
    C: float = 1.0,
    tol: float = 1e-3,
    max_iter: int = 100,
    label_chunk: int | None = None,
    progress: Progress | bool | None = None,
    threads: int | None = None,
    cost: dict | None = None,
) -> np.ndarray:
    """Out-of-fold decision values x·w + b (genes × L float32; NaN where not valid).

    Each gene is scored by its label's model fitted on the valid genes of the other folds
    (`folds`: a fold index per gene, as from `fold_of`, shared by all labels). A training set
    with no positive or no negative of a label gives NaN scores to that label's genes in the
    held-out fold. Other arguments as for `fit`; progress counts label × fold fits, and cost
    gets a `Cost` per fold.
    """
    X, Y, valid = _check(X, Y, valid)
    folds = np.asarray(folds)
    if folds.shape != (X.shape[0],):
        raise ValueError(f"folds has shape {folds.shape}, expected ({X.shape[0]},)")
    scores = np.full(Y.shape, np.nan, dtype=np.float32)
    groups = _groups(valid, label_chunk)
    tasks = [
        (i, f, part) for i, g in enumerate(groups) for f in np.unique(folds) for part in g.chunks()
    ]
    shared = _Shared(key for i, f, _ in tasks for key in (("labels", i), ("geometry", i, f)))
    solver = _Solver(C, tol, max_iter)

    def work(task) -> int:
        i, f, part = task
        group, chunk = groups[i], groups[i].labels[part]
        train = np.flatnonzero(folds[group.rows] != f)  # positions in group.rows
        test = group.rows[folds[group.rows] == f]
        Yg, Vg = shared.get(("labels", i), lambda: group.label_major(Y, valid))
        geo = shared.get(("geometry", i, f), lambda: solver.geometry(X, group.rows[train]))
        tally = None if cost is None else cost.setdefault(int(f), Cost())
        Wc, bc = solver.solve(geo, Yg[part][:, train], Vg[part][:, train], group.shared, tally)
        held_out = torch.from_numpy(X[test]) @ torch.from_numpy(Wc) + torch.from_numpy(bc)
        scores[np.ix_(test, chunk)] = held_out.numpy()
        shared.release(("labels", i), ("geometry", i, f))
        return len(chunk)

    _run(tasks, work, threads, progress, Y.shape[1] * len(np.unique(folds)))
    scores[~valid] = np.nan
    solver.warn()
    return scores


@dataclass
class Cost:
    """What a set of fits took: label fits, iterations summed over them, and passes, a label's
    row through one product with its training genes (genes × d+1); gene_passes weighs each by
    those genes. passes / fits is the number of full products (all labels × all training
    genes) the fits cost."""

    fits: int = 0
    iterations: int = 0
    passes: int = 0
    gene_passes: int = 0

    @property
    def products(self) -> float:
        return self.passes / self.fits if self.fits else math.nan


# --- ranking metrics ------------------------------------------------------------------------


def auroc(scores: np.ndarray, Y: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Area under the ROC curve per label, as sklearn's roc_auc_score (tied scores averaged).

    Only valid genes count. NaN where a label has no positive or no negative among them, or
    where one of them has no score (NaN).
    """
    return ranking_metrics(scores, Y, valid)[0]


def auprc(scores: np.ndarray, Y: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Average precision per label, as sklearn's average_precision_score.

    Each positive contributes the precision among the genes scoring at least as high as it (the
    threshold at which it is first counted, ties included). NaN as for `auroc`.
    """
    return ranking_metrics(scores, Y, valid)[1]


def ranking_metrics(
    scores: np.ndarray, Y: np.ndarray, valid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """`auroc` and `auprc` per label from one sort of each label's scores."""
    auc, ap = (np.full(np.shape(scores)[1], np.nan) for _ in range(2))
    for c in _positive_counts(scores, Y, valid):
        undefined = (c.n_pos == 0) | (c.n_pos == c.n_valid) | c.unscored
        # Mann–Whitney U: each positive outranks the lower scores and half of its other ties;
        # the pairs of positives among those, n_pos·(n_pos − 1)/2, do not count.
        u = torch.where(c.is_pos, c.below + (c.tied - 1) / 2, 0.0).sum(dim=1)
        u -= c.n_pos * (c.n_pos - 1) / 2
        a = u / (c.n_pos * (c.n_valid - c.n_pos))
        a[undefined] = math.nan
        auc[c.cols] = a.numpy()
        precision = c.pos_at_or_above / (c.n_valid[:, None] - c.below)
        p = torch.where(c.is_pos, precision, 0.0).sum(dim=1) / c.n_pos
        p[undefined] = math.nan
        ap[c.cols] = p.numpy()
    return auc, ap


@dataclass
class _Counts:
    """Per label (rows) and positive (columns, padded; is_pos marks real ones): how many valid
    genes score below it and tie with it, and how many positives score at least as high."""

    cols: np.ndarray
    is_pos: torch.Tensor
    below: torch.Tensor
    tied: torch.Tensor
    pos_at_or_above: torch.Tensor
    n_pos: torch.Tensor
    n_valid: torch.Tensor
    unscored: torch.Tensor


def _positive_counts(scores, Y, valid, chunk: int = 512) -> Iterator[_Counts]:
    """Counts by binary search of each positive's score among its label's sorted valid scores:
    one sort per label, whatever the ties. Chunks of labels on every core, in order."""
    scores = np.asarray(scores)
    if scores.dtype not in (np.float32, np.float64):
        scores = scores.astype(np.float64)
    Y = np.asarray(Y, dtype=bool)
    valid = np.ones(Y.shape, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if not scores.shape == Y.shape == valid.shape:
        raise ValueError(f"scores {scores.shape}, Y {Y.shape} and valid {valid.shape} differ")
    starts = range(0, scores.shape[1], chunk)
    count = functools.partial(_chunk_counts, scores, Y, valid, chunk)
    with _one_thread_each(), concurrent.futures.ThreadPoolExecutor(_cores()) as pool:
        yield from pool.map(count, starts)


def _chunk_counts(scores, Y, valid, chunk: int, start: int) -> _Counts:
    """The counts of the chunk of labels from `start`."""
    cols = np.arange(start, min(start + chunk, scores.shape[1]))
    # Label-major copies (torch transposes in blocks, numpy column by column).
    ok, s, y = (
        torch.from_numpy(a[:, start : cols[-1] + 1]).T.contiguous() for a in (valid, scores, Y)
    )
    y = y & ok  # (not in place: for one label, .T.contiguous() is the caller's array)
    unscored = (torch.isnan(s) & ok).any(dim=1)
    n_valid, n_pos = (torch.from_numpy(np.count_nonzero(a.numpy(), axis=1)) for a in (ok, y))
    # Invalid genes become +∞, after every score; counts of ties are capped by n_valid.
    # (numpy's sort is vectorised for floats, and many times faster than torch's on CPU.)
    ranked = torch.from_numpy(np.sort(torch.where(ok, s, math.inf).numpy(), axis=1))
    # The positives' scores, packed to the left of a labels × max-positives array.
    width = max(int(n_pos.max()), 1)
    row, col = y.nonzero(as_tuple=True)  # by label, then gene
    slot = torch.arange(len(row)) - (torch.cumsum(n_pos, 0) - n_pos)[row]
    pos = torch.full((len(cols), width), math.inf, dtype=s.dtype)
    pos[row, slot] = s[row, col]
    is_pos = torch.arange(width) < n_pos[:, None]
    below = torch.searchsorted(ranked, pos, side="left")
    upto = torch.minimum(torch.searchsorted(ranked, pos, side="right"), n_valid[:, None])
    pos_sorted = torch.sort(pos, dim=1).values
    at_or_above = n_pos[:, None] - torch.searchsorted(pos_sorted, pos, side="left")
    return _Counts(
        cols=cols,
        is_pos=is_pos,
        below=below.to(F64),
        tied=(upto - below).to(F64),
        pos_at_or_above=at_or_above.to(F64),
        n_pos=n_pos.to(F64),
        n_valid=n_valid.to(F64),
        unscored=unscored,
    )


# --- input, chunks, threads -----------------------------------------------------------------


def _check(X, Y, valid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = np.ascontiguousarray(X, dtype=np.float32)
    Y = np.asarray(Y, dtype=bool)
    if X.ndim != 2 or Y.ndim != 2 or Y.shape[0] != X.shape[0]:
        raise ValueError(f"X {X.shape} and Y {Y.shape} must be genes × d and genes × labels")
    valid = np.ones(Y.shape, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if valid.shape != Y.shape:
        raise ValueError(f"valid has shape {valid.shape}, expected {Y.shape}")
    if not np.isfinite(X[valid.any(axis=1)]).all():
        raise ValueError("X has non-finite values in genes that are valid for some label")
    return X, Y & valid, valid


@dataclass
class _Group:
    labels: np.ndarray  # labels that share a geometry per training set
    rows: np.ndarray  # the genes valid for any of them
    shared: bool  # all have the same valid genes
    label_chunk: int | None

    def chunks(self) -> list[slice]:
        """Runs of labels solved together (positions in `labels`)."""
        size = self.label_chunk or max(32, min(1024, CHUNK_BYTES // (4 * max(len(self.rows), 1))))
        n = math.ceil(len(self.labels) / size)
        bounds = np.linspace(0, len(self.labels), n + 1).astype(int)  # near-equal runs
        return [slice(a, b) for a, b in itertools.pairwise(bounds)]

    def label_major(self, Y: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Y and valid of the group, labels × rows: chunks of labels are contiguous rows."""
        sub = np.ix_(self.rows, self.labels)
        return np.ascontiguousarray(Y[sub].T), np.ascontiguousarray(valid[sub].T)


def _groups(valid: np.ndarray, label_chunk: int | None) -> list[_Group]:
    """Labels with identical valid columns together; small groups pooled into mixed chunks."""
    if label_chunk is not None and label_chunk < 1:
        raise ValueError(f"label_chunk must be ≥ 1, got {label_chunk}")
    same: dict[bytes, list[int]] = {}
    for j, key in enumerate(np.packbits(valid.T, axis=1)):
        same.setdefault(key.tobytes(), []).append(j)
    # A group too small to fill a matmul costs about as much as a bigger one: pool those.
    pool_below = max(2, (label_chunk or 256) // 8)
    groups, pooled = [], []
    for labels in same.values():
        if len(labels) >= pool_below:
            groups.append((np.array(labels), True))
        else:
            pooled.extend(labels)
    step = label_chunk or 256
    groups += [(np.array(pooled[i : i + step]), False) for i in range(0, len(pooled), step)]
    return [
        _Group(labels, np.flatnonzero(valid[:, labels].any(axis=1)), shared, label_chunk)
        for labels, shared in groups
    ]


def _run(tasks: list, work: Callable, threads: int | None, progress, total: int) -> None:
    """work(task) for every task on `threads` worker threads (default: every core this process
    may use), each running torch and numpy's BLAS single-threaded: independent chunks on
    separate cores beat one chunk split across them (measured: about 1.3× on 2 cores), since
    its many small operations would each pay a thread handshake."""
    threads = _cores() if threads is None else threads
    with _one_thread_each(), _progress(progress, total) as tick:
        if threads <= 1:
            for task in tasks:
                tick(work(task))
            return
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            futures = [pool.submit(work, task) for task in tasks]  # run in this order
            try:
                for done in concurrent.futures.as_completed(futures):
                    tick(done.result())
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise


def _cores() -> int:
    """The cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


@contextlib.contextmanager
def _one_thread_each() -> Iterator[None]:
    """torch and numpy's BLAS single-threaded, for work spread over threads of our own."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpoolctl.threadpool_limits(1, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)


class _Shared:
    """Values that several tasks use (a group's labels, a training set's geometry): made once,
    by the first task that asks, and dropped after the last use, so that few are alive."""

    def __init__(self, keys: Iterable):
        self._uses = collections.Counter(keys)
        self._lock = threading.Lock()
        self._made: dict = {}

    def get(self, key, make: Callable):
        with self._lock:
            entry = self._made.setdefault(key, [threading.Lock(), None])
        with entry[0]:
            if entry[1] is None:
                entry[1] = make()
            return entry[1]

    def release(self, *keys) -> None:
        with self._lock:
            for key in keys:
                self._uses[key] -= 1
                if self._uses[key] == 0:
                    self._made.pop(key, None)


@contextlib.contextmanager
def _progress(progress: Progress | bool | None, total: int) -> Iterator[Callable[[int], None]]:
    if progress is True:
        from tqdm.auto import tqdm

        with tqdm(total=total, unit="fit") as bar:
            yield bar.update
        return
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if callable(progress):
            progress(done, total)

    yield tick


# --- the solver -----------------------------------------------------------------------------


class _Geometry:
    """Training genes in rotated, centred coordinates: Z = [(X−μ)V, 1], ZᵀZ = diag(Λ, n)."""

    def __init__(self, X: np.ndarray, rows: np.ndarray, dtype: torch.dtype):
        Xr = torch.from_numpy(X[rows]).to(dtype)
        self.mean = Xr.mean(dim=0, dtype=F64).to(dtype)
        Xr -= self.mean
        # The Gram only shapes the base Hessian. V rotates, and the back-transform uses the
        # same V in the same precision, so the model is exact in X's coordinates.
        lam, V = torch.linalg.eigh((Xr.T @ Xr).to(F64))
        self.lam = lam.clamp_min(0.0).to(dtype)
        self.V = V.to(dtype)
        self.Z = torch.cat([Xr @ self.V, torch.ones(len(rows), 1, dtype=dtype)], dim=1)
        self.Zt = self.Z.T.contiguous()  # for the step's product, rows along memory

    def back(self, theta: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(u, β) per label (k × d+1) in Z's coordinates → W (d × k), b (k) in X's."""
        d = self.V.shape[0]
        W = self.V.to(F64) @ theta[:, :d].T
        b = theta[:, d] - self.mean.to(F64) @ W
        return W.to(F32).numpy(), b.to(F32).numpy()


class _Solver:
    """Batched L-BFGS over a structured base Hessian, with a line search along each step.

    Per-gene arrays are label-major (labels × genes), so that dropping labels copies contiguous
    rows and sums over genes run along memory. An iteration makes two products with Z, one
    for the gradient and one for the step's change of the margins; everything else is a pass
    over the genes or work in d dimensions.
    """

    def __init__(self, C: float, tol: float, max_iter: int, memory: int = 5, top: int = 64):
        if not (C > 0 and tol > 0 and max_iter >= 1):
            raise ValueError(f"need C > 0, tol > 0 and max_iter ≥ 1 (C={C}, tol={tol})")
        self.C, self.tol, self.max_iter = float(C), float(tol), int(max_iter)
        self.memory = memory  # (step, gradient change) pairs per label
        self.top = top  # genes per label whose curvature the base Hessian holds exactly
        # Per-gene arrays and gradients; the parameters θ and the pairs are kept in float64.
        self.dtype = F32 if tol >= FLOAT32_TOL else F64
        self.unconverged = 0  # label fits that hit max_iter, counted across threads
        self._lock = threading.Lock()

    def geometry(self, X: np.ndarray, rows: np.ndarray) -> _Geometry:
        return _Geometry(X, rows, self.dtype)

    def warn(self) -> None:
        if self.unconverged:
            warnings.warn(
                f"logreg: {self.unconverged} label fits stopped at max_iter={self.max_iter} "
                f"before the gradient fell to tol={self.tol}",
                RuntimeWarning,
                stacklevel=3,
            )

    def solve(self, geo: _Geometry, Y: np.ndarray, valid: np.ndarray, shared: bool,
              cost: Cost | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """Fit a chunk of labels (Y, valid: labels × the geometry's genes): W (d × k), b (k);
        NaN for labels without a positive or a negative. cost, where given, grows by what
        this chunk took."""
        C, Z, dtype = self.C, geo.Z, self.dtype
        d1 = Z.shape[1]
        d = d1 - 1
        theta = torch.full((Y.shape[0], d1), math.nan, dtype=F64)
        n_valid, n_pos = valid.sum(axis=1), Y.sum(axis=1)
        fit = np.flatnonzero((n_pos > 0) & (n_pos < n_valid))
        if len(fit) == 0:
            return geo.back(theta)
        labels = torch.from_numpy(fit)  # rows of theta still being fitted
        n_pos, n_neg = (torch.from_numpy(a[fit]).to(F64) for a in (n_pos, n_valid - n_pos))
        beta0 = torch.log(n_pos / n_neg)  # the log-odds of the prevalence

        # Margins m = x·w + b per label and gene; the loss is softplus(m) − y·m, the residual
        # σ(m) − y. Genes not valid for a label sit at m = −∞, where loss, residual and
        # curvature are exactly zero. The positives, a few per cent, are kept as indices.
        pos = _Positives(np.ascontiguousarray(Y[fit]))
        m = beta0.to(dtype)[:, None].expand(len(fit), Z.shape[0]).clone()
        if not shared:
            m.masked_fill_(~torch.from_numpy(np.ascontiguousarray(valid[fit])), -math.inf)
        th = torch.zeros(len(fit), d1, dtype=F64)
        th[:, d] = beta0
        q = self._residual(m, pos)
        g = self._gradient(Z, q, th)
        g0 = g.norm(dim=1)
        pairs = _Pairs(self.memory, len(fit), d1)
        live = torch.ones(len(fit), dtype=torch.bool)
        passes, iterations = len(fit), 0
        base = None
        for it in range(self.max_iter + 1):
            finished = live & (g.norm(dim=1) <= self.tol * g0)
            if it == self.max_iter:
                with self._lock:
                    self.unconverged += int((live & ~finished).sum())
                finished = live.clone()
            theta[labels[finished]] = th[finished]
            live &= ~finished
            if not live.any():
                break
            if live.sum() < 0.9 * len(live):  # drop finished labels once they are many
                labels, th, g, g0, m, q = (a[live] for a in (labels, th, g, g0, m, q))
                pos.keep(live)
                pairs.keep(live)
                if base is not None:
                    base.keep(live)
                live = live[live]
            iterations += int(live.sum())

            # The quasi-Newton step: L-BFGS's pairs over the base Hessian at this point.
            if base is None or it % BASE_EVERY == 2:
                # At the start s is uniform on shared genes, and D alone is the Hessian; the
                # next rebuild waits for two steps' pairs (measured: fewer iterations than one).
                # The curvature p(1 − p) = |q| − q², wanted only here.
                s = q.abs()
                s.addcmul_(s, s, value=-1.0)
                base = _Base(Z, geo.lam, s, C, 0 if it == 0 and shared else self.top)
            delta = pairs.apply(-g.to(F64), base)
            delta[~live] = 0.0
            slope = (g.to(F64) * delta).sum(dim=1)  # φ'(0) along the step
            uphill = live & ~(slope < 0)  # rounding only (base and pairs are positive definite)
            if uphill.any():
                pairs.reset(uphill)
                delta[uphill] = base.apply(-g[uphill], uphill).to(F64)
                slope[uphill] = (g[uphill].to(F64) * delta[uphill]).sum(dim=1)
            dm = _matmul(delta.to(dtype), geo.Zt)  # the step's change of the margins
            dm_pos = pos.sum(dm)  # Σ over the positives, for φ'
            t, at_one = self._step_length(th, delta, m, dm, pos, dm_pos, slope, live)
            step = t[:, None] * delta
            th += step
            m.addcmul_(dm, t.to(dtype)[:, None])
            q = self._residual(m, pos)
            g_new = self._gradient(Z, q, th)
            passes += 2 * len(live)
            # φ'(t) = ∇F(θ + tδ)·δ comes with the new gradient: a step well past the minimum
            # is checked, and taken back where F did not fall. F fell for certain where the
            # trial stopped short and the step was extended: φ being convex, φ(1) ≤ φ(0) +
            # φ'(1) < φ(0) and φ(t) ≤ φ(1) + φ'(t)·(t − 1).
            at_t = (g_new.to(F64) * delta).sum(dim=1)
            fell = (at_one < 0) & (t >= 1) & (at_one + at_t * (t - 1) < 0)
            over = live & (at_t > -NEAR * slope) & ~fell
            if over.any():
                passes += self._judge(Z, th, m, dm, pos, q, g_new, delta, t, slope, over)
                step = t[:, None] * delta
            pairs.add(step, (g_new - g).to(F64), live & (t > 0))
            pairs.reset(live & (t == 0))  # no descent found: start the pairs afresh
            g = g_new
        if cost is not None:
            with self._lock:
                cost.fits += len(fit)
                cost.iterations += iterations
                cost.passes += passes
                cost.gene_passes += passes * Z.shape[0]
        return geo.back(theta)

    def _residual(self, m: torch.Tensor, pos: _Positives) -> torch.Tensor:
        """The residual σ(m) − y at margins m."""
        return pos.subtract_one(torch.sigmoid(m))

    def _gradient(self, Z: torch.Tensor, q: torch.Tensor, th: torch.Tensor) -> torch.Tensor:
        g = self.C * _matmul(q, Z)
        g[:, :-1] += th[:, :-1].to(g.dtype)
        return g

    def _step_length(
        self, th, delta, m, dm, pos, dm_pos, slope, live
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """t per label for the step θ + t·δ, from one trial at t = 1 (a pass over the genes),
        and φ'(1) of the trial.

        With φ(t) = F(θ + t·δ), φ'(0) = slope < 0: t = 1 where |φ'(1)| ≤ |φ'(0)|/10. Where the
        step stopped short, Newton's step on φ' from 1 extends it (where the loss is nearly
        exponential a unit step moves a margin by about one, and quasi-Newton steps fall
        short). Where it went past the minimum, the root in (0, 1) of the quadratic through
        φ'(0), φ'(1) and φ''(1); failing that Newton's step back from 1, or where that leaves
        [0, 1] too, a full line search. t = 0 for labels not live.
        """
        a0, a1 = _line_terms(th, delta)
        a0 = a0 - self.C * dm_pos  # φ'(t) = a0 + t·a1 + C·Σ σ(m + t·dm)·dm
        p = torch.add(m, dm)
        p = torch.sigmoid(p, out=p)
        d1 = a0 + a1 + self.C * _rowdot(p, dm)
        p.addcmul_(p, p, value=-1.0).mul_(dm)  # σ'·dm
        d2 = a1 + self.C * _rowdot(p, dm)
        newton = 1.0 - d1 / d2.clamp_min(torch.finfo(F64).tiny)
        t = torch.where(d1.abs() <= -NEAR * slope, 1.0, newton.clamp(max=MAX_STEP))
        # Past the minimum, Newton's tangent from 1 and the chord from 0 land on either side of
        # it (which side depends on φ' bending up or down): the root of the quadratic through
        # φ'(0), φ'(1) and φ''(1) lies between, and is exact for a cubic φ.
        past = live & (d1 > -NEAR * slope)
        if past.any():
            c = slope - d1 + d2  # φ'(1 + x) ≈ d1 + d2·x + c·x²
            x = -2 * d1 / (d2 + torch.sqrt((d2 * d2 - 4 * c * d1).clamp_min(0.0)))  # root near 0
            quadratic = past & (x > -1) & (x < 0)
            t = torch.where(quadratic, 1 + x, t)
            hard = past & ~quadratic & ~(newton > 0)
            if hard.any():
                t[hard] = self._line_search(
                    th[hard], delta[hard], m[hard], dm[hard], pos.subset(hard), slope[hard]
                )
        return torch.where(live, t, 0.0), d1

    def _judge(self, Z, th, m, dm, pos, q, g, delta, t, slope, over) -> int:
        """After θ += t·δ (margins, residuals and gradient updated), go back where F did not
        fall and search the line instead; updates in place and returns the extra passes."""
        rows = over.nonzero().flatten()
        d = th.shape[1] - 1
        tr = t[rows]
        u_old = th[rows, :d] - tr[:, None] * delta[rows, :d]
        du = delta[rows, :d]
        m_old = m[rows] - tr.to(m.dtype)[:, None] * dm[rows]
        fall = (tr * (u_old * du).sum(dim=1) + 0.5 * tr * tr * (du * du).sum(dim=1)
                + self.C * _loss_change(m_old, m[rows], pos.subset(over)))  # fmt: skip
        back = rows[~(fall < 0)]
        if len(back) == 0:
            return 0
        keep = ~(fall < 0)
        th_old = th[back] - t[back, None] * delta[back]
        m_old = m_old[keep]
        pos_back = pos.subset(back)
        tb = self._line_search(th_old, delta[back], m_old, dm[back], pos_back, slope[back])
        t[back] = tb
        th[back] = th_old + tb[:, None] * delta[back]
        m[back] = m_old.addcmul_(dm[back], tb.to(m.dtype)[:, None])
        q[back] = pos_back.subtract_one(torch.sigmoid(m[back]))
        g[back] = self._gradient(Z, q[back], th[back])
        return len(back)

    def _line_search(self, th, delta, m, dm, pos, slope, tries: int = 16) -> torch.Tensor:
        """t per label near the minimum of φ(t) = F(θ + t·δ): |φ'(t)| ≤ |φ'(0)|/10 and
        φ(t) < φ(0) (φ'(0) = slope < 0), by safeguarded Newton on φ', each trial a pass over
        the genes. Quasi-Newton steps on the logistic loss often stop short (where the loss is
        nearly exponential, a unit step moves a margin by about one): the search extends those.
        Where no trial qualifies, the largest t with φ'(t) ≤ 0 tried (F fell there, φ being
        convex), else 0."""
        reg, a1 = _line_terms(th, delta)
        a0 = reg - self.C * pos.sum(dm)  # φ'(t) = a0 + t·a1 + C·Σ σ(m + t·dm)·dm
        k = len(slope)
        lo, dlo = torch.zeros(k, dtype=F64), slope.clone()  # largest t known with φ'(t) ≤ 0
        hi, dhi = torch.full((k,), math.inf, dtype=F64), torch.zeros(k, dtype=F64)  # φ' > 0
        t = torch.ones(k, dtype=F64)
        found = torch.zeros(k, dtype=torch.bool)  # t[found]: φ' small, above the minimum
        rows = torch.arange(k)  # the labels of mr and dmr, rows of m and dm
        mr, dmr = m, dm
        active = torch.ones(len(rows), dtype=torch.bool)  # rows still searching
        for _ in range(tries):
            if not active.any():
                break
            if active.sum() < 0.6 * len(rows):  # copying costs less than trials of idle rows
                rows, mr, dmr = rows[active], mr[active], dmr[active]
                active = active[active]
            tr = t[rows]
            p = torch.sigmoid(torch.addcmul(mr, dmr, tr.to(mr.dtype)[:, None]))
            curv = torch.addcmul(p, p, p, value=-1.0).mul_(dmr)
            d1 = a0[rows] + tr * a1[rows] + self.C * _rowdot(p, dmr)
            d2 = a1[rows] + self.C * _rowdot(curv, dmr)
            left = d1 <= 0
            lo[rows], dlo[rows] = torch.where(left, tr, lo[rows]), torch.where(left, d1, dlo[rows])
            hi[rows], dhi[rows] = torch.where(left, hi[rows], tr), torch.where(left, dhi[rows], d1)
            near = d1.abs() <= -NEAR * slope[rows]
            found[rows] = near & ~left
            # Next trial: Newton's from this one where it falls inside the bracket; else double
            # (no upper end yet), or the secant through the bracket's ends.
            below, above = lo[rows], hi[rows]
            newton = tr - d1 / d2.clamp_min(torch.finfo(F64).tiny)
            secant = below - dlo[rows] * (above - below) / (dhi[rows] - dlo[rows])
            inside = (newton > below) & (newton < above)
            step = torch.where(inside, newton, torch.where(torch.isinf(above), 2 * below, secant))
            t[rows] = torch.where(active & ~near, step, tr)
            active &= ~near
        # Above the minimum, convexity alone does not promise F fell: check it.
        rows = found.nonzero().flatten()
        if len(rows):
            tr = t[rows]
            new = torch.addcmul(m[rows], dm[rows], tr.to(m.dtype)[:, None])
            loss = _loss_change(m[rows], new, pos.subset(rows))
            fall = tr * reg[rows] + 0.5 * tr * tr * a1[rows] + self.C * loss
            lo[rows] = torch.where(fall < 0, tr, lo[rows])
        return lo


def _line_terms(th, delta) -> tuple[torch.Tensor, torch.Tensor]:
    """The penalty ½‖u‖² along θ + t·δ changes by t·(u·δu) + ½t²·‖δu‖² (the intercept is not
    penalised): those two per label."""
    d = th.shape[1] - 1
    u, du = th[:, :d], delta[:, :d]
    return (u * du).sum(dim=1), (du * du).sum(dim=1)


def _loss_change(old: torch.Tensor, new: torch.Tensor, pos: _Positives) -> torch.Tensor:
    """Σ over genes of softplus(m) − y·m at margins new, less at old, per label (float64);
    for positives as softplus(−m), which loses nothing where m is large."""
    change = softplus(new) - softplus(old)
    pos.put(change, softplus(-pos.at(new)) - softplus(-pos.at(old)))
    return change.sum(dim=1).to(F64)


class _Positives:
    """Each label's positive genes, as (label row, gene) indices of a labels × genes array.
    (numpy's fancy indexing on the flat array: torch's took 7–20 times as long here.)"""

    def __init__(self, Y: np.ndarray):
        self.rows, cols = np.nonzero(Y)
        self.k, self.genes = Y.shape
        self.flat = self.rows * self.genes + cols

    def keep(self, labels: torch.Tensor) -> None:
        """Keep the labels of a mask, renumbered as the arrays they index."""
        self.rows, self.flat, self.k = self._of(labels)

    def subset(self, labels: torch.Tensor) -> _Positives:
        """Those of the labels of a mask (or of label rows, ascending), renumbered as arrays of
        their rows."""
        out = object.__new__(_Positives)
        out.rows, out.flat, out.k = self._of(labels)
        out.genes = self.genes
        return out

    def _of(self, labels: torch.Tensor):
        if labels.dtype != torch.bool:
            labels = torch.zeros(self.k, dtype=torch.bool).index_fill_(0, labels, True)
        labels = labels.numpy()
        new = np.cumsum(labels) - 1
        kept = labels[self.rows]
        rows = new[self.rows[kept]]
        return rows, rows * self.genes + self.flat[kept] % self.genes, int(labels.sum())

    def sum(self, x: torch.Tensor) -> torch.Tensor:
        """Σ of x over each label's positives (float64)."""
        values = x.numpy().reshape(-1)[self.flat]
        return torch.from_numpy(np.bincount(self.rows, weights=values, minlength=self.k))

    def subtract_one(self, p: torch.Tensor) -> torch.Tensor:
        """p − y, in place (p contiguous)."""
        p.numpy().reshape(-1)[self.flat] -= 1.0
        return p

    def at(self, x: torch.Tensor) -> torch.Tensor:
        """x at the positives, flat."""
        return torch.from_numpy(x.numpy().reshape(-1)[self.flat])

    def put(self, x: torch.Tensor, values: torch.Tensor) -> None:
        x.numpy().reshape(-1)[self.flat] = values.numpy()


def _matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b through numpy's BLAS (see the module's docstring)."""
    return torch.from_numpy(a.numpy() @ b.numpy())


def _rowdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Σ a·b along each row, in float64 (numpy's einsum reads each array once: torch's vecdot
    multiplies into a temporary first, which costs twice the memory traffic)."""
    return torch.from_numpy(np.einsum("ij,ij->i", a.numpy(), b.numpy())).to(F64)


class _Base:
    """The base Hessian of the quasi-Newton steps, per label, and its inverse.

    The Hessian is C·Zᵀ diag(s) Z + diag(1…1, 0). The base keeps s exactly on the label's
    `top` genes of largest curvature (positives and the negatives near the boundary, which
    dominate it for rare labels) and their mean s̄ elsewhere, where ZᵀZ is diagonal:
    P = D + BᵀB, D = diag(C·s̄·Λ + 1, C·s̄·n), B = the top genes' rows of Z scaled by
    √(C·(s − s̄)); D's intercept entry is at least the top genes' C·Σ(s − s̄) (see below). P⁻¹
    by Woodbury: a top × top Cholesky factor per label (I + B D⁻¹ Bᵀ is the identity plus a
    positive semidefinite matrix, so the factor exists). Where s is uniform (the start), P is
    the exact Hessian.
    """

    def __init__(self, Z: torch.Tensor, lam: torch.Tensor, s: torch.Tensor, C: float, top: int):
        k, r = s.shape
        d = len(lam)
        top = min(top, r // 32)  # a small share of the genes: the Gram costs top² a label
        curv, idx = torch.topk(s, top, dim=1, sorted=False) if top else (s[:, :0], None)
        tiny = torch.finfo(s.dtype).tiny
        rest = ((s.sum(dim=1) - curv.sum(dim=1)) / max(r - top, 1)).clamp_min(tiny)
        dinv = torch.empty(k, d + 1, dtype=s.dtype)
        dinv[:, :d] = 1.0 / (C * rest[:, None] * lam + 1.0)
        # The intercept's entry, C·s̄·n, is nearly 0 where the top genes hold all the curvature
        # (a label valid on a few genes of a pooled chunk, a separated label): D⁻¹ would then
        # overflow there, and the Woodbury correction cancel it in float32. At least the top
        # genes' own share keeps P within 2× of the Hessian in that coordinate.
        dinv[:, d] = 1.0 / (C * torch.maximum(rest * r, (curv - rest[:, None]).sum(dim=1)))
        self.droot = dinv.sqrt_()  # D^(−½)
        # With S = B·D^(−½): P⁻¹ = D^(−½) (I − Sᵀ (I + S Sᵀ)⁻¹ S) D^(−½).
        scale = (C * (curv - rest[:, None])).clamp_min(0.0).sqrt()
        S = (
            Z.index_select(0, idx.flatten()).view(k, top, d + 1)
            if top
            else Z.new_zeros(k, 0, d + 1)
        )
        self.S = S.mul_(scale[:, :, None]).mul_(self.droot[:, None, :])
        eye = torch.eye(top, dtype=s.dtype).expand(k, top, top)
        self.L = torch.linalg.cholesky_ex(torch.baddbmm(eye, self.S, self.S.transpose(1, 2)))[0]

    def keep(self, rows: torch.Tensor) -> None:
        self.droot, self.S, self.L = self.droot[rows], self.S[rows], self.L[rows]

    def apply(self, v: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """P⁻¹ v per label (of `rows`, a mask, where given), in P's dtype."""
        droot, S, L = (self.droot, self.S, self.L) if rows is None else (
            self.droot[rows], self.S[rows], self.L[rows])  # fmt: skip
        x = v.to(droot.dtype) * droot
        # (numpy's einsum: these batched matrix-vector products take torch's bmm 3-6 times as long)
        Sx = torch.from_numpy(np.einsum("ktd,kd->kt", S.numpy(), x.numpy()))
        y = torch.cholesky_solve(Sx[:, :, None], L)[:, :, 0]
        return (x - torch.from_numpy(np.einsum("ktd,kt->kd", S.numpy(), y.numpy()))) * droot


class _Pairs:
    """The last steps Δθ and gradient changes Δg per label, for L-BFGS's two-loop recursion.
    Each iteration writes one slot for every label (empty where it added no pair), so slot
    order is iteration order for all of them."""

    def __init__(self, size: int, k: int, d1: int):
        self.step = torch.zeros(size, k, d1, dtype=F64)
        self.change = torch.zeros(size, k, d1, dtype=F64)
        self.rho = torch.zeros(size, k, 1, dtype=F64)  # 1/(Δgᵀ Δθ); 0 marks an empty slot
        self.added = 0

    def keep(self, labels: torch.Tensor) -> None:
        self.step, self.change, self.rho = (
            a[:, labels] for a in (self.step, self.change, self.rho)
        )

    def reset(self, labels: torch.Tensor) -> None:
        self.rho[:, labels] = 0.0

    def add(self, step: torch.Tensor, change: torch.Tensor, where: torch.Tensor) -> None:
        if len(self.step) == 0:
            return
        curvature = torch.linalg.vecdot(step, change)
        # F is convex, so Δgᵀ Δθ ≥ 0; a pair whose curvature is lost in rounding is left out.
        ok = where & (curvature > 1e-10 * step.norm(dim=1) * change.norm(dim=1))
        slot = self.added % len(self.step)
        self.step[slot], self.change[slot] = step, change
        self.rho[slot, :, 0] = torch.where(ok, 1.0 / curvature, 0.0)
        self.added += 1

    def apply(self, v: torch.Tensor, base: _Base) -> torch.Tensor:
        """The L-BFGS inverse Hessian times v (float64): newest pair first, then the base."""
        n = len(self.step)
        order = [(self.added - 1 - i) % n for i in range(min(n, self.added))]
        x = v.clone()
        alphas = []
        for i in order:
            a = self.rho[i] * torch.linalg.vecdot(self.step[i], x)[:, None]
            x.addcmul_(a, self.change[i], value=-1.0)
            alphas.append(a)
        z = base.apply(x).to(F64)
        for i, a in zip(reversed(order), reversed(alphas), strict=True):
            b = self.rho[i] * torch.linalg.vecdot(self.change[i], z)[:, None]
            z.addcmul_(a - b, self.step[i])
        return z
