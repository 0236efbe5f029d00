"""Training on CUDA: bf16 autocast, the NCCL process group, resuming from a checkpoint on the
GPU. Run on a GPU machine by `bash benchmarks/gpu_check.sh` (pytest --gpu); deselected
elsewhere, never in CI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from gexnet.formats.corpus import Corpus
from gexnet.training import trainer

from .test_lm import kill_after_first_checkpoint, run_train, train_settings, weights

pytestmark = pytest.mark.gpu


def cuda_settings(**changes) -> dict:
    return train_settings(gpus=1, **changes)


def validation_losses(out) -> pd.Series:
    return pd.read_csv(out / "validation.tsv", sep="\t")["validation_loss"]


def test_cuda_trains_in_bf16_close_to_fp32(corpus, tmp_path):
    assert torch.cuda.is_available(), "no usable CUDA device"
    gpu = run_train(corpus, tmp_path / "gpu", tmp_path / "ck_gpu", settings=cuda_settings(epochs=4))
    assert "device cuda:0" in gpu and "precision: bf16 autocast" in gpu, gpu[-2000:]
    cpu = run_train(
        corpus, tmp_path / "cpu", tmp_path / "ck_cpu", settings=train_settings(epochs=4)
    )
    assert "precision: fp32" in cpu
    g, c = validation_losses(tmp_path / "gpu"), validation_losses(tmp_path / "cpu")
    assert g.iloc[-1] < g.iloc[0], "the GPU run does not learn"
    # the same steps in bf16: the same curve within bf16's rounding, not the same bits
    np.testing.assert_allclose(g, c, rtol=0.03)
    steps = pd.read_csv(tmp_path / "gpu" / "metrics.tsv", sep="\t")
    assert steps["mfu"].notna().all() and steps["mfu"].gt(0).all()  # the device's peak is known


def test_two_gpus_over_nccl_take_the_steps_of_one(corpus, tmp_path):
    if torch.cuda.device_count() < 2:
        pytest.skip(f"{torch.cuda.device_count()} GPU: NCCL between processes needs two")
    one = cuda_settings(batch_per_device=4, grad_accum=2)
    two = cuda_settings(gpus=2, batch_per_device=2, grad_accum=2)
    run_train(corpus, tmp_path / "one", tmp_path / "ck1", settings=one)
    out = run_train(corpus, tmp_path / "two", tmp_path / "ck2", processes=2, settings=two)
    assert "process group: nccl, 2 processes" in out, out[-2000:]
    a = pd.read_csv(tmp_path / "one" / "metrics.tsv", sep="\t")
    b = pd.read_csv(tmp_path / "two" / "metrics.tsv", sep="\t")
    assert a["tokens"].tolist() == b["tokens"].tolist()  # the same samples in every step
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=0.02)


def test_killed_cuda_run_resumes_from_its_checkpoint(corpus, tmp_path):
    settings = cuda_settings(epochs=20, checkpoint_every=5)
    run_train(corpus, tmp_path / "full", tmp_path / "ck_full", settings=settings)
    total = 20 * trainer.steps_per_epoch(Corpus(corpus).n_train, 8)
    proc = run_train(corpus, tmp_path / "cut", tmp_path / "ck_cut", settings=settings, wait=False)
    ck = tmp_path / "ck_cut"
    saved = kill_after_first_checkpoint(proc, ck)
    assert saved, "no checkpoint before the kill"
    step = int(saved[-1].stem.split("-")[1])
    assert step < total and not (tmp_path / "cut" / "model.safetensors").exists()
    output = run_train(corpus, tmp_path / "cut", ck, settings=settings)
    assert f"resumed from {saved[-1]} (step {step})" in output and "device cuda:0" in output
    cut = pd.read_csv(tmp_path / "cut" / "metrics.tsv", sep="\t")
    assert cut["step"].tolist() == list(range(1, total + 1))
    # GPU kernels add in no fixed order: the resumed run ends close to, not bit-equal to, the
    # uninterrupted one (bit-equality is checked on CPU)
    np.testing.assert_allclose(validation_losses(tmp_path / "cut"),
                               validation_losses(tmp_path / "full"), rtol=0.02)  # fmt: skip
    a, b = weights(tmp_path / "full"), weights(tmp_path / "cut")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0.05, atol=0.02)
