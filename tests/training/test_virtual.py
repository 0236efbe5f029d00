"""Virtual experiments end to end on the small compendium: a small autoencoder and its PCA
baseline, the systematic knockout's effect matrix against plain forward passes, requests and
their errors, a master-regulator study by series, and the command line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from gexnet import cli, config
from gexnet.analysis import reconstruction, selection, virtual
from gexnet.errors import GexnetError
from gexnet.training import autoencoder as ta


@pytest.fixture(scope="module")
def model_dir(corpus, tmp_path_factory):
    cfg = config.validate({})
    s = {**cfg["autoencoder"], "hidden": [24], "latent": 5, "stats_samples": 100}
    t = {**cfg["train"], "gpus": 0, "epochs": 2, "batch_per_device": 16, "grad_accum": 1,
         "checkpoint_every": 0}  # fmt: skip
    out = tmp_path_factory.mktemp("ae")
    ta.train(corpus, "ae", s, t, 1, out / "m", out / "ck")
    _, description, genes, samples = reconstruction.load_autoencoder(out / "m")
    dense = reconstruction.open_dense(description, genes)
    train = samples.loc[samples["split"] == "train", "row"].to_numpy()
    linear = reconstruction.fit_pca(dense, train, genes["center"].to_numpy(np.float32),
                                    genes["scale"].to_numpy(np.float32), 5, 0, 1)  # fmt: skip
    reconstruction.save_linear(linear, out / "m", {"samples": len(train)})
    return out / "m"


def settings(**changes) -> dict:
    p = config.validate({})["perturbation"]
    p["samples"] = {**p["samples"], "split": "all", "max_samples": 6}
    p["null_genes"] = 10
    return {**p, **changes}


@pytest.fixture(scope="module")
def setup(model_dir, small_compendium):
    _, files = small_compendium
    return virtual.setup(model_dir, files["human_gene"], settings())


def test_knockout_effects_equal_plain_forward_passes(setup, tmp_path):
    tables = virtual.knockouts(setup, settings(), 1, tmp_path)
    n = len(setup.genes)
    assert set(tables["summary"]["model"]) == {"autoencoder", "linear"}
    assert (tables["summary"].groupby("model").size() == n).all()
    chosen = selection.select(setup.samples, settings()["samples"], 1, "x")
    x = torch.from_numpy(setup.values(chosen))
    for name in ("autoencoder", "linear"):
        effects = virtual.effects(tmp_path, name)
        assert effects.shape == (n, n) and effects.dtype == np.float16
        model = setup.perturbers[name].model
        for g in (0, n // 2, n - 1):
            perturbed = x.clone()
            perturbed[:, g] = float(setup.genes["minimum"].iloc[g])
            with torch.no_grad():
                expected = (model(perturbed) - model(x)).mean(0).numpy()
            np.testing.assert_allclose(effects[g].astype(np.float32), expected, atol=2e-3,
                                       rtol=2e-3)  # fmt: skip
    z = virtual.standardised(np.asarray(virtual.effects(tmp_path), dtype=np.float64))
    assert np.all(np.diag(z) == 0) and np.isfinite(np.nanmedian(np.abs(z)))


def test_a_request_runs_on_both_models_with_its_null(setup, tmp_path):
    symbols = setup.genes["symbol"].iloc[[1, 2, 3]].tolist()
    request = {"genes": symbols, "kind": "knockdown", "fraction": 0.2, "combinations": "pairs"}
    tables = virtual.run_request(setup, "kd", request, settings(), 1, tmp_path)
    summary = tables["summary"]
    assert len(summary) == 6 and set(summary["model"]) == {"autoencoder", "linear"}
    assert summary["perturbation"].str.count(r"\+").eq(1).all() and summary["z"].notna().all()
    assert (tmp_path / "comparison.parquet").is_file()
    assert len(virtual.beside(summary)) == 3


@pytest.mark.parametrize(("request_", "message"), [
    ({"genes": ["NOTAGENE1"], "kind": "knockout"}, "unknown gene"),
    ({"genes": ["@0"], "kind": "overexpress", "times_max": 5.0}, "never saw"),
    ({"genes": ["@0"], "kind": "knockout", "combinations": "pairs"}, "at least two genes"),
])  # fmt: skip
def test_wrong_requests_are_one_clear_error(setup, tmp_path, request_, message):
    request_ = dict(request_, genes=[setup.genes["symbol"].iloc[0] if g == "@0" else g
                                     for g in request_["genes"]])  # fmt: skip
    with pytest.raises(GexnetError, match=message):
        virtual.run_request(setup, "bad", {"quantile": 0.99, **request_}, settings(), 1, tmp_path)


def test_a_lncrna_of_the_corpus_is_outside_the_model(setup, tmp_path):
    lnc = setup.corpus_genes[setup.corpus_genes["biotype"] == "lncRNA"]["symbol"].iloc[0]
    with pytest.raises(GexnetError, match="outside the model's gene set"):
        virtual.run_request(setup, "lnc", {"genes": [lnc], "kind": "knockout"}, settings(), 1,
                            tmp_path)  # fmt: skip


def test_a_study_by_series_pairs_cases_with_their_own_controls(setup, tmp_path):
    study = {"start": {"characteristics_ch1": "group: case"},
             "goal": {"characteristics_ch1": "group: control"}, "series": None, "by_series": True}  # fmt: skip
    groups = virtual.study_groups(setup, "cc", study, 0, 1)
    assert groups and all(set(s["series_id"]) == set(g["series_id"]) == {series}
                          for series, s, g in groups)  # fmt: skip
    m = {**config.validate({})["master_regulators"], "top": 3, "pair_top": 3, "pair_pool": 20,
         "max_samples": 4}  # fmt: skip
    tables = virtual.run_study(setup, "cc", study, m, 10, 1, tmp_path)
    per = tables["per_sample"]
    assert set(per["model"]) == {"autoencoder", "linear"} and per["rank"].max() == 3
    assert per.groupby(["model", "sample"]).size().eq(3).all()
    assert len(tables["pairs"]) == 2 * per.groupby("model")["sample"].nunique().iloc[0] * 3
    comparison = tables["comparison"]
    one_only = (comparison["n_top_autoencoder"] > 0) != (comparison["n_top_linear"] > 0)
    assert comparison["differs"].equals(one_only) and comparison["rank_shift"].notna().all()
    top = virtual.top_regulators(tables["genes"])
    assert set(top["model"]) == {"autoencoder", "linear"} and (top["share_top"] <= 1).all()
    none = {**study, "goal": {"characteristics_ch1": "group: nobody"}}
    with pytest.raises(GexnetError, match="no goal sample matches"):
        virtual.study_groups(setup, "cc", none, 0, 1)


def test_the_command_line_knocks_out_every_gene_of_one_sample(setup, model_dir,
                                                              small_compendium, tmp_path):  # fmt: skip
    _, files = small_compendium
    sample = setup.samples["geo_accession"].iloc[0]
    code = cli.main(["perturb", "knockouts", str(model_dir), str(files["human_gene"]),
                     "--sample", sample, "--out", str(tmp_path / "ko")])  # fmt: skip
    assert code == 0
    summary = pd.read_parquet(tmp_path / "ko" / "summary.parquet")
    assert (summary["n_samples"] == 1).all() and len(summary) == 2 * len(setup.genes)
    code = cli.main(["perturb", "request", str(model_dir), str(files["human_gene"]), "--name",
                     "x", "--genes", "NOTAGENE1", "--out", str(tmp_path / "r")])  # fmt: skip
    assert code == 2
