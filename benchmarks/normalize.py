"""Benchmark of normalization: gexnet's arithmetic against the published algorithm, and memory.

1. Throughput of QC metrics + scaling + Binning-By-Gene + tokens on one generated counts matrix
   (genes × samples), two ways in the same run on the same input:
   - gexnet: QC metrics and `scale_log` over sample blocks, `bin_genes` over gene blocks and
     `top_genes` over sample blocks, as `normalize.normalize` does, but in memory;
   - baseline: the same QC metrics, the published scaling in float64, `direct_binning` (argsort
     of argsort per gene) on gexnet's log values, then per sample a stable argsort of the bins,
     descending, and its first expressed genes.
   Bins and token sequences must be identical, log values within 1e-6 (exit 1 otherwise). The input to binning is made
   tie-free by construction (tied values nudged apart by a few float32 ulps, untimed), since
   the two break ties differently by design.
2. Peak RSS, in a subprocess, for N and 2N samples at one block budget (it should not grow
   with N) of (a) the streaming pipeline `normalize.normalize` on an HDF5 compendium whose QC
   removes one contiguous tenth of the samples (a failing study: ARCHS4 files are ordered by
   series), and (b) `byo.convert` of the same counts written as a TSV table.

    python benchmarks/normalize.py [--genes 20000] [--samples 20000] [--quick] ...

The machine is shared and noisy: read the ratios (measured in the same run), not the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from gexnet import config
from gexnet.corpus import binning, tokens
from gexnet.formats.io import write_table

ARCHS4_GENES, ARCHS4_SAMPLES = 67_000, 720_000  # ARCHS4 human, gene level
SHAPE = 2.0  # gamma shape of the gamma-Poisson (negative binomial dispersion 0.5)
MEAN_LOG, SIGMA_LOG = 1.0, 2.5  # log-normal gene means: about a third of the counts are zero


def settings() -> dict:
    cfg = config.validate({})
    return {k: cfg[k] for k in ("genes", "normalize", "tokens", "dense", "qc")}


# --- generated counts ---------------------------------------------------------------------


def counts_block(means: np.ndarray, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Gamma-Poisson counts (genes × n_samples, uint32) with log-normal library size factors."""
    depth = rng.lognormal(0.0, 0.3, n_samples)
    lam = rng.gamma(SHAPE, 1.0 / SHAPE, size=(len(means), n_samples))
    lam *= means[:, None]
    lam *= depth
    return rng.poisson(lam).astype(np.uint32)


