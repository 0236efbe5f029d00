"""Benchmark of the ortholog ranks and the alignment: `gexnet.analysis.align` against a direct
per-gene loop, on one generated pair of embeddings.

What is measured:

- data: --genes × --dims vectors per species (clustered, as gene embeddings are), the mouse side
  a rotated, noised copy, every gene paired with its copy;
- ranks: `align.ortholog_ranks` for all pairs, both directions, by cosine and by CSLS (chunked
  matrix products), against a per-gene loop (for each pair: its query's scores against all
  genes, the count above the partner; CSLS with its radii from the same loop), timed on
  --loop-genes queries and scaled linearly to all; the ranks of those queries must agree
  (exit 1 otherwise): at least 99% identical and none off by more than 1, since the two sum
  float32 products in different orders and a candidate within rounding (~1e-7) of the partner's
  score plus `align.TIE` may fall either side of it (2 of 500 CSLS ranks, both in the
  thousands, at 20,000 genes);
- fit: one supervised alignment (Procrustes on 95% of the pairs, --refinements refinements
  under CSLS, each scored on a validation part), the whole of what one method costs.

    python benchmarks/ortholog_ranks.py               # 20,000 genes × 200 dims
    python benchmarks/ortholog_ranks.py --genes 2000  # seconds

The machine may be shared: read the ratio, measured in the same run, more than the seconds.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from gexnet.analysis import align


def embeddings(genes: int, dims: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, dims))
    a = centres[rng.integers(0, 50, genes)] + rng.normal(size=(genes, dims))
    q, _ = np.linalg.qr(rng.normal(size=(dims, dims)))
    b = a @ q + 0.5 * rng.normal(size=(genes, dims))
    return align.normalize(a), align.normalize(b)


def loop_ranks(a, b, queries, measure, k) -> tuple[np.ndarray, float, float]:
    """Rank of b[i] for a[i], one query at a time (the direct way); with the seconds its CSLS
    radii took (every gene's, whatever the queries) and those of the queries."""
    start = time.perf_counter()
    radius_b = radius_a = None
    if measure == "csls":
        radius_b = np.array([np.sort(b @ a[i])[-k:].mean() for i in range(len(a))])
        radius_a = np.array([np.sort(a @ b[j])[-k:].mean() for j in range(len(b))])
    radii = time.perf_counter() - start
    start = time.perf_counter()
    ranks = []
    for i in queries:
        scores = b @ a[i]
        if measure == "csls":
            scores = 2 * scores - radius_b[i] - radius_a
        ranks.append(1 + int((scores > scores[i] + align.TIE).sum()))  # same tie rule
    return np.array(ranks), radii, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--genes", type=int, default=20_000)
    p.add_argument("--dims", type=int, default=200)
    p.add_argument("--loop-genes", type=int, default=500, help="queries the loop is timed on")
    p.add_argument("--refinements", type=int, default=5)
    args = p.parse_args(argv)
    a, b = embeddings(args.genes, args.dims)
    pairs = np.arange(args.genes)
    queries = np.random.default_rng(1).choice(args.genes, args.loop_genes, replace=False)
    rows, ok = [], True
    for measure in align.MEASURES:
        start = time.perf_counter()
        ranks = align.ortholog_ranks(a, b, pairs, pairs, measure)
        ours = time.perf_counter() - start
        direct, radii, looped = loop_ranks(a, b, queries, measure, 10)
        scaled = radii + looped * 2 * args.genes / args.loop_genes  # both directions
        gap = np.abs(direct - ranks["rank_ab"][queries])
        ok &= bool((gap == 0).mean() >= 0.99 and gap.max() <= 1)
        same = f"{(gap == 0).sum()}/{len(gap)}" + (f" (others ±{gap.max()})" if gap.any() else "")
        rows.append((f"ranks, {measure}, both directions", ours, scaled, same))
    split = align.split_dictionary(args.genes, 0.05, 0.05, seed=0)
    part = {s: (pairs[split == s], pairs[split == s]) for s in align.SPLITS}
    start = time.perf_counter()
    fit = align.fit_supervised(a, b, part["train"], part["validation"], args.refinements)
    fitted = time.perf_counter() - start
    held = align.ortholog_ranks(a @ fit.mapping, b, *part["held_out"])["rank_ab"]
    print(f"{args.genes:,} genes × {args.dims} dims per species; loop timed on "
          f"{args.loop_genes} queries, scaled to all {args.genes:,} pairs × 2 directions\n")  # fmt: skip
    print("| step | gexnet s | per-gene loop s (scaled) | ratio | loop's ranks equal |")
    print("|---|---:|---:|---:|---|")
    for name, ours, loop, same in rows:
        print(f"| {name} | {ours:.1f} | {loop:.0f} | {loop / ours:.0f}× | {same} |")
    print(f"| supervised fit, {args.refinements} refinements | {fitted:.1f} | | | |")
    print(f"\nheld-out rank 1 after the fit: {(held == 1).mean():.1%}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
