"""The one trainer, on a model that is no gene model (tests/training/toy.py): which samples a
step sees, one process and two alike, resume to the same weights, refusal of other settings
and other data, and the metrics it writes."""

from __future__ import annotations

import ast
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from gexnet import config
from gexnet.errors import GexnetError
from gexnet.training import trainer

from ..conftest import REPO
from . import toy

TOY = Path(toy.__file__)


def settings(**changes) -> dict:
    s = config.validate({})["train"]
    s.update(max_lr=1e-2, batch_per_device=10, grad_accum=2, epochs=3, checkpoint_every=0,
             gpus=0, cpu_processes=1)  # fmt: skip
    s.update(changes)
    return s


def fit(tmp_path: Path, s: dict, data=None, job=None, seed: int = 5):
    net = toy.model(seed)
    with trainer.processes(s) as procs:
        metrics = trainer.fit(net, data or toy.Regression(seed), job or toy.job(), s, seed,
                              tmp_path / "ck", procs)  # fmt: skip
    return net, metrics


def test_the_trainer_knows_nothing_of_genes():
    tree = ast.parse(Path(trainer.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    ours = {m for m in imported if m.startswith("gexnet")}
    assert ours == {"gexnet.errors", "gexnet.formats.io"}, ours


def test_steps_cover_an_epoch_once_and_split_by_rank():
    n, g = 100, 8
    steps = trainer.steps_per_epoch(n, g)
    rows = np.concatenate([trainer.step_rows(n, g, 1, 0, s) for s in range(steps)])
    assert len(np.unique(rows)) == len(rows) == steps * g and rows.max() < n
    step = trainer.step_rows(n, g, 1, 0, 0)
    for world, accum in ((1, 2), (2, 1), (2, 2)):
        parts = [trainer.micro_batches(step, r, world, accum) for r in range(world)]
        together = sorted(np.concatenate([m for part in parts for m in part]).tolist())
        assert together == sorted(step.tolist())
    assert not np.array_equal(step, trainer.step_rows(n, g, 1, 1, 0)), "a new epoch order"


def test_fit_learns_and_writes_its_metrics(tmp_path):
    s = settings(epochs=6, max_lr=5e-2)
    net, metrics = fit(tmp_path, s)
    steps, val = metrics.table("step"), metrics.table("validation")
    assert list(steps.columns) == ["step", "epoch", "loss", "lr", "seconds", "samples",
                                   "samples_per_s", "mfu"]  # fmt: skip
    per_epoch = toy.N_TRAIN // (10 * 2)
    assert len(steps) == 6 * per_epoch and (steps["samples"] == 20).all()
    assert len(val) == 6 and val["validation_loss"].iloc[-1] < 0.5 * val["validation_loss"].iloc[0]
    # the validation loss is the mean item loss over the validation samples (fixed noise)
    data = toy.Regression(5)
    batch = data.batch(np.arange(toy.N_TRAIN, toy.N_SAMPLES), trainer.VALIDATION_EPOCH)
    with torch.no_grad():
        total, count = toy.squared_error(net.eval(), batch)
    assert math.isclose(val["validation_loss"].iloc[-1], (total / count).item(), rel_tol=1e-6)
    assert steps["mfu"].isna().all()  # no FLOPs counted, no peak known


def test_step_metrics_count_work_and_mfu_against_the_peak():
    work = {"tokens": 3_000.0, "targets": 2_900.0, "flops": 7.0 * 10**12}
    row = trainer.step_metrics(work, seconds=2.0, peak=5e12, throughput="tokens")
    assert row == {"seconds": 2.0, "tokens": 3_000, "targets": 2_900, "flops": 7 * 10**12,
                   "tokens_per_s": 1_500.0, "mfu": 0.7}  # fmt: skip
    assert math.isnan(trainer.step_metrics(work, 2.0, None, "tokens")["mfu"])


def test_interrupted_fit_resumes_to_the_same_weights(tmp_path):
    s = settings(checkpoint_every=3)
    whole, _ = fit(tmp_path / "whole", s)
    # the data source fails at its 16th batch: step 8 of 15 (two micro-batches a step)
    with pytest.raises(RuntimeError, match="went away"):
        fit(tmp_path / "cut", s, data=toy.Regression(5, fail_at_call=16))
    saved = sorted((tmp_path / "cut" / "ck").glob("step-*.pt"))
    assert [p.name for p in saved] == ["step-000000003.pt", "step-000000006.pt"]
    resumed, metrics = fit(tmp_path / "cut", s)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert metrics.table("step")["step"].tolist() == list(range(1, 16))


def test_other_settings_or_data_are_refused_by_name(tmp_path):
    fit(tmp_path, settings(max_steps=2))
    saved = sorted((tmp_path / "ck").glob("step-*.pt"))[-1]
    with pytest.raises(GexnetError, match=r"written with other settings \(max_lr\)"):
        fit(tmp_path, settings(max_steps=2, max_lr=5e-3))
    with pytest.raises(GexnetError) as refused:
        fit(tmp_path, settings(max_steps=2), job=toy.job(digest="synthetic-2"))
    assert str(refused.value) == (
        f"{saved}: trained on another data set (synthetic.npy changed): delete "
        f"{tmp_path / 'ck'} to start over"
    )


def run_toy(tmp_path: Path, name: str, processes: int, s: dict) -> Path:
    out = tmp_path / name
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={processes}", str(TOY), "--settings", json.dumps(s),
           "--checkpoints", str(tmp_path / f"ck_{name}"), "--out", str(out)]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "workflow_scripts"), str(REPO)]),
               OMP_NUM_THREADS="1")  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return out


def test_two_processes_equal_one_with_the_same_global_batch(tmp_path):
    one = run_toy(tmp_path, "one", 1, settings(cpu_processes=1, batch_per_device=10))
    two = run_toy(tmp_path, "two", 2, settings(cpu_processes=2, batch_per_device=5))
    a, b = (torch.load(d / "weights.pt") for d in (one, two))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    la, lb = (pd.read_csv(d / "metrics.tsv", sep="\t") for d in (one, two))
    np.testing.assert_allclose(la["loss"], lb["loss"], rtol=1e-5)
    assert (la["samples"] == 20).all() and (lb["samples"] == 20).all()  # both processes' work
