"""Token sequences, levels, splits and the vocabulary against brute-force oracles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from gexnet.corpus import tokens
from gexnet.formats import corpus as corpus_format
from gexnet.formats.corpus import validation_split


def brute_top(scores: np.ndarray, expressed: np.ndarray, context: int) -> np.ndarray:
    """Per sample: expressed genes sorted by (−score, gene), the first `context`, −1 padded."""
    out = np.full((scores.shape[0], context), -1, dtype=np.int64)
    for s in range(scores.shape[0]):
        genes = [g for g in range(scores.shape[1]) if expressed[s, g]]
        ranked = sorted(genes, key=lambda g: (-float(scores[s, g]), g))[:context]
        out[s, : len(ranked)] = ranked
    return out


@pytest.mark.parametrize("context", [8, 40, 64])
def test_top_genes_on_tied_integer_bins(context):
    rng = np.random.default_rng(context)
    scores = rng.integers(1, 6, size=(60, 50)).astype(np.uint16)  # many ties, at the cut too
    expressed = rng.random((60, 50)) < 0.7
    expressed[3] = False  # nothing expressed
    expressed[4, :5] = True  # few expressed genes
    expressed[4, 5:] = False
    out = tokens.top_genes(scores, expressed, context)
    assert out.shape == (60, context)
    assert (out == brute_top(scores, expressed, context)).all()
    assert (out[3] == -1).all()
    assert (out[4, :5] >= 0).all() and (out[4, 5:] == -1).all()


@pytest.mark.parametrize("context", [8, 30, 100])
def test_top_genes_on_float_zscores(context):
    rng = np.random.default_rng(1)
    scores = rng.standard_normal((40, 70)).astype(np.float32)
    scores[:, 10:20] = np.round(scores[:, 10:20], 1)  # some exact ties
    scores[0, :] = 0.0  # all tied
    scores[1, :35] = -np.float32(3.25)  # negative ties
    scores[2, 5] = np.inf
    scores[2, 6] = -np.inf
    expressed = rng.random((40, 70)) < 0.8
    expressed[2, 5:7] = True
    out = tokens.top_genes(scores, expressed, context)
    assert (out == brute_top(scores, expressed, context)).all()
    assert out[2, 0] == 5


def test_fewer_expressed_genes_than_context_and_context_beyond_the_genes():
    scores = np.array([[5, 1, 3, 3], [0, 0, 0, 0]], np.uint16)
    expressed = np.array([[True, True, False, True], [False, True, False, True]])
    out = tokens.top_genes(scores, expressed, 8)  # 8 > 4 genes
    assert out.tolist() == [[0, 3, 1, -1, -1, -1, -1, -1], [1, 3, -1, -1, -1, -1, -1, -1]]
    assert tokens.top_genes(scores, expressed, 2).tolist() == [[0, 3], [1, 3]]


def test_within_sample_levels_follow_min_ranks():
    rng = np.random.default_rng(4)
    values = np.round(rng.gamma(1.5, 1.0, size=(30, 400)), 1).astype(np.float32)
    values[rng.random(values.shape) < 0.4] = 0
    values[7] = 0  # nothing expressed: all padding
    context = 64
    chosen = tokens.top_genes(values, values > 0, context)
    out = tokens.within_sample_levels(values, chosen, levels=100)
    assert out.shape == chosen.shape and out.dtype == np.uint8
    for s in range(values.shape[0]):
        row = values[s]
        level = np.zeros(row.size, np.int64)
        nonzero = row > 0
        if nonzero.any():
            rank = rankdata(row[nonzero], method="min").astype(np.int64)
            level[nonzero] = 1 + (rank - 1) * 100 // nonzero.sum()
        expected = np.where(chosen[s] >= 0, level[chosen[s]], 0)
        assert (out[s] == expected).all()
    assert (out[7] == 0).all()
    # the top gene of a sample with a unique maximum is level 100
    assert (out[:, 0] == 100).sum() > 0 and (out[:, 0] <= 100).all()


def test_levels_with_few_levels_and_ties():
    values = np.array([[0, 2, 2, 1, 5, 0]], np.float32)
    chosen = np.array([[4, 1, 2, 3, -1, -1]])
    # non-zero 2, 2, 1, 5: min ranks 1, 1, 0, 3 of n = 4
    out = tokens.within_sample_levels(values, chosen, levels=4)
    assert out.tolist() == [[4, 2, 2, 1, 0, 0]]


def samples_table(rng: np.random.Generator, n_series: int = 30) -> pd.DataFrame:
    sizes = rng.integers(1, 40, size=n_series)
    series = np.repeat([f"GSE{i}" for i in range(n_series)], sizes)
    return pd.DataFrame(
        {"geo_accession": [f"GSM{i}" for i in range(len(series))], "series_id": series}
    ).sample(frac=1.0, random_state=0)  # series interleaved, as in a compendium


@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.3])
def test_split_by_series(fraction):
    samples = samples_table(np.random.default_rng(0))
    sizes = samples.groupby("series_id").size()
    target = round(fraction * len(samples))
    for seed in range(5):
        validation = validation_split(samples, fraction, "series", seed)
        assert validation.dtype == bool and validation.shape == (len(samples),)
        sides = pd.Series(validation).groupby(samples["series_id"].to_numpy()).nunique()
        assert (sides == 1).all(), "a series on both sides"
        total = int(validation.sum())
        chosen = samples["series_id"][validation].unique()
        # whole series are added until the target is reached: over it by less than the last one
        assert target <= total < target + sizes[chosen].max()
        assert (validation_split(samples, fraction, "series", seed) == validation).all()
    draws = {tuple(validation_split(samples, fraction, "series", s)) for s in range(5)}
    assert len(draws) > 1, "different seeds, different splits"


def test_split_by_series_stops_at_the_target():
    samples = pd.DataFrame(
        {"geo_accession": [f"GSM{i}" for i in range(100)],
         "series_id": np.repeat([f"GSE{i}" for i in range(10)], 10)}
    )  # fmt: skip
    for seed in range(3):
        validation = validation_split(samples, 0.2, "series", seed)
        assert validation.sum() == 20  # two whole series reach the target exactly: no third
    assert not validation_split(samples, 0.004, "series", 0).any()  # a target of 0 samples


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.5, 0.77])
def test_split_by_sample(fraction):
    samples = samples_table(np.random.default_rng(1))
    validation = validation_split(samples, fraction, "sample", 3)
    assert validation.sum() == round(fraction * len(samples))
    assert (validation_split(samples, fraction, "sample", 3) == validation).all()
    assert (validation_split(samples, fraction, "sample", 4) != validation).any()


def test_vocabulary_layout():
    genes = pd.DataFrame(
        {"gene_id": ["ENSG3", "ENSG1", "ENSG2"], "symbol": ["C", "A", ""],
         "biotype": ["protein_coding", "lncRNA", "protein_coding"], "mean_log": [1.0, 2.0, 3.0]},
        index=[10, 4, 7],
    )  # fmt: skip
    vocab = corpus_format.vocabulary(genes)
    assert list(vocab.columns) == ["token_id", "token", "gene_id", "symbol", "biotype"]
    assert vocab["token_id"].tolist() == list(range(6))
    assert vocab["token"].tolist()[:3] == ["<pad>", "<mask>", "<cls>"]
    assert (
        corpus_format.PAD,
        corpus_format.MASK,
        corpus_format.CLS,
        corpus_format.FIRST_GENE_TOKEN,
    ) == (0, 1, 2, 3)
    # genes from 3, in the order given
    assert vocab["gene_id"].tolist() == ["", "", "", "ENSG3", "ENSG1", "ENSG2"]
    assert vocab["token"].tolist()[3:] == ["ENSG3", "ENSG1", "ENSG2"]
    assert vocab["symbol"].tolist()[3:] == ["C", "A", ""]
    assert vocab["biotype"].tolist()[3:] == ["protein_coding", "lncRNA", "protein_coding"]
    assert corpus_format.token_dtype(len(vocab)) == np.uint16
    assert (
        corpus_format.token_dtype(2**16) == np.uint16
        and corpus_format.token_dtype(2**16 + 1) == np.uint32
    )
