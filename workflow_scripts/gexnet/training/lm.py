"""Training a gene language model: one process, torchrun on one node, srun across nodes.

- Processes: torchrun's RANK/WORLD_SIZE/LOCAL_RANK, else Slurm's SLURM_PROCID/SLURM_NTASKS/
  SLURM_LOCALID (srun, the master being the job's first node); DDP over NCCL on GPUs, gloo on CPUs.
- A step is `batch_per_device` × processes × `grad_accum` samples (`gexnet.training.data` fixes which);
  its loss is the sum of token losses over all of them divided by their number of targets, so
  the step is the same whatever the split into processes and micro-batches.
- AdamW (weight decay on matrices only) and a OneCycle schedule stepped once per optimizer step;
  gradients clipped at `grad_clip`; bf16 autocast on GPUs.
- Checkpoints (model, optimizer, schedule, RNG, step: the data position follows from the step)
  are written atomically every `checkpoint_every` steps and on SIGTERM/SIGUSR1 (Slurm
  preemption) into a directory outside the rule's outputs; a rerun resumes from the newest,
  only if it was written with the same settings and on the same corpus (the digest of its
  corpus.json), else it stops naming what changed.
- metrics.tsv has a row per step (all processes together): loss, lr, seconds, tokens (real
  tokens: input positions that are not <pad>), targets (positions with a loss), flops (the
  training FLOPs of those, `GeneLM.work`), tokens_per_s (real tokens / seconds; padding is not
  counted) and mfu (flops / seconds / the peak of all the step's devices; NaN where the peak
  is unknown). validation.tsv has the validation loss of every epoch; the final weights go to
  safetensors with a JSON description.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import distributed as dist
from torch import nn

from gexnet.errors import GexnetError
from gexnet.formats.corpus import Corpus
from gexnet.formats.io import atomic_path, write_table
from gexnet.models.gene_lm import GeneLM, ModelConfig
from gexnet.training import data as lmdata

log = logging.getLogger(__name__)

# Dense bf16 (V100: fp16) datasheet peaks, by a part of the device name; first match wins.
PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H100", 989.0), ("H200", 989.0), ("A100", 312.0),
               ("V100", 125.0))  # fmt: skip
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
WORK = ("tokens", "targets", "flops")  # GeneLM.work's counts, summed over a step
KEEP_CHECKPOINTS = 2


def distributed() -> tuple[int, int, int, str]:
    """(rank, world size, local rank, where they came from): torchrun's variables, else srun's,
    else one process."""
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:
        rank, world, local = int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0))
        return rank, world, local, "torchrun"
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env:
        if "MASTER_ADDR" not in env:
            hosts = subprocess.run(
                ["scontrol", "show", "hostnames", env["SLURM_JOB_NODELIST"]],
                capture_output=True, text=True, check=True,
            ).stdout.split()  # fmt: skip
            env["MASTER_ADDR"] = hosts[0]
        env.setdefault("MASTER_PORT", str(15000 + int(env.get("SLURM_JOB_ID", "0")) % 20000))
        rank, world = int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"])
        return rank, world, int(env.get("SLURM_LOCALID", 0)), "srun"
    return 0, 1, 0, "one process"


class _Loss(nn.Module):
    """The model's loss as a forward pass, so that DDP's gradient hooks see it."""

    def __init__(self, model: GeneLM) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch):
        return self.model.loss(batch)


def train(
    corpus_dir: str | Path, experiment: dict, model_settings: dict, settings: dict, seed: int,
    outdir: str | Path, checkpoint_dir: str | Path, threads: int | None = None,
) -> None:  # fmt: skip
    """Train `experiment` ({objective, normalization, biotypes}) and write the final model."""
    rank, world, local_rank, launcher = distributed()
    device = _device(local_rank, settings)
    cuda = device.type == "cuda"
    log.info("process %d of %d (%s) on %s, device %s", rank, world, launcher,
             socket.gethostname(), device)  # fmt: skip
    if cuda:
        torch.cuda.set_device(device)
    elif threads:
        torch.set_num_threads(max(1, threads // min(world, _processes_per_node(settings))))
    if world > 1:
        dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    try:
        _train(
            rank, world, device, Path(corpus_dir), experiment, model_settings, settings, seed,
            Path(outdir), Path(checkpoint_dir),
        )  # fmt: skip
    finally:
        if world > 1:
            dist.destroy_process_group()


def _device(local_rank: int, settings: dict) -> torch.device:
    """The CPU for `train.gpus: 0`; else this process's GPU (by local rank; a task that Slurm
    binds to one GPU sees it as device 0), or the CPU where CUDA is not usable, which only
    `train.require_cuda: false` allows."""
    if not settings.get("gpus"):
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device(f"cuda:{local_rank % torch.cuda.device_count()}")
    if settings.get("require_cuda", True):
        raise GexnetError(
            f"train.gpus is {settings['gpus']} but CUDA is not usable on {socket.gethostname()} "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}, "
            f"torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}): install the "
            "CUDA build of PyTorch (envs/gexnet.yaml), or set train.gpus: 0 to train on CPUs"
        )
    log.warning("train.require_cuda is false and CUDA is not usable: training on CPUs (gloo)")
    return torch.device("cpu")


def _processes_per_node(settings: dict) -> int:
    return settings.get("gpus") or settings.get("cpu_processes") or 1


def _train(rank, world, device, corpus_dir, experiment, model_settings, settings, seed, outdir,
           checkpoint_dir) -> None:  # fmt: skip
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(device.type == "cpu")  # resumed = uninterrupted, bitwise
    corpus = Corpus(corpus_dir).sequences(experiment["normalization"], experiment.get("biotypes"))
    objective = experiment["objective"]
    config = ModelConfig(objective, corpus.n_tokens, corpus.context, levels=corpus.n_levels,
                         **model_settings)  # fmt: skip
    model = GeneLM(config).to(device)
    loss_module = _Loss(model)
    if world > 1:
        loss_module = nn.parallel.DistributedDataParallel(
            loss_module, device_ids=[device.index] if device.type == "cuda" else None
        )
    batch, accum = settings["batch_per_device"], settings["grad_accum"]
    global_batch = batch * world * accum
    per_epoch = lmdata.steps_per_epoch(corpus.n_train, global_batch)
    if per_epoch == 0:
        raise GexnetError(
            f"{corpus_dir}: {corpus.n_train} training samples, fewer than one step's "
            f"{global_batch} (train.batch_per_device × processes × train.grad_accum)"
        )
    total_steps = settings["epochs"] * per_epoch
    if settings.get("max_steps"):
        total_steps = min(total_steps, settings["max_steps"])
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings["weight_decay"]},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=settings["max_lr"],
    )  # fmt: skip
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=settings["max_lr"], total_steps=max(total_steps, 2)
    )
    fingerprint = {
        "corpus": corpus.corpus.digest, "experiment": experiment, "model": config.to_dict(), "seed": seed,
        "global_batch": global_batch, "grad_accum": accum, "total_steps": total_steps,
        **{k: settings[k] for k in ("max_lr", "weight_decay", "grad_clip", "mask_fraction")},
    }  # fmt: skip
    checkpoints = Checkpoints(checkpoint_dir, fingerprint, rank, corpus.corpus.header_path)
    start = checkpoints.resume(model, optimizer, schedule)
    metrics = Metrics(checkpoint_dir, start, rank)
    stop = _StopFlag()
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
        else contextlib.nullcontext()
    )  # fmt: skip
    peak = _peak_flops(device, settings.get("peak_tflops"))
    peak = peak * world if peak else None  # the step runs on all processes' devices
    progress = _progress(rank, start, total_steps, experiment)
    mask_fraction = settings["mask_fraction"]
    for step in range(start, total_steps):
        epoch, in_epoch = divmod(step, per_epoch)
        t0 = time.perf_counter()
        rows = lmdata.step_rows(corpus.n_train, global_batch, seed, epoch, in_epoch)
        micro, work = [], torch.zeros(len(WORK), dtype=torch.int64)
        for r in lmdata.micro_batches(rows, rank, world, accum):
            b = lmdata.make_batch(corpus, objective, r, seed, epoch, mask_fraction)
            work += torch.tensor([model.work(b)[k] for k in WORK])  # counted on the host
            micro.append({k: v.to(device) for k, v in b.items()})
        work = _all_sum(work.to(device), world)
        targets = work[WORK.index("targets")].double()
        step_loss = torch.zeros((), dtype=torch.float64, device=device)
        model.train()
        for m, micro_batch in enumerate(micro):
            sync = world == 1 or m == accum - 1
            with contextlib.nullcontext() if sync else loss_module.no_sync(), autocast:
                loss_sum, _ = loss_module(micro_batch)
            # DDP averages gradients over processes: scale back to a sum, divide by all targets
            (loss_sum * world / targets.clamp(min=1)).backward()
            step_loss += loss_sum.detach().double()
        if settings["grad_clip"] > 0:
            nn.utils.clip_grad_norm_(model.parameters(), settings["grad_clip"])
        lr = schedule.get_last_lr()[0]
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        loss = (_all_sum(step_loss, world) / targets.clamp(min=1)).item()  # waits for the GPU
        seconds = time.perf_counter() - t0
        row = step_metrics(dict(zip(WORK, work.tolist(), strict=True)), seconds, peak)
        metrics.step(step=step + 1, epoch=epoch, loss=loss, lr=lr, **row)
        progress.update(1)
        progress.set_postfix(
            loss=f"{loss:.3f}", lr=f"{lr:.2e}", tok_s=f"{row['tokens_per_s']:,.0f}"
        )
        end_of_epoch = (step + 1) % per_epoch == 0 or step + 1 == total_steps
        if end_of_epoch:
            val = _validation_loss(loss_module, corpus, objective, batch, seed, mask_fraction,
                                   rank, world, device, autocast)  # fmt: skip
            metrics.validation(step + 1, epoch, val)
            progress.write(f"epoch {epoch + 1}: validation loss {val:.4f}")
        stopping = _all_sum(torch.tensor(float(stop.signum or 0), device=device), world) > 0
        every = settings["checkpoint_every"]
        if stopping or (every and (step + 1) % every == 0) or step + 1 == total_steps:
            # metrics first: a checkpoint on disk always has its steps' rows (a resume cuts
            # rows past its step)
            metrics.flush()
            checkpoints.save(step + 1, model, optimizer, schedule)
        if stopping:
            progress.close()
            log.warning(
                "stopped by signal %s at step %d: checkpoint written", stop.signum, step + 1
            )
            raise SystemExit(128 + (stop.signum or signal.SIGTERM))
    progress.close()  # the last step flushed the metrics with its checkpoint
    if rank == 0:
        _write_model(outdir, model, config, experiment, fingerprint, corpus, metrics)
    if world > 1:
        dist.barrier()


def step_metrics(work: dict[str, int], seconds: float, peak: float | None) -> dict:
    """A step's metrics columns from its work (`GeneLM.work` summed over all its batches) and
    seconds: real tokens per second and the MFU against `peak` FLOP/s (None: unknown)."""
    return {
        "seconds": seconds, **work, "tokens_per_s": work["tokens"] / seconds,
        "mfu": work["flops"] / seconds / peak if peak else float("nan"),
    }  # fmt: skip


def _all_sum(x: torch.Tensor, world: int) -> torch.Tensor:
    if world > 1:
        x = x.clone()
        dist.all_reduce(x)
    return x


def _validation_loss(loss_module, corpus, objective, batch, seed, mask_fraction, rank, world,
                     device, autocast) -> float:  # fmt: skip
    """Mean token loss over the validation samples (fixed masks), shared out over processes."""
    rows = np.arange(corpus.n_train, corpus.n_samples)[rank::world]
    total = torch.zeros(2, dtype=torch.float64, device=device)
    loss_module.eval()
    inner = loss_module.module if world > 1 else loss_module  # no DDP bookkeeping: no backward
    with torch.no_grad(), autocast:
        for i in range(0, len(rows), batch):
            b = lmdata.make_batch(corpus, objective, rows[i : i + batch], seed,
                                  lmdata.VALIDATION_EPOCH, mask_fraction)  # fmt: skip
            loss_sum, count = inner({k: v.to(device) for k, v in b.items()})
            total += torch.stack([loss_sum.double(), count.double()])
    total = _all_sum(total, world)
    return (total[0] / total[1]).item() if total[1] > 0 else float("nan")


def _peak_flops(device: torch.device, peak_tflops: float | None) -> float | None:
    if peak_tflops:
        return peak_tflops * 1e12
    if device.type == "cuda":
        known = datasheet_peak(torch.cuda.get_device_name(device))
        return known[1] * 1e12 if known else None
    return None  # CPUs: no standard peak; set train.peak_tflops for an MFU


def datasheet_peak(device_name: str) -> tuple[str, float] | None:
    """(matched name, peak TFLOP/s) of a GPU from PEAK_TFLOPS, or None when unknown."""
    return next(((k, t) for k, t in PEAK_TFLOPS if k in device_name), None)


def _progress(rank: int, start: int, total: int, experiment: dict):
    from tqdm import tqdm

    return tqdm(
        total=total, initial=start, disable=rank != 0, unit="step",
        desc=f"{experiment['objective']}/{experiment['normalization']}",
    )  # fmt: skip


class _StopFlag:
    """Remembers SIGTERM/SIGUSR1 so the loop can checkpoint at the next step and exit."""

    def __init__(self) -> None:
        self.signum: int | None = None
        for s in STOP_SIGNALS:
            signal.signal(s, self._handle)

    def _handle(self, signum, frame) -> None:
        self.signum = signum


class Checkpoints:
    """step-<n>.pt files in one directory, written atomically by rank 0; the newest resumes
    when its fingerprint (settings, and the digest of the corpus at `corpus_file`) matches."""

    def __init__(self, directory: Path, fingerprint: dict, rank: int, corpus_file: Path) -> None:
        self.directory, self.fingerprint, self.rank = directory, fingerprint, rank
        self.corpus_file = corpus_file
        directory.mkdir(parents=True, exist_ok=True)

    def _files(self) -> list[Path]:
        return sorted(self.directory.glob("step-*.pt"))

    def resume(self, model, optimizer, schedule) -> int:
        files = self._files()
        if not files:
            return 0
        state = torch.load(files[-1], map_location="cpu", weights_only=False)
        theirs = json.loads(state["fingerprint"])
        ours = json.loads(json.dumps(self.fingerprint))
        if theirs != ours:
            changed = sorted(k for k in ours if theirs.get(k) != ours[k])
            why = []
            if "corpus" in changed:
                why.append(f"trained on another corpus ({self.corpus_file} changed)")
            if others := [k for k in changed if k != "corpus"]:
                why.append(f"written with other settings ({', '.join(others)})")
            raise GexnetError(
                f"{files[-1]}: {'; '.join(why)}: delete {self.directory} to start over"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["rng"])
        if torch.cuda.is_available() and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"])
        log.info("resumed from %s (step %d)", files[-1], state["step"])
        return state["step"]

    def save(self, step: int, model, optimizer, schedule) -> None:
        if self.rank == 0:
            state = {
                "step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(), "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state() if torch.cuda.is_available() else None,
                "fingerprint": json.dumps(self.fingerprint),
            }  # fmt: skip
            path = self.directory / f"step-{step:09d}.pt"
            with atomic_path(path) as tmp:
                torch.save(state, tmp)
            for old in self._files()[:-KEEP_CHECKPOINTS]:
                old.unlink()
        if dist.is_initialized():
            dist.barrier()


class Metrics:
    """metrics.tsv (per step) and validation.tsv (per epoch) beside the checkpoints, cut back
    to the resumed step, so a resumed run's tables read as one run's."""

    STEP = ("step", "epoch", "loss", "lr", "seconds", *WORK, "tokens_per_s", "mfu")
    VALIDATION = ("step", "epoch", "validation_loss")

    def __init__(self, directory: Path, start: int, rank: int) -> None:
        self.rank = rank
        self.paths = {"step": directory / "metrics.tsv", "validation": directory / "validation.tsv"}
        self.rows = {}
        for kind, columns in (("step", self.STEP), ("validation", self.VALIDATION)):
            path = self.paths[kind]
            old = pd.read_csv(path, sep="\t") if path.exists() else pd.DataFrame(columns=columns)
            self.rows[kind] = old[old["step"] <= start].to_dict("records")

    def step(self, **row) -> None:
        """One step's row: the STEP columns by name."""
        self.rows["step"].append(row)
        loss, step = row["loss"], row["step"]
        if not math.isfinite(loss):
            raise GexnetError(f"training diverged: loss {loss} at step {step}")

    def validation(self, step, epoch, loss) -> None:
        self.rows["validation"].append({"step": step, "epoch": epoch, "validation_loss": loss})

    def table(self, kind: str) -> pd.DataFrame:
        columns = self.STEP if kind == "step" else self.VALIDATION
        return pd.DataFrame(self.rows[kind], columns=columns)

    def flush(self, directory: Path | None = None) -> None:
        """Write both tables (rank 0): where they are kept, or into `directory`."""
        if self.rank == 0:
            for kind, path in self.paths.items():
                write_table(self.table(kind), directory / path.name if directory else path)


