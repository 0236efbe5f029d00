"""Training the autoencoder on the small compendium's corpus: its own split by series, exact
gene statistics, corruption drawn from (seed, epoch, row), a falling validation loss, a
resumed run equal to an uninterrupted one, and the files a model directory holds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from gexnet import config
from gexnet.analysis import reconstruction
from gexnet.errors import GexnetError
from gexnet.formats.corpus import Corpus, Dense
from gexnet.training import autoencoder as ta


def settings(**changes) -> tuple[dict, dict]:
    cfg = config.validate({})
    s = {**cfg["autoencoder"], "hidden": [32], "latent": 6, "stats_samples": 50, **changes}
    t = {**cfg["train"], "gpus": 0, "epochs": 4, "batch_per_device": 16, "grad_accum": 1,
         "max_lr": 3e-3, "checkpoint_every": 0}  # fmt: skip
    return s, t


def test_split_keeps_each_series_on_one_side(corpus):
    samples = ta.split_samples(Corpus(corpus), 0.2, "series", 3)
    sides = samples.groupby("series_id")["split"].nunique()
    assert (sides == 1).all()
    assert 0.1 < (samples["split"] == "validation").mean() < 0.4


def test_a_split_with_nothing_held_out_is_an_error(corpus):
    with pytest.raises(GexnetError, match="no validation sample"):
        ta.split_samples(Corpus(corpus), 1e-6, "series", 3)


def test_gene_statistics_are_exact(corpus):
    c = Corpus(corpus)
    genes = ta.model_genes(c, ["protein_coding"])
    assert (genes["biotype"] == "protein_coding").all() and len(genes) < len(c.genes)
    dense = Dense.of(c, genes["column"].to_numpy())
    rows = np.arange(0, c.n_samples, 2)
    full = np.asarray(c.array("dense"))[rows][:, genes["column"]].astype(np.float64)
    stats = ta.gene_statistics(dense, rows, 7, len(rows), 0)  # odd blocks
    np.testing.assert_allclose(stats["mean"], full.mean(0), rtol=1e-9)
    np.testing.assert_allclose(stats["std"], full.std(0), rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(stats["minimum"], full.min(0))
    np.testing.assert_array_equal(stats["maximum"], full.max(0))
    q = np.stack(stats["quantiles"])
    np.testing.assert_allclose(q[:, 50], np.median(full, 0), atol=1e-6)
    np.testing.assert_allclose(q[:, 0], full.min(0))


def test_no_gene_of_the_biotypes_is_an_error(corpus):
    with pytest.raises(GexnetError, match="no gene of biotypes"):
        ta.model_genes(Corpus(corpus), ["snoRNA"])


def test_corruption_draws_depend_on_seed_epoch_and_row_only(corpus):
    c = Corpus(corpus)
    genes = ta.model_genes(c, None)
    samples = ta.split_samples(c, 0.2, "series", 0)
    data = ta.DenseData(Dense.of(c, genes["column"]), samples, "gaussian", 5)
    a = data.batch(np.array([3, 7, 1]), 2)
    b = data.batch(np.array([1, 3]), 2)
    torch.testing.assert_close(a["draws"][[2, 0]], b["draws"])
    torch.testing.assert_close(a["values"][[2, 0]], b["values"])
    assert not torch.equal(data.batch(np.array([1]), 3)["draws"], b["draws"][:1])
    assert "draws" not in data.batch(np.array([1]), ta.trainer.VALIDATION_EPOCH)


def test_training_writes_a_model_that_reconstructs_better_each_epoch(corpus, tmp_path):
    s, t = settings()
    ta.train(corpus, "ae", s, t, 1, tmp_path / "m", tmp_path / "ck")
    model, description, genes, samples = reconstruction.load_autoencoder(tmp_path / "m")
    validation = pd.read_csv(tmp_path / "m" / "validation.tsv", sep="\t")["validation_loss"]
    assert len(validation) == 4 and (validation.diff().dropna() < 0).all()
    assert list(genes.columns[:4]) == ["gene_id", "symbol", "biotype", "column"]
    assert (genes["biotype"] == "protein_coding").all()
    assert description["model"]["hidden"] == [32] and description["name"] == "ae"
    steps = pd.read_csv(tmp_path / "m" / "metrics.tsv", sep="\t")
    assert {"samples", "values", "flops", "samples_per_s"} <= set(steps.columns)
    # the scaling travels with the weights: the model reconstructs log values
    torch.testing.assert_close(model.center, torch.tensor(genes["center"].to_numpy(np.float32)))
    dense = reconstruction.open_dense(description, genes)
    held = samples.loc[samples["split"] == "validation", "row"].to_numpy()
    x = dense.rows(held)
    with torch.no_grad():
        err = ((model(torch.from_numpy(x)).numpy() - x) ** 2).mean()
    assert err < ((x - genes["mean"].to_numpy()) ** 2).mean()


def test_a_resumed_run_equals_an_uninterrupted_one(corpus, tmp_path):
    s, t = settings()
    ta.train(corpus, "ae", s, t, 1, tmp_path / "whole", tmp_path / "ck_whole")
    ta.train(corpus, "ae", s, {**t, "max_steps": 9}, 1, tmp_path / "part", tmp_path / "ck")
    with pytest.raises(GexnetError, match="other settings"):  # max_steps changes total_steps
        ta.train(corpus, "ae", s, t, 1, tmp_path / "rest", tmp_path / "ck")
    whole, *_ = reconstruction.load_autoencoder(tmp_path / "whole")
    part, *_ = reconstruction.load_autoencoder(tmp_path / "part")
    assert not torch.equal(whole.decoder[-1].weight, part.decoder[-1].weight)
    # resuming the same settings from a mid-run checkpoint reproduces the uninterrupted weights
    ta.train(corpus, "ae", s, {**t, "checkpoint_every": 5}, 1, tmp_path / "a", tmp_path / "ck_a")
    ck = sorted((tmp_path / "ck_a").glob("step-*.pt"))
    ck[-1].unlink()  # the final checkpoint gone: resume from the one before
    ta.train(corpus, "ae", s, {**t, "checkpoint_every": 5}, 1, tmp_path / "b", tmp_path / "ck_a")
    a, *_ = reconstruction.load_autoencoder(tmp_path / "a")
    b, *_ = reconstruction.load_autoencoder(tmp_path / "b")
    for key, value in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[key], value, rtol=0, atol=0)
