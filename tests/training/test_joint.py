"""Mixed-species models and the pseudo-species control: the joint source's rows and batches are
the single corpora's with the second's genes offset, both species mix within an epoch, the
pseudo halves partition the samples by seed, and a joint model trains and exports both
species' genes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from gexnet import cli
from gexnet.errors import GexnetError
from gexnet.formats import embeddings
from gexnet.formats.corpus import FIRST_GENE_TOKEN, MASK, PAD, Corpus
from gexnet.models.gene_lm import IGNORE
from gexnet.training import data as lmdata
from gexnet.training import embeddings as export
from gexnet.training import lm, trainer

from .test_lm import GPT, MODEL, run_train, train_settings

MIXED = dict(GPT, species=["human", "mouse"], pseudo_species=False)
PSEUDO = dict(GPT, pseudo_species=True)


def singles(corpus, mouse_corpus, biotypes=None):
    return (Corpus(corpus).sequences("binning", biotypes),
            Corpus(mouse_corpus).sequences("binning", biotypes))  # fmt: skip


def joint_of(human, mouse):
    return lmdata.JointSequences([lmdata.whole(human, "human"), lmdata.whole(mouse, "mouse")])


def oracle_place(human, mouse, row: int) -> tuple[str, int]:
    """Where joint row `row` comes from, by the layout alone: human training rows, mouse
    training rows, human validation rows, mouse validation rows."""
    h_val, m_val = human.n_samples - human.n_train, mouse.n_samples - mouse.n_train
    for species, start, count in (("human", 0, human.n_train), ("mouse", 0, mouse.n_train),
                                  ("human", human.n_train, h_val),
                                  ("mouse", mouse.n_train, m_val)):  # fmt: skip
        if row < count:
            return species, start + row
        row -= count
    raise IndexError(row)


def offset(tokens: np.ndarray, by: int) -> np.ndarray:
    return np.where(tokens >= FIRST_GENE_TOKEN, tokens + by, tokens)


class Fixed:
    """A stand-in corpus whose rows are given arrays: make_batch's oracle input."""

    def __init__(self, tokens, levels, n_tokens, n_levels):
        self.tokens, self.levels, self.n_tokens, self.n_levels = tokens, levels, n_tokens, n_levels

    def rows(self, rows):
        return self.tokens, self.levels


def test_joint_rows_and_vocabulary_are_the_single_corpora_offset(corpus, mouse_corpus):
    human, mouse = singles(corpus, mouse_corpus)
    joint = joint_of(human, mouse)
    n_human = human.n_tokens - FIRST_GENE_TOKEN
    assert joint.n_train == human.n_train + mouse.n_train
    assert joint.n_samples == human.n_samples + mouse.n_samples
    assert joint.n_tokens == human.n_tokens + mouse.n_tokens - FIRST_GENE_TOKEN
    vocabulary = joint.vocabulary
    assert vocabulary["token_id"].tolist() == list(range(joint.n_tokens))
    assert vocabulary["species"].tolist() == [""] * 3 + ["human"] * n_human + ["mouse"] * (
        mouse.n_tokens - FIRST_GENE_TOKEN
    )
    assert vocabulary["gene_id"].iloc[3:].tolist() == (
        human.vocabulary["gene_id"].iloc[3:].tolist()
        + mouse.vocabulary["gene_id"].iloc[3:].tolist()
    )
    rng = np.random.default_rng(0)
    rows = rng.choice(joint.n_samples, 60, replace=False)
    tokens, levels = joint.rows(rows)
    for i, row in enumerate(rows):
        species, corpus_row = oracle_place(human, mouse, row)
        t, lv = (human if species == "human" else mouse).rows(np.array([corpus_row]))
        assert np.array_equal(tokens[i], offset(t[0], n_human if species == "mouse" else 0))
        assert np.array_equal(levels[i], lv[0])
    # a mouse gene token names a mouse gene of the joint vocabulary, and the same gene
    placed = [oracle_place(human, mouse, r) for r in rows]
    i = next(k for k, (s, _) in enumerate(placed) if s == "mouse")
    genes = vocabulary.set_index("token_id")["gene_id"]
    t, _ = mouse.rows(np.array([placed[i][1]]))
    mouse_genes = mouse.vocabulary.set_index("token_id")["gene_id"]
    real = t[0] != PAD
    assert genes[tokens[i][real]].tolist() == mouse_genes[t[0][real]].tolist()


