"""One trainer for every model. It knows nothing of genes: it takes a torch module, a data source
that makes the batch of any sample rows for an epoch, and a loss that returns (sum, count).

- Processes: torchrun's RANK/WORLD_SIZE/LOCAL_RANK, else Slurm's SLURM_PROCID/SLURM_NTASKS/
  SLURM_LOCALID (srun, the master being the job's first node), else one; DDP over NCCL on GPUs,
  gloo on CPUs; `train.gpus: 0` means CPUs even where CUDA exists.
- Samples: an epoch's order is a permutation of the training rows drawn from (seed, epoch);
  optimizer step s takes the next `batch_per_device` × processes × `grad_accum` rows of it,
  split into processes × accumulation micro-batches (micro-batch m of rank r holds slice
  m · world + r). The data source draws anything random from (seed, epoch, row), so one process
  and many see the same samples at every step, and a resumed run continues where the
  interrupted one stopped.
- A step's loss is the sum of the item losses over all its micro-batches and processes divided
  by their count, so the step is the same whatever the split into processes and micro-batches.
- AdamW (weight decay on matrices only) and a OneCycle schedule stepped once per optimizer step;
  gradients clipped at `grad_clip`; bf16 autocast on GPUs.
- Checkpoints (model, optimizer, schedule, RNG, step: the data position follows from the step)
  are written atomically every `checkpoint_every` steps and on SIGTERM/SIGUSR1 (Slurm
  preemption) into a directory outside the job's outputs; a rerun resumes from the newest, only
  if its fingerprint (the training settings and what the caller says identifies the model and
  data) is the same, else it stops naming what changed.
- metrics.tsv: a row per step (loss, lr, seconds, the data source's work counts summed over all
  processes, `<throughput>_per_s`, and mfu: flops / seconds / the peak of all the step's
  devices, NaN where unknown); validation.tsv: the validation loss of every epoch.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import logging
import math
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import torch
from torch import distributed as dist
from torch import nn

from gexnet.errors import GexnetError
from gexnet.formats.io import atomic_path, write_table

log = logging.getLogger(__name__)

# Dense bf16 (V100: fp16) datasheet peaks, by a part of the device name; first match wins.
PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H100", 989.0), ("H200", 989.0), ("A100", 312.0),
               ("V100", 125.0))  # fmt: skip
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
VALIDATION_EPOCH = 2**31 - 1  # what validation batches draw from: the same every epoch
KEEP_CHECKPOINTS = 2
# train.* keys that decide the steps (a checkpoint from other values is refused)
STEP_SETTINGS = ("max_lr", "weight_decay", "grad_clip")

Batch = dict[str, torch.Tensor]


class DataSource(Protocol):
    """Samples 0..n_train-1 train, n_train..n_samples-1 validate; `batch(rows, epoch)` makes
    the batch of those rows, drawing anything random from (seed, epoch, row) only."""

    n_train: int
    n_samples: int

    def batch(self, rows: np.ndarray, epoch: int) -> Batch: ...


# --- processes and devices -----------------------------------------------------------------


@dataclass
class Processes:
    """This process's place: rank and world size, local rank, how it was started, device."""

    rank: int
    world: int
    local_rank: int
    launcher: str
    device: torch.device

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


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


