"""Benchmark of training throughput: gexnet's gene language model against GPT-2 in transformers.

gexnet's `GeneLM` (objective "gpt") is GPT-2's pre-LayerNorm block with exact GELU, tied LM head
and PyTorch's fused scaled-dot-product attention. The reference is transformers'
`GPT2LMHeadModel` of the same sizes, dropout off, with eager attention and, where transformers
has it, SDPA attention. Before timing, the reference gets gexnet's initial weights and must give
the same logits (fp32) and the same parameter count: the two compute the same function, so any
speed difference is implementation, not architecture (exit 1 otherwise).

Measured, per implementation, on the same seeded random token batches (<cls> then genes, then
<pad> over the last --padding share of the context, as a corpus's short samples are; the next
gene as target at every gene position): a training step is forward, the summed cross-entropy
divided by the target count (the logits upcast to fp32, as `GeneLM.loss` does; the reference's
loss is computed the same way from its logits), backward, AdamW step. Warm-up steps are untimed;
then timing rounds of --steps steps each alternate between the implementations (A B C, C B A,
...) and the best round of each counts, since the machine is shared and noisy.

- tokens/s: real tokens (inputs that are not <pad>) of the round's batches / its seconds, as
  training's metrics.tsv counts them; every implementation sees the same batches, so the same
  count divides into each and the ratios are those of the steps' times;
- MFU: the round's training FLOPs (`GeneLM.work` of its batches: the body at real tokens, the
  head at targets, attention over the query–key pairs the causal kernel computes) / its seconds
  / the accelerator's peak FLOP/s (--peak-tflops; bf16 defaults for A100, H100 and H200; none on
  CPU, where it reads "n/a"). The same model FLOPs for the reference, which computes its head at
  every position, so its extra work shows as a lower MFU;
- peak memory (GPU only): the implementation's weights and AdamW state plus the most its steps
  allocate above what is resident between steps (all implementations stay resident, so
  `torch.cuda.max_memory_allocated` alone would count the others' weights too);
- gexnet ÷ this: gexnet's tokens/s over the row's (> 1: gexnet is faster).

    python benchmarks/train_throughput.py            # 1–3 minutes on 2 CPU cores
    python benchmarks/train_throughput.py --quick    # seconds on 2 CPU cores
    python benchmarks/train_throughput.py --paper    # the paper's model and batch, on a GPU

Sizes, steps and device can be set one by one (--hidden, --layers, ..., --device, --dtype); they
override the preset. Read the ratios (measured in the same run), not the absolute numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from gexnet.formats.corpus import CLS, FIRST_GENE_TOKEN, PAD
from gexnet.models.gene_lm import IGNORE, GeneLM, ModelConfig
from gexnet.training.trainer import datasheet_peak

N_TOKENS = 20_000 + FIRST_GENE_TOKEN  # about the paper's vocabulary: 20,000 genes + specials

PRESETS = {
    "quick": dict(hidden=64, layers=2, heads=4, ffn=256, context=128, batch=4, steps=2, warmup=2, rounds=8, padding=0.25),
    "default": dict(hidden=200, layers=6, heads=4, ffn=800, context=1024, batch=2, steps=1, warmup=1, rounds=12, padding=0.0),
    "paper": dict(hidden=200, layers=6, heads=4, ffn=800, context=2048, batch=12, steps=20, warmup=5, rounds=5, padding=0.0),
}  # fmt: skip

# Parameter names of transformers' GPT-2 block → GeneLM's Block.
GPT2_NAMES = (("attn.c_attn.", "attn.qkv."), ("attn.c_proj.", "attn.proj."),
              ("mlp.c_fc.", "fc."), ("mlp.c_proj.", "fc_proj."))  # fmt: skip

MIB = 2**20
NOISY = 0.25  # spread above which the report warns that the timings are unreliable


class BenchmarkError(Exception):
    """A failed run or check; the message is what the user sees."""


@dataclass
class Impl:
    name: str
    model: nn.Module
    loss: Callable[[dict[str, torch.Tensor]], torch.Tensor]  # mean token loss of a batch
    optimizer: torch.optim.Optimizer
    seconds: list[float] = field(default_factory=list)  # per step, one entry per timing round
    transient_bytes: int = 0  # most allocated above the between-steps level (GPU)

    def params(self, embeddings: bool = True) -> int:
        n = sum(p.numel() for p in self.model.parameters())  # tied weights count once
        if not embeddings:
            embeddings = (m for m in self.model.modules() if isinstance(m, nn.Embedding))
            n -= sum(m.weight.numel() for m in embeddings)
        return n

    def state_bytes(self) -> int:
        """Bytes resident between steps: weights and optimizer state (gradients are freed)."""
        tensors = [*self.model.parameters()]
        tensors += [
            t for s in self.optimizer.state.values() for t in s.values() if torch.is_tensor(t)
        ]
        return sum(t.numel() * t.element_size() for t in tensors)


# --- arguments and environment -------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    preset = p.add_mutually_exclusive_group()
    preset.add_argument("--quick", action="store_true", help="small sizes, under a minute on CPU")
    preset.add_argument("--paper", action="store_true", help="the paper's model and batch (GPU)")
    for name in ("hidden", "layers", "heads", "ffn", "context", "batch"):
        p.add_argument(f"--{name}", type=int)
    p.add_argument("--n-tokens", type=int, default=N_TOKENS, help="vocabulary, specials included")
    p.add_argument("--padding", type=float, help="share of each sample's positions that is <pad>")
    p.add_argument("--steps", type=int, help="timed optimizer steps per round")
    p.add_argument("--warmup", type=int, help="untimed steps per implementation")
    p.add_argument("--rounds", type=int, help="timing rounds per implementation (best counts)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=("bf16", "fp32"), help="bf16 autocast (cuda default) or fp32")
    p.add_argument("--peak-tflops", type=float, help="peak FLOP/s of the device, for the MFU")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tsv", type=Path, help="also write the table here (TSV, unformatted)")
    args = p.parse_args(argv)
    preset_name = "quick" if args.quick else "paper" if args.paper else "default"
    for key, value in PRESETS[preset_name].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.preset = preset_name
    args.device = torch.device(args.device)
    if args.dtype is None:
        args.dtype = "bf16" if args.device.type == "cuda" else "fp32"
    if args.hidden % args.heads:
        p.error(f"--hidden {args.hidden} is not a multiple of --heads {args.heads}")
    # At least one warm-up step: the first step allocates AdamW's state (and loads kernels).
    if min(args.steps, args.rounds, args.batch, args.context, args.warmup) < 1:
        p.error("--steps, --rounds, --batch, --context and --warmup must be ≥ 1")
    if not 0 <= args.padding < 1:
        p.error(f"--padding {args.padding}: expected a share in [0, 1)")
    if args.n_tokens <= FIRST_GENE_TOKEN:
        p.error(f"--n-tokens must exceed the {FIRST_GENE_TOKEN} special tokens")
    return args


def peak_flops(args: argparse.Namespace) -> tuple[float | None, str]:
    """Peak FLOP/s for the MFU and where it comes from; None where there is no default."""
    if args.peak_tflops:
        return args.peak_tflops * 1e12, "--peak-tflops"
    if args.device.type != "cuda" or args.dtype != "bf16":
        return None, "none (give --peak-tflops)"
    name = torch.cuda.get_device_name(args.device)
    known = datasheet_peak(name)
    if known:
        return known[1] * 1e12, f"{known[0]} datasheet"
    return None, f"unknown for {name} (give --peak-tflops)"


def describe_device(args: argparse.Namespace) -> str:
    if args.device.type == "cuda":
        return torch.cuda.get_device_name(args.device)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"CPU ({cores} cores available)"


# --- models ----------------------------------------------------------------------------------


def make_batches(args: argparse.Namespace, n: int) -> list[dict[str, torch.Tensor]]:
    """n batches of random gene lists, the same for every implementation, as `gexnet.training.data`
    makes them for the gpt objective: genes, then <pad> over the last --padding share of the
    context; input <cls> + that shifted by one, target the next gene (none at <pad>)."""
    generator = torch.Generator().manual_seed(args.seed)
    n_genes = args.context - round(args.padding * args.context)
    batches = []
    for _ in range(n):
        genes = torch.randint(
            FIRST_GENE_TOKEN, args.n_tokens, (args.batch, args.context), generator=generator
        )
        genes[:, n_genes:] = PAD
        tokens = torch.cat([torch.full((args.batch, 1), CLS), genes[:, :-1]], dim=1)
        targets = torch.where(genes == PAD, IGNORE, genes)
        batches.append({"tokens": tokens.to(args.device), "targets": targets.to(args.device)})
    return batches


def build_gexnet(args: argparse.Namespace) -> GeneLM:
    torch.manual_seed(args.seed)
    config = ModelConfig(
        objective="gpt", n_tokens=args.n_tokens, context=args.context,
        hidden=args.hidden, layers=args.layers, heads=args.heads, ffn=args.ffn,
    )  # fmt: skip
    return GeneLM(config)


def build_reference(args: argparse.Namespace, attention: str, like: GeneLM) -> nn.Module:
    """transformers' GPT-2 of the same sizes with `like`'s weights (its Conv1D weights are the
    transpose of nn.Linear's). Raises ValueError/ImportError where `attention` is unsupported."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=args.n_tokens, n_positions=args.context, n_embd=args.hidden,
        n_layer=args.layers, n_head=args.heads, n_inner=args.ffn, activation_function="gelu",
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, use_cache=False,
        bos_token_id=CLS, eos_token_id=CLS, attn_implementation=attention,
    )  # fmt: skip
    model = GPT2LMHeadModel(config)
    if model.config._attn_implementation != attention:  # older versions fall back silently
        raise ValueError(f"transformers chose {model.config._attn_implementation!r} attention")
    ours = like.state_dict()
    with torch.no_grad():
        for name, p in model.transformer.named_parameters():
            w = ours[gexnet_name(name)]
            p.copy_(w.T if name.startswith("h.") and p.ndim == 2 else w)  # Conv1D: transposed
    return model