@pytest.mark.parametrize("objective", ["gpt", "bert_genes", "bert_expr"])
def test_joint_batches_equal_the_single_batches_offset(corpus, mouse_corpus, objective):
    human, mouse = singles(corpus, mouse_corpus)
    joint = joint_of(human, mouse)
    n_human = human.n_tokens - FIRST_GENE_TOKEN
    rows = np.random.default_rng(1).choice(joint.n_samples, 120, replace=False)
    batch = lmdata.GeneLMData(joint, objective, seed=4).batch(rows, epoch=2)
    places = [oracle_place(human, mouse, r) for r in rows]
    if objective == "gpt":  # nothing random: each row is its single corpus's batch, offset
        for i, (species, corpus_row) in enumerate(places):
            single = human if species == "human" else mouse
            one = lmdata.make_batch(single, "gpt", np.array([corpus_row]), seed=4, epoch=2)
            by = n_human if species == "mouse" else 0
            assert np.array_equal(batch["tokens"][i].numpy(), offset(one["tokens"][0].numpy(), by))
            targets = one["targets"][0].numpy()
            expected = np.where(targets == IGNORE, IGNORE, offset(targets, by))
            assert np.array_equal(batch["targets"][i].numpy(), expected)
        return
    # BERT: the masks are drawn per joint row; the sequences are the single corpora's, offset
    tokens = np.stack([offset((human if s == "human" else mouse).rows(np.array([r]))[0][0],
                              n_human if s == "mouse" else 0) for s, r in places])  # fmt: skip
    levels = np.stack([(human if s == "human" else mouse).rows(np.array([r]))[1][0]
                       for s, r in places])  # fmt: skip
    oracle = lmdata.make_batch(Fixed(tokens, levels, joint.n_tokens, joint.n_levels), objective,
                               rows, seed=4, epoch=2)  # fmt: skip
    for key in oracle:
        assert torch.equal(batch[key], oracle[key]), key
    if objective == "bert_genes":  # replacements draw from both species' genes
        chosen = batch["targets"] != IGNORE
        replaced = chosen & (batch["tokens"] != MASK) & (batch["tokens"] != batch["targets"])
        picked = batch["tokens"][replaced]
        assert (picked < FIRST_GENE_TOKEN + n_human).any()
        assert (picked >= FIRST_GENE_TOKEN + n_human).any()
        assert (picked < joint.n_tokens).all()