@contextlib.contextmanager
def processes(settings: dict, threads: int | None = None) -> Iterator[Processes]:
    """Join the job's processes (the process group when there are several) for the block."""
    rank, world, local_rank, launcher = distributed()
    device = _device(local_rank, settings)
    log.info("process %d of %d (%s) on %s, device %s", rank, world, launcher,
             socket.gethostname(), device)  # fmt: skip
    if device.type == "cuda":
        torch.cuda.set_device(device)
    else:
        keep_freed_memory()
        if threads:
            per_node = settings.get("gpus") or settings.get("cpu_processes") or 1
            torch.set_num_threads(max(1, threads // min(world, per_node)))
    if world > 1:
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, rank=rank, world_size=world)
        log.info("process group: %s, %d processes", dist.get_backend(), world)
    try:
        yield Processes(rank, world, local_rank, launcher, device)
    finally:
        if world > 1:
            dist.destroy_process_group()


def keep_freed_memory() -> None:
    """Keep freed tensors' memory in the process (glibc): by default glibc hands each freed
    block of more than a few MB back to the kernel and faults it in again at the next step,
    which cost a demo GPT step a third of its time (a step's logits are tens of MB) and the
    classifier engine (`gexnet classify`) a tenth of its. Blocks up to 1 GB come from the heap,
    and the heap is never trimmed. No-op where the C library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    mallopt(m_mmap_threshold, 2**30)
    mallopt(m_trim_threshold, 2**31 - 1)
    mallopt(m_top_pad, 256 * 2**20)


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


# --- which samples a step sees ---------------------------------------------------------------


def steps_per_epoch(n_train: int, global_batch: int) -> int:
    return n_train // global_batch  # the last partial batch of an epoch is left out


def step_rows(n_train: int, global_batch: int, seed: int, epoch: int, step: int) -> np.ndarray:
    """The training rows of optimizer step `step` of `epoch` (all ranks, all micro-batches)."""
    order = _epoch_order(n_train, seed, epoch)
    return order[step * global_batch : (step + 1) * global_batch]


@functools.lru_cache(maxsize=1)
def _epoch_order(n_train: int, seed: int, epoch: int) -> np.ndarray:
    """The epoch's shuffle, made once per epoch rather than at every step (read-only)."""
    order = np.random.default_rng([seed, epoch]).permutation(n_train)
    order.flags.writeable = False
    return order


def micro_batches(rows: np.ndarray, rank: int, world: int, accum: int) -> list[np.ndarray]:
    """This rank's micro-batches of a step: slice m · world + rank for m = 0..accum − 1."""
    parts = np.array_split(rows, world * accum)
    return [parts[m * world + rank] for m in range(accum)]


# --- the loop -----------------------------------------------------------------------------


@dataclass
class Job:
    """What a model brings to the trainer besides its module and data.

    `loss(model, batch)` returns (sum of item losses, number of items); `work(batch)` the
    batch's counts for the metrics (optional; a "flops" count gives the MFU), `throughput` the
    count reported per second; `fingerprint` what identifies the model and its data, and
    `data_file` the file whose digest is `fingerprint["data"]`, named (as a `data_name`) when
    a checkpoint of other data is refused."""

    name: str
    loss: Callable[[nn.Module, Batch], tuple[torch.Tensor, torch.Tensor]]
    fingerprint: dict
    data_file: Path | None = None
    data_name: str = "data set"
    work: Callable[[Batch], dict[str, float]] | None = None
    work_columns: tuple[str, ...] = ()
    throughput: str | None = None


class _Loss(nn.Module):
    """The job's loss as a forward pass, so that DDP's gradient hooks see it."""

    def __init__(self, model: nn.Module, loss: Callable) -> None:
        super().__init__()
        self.model, self._loss = model, loss

    def forward(self, batch: Batch):
        return self._loss(self.model, batch)


def fit(
    model: nn.Module, data: DataSource, job: Job, settings: dict, seed: int,
    checkpoint_dir: str | Path, procs: Processes,
) -> Metrics:  # fmt: skip
    """Train `model` (in place) on `data` with `settings` (the config's train section): every
    step, checkpoint and validation of the module docstring. Returns the metrics tables."""
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(procs.device.type == "cpu")  # resumed = uninterrupted
    rank, world, device = procs.rank, procs.world, procs.device
    model.to(device)
    loss_module = _Loss(model, job.loss)
    if world > 1:
        loss_module = nn.parallel.DistributedDataParallel(
            loss_module, device_ids=[device.index] if procs.cuda else None
        )
    batch, accum = settings["batch_per_device"], settings["grad_accum"]
    global_batch = batch * world * accum
    per_epoch = steps_per_epoch(data.n_train, global_batch)
    if per_epoch == 0:
        raise GexnetError(
            f"{job.name}: {data.n_train} training samples, fewer than one step's {global_batch} "
            "(train.batch_per_device × processes × train.grad_accum)"
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
        **job.fingerprint, "seed": seed, "global_batch": global_batch, "grad_accum": accum,
        "total_steps": total_steps, **{k: settings[k] for k in STEP_SETTINGS},
    }  # fmt: skip
    checkpoint_dir = Path(checkpoint_dir)
    checkpoints = Checkpoints(checkpoint_dir, fingerprint, rank, job.data_file, job.data_name)
    start = checkpoints.resume(model, optimizer, schedule)
    metrics = Metrics(checkpoint_dir, start, rank, job.work_columns, job.throughput)
    stop = _StopFlag()
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if procs.cuda else contextlib.nullcontext()
    )
    log.info("precision: %s", "bf16 autocast" if procs.cuda else "fp32")
    peak = _peak_flops(device, settings.get("peak_tflops"))
    peak = peak * world if peak else None  # the step runs on all processes' devices
    progress = _progress(rank, start, total_steps, job.name)
    for step in range(start, total_steps):
        epoch, in_epoch = divmod(step, per_epoch)
        t0 = time.perf_counter()
        rows = step_rows(data.n_train, global_batch, seed, epoch, in_epoch)
        micro, work = [], torch.zeros(len(job.work_columns), dtype=torch.float64)
        for r in micro_batches(rows, rank, world, accum):
            b = data.batch(r, epoch)
            if job.work:  # counted on the host, before the batch moves
                counts = job.work(b)
                work += torch.tensor([float(counts[k]) for k in job.work_columns])
            micro.append({k: v.to(device) for k, v in b.items()})
        sums = torch.zeros(2, dtype=torch.float64, device=device)  # loss sum, items
        model.train()
        for m, micro_batch in enumerate(micro):
            sync = world == 1 or m == accum - 1
            with contextlib.nullcontext() if sync else loss_module.no_sync(), autocast:
                loss_sum, count = loss_module(micro_batch)
            # DDP averages gradients over processes: scaled back to a sum here, and divided by
            # the step's items (all micro-batches, all processes) once they are counted
            (loss_sum * world).backward()
            sums += torch.stack([loss_sum.detach().double(), count.detach().double()])
        sums = _all_sum(sums, world)
        items = sums[1].clamp(min=1)
        for p in model.parameters():
            if p.grad is not None:
                p.grad.div_(items.to(p.grad.dtype))
        if settings["grad_clip"] > 0:
            nn.utils.clip_grad_norm_(model.parameters(), settings["grad_clip"])
        lr = schedule.get_last_lr()[0]
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        loss = (sums[0] / items).item()  # waits for the GPU
        seconds = time.perf_counter() - t0
        work = _all_sum(work.to(device), world).tolist()
        row = step_metrics(dict(zip(job.work_columns, work, strict=True)), seconds, peak,
                           job.throughput)  # fmt: skip
        metrics.step(step=step + 1, epoch=epoch, loss=loss, lr=lr, **row)
        progress.update(1)
        progress.set_postfix(loss=f"{loss:.3f}", lr=f"{lr:.2e}")
        if (step + 1) % per_epoch == 0 or step + 1 == total_steps:
            val = validation_loss(loss_module, data, batch, procs, autocast)
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
    metrics.fingerprint = fingerprint
    return metrics