def gexnet_name(name: str) -> str:
    """gexnet's name of a parameter of transformers' GPT2Model."""
    if name.startswith("h."):
        name = "blocks." + name.removeprefix("h.")
    for theirs, ours in GPT2_NAMES:
        name = name.replace(theirs, ours)
    return name


def mean_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy over the targets / their number, as `GeneLM.loss` computes it."""
    total = F.cross_entropy(
        logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE, reduction="sum"
    )
    return total / (targets != IGNORE).sum()


def check_same_function(gexnet: GeneLM, reference: nn.Module, tokens: torch.Tensor) -> float:
    """Largest logit difference in fp32 on one sample; raises if it is not rounding."""
    with torch.no_grad():
        ours = gexnet(tokens[:1]).float()
        theirs = reference(input_ids=tokens[:1]).logits.float()
    diff = (ours - theirs).abs().max().item()
    if not diff <= 1e-4 + 1e-3 * ours.abs().max().item():
        raise BenchmarkError(f"the reference's logits differ from gexnet's by up to {diff:.3g}")
    return diff


def make_impls(args: argparse.Namespace, tokens: torch.Tensor) -> tuple[list[Impl], list[str]]:
    """gexnet first, then the references transformers supports; notes on those it does not."""
    try:
        import transformers
    except ImportError as e:
        raise BenchmarkError(
            "transformers is needed for the reference: pip install transformers"
        ) from e
    transformers.logging.set_verbosity_error()

    gexnet = build_gexnet(args)
    models: list[tuple[str, nn.Module, bool]] = [("gexnet", gexnet, False)]
    notes = [f"transformers {transformers.__version__}"]
    for attention in ("eager", "sdpa"):
        try:
            models.append((f"gpt2-{attention}", build_reference(args, attention, gexnet), True))
        except (ValueError, ImportError) as e:
            if attention == "eager":
                raise BenchmarkError(f"transformers' GPT-2 could not be built: {e}") from e
            notes.append(f"gpt2-{attention} left out: {e}")

    impls = []
    for name, model, is_reference in models:
        model.to(args.device).train()
        if is_reference:
            diff = check_same_function(gexnet, model, tokens)
            notes.append(f"{name}: gexnet's weights, logits within {diff:.1e} of gexnet's (fp32)")

            def loss(batch, model=model):
                return mean_token_loss(model(input_ids=batch["tokens"]).logits, batch["targets"])
        else:

            def loss(batch, model=model):
                total, count = model.loss(batch)
                return total / count

        # Fused AdamW is the fastest on CUDA; the same optimizer for all keeps the ratio fair.
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=1e-4, weight_decay=0.1, fused=args.device.type == "cuda"
        )
        impls.append(Impl(name, model, loss, optimizer))

    ref = impls[1]
    counts = {i.name: (i.params(), i.params(embeddings=False)) for i in impls}
    if len(set(counts.values())) != 1:
        raise BenchmarkError(f"parameter counts differ (all, non-embedding): {counts}")
    if counts["gexnet"][1] != gexnet.n_params(embeddings=False):
        raise BenchmarkError("GeneLM.n_params disagrees with the count of its parameters")
    notes.append(
        f"parameters: gexnet {counts['gexnet'][0]:,}, {ref.name} {counts[ref.name][0]:,} "
        f"(non-embedding {counts['gexnet'][1]:,} and {counts[ref.name][1]:,}); equal"
    )
    return impls, notes


# --- timing ----------------------------------------------------------------------------------


def train_steps(impl: Impl, batches: list, first: int, n: int, args: argparse.Namespace) -> float:
    """n training steps on batches[first:...] (cyclic); the last loss."""
    autocast = (
        torch.autocast(args.device.type, dtype=torch.bfloat16)
        if args.dtype == "bf16"
        else contextlib.nullcontext()
    )
    loss = torch.zeros(())
    for s in range(first, first + n):
        with autocast:
            loss = impl.loss(batches[s % len(batches)])
        loss.backward()
        impl.optimizer.step()
        impl.optimizer.zero_grad(set_to_none=True)  # no gradients resident between steps
    return loss.item()


def timed_round(impl: Impl, batches: list, first: int, args: argparse.Namespace) -> None:
    cuda = args.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(args.device)
        resident = torch.cuda.memory_allocated(args.device)
        torch.cuda.reset_peak_memory_stats(args.device)
    start = time.perf_counter()
    train_steps(impl, batches, first, args.steps, args)  # .item() waits for the last step
    if cuda:
        torch.cuda.synchronize(args.device)
    impl.seconds.append((time.perf_counter() - start) / args.steps)
    if cuda:
        peak = torch.cuda.max_memory_allocated(args.device) - resident
        impl.transient_bytes = max(impl.transient_bytes, peak)


def run(impls: list[Impl], batches: list, args: argparse.Namespace) -> None:
    for impl in impls:
        try:
            loss = train_steps(impl, batches, 0, args.warmup, args)
            if not math.isfinite(loss):
                raise BenchmarkError(f"{impl.name}: loss {loss} after warm-up")
        except torch.cuda.OutOfMemoryError as e:
            raise BenchmarkError(
                f"{impl.name}: out of memory in warm-up; try a smaller --batch"
            ) from e
        except RuntimeError as e:
            raise BenchmarkError(f"{impl.name} failed in warm-up: {e}") from e
    for r in range(args.rounds):
        # Reversing the order every other round keeps drift (thermal, neighbours) from
        # favouring whichever implementation always goes first.
        for impl in impls if r % 2 == 0 else impls[::-1]:
            try:
                timed_round(impl, batches, args.warmup + r * args.steps, args)
            except RuntimeError as e:
                raise BenchmarkError(f"{impl.name} failed in timing round {r + 1}: {e}") from e
        print(
            f"round {r + 1}/{args.rounds}: "
            + ", ".join(f"{i.name} {i.seconds[-1] * 1e3:,.1f} ms/step" for i in impls),
            flush=True,
        )


def report(
    impls: list[Impl], args: argparse.Namespace, work: list[dict[str, int]], peak: float | None
) -> None:
    """The table; `work[r]` is `GeneLM.work` summed over round r's batches (every
    implementation's round r trains on the same ones)."""

    def per_second(impl: Impl, key: str) -> list[float]:
        return [w[key] / (args.steps * s) for w, s in zip(work, impl.seconds, strict=True)]

    best = {i.name: max(per_second(i, "tokens")) for i in impls}
    header = ("implementation", "params", "tokens/s", "ms/step", "spread", "MFU", "peak mem")
    header += ("gexnet ÷ this",)
    rows = []
    for impl in impls:
        tps = best[impl.name]
        tokens, flops = per_second(impl, "tokens"), per_second(impl, "flops")
        mfu = flops[tokens.index(tps)] / peak if peak else None  # in the best round
        spread = max(impl.seconds) / min(impl.seconds) - 1  # worst round vs best: the noise
        memory = (
            f"{(impl.state_bytes() + impl.transient_bytes) / MIB:,.0f} MiB"
            if args.device.type == "cuda"
            else "n/a"
        )
        rows.append((
            impl.name, f"{impl.params():,}", f"{tps:,.0f}", f"{1e3 * min(impl.seconds):,.1f}",
            f"{spread:.0%}", f"{mfu:.1%}" if peak else "n/a",
            memory, f"{best['gexnet'] / tps:.2f}",
        ))  # fmt: skip
    if args.tsv:
        lines = ["\t".join(row) for row in [header, *rows]]
        args.tsv.write_text("\n".join(lines) + "\n")
    widths = [max(len(row[k]) for row in [header, *rows]) for k in range(len(header))]
    print()
    for row in [header, *rows]:  # first column left-aligned, numbers right-aligned
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells))
    # The median rounds as a second opinion: on a busy machine even the best round can be lucky.
    median = {i.name: statistics.median(per_second(i, "tokens")) for i in impls}
    top = max(impls[1:], key=lambda i: best[i.name])
    print(
        f"\ngexnet ÷ best reference ({top.name}): {best['gexnet'] / best[top.name]:.2f}× the "
        f"tokens/s in the best rounds, {median['gexnet'] / median[top.name]:.2f}× in the median "
        f"rounds ({args.rounds} rounds of {args.steps} step(s); spread = slowest round over "
        "the fastest − 1)"
    )
    if max(max(i.seconds) / min(i.seconds) for i in impls) > 1 + NOISY:
        print(
            f"warning: rounds of one implementation differ by more than {NOISY:.0%}: the machine "
            "was busy. Trust the ratios only where best and median agree; rerun with more "
            "--rounds (or --threads 1 where other processes share the cores)."
        )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.device.type == "cuda" and not torch.cuda.is_available():
        raise BenchmarkError("--device cuda, but torch sees no CUDA device")
    if args.threads:
        torch.set_num_threads(args.threads)
    peak, peak_source = peak_flops(args)
    print(f"# Training throughput, preset {args.preset}")
    print(
        f"device {args.device} ({describe_device(args)}), torch {torch.__version__}, "
        f"threads {torch.get_num_threads()} (inter-op {torch.get_num_interop_threads()}), "
        f"dtype {args.dtype}{' autocast' if args.dtype == 'bf16' else ''}"
    )
    print(
        f"model: hidden {args.hidden}, layers {args.layers}, heads {args.heads}, ffn {args.ffn}, "
        f"context {args.context}, tokens {args.n_tokens:,}; batch {args.batch}, "
        f"{args.padding:.0%} of positions <pad>; warm-up {args.warmup}, "
        f"{args.rounds} rounds × {args.steps} step(s)"
    )
    # One batch per step; every implementation's step k trains on the same batch k.
    batches = make_batches(args, args.warmup + args.rounds * args.steps)
    impls, notes = make_impls(args, batches[0]["tokens"])
    gexnet = impls[0].model
    work = [
        {k: sum(gexnet.work(batches[args.warmup + r * args.steps + i])[k]
                for i in range(args.steps)) for k in ("tokens", "targets", "flops")}
        for r in range(args.rounds)
    ]  # fmt: skip
    print(*notes, sep="\n")
    steps = args.rounds * args.steps
    real, targets, flops = (sum(w[k] for w in work) / steps for k in ("tokens", "targets", "flops"))
    print(
        f"tokens/s counts real tokens (inputs that are not <pad>), as training's metrics do: "
        f"{real:,.0f} of the {args.batch * args.context:,} positions a step, the same batches "
        f"for every implementation; {targets:,.0f} targets a step"
    )
    peak_text = f"{peak / 1e12:,.0f} TFLOP/s" if peak else "n/a"
    print(
        f"model FLOPs {flops / 1e9:,.2f} G a step (GeneLM.work), for every implementation; "
        f"peak {peak_text}: {peak_source}"
    )
    run(impls, batches, args)
    report(impls, args, work, peak)


if __name__ == "__main__":
    try:
        main()
    except BenchmarkError as e:
        sys.exit(f"train_throughput: error: {e}")
