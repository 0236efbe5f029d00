"""The splicing stage on the small compendium: the isoform data set against a direct reading of
the transcript file, its filters and bad inputs, training (with the branch and the permuted
control), the quality tables against scipy and scikit-learn, the attribution tables and the
validation's ROC-AUC against scikit-learn, and the command line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from sklearn.linear_model import Ridge
from sklearn.metrics import roc_auc_score

from gexnet import cli, config
from gexnet.analysis import splicing
from gexnet.corpus import isoforms
from gexnet.corpus.binning import scale_log
from gexnet.errors import GexnetError
from gexnet.formats.archs4 import Archs4File
from gexnet.formats.isoforms import IsoformData
from gexnet.training import autoencoder as ta
from gexnet.training import splicing as ts


def settings(**changes) -> dict:
    s = config.validate({})["splicing"]
    return {**s, "min_gene_mean_log": 0.5, **changes}


def train_settings(**changes) -> dict:
    t = config.validate({})["train"]
    return {**t, "gpus": 0, "epochs": 2, "batch_per_device": 16, "grad_accum": 1,
            "checkpoint_every": 0, **changes}  # fmt: skip


@pytest.fixture(scope="module")
def qc_table(corpus):
    return corpus.parent / "qc.parquet"


@pytest.fixture(scope="module")
def data_dir(small_compendium, corpus, qc_table, tmp_path_factory):
    _, files = small_compendium
    out = tmp_path_factory.mktemp("isoforms") / "data"
    isoforms.build(files["human_transcript"], corpus, qc_table, out, settings(), 1e7, "human",
                   10**7, 1)  # fmt: skip
    return out


def test_isoform_values_are_the_transcript_files_scaled_by_the_gene_totals(
    small_compendium, data_dir, qc_table
):
    _, files = small_compendium
    data = IsoformData(data_dir)
    qc = pd.read_parquet(qc_table)
    with Archs4File(files["human_transcript"]) as f:
        ids = f.features()["ensembl_id"].str.replace(r"\.\d+$", "", regex=True)
        counts = f.read()
    row = pd.Series(np.arange(len(ids)), index=ids)[data.isoforms["transcript_id"]].to_numpy()
    for sample in data.samples.sample(5, random_state=0).itertuples():
        column = int(np.flatnonzero(qc["geo_accession"] == sample.geo_accession)[0])
        expected = scale_log(counts[row, column : column + 1],
                             qc["total_counts"].to_numpy()[column : column + 1], 1e7)[:, 0]  # fmt: skip
        got = data.read(np.array([sample.row]))["isoforms"][0]
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    # every modelled gene keeps two or more isoforms; each isoform points at its own gene
    assert (data.isoforms.groupby("gene_id").size() >= 2).all()
    assert (data.genes["gene_id"].to_numpy()[data.isoforms["gene"]] ==
            data.isoforms["gene_id"].to_numpy()).all()  # fmt: skip
    # the split is by series: no series on both sides
    sides = data.samples.groupby("series_id")["split"].nunique()
    assert (sides == 1).all() and set(data.samples["split"]) == {"train", "test"}


def test_every_filter_is_counted(data_dir):
    filters = pd.read_csv(data_dir / "filters.tsv", sep="\t", keep_default_na=False)
    counts = filters.set_index("step")["count"]
    data = IsoformData(data_dir)
    total = counts["transcripts in the file"]
    removed = counts.drop(["transcripts in the file", "splicing.factors"]).sum()
    assert total - removed == len(data.isoforms)
    # the packaged GO list is far longer than the small compendium's genes: the rest is named
    assert counts["splicing.factors"] == len(isoforms.packaged_factors()) - len(data.factors)


def test_the_packaged_factor_list_is_go_rna_splicing():
    table = isoforms.packaged_factors()
    assert len(table) == 469 and table["symbol"].is_unique
    assert {"SRSF1", "PTBP1", "MBNL1", "RBFOX2", "U2AF2"} <= set(table["symbol"])
    assert table["gene_id"].str.startswith("ENSG").mean() > 0.99


def test_configured_factors_and_genes_are_resolved_and_missing_ones_counted(
    small_compendium, corpus, qc_table, tmp_path
):
    _, files = small_compendium
    genes = pd.read_parquet(corpus / "genes.parquet").query("in_vocabulary")
    some = genes["symbol"].head(3).tolist()
    s = settings(factors=[*some, "NOT_A_GENE"], genes=genes["gene_id"].head(200).tolist())
    isoforms.build(files["human_transcript"], corpus, qc_table, tmp_path / "d", s, 1e7, "human",
                   10**7, 1)  # fmt: skip
    built = IsoformData(tmp_path / "d")
    assert list(built.factors["symbol"]) == sorted(some, key=list(genes["symbol"]).index)
    assert set(built.genes["gene_id"]) <= set(genes["gene_id"].head(200))
    filters = pd.read_csv(tmp_path / "d" / "filters.tsv", sep="\t")
    assert filters.set_index("step").loc["splicing.factors", "count"] == 1


@pytest.mark.parametrize(
    "change, error",
    [
        ({"factors": ["NOT_A_GENE"]}, "none of the 1 named"),
        ({"min_gene_mean_log": 20.0}, "no gene keeps two isoforms"),
        ({"factors": ["SRSF1"]}, None),  # the mouse file: another species' transcripts
    ],
)
def test_bad_inputs_are_clear_errors(small_compendium, corpus, qc_table, tmp_path, change, error):
    _, files = small_compendium
    path = files["human_transcript"] if error else files["mouse_transcript"]
    with pytest.raises(GexnetError) as e:
        isoforms.build(path, corpus, qc_table, tmp_path / "d", settings(**change), 1e7, "human",
                       10**7, 1)  # fmt: skip
    assert (error or "its samples are not those of the gene file") in str(e.value)
    assert not (tmp_path / "d").exists()  # nothing half-written


def test_a_transcript_file_of_other_genes_is_refused(small_compendium, corpus, qc_table,
                                                      tmp_path):  # fmt: skip
    import shutil

    import h5py

    _, files = small_compendium
    other = tmp_path / "other_transcripts.h5"
    shutil.copy(files["human_transcript"], other)
    with h5py.File(other, "r+") as f:
        genes = f["meta/transcripts/ensembl_gene"]
        genes[...] = [f"ENSG9{i:010d}".encode() for i in range(len(genes))]
    with pytest.raises(GexnetError, match="not the same species or annotation as the gene file"):
        isoforms.build(other, corpus, qc_table, tmp_path / "d", settings(), 1e7, "human", 10**7,
                       1)  # fmt: skip


def test_a_gene_level_file_is_refused(small_compendium, corpus, qc_table, tmp_path):
    _, files = small_compendium
    with pytest.raises(GexnetError, match="gene-level file"):
        isoforms.build(files["human_gene"], corpus, qc_table, tmp_path / "d", settings(), 1e7,
                       "human", 10**7, 1)  # fmt: skip


def test_mouse_needs_its_factors_named():
    with pytest.raises(GexnetError, match="name the mouse SFs"):
        isoforms._default_factors("mouse")


@pytest.fixture(scope="module")
def branch_dir(corpus, tmp_path_factory):
    cfg = config.validate({})
    s = {**cfg["autoencoder"], "hidden": [24], "latent": 5, "stats_samples": 100}
    out = tmp_path_factory.mktemp("branch")
    ta.train(corpus, "ae", s, train_settings(), 1, out / "m", out / "ck")
    return out / "m"


def network(**changes) -> dict:
    return {**config.validate({})["splicing_network"], "hidden": [12, 6], **changes}


@pytest.fixture(scope="module")
def models(data_dir, branch_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("splicing_models")
    kinds = {"deepsf": network(), "deeprbp_branch": network(head="deeprbp", branch=True),
             "permuted": network(head="deeprbp", permute_factors=True)}  # fmt: skip
    for name, net in kinds.items():
        ts.train(data_dir, name, net, train_settings(), 1, out / name, out / f"{name}_ck",
                 branch_dir if net["branch"] else None)  # fmt: skip
    return {name: out / name for name in kinds}


def test_a_trained_model_loads_with_its_frozen_branch(models, data_dir, branch_dir):
    data = IsoformData(data_dir)
    net, context = splicing.load(models["deeprbp_branch"], data)
    assert context is not None and net.branch is not None
    description = json.loads((models["deeprbp_branch"] / "model.json").read_text())
    assert description["model"]["branch_width"] == 24 and description["model"]["head"] == "deeprbp"
    # the frozen copy is the trained autoencoder's weights
    from gexnet.analysis.reconstruction import load_autoencoder

    ae = load_autoencoder(branch_dir)[0]
    for key, value in ae.state_dict().items():
        torch.testing.assert_close(net.branch.state_dict()[key], value)
    predicted, observed = splicing.predict(net, context, data, np.sort(data.rows("test")))
    assert predicted.shape == observed.shape == (len(data.rows("test")), len(data.isoforms))
    assert np.isfinite(predicted).all()


def test_the_permuted_control_reads_other_samples_factors(data_dir):
    data = IsoformData(data_dir)
    plain = ts.IsoformBatches(data, None, False, 1)
    control = ts.IsoformBatches(data, None, True, 1)
    n = control.n_train
    assert sorted(control.factor_of[:n]) == sorted(plain.factor_of[:n])
    assert (control.factor_of[:n] != plain.factor_of[:n]).mean() > 0.9
    assert (control.factor_of[n:] == plain.factor_of[n:]).all()  # test samples stay real
    rows = np.arange(4)
    b = control.batch(rows, 0)
    np.testing.assert_array_equal(b["factors"].numpy(),
                                  data.factor_values.rows(control.factor_of[rows]))  # fmt: skip
    np.testing.assert_array_equal(b["isoforms"].numpy(),
                                  data.read(control.row_of[rows])["isoforms"])  # fmt: skip


def test_a_branch_from_another_corpus_is_refused(data_dir, tmp_path, branch_dir):
    description = json.loads((branch_dir / "model.json").read_text())
    other = tmp_path / "ae"
    other.mkdir()
    for f in branch_dir.iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    description["corpus"] = str(tmp_path)
    (other / "model.json").write_text(json.dumps(description))
    with pytest.raises(GexnetError, match="not on the corpus of the isoform data"):
        ts.branch_parts(IsoformData(data_dir), other)


def test_quality_metrics_equal_scipy():
    rng = np.random.default_rng(0)
    observed = rng.normal(size=(40, 6))
    predicted = observed + rng.normal(scale=0.5, size=(40, 6))
    predicted[:3, 2] = predicted[3, 2]  # ties
    overall, per = splicing.quality(predicted, observed)
    for j in range(6):
        assert per["spearman"][j] == pytest.approx(stats.spearmanr(predicted[:, j],
                                                                   observed[:, j])[0])  # fmt: skip
        assert per["pearson"][j] == pytest.approx(stats.pearsonr(predicted[:, j],
                                                                 observed[:, j])[0])  # fmt: skip
        assert per["mse"][j] == pytest.approx(((predicted[:, j] - observed[:, j]) ** 2).mean())
    assert overall["spearman"] == pytest.approx(stats.spearmanr(predicted.ravel(),
                                                                observed.ravel())[0])  # fmt: skip


def test_baselines_equal_direct_fits(data_dir):
    data = IsoformData(data_dir)
    train, test = np.sort(data.rows("train")), np.sort(data.rows("test"))
    t, v = data.read(train), data.read(test)
    gene = data.isoforms["gene"].to_numpy()
    share = splicing.ShareBaseline().fit(data, train)
    scaled = lambda x: 10.0 ** x.astype(np.float64) - 1  # noqa: E731
    expected = scaled(t["isoforms"]).sum(0) / scaled(t["genes"][:, gene]).sum(0)
    np.testing.assert_allclose(share.share, expected, rtol=1e-5)
    np.testing.assert_allclose(share.predict(v), np.log10(expected * scaled(v["genes"][:, gene])
                                                          + 1), rtol=1e-5, atol=1e-6)  # fmt: skip
    ridge = splicing.RidgeBaseline(2.0).fit(data, train)
    x = (t["factors"] - t["factors"].mean(0)) / t["factors"].std(0)
    reference = Ridge(alpha=2.0).fit(x, t["isoforms"])
    xv = (v["factors"] - t["factors"].mean(0)) / t["factors"].std(0)
    np.testing.assert_allclose(ridge.predict(v), reference.predict(xv), atol=2e-4)


def test_attribution_tables_are_complete_and_pick_each_genes_strongest_isoform(models, data_dir):
    iso, genes, checks = splicing.attribute(models["deepsf"], data_dir, ["median", "knockout"],
                                            20, 1)  # fmt: skip
    data = IsoformData(data_dir)
    assert (checks["samples"] == 20).all() and (checks["max_completeness_error"] < 1e-4).all()
    assert len(iso) == 2 * len(data.isoforms) * len(data.factors)
    assert len(genes) == 2 * len(data.genes) * len(data.factors)
    best = iso.loc[iso.assign(a=iso["t"].abs()).groupby(
        ["reference", "factor_id", "gene_id"])["a"].idxmax()]  # fmt: skip
    merged = genes.merge(best, on=["reference", "factor_id", "gene_id"], suffixes=("", "_best"))
    assert (merged["top_isoform"] == merged["transcript_id"]).all()
    top = splicing.top_targets(genes, 3)
    assert (top.groupby(["reference", "factor_id"]).size() == 3).all()
    assert (top.groupby(["reference", "factor_id"])["t"].apply(
        lambda t: (np.diff(t.abs().to_numpy()) <= 0).all())).all()  # fmt: skip


def test_validation_auroc_equals_scikit_learn():
    rng = np.random.default_rng(1)
    factors, targets = ["A", "B", "C"], [f"ENST{i:05d}" for i in range(30)]
    iso = pd.DataFrame([(r, f"ID{f}", f, t, "g", "s", rng.normal(), rng.random())
                        for r in ("knockout",) for f in factors for t in targets],
                       columns=["reference", "factor_id", "factor", "transcript_id", "gene_id",
                                "symbol", "t", "mean_abs"])  # fmt: skip
    edges = pd.DataFrame({"factor": ["A", "A", "B", "C"],
                          "target": ["ENST00001", "ENST00002", "ENST00003", "ENST00009"],
                          "level": "isoform"})  # fmt: skip
    table = splicing.validate(iso, iso, edges)
    magnitude = table[table["score"] == "mean_abs"]
    table = table[table["score"] == "abs_t"]
    positive = [
        (f, t) in set(zip(edges["factor"], edges["target"], strict=True))
        for f, t in zip(iso["factor"], iso["transcript_id"], strict=True)
    ]
    overall = table[table["factor"] == "all"]["auroc"].iloc[0]
    assert overall == pytest.approx(roc_auc_score(positive, iso["t"].abs()))
    a = iso["factor"] == "A"
    assert table.set_index("factor").loc["A", "auroc"] == pytest.approx(
        roc_auc_score(np.array(positive)[a], iso.loc[a, "t"].abs()))  # fmt: skip
    assert magnitude.query("factor == 'all'")["auroc"].iloc[0] == pytest.approx(
        roc_auc_score(positive, iso["mean_abs"]))  # fmt: skip


def test_known_edges_read_both_layouts(tmp_path):
    (tmp_path / "e.tsv").write_text("factor\ttarget\nSRSF1\tENSG00000001.3\nPTBP1\tENSG2\n")
    edges = splicing.known_edges(tmp_path / "e.tsv", "human")
    assert list(edges["target"]) == ["ENSG00000001", "ENSG2"] and set(edges["level"]) == {"gene"}
    (tmp_path / "bad.tsv").write_text("sf\tgene\nA\tB\n")
    with pytest.raises(GexnetError, match="needs columns factor and target"):
        splicing.known_edges(tmp_path / "bad.tsv", "human")
    (tmp_path / "mixed.tsv").write_text("factor\ttarget\nA\tENST1\nA\tENSG1\n")
    with pytest.raises(GexnetError, match="mix transcript and gene IDs"):
        splicing.known_edges(tmp_path / "mixed.tsv", "human")


def test_the_command_line_runs_the_stage(small_compendium, models, data_dir, tmp_path):
    _, files = small_compendium
    run = lambda *a: cli.main([str(x) for x in a])  # noqa: E731
    names = ["deepsf", "permuted"]
    assert run("splicing", "quality", data_dir, *(models[n] for n in names),
               "--names", *names, "--out", tmp_path / "q") == 0  # fmt: skip
    overall = pd.read_parquet(tmp_path / "q" / "overall.parquet")
    assert list(overall["model"]) == ["share", "ridge", *names]
    cfg = json.dumps({"splicing": {"deeplift": {"max_samples": 10}}})
    assert run("splicing", "attribute", models["deepsf"], "--data", data_dir, "--config", cfg,
               "--out", tmp_path / "a") == 0  # fmt: skip
    assert run("splicing", "validate", tmp_path / "a", "--edges", files["splicing"],
               "--out", tmp_path / "v.tsv") == 0  # fmt: skip
    validation = pd.read_csv(tmp_path / "v.tsv", sep="\t")
    assert set(validation["reference"]) == {"median", "knockout"}
    assert run("splicing", "summary", tmp_path / "q" / "overall.parquet", "--validation",
               tmp_path / "v.tsv", "--names", "deepsf", "--out", tmp_path / "s.tsv") == 0  # fmt: skip
    summary = pd.read_csv(tmp_path / "s.tsv", sep="\t").set_index("model")
    assert np.isfinite(summary.loc["deepsf", "validation_auroc"])
    assert np.isnan(summary.loc["share", "validation_auroc"])
    heatmap = '{"reference": "knockout", "factors": 30, "top_genes": 40}'
    for args in (["splicing_quality", f"isoforms={tmp_path / 'q' / 'isoforms.parquet'}"],
                 ["splicing_heatmap", f"genes={tmp_path / 'a' / 'genes.parquet'}", "--options",
                  heatmap],
                 ["splicing_validation", f"validation={tmp_path / 'v.tsv'}", "--options",
                  '{"names": ["deepsf"]}']):  # fmt: skip
        out = tmp_path / f"{args[0]}.svg"
        assert run("figure", "draw", *args, "--out", out) == 0
        assert out.stat().st_size > 1000
    assert run("splicing", "train", data_dir, "--name", "nope", "--out", tmp_path / "x",
               "--checkpoints", tmp_path / "y") == 2  # fmt: skip
