"""Benchmark of gene-label classifiers: `gexnet.analysis.logreg` against a per-label scikit-learn loop.

What is measured, on one generated data set with planted signal:

- data: --genes × --dims embeddings (anisotropic Gaussian: a decaying spectrum in a random
  basis), --labels labels in --sources sources; each source annotates its own random 60–95 % of
  the genes (the labels of a source share that valid set); each label has 10–500 positives
  (log-uniform), the valid genes that score highest on a random direction of the embedding plus
  noise (signal strength varies by label, so AUROCs span about 0.6–1);
- engine: `logreg.cross_validate` (C=--C, default tol) on all labels, --folds folds from
  `logreg.fold_of`, then `logreg.auroc`; wall time of both (the line below the table names the
  precision of its Hessian products: bfloat16 where the CPU multiplies it fast);
- scikit-learn: for the first --sklearn-labels labels, per label and fold,
  `LogisticRegression(C=C)` (lbfgs, default tol) fitted on the valid training genes, the
  held-out valid genes scored with `decision_function`, then `roc_auc_score` on the pooled
  out-of-fold scores; its wall time is scaled linearly to all labels;
- ratio: scaled scikit-learn time / engine time, and the largest |AUROC difference| over the
  labels both computed. scikit-learn's default stop (tol=1e-4 on the gradient of the mean loss)
  comes early for labels with few positives, so its AUROCs there can be off by a few 0.01; the
  same loop with tol=1e-8 (--reference-labels, untimed) gives the exact optimum, which the
  engine must match within 0.01 (exit 1 otherwise).

    python benchmarks/classifiers.py            # 5,000 labels × 19,000 genes × 200 dims, 5 folds
    python benchmarks/classifiers.py --quick    # small sizes, under a minute

Both sides use every core (the engine one chunk of labels per core; scikit-learn through the
BLAS under NumPy and SciPy), and one-time start-up costs are left out of both. --quick only
checks that everything runs and agrees: at its sizes one fit takes milliseconds and a
per-label loop is about as fast. The machine may be shared: read the ratio, measured in the
same run, more than the seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from gexnet.analysis import logreg

TOL = 1e-3  # the engine's default, what the workflow runs (classifiers.tol)
# Largest AUROC difference from scikit-learn run to tol=1e-8; 5e-4 measured at full size.
MAX_AUROC_DIFFERENCE = 1e-3


def make_data(
    n_genes: int, n_labels: int, dims: int, sources: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X (n × d float32), Y and valid (n × L bool): see the module docstring."""
    rng = np.random.default_rng(seed)
    spectrum = 1.0 / np.sqrt(1.0 + np.arange(dims) / (dims / 20))
    spectrum *= np.sqrt(dims / (spectrum**2).sum())  # mean variance 1 per dimension
    basis, _ = np.linalg.qr(rng.standard_normal((dims, dims)))
    X = ((rng.standard_normal((n_genes, dims)) * spectrum) @ basis).astype(np.float32)

    coverage = rng.uniform(0.6, 0.95, sources)
    source_valid = rng.random((n_genes, sources)) < coverage
    source = np.arange(n_labels) % sources
    valid = source_valid[:, source]

    Y = np.zeros((n_genes, n_labels), dtype=bool)
    for start in range(0, n_labels, 512):
        cols = np.arange(start, min(start + 512, n_labels))
        signal = X @ rng.standard_normal((dims, len(cols))).astype(np.float32)
        signal /= signal.std(axis=0)
        strength = rng.uniform(0.3, 2.0, len(cols)).astype(np.float32)
        score = signal * strength + rng.standard_normal(signal.shape, dtype=np.float32)
        score[~valid[:, cols]] = -np.inf
        n_pos = np.exp(rng.uniform(np.log(10), np.log(500), len(cols))).astype(int)
        n_pos = np.minimum(n_pos, valid[:, cols].sum(axis=0) // 2)
        order = np.argsort(-score, axis=0)
        for j, col in enumerate(cols):
            Y[order[: n_pos[j], j], col] = True
    return X, Y, valid


def sklearn_scores(X, Y, valid, folds, C: float, labels: np.ndarray, **kw) -> np.ndarray:
    """Out-of-fold decision values of a per-label, per-fold scikit-learn loop."""
    scores = np.full((X.shape[0], len(labels)), np.nan, dtype=np.float32)
    for j, label in enumerate(labels):
        for f in np.unique(folds):
            train = valid[:, label] & (folds != f)
            test = valid[:, label] & (folds == f)
            model = LogisticRegression(C=C, **kw).fit(X[train], Y[train, label])
            scores[test, j] = model.decision_function(X[test])
    return scores


def sklearn_auroc(X, Y, valid, folds, C: float, labels: np.ndarray, **kw) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs ConvergenceWarning at the default max_iter
        scores = sklearn_scores(X, Y, valid, folds, C, labels, **kw)
    return np.array(
        [roc_auc_score(Y[valid[:, j], j], scores[valid[:, j], i]) for i, j in enumerate(labels)]
    )


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", type=int, default=5000)
    parser.add_argument("--genes", type=int, default=19000)
    parser.add_argument("--dims", type=int, default=200)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--sources", type=int, default=4)
    parser.add_argument("--sklearn-labels", type=int, default=30, help="timed, default tol")
    parser.add_argument(
        "--reference-labels", type=int, default=10, help="untimed, tol=1e-8: the exact optimum"
    )
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    args = parser.parse_args(argv)
    if args.quick:
        args.labels, args.genes, args.dims, args.sklearn_labels = 300, 3000, 64, 20

    X, Y, valid = make_data(args.genes, args.labels, args.dims, args.sources, args.seed)
    folds = logreg.fold_of(args.genes, args.folds, args.seed)
    print(
        f"{args.labels} labels × {args.genes} genes × {args.dims} dims, {args.folds} folds, "
        f"{args.sources} sources, C={args.C}; {cores()} cores",
        flush=True,
    )

    # One-time costs (torch and scikit-learn start-up) stay out of both timings.
    few = np.arange(min(8, args.labels))
    warm = logreg.cross_validate(X[:500], Y[:500, few], valid[:500, few], folds[:500])
    logreg.auroc(warm, Y[:500, few], valid[:500, few])
    sklearn_auroc(X[:500], Y[:500], valid[:500], folds[:500], args.C, few[:1])

    start = time.perf_counter()
    scores = logreg.cross_validate(X, Y, valid, folds, C=args.C, tol=TOL)
    cv_s = time.perf_counter() - start
    engine_auc = logreg.auroc(scores, Y, valid)
    engine_s = time.perf_counter() - start

    labels = np.arange(min(args.sklearn_labels, args.labels))
    start = time.perf_counter()
    sk_auc = sklearn_auroc(X, Y, valid, folds, args.C, labels)
    sk_s = time.perf_counter() - start
    sk_all = sk_s * args.labels / len(labels)
    ref = labels[: args.reference_labels]
    ref_auc = sklearn_auroc(X, Y, valid, folds, args.C, ref, tol=1e-8, max_iter=10_000)

    print(f"{'':<28}{'labels timed':>14}{'seconds':>10}{'all labels (s)':>16}")
    print(f"{'gexnet.analysis.logreg':<28}{args.labels:>14}{engine_s:>10.1f}{engine_s:>16.1f}")
    print(f"{'  cross_validate + auroc':<28}{'':>14}{cv_s:>10.1f} + {engine_s - cv_s:.1f}")
    print(f"{'scikit-learn loop':<28}{len(labels):>14}{sk_s:>10.1f}{sk_all:>16.0f}")
    hvp = logreg._Solver(args.C, TOL, 1).hvp_dtype  # what cross_validate used
    print(f"speed-up, scikit-learn ÷ gexnet: {sk_all / engine_s:.0f}× (Hessian products: {hvp})")
    d_default = np.abs(engine_auc[labels] - sk_auc).max()
    d_ref = np.abs(engine_auc[ref] - ref_auc).max()
    print(
        f"AUROC median {np.nanmedian(engine_auc):.3f}; max |Δ| vs scikit-learn default tol on "
        f"{len(labels)} labels: {d_default:.1e}; vs tol=1e-8 on {len(ref)}: {d_ref:.1e}"
    )
    if not d_ref <= MAX_AUROC_DIFFERENCE:
        print(
            f"FAIL: AUROC differs from scikit-learn at tol=1e-8 by more than "
            f"{MAX_AUROC_DIFFERENCE}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
