"""Benchmark of the explorer page at full size: --genes genes (40,000) × --dims dimensions (200)
in headless Chromium on this machine's cores, from file://.

What is measured:

- embedding: random programs (each gene near one of 50 centres), float32, two species' worth of
  names; its map is the vectors' first two principal components (the map's values do not
  change the page's size or speed; umap-learn's map of 40k genes is the workflow's job);
- size: index.html and vectors.js (the exact vectors beside the page, past explorer.max_mb);
- load: from navigation to the page ready (int8 codes decoded: what the first query needs), and
  to the exact vectors loaded and normed, the best of --repeats (3) loads;
- queries: similar genes (top 20 and top 100), the calculator (3 terms, top 20) and two genes'
  similarity, each the median of --queries (30) genes, timed inside the page
  (performance.now()); beside them, in the same run, the same similar-genes query by a
  brute-force float32 scan of every exact vector in the page (the baseline: what a page without
  the int8 tier and its bound would do) and NumPy's brute force (float64 on the float32 vectors);
- exact: every page answer (genes and order) equals NumPy's brute force; exit 1 if not.

    python benchmarks/explorer.py                  # 40,000 × 200, about two minutes
    python benchmarks/explorer.py --genes 10000

The machine may be shared: read the ratios, measured in the same run, more than the times.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gexnet.analysis.explore import Explorer
from gexnet.report import explorer as page
from tests.report import browser

BRUTE = """
const [x, norms] = gexnet.exactVectors(), n = gexnet.n, d = gexnet.d, g = arguments[0];
const t = performance.now(), out = new Float64Array(n);
for (let i = 0; i < n; i++) { let s = 0; for (let j = 0; j < d; j++) s += x[i*d+j] * x[g*d+j];
  out[i] = s / (norms[i] * norms[g]); }
out[g] = -Infinity;
const idx = Array.from(out.keys()).sort((a, b) => out[b] - out[a] || a - b).slice(0, 20);
return [performance.now() - t, idx];
"""

TIMED = """
const t = performance.now(), r = gexnet[arguments[0]](...arguments[1]);
return [performance.now() - t, (r.rows || []).map(x => x.gene_id), r.error || null];
"""


def embedding(n: int, d: int, seed: int) -> Explorer:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, d))
    vectors = (centres[rng.integers(0, 50, n)] + rng.normal(size=(n, d))).astype(np.float32)
    half = n // 2
    genes = pd.DataFrame({
        "gene_id": [f"ENSG{i:011d}" if i < half else f"ENSMUSG{i:011d}" for i in range(n)],
        "symbol": [f"GENE{i}" if i < half else f"Gene{i}" for i in range(n)],
        "species": ["human"] * half + ["mouse"] * (n - half), "aliases": "",
    })  # fmt: skip
    return Explorer(genes, vectors, name="bench")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--genes", type=int, default=40_000)
    p.add_argument("--dims", type=int, default=200)
    p.add_argument("--queries", type=int, default=30)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    ex = embedding(args.genes, args.dims, args.seed)
    centred = ex.vectors - ex.vectors.mean(axis=0)
    xy = (centred @ np.linalg.svd(centred[:5000], full_matrices=False)[2][:2].T).astype(np.float32)
    folder = Path(tempfile.mkdtemp()) / "bench"
    t = time.perf_counter()
    sizes = page.write_page(ex.genes, ex.vectors, xy, folder, "bench", "benchmark", "synthetic")
    written = time.perf_counter() - t
    driver = browser.start(folder)
    rows, failures = [], 0
    try:
        ready, exact = [], []
        for _ in range(args.repeats):
            driver.get((folder / "index.html").as_uri())
            while not driver.execute_script("return document.body.dataset.ready === '1'"):
                time.sleep(0.01)
            while not driver.execute_script("return gexnet.hasExact()"):
                time.sleep(0.01)
            nav, done = driver.execute_script(
                "return [performance.timing.navigationStart, Date.now()]")  # fmt: skip
            ready_at = driver.execute_script(
                "return performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"
            )
            ready.append(ready_at / 1000)
            exact.append((done - nav) / 1000)
        rng = np.random.default_rng(args.seed + 1)
        genes = rng.choice(args.genes, args.queries, replace=False)
        timings: dict[str, list[float]] = {k: [] for k in
                                           ("similar20", "similar100", "calc", "similarity", "brute", "numpy")}  # fmt: skip
        for g in genes:
            name = f"{ex.genes.at[g, 'species']}:{ex.genes.at[g, 'symbol']}"
            for key, k in (("similar20", 20), ("similar100", 100)):
                ms, got, _ = driver.execute_script(TIMED, "similar", [name, k])
                timings[key].append(ms)
                t = time.perf_counter()
                want = ex.similar(name, k)["gene_id"].tolist()
                if key == "similar20":
                    timings["numpy"].append(1000 * (time.perf_counter() - t))
                failures += got != want
            other = ex.genes.at[(g + 1) % args.genes, "symbol"]
            third = ex.genes.at[(g + 2) % args.genes, "symbol"]
            expression = f"{name} - {ex.genes.at[g, 'species']}:{other} + {ex.genes.at[g, 'species']}:{third}"
            ms, got, _ = driver.execute_script(TIMED, "calc", [expression, 20])
            timings["calc"].append(ms)
            failures += got != ex.calc(expression, 20)["gene_id"].tolist()
            ms, _, _ = driver.execute_script(
                TIMED, "similarity", [name, f"{ex.genes.at[g, 'species']}:{other}"]
            )
            timings["similarity"].append(ms)
            ms, idx = driver.execute_script(BRUTE, int(g))
            timings["brute"].append(ms)
            failures += (
                ex.genes["gene_id"].to_numpy()[idx].tolist()
                != ex.similar(name, 20)["gene_id"].tolist()
            )
    finally:
        driver.quit()

    median = {k: statistics.median(v) for k, v in timings.items()}
    print(f"explorer page: {args.genes:,} genes × {args.dims} dims; written in {written:.1f} s")
    print(
        f"  index.html {sizes['index.html'] / 1e6:.1f} MB, vectors.js {sizes.get('vectors.js', 0) / 1e6:.1f} MB "
        f"(float32 vectors: {args.genes * args.dims * 4 / 1e6:.1f} MB)"
    )
    print(
        f"  load: ready {min(ready):.2f} s, exact vectors loaded {min(exact):.2f} s (best of {args.repeats})"
    )
    print()
    print(f"{'query (median of ' + str(args.queries) + ')':<40}{'ms':>10}{'vs page':>10}")
    base = median["similar20"]
    for key, text in (("similar20", "similar genes, top 20 (page)"), ("similar100", "similar genes, top 100 (page)"),
                      ("calc", "calculator, 3 terms, top 20 (page)"), ("similarity", "two genes' similarity (page)"),
                      ("brute", "baseline: float32 brute force in the page"), ("numpy", "NumPy brute force (float64)")):  # fmt: skip
        rows.append((text, median[key], median[key] / base))
        print(f"{text:<40}{median[key]:>10.1f}{median[key] / base:>9.2f}×")
    print()
    total = 4 * args.queries
    print(
        f"answers equal to NumPy's brute force: {total + args.queries - failures} of {total + args.queries}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
