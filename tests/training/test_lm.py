"""Training: data parallelism equals one process, a killed run resumes to the same weights,
checkpoints refuse other settings and other corpora, the metrics count what the steps saw, and
the outputs describe themselves."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import torch
from safetensors.torch import load_file

from gexnet import config
from gexnet.errors import GexnetError
from gexnet.formats.corpus import CLS, MASK, PAD, Corpus
from gexnet.models.gene_lm import IGNORE
from gexnet.training import data as lmdata
from gexnet.training import embeddings as export
from gexnet.training import trainer

from ..conftest import REPO
from .conftest import build_corpus

MODEL = {"hidden": 32, "layers": 2, "heads": 2, "ffn": 64, "dropout": 0.0}
GPT = {
    "objective": "gpt",
    "normalization": "binning",
    "species": "human",
    "pseudo_species": False,
    "biotypes": None,
}


def train_settings(**changes) -> dict:
    settings = config.validate({})["train"]
    settings.update(max_lr=3e-3, batch_per_device=4, grad_accum=2, epochs=2, checkpoint_every=0,
                    gpus=0)  # fmt: skip
    settings.update(changes)
    return settings


def run_train(corpus, out, checkpoints, experiment=GPT, processes=1, settings=None, seed=3,
              wait=True):  # fmt: skip
    """`gexnet train` as the rule runs it: torchrun with `processes` CPU processes."""
    run_config = {"seed": seed, "gene_lm": MODEL, "train": settings or train_settings(),
                  "experiments": {"test": experiment}}  # fmt: skip
    corpora = [str(c) for c in corpus] if isinstance(corpus, list | tuple) else [str(corpus)]
    args = [
        *corpora, "--config", json.dumps(run_config), "--experiment", "test",
        "--threads", str(processes), "--out", str(out), "--checkpoints", str(checkpoints),
    ]  # fmt: skip
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={processes}", "-m", "gexnet", "train"]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(REPO / "workflow_scripts"), OMP_NUM_THREADS="1")
    log = Path(str(out) + f".{time.monotonic_ns()}.log")
    with open(log, "w") as sink:  # a file, not a pipe: a full pipe would stall the trainer
        proc = subprocess.Popen(launcher + args, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    proc.log = log
    if not wait:
        return proc
    proc.wait(timeout=600)
    output = log.read_text()
    assert proc.returncode == 0, output[-3000:]
    return output


def weights(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "model.safetensors"))


# --- batches ---------------------------------------------------------------------------------


def test_gpt_batch_predicts_every_gene(corpus):
    c = Corpus(corpus).sequences("binning")
    rows = np.array([0, 5, 9])
    batch = lmdata.make_batch(c, "gpt", rows, seed=1, epoch=0)
    tokens = np.asarray(c.tokens[rows], dtype=np.int64)
    assert (batch["tokens"][:, 0] == CLS).all()
    assert (batch["tokens"][:, 1:].numpy() == tokens[:, :-1]).all()
    assert (batch["targets"].numpy() == np.where(tokens == PAD, IGNORE, tokens)).all()


@pytest.mark.parametrize("objective", ["bert_genes", "bert_expr"])
def test_bert_masks_depend_on_the_sample_not_the_batch(corpus, objective):
    c = Corpus(corpus).sequences("binning")
    rows = np.arange(40)
    whole = lmdata.make_batch(c, objective, rows, seed=1, epoch=0)
    part = lmdata.make_batch(c, objective, rows[[7, 3]], seed=1, epoch=0)
    for key in whole:
        assert torch.equal(whole[key][[7, 3]], part[key])
    tokens, _ = c.rows(rows)
    chosen = whole["targets"] != IGNORE
    share = chosen.sum().item() / (tokens != PAD).sum()
    assert 0.10 < share < 0.20, share
    assert not (chosen & torch.from_numpy(tokens == PAD)).any()
    inputs = whole["levels"] if objective == "bert_expr" else whole["tokens"]
    masked_value = c.n_levels + 1 if objective == "bert_expr" else MASK
    masked = (inputs == masked_value)[chosen].float().mean().item()
    assert 0.7 < masked < 0.9, masked
    other = lmdata.make_batch(c, objective, rows, seed=1, epoch=1)
    assert not torch.equal(other["targets"], whole["targets"]), "new masks each epoch"


def test_biotype_filter_keeps_order_and_renumbers(corpus):
    full = Corpus(corpus).sequences("binning")
    coding = Corpus(corpus).sequences("binning", ["protein_coding"])
    assert coding.n_tokens < full.n_tokens
    assert (coding.vocabulary["biotype"].iloc[3:] == "protein_coding").all()
    rows = np.arange(20)
    a, _ = full.rows(rows)
    b, _ = coding.rows(rows)
    ids_a = full.vocabulary.set_index("token_id")["gene_id"]
    ids_b = coding.vocabulary.set_index("token_id")["gene_id"]
    biotype = full.vocabulary.set_index("token_id")["biotype"]
    for i in range(len(rows)):
        expected = [ids_a[t] for t in a[i] if t != PAD and biotype[t] == "protein_coding"]
        assert [ids_b[t] for t in b[i] if t != PAD] == expected
        assert (b[i][len(expected) :] == PAD).all()


# --- training --------------------------------------------------------------------------------


def test_two_processes_equal_one_with_the_same_global_batch(corpus, tmp_path):
    # one process: 4 × 2 accumulation × 1 = 8 a step; two processes: 2 × 2 × 2 = 8 a step
    coding = dict(GPT, biotypes=["protein_coding"])  # lncRNAs left out: sequences with padding
    one = train_settings(max_steps=6, peak_tflops=0.5)
    run_train(corpus, tmp_path / "one", tmp_path / "ck1", coding, settings=one)
    two = train_settings(max_steps=6, batch_per_device=2, peak_tflops=0.5)
    run_train(corpus, tmp_path / "two", tmp_path / "ck2", coding, processes=2, settings=two)
    a, b = weights(tmp_path / "one"), weights(tmp_path / "two")
    start = initial_weights(corpus, seed=3, biotypes=coding["biotypes"])
    assert a.keys() == b.keys()
    moved = max((a[k] - start[k]).abs().max().item() for k in a)
    differ = max((a[k] - b[k]).abs().max().item() for k in a)
    assert moved > 1e-3, "training changed the weights"
    assert differ < 1e-5 * max(1.0, moved) + 1e-6, (differ, moved)
    ma = pd.read_csv(tmp_path / "one" / "metrics.tsv", sep="\t")
    mb = pd.read_csv(tmp_path / "two" / "metrics.tsv", sep="\t")
    np.testing.assert_allclose(ma["loss"], mb["loss"], rtol=1e-5)
    # the work of a step is all processes' together: what the step's samples hold
    expected = pd.DataFrame([gpt_step_work(corpus, s, "protein_coding") for s in range(6)])
    for metrics, world in ((ma, 1), (mb, 2)):
        pd.testing.assert_frame_equal(metrics[["tokens", "targets", "flops"]], expected)
        np.testing.assert_allclose(metrics["tokens_per_s"], metrics["tokens"] / metrics["seconds"])
        mfu = metrics["flops"] / metrics["seconds"] / (0.5e12 * world)  # one peak per process
        np.testing.assert_allclose(metrics["mfu"], mfu, rtol=1e-9)


def gpt_step_work(corpus: Path, step: int, biotype: str, global_batch=8, seed=3) -> dict:
    """Real tokens, targets and FLOPs of a step of a GPT on the genes of `biotype`, counted
    from the corpus's token array, its vocabulary and MODEL's parameter shapes."""
    c = Corpus(corpus).sequences("binning")
    vocabulary = pd.read_csv(corpus / "vocabulary.tsv", sep="\t", keep_default_na=False)
    kept = vocabulary.loc[vocabulary["biotype"] == biotype, "token_id"].to_numpy()
    per_epoch = trainer.steps_per_epoch(c.n_train, global_batch)
    rows = trainer.step_rows(c.n_train, global_batch, seed, *divmod(step, per_epoch))
    genes = np.isin(np.asarray(c.tokens[rows]), kept).sum(axis=1)
    n_tokens = 3 + len(kept)  # <pad>, <cls>, <mask> and the genes kept
    t, h, f, layers = c.context, MODEL["hidden"], MODEL["ffn"], MODEL["layers"]
    real = int(np.minimum(genes + 1, t).sum())  # <cls>, then the genes but the last position's
    targets = int(genes.sum())
    body = layers * (4 * h * h + 2 * h * f + 3 * h + h + f + h + 4 * h) + 2 * h
    attention = 12 * layers * h * len(rows) * t * (t + 1) // 2  # causal: on and below diagonal
    flops = 6 * body * real + 6 * n_tokens * h * targets + attention
    assert real < len(rows) * t, "the test's samples hold padding"
    return {"tokens": real, "targets": targets, "flops": flops}


def initial_weights(corpus, seed, biotypes=None):
    """The GPT's weights before any step."""
    from gexnet.models.gene_lm import GeneLM, ModelConfig

    c = Corpus(corpus).sequences("binning", biotypes)
    torch.manual_seed(seed)
    return GeneLM(ModelConfig("gpt", c.n_tokens, c.context, **MODEL)).state_dict()


