"""Benchmark of virtual perturbation: `gexnet.analysis.perturb.Perturber` (chunks of rows, the
first layer updated by a few columns of W, the last Linear applied once to a perturbation's mean
hidden difference) against one plain forward pass per perturbation, on
an autoencoder of realistic size with random weights; and the same model's training throughput.

What is measured:

- model: --genes genes, --hidden widths, --latent (default 19,383 × [4000, 2000] × 1000;
  --paper: seed 002's [20000, 8000, 4000, 2000] × 1000), random weights, eval mode;
- batched: `mean_changes` of --perturbations single-gene knockouts on one sample, and of a
  quarter of them on --samples samples (16; a mean change over samples goes through the last
  Linear once per perturbation), --batch-size rows per forward pass;
- loop: for --loop-perturbations of the same knockouts (a quarter on the samples), the
  perturbed input, model(x) (all of a knockout's samples in one pass), minus the base
  reconstruction, one knockout at a time; scaled per perturbation. The two must agree (the
  largest difference under 1e-5 + 1e-3 of the largest change, exit 1 otherwise);
- training: samples/s of forward + backward + AdamW step at --train-batch, over --train-steps
  timed steps after one warm-up step;
- GPU (when torch.cuda.is_available()): the training step under bf16 autocast, time per epoch
  at --epoch-samples (238,000) extrapolated from timed steps, and the batched engine there.

    python benchmarks/perturb.py                 # default size, ~2-3 min on 2 CPU cores
    python benchmarks/perturb.py --genes 2000    # seconds
    python benchmarks/perturb.py --paper         # the seed's size (GPU, or much patience)

The machine may be shared: read the ratio, measured in the same run, more than the seconds.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import pandas as pd
import torch

from gexnet.analysis import perturb
from gexnet.models.autoencoder import Autoencoder, AutoencoderConfig

PAPER_HIDDEN = [20000, 8000, 4000, 2000]


def build(genes: int, hidden: list[int], latent: int, seed: int = 0):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    center = rng.uniform(0.0, 3.0, genes).astype(np.float32)
    scale = rng.uniform(0.3, 1.0, genes).astype(np.float32)
    model = Autoencoder(AutoencoderConfig(n_genes=genes, hidden=hidden, latent=latent),
                        center=center, scale=scale).eval()  # fmt: skip
    table = pd.DataFrame({
        "gene_id": [f"ENSG{i:011d}" for i in range(genes)],
        "symbol": [f"G{i}" for i in range(genes)], "biotype": "protein_coding",
        "mean": center, "minimum": np.zeros(genes, np.float32), "maximum": center + 2,
        "quantiles": list(np.linspace(0, 1, 101)[None] * (center[:, None] + 2)),
    })  # fmt: skip
    sample = np.clip(center + scale * rng.normal(size=genes), 0, None).astype(np.float32)
    return model, table, sample[None]


@torch.inference_mode()
def loop(model, table, samples, genes) -> tuple[np.ndarray, float]:
    """One forward pass per knockout (all its samples in that pass): perturbed input,
    model(x), minus the base, averaged over the samples."""
    x = torch.as_tensor(samples)
    minimum = torch.as_tensor(table["minimum"].to_numpy())
    start = time.perf_counter()
    base = model(x)
    out = np.empty((len(genes), x.shape[1]), dtype=np.float32)
    for i, g in enumerate(genes):
        xp = x.clone()
        xp[:, g] = minimum[g]
        out[i] = (model(xp) - base).mean(0).numpy()
    return out, time.perf_counter() - start


def train_rate(model, genes: int, batch: int, steps: int, device: str, bf16: bool) -> float:
    """Samples/s of forward + backward + AdamW step (mean squared error in scaled space)."""
    model = model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.rand(batch, genes, device=device) * 3
    target = model.scaled(x)

    def step():
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            out = model.decoder(model.encoder(target))
        loss = ((out.float() - target) ** 2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up: allocations, kernels
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    rate = steps * batch / (time.perf_counter() - start)
    model.eval()
    return rate


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--genes", type=int, default=19383)
    ap.add_argument("--hidden", type=int, nargs="+", default=[4000, 2000])
    ap.add_argument("--latent", type=int, default=1000)
    ap.add_argument("--paper", action="store_true", help="hidden 20000 8000 4000 2000, latent 1000")
    ap.add_argument("--perturbations", type=int, default=2000)
    ap.add_argument("--loop-perturbations", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument(
        "--samples",
        type=int,
        default=16,
        help="samples of the second workload (a quarter of the perturbations)",
    )
    ap.add_argument("--train-batch", type=int, default=256)
    ap.add_argument("--train-steps", type=int, default=3)
    ap.add_argument("--epoch-samples", type=int, default=238000)
    ap.add_argument("--no-train", action="store_true", help="skip the training throughput")
    ap.add_argument(
        "--gpu-only",
        action="store_true",
        help="the GPU section only (benchmarks/gpu_check.sh): no CPU timings",
    )
    args = ap.parse_args(argv)
    hidden, latent = (PAPER_HIDDEN, 1000) if args.paper else (args.hidden, args.latent)
    if args.gpu_only and not torch.cuda.is_available():
        print("benchmarks/perturb.py --gpu-only: torch sees no CUDA device", file=sys.stderr)
        return 1
    args.perturbations = min(args.perturbations, args.genes)

    model, table, sample = build(args.genes, hidden, latent)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {args.genes} genes, hidden {hidden}, latent {latent}, "
          f"{n_params / 1e6:.1f}M parameters; {torch.get_num_threads()} CPU threads")  # fmt: skip
    lines, rows, worst, largest = [], [], 0.0, 0.0
    genes = np.random.default_rng(1).choice(args.genes, args.perturbations, replace=False)
    if not args.gpu_only:
        engine = perturb.Perturber(model, table, batch_size=args.batch_size)
        engine.mean_changes(perturb.singles(genes[:8]), sample)  # warm-up
        rng = np.random.default_rng(2)
        samples = np.clip(sample + 0.3 * rng.normal(size=(args.samples, args.genes)), 0, None)
        for label, x, n_batched, n_loop in (
            ("1 sample", sample, args.perturbations, args.loop_perturbations),
            (f"{args.samples} samples", samples.astype(np.float32),
             args.perturbations // 4, args.loop_perturbations // 4),
        ):  # fmt: skip
            start = time.perf_counter()
            batched = engine.mean_changes(perturb.singles(genes[:n_batched]), x)
            seconds = time.perf_counter() - start
            if x is sample:
                cpu_means = batched  # the GPU's run is checked against it
            n_loop = min(n_loop, n_batched)
            direct, loop_seconds = loop(model, table, x, genes[:n_loop])
            rows.append((f"batched engine, {label}", n_batched, seconds, n_batched / seconds))
            rows.append((f"one forward per perturbation, {label}", n_loop, loop_seconds,
                         n_loop / loop_seconds))  # fmt: skip
            worst = max(worst, float(np.abs(direct - batched[:n_loop]).max()))
            largest = max(largest, float(np.abs(direct).max()))

        lines += [f"{'method':40s} {'perturbations':>13s} {'seconds':>9s} {'perturbations/s':>16s}"]
        lines += [f"{m:40s} {n:13d} {s:9.2f} {r:16.1f}" for m, n, s, r in rows]
        for i, goal in (
            (0, " (goal >= 20x on 2 cores)"),
            (2, " (the loop batches the samples too)"),
        ):
            speedup = rows[i][3] / rows[i + 1][3]
            lines.append(f"speed-up of the batched engine, {rows[i][0].split(', ')[1]}: "
                         f"{speedup:.1f}x{goal}")  # fmt: skip
        lines.append(
            f"agreement: max |batched - loop| = {worst:.2e} (largest change {largest:.2e})"
        )
        if not args.no_train:
            rate = train_rate(model, args.genes, args.train_batch, args.train_steps, "cpu", False)
            lines.append(f"training (CPU, fp32, batch {args.train_batch}, AdamW): {rate:.1f} samples/s"
                         f", {args.epoch_samples / rate / 3600:.1f} h per {args.epoch_samples:,}-"
                         "sample epoch")  # fmt: skip
    if torch.cuda.is_available():
        lines.append(f"GPU: {torch.cuda.get_device_name()}")
        gpu_model = model.to("cuda")
        gpu_engine = perturb.Perturber(gpu_model, table, batch_size=args.batch_size)
        gpu_engine.mean_changes(perturb.singles(genes[:8]), sample)
        torch.cuda.synchronize()
        start = time.perf_counter()
        on_gpu = gpu_engine.mean_changes(perturb.singles(genes), sample)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        lines.append(f"{'batched engine (GPU, fp32)':40s} {args.perturbations:13d} "
                     f"{seconds:9.2f} {args.perturbations / seconds:16.1f}")  # fmt: skip
        if not args.gpu_only:
            lines.append(
                f"GPU vs CPU engine: max difference {np.abs(on_gpu - cpu_means).max():.2e}"
            )
        if not args.no_train:
            rate = train_rate(gpu_model, args.genes, args.train_batch, max(args.train_steps, 10),
                              "cuda", True)  # fmt: skip
            lines.append(f"training (GPU, bf16 autocast, batch {args.train_batch}): {rate:.0f} "
                         f"samples/s, {args.epoch_samples / rate:.0f} s per "
                         f"{args.epoch_samples:,}-sample epoch")  # fmt: skip
    print("\n".join(lines))
    if worst > 1e-5 + 1e-3 * largest:
        print("FAIL: the batched engine and the loop disagree", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
