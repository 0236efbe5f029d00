"""Thousands of L2-regularised logistic regressions on one shared feature matrix, with CV.

For every label l (a column of Y) this minimises, over the genes valid for it,

    F_l(w, b) = ½‖w‖² + C · Σ_{i valid} logloss(y_il, x_i·w + b)

which is scikit-learn's `LogisticRegression(C=C)` objective (lbfgs; intercept fitted, not
penalised). Genes not valid for a label are ignored entirely, as if absent.

    W, b = fit(X, Y, valid, C=1.0)                      # W: d × L, b: L
    scores = cross_validate(X, Y, valid, fold_of(len(X), 5, seed=0), C=1.0)
    auroc(scores, Y, valid), auprc(scores, Y, valid)    # per label

Algorithm: Newton–CG, batched over a chunk of labels at once (labels × genes arrays).

- Labels with identical valid columns (all labels of one source, the common case) share one
  geometry per training set: its genes, their mean μ and the eigenvectors V of the centred Gram
  (X−μ)ᵀ(X−μ) = V Λ Vᵀ. The solver works in Z = [(X−μ)V, 1] (the ones column carries the
  intercept), where ZᵀZ = diag(Λ, n). Labels with a valid set of their own are pooled into
  chunks over the union of their genes; a label's other genes sit at margin −∞, where loss,
  gradient and curvature are exactly zero, so one code path serves both.
- The Hessian is H = C·Zᵀ diag(s) Z + diag(1…1, 0), s = p(1 − p). At the start (w = 0, b = the
  log-odds of the label's prevalence) s is uniform, and on a shared geometry H is then exactly
  H₀ = diag(c·Λ + 1, C·Σs), c = C·mean(s): the first Newton step costs no Hessian product.
  Later Newton systems are solved by conjugate gradients to an Eisenstat–Walker tolerance,
  preconditioned by L-BFGS on H₀ (c from the current s) with the curvature pairs of earlier CG
  iterations. A Hessian-vector product for a whole chunk is two matmuls, in bfloat16 where the
  CPU multiplies it natively (AVX512-BF16, AMX: 4–5× float32's rate): they only steer CG,
  while margins, gradients and so the stopping rule stay in float32.
- Line search: the first step (which often overshoots) backtracks on F (Armijo). Later full
  steps are taken and judged by the next gradient: where ∇F(θ + δ)·δ ≤ 0 the step stopped short
  of the line minimum and, F being convex, F fell; elsewhere (rare) it backtracks. A Newton
  iteration thus costs two float32 matmuls (gradient, step) and a few passes over the genes.
- Margins are stored sign-flipped for positives, so each gene's loss is softplus(margin), with
  no cancellation when objective values are compared.
- Chunks (× folds) run on one worker thread per core, torch single-threaded in each.
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
import torch
from torch.nn.functional import softplus

F32, F64, BF16 = torch.float32, torch.float64, torch.bfloat16
ARMIJO = 1e-4  # sufficient-decrease constant of the backtracking line search
FLOAT32_TOL = 1e-6  # below this tol, float32 rounding of the gradient would decide: use float64
CHUNK_BYTES = 24 * 2**20  # one genes × labels array; glibc maps blocks over 32 MiB afresh each
#                           time, and the page faults cost more than the arithmetic
Progress = Callable[[int, int], None]
# Precision of the Hessian-vector products in the float32 path; None: bfloat16 where this CPU
# multiplies it natively (AVX512-BF16, AMX), else float32. See `_Solver`.
HVP_DTYPE: torch.dtype | None = None


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
) -> tuple[np.ndarray, np.ndarray]:
    """One logistic regression per label: W (d × L float32), b (L float32).

    X: genes × d features; Y: genes × L bool, the positives; valid: genes × L bool, the genes
    that count for each label (None: all). A label stops when its gradient norm is ≤ tol × its
    norm at the start; Newton iterations are capped at max_iter (a RuntimeWarning counts the
    labels that hit the cap). Labels with no positive or no negative among their valid genes get
    NaN. label_chunk: labels solved together (default: as many as keep one genes × labels
    float32 array near 24 MiB); memory is a few such arrays per thread. progress: a callable
    (labels done, labels), or True for a tqdm bar. threads: chunks solved at once, each on one
    core (default: all cores this process may use).
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
        W[:, chunk], b[chunk] = solver.solve(geo, Yg[part], Vg[part], group.shared)
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
) -> np.ndarray:
    """Out-of-fold decision values x·w + b (genes × L float32; NaN where not valid).

    Each gene is scored by its label's model fitted on the valid genes of the other folds
    (`folds`: a fold index per gene, as from `fold_of`, shared by all labels). A training set
    with no positive or no negative of a label gives NaN scores to that label's genes in the
    held-out fold. Other arguments as for `fit`; progress counts label × fold fits.
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
        Wc, bc = solver.solve(geo, Yg[part][:, train], Vg[part][:, train], group.shared)
        held_out = torch.from_numpy(X[test]) @ torch.from_numpy(Wc) + torch.from_numpy(bc)
        scores[np.ix_(test, chunk)] = held_out.numpy()
        shared.release(("labels", i), ("geometry", i, f))
        return len(chunk)

    _run(tasks, work, threads, progress, Y.shape[1] * len(np.unique(folds)))
    scores[~valid] = np.nan
    solver.warn()
    return scores


# --- ranking metrics ------------------------------------------------------------------------


def auroc(scores: np.ndarray, Y: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Area under the ROC curve per label, as sklearn's roc_auc_score (tied scores averaged).

    Only valid genes count. NaN where a label has no positive or no negative among them, or
    where one of them has no score (NaN).
    """
    out = np.full(np.shape(scores)[1], np.nan)
    for c in _positive_counts(scores, Y, valid):
        # Mann–Whitney U: each positive outranks the lower scores and half of its other ties;
        # the pairs of positives among those, n_pos·(n_pos − 1)/2, do not count.
        u = torch.where(c.is_pos, c.below + (c.tied - 1) / 2, 0.0).sum(dim=1)
        u -= c.n_pos * (c.n_pos - 1) / 2
        auc = u / (c.n_pos * (c.n_valid - c.n_pos))
        auc[(c.n_pos == 0) | (c.n_pos == c.n_valid) | c.unscored] = math.nan
        out[c.cols] = auc.numpy()
    return out