def generate(n_genes: int, n_samples: int, block_values: int, seed: int):
    """Yield (start, counts block) over sample blocks of one generated compendium."""
    rng = np.random.default_rng(seed)
    means = rng.lognormal(MEAN_LOG, SIGMA_LOG, n_genes)
    width = max(1, block_values // n_genes)
    for s0 in range(0, n_samples, width):
        yield s0, counts_block(means, min(width, n_samples - s0), rng)


def break_ties(values: np.ndarray, chunk: int = 64) -> int:
    """Make each gene's non-zero values distinct, in place, keeping their order: the k-th of a
    run of equal values moves up by k ulps (and later values as needed). Returns how many moved.
    """
    n_genes, n = values.shape
    idx = np.arange(n, dtype=np.int64)
    bits_of = values.view(np.uint32)
    moved = 0
    for g0 in range(0, n_genes, chunk):
        g1 = min(n_genes, g0 + chunk)
        keys = bits_of[g0:g1].astype(np.uint64) << np.uint64(32)
        keys |= np.arange(n, dtype=np.uint64)
        keys.sort(axis=1)
        bits = (keys >> np.uint64(32)).astype(np.int64)
        order = (keys & np.uint64(0xFFFFFFFF)).astype(np.int64)
        # new[i] = max(bits[i], new[i-1] + 1) over the non-zero run, i.e. a running max of bits - i
        lifted = np.where(bits > 0, bits - idx, np.iinfo(np.int64).min // 2)
        new = np.maximum.accumulate(lifted, axis=1) + idx
        new[bits == 0] = 0
        moved += int(np.count_nonzero(new != bits))
        bits_of[np.arange(g0, g1)[:, None], order] = new.astype(np.uint32)
    return moved


# --- the two implementations, stage by stage -----------------------------------------------


def sample_blocks(counts: np.ndarray, block_values: int) -> list[tuple[int, np.ndarray]]:
    """(start, genes × block) sample blocks, contiguous as read from the compendium file."""
    n_genes, n_samples = counts.shape
    width = max(1, block_values // n_genes)
    return [
        (s0, np.ascontiguousarray(counts[:, s0 : s0 + width])) for s0 in range(0, n_samples, width)
    ]


def gexnet_qc(blocks, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    totals = np.zeros(n_samples, np.int64)
    detected = np.zeros(n_samples, np.int64)
    for s0, block in blocks:
        totals[s0 : s0 + block.shape[1]] = block.sum(axis=0, dtype=np.int64)
        detected[s0 : s0 + block.shape[1]] = np.count_nonzero(block, axis=0)
    return totals, detected


def gexnet_scale(blocks, values: np.ndarray, totals: np.ndarray, scale_to: float) -> np.ndarray:
    """Log values into the gene-major matrix (the pipeline's scratch file)."""
    for s0, block in blocks:
        s1 = s0 + block.shape[1]
        values[:, s0:s1] = binning.scale_log(block, totals[s0:s1], scale_to)
    return values


def gexnet_bins(values: np.ndarray, bins: int, block_values: int) -> np.ndarray:
    n_genes, n_samples = values.shape
    out = np.empty((n_genes, n_samples), np.uint16)
    height = max(1, block_values // n_samples)
    for g0 in range(0, n_genes, height):
        out[g0 : g0 + height], _ = binning.bin_genes(values[g0 : g0 + height], bins)
    return out


def gexnet_tokens(
    bins: np.ndarray, values: np.ndarray, context: int, block_values: int
) -> np.ndarray:
    n_genes, n_samples = bins.shape
    out = np.empty((n_samples, context), np.int32)
    width = max(1, block_values // n_genes)
    for s0 in range(0, n_samples, width):
        w = slice(s0, s0 + width)
        out[w] = tokens.top_genes(bins[:, w].T, values[:, w].T > 0, context)
    return out


def baseline_qc(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return counts.sum(axis=0, dtype=np.int64), np.count_nonzero(counts, axis=0)


def baseline_scale(
    counts: np.ndarray, values: np.ndarray, totals: np.ndarray, scale_to: float
) -> np.ndarray:
    """The published arithmetic in float64, by 1,000 genes (a whole-matrix call would need
    several float64 copies of the matrix)."""
    for g0 in range(0, counts.shape[0], 1000):
        values[g0 : g0 + 1000] = np.log10(counts[g0 : g0 + 1000] / totals * scale_to + 1)
    return values


def baseline_tokens(bins: np.ndarray, values: np.ndarray, context: int) -> np.ndarray:
    """Per sample: genes by bin, highest first (stable: lower index first), expressed only."""
    by_sample = np.ascontiguousarray(bins.T).astype(np.int32)
    expressed = np.ascontiguousarray(values.T > 0)
    out = np.full((by_sample.shape[0], context), -1, np.int32)
    for s in range(by_sample.shape[0]):
        order = np.argsort(-by_sample[s], kind="stable")
        order = order[expressed[s, order]][:context]
        out[s, : len(order)] = order
    return out


class Clock:
    """Seconds per (side, stage)."""

    def __init__(self) -> None:
        self.seconds: dict[tuple[str, str], float] = {}

    def run(self, side: str, stage: str, fn, *args):
        t = time.perf_counter()
        result = fn(*args)
        self.seconds[side, stage] = time.perf_counter() - t
        print(f"  {side:8s} {stage:8s} {self.seconds[side, stage]:8.2f} s", flush=True)
        return result


def throughput(args: argparse.Namespace, cfg: dict) -> tuple[list[dict], bool]:
    n_genes, n_samples, block = args.genes, args.samples, args.block_values
    bins_n, scale_to = cfg["normalize"]["bins"], cfg["normalize"]["scale_to"]
    context = cfg["tokens"]["context"]
    sub_genes = min(n_genes, args.baseline_genes or n_genes)
    sub_samples = min(n_samples, args.baseline_samples or n_samples)
    n_values = n_genes * n_samples
    print(f"\n## 1. Throughput: {n_genes:,} genes × {n_samples:,} samples = {n_values:,} values")
    print(f"block_values {block:,}, bins {bins_n}, context {context}")

    t = time.perf_counter()
    counts = np.empty((n_genes, n_samples), np.uint32)
    for s0, c in generate(n_genes, n_samples, block, args.seed):
        counts[:, s0 : s0 + c.shape[1]] = c
    zeros = 1 - np.count_nonzero(counts) / counts.size
    print(f"generated in {time.perf_counter() - t:.1f} s; zeros {zeros:.1%}")

    blocks = sample_blocks(counts, block)
    clock = Clock()
    qc_b = clock.run("baseline", "qc", baseline_qc, counts)
    qc_g = clock.run("gexnet", "qc", gexnet_qc, blocks, n_samples)
    totals = qc_g[0]
    # Outputs allocated and touched untimed: first touch of a large matrix by column blocks
    # costs seconds of page faults that the pipeline (writing a file) does not pay.
    values_b, values = np.ones(counts.shape, np.float32), np.ones(counts.shape, np.float32)
    clock.run("baseline", "scale", baseline_scale, counts, values_b, totals, scale_to)
    clock.run("gexnet", "scale", gexnet_scale, blocks, values, totals, scale_to)
    same_qc = all(np.array_equal(a, b) for a, b in zip(qc_b, qc_g, strict=True))
    # float32 arithmetic against float64: a few units in the last place
    values_error = float(np.max(np.abs(values - values_b) / np.maximum(values_b, 1e-30)))
    same_values = values_error < 1e-6
    del counts, blocks, values_b

    t = time.perf_counter()
    moved = break_ties(values)
    print(f"tie-free input: {moved:,} tied values nudged by ulps ({time.perf_counter() - t:.1f} s)")

    bins_b = clock.run("baseline", "binning", binning.direct_binning, values[:sub_genes], bins_n)
    bins_g = clock.run("gexnet", "binning", gexnet_bins, values, bins_n, block)
    same_bins = np.array_equal(bins_b, bins_g[:sub_genes])
    # The baseline's tokens start from its own bins; from gexnet's (checked identical on the
    # genes binned) when the baseline binned only some genes.
    source = bins_b if sub_genes == n_genes else bins_g
    del bins_b
    tok_b = clock.run(
        "baseline",
        "tokens",
        baseline_tokens,
        source[:, :sub_samples],
        values[:, :sub_samples],
        context,
    )
    del source
    tok_g = clock.run("gexnet", "tokens", gexnet_tokens, bins_g, values, context, block)
    same_tokens = np.array_equal(tok_b, tok_g[:sub_samples])

    scale = {
        "qc": 1.0,
        "scale": 1.0,
        "binning": n_genes / sub_genes,
        "tokens": n_samples / sub_samples,
    }
    if scale["binning"] != 1:
        print(
            f"baseline binning timed on {sub_genes:,} of {n_genes:,} genes, scaled ×"
            f"{scale['binning']:.2f} (linear in genes)"
        )
    if scale["tokens"] != 1:
        print(
            f"baseline tokens timed on {sub_samples:,} of {n_samples:,} samples, scaled ×"
            f"{scale['tokens']:.2f} (linear in samples)"
        )

    rows = []
    for stage in ("qc", "scale", "binning", "tokens"):
        g = clock.seconds["gexnet", stage]
        b = clock.seconds["baseline", stage] * scale[stage]
        rows.append({"stage": stage, "gexnet s": g, "baseline s": b})
    rows.append(
        {
            "stage": "total",
            "gexnet s": sum(r["gexnet s"] for r in rows),
            "baseline s": sum(r["baseline s"] for r in rows),
        }
    )
    for r in rows:
        r["gexnet values/s"] = n_values / r["gexnet s"]
        r["baseline values/s"] = n_values / r["baseline s"]
        r["ratio gexnet/baseline"] = r["baseline s"] / r["gexnet s"]

    print(f"identical QC metrics: {'yes' if same_qc else 'no'}")
    print(
        f"log values within 1e-6 of the float64 result: {'yes' if same_values else 'no'} "
        f"(largest relative difference {values_error:.2g})"
    )
    print(
        f"identical bins: {'yes' if same_bins else 'no'} ({sub_genes:,} genes × "
        f"{n_samples:,} samples compared)"
    )
    print(
        f"identical token sequences: {'yes' if same_tokens else 'no'} ({sub_samples:,} "
        f"samples × context {context} compared)"
    )
    table = pd.DataFrame(rows).set_index("stage")
    print(table.to_string(float_format=lambda x: f"{x:,.3g}" if x < 1000 else f"{x:,.0f}"))

    archs4 = ARCHS4_GENES * ARCHS4_SAMPLES
    total = rows[-1]
    print(
        f"\nARCHS4 human ({ARCHS4_GENES:,} genes × {ARCHS4_SAMPLES:,} samples = {archs4:.3g} "
        "values), linear in values, single process on this machine:"
    )
    for side in ("gexnet", "baseline"):
        hours = archs4 / total[f"{side} values/s"] / 3600
        print(f"  {side:8s} {hours:8.1f} h")
    print("  (sorts grow with log(samples) and the token step with genes: a lower bound)")
    for r in rows[:-1]:
        if r["ratio gexnet/baseline"] < 1:
            print(
                f"NOTE: gexnet slower than the baseline at {r['stage']}: "
                f"{1 / r['ratio gexnet/baseline']:.2f}× the baseline's time"
            )
    binning_ratio = rows[2]["ratio gexnet/baseline"]
    print(f"binning at identical bins ≥ 5× the baseline: {'yes' if binning_ratio >= 5 else 'no'}")
    ok = same_qc and same_values and same_bins and same_tokens
    return rows, ok


# --- memory of the streaming pipeline ------------------------------------------------------


def write_compendium(
    path: Path, n_genes: int, n_samples: int, block: int, seed: int, genes: list[str]
) -> slice:
    """A generated compendium whose middle tenth of samples is one failing study: a contiguous
    run of single-cell samples (ARCHS4 files are ordered by series), which QC removes. Returns
    that run."""
    from gexnet.formats.archs4 import Archs4Writer

    failing = slice(int(0.45 * n_samples), int(0.45 * n_samples) + n_samples // 10)
    with Archs4Writer(path, "gene", n_genes, n_samples) as w:
        for s0, c in generate(n_genes, n_samples, block, seed):
            w.write_samples(s0, c)
        features = pd.DataFrame(
            {"ensembl_gene": genes, "symbol": [f"S{i}" for i in range(n_genes)],
             "biotype": "protein_coding"}
        )  # fmt: skip
        scp = np.zeros(n_samples)
        scp[failing] = 0.9
        samples = pd.DataFrame(
            {
                "geo_accession": [f"GSM{i + 1}" for i in range(n_samples)],
                "series_id": [f"GSE{i // 20 + 1}" for i in range(n_samples)],
                "singlecellprobability": scp,
            }
        )
        w.finish(features, samples, {"version": "benchmark"})
    return failing


def write_tsv(compendium: Path, counts_path: Path, sheet_path: Path, block: int) -> None:
    """The compendium as a bring-your-own text table (gene ID, then one column per sample) and
    its sample sheet, written by blocks of gene rows."""
    from gexnet.formats.archs4 import Archs4File

    with Archs4File(compendium) as f, open(counts_path, "w") as out:
        genes = f.features()["ensembl_gene"].tolist()
        samples = f.samples(["geo_accession", "series_id"])
        out.write("\t".join(["gene_id", *samples["geo_accession"]]) + "\n")
        height = max(1, block // f.n_samples)
        for g0 in range(0, f.n_features, height):
            counts = f.read(features=slice(g0, g0 + height))
            for gene, row in zip(genes[g0 : g0 + height], counts.tolist(), strict=True):
                out.write(gene + "\t" + "\t".join(map(str, row)) + "\n")
    samples.rename(columns={"geo_accession": "sample", "series_id": "series"}).to_csv(
        sheet_path, sep="\t", index=False
    )


def run_child(argv: list[str], tmp: Path, name: str) -> tuple[float, float, float, int]:
    """Run this script as a child: its peak RSS in MiB (VmHWM, reported by the child), the
    peak of psutil polling every 20 ms (a cross-check), its wall seconds, and the most counts
    it read from its input at once (0 where not tracked).

    Not ru_maxrss (wait4 or RUSAGE_CHILDREN): a forked child starts with its parent's high-water
    mark, kept across exec, so it would report this process's peak instead of its own.
    """
    import psutil

    report, log = tmp / f"{name}.json", tmp / f"{name}.log"
    t = time.perf_counter()
    polled = 0
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, __file__, argv[0], str(report), *argv[1:]], stdout=out, stderr=out
        )
        watch = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                polled = max(polled, watch.memory_info().rss)
            except psutil.Error:  # exited between poll and read
                break
            time.sleep(0.02)
    if proc.wait() != 0:
        print(log.read_text()[-3000:])
        raise SystemExit(f"child {argv[0]} failed with exit code {proc.returncode}")
    reported = json.loads(report.read_text())
    wall = time.perf_counter() - t
    return reported["VmHWM_kB"] / 1024, polled / 2**20, wall, reported["largest_read"]


def child(argv: list[str]) -> None:
    """--child-normalize report compendium qc outdir block_values
    | --child-byo report counts sheet out block_values | --child-import report.

    Besides its peak RSS, a child reports the most counts one read of its input returned
    (HDF5 reads of normalize, text blocks of byo): a measure that RSS noise cannot hide.
    """
    largest = [0]
    if argv[0] == "--child-normalize":
        from gexnet.corpus import normalize
        from gexnet.formats.archs4 import Archs4File

        read = Archs4File.read

        def tracked_read(self, *args, **kwargs):
            block = read(self, *args, **kwargs)
            largest[0] = max(largest[0], block.size)
            return block

        Archs4File.read = tracked_read
        compendium, qc_table, outdir, block = argv[2:6]
        normalize.normalize(compendium, qc_table, outdir, settings(), int(block), seed=0)
    elif argv[0] == "--child-byo":
        from gexnet.sources import byo

        blocks = byo.TsvMatrix.blocks

        def tracked_blocks(self, block_values):
            for rows, columns, counts in blocks(self, block_values):
                largest[0] = max(largest[0], counts.size)
                yield rows, columns, counts

        byo.TsvMatrix.blocks = tracked_blocks
        counts, sheet, out, block = argv[2:6]
        byo.convert(counts, sheet, "human", out, int(block))
    # VmHWM: this process's own peak RSS (its memory map is new since exec).
    status = Path("/proc/self/status").read_text().splitlines()
    hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    Path(argv[1]).write_text(json.dumps({"VmHWM_kB": hwm, "largest_read": largest[0]}))


def memory(args: argparse.Namespace, cfg: dict) -> dict:
    """Peak RSS of (a) normalize with QC removing one contiguous tenth of the samples and (b) byo
    on a text table of the same counts, each at N and 2N samples."""
    from gexnet.corpus.qc import sample_qc
    from gexnet.formats.archs4 import Archs4File
    from gexnet.sources import genome

    n_genes, n, block = args.mem_genes, args.mem_samples, args.mem_block_values
    print(
        f"\n## 2. Peak RSS in a subprocess: {n_genes:,} genes, {n:,} and {2 * n:,} samples, "
        f"block_values {block:,}\n(a) normalize.normalize, QC removing one contiguous run of a "
        "tenth of the samples (a failing study)\n(b) byo.convert of the same counts as a TSV"
    )
    # Generated libraries are smaller than real ones: QC thresholds that keep them.
    thresholds = dict(cfg["qc"], min_total_counts=10_000, min_detected_genes=n_genes // 10)
    genes = sorted(genome.genes("human")["gene_id"])[:n_genes]  # real IDs: byo maps them
    result: dict[str, dict[str, float]] = {"normalize": {}, "byo": {}}
    with tempfile.TemporaryDirectory(prefix="gexnet-bench-") as tmp:
        tmp = Path(tmp)
        rss_import, polled, _, _ = run_child(["--child-import"], tmp, "import")
        print(f"  import only: peak RSS {rss_import:,.0f} MiB (polled {polled:,.0f} MiB)")
        for label, size in (("N", n), ("2N", 2 * n)):
            compendium, qc_table = tmp / f"c{size}.h5", tmp / f"qc{size}.parquet"
            t = time.perf_counter()
            failing = write_compendium(compendium, n_genes, size, block, args.seed, genes)
            qc = sample_qc(compendium, thresholds, block)
            write_table(qc, qc_table)
            removed = np.flatnonzero(~qc["kept"].to_numpy())
            if not set(range(failing.start, failing.stop)) <= set(removed.tolist()):
                raise SystemExit("QC kept samples of the failing study")
            prep = time.perf_counter() - t
            argv = ["--child-normalize", str(compendium), str(qc_table), str(tmp / f"out{size}")]
            rss, polled, wall, read = run_child([*argv, str(block)], tmp, f"normalize{size}")
            corpus = json.loads((tmp / f"out{size}" / "corpus.json").read_text())
            print(
                f"  (a) {label:2s} {size:>7,} samples ({len(removed):,} removed, "
                f"{failing.stop - failing.start:,} of them in one run; "
                f"{corpus['n_tokens'] - 3:,} genes in vocabulary): peak RSS {rss:,.0f} MiB "
                f"(polled {polled:,.0f} MiB), largest read {read:,} counts, {wall:.1f} s "
                f"(file + QC {prep:.1f} s)"
            )
            result["normalize"] |= {label: rss, f"read {label}": read}

            counts, sheet, out = tmp / f"counts{size}.tsv", tmp / f"sheet{size}.tsv", tmp / "b.h5"
            t = time.perf_counter()
            write_tsv(compendium, counts, sheet, block)
            prep = time.perf_counter() - t
            argv = ["--child-byo", str(counts), str(sheet), str(out), str(block)]
            rss, polled, wall, read = run_child(argv, tmp, f"byo{size}")
            with Archs4File(out) as f:
                if (f.n_features, f.n_samples) != (n_genes, size):
                    raise SystemExit(f"byo wrote {f.n_features} × {f.n_samples}")
            print(
                f"  (b) {label:2s} {size:>7,} samples, TSV {counts.stat().st_size / 2**20:,.0f} "
                f"MiB: peak RSS {rss:,.0f} MiB (polled {polled:,.0f} MiB), largest read "
                f"{read:,} counts, {wall:.1f} s (TSV {prep:.1f} s)"
            )
            result["byo"] |= {label: rss, f"read {label}": read}
            for path in tmp.glob("*"):  # keep /tmp small between the two sizes
                if path.is_file() and not path.name.endswith((".json", ".log")):
                    path.unlink()
    for name, rss in result.items():
        rss["change %"] = 100 * (rss["2N"] / rss["N"] - 1)
        verdict = "yes" if abs(rss["change %"]) < 20 else "no"
        within = "yes" if max(rss["read N"], rss["read 2N"]) <= block else "no"
        print(
            f"{name}: RSS 2N / N = {rss['2N'] / rss['N']:.3f} ({rss['change %']:+.1f}%); "
            f"change < 20%: {verdict}; every read within block_values: {within}"
        )
    result["import"] = {"N": rss_import}
    return result


# --- main ----------------------------------------------------------------------------------


def summary(rows: list[dict], mem: dict) -> None:
    print("\n## Summary\n")
    print("| stage | gexnet s | baseline s | gexnet values/s | baseline values/s | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['stage']} | {r['gexnet s']:.2f} | {r['baseline s']:.2f} | "
            f"{r['gexnet values/s']:.3g} | {r['baseline values/s']:.3g} | "
            f"{r['ratio gexnet/baseline']:.2f}× |"
        )
    print("\n| peak RSS (MiB) | N | 2N | change % | largest read N | largest read 2N |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, what in (("normalize", "normalize, clustered QC removal"), ("byo", "byo, TSV")):
        r = mem[name]
        print(
            f"| {what} | {r['N']:,.0f} | {r['2N']:,.0f} | {r['change %']:+.1f} | "
            f"{r['read N']:,} | {r['read 2N']:,} |"
        )
    print(f"| import only | {mem['import']['N']:,.0f} | | | | |")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1].startswith("--child-"):
        child(sys.argv[1:])
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--genes", type=int, default=20_000)
    p.add_argument("--samples", type=int, default=20_000)
    p.add_argument("--block-values", type=int, default=50_000_000)
    p.add_argument(
        "--baseline-genes",
        type=int,
        default=0,
        help="time the baseline's binning on this many genes and scale (0: all)",
    )
    p.add_argument(
        "--baseline-samples",
        type=int,
        default=0,
        help="time the baseline's tokens on this many samples and scale (0: all)",
    )
    p.add_argument("--mem-genes", type=int, default=4_000)
    p.add_argument("--mem-samples", type=int, default=8_000, help="N; the second run has 2N")
    p.add_argument("--mem-block-values", type=int, default=4_000_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    args = p.parse_args()
    if args.quick:
        args.genes, args.samples, args.block_values = 3_000, 2_000, 2_000_000
        args.mem_genes, args.mem_samples, args.mem_block_values = 1_000, 1_000, 400_000
    cfg = settings()
    print(f"numpy {np.__version__}, {os.cpu_count()} CPUs; single process")
    rows, ok = throughput(args, cfg)
    mem = memory(args, cfg)
    summary(rows, mem)
    if not ok:
        raise SystemExit("FAILED: gexnet and the baseline disagree (see 'identical' lines)")


if __name__ == "__main__":
    main()