def kill_after_first_checkpoint(proc: subprocess.Popen, checkpoints: Path) -> list[Path]:
    """Kill torchrun and its worker (in a session of its own) once a checkpoint is written, as
    when a node dies; the checkpoints there are then."""
    deadline = time.time() + 300
    while not any(checkpoints.glob("step-*.pt")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    for p in tree:
        p.kill()
    psutil.wait_procs(tree, timeout=30)
    proc.wait()
    return sorted(checkpoints.glob("step-*.pt"))


def test_killed_run_resumes_to_identical_weights(corpus, tmp_path):
    # long enough (hundreds of steps) to be killed soon after its first checkpoints
    settings = train_settings(epochs=20, checkpoint_every=5)
    experiment = dict(GPT, objective="bert_genes")
    run_train(corpus, tmp_path / "full", tmp_path / "ck_full", experiment, settings=settings)
    per_epoch = trainer.steps_per_epoch(Corpus(corpus).n_train, 8)
    total = 20 * per_epoch
    assert total > 100
    proc = run_train(corpus, tmp_path / "cut", tmp_path / "ck_cut", experiment, settings=settings,
                     wait=False)  # fmt: skip
    ck = tmp_path / "ck_cut"
    saved = kill_after_first_checkpoint(proc, ck)
    time.sleep(1)
    assert sorted(ck.glob("step-*.pt")) == saved, "training went on after the kill"
    assert saved, "a checkpoint was written before the kill"
    step = int(saved[-1].stem.split("-")[1])
    assert step < total and not (tmp_path / "cut" / "model.safetensors").exists()
    output = run_train(corpus, tmp_path / "cut", ck, experiment, settings=settings)
    assert f"resumed from {saved[-1]} (step {step})" in output
    a, b = weights(tmp_path / "full"), weights(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ"
    full = pd.read_csv(tmp_path / "full" / "metrics.tsv", sep="\t")
    cut = pd.read_csv(tmp_path / "cut" / "metrics.tsv", sep="\t")
    assert cut["step"].tolist() == list(range(1, total + 1))
    np.testing.assert_array_equal(full["loss"], cut["loss"])


def test_sigterm_checkpoints_and_stops_and_other_settings_are_refused(corpus, tmp_path):
    settings = train_settings(epochs=40, checkpoint_every=0)
    proc = run_train(corpus, tmp_path / "out", tmp_path / "ck", settings=settings, wait=False)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and "epoch 1:" not in proc.log.read_text():
        time.sleep(0.05)  # the first epoch is done: training is under way
    proc.send_signal(signal.SIGTERM)  # torchrun passes it on to its worker
    proc.wait(timeout=300)
    output = proc.log.read_text()
    assert proc.returncode != 0, output[-2000:]
    # the worker itself stopped on the signal with a checkpoint, not on some other failure
    assert re.search(r"stopped by signal 15 at step \d+: checkpoint written", output), output[
        -2000:
    ]
    still = [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(tmp_path / "ck") in " ".join(p.info["cmdline"] or [])
    ]
    assert not still, "a worker outlived the signal"
    saved = sorted((tmp_path / "ck").glob("step-*.pt"))
    assert saved, output[-2000:]
    assert not (tmp_path / "out" / "model.safetensors").exists()
    # a rerun with other settings is refused, naming what changed
    other = dict(settings, max_lr=1e-3, max_steps=int(saved[-1].stem.split("-")[1]) + 2)
    with pytest.raises(AssertionError, match="max_lr"):
        run_train(corpus, tmp_path / "out", tmp_path / "ck", settings=other)


def test_outputs_and_falling_validation_loss(corpus, tmp_path):
    settings = train_settings(epochs=4)
    experiment = dict(GPT, objective="bert_expr")
    run_train(corpus, tmp_path / "out", tmp_path / "ck", experiment, settings=settings)
    description = json.loads((tmp_path / "out" / "model.json").read_text())
    assert description["model"]["objective"] == "bert_expr"
    assert description["experiment"] == experiment
    validation = pd.read_csv(tmp_path / "out" / "validation.tsv", sep="\t")
    assert len(validation) == 4
    assert validation["validation_loss"].iloc[-1] < validation["validation_loss"].iloc[0]
    steps = pd.read_csv(tmp_path / "out" / "metrics.tsv", sep="\t")
    assert list(steps.columns) == [
        "step", "epoch", "loss", "lr", "seconds", "tokens", "targets", "flops", "tokens_per_s",
        "mfu",
    ]  # fmt: skip
    assert steps["lr"].max() <= 3e-3 * (1 + 1e-9) and steps["tokens_per_s"].gt(0).all()
    # OneCycle: rising, then falling to far below the peak
    assert steps["lr"].idxmax() not in (0, len(steps) - 1)
    assert steps["lr"].iloc[-1] < 0.01 * steps["lr"].max()


def test_a_rebuilt_corpus_refuses_the_checkpoint(small_compendium, corpus, tmp_path, caplog):
    from gexnet.training.lm import train

    settings = train_settings(max_steps=2)
    out, ck = tmp_path / "out", tmp_path / "ck"
    train(corpus, GPT, MODEL, settings, 3, out, ck)
    saved = sorted(ck.glob("step-*.pt"))[-1]
    # the same corpus resumes, wherever it lies
    moved = Path(shutil.copytree(corpus, tmp_path / "corpus"))
    with caplog.at_level(logging.INFO, logger="gexnet.training.trainer"):
        train(moved, GPT, MODEL, settings, 3, out, ck)
    assert f"resumed from {saved} (step 2)" in caplog.text
    # rebuilt in place with another Binning-By-Gene: the same sizes, another corpus
    build_corpus(small_compendium, corpus.parent / "qc.parquet", moved, bins=50)
    assert (
        Corpus(moved).sequences("binning").n_tokens == Corpus(corpus).sequences("binning").n_tokens
    )
    with pytest.raises(GexnetError) as refused:
        train(moved, GPT, MODEL, settings, 3, out, ck)
    assert str(refused.value) == (
        f"{saved}: trained on another corpus ({moved / 'corpus.json'} changed): delete {ck} "
        "to start over"
    )


def test_too_small_corpus_is_a_clear_error(corpus, tmp_path):
    from gexnet.training.lm import train

    with pytest.raises(GexnetError, match="fewer than one step"):
        train(corpus, GPT, MODEL, train_settings(batch_per_device=100_000), 1, tmp_path / "o",
              tmp_path / "c")  # fmt: skip


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_gpus_without_cuda_is_a_clear_error_unless_allowed(corpus, tmp_path):
    from gexnet.training.lm import train

    gpus = train_settings(gpus=2, max_steps=1)
    with pytest.raises(GexnetError, match=r"train\.gpus is 2 but CUDA is not usable"):
        train(corpus, GPT, MODEL, gpus, 1, tmp_path / "o", tmp_path / "c")
    assert not (tmp_path / "o").exists()
    train(corpus, GPT, MODEL, {**gpus, "require_cuda": False}, 1, tmp_path / "o", tmp_path / "c")
    assert (tmp_path / "o" / "model.safetensors").exists()


def test_embedding_export(corpus, tmp_path):
    from gexnet.formats import embeddings
    from gexnet.training.lm import load_model

    run_train(corpus, tmp_path / "out", tmp_path / "ck", settings=train_settings(max_steps=3))
    table = export.gene_embeddings(tmp_path / "out")
    vocabulary = Corpus(corpus).sequences("binning").vocabulary.iloc[3:]
    assert table["gene_id"].tolist() == vocabulary["gene_id"].tolist()
    assert list(table.columns[:4]) == ["gene_id", "symbol", "biotype", "species"]
    assert (table["species"] == "human").all()  # a single-species model says whose genes
    assert list(table.columns[4:]) == [f"dim_{i}" for i in range(1, MODEL["hidden"] + 1)]
    model, _ = load_model(tmp_path / "out")
    assert np.array_equal(table.iloc[:, 4:].to_numpy(np.float32), model.wte.weight[3:].detach())
    table.loc[1, "symbol"] = table.loc[0, "symbol"]  # a shared symbol: both go by Ensembl ID
    table.loc[2, "symbol"] = ""
    embeddings.write_word2vec(table, tmp_path / "e.txt")
    lines = (tmp_path / "e.txt").read_text().splitlines()
    assert lines[0] == f"{len(table)} {MODEL['hidden']}"
    back = embeddings.read_word2vec(tmp_path / "e.txt")
    names = back.index.tolist()
    assert names[:3] == table["gene_id"].iloc[:3].tolist() and len(set(names)) == len(names)
    assert names[3:] == table["symbol"].iloc[3:].tolist()
    np.testing.assert_allclose(back.to_numpy(), table.iloc[:, 4:].to_numpy(), rtol=1e-5)
