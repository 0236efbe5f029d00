"""The normalization stage end to end: every output recomputed independently from the counts."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from gexnet.corpus import binning, normalize, qc
from gexnet.errors import GexnetError
from gexnet.formats.archs4 import Archs4File, Archs4Writer
from gexnet.formats.io import write_table
from gexnet.formats.matrixfile import open_array

OUTPUTS = (
    "corpus.json", "dense.bin", "genes.parquet", "levels_binning.bin", "levels_zscore.bin",
    "reference.parquet", "samples.parquet", "tokens_binning.bin", "tokens_zscore.bin",
    "vocabulary.tsv",
)  # fmt: skip
REASONS = {"", "biotype", "duplicate_symbol", "low_mean"}
BIG = 10**9  # every pass in one block


def settings_of(cfg: dict, **changes) -> dict:
    """The config sections normalize reads; a small context and exact (float32) dense values."""
    settings = copy.deepcopy({k: cfg[k] for k in ("genes", "normalize", "tokens", "dense")})
    settings["tokens"]["context"] = 64
    settings["dense"]["dtype"] = "float32"
    for key, value in changes.items():  # section__key=value
        section, name = key.split("__")
        settings[section][name] = value
    return settings


@pytest.fixture(scope="module")
def human(small_compendium, tmp_path_factory):
    """(cfg, compendium, QC table path) of the small simulated human compendium."""
    cfg, files = small_compendium
    qc_path = tmp_path_factory.mktemp("qc") / "qc.parquet"
    write_table(qc.sample_qc(files["human_gene"], cfg["qc"], BIG), qc_path)
    return cfg, files["human_gene"], qc_path


@pytest.fixture(scope="module")
def human_corpus(human, tmp_path_factory):
    cfg, compendium, qc_path = human
    outdir = tmp_path_factory.mktemp("corpus") / "human"
    normalize.normalize(compendium, qc_path, outdir, settings_of(cfg), BIG, seed=1)
    return outdir


# --- independent recomputation ------------------------------------------------------------


def read_counts(path: Path) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    """Counts (genes × samples, int64), gene table and sample IDs straight from the HDF5 file."""
    with h5py.File(path, "r") as f:
        counts = f["data/expression"][:].astype(np.int64)
        genes = pd.DataFrame(
            {k: f[f"meta/genes/{k}"].asstr()[:] for k in ("ensembl_gene", "symbol", "biotype")}
        )
        ids = f["meta/samples/geo_accession"].asstr()[:]
    return counts, genes, ids


def min_rank_bins(column: np.ndarray, bins: int) -> np.ndarray:
    out = np.ones(column.shape, np.int64)
    nonzero = column > 0
    if nonzero.any():
        rank = rankdata(column[nonzero], method="min").astype(np.int64)
        out[nonzero] = 2 + (rank - 1) * (bins - 1) // nonzero.sum()
    return out


def brute_tokens(scores: np.ndarray, values: np.ndarray, context: int):
    """Per sample: tokens of the expressed genes by (−score, gene), 0-padded, and their levels."""
    n, n_genes = values.shape
    ids = np.zeros((n, context), np.int64)
    levels = np.zeros((n, context), np.int64)
    for s in range(n):
        expressed = [g for g in range(n_genes) if values[s, g] > 0]
        top = sorted(expressed, key=lambda g: (-float(scores[s, g]), g))[:context]
        nonzero = values[s][values[s] > 0]
        for i, g in enumerate(top):
            ids[s, i] = g + 3
            below = int((nonzero < values[s, g]).sum())  # min rank − 1
            levels[s, i] = 1 + below * 100 // nonzero.size
    return ids, levels


def corpus_arrays(outdir: Path) -> dict[str, np.ndarray]:
    header = outdir / "corpus.json"
    names = json.loads(header.read_text())["arrays"]
    return {name: np.asarray(open_array(header, name)) for name in names}


def check_corpus(outdir: Path, compendium: Path, qc_path: Path, scale_to: float) -> dict:
    """Assert every array of a corpus against a recomputation; returns what it computed."""
    header = json.loads((outdir / "corpus.json").read_text())
    bins, context = header["bins"], header["context"]
    arrays = corpus_arrays(outdir)
    counts, _, ids = read_counts(compendium)
    table = pd.read_parquet(qc_path)
    samples = pd.read_parquet(outdir / "samples.parquet")
    genes = pd.read_parquet(outdir / "genes.parquet")
    vocab = genes[genes["in_vocabulary"]]

    # samples: the kept ones, each once, rows 0..n−1 with training first
    assert sorted(samples["geo_accession"]) == sorted(table.loc[table["kept"], "geo_accession"])
    assert samples["row"].tolist() == list(range(len(samples)))
    n_train = int((samples["split"] == "train").sum())
    assert (samples["split"].iloc[:n_train] == "train").all()
    assert header["n_train"] == n_train and header["n_samples"] == len(samples)

    # dense: log10(count / total · scale_to + 1), samples in corpus order × vocabulary genes
    column = pd.Series(np.arange(len(ids)), index=ids)[samples["geo_accession"]].to_numpy()
    totals = counts.sum(axis=0)[column]
    expected = np.log10(counts[vocab["row"].to_numpy()][:, column] / totals * scale_to + 1).T
    dense = arrays["dense"]
    assert dense.shape == (len(samples), len(vocab))
    np.testing.assert_allclose(dense, expected, rtol=2e-6, atol=1e-7)
    assert ((dense > 0) == (expected > 0)).all()

    # bins: the documented rule per gene over all kept samples (the corpus keeps no bins: they
    # are checked through the tokens and levels they give; test_binning checks this oracle)
    oracle = np.stack([min_rank_bins(dense[:, g], bins) for g in range(dense.shape[1])], axis=1)

    # tokens and levels by bin
    ids_bin, levels_bin = brute_tokens(oracle, dense, context)
    assert (arrays["tokens_binning"] == ids_bin).all()
    assert (arrays["levels_binning"] == levels_bin).all()

    # reference.parquet: statistics of each vocabulary gene, and its reference subsample
    reference = pd.read_parquet(outdir / "reference.parquet")
    assert reference["gene_id"].tolist() == vocab["gene_id"].tolist()
    assert reference["token_id"].tolist() == list(range(3, 3 + len(vocab)))
    assert (reference["n_nonzero"].to_numpy() == (dense > 0).sum(axis=0)).all()
    np.testing.assert_allclose(reference["mean"], dense.mean(axis=0, dtype=np.float64), rtol=1e-9)
    np.testing.assert_allclose(
        reference["std"], dense.std(axis=0, dtype=np.float64), rtol=1e-6, atol=1e-12
    )
    fraction = 0.005
    for g, values in enumerate(reference["reference"]):
        nonzero = np.sort(dense[:, g][dense[:, g] > 0])
        n = nonzero.size
        assert len(values) == min(n, max(int(np.ceil(fraction * n)), bins - 1))
        assert (np.diff(values) >= 0).all() and set(values.tolist()) <= set(nonzero.tolist())
        if n:
            assert values[0] == nonzero[0]

    # tokens and levels by z-score, with the stored mean and standard deviation
    mean = reference["mean"].to_numpy().astype(np.float32)
    std = reference["std"].to_numpy()
    z = (dense - mean) / np.where(std > 0, std, 1.0).astype(np.float32)
    ids_z, levels_z = brute_tokens(z, dense, context)
    assert (arrays["tokens_zscore"] == ids_z).all()
    assert (arrays["levels_zscore"] == levels_z).all()
    return {"bins": oracle, "dense": dense, "samples": samples}


# --- the simulated compendium ---------------------------------------------------------------


def test_block_layout_changes_no_output(human, tmp_path):
    cfg, compendium, qc_path = human
    settings = settings_of(cfg)
    n_genes = len(read_counts(compendium)[1])
    normalize.normalize(compendium, qc_path, tmp_path / "one", settings, BIG, seed=1)
    # three samples per block in the sample passes, a few genes per block in the binning pass
    normalize.normalize(compendium, qc_path, tmp_path / "many", settings, n_genes * 3, seed=1)
    normalize.normalize(compendium, qc_path, tmp_path / "odd", settings, n_genes * 7 + 5, seed=1)
    for run in ("one", "many", "odd"):
        assert sorted(p.name for p in (tmp_path / run).iterdir()) == sorted(OUTPUTS), run
    for name in OUTPUTS:
        one = (tmp_path / "one" / name).read_bytes()
        assert one == (tmp_path / "many" / name).read_bytes(), name
        assert one == (tmp_path / "odd" / name).read_bytes(), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many", "odd", "one"]


def test_corpus_matches_recomputation(human, human_corpus):
    cfg, compendium, qc_path = human
    check_corpus(human_corpus, compendium, qc_path, cfg["normalize"]["scale_to"])


def test_corpus_with_few_bins_matches_recomputation(human, tmp_path):
    cfg, compendium, qc_path = human
    settings = settings_of(cfg, normalize__bins=10, tokens__context=16)
    normalize.normalize(compendium, qc_path, tmp_path / "c", settings, 7919, seed=2)
    check_corpus(tmp_path / "c", compendium, qc_path, cfg["normalize"]["scale_to"])


def test_split_by_series_keeps_each_series_on_one_side(human, human_corpus):
    cfg, _, _ = human
    samples = pd.read_parquet(human_corpus / "samples.parquet")
    sides = samples.groupby("series_id")["split"].nunique()
    assert (sides == 1).all()
    n_validation = int((samples["split"] == "validation").sum())
    target = round(cfg["tokens"]["validation_fraction"] * len(samples))
    assert target <= n_validation < target + samples.groupby("series_id").size().max()
    assert json.loads((human_corpus / "corpus.json").read_text())["n_validation"] == n_validation


@pytest.mark.parametrize("fraction", [0.1, 0.25])
def test_split_by_sample_takes_the_exact_share(human, tmp_path, fraction):
    cfg, compendium, qc_path = human
    settings = settings_of(cfg, tokens__split_by="sample", tokens__validation_fraction=fraction)
    normalize.normalize(compendium, qc_path, tmp_path / "c", settings, BIG, seed=5)
    samples = pd.read_parquet(tmp_path / "c" / "samples.parquet")
    assert (samples["split"] == "validation").sum() == round(fraction * len(samples))
    assert samples["series_id"][samples["split"] == "validation"].nunique() > 1


@pytest.mark.parametrize("bins", [2000, 10])
def test_new_samples_binned_against_the_reference(human, tmp_path, bins):
    cfg, compendium, qc_path = human
    corpus = tmp_path / "corpus"
    settings = settings_of(cfg, normalize__bins=bins)
    normalize.normalize(compendium, qc_path, corpus, settings, BIG, seed=1)
    checked = check_corpus(corpus, compendium, qc_path, cfg["normalize"]["scale_to"])
    n_genes = len(read_counts(compendium)[1])
    normalize.bin_new_samples(compendium, corpus, tmp_path / "new", block_values=n_genes * 5)
    new = corpus_arrays(tmp_path / "new")
    new_samples = pd.read_parquet(tmp_path / "new" / "samples.parquet")
    counts, _, ids = read_counts(compendium)
    assert new_samples["geo_accession"].tolist() == ids.tolist()  # every sample, file order
    # all samples are binned, QC-removed ones included: zeros bin 1, the rest within 2..B
    vocab_rows = pd.read_parquet(corpus / "genes.parquet").query("in_vocabulary")["row"]
    zero = counts[vocab_rows.to_numpy()].T == 0
    assert ((new["bins"] == 1) == zero).all() and new["bins"].max() <= bins
    # kept samples: within one bin of their training bins (every value of a gene in the
    # reference when it has fewer than B − 1 of them: exactly)
    row_of = pd.Series(np.arange(len(ids)), index=ids)
    where = row_of[checked["samples"]["geo_accession"]].to_numpy()
    diff = new["bins"][where].astype(np.int64) - checked["bins"]
    assert np.abs(diff).max() <= 1
    n_nonzero = (checked["dense"] > 0).sum(axis=0)
    exact = n_nonzero < bins - 1
    assert exact.all() == (bins == 2000)
    assert (diff[:, exact] == 0).all()
    # sequences by the new bins, built as for the corpus
    ids_new, levels_new = brute_tokens(new["bins"][where], checked["dense"], 64)
    assert (new["tokens_binning"][where] == ids_new).all()
    assert (new["levels_binning"][where] == levels_new).all()
    if bins == 2000:  # the same bins: the same sequences as the corpus
        trained = corpus_arrays(corpus)
        assert (new["tokens_binning"][where] == trained["tokens_binning"]).all()
        assert (new["levels_binning"][where] == trained["levels_binning"]).all()


# --- a hand-made compendium with planted vocabulary cases -----------------------------------

N_SAMPLES = 200


def write_tiny(path: Path, rng: np.random.Generator, drop: tuple[int, ...] = ()) -> dict:
    """30 genes × 200 samples with known fates (indices below = positions in the file):
    21, 24 miRNA (24 shares symbol P7 with 7) → biotype; 22 duplicates P3 at a lower mean and 5
    duplicates P23's symbol at a lower mean → duplicate_symbol; 27 all zero and 28 one count →
    low_mean; 25, 26 share the empty symbol and stay. Gene IDs are not in file order."""
    n_genes = 30
    means = np.r_[rng.uniform(20, 400, 21), 300, 5, 500, 1000, 50, 60, 0, 0, 80]
    counts = rng.poisson(means[:, None], size=(n_genes, N_SAMPLES))
    counts[5] = rng.poisson(20, N_SAMPLES)  # below gene 23, its symbol's other gene
    counts[3] = rng.poisson(200, N_SAMPLES)  # above gene 22
    counts[27] = 0
    counts[28] = 0
    counts[28, 17] = 1
    counts[:, 40] = 0  # a sample with nothing: QC removes it (few genes)
    symbols = [f"P{i}" for i in range(21)] + ["M1", "P3", "P5", "P7", "", "", "Z", "ONE", "X"]
    biotypes = ["protein_coding"] * 20 + ["lncRNA", "miRNA", "protein_coding", "protein_coding"]
    biotypes += ["miRNA", "protein_coding", "lncRNA", "protein_coding", "protein_coding", "lncRNA"]
    ensembl = [f"ENSG{i:011d}" for i in rng.permutation(1000)[:n_genes] + 1000]
    features = pd.DataFrame({"ensembl_gene": ensembl, "symbol": symbols, "biotype": biotypes})
    sizes = [80, 60, 40, 20]
    samples = pd.DataFrame(
        {"geo_accession": [f"GSM{i}" for i in range(N_SAMPLES)],
         "series_id": np.repeat([f"GSE{i}" for i in range(4)], sizes),
         "singlecellprobability": np.where(np.arange(N_SAMPLES) % 37 == 5, 0.9, 0.1)}
    )  # fmt: skip
    keep = [g for g in range(n_genes) if g not in drop]
    with Archs4Writer(path, "gene", len(keep), N_SAMPLES) as w:
        w.write_samples(0, counts[keep].astype(np.uint32))
        w.finish(features.iloc[keep].reset_index(drop=True), samples, {"version": "tiny"})
    return {"counts": counts, "features": features}


TINY_QC = {"min_total_counts": 1, "max_singlecell_probability": 0.5, "min_detected_genes": 5}
TINY_REASONS = {21: "biotype", 24: "biotype", 22: "duplicate_symbol", 5: "duplicate_symbol"}
TINY_REASONS |= {27: "low_mean", 28: "low_mean"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    base = tmp_path_factory.mktemp("tiny")
    truth = write_tiny(base / "tiny_gene.h5", np.random.default_rng(0))
    table = qc.sample_qc(base / "tiny_gene.h5", TINY_QC, 1000)
    write_table(table, base / "qc.parquet")
    return base / "tiny_gene.h5", base / "qc.parquet", truth, table


def tiny_settings(small_compendium, **changes) -> dict:
    cfg, _ = small_compendium
    return settings_of(cfg, **({"genes__min_mean_log": 0.05, "tokens__context": 16} | changes))


def test_genes_table_lists_every_gene_with_its_fate(small_compendium, tiny, tmp_path):
    compendium, qc_path, truth, table = tiny
    assert (~table["kept"]).sum() == 7  # 6 single-cell samples and the empty one
    normalize.normalize(compendium, qc_path, tmp_path / "c", tiny_settings(small_compendium), 97, 0)
    genes = pd.read_parquet(tmp_path / "c" / "genes.parquet")
    features = truth["features"]
    # every gene once, sorted by gene ID, its own symbol and biotype
    assert genes["gene_id"].tolist() == sorted(features["ensembl_gene"])
    by_id = features.set_index("ensembl_gene").loc[genes["gene_id"]]
    assert (genes["symbol"].to_numpy() == by_id["symbol"].to_numpy()).all()
    assert (genes["biotype"].to_numpy() == by_id["biotype"].to_numpy()).all()
    assert set(genes["reason"]) <= REASONS
    # mean log value over the kept samples, zeros included
    counts = truth["counts"][:, table["kept"].to_numpy()]
    mean_log = np.log10(counts / counts.sum(axis=0) * 1e7 + 1).mean(axis=1)
    row = genes["row"].to_numpy()
    np.testing.assert_allclose(genes["mean_log"], mean_log[row], rtol=1e-6)
    # the planted fates: premises first, then the reasons
    assert mean_log[22] < mean_log[3] and mean_log[5] < mean_log[23]
    assert mean_log[24] > mean_log[7] and mean_log[27] == 0 and 0 < mean_log[28] <= 0.05
    assert (np.delete(mean_log, [27, 28]) > 0.05).all()
    expected = [TINY_REASONS.get(int(r), "") for r in row]
    assert genes["reason"].tolist() == expected
    assert (genes["in_vocabulary"] == (genes["reason"] == "")).all()
    # counts add up across genes.parquet, vocabulary.tsv, reference.parquet and the corpus
    n_vocab = int(genes["in_vocabulary"].sum())
    assert n_vocab == 30 - len(TINY_REASONS)
    assert genes["reason"].value_counts().sum() == 30
    vocabulary = pd.read_csv(tmp_path / "c" / "vocabulary.tsv", sep="\t", keep_default_na=False)
    assert vocabulary["token_id"].tolist() == list(range(3 + n_vocab))
    assert vocabulary["token"].tolist()[:3] == ["<pad>", "<mask>", "<cls>"]
    assert (
        vocabulary["gene_id"].tolist()[3:] == genes.loc[genes["in_vocabulary"], "gene_id"].tolist()
    )
    header = json.loads((tmp_path / "c" / "corpus.json").read_text())
    assert header["n_tokens"] == 3 + n_vocab
    assert header["arrays"]["dense"]["shape"] == [int(table["kept"].sum()), n_vocab]
    assert len(pd.read_parquet(tmp_path / "c" / "reference.parquet")) == n_vocab
    check_corpus(tmp_path / "c", compendium, qc_path, 1e7)


def test_genes_never_or_once_expressed_in_the_vocabulary(small_compendium, tiny, tmp_path):
    compendium, qc_path, _, _ = tiny
    # keep every gene: an all-zero gene, a gene with one count, context beyond the genes
    biotypes = ["protein_coding", "lncRNA", "miRNA"]
    settings = tiny_settings(
        small_compendium, genes__min_mean_log=-1.0, genes__biotypes=biotypes, tokens__context=40
    )
    normalize.normalize(compendium, qc_path, tmp_path / "c", settings, 97, 0)
    genes = pd.read_parquet(tmp_path / "c" / "genes.parquet")
    assert genes.set_index("row")["reason"].to_dict() == {
        g: ("duplicate_symbol" if g in (5, 22, 7) else "") for g in range(30)
    }
    checked = check_corpus(tmp_path / "c", compendium, qc_path, 1e7)
    vocab = genes[genes["in_vocabulary"]].reset_index(drop=True)
    zero = vocab.index[vocab["row"] == 27][0]
    once = vocab.index[vocab["row"] == 28][0]
    assert (checked["bins"][:, zero] == 1).all()
    assert sorted(checked["bins"][:, once].tolist())[-2:] == [1, 2]
    reference = pd.read_parquet(tmp_path / "c" / "reference.parquet")
    assert len(reference["reference"][zero]) == 0 and reference["std"][zero] == 0
    assert len(reference["reference"][once]) == 1
    tokens = corpus_arrays(tmp_path / "c")["tokens_binning"]
    assert not (tokens == zero + 3).any()
    assert (tokens == once + 3).sum() == 1
    assert (tokens[:, -1] == 0).all()  # fewer vocabulary genes than the context: padding


def test_min_mean_log_drops_genes_at_the_threshold(small_compendium, tiny, tmp_path):
    compendium, qc_path, _, _ = tiny
    settings = tiny_settings(small_compendium, genes__min_mean_log=0.0)
    normalize.normalize(compendium, qc_path, tmp_path / "c", settings, 97, 0)
    reason = pd.read_parquet(tmp_path / "c" / "genes.parquet").set_index("row")["reason"]
    assert reason[27] == "low_mean"  # all zero: mean exactly 0, at most 0
    assert reason[28] == ""  # one count: mean above 0


def test_new_samples_with_vocabulary_genes_missing(small_compendium, tiny, tmp_path):
    compendium, qc_path, truth, _ = tiny
    normalize.normalize(compendium, qc_path, tmp_path / "c", tiny_settings(small_compendium), 97, 0)
    checked = check_corpus(tmp_path / "c", compendium, qc_path, 1e7)
    # the same samples with genes 0 and 1 (both in the vocabulary) absent from the file
    partial = tmp_path / "partial_gene.h5"
    write_tiny(partial, np.random.default_rng(0), drop=(0, 1))
    normalize.bin_new_samples(partial, tmp_path / "c", tmp_path / "new", 50)
    header = json.loads((tmp_path / "new" / "corpus.json").read_text())
    assert header["genes_missing_from_input"] == 2
    bins = corpus_arrays(tmp_path / "new")["bins"]
    genes = pd.read_parquet(tmp_path / "c" / "genes.parquet")
    vocab_rows = genes.loc[genes["in_vocabulary"], "row"].to_numpy()
    missing = np.isin(vocab_rows, [0, 1])
    assert missing.sum() == 2 and (bins[:, missing] == 1).all()
    # the others: each value (totals without the two genes) ranked among the training values;
    # the reference holds every training value here (fewer than B − 1 of them)
    counts = truth["counts"]
    totals = np.delete(counts, [0, 1], axis=0).sum(axis=0)
    dense, n_bins = checked["dense"], 2000
    for j, row in enumerate(vocab_rows):
        if row in (0, 1):
            continue
        x = np.log10(counts[row] / np.maximum(totals, 1) * 1e7 + 1).astype(np.float32)
        train = np.sort(dense[:, j][dense[:, j] > 0])
        r = np.searchsorted(train, x, side="left")
        expected = np.where(x > 0, np.minimum(2 + r * (n_bins - 1) // train.size, n_bins), 1)
        assert (bins[:, j] == expected).all(), row


# --- memory: reads within the budget -------------------------------------------------------


def spy_reads(monkeypatch) -> list[int]:
    """Record how many samples each Archs4File.read asks for."""
    widths: list[int] = []
    original = Archs4File.read

    def read(self, samples=None, features=None):
        block = original(self, samples, features)
        widths.append(block.shape[1])
        return block

    monkeypatch.setattr(Archs4File, "read", read)
    return widths


def test_clustered_qc_removal_does_not_widen_a_read(small_compendium, tiny, tmp_path, monkeypatch):
    """A failing study is a contiguous run of removed samples (ARCHS4 files are ordered by
    series): reads step over it and stay within block_values, and the corpus is the one read in
    a single block."""
    compendium, _, _, table = tiny
    table = table.copy()
    table.loc[60:129, "kept"] = False  # 70 samples in a row, ten times a block's width
    clustered = tmp_path / "qc_clustered.parquet"
    write_table(table, clustered)
    settings = tiny_settings(small_compendium)
    normalize.normalize(compendium, clustered, tmp_path / "one", settings, BIG, 0)
    widths = spy_reads(monkeypatch)
    budget = 30 * 7  # 30 genes: 7 samples a read
    normalize.normalize(compendium, clustered, tmp_path / "blocks", settings, budget, 0)
    kept = int(table["kept"].sum())
    assert max(widths) == 7 and len(widths) >= 2 * -(-kept // 7)
    for name in OUTPUTS:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "blocks" / name).read_bytes()
    check_corpus(tmp_path / "blocks", compendium, clustered, 1e7)


def test_new_samples_read_within_the_budget_of_the_vocabulary(
    small_compendium, tiny, tmp_path, monkeypatch
):
    """A new file with fewer genes than the vocabulary: its blocks are sized by the larger of
    the two (each block holds vocabulary × samples values)."""
    compendium, qc_path, _, _ = tiny
    normalize.normalize(compendium, qc_path, tmp_path / "c", tiny_settings(small_compendium), 97, 0)
    n_vocab = len(pd.read_parquet(tmp_path / "c" / "reference.parquet"))
    few = tmp_path / "few_gene.h5"
    write_tiny(few, np.random.default_rng(0), drop=tuple(range(5, 30)))  # 5 vocabulary genes
    widths = spy_reads(monkeypatch)
    budget = 5 * n_vocab
    normalize.bin_new_samples(few, tmp_path / "c", tmp_path / "new", budget)
    assert widths and max(widths) == 5 and sum(widths) == N_SAMPLES
    header = json.loads((tmp_path / "new" / "corpus.json").read_text())
    assert header["genes_missing_from_input"] == n_vocab - 5
    monkeypatch.undo()
    normalize.bin_new_samples(few, tmp_path / "c", tmp_path / "whole", BIG)
    for name in ("bins.bin", "tokens_binning.bin", "levels_binning.bin"):
        assert (tmp_path / "new" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()


# --- the description: what the corpus was built from ----------------------------------------


def test_corpus_json_records_settings_seed_and_content(small_compendium, tiny, tmp_path):
    compendium, qc_path, _, table = tiny
    settings = tiny_settings(small_compendium)
    normalize.normalize(compendium, qc_path, tmp_path / "a", settings, 97, 0)
    header = json.loads((tmp_path / "a" / "corpus.json").read_text())
    assert header["settings"] == {k: settings[k] for k in ("genes", "normalize", "tokens", "dense")}
    assert header["seed"] == 0
    files = ["vocabulary.tsv", *(a["file"] for a in header["arrays"].values())]
    assert header["sha256"] == {
        f: hashlib.sha256((tmp_path / "a" / f).read_bytes()).hexdigest() for f in files
    }
    # what it held before stays
    assert header["source"] == str(compendium) and set(header["arrays"]) == {
        "dense", "tokens_binning", "tokens_zscore", "levels_binning", "levels_zscore"
    }  # fmt: skip

    def description(name: str) -> bytes:
        return (tmp_path / name / "corpus.json").read_bytes()

    # the same inputs: the same bytes (nothing of the time or place of the build)
    normalize.normalize(compendium, qc_path, tmp_path / "again", settings, 97, 0)
    assert description("again") == description("a")
    # another seed, another setting, another QC table (one sample fewer): another description
    normalize.normalize(compendium, qc_path, tmp_path / "seed", settings, 97, 1)
    other = tiny_settings(small_compendium, tokens__context=12)
    normalize.normalize(compendium, qc_path, tmp_path / "context", other, 97, 0)
    fewer = table.copy()
    fewer.loc[int(np.flatnonzero(fewer["kept"])[3]), "kept"] = False
    write_table(fewer, tmp_path / "qc_fewer.parquet")
    normalize.normalize(compendium, tmp_path / "qc_fewer.parquet", tmp_path / "qc", settings, 97, 0)
    changed = {name: json.loads(description(name)) for name in ("seed", "context", "qc")}
    assert len({description(n) for n in ("a", "seed", "context", "qc")}) == 4
    assert changed["seed"]["seed"] == 1 and changed["context"]["settings"] == {
        k: other[k] for k in ("genes", "normalize", "tokens", "dense")
    }
    assert changed["qc"]["sha256"]["tokens_binning.bin"] != header["sha256"]["tokens_binning.bin"]


# --- nothing half-written -------------------------------------------------------------------


def test_mismatched_qc_table_leaves_nothing(human, tmp_path):
    cfg, compendium, qc_path = human
    wrong = tmp_path / "qc_reversed.parquet"
    write_table(pd.read_parquet(qc_path).iloc[::-1], wrong)
    with pytest.raises(GexnetError, match="samples are not those of"):
        normalize.normalize(compendium, wrong, tmp_path / "out" / "c", settings_of(cfg), BIG, 1)
    assert not (tmp_path / "out" / "c").exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_failure_midway_leaves_nothing_and_keeps_an_earlier_output(human, tmp_path, monkeypatch):
    cfg, compendium, qc_path = human
    settings = settings_of(cfg)
    outdir = tmp_path / "c"
    normalize.normalize(compendium, qc_path, outdir, settings, BIG, seed=1)
    before = {p.name: p.read_bytes() for p in outdir.iterdir()}

    def broken(*args, **kwargs):
        raise GexnetError("disk full")

    monkeypatch.setattr(binning, "bin_genes", broken)  # after the dense matrix is written
    with pytest.raises(GexnetError, match="disk full"):
        normalize.normalize(compendium, qc_path, outdir, settings, BIG, seed=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]
    assert {p.name: p.read_bytes() for p in outdir.iterdir()} == before
    with pytest.raises(GexnetError, match="disk full"):
        normalize.normalize(compendium, qc_path, tmp_path / "d", settings, BIG, seed=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]
    monkeypatch.setattr(binning, "bin_against_reference", broken)
    with pytest.raises(GexnetError, match="disk full"):
        normalize.bin_new_samples(compendium, outdir, tmp_path / "new", BIG)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]