def test_every_training_row_once_per_epoch_and_species_mixed(corpus, mouse_corpus):
    human, mouse = singles(corpus, mouse_corpus)
    joint = joint_of(human, mouse)
    global_batch = 8
    steps = -(-joint.n_train // global_batch)  # the last, partial step too
    seen = np.concatenate([trainer.step_rows(joint.n_train, global_batch, 5, 1, s)
                           for s in range(steps)])  # fmt: skip
    places = [oracle_place(human, mouse, r) for r in seen]
    expected = {("human", r) for r in range(human.n_train)} | {
        ("mouse", r) for r in range(mouse.n_train)
    }
    assert len(places) == len(set(places)) == len(expected) and set(places) == expected
    first = [oracle_place(human, mouse, r)[0] for r in seen[: 3 * global_batch]]
    assert {"human", "mouse"} == set(first), "both species within the epoch's first steps"
    for step in range(3):  # the source reads those rows from both corpora
        rows = trainer.step_rows(joint.n_train, global_batch, 5, 1, step)
        tokens, _ = joint.rows(rows)
        kinds = {oracle_place(human, mouse, r)[0] for r in rows}
        genes = tokens[tokens >= FIRST_GENE_TOKEN]
        assert ((genes >= FIRST_GENE_TOKEN + human.n_tokens - 3).any()) == ("mouse" in kinds)
    validation = [oracle_place(human, mouse, r) for r in range(joint.n_train, joint.n_samples)]
    assert set(validation) == {("human", r) for r in range(human.n_train, human.n_samples)} | {
        ("mouse", r) for r in range(mouse.n_train, mouse.n_samples)
    }


def test_pseudo_halves_partition_the_samples_by_seed(corpus):
    coding = Corpus(corpus).sequences("binning", ["protein_coding"])
    a, b = lmdata.pseudo_halves(coding, "human", seed=7)
    assert (a.species, b.species) == ("human", "human_pseudo")
    train = np.concatenate([a.train_rows, b.train_rows])
    validation = np.concatenate([a.validation_rows, b.validation_rows])
    assert sorted(train) == list(range(coding.n_train))
    assert sorted(validation) == list(range(coding.n_train, coding.n_samples))
    assert 0.35 < len(b.train_rows) / coding.n_train < 0.65
    assert len(a.validation_rows) and len(b.validation_rows)
    again, _ = lmdata.pseudo_halves(coding, "human", seed=7)
    other, _ = lmdata.pseudo_halves(coding, "human", seed=8)
    assert np.array_equal(again.train_rows, a.train_rows)
    assert not np.array_equal(other.train_rows, a.train_rows)
    joint = lmdata.JointSequences([a, b])
    n_genes = coding.n_tokens - FIRST_GENE_TOKEN
    assert joint.n_tokens - FIRST_GENE_TOKEN == 2 * n_genes
    assert joint.vocabulary["species"].value_counts().to_dict() == {
        "human": n_genes, "human_pseudo": n_genes, "": 3}  # fmt: skip
    assert joint.vocabulary["token"].is_unique
    # the first joint row of the second half: one of b's samples, its genes the copies
    row = len(a.train_rows)
    tokens, _ = joint.rows(np.array([row]))
    own, _ = coding.rows(b.train_rows[:1])
    assert np.array_equal(tokens[0], offset(own[0], n_genes))
    assert joint.digest(7) != joint.digest(8) != coding.corpus.digest


def test_corpora_of_other_contexts_are_refused(corpus, mouse_corpus, tmp_path):
    import shutil

    moved = shutil.copytree(mouse_corpus, tmp_path / "mouse")
    header = json.loads((moved / "corpus.json").read_text())
    header["context"] = 24
    (moved / "corpus.json").write_text(json.dumps(header))
    human, mouse = singles(corpus, moved)
    with pytest.raises(GexnetError, match=f"{corpus} and {moved}: a joint model needs"):
        joint_of(human, mouse)


def test_a_joint_gpt_trains_and_exports_both_species(corpus, mouse_corpus, tmp_path):
    out = tmp_path / "out"
    run_train([corpus, mouse_corpus], out, tmp_path / "ck", MIXED,
              settings=train_settings(max_steps=4))  # fmt: skip
    human, mouse = singles(corpus, mouse_corpus)
    vocabulary = pd.read_csv(out / "vocabulary.tsv", sep="\t", keep_default_na=False)
    assert vocabulary["species"].value_counts().to_dict() == {
        "human": human.n_tokens - 3, "mouse": mouse.n_tokens - 3, "": 3}  # fmt: skip
    description = json.loads((out / "model.json").read_text())
    assert description["corpora"] == [str(corpus), str(mouse_corpus)]
    assert description["model"]["n_tokens"] == human.n_tokens + mouse.n_tokens - 3
    parquet, w2v = tmp_path / "e.parquet", tmp_path / "e.w2v.txt"
    code = cli.main(["embeddings", str(out), "--parquet", str(parquet), "--word2vec", str(w2v)])
    assert code == 0
    table = pd.read_parquet(parquet)
    assert list(table.columns[:5]) == ["gene_id", "symbol", "biotype", "species", "dim_1"]
    assert table["gene_id"].tolist() == vocabulary["gene_id"].iloc[3:].tolist()
    genes, vectors = embeddings.read_embedding(parquet)
    assert "species" in genes and len(vectors) == len(table)
    names = embeddings.read_word2vec(w2v).index
    is_mouse = (table["species"] == "mouse").to_numpy()
    assert names.is_unique and names[is_mouse].str.startswith("m_").all()
    assert not names[~is_mouse].str.startswith("m_").any()
    assert (names[is_mouse].str[2:] == embeddings.word2vec_names(table[is_mouse])).all()


def test_a_joint_checkpoint_of_changed_corpora_names_them(corpus, mouse_corpus, tmp_path):
    import shutil

    moved = shutil.copytree(mouse_corpus, tmp_path / "mouse")
    settings = train_settings(max_steps=2, checkpoint_every=1)
    lm.train([corpus, moved], MIXED, MODEL, settings, 1, tmp_path / "o", tmp_path / "ck")
    header = json.loads((moved / "corpus.json").read_text())
    (moved / "corpus.json").write_text(json.dumps({**header, "rebuilt": True}))  # a new digest
    with pytest.raises(GexnetError, match="trained on another pair of corpora") as error:
        lm.train([corpus, moved], MIXED, MODEL, settings, 1, tmp_path / "o", tmp_path / "ck")
    assert str(moved / "corpus.json") in str(error.value)
    assert str(corpus / "corpus.json") in str(error.value)


def test_the_pseudo_model_holds_each_gene_twice(corpus, tmp_path):
    settings = train_settings(max_steps=2)
    lm.train(corpus, PSEUDO, MODEL, settings, 1, tmp_path / "o", tmp_path / "ck")
    table = export.gene_embeddings(tmp_path / "o")
    first, second = table[table["species"] == "human"], table[table["species"] == "human_pseudo"]
    assert len(first) == len(second) == len(Corpus(corpus).genes)
    assert first["gene_id"].tolist() == second["gene_id"].tolist()
    names = embeddings.word2vec_names(table)
    assert names.is_unique and names[second.index].str.startswith("p_").all()


@pytest.mark.parametrize(
    ("experiment", "corpora", "expected"),
    [
        (MIXED, 1, "experiments.x: expects one corpus per species, in order: human, mouse; "
                   "got 1"),
        (PSEUDO, 2, "experiments.x: expects one corpus (human, split into the pseudo-species "
                    "halves); got 2"),
        (GPT, 2, "experiments.x: expects one corpus per species, in order: human; got 2"),
    ],
)  # fmt: skip
def test_the_cli_wants_one_corpus_per_species(tmp_path, capsys, experiment, corpora, expected):
    given = [str(tmp_path / f"c{i}") for i in range(corpora)]
    run = {"experiments": {"x": experiment}}
    code = cli.main(["train", *given, "--experiment", "x", "--out", str(tmp_path / "o"),
                     "--checkpoints", str(tmp_path / "ck"), "--config", json.dumps(run)])  # fmt: skip
    assert code == 2
    assert expected in capsys.readouterr().err