def _write_model(outdir, model, config, experiment, fingerprint, corpus, metrics) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(outdir / "model.safetensors") as tmp:
        save_file(state, str(tmp))
    write_table(corpus.vocabulary, outdir / "vocabulary.tsv")
    metrics.flush(outdir)
    description = {
        "model": config.to_dict(), "experiment": experiment, "training": fingerprint,
        "corpus": str(corpus.corpus.directory), "n_parameters": model.n_params(),
        "weights": "model.safetensors", "vocabulary": "vocabulary.tsv",
    }  # fmt: skip
    with atomic_path(outdir / "model.json") as tmp:
        tmp.write_text(json.dumps(description, indent=2) + "\n")


def load_model(model_dir: str | Path) -> tuple[GeneLM, dict]:
    """A trained model (eval mode) and its description from a training output directory."""
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    description = json.loads((model_dir / "model.json").read_text())
    model = GeneLM(ModelConfig(**description["model"]))
    model.load_state_dict(load_file(str(model_dir / description["weights"])))
    return model.eval(), description


def add_arguments(parser) -> None:
    parser.add_argument("--corpus", type=Path, required=True, help="a corpus directory")
    parser.add_argument(
        "--experiment", type=json.loads, required=True,
        help='JSON: {"objective": gpt|bert_genes|bert_expr, "normalization": binning|zscore, '
        '"biotypes": [...] or null}',
    )  # fmt: skip
    parser.add_argument("--model", type=json.loads, required=True, help="JSON: config's model")
    parser.add_argument("--train", type=json.loads, required=True, help="JSON: config's train")
    parser.add_argument("--seed", type=int, required=True, help="the config's seed")
    parser.add_argument("--threads", type=int, help="CPU threads of the job (all processes)")
    parser.add_argument("--out", type=Path, required=True, help="output directory (final model)")
    parser.add_argument(
        "--checkpoints", type=Path, required=True, help="checkpoint directory (kept across runs)"
    )


def run(args) -> None:
    train(args.corpus, args.experiment, args.model, args.train, args.seed, args.out,
          args.checkpoints, args.threads)  # fmt: skip
