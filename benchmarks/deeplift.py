"""Benchmark of exact DeepLIFT for the isoform network: `gexnet.analysis.deeplift.Rescale` (every
output isoform at once, one pass per sample batch) against captum's DeepLift and shap's
DeepExplainer (one backward pass per output isoform), on a DeepSF net of the seed's size with
random weights.

What is measured:

- model: `models.splicing.SplicingNet`, DeepSF head, --factors SFs (200), --isoforms isoforms
  (2,000) of --genes genes, --hidden widths (183 82, the seed's), random weights, eval-mode
  BatchNorms with random running statistics and affine parameters, in --dtype (float32);
  inputs: log-like SF and gene values, the reference the median of a population of samples;
- ours: `Rescale.attribute` on --samples samples (64) in batches of `deeplift.batch_size`, all
  outputs; and on the --loop-samples samples (8) the oracles get, in one batch;
- captum: `captum.attr.DeepLift`, one `attribute` call per output isoform (target=i, all
  --loop-samples samples in the call, the gene expression as an additional forward argument),
  for --targets outputs (100) spread over the isoforms; its time is scaled to all outputs; and
  the same with --captum-samples samples (64) in each call (captum's cost per sample falls with
  the batch);
- shap: `shap.DeepExplainer` of the net as a function of the SFs alone (one sample's gene
  expression held, the --targets outputs selected, the reference as a background of one row),
  one explainer per sample; shap loops over outputs × samples; its time is scaled likewise;
- agreement: the largest |difference| from ours over the timed outputs and samples, for each
  oracle; exit 1 if over 1e-4 (float32) or 1e-8 (float64);
- times: the best of --repeats runs (3) of each (the machine may be shared);
- speed-up: the fastest oracle's seconds per sample (all outputs) over ours at --samples, and
  over ours at the same samples as that oracle.

    python benchmarks/deeplift.py                  # 200 SFs × 2,000 isoforms, about a minute
    python benchmarks/deeplift.py --dtype float64
    python benchmarks/deeplift.py --isoforms 20000 --targets 50

torch uses every core (--threads to change). The machine may be shared: read the ratio,
measured in the same run, more than the seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
import torch
from torch import nn

from gexnet.analysis import deeplift
from gexnet.models.splicing import SplicingConfig, SplicingNet

DTYPES = {"float32": torch.float32, "float64": torch.float64}
TOLERANCE = {"float32": 1e-4, "float64": 1e-8}


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def build(factors: int, isoforms: int, genes: int, hidden: list[int], dtype, seed: int = 0):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    center = rng.uniform(1.0, 3.0, factors)
    scale = rng.uniform(0.3, 1.0, factors)
    config = SplicingConfig(factors, isoforms, genes, hidden=hidden, head="deepsf")
    net = SplicingNet(config, rng.integers(0, genes, isoforms), center=center, scale=scale)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.3, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    net.gene_weight.data.uniform_(-1.0, 1.0)  # the head's ReLU on for some isoforms only
    net = net.to(dtype).eval()
    population = np.clip(center + scale * rng.normal(size=(501, factors)), 0, None)
    reference = torch.as_tensor(np.median(population, 0), dtype=dtype)
    return net, reference


def samples(n: int, factors: int, genes: int, dtype, seed: int = 1):
    rng = np.random.default_rng(seed)
    f = np.clip(rng.uniform(1.0, 3.0, factors) + rng.normal(0, 0.7, (n, factors)), 0, None)
    g = rng.uniform(0.0, 4.0, (n, genes))
    return torch.as_tensor(f, dtype=dtype), torch.as_tensor(g, dtype=dtype)


def ours(net, f, g, reference, dtype) -> tuple[torch.Tensor, float]:
    """All outputs, in batches of deeplift.batch_size samples."""
    rescale = deeplift.Rescale(net, dtype)
    step = deeplift.batch_size(net.config.n_isoforms, net.config.n_factors)
    rescale.attribute(f[:1], g[:1], None, reference)  # warm-up
    start = time.perf_counter()
    out = [rescale.attribute(f[i : i + step], g[i : i + step], None, reference).attributions
           for i in range(0, len(f), step)]  # fmt: skip
    return torch.cat(out), time.perf_counter() - start


def captum_loop(net, f, g, reference, targets) -> tuple[np.ndarray, float]:
    """One DeepLift.attribute per output (all samples in the call): samples × targets × SFs."""
    from captum.attr import DeepLift

    explainer = DeepLift(net)
    f0 = reference.expand_as(f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "required_grads has been set", "Setting hooks"
        explainer.attribute(f, baselines=f0, target=0, additional_forward_args=(g,))  # warm-up
        start = time.perf_counter()
        out = [explainer.attribute(f, baselines=f0, target=int(i), additional_forward_args=(g,))
               .detach() for i in targets]  # fmt: skip
        seconds = time.perf_counter() - start
    return torch.stack(out, 1).numpy(), seconds


class OneSample(nn.Module):
    """The net as a function of the SFs alone, one sample's gene expression held, the timed
    outputs selected (shap's PyTorch explainer takes tensor inputs, explains every output)."""

    def __init__(self, net: SplicingNet, genes: torch.Tensor, outputs: torch.Tensor):
        super().__init__()
        self.net = net
        self.register_buffer("genes", genes[None])
        self.register_buffer("outputs", outputs)

    def forward(self, factors: torch.Tensor) -> torch.Tensor:
        return self.net(factors, self.genes.expand(factors.shape[0], -1))[:, self.outputs]


def shap_loop(net, f, g, reference, targets) -> tuple[np.ndarray, float]:
    """shap's DeepExplainer, one explainer per sample (its genes held), the reference as the
    background: samples × targets × SFs."""
    import shap

    outputs = torch.as_tensor(targets)
    warm = shap.DeepExplainer(OneSample(net, g[0], outputs[:2]), reference[None])
    warm.shap_values(f[:1], check_additivity=False)
    out = []
    start = time.perf_counter()
    for j in range(len(f)):
        explainer = shap.DeepExplainer(OneSample(net, g[j], outputs), reference[None])
        values = explainer.shap_values(f[j : j + 1], check_additivity=False)  # 1 × SFs × targets
        out.append(np.asarray(values)[0].T)
    return np.stack(out), time.perf_counter() - start


def best_of(repeats: int, fn, *args):
    """fn's values and its shortest time over `repeats` runs."""
    runs = [fn(*args) for _ in range(max(repeats, 1))]
    return runs[-1][0], min(seconds for _, seconds in runs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--factors", type=int, default=200)
    ap.add_argument("--isoforms", type=int, default=2000)
    ap.add_argument("--genes", type=int, default=500, help="genes of the isoforms")
    ap.add_argument("--hidden", type=int, nargs=2, default=[183, 82])
    ap.add_argument("--samples", type=int, default=64, help="samples for ours")
    ap.add_argument("--loop-samples", type=int, default=8, help="samples for captum and shap")
    ap.add_argument(
        "--captum-samples", type=int, default=64, help="samples per captum call, 2nd run"
    )
    ap.add_argument("--targets", type=int, default=100, help="outputs the oracles are timed on")
    ap.add_argument("--dtype", choices=list(DTYPES), default="float32")
    ap.add_argument("--threads", type=int, default=cores())
    ap.add_argument("--repeats", type=int, default=3, help="each time: the best of these runs")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    dtype = DTYPES[args.dtype]
    n_iso = args.isoforms
    n_targets = min(args.targets, n_iso)
    targets = np.linspace(0, n_iso - 1, n_targets).round().astype(int)

    net, reference = build(args.factors, n_iso, args.genes, args.hidden, dtype)
    n = max(args.samples, args.loop_samples, args.captum_samples)
    f, g = samples(n, args.factors, args.genes, dtype)
    fl, gl = f[: args.loop_samples], g[: args.loop_samples]
    print(f"model: {args.factors} SFs, hidden {args.hidden}, {n_iso} isoforms, DeepSF head, "
          f"{args.dtype}; {torch.get_num_threads()} torch threads")  # fmt: skip

    k, mc = args.repeats, args.captum_samples
    all_ours, seconds_ours = best_of(k, ours, net, f[: args.samples], g[: args.samples],
                                     reference, dtype)  # fmt: skip
    loop_ours, seconds_ours_loop = best_of(k, ours, net, fl, gl, reference, dtype)
    big_ours, seconds_ours_big = best_of(k, ours, net, f[:mc], g[:mc], reference, dtype)
    mine = loop_ours[:, targets].double().numpy()
    by_captum, seconds_captum = best_of(k, captum_loop, net, fl, gl, reference, targets)
    by_captum_big, seconds_captum_big = best_of(k, captum_loop, net, f[:mc], g[:mc], reference,
                                                targets)  # fmt: skip
    by_shap, seconds_shap = best_of(k, shap_loop, net, fl, gl, reference, targets)
    scaled = n_iso / n_targets
    m = args.loop_samples
    rows = [
        (f"ours, all {n_iso} outputs at once", args.samples, n_iso, seconds_ours),
        (f"ours, all {n_iso} outputs at once", m, n_iso, seconds_ours_loop),
        (f"captum DeepLift, 1 call/output, x{scaled:g}", m, n_targets, seconds_captum * scaled),
        (f"captum DeepLift, 1 call/output, x{scaled:g}", mc, n_targets,
         seconds_captum_big * scaled),
        (f"shap DeepExplainer, outputs x samples, x{scaled:g}", m, n_targets,
         seconds_shap * scaled),
    ]  # fmt: skip
    per_sample = [seconds / samples for _, samples, _, seconds in rows]
    lines = [f"{'method':50s} {'samples':>7s} {'outputs':>7s} {'seconds':>9s} "
             f"{'s/sample, all outputs':>22s}"]  # fmt: skip
    lines += [f"{a:50s} {b:7d} {c:7d} {d / (scaled if c < n_iso else 1):9.3f} {e:22.2e}"
              for (a, b, c, d), e in zip(rows, per_sample, strict=True)]  # fmt: skip
    if n_targets < n_iso:
        lines.append(f"(captum and shap timed on {n_targets} of the {n_iso} outputs: seconds as "
                     f"measured, seconds per sample scaled by {scaled:g} to all outputs)")  # fmt: skip
    best = min(range(2, len(rows)), key=per_sample.__getitem__)
    same = per_sample[1] if rows[best][1] == m else seconds_ours_big / mc
    lines.append(f"speed-up over the fastest oracle ({rows[best][0].split(',')[0]}, "
                 f"{rows[best][1]} samples/call): {per_sample[best] / per_sample[0]:.0f}x against "
                 f"ours at {args.samples} samples, {per_sample[best] / same:.0f}x at "
                 f"{rows[best][1]} (goal >= 50x on 2 cores)")  # fmt: skip
    mine_big = big_ours[:, targets].double().numpy()
    diff_captum = float(max(np.abs(mine - by_captum).max(), np.abs(mine_big - by_captum_big).max()))
    diff_shap = float(np.abs(mine - by_shap).max())
    largest = float(np.abs(mine).max())
    lines.append(
        f"agreement on the timed outputs: max |ours - captum| = {diff_captum:.2e}, "
        f"max |ours - shap| = {diff_shap:.2e} (largest attribution {largest:.2e})"
    )
    batching = float((all_ours[:m] - loop_ours).abs().max())
    lines.append(f"ours on {args.samples} samples vs on {m}: max difference {batching:.1e}")
    print("\n".join(lines))
    tolerance = TOLERANCE[args.dtype]
    if max(diff_captum, diff_shap) > tolerance:
        print(f"FAIL: ours and an oracle differ by more than {tolerance:g}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