def auprc(scores: np.ndarray, Y: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Average precision per label, as sklearn's average_precision_score.

    Each positive contributes the precision among the genes scoring at least as high as it (the
    threshold at which it is first counted, ties included). NaN as for `auroc`.
    """
    out = np.full(np.shape(scores)[1], np.nan)
    for c in _positive_counts(scores, Y, valid):
        precision = c.pos_at_or_above / (c.n_valid[:, None] - c.below)
        ap = torch.where(c.is_pos, precision, 0.0).sum(dim=1) / c.n_pos
        ap[(c.n_pos == 0) | (c.n_pos == c.n_valid) | c.unscored] = math.nan
        out[c.cols] = ap.numpy()
    return out


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
    one sort per label, whatever the ties."""
    scores = np.asarray(scores)
    if scores.dtype not in (np.float32, np.float64):
        scores = scores.astype(np.float64)
    Y = np.asarray(Y, dtype=bool)
    valid = np.ones(Y.shape, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if not scores.shape == Y.shape == valid.shape:
        raise ValueError(f"scores {scores.shape}, Y {Y.shape} and valid {valid.shape} differ")
    for start in range(0, scores.shape[1], chunk):
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
        yield _Counts(
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
    may use), each running torch single-threaded: independent chunks on separate cores beat
    one chunk split across them (measured: about 1.3× on 2 cores), since its many small
    operations would each pay a thread handshake."""
    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        threads = threads or os.cpu_count() or 1
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _progress(progress, total) as tick:
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
    """Training genes in rotated, centred coordinates: Z = [(X−μ)V, 1], ZᵀZ ≈ diag(Λ, n)."""

    def __init__(self, X: np.ndarray, rows: np.ndarray, dtype: torch.dtype, hvp_dtype: torch.dtype):
        Xr = torch.from_numpy(X[rows]).to(dtype)
        self.mean = Xr.mean(dim=0, dtype=F64).to(dtype)
        Xr -= self.mean
        # The Gram only shapes the preconditioner. V rotates, and the back-transform uses the
        # same V in the same precision, so the model is exact in X's coordinates.
        lam, V = torch.linalg.eigh((Xr.T @ Xr).to(F64))
        self.lam = lam.clamp_min(0.0)
        self.V = V.to(dtype)
        self.Z = torch.cat([Xr @ self.V, torch.ones(len(rows), 1, dtype=dtype)], dim=1)
        self.Zh = self.Z.to(hvp_dtype)  # for Hessian-vector products only

    def back(self, theta: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(u, β) per label (k × d+1) in Z's coordinates → W (d × k), b (k) in X's."""
        d = self.V.shape[0]
        W = self.V.to(F64) @ theta[:, :d].T
        b = theta[:, d] - self.mean.to(F64) @ W
        return W.to(F32).numpy(), b.to(F32).numpy()


class _Solver:
    """Batched Newton–CG. Per-gene arrays are label-major (labels × genes), so that dropping
    labels copies contiguous rows and sums over genes run along memory."""

    def __init__(self, C: float, tol: float, max_iter: int, max_cg: int = 200, memory: int = 5):
        if not (C > 0 and tol > 0 and max_iter >= 1):
            raise ValueError(f"need C > 0, tol > 0 and max_iter ≥ 1 (C={C}, tol={tol})")
        self.C, self.tol, self.max_iter = float(C), float(tol), int(max_iter)
        self.max_cg = max_cg
        self.memory = memory  # curvature pairs per label; more mixes in stale Hessians
        # Per-gene arrays, gradients and CG vectors; the parameters θ accumulate in float64.
        self.dtype = F32 if tol >= FLOAT32_TOL else F64
        # Hessian-vector products only steer CG towards the Newton direction; the gradient,
        # margins and stopping rule do not use them, so bfloat16's 3 significant digits there
        # cost at most a little convergence speed, never accuracy.
        self.hvp_dtype = F64 if self.dtype == F64 else HVP_DTYPE or _fast_hvp_dtype()
        # Rounding noise of a summed objective, relative: smaller changes are not judged.
        self.slack = 32 * torch.finfo(self.dtype).eps
        self.unconverged = 0  # label fits that hit max_iter, counted across threads
        self._lock = threading.Lock()

    def geometry(self, X: np.ndarray, rows: np.ndarray) -> _Geometry:
        return _Geometry(X, rows, self.dtype, self.hvp_dtype)

    def warn(self) -> None:
        if self.unconverged:
            warnings.warn(
                f"logreg: {self.unconverged} label fits stopped at max_iter={self.max_iter} "
                f"before the gradient fell to tol={self.tol}",
                RuntimeWarning,
                stacklevel=3,
            )

    def solve(self, geo: _Geometry, Y: np.ndarray, valid: np.ndarray, shared: bool):
        """Fit a chunk of labels (Y, valid: labels × the geometry's genes): W (d × k), b (k);
        NaN for labels without a positive or a negative."""
        C, Z, dtype = self.C, geo.Z, self.dtype
        r, d1 = Z.shape
        d = d1 - 1
        theta = torch.full((Y.shape[0], d1), math.nan, dtype=F64)
        n_valid, n_pos = valid.sum(axis=1), Y.sum(axis=1)
        fit = np.flatnonzero((n_pos > 0) & (n_pos < n_valid))
        if len(fit) == 0:
            return geo.back(theta)
        labels = torch.from_numpy(fit)  # rows of theta still being fitted
        n_pos, n_neg = (torch.from_numpy(a[fit]).to(F64) for a in (n_pos, n_valid - n_pos))
        beta0 = torch.log(n_pos / n_neg)  # the log-odds of the prevalence

        # Margins m = sign·(x·w + b), sign = −1 for positives: the loss is softplus(m) and the
        # residual p − y = sign·σ(m). Genes not valid for a label sit at m = −∞.
        sign = 1.0 - 2.0 * torch.from_numpy(np.ascontiguousarray(Y[fit])).to(dtype)
        m = sign * beta0.to(dtype)[:, None]
        if not shared:
            m.masked_fill_(~torch.from_numpy(np.ascontiguousarray(valid[fit])), -math.inf)
        th = torch.zeros(len(fit), d1, dtype=F64)
        th[:, d] = beta0
        loss0 = n_pos * softplus(-beta0) + n_neg * softplus(beta0)  # the loss at the start
        live = torch.ones(len(fit), dtype=torch.bool)
        memory = _Memory(self.memory, len(fit), d1, dtype)
        g0 = tentative = None
        for it in range(self.max_iter + 1):
            q, s = self._residual(m, sign)
            g = self._gradient(Z, q, th)
            if tentative is not None:  # judge the last full steps now that g is known
                self._judge(Z, th, m, sign, q, s, g, *tentative)
            gnorm = g.norm(dim=1)
            g0 = gnorm if g0 is None else g0
            finished = live & (gnorm <= self.tol * g0)
            if it == self.max_iter:
                with self._lock:
                    self.unconverged += int((live & ~finished).sum())
                finished = live.clone()
            theta[labels[finished]] = th[finished]
            live &= ~finished
            if not live.any():
                break
            if live.sum() < 0.85 * len(live):  # drop finished labels once they are many
                labels, th, g, gnorm, g0 = (a[live] for a in (labels, th, g, gnorm, g0))
                m, s, sign = m[live], s[live], sign[live]
                memory.keep(live)
                live = live[live]

            # H₀⁻¹: the inverse Hessian were s uniform, diag(c·Λ + 1, C·Σs)⁻¹, c = C·Σs / r.
            ssum = s.sum(dim=1).clamp_min(torch.finfo(dtype).tiny)
            h0inv = torch.empty_like(g)
            h0inv[:, :d] = 1.0 / ((C / r) * ssum[:, None] * geo.lam.to(dtype) + 1.0)
            h0inv[:, d] = 1.0 / (C * ssum)
            if it == 0 and shared:
                delta = -h0inv * g  # s is uniform at the start: the exact Newton step
            else:
                # Eisenstat–Walker forcing: loose solves far from the optimum, tight near it.
                eta = torch.sqrt(gnorm / g0).clamp(max=0.5)
                delta = self._cg(geo.Zh, s.to(self.hvp_dtype), g, live, h0inv, memory, eta * gnorm)
            delta[~live] = 0.0
            step = delta @ Z.T  # the change of x·w + b; margins change by sign·step
            slope = (g * delta).sum(dim=1).to(F64)  # φ'(0) along the step
            if it == 0:
                # The first step from the uniform start often overshoots: backtrack now.
                th, m = self._backtrack(th, m, step.mul_(sign), delta, slope, C * loss0)
                tentative = None
            else:
                # Later full steps are almost always right; take them, and judge them at the
                # next gradient, which costs no extra pass over the genes.
                th += delta
                m.addcmul_(step, sign)
                tentative = (delta, step, slope)
        return geo.back(theta)

    def _residual(self, m: torch.Tensor, sign: torch.Tensor):
        """The residual p − y and the curvature p(1 − p) at margins m."""
        q = torch.sigmoid(m)
        s = torch.addcmul(q, q, q, value=-1.0)  # the same for m and −m
        return q.mul_(sign), s

    def _gradient(self, Z: torch.Tensor, q: torch.Tensor, th: torch.Tensor) -> torch.Tensor:
        g = self.C * (q @ Z)
        g[:, :-1] += th[:, :-1].to(g.dtype)
        return g

    def _judge(self, Z, th, m, sign, q, s, g, delta, step, slope):
        """Keep a full step where φ'(1) = ∇F(θ + δ)·δ ≤ 0: φ is convex, so the step stopped
        short of the line minimum and F fell. Elsewhere (rare after the first step) go back and
        backtrack, then update q, s and g of those labels in place."""
        over = ((g * delta).sum(dim=1) > 0).nonzero().flatten()
        if len(over) == 0:
            return
        d = th.shape[1] - 1
        th_old = th[over] - delta[over].to(F64)
        step = step[over] * sign[over]
        m_old = m[over] - step
        f0 = 0.5 * (th_old[:, :d] ** 2).sum(dim=1) + self.C * _loss(m_old)
        th[over], m[over] = self._backtrack(th_old, m_old, step, delta[over], slope[over], f0)
        q[over], s[over] = self._residual(m[over], sign[over])
        g[over] = self._gradient(Z, q[over], th[over])

    def _backtrack(self, th, m, step, delta, slope, f0):
        """Armijo backtracking per label from t = 1 along (δ, margin step): new (θ, m)."""
        d = th.shape[1] - 1
        t = torch.ones_like(f0)
        m_new = m + step
        th_new = th + delta.to(F64)
        loss = _loss(m_new)
        todo = torch.arange(len(f0))
        for _ in range(60):
            f1 = 0.5 * (th_new[todo, :d] ** 2).sum(dim=1) + self.C * loss[todo]
            bound = f0[todo] * (1 + self.slack) + ARMIJO * t[todo] * slope[todo]
            todo = todo[f1 > bound]
            if len(todo) == 0:
                break
            t[todo] /= 2
            m_new[todo] = torch.addcmul(m[todo], step[todo], t[todo, None].to(m.dtype))
            th_new[todo] = th[todo] + t[todo, None] * delta[todo].to(F64)
            loss[todo] = _loss(m_new[todo])
        return th_new, m_new

    def _hvp(self, Zh: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Rows v (C·Zᵀ diag(s) Z + diag(1…1, 0)): two matmuls for all labels, in Zh's dtype."""
        t = v.to(Zh.dtype) @ Zh.T
        t.mul_(s)
        hv = self.C * (t @ Zh).to(v.dtype)
        hv[:, :-1] += v[:, :-1]
        return hv

    def _cg(self, Zh, s, g, live, h0inv, memory, target) -> torch.Tensor:
        """Preconditioned CG for H δ = −g per live label, until ‖H δ + g‖ ≤ target.

        The preconditioner is L-BFGS on H₀ with the pairs (p, Hp) of earlier CG iterations,
        which carry the curvature H₀ misses (Morales & Nocedal 2000); it stays fixed during a
        run, as CG needs, and takes this run's pairs afterwards.
        """
        k = g.shape[0]
        fixed = memory.copy()
        x = torch.zeros_like(g)
        res = torch.where(live[:, None], -g, 0.0)
        z = fixed.apply(res, h0inv)
        p = z
        rz = torch.linalg.vecdot(res, z)
        active = live.clone()
        width, s_w = torch.arange(k), s  # the labels s_w holds; cut once enough have finished
        for _ in range(self.max_cg):
            if active.sum() < 0.9 * len(width):  # copying s costs less than idle matmul rows
                width = active.nonzero().flatten()
                s_w = s[width]
            if len(width) == k:
                hp = self._hvp(Zh, s_w, p)
            else:
                hp = torch.zeros_like(g)
                hp[width] = self._hvp(Zh, s_w, p[width])
            php = torch.linalg.vecdot(p, hp)
            alpha = torch.where(active, rz / php, 0.0)[:, None]
            x.addcmul_(alpha, p)
            res.addcmul_(alpha, hp, value=-1.0)
            memory.add(p, hp, php, active)
            active &= res.norm(dim=1) > target
            if not active.any():
                break
            z = fixed.apply(res, h0inv)
            rz_new = torch.linalg.vecdot(res, z)
            p = torch.addcmul(z, torch.where(active, rz_new / rz, 0.0)[:, None], p)
            rz = rz_new
        return x


def _loss(m: torch.Tensor) -> torch.Tensor:
    """Σ over genes of the logistic loss at margins m, per label, in float64."""
    return softplus(m).sum(dim=1).to(F64)


@functools.cache
def _fast_hvp_dtype() -> torch.dtype:
    """bfloat16 where the CPU has native bfloat16 dot products (AVX512-BF16 or AMX), which
    torch's oneDNN matmuls use at 4–5× the float32 rate; else float32, as emulated bfloat16
    is slower than float32. (torch.cpu's probes are private: missing ones read as absent.)"""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    native = any(getattr(torch.cpu, name, lambda: False)() for name in probes)
    return BF16 if native and torch.backends.mkldnn.is_available() else F32


class _Memory:
    """Curvature pairs (v, Hv) per label in a ring of slots, for an L-BFGS operator. Slot order
    differs between labels, which changes the operator but not its being symmetric positive
    definite: all CG needs of a preconditioner."""

    def __init__(self, size: int, k: int, d1: int, dtype: torch.dtype):
        self.v = torch.zeros(size, k, d1, dtype=dtype)
        self.hv = torch.zeros(size, k, d1, dtype=dtype)
        self.rho = torch.zeros(size, k, 1, dtype=dtype)  # 1/(vᵀHv); 0 marks an empty slot
        self.next = torch.zeros(k, dtype=torch.long)

    def copy(self) -> _Memory:
        out = object.__new__(_Memory)
        out.v, out.hv, out.rho, out.next = self.v.clone(), self.hv.clone(), self.rho.clone(), None
        return out

    def keep(self, labels: torch.Tensor) -> None:
        self.v, self.hv = self.v[:, labels], self.hv[:, labels]
        self.rho, self.next = self.rho[:, labels], self.next[labels]

    def add(self, v: torch.Tensor, hv: torch.Tensor, vhv: torch.Tensor, where: torch.Tensor):
        if len(self.v) == 0:
            return
        labels = where.nonzero().flatten()
        slot = self.next[labels] % len(self.v)
        self.v[slot, labels] = v[labels]
        self.hv[slot, labels] = hv[labels]
        self.rho[slot, labels, 0] = 1.0 / vhv[labels]
        self.next[labels] += 1

    def apply(self, x: torch.Tensor, h0inv: torch.Tensor) -> torch.Tensor:
        """The L-BFGS inverse-Hessian approximation times x (two-loop recursion)."""
        q = x.clone()
        alphas = []
        for i in range(len(self.v)):
            a = self.rho[i] * torch.linalg.vecdot(self.v[i], q)[:, None]
            q.addcmul_(a, self.hv[i], value=-1.0)
            alphas.append(a)
        z = h0inv * q
        for i in reversed(range(len(self.v))):
            b = self.rho[i] * torch.linalg.vecdot(self.hv[i], z)[:, None]
            z.addcmul_(alphas[i] - b, self.v[i])
        return z