def step_metrics(work: dict[str, float], seconds: float, peak: float | None,
                 throughput: str | None) -> dict:  # fmt: skip
    """A step's metrics columns from its work (summed over all its batches) and seconds: the
    throughput count per second, and the MFU from "flops" against `peak` FLOP/s (None:
    unknown)."""
    row = {
        "seconds": seconds,
        **{k: int(v) if float(v).is_integer() else v for k, v in work.items()},
    }
    if throughput:
        row[f"{throughput}_per_s"] = work[throughput] / seconds
    row["mfu"] = work["flops"] / seconds / peak if peak and "flops" in work else float("nan")
    return row


def _all_sum(x: torch.Tensor, world: int) -> torch.Tensor:
    if world > 1:
        x = x.clone()
        dist.all_reduce(x)
    return x


def validation_loss(loss_module, data: DataSource, batch: int, procs: Processes,
                    autocast) -> float:  # fmt: skip
    """Mean item loss over the validation samples (their batches drawn for VALIDATION_EPOCH,
    the same every epoch), shared out over processes."""
    rows = np.arange(data.n_train, data.n_samples)[procs.rank :: procs.world]
    total = torch.zeros(2, dtype=torch.float64, device=procs.device)
    loss_module.eval()
    inner = loss_module.module if procs.world > 1 else loss_module  # no backward: no DDP
    with torch.no_grad(), autocast:
        for i in range(0, len(rows), batch):
            b = data.batch(rows[i : i + batch], VALIDATION_EPOCH)
            loss_sum, count = inner({k: v.to(procs.device) for k, v in b.items()})
            total += torch.stack([loss_sum.double(), count.double()])
    total = _all_sum(total, procs.world)
    return (total[0] / total[1]).item() if total[1] > 0 else float("nan")


