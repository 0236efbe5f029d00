"""Benchmark of gene-label classifiers: `gexnet.analysis.logreg` against a per-label scikit-learn loop.

What is measured, on one generated data set with planted signal:

- data: --genes × --dims embeddings (anisotropic Gaussian: a decaying spectrum in a random
  basis), --labels labels in --sources sources; each source annotates its own random 60–95 % of
  the genes (the labels of a source share that valid set); each label has 10–500 positives
  (log-uniform), the valid genes that score highest on a random direction of the embedding plus
  noise (signal strength varies by label, so AUROCs span about 0.6–1);
- engine: `logreg.cross_validate` (C=--C, default tol) on all labels, --folds folds from
  `logreg.fold_of`, then AUROC and AUPRC per fold, averaged over the folds
  (`classify.fold_mean_metrics`, as the workflow's `gexnet classify metrics`); wall time of
  both. Per fold it prints the iterations and the matrix products the fits took (`logreg.Cost`: a product is one pass of all labels
  over the fold's training genes, genes × d+1), and the floor those products alone would take
  at the machine's rate for one --genes × (--dims + 1) × --labels product (numpy's BLAS on all
  cores, as the engine runs them), so the distance to that floor shows;
- the job: the same labels as `gexnet classify metrics` meets them (an embedding file and a
  labels table in, `classify.cross_validated_metrics`: the label matrix, the fits, the metrics
  table out); its wall time, and its AUROC against the engine's (the same fits: equal);
- scikit-learn: for the first --sklearn-labels labels, per label and fold,
  `LogisticRegression(C=C)` (lbfgs, default tol) fitted on the valid training genes, the
  held-out valid genes scored with `decision_function` and `roc_auc_score` per fold, averaged
  over the folds (`cross_val_score`'s convention); its wall time is scaled linearly to all labels;
- ratio: scaled scikit-learn time / engine time. scikit-learn's default stop (tol=1e-4 on the
  gradient of the mean loss) comes early for labels with few positives, so its AUROCs there can
  be off by a few 0.01; the same loop with tol=1e-8 (untimed) gives the exact optimum, and the
  engine's AUROC must match it within 1e-3 on every timed label (exit 1 otherwise).

    python benchmarks/classifiers.py            # 5,000 labels × 19,000 genes × 200 dims, 5 folds
    python benchmarks/classifiers.py --isa avx2 # the same with every library held to AVX2
    python benchmarks/classifiers.py --quick    # small sizes, under a minute

The engine's speed does not depend on bfloat16 (it multiplies in float32 only). --isa avx2 runs
the whole benchmark as on a CPU without AVX-512, bfloat16 or AMX: it restarts itself with
numpy's, OpenBLAS's, MKL's, oneDNN's and torch's own kernels held to AVX2 (environment variables
each library reads at start-up), for both sides. Both sides use every core (the engine one chunk
of labels per core; scikit-learn through the BLAS under NumPy and SciPy), and one-time start-up
costs are left out of both. --quick only checks that everything runs and agrees: at its sizes
one fit takes milliseconds and a per-label loop is about as fast. The machine may be shared:
read the ratio, measured in the same run, more than the seconds.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd

TOL = 1e-3  # the engine's default, what the workflow runs (classifiers.tol)
MAX_AUROC_DIFFERENCE = 1e-3  # against scikit-learn run to tol=1e-8, on every timed label


def avx2_environment() -> dict[str, str]:
    """Environment variables that hold numpy, OpenBLAS, MKL, oneDNN and torch to AVX2."""
    from numpy._core._multiarray_umath import __cpu_features__

    newer = [f for f in __cpu_features__ if f.startswith(("AVX512", "AMX")) or f == "AVX_VNNI"]
    return {
        "NPY_DISABLE_CPU_FEATURES": " ".join(f for f in newer if __cpu_features__[f]),
        "OPENBLAS_CORETYPE": "Haswell",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "ATEN_CPU_CAPABILITY": "avx2",
    }


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_description() -> str:
    """The CPU, whether it multiplies bfloat16 natively, and the instruction sets in use."""
    import threadpoolctl
    import torch

    native = any(
        getattr(torch.cpu, probe, lambda: False)()
        for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )
    blas = [
        f"{i['internal_api']} {i.get('architecture', '?')}"
        for i in threadpoolctl.threadpool_info()
        if i["user_api"] == "blas"
    ]
    held = " (held to AVX2 here)" if os.environ.get("GEXNET_BENCHMARK_ISA") == "avx2" else ""
    return (
        f"{cpu_name()}, {cores()} cores; native bfloat16: {'yes' if native else 'no'}{held}; "
        f"torch kernels: {torch.backends.cpu.get_cpu_capability()}; BLAS: {', '.join(blas)}"
    )


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


def workflow_inputs(X, Y, valid, sources: int, folder: str) -> tuple[str, pd.DataFrame]:
    """The data as `gexnet classify metrics` reads it: an embedding file and a labels table.
    Each source gets one more term holding all its valid genes, too large to be a label, so
    that the genes it annotates (the labels' negatives) are the valid ones."""
    from gexnet.formats.embeddings import embedding_table
    from gexnet.formats.io import write_table

    ids = np.array([f"G{i:05d}" for i in range(len(X))])
    genes = pd.DataFrame({"gene_id": ids, "symbol": ids, "biotype": "protein_coding"})
    path = os.path.join(folder, "embedding.parquet")
    write_table(embedding_table(genes, X), path)
    gene, label = np.nonzero(Y)
    terms = pd.DataFrame(
        {"source": label % sources, "term_id": label.astype(str), "gene_id": ids[gene]}
    )
    # label s < sources is of source s: its valid genes are the source's
    whole = [
        pd.DataFrame({"source": s, "term_id": "all", "gene_id": ids[valid[:, s]]})
        for s in range(sources)
    ]
    table = pd.concat([terms, *whole], ignore_index=True)
    table["source"] = "source" + table["source"].astype(str)
    table["term_name"] = table["term_id"]
    return path, table


def sklearn_scores(X, Y, valid, folds, C: float, labels: np.ndarray, **kw) -> np.ndarray:
    """Out-of-fold decision values of a per-label, per-fold scikit-learn loop."""
    from sklearn.linear_model import LogisticRegression

    scores = np.full((X.shape[0], len(labels)), np.nan, dtype=np.float32)
    for j, label in enumerate(labels):
        for f in np.unique(folds):
            train = valid[:, label] & (folds != f)
            test = valid[:, label] & (folds == f)
            model = LogisticRegression(C=C, **kw).fit(X[train], Y[train, label])
            scores[test, j] = model.decision_function(X[test])
    return scores


def sklearn_auroc(X, Y, valid, folds, C: float, labels: np.ndarray, **kw) -> np.ndarray:
    """Per label, the mean of the held-out genes' AUROC over the folds that hold a positive and
    a negative (as `classify.fold_mean_metrics`)."""
    from sklearn.metrics import roc_auc_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs ConvergenceWarning at the default max_iter
        scores = sklearn_scores(X, Y, valid, folds, C, labels, **kw)
    auc = np.full(len(labels), np.nan)
    for i, j in enumerate(labels):
        tests = [valid[:, j] & (folds == f) for f in np.unique(folds)]
        per_fold = [
            roc_auc_score(Y[t, j], scores[t, i]) for t in tests if 0 < Y[t, j].sum() < t.sum()
        ]
        auc[i] = np.mean(per_fold) if per_fold else np.nan  # folds with both classes only
    return auc


def product_seconds(genes: int, dims: int, labels: int, repeats: int = 3) -> float:
    """Seconds for one labels × (dims + 1) by (dims + 1) × genes float32 product, the step's
    product of the engine, through numpy's BLAS on all cores (the best of `repeats`)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((labels, dims + 1), dtype=np.float32)
    b = rng.standard_normal((dims + 1, genes), dtype=np.float32)
    a @ b
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return best


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
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument(
        "--isa", choices=["native", "avx2"], default="native",
        help="avx2: run as on a CPU without AVX-512, bfloat16 or AMX (see above)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.isa == "avx2" and os.environ.get("GEXNET_BENCHMARK_ISA") != "avx2":
        env = os.environ | avx2_environment() | {"GEXNET_BENCHMARK_ISA": "avx2"}
        argv = sys.argv[1:] if argv is None else argv
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *argv], env)
    if args.quick:
        args.labels, args.genes, args.dims, args.sklearn_labels = 300, 3000, 64, 20

    from gexnet.analysis import classify, logreg
    from gexnet.training.trainer import keep_freed_memory

    keep_freed_memory()  # as `gexnet classify` does
    X, Y, valid = make_data(args.genes, args.labels, args.dims, args.sources, args.seed)
    folds = logreg.fold_of(args.genes, args.folds, args.seed)
    print(
        f"{args.labels} labels × {args.genes} genes × {args.dims} dims, {args.folds} folds, "
        f"{args.sources} sources, C={args.C}\n{cpu_description()}"
        + (f"\nheld to AVX2: {avx2_environment()}" if args.isa == "avx2" else ""),
        flush=True,
    )

    # One-time costs (torch and scikit-learn start-up) stay out of both timings.
    few = np.arange(min(8, args.labels))
    warm = logreg.cross_validate(X[:500], Y[:500, few], valid[:500, few], folds[:500])
    classify.fold_mean_metrics(warm, Y[:500, few], valid[:500, few], folds[:500])
    sklearn_auroc(X[:500], Y[:500], valid[:500], folds[:500], args.C, few[:1])

    cost: dict = {}
    start = time.perf_counter()
    scores = logreg.cross_validate(X, Y, valid, folds, C=args.C, tol=TOL, cost=cost)
    cv_s = time.perf_counter() - start
    engine_auc, _ = classify.fold_mean_metrics(scores, Y, valid, folds)
    engine_s = time.perf_counter() - start

    # The workflow's job on the same problems: files in, the metrics table out.
    with tempfile.TemporaryDirectory() as folder:
        embedding, table = workflow_inputs(X, Y, valid, args.sources, folder)
        settings = {"min_genes": 10, "max_genes": 500, "folds": args.folds, "C": args.C,
                    "tol": TOL, "sources": None, "train_biotypes": ["protein_coding"]}  # fmt: skip
        os.environ["TQDM_DISABLE"] = "1"  # the job's progress bar
        start = time.perf_counter()
        job = classify.cross_validated_metrics(embedding, table, settings, args.seed)
        job_s = time.perf_counter() - start
    assert len(job) == args.labels, "every label of the benchmark is a label of the job"
    job_auc = np.full(args.labels, np.nan)
    job_auc[job["term_id"].astype(int)] = job["auroc"]

    labels = np.arange(min(args.sklearn_labels, args.labels))
    start = time.perf_counter()
    sk_auc = sklearn_auroc(X, Y, valid, folds, args.C, labels)
    sk_s = time.perf_counter() - start
    sk_all = sk_s * args.labels / len(labels)
    ref_auc = sklearn_auroc(X, Y, valid, folds, args.C, labels, tol=1e-8, max_iter=10_000)

    one = product_seconds(args.genes, args.dims, args.labels)
    print(f"\n{'fold':<6}{'label fits':>12}{'iterations/fit':>16}{'products':>10}{'floor (s)':>11}")
    floor = 0.0
    for f, c in sorted(cost.items()):
        # The products' time at the measured rate: label rows × training genes passed.
        seconds = c.gene_passes / (args.labels * args.genes) * one
        floor += seconds
        print(
            f"{f:<6}{c.fits:>12}{c.iterations / c.fits:>16.2f}{c.products:>10.1f}{seconds:>11.2f}"
        )
    print(
        f"one {args.genes:,} × {args.dims + 1} × {args.labels:,} product: {one:.3f} s; the "
        f"products alone at that rate: {floor:.1f} s of the engine's {cv_s:.1f} s "
        f"({cv_s / floor:.1f}× the floor)"
    )
    print(f"\n{'':<28}{'labels timed':>14}{'seconds':>10}{'all labels (s)':>16}")
    print(f"{'gexnet.analysis.logreg':<28}{args.labels:>14}{engine_s:>10.1f}{engine_s:>16.1f}")
    print(f"{'  cross_validate + metrics':<28}{'':>14}{cv_s:>10.1f} + {engine_s - cv_s:.1f}")
    print(f"{'  the job (files in, table out)':<28}{args.labels:>14}{job_s:>10.1f}{job_s:>16.1f}")
    print(f"{'scikit-learn loop':<28}{len(labels):>14}{sk_s:>10.1f}{sk_all:>16.0f}")
    print(f"speed-up, scikit-learn ÷ gexnet: {sk_all / engine_s:.0f}×")
    d_default = np.abs(engine_auc[labels] - sk_auc).max()
    d_ref = np.abs(engine_auc[labels] - ref_auc).max()
    print(
        f"AUROC median {np.nanmedian(engine_auc):.3f}; max |Δ| over the {len(labels)} timed "
        f"labels vs scikit-learn at its default tol: {d_default:.1e}, at tol=1e-8: {d_ref:.1e}"
    )
    d_job = np.nanmax(np.abs(job_auc - engine_auc))
    print(f"the job's AUROC vs the engine's above: max |Δ| {d_job:.1e} over {args.labels} labels")
    if not d_job <= MAX_AUROC_DIFFERENCE:
        print("FAIL: the job's AUROC differs from the engine's", file=sys.stderr)
        return 1
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
