"""A model that is no gene model, for the trainer's tests: a two-layer regression on synthetic
samples, trained by `gexnet.training.trainer` (run as a script, alone or under torchrun)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gexnet.training import trainer

N_SAMPLES, N_TRAIN, FEATURES = 120, 100, 6


class Regression:
    """Fixed samples x (by seed); each batch adds noise drawn from (seed, epoch, row) only."""

    def __init__(self, seed: int, fail_at_call: int | None = None) -> None:
        rng = np.random.default_rng(seed)
        self.x = rng.standard_normal((N_SAMPLES, FEATURES)).astype(np.float32)
        self.y = (self.x @ rng.standard_normal(FEATURES) + np.sin(self.x[:, 0])).astype(np.float32)
        self.seed, self.n_train, self.n_samples = seed, N_TRAIN, N_SAMPLES
        self.calls, self.fail_at_call = 0, fail_at_call

    def batch(self, rows: np.ndarray, epoch: int) -> dict[str, torch.Tensor]:
        self.calls += 1
        if self.calls == self.fail_at_call:
            raise RuntimeError("the node went away")
        noise = np.array([np.random.default_rng([self.seed, epoch, int(r)]).normal(0, 0.1)
                          for r in rows], np.float32)  # fmt: skip
        return {"x": torch.from_numpy(self.x[rows]), "y": torch.from_numpy(self.y[rows] + noise)}


def squared_error(model: nn.Module, batch) -> tuple[torch.Tensor, torch.Tensor]:
    residual = model(batch["x"]).squeeze(-1) - batch["y"]
    return (residual**2).sum(), torch.tensor(len(residual))


def model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(FEATURES, 16), nn.Tanh(), nn.Linear(16, 1))


def job(digest: str = "synthetic-1") -> trainer.Job:
    return trainer.Job(
        name="regression", loss=squared_error, fingerprint={"data": digest, "model": "mlp-16"},
        data_file=Path("synthetic.npy"), work=lambda b: {"samples": len(b["y"])},
        work_columns=("samples",), throughput="samples",
    )  # fmt: skip


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--settings", type=json.loads, required=True)
    p.add_argument("--checkpoints", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=5)
    args = p.parse_args(argv)
    net = model(args.seed)
    with trainer.processes(args.settings) as procs:
        metrics = trainer.fit(net, Regression(args.seed), job(), args.settings, args.seed,
                              args.checkpoints, procs)  # fmt: skip
        if procs.rank == 0:
            args.out.mkdir(parents=True, exist_ok=True)
            torch.save(net.state_dict(), args.out / "weights.pt")
            metrics.flush(args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