def _progress(rank: int, start: int, total: int, name: str):
    from tqdm import tqdm

    return tqdm(total=total, initial=start, disable=rank != 0, unit="step", desc=name)


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
    when its fingerprint matches (the data by the digest of `data_file`, "data" in it)."""

    def __init__(self, directory: Path, fingerprint: dict, rank: int,
                 data_file: Path | None = None, data_name: str = "data set") -> None:  # fmt: skip
        self.directory, self.fingerprint, self.rank = directory, fingerprint, rank
        self.data_file, self.data_name = data_file, data_name
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
            changed = sorted(k for k in ours.keys() | theirs.keys() if theirs.get(k) != ours.get(k))
            why = []
            if "data" in changed:
                why.append(f"trained on another {self.data_name} ({self.data_file} changed)")
            if others := [k for k in changed if k != "data"]:
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

    VALIDATION = ("step", "epoch", "validation_loss")

    def __init__(self, directory: Path, start: int, rank: int, work: tuple[str, ...] = (),
                 throughput: str | None = None) -> None:  # fmt: skip
        self.rank = rank
        rate = (f"{throughput}_per_s",) if throughput else ()
        self.columns = {"step": ("step", "epoch", "loss", "lr", "seconds", *work, *rate, "mfu"),
                        "validation": self.VALIDATION}  # fmt: skip
        self.paths = {"step": directory / "metrics.tsv", "validation": directory / "validation.tsv"}
        self.fingerprint: dict = {}
        self.rows = {}
        for kind, columns in self.columns.items():
            path = self.paths[kind]
            old = pd.read_csv(path, sep="\t") if path.exists() else pd.DataFrame(columns=columns)
            self.rows[kind] = old[old["step"] <= start].to_dict("records")

    def step(self, **row) -> None:
        """One step's row: the step columns by name."""
        self.rows["step"].append(row)
        loss, step = row["loss"], row["step"]
        if not math.isfinite(loss):
            raise GexnetError(f"training diverged: loss {loss} at step {step}")

    def validation(self, step, epoch, loss) -> None:
        self.rows["validation"].append({"step": step, "epoch": epoch, "validation_loss": loss})

    def table(self, kind: str) -> pd.DataFrame:
        return pd.DataFrame(self.rows[kind], columns=self.columns[kind])

    def flush(self, directory: Path | None = None) -> None:
        """Write both tables (rank 0): where they are kept, or into `directory`."""
        if self.rank == 0:
            for kind, path in self.paths.items():
                write_table(self.table(kind), directory / path.name if directory else path)
