"""Label matrices (human and, through orthologs, mouse), baseline embeddings, the comparison per
label source and the lncRNA transfer."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest

from gexnet import cli as gexnet_cli
from gexnet.analysis import classify
from gexnet.corpus import normalize, qc
from gexnet.errors import GexnetError
from gexnet.formats import embeddings
from gexnet.formats.io import write_table

SETTINGS = {"min_genes": 3, "max_genes": 6, "folds": 3, "C": 1.0, "tol": 1e-3, "sources": None,
            "train_biotypes": ["protein_coding"]}  # fmt: skip


def genes_table(n: int = 30) -> pd.DataFrame:
    return pd.DataFrame(
        {"gene_id": [f"G{i:03d}" for i in range(n)], "symbol": [f"S{i}" for i in range(n)],
         "biotype": ["protein_coding"] * (n - 5) + ["lncRNA"] * 5}
    )  # fmt: skip


def labels_table() -> pd.DataFrame:
    rows = []
    terms = {
        ("A", "a1"): range(0, 4), ("A", "a2"): range(4, 8), ("A", "a_small"): [0, 1],
        ("A", "a_big"): range(0, 10), ("B", "b1"): [10, 11, 12, 40, 41],  # 40, 41 not in genes
        ("B", "b_gone"): [50, 51, 52],  # no gene in the embedding
    }  # fmt: skip
    for (source, term), members in terms.items():
        rows += [(source, term, f"name {term}", f"G{g:03d}") for g in members]
    rows.append(("A", "a1", "name a1", "G000"))  # a duplicate row counts once
    return pd.DataFrame(rows, columns=["source", "term_id", "term_name", "gene_id"])


def test_label_matrix_positives_negatives_and_counts():
    genes = genes_table()
    matrix, counts = classify.label_matrix(labels_table(), genes, 3, 6)
    assert matrix.labels["label"].tolist() == ["A:a1", "A:a2", "B:b1"]
    assert matrix.labels["n_pos"].tolist() == [4, 4, 3]
    # negatives: genes annotated in the same source (A: genes 0..9; B: 10..12), not positive
    assert matrix.labels["n_neg"].tolist() == [6, 6, 0]
    a1 = matrix.positive[:, 0]
    assert np.flatnonzero(a1).tolist() == [0, 1, 2, 3]
    assert np.flatnonzero(matrix.valid[:, 0]).tolist() == list(range(10))
    assert np.flatnonzero(matrix.valid[:, 2]).tolist() == [10, 11, 12]
    got = counts.set_index(["source", "what"])["count"]
    assert got["A", "terms in the labels table"] == 4 and got["A", "kept"] == 2
    assert got["A", "dropped: fewer than 3 genes in the embedding"] == 1
    assert got["A", "dropped: more than 6 genes"] == 1
    assert got["B", "dropped: fewer than 3 genes in the embedding"] == 1  # b_gone: 0 genes
    assert got["B", "genes annotated (in the embedding)"] == 3
    for source in ("A", "B"):  # every term accounted for
        dropped = sum(v for (s, w), v in got.items() if s == source and w.startswith("dropped"))
        assert dropped + got[source, "kept"] == got[source, "terms in the labels table"]


def test_label_matrix_equals_a_term_by_term_reckoning():
    rng = np.random.default_rng(3)
    genes = genes_table(200)
    ids = [f"G{i:03d}" for i in range(230)]  # the last 30 are not in the embedding
    rows = [
        (source, f"t{t:02d}", f"name {source} {t}", gene)
        for source in ("S2", "S1")
        for t in range(60)
        for gene in rng.choice(ids, rng.integers(0, 15))  # with repeats
    ]
    labels = pd.DataFrame(rows, columns=["source", "term_id", "term_name", "gene_id"])
    labels = labels.sample(frac=1, random_state=0)  # shuffled rows, a shuffled index
    matrix, _ = classify.label_matrix(labels, genes, 3, 10)
    # the oracle: sets, term by term
    in_embedding = set(genes["gene_id"])
    expected = []
    for source in sorted(set(labels["source"])):
        table = labels[labels["source"] == source]
        annotated = set(table["gene_id"]) & in_embedding
        for term in sorted(set(table["term_id"])):
            members = set(table.loc[table["term_id"] == term, "gene_id"]) & in_embedding
            if 3 <= len(members) <= 10:
                expected.append((f"{source}:{term}", members, annotated))
    assert len(expected) > 40
    assert matrix.labels["label"].tolist() == [label for label, _, _ in expected]
    gene_ids = genes["gene_id"].to_numpy()
    for j, (label, members, annotated) in enumerate(expected):
        assert set(gene_ids[matrix.positive[:, j]]) == members, label
        assert set(gene_ids[matrix.valid[:, j]]) == annotated, label
        row = matrix.labels.iloc[j]
        assert (row["n_pos"], row["n_neg"]) == (len(members), len(annotated - members)), label
        source, term = label.split(":")
        assert row["term_name"] == f"name {source} {int(term[1:])}", label


def test_label_matrix_errors():
    with pytest.raises(GexnetError, match="no label has"):
        classify.label_matrix(labels_table(), genes_table(), 20, 30)
    with pytest.raises(GexnetError, match=r"classifiers\.sources"):
        classify.label_matrix(labels_table(), genes_table(), 3, 6, sources=["HPO"])
    with pytest.raises(GexnetError, match="lacks columns"):
        classify.label_matrix(labels_table().drop(columns="term_name"), genes_table(), 3, 6)
    with pytest.raises(GexnetError, match="lists genes more than once"):
        classify.label_matrix(labels_table(), pd.concat([genes_table(), genes_table()]), 3, 6)


def test_planted_labels_from_the_truth_table():
    programs = pd.DataFrame(
        {"species": ["human", "human", "mouse", "human"], "gene_id": ["G1", "G2", "M1", "G3"],
         "program": ["program_0", None, "program_0", "program_1"]}
    )  # fmt: skip
    labels = classify.planted_labels(programs)
    assert labels["gene_id"].tolist() == ["G1", "G3"]
    assert set(labels["source"]) == {classify.PLANTED_SOURCE}
    assert classify.planted_labels(programs, "mouse")["gene_id"].tolist() == ["M1"]


def cli(*argv):
    assert gexnet_cli.main(["classify", *map(str, argv)]) == 0


def mouse_fixture(tmp_path):
    """Human labels, orthologs of every type, a mouse embedding and a truth table whose mouse
    memberships differ from the human ones."""
    human = pd.DataFrame(
        [("A", "t1", "one", h) for h in ("H0", "H1", "H2", "H3")]
        + [("A", "t2", "two", h) for h in ("H2", "H4", "H5", "H6")]
        + [("A", "t3", "three", "H5"), ("B", "b1", "bee", "H7"), ("B", "b1", "bee", "H8")],
        columns=["source", "term_id", "term_name", "gene_id"],
    )
    orthologs = pd.DataFrame(
        {"human_gene_id": ["H0", "H1", "H2", "H3", "H4", "H5", "H5", "H6", "H7", "H8"],
         "mouse_gene_id": ["M0", "M1", "M2", "M3", "M4", "M5", "M9", "M6", "M7", "M8"],
         "type": ["one2one"] * 5 + ["one2many"] * 2 + ["one2one"] * 3, "confidence": 1,
         "hcop_sources": 3}
    )  # fmt: skip
    genes = pd.DataFrame(
        {"gene_id": [f"M{i}" for i in range(10)], "symbol": [f"m{i}" for i in range(10)],
         "biotype": ["protein_coding"] * 9 + ["lncRNA"]}
    )  # fmt: skip
    programs = pd.DataFrame(
        {"species": ["human"] * 3 + ["mouse"] * 3, "gene_id": ["H0", "H1", "H2", "M0", "M1", "M3"],
         "program": ["program_0", "program_0", "program_0", "program_1", "program_1", "program_1"]}
    )  # fmt: skip
    for name, table in (("labels", human), ("orthologs", orthologs), ("programs", programs)):
        write_table(table, tmp_path / f"{name}.parquet")
    rng = np.random.default_rng(0)
    write_embedding(tmp_path / "mouse.parquet", genes, rng.standard_normal((10, 4)))
    return genes


def test_mouse_label_matrix_goes_through_one2one_orthologs(tmp_path):
    genes = mouse_fixture(tmp_path)
    labels, left_out = classify.read_labels(
        [tmp_path / "labels.parquet"], None, "mouse", tmp_path / "orthologs.parquet"
    )
    matrix, _ = classify.label_matrix(labels, genes.iloc[:9], 2, 6)
    assert matrix.labels["label"].tolist() == ["A:t1", "A:t2", "B:b1"]
    positives = {label: genes["gene_id"][np.flatnonzero(matrix.positive[:, i])].tolist()
                 for i, label in enumerate(matrix.labels["label"])}  # fmt: skip
    # H5 has only one2many partners: it leaves t2 (and t3, its only gene)
    assert positives == {"A:t1": ["M0", "M1", "M2", "M3"], "A:t2": ["M2", "M4", "M6"],
                         "B:b1": ["M7", "M8"]}  # fmt: skip
    # negatives: the source's other mapped genes; M5 (H5 unmapped) is unknown, not negative
    assert genes["gene_id"][np.flatnonzero(matrix.valid[:, 0])].tolist() == [
        "M0", "M1", "M2", "M3", "M4", "M6"]  # fmt: skip
    assert left_out.set_index("source")["count"].to_dict() == {"A": 1, "B": 0}


def test_mouse_counts_and_planted_labels_from_the_mouse_rows(tmp_path):
    mouse_fixture(tmp_path)
    settings = dict(SETTINGS, min_genes=2)
    cli("counts", tmp_path / "mouse.parquet", "--labels", tmp_path / "labels.parquet",
        "--programs", tmp_path / "programs.parquet", "--config", json.dumps({"classifiers": settings}),
        "--species", "mouse", "--orthologs", tmp_path / "orthologs.parquet",
        "--out", tmp_path / "counts.tsv")  # fmt: skip
    counts = pd.read_csv(tmp_path / "counts.tsv", sep="\t").set_index(["source", "what"])["count"]
    assert counts["A", "label genes without a 1:1 mouse ortholog (left out)"] == 1
    assert counts["A", "terms in the labels table"] == 3  # t3 lost its only gene, still counted
    assert counts["A", "dropped: fewer than 2 genes in the embedding"] == 1
    assert counts["A", "kept"] == 2
    # planted programs: the mouse rows as they are (program_1), not the human ones mapped
    labels, _ = classify.read_labels(
        [], tmp_path / "programs.parquet", "mouse", tmp_path / "orthologs.parquet"
    )
    assert labels["term_id"].unique().tolist() == ["program_1"]
    assert labels["gene_id"].tolist() == ["M0", "M1", "M3"]
    assert counts[classify.PLANTED_SOURCE, "kept"] == 1


def test_read_labels_errors(tmp_path):
    mouse_fixture(tmp_path)
    with pytest.raises(GexnetError, match="--species mouse needs --orthologs"):
        classify.read_labels([tmp_path / "labels.parquet"], None, "mouse")
    with pytest.raises(GexnetError, match="--orthologs is for --species mouse only"):
        classify.read_labels([tmp_path / "labels.parquet"], None, "human", tmp_path / "x")
    orthologs = pd.read_parquet(tmp_path / "orthologs.parquet")
    write_table(orthologs.drop(columns="type"), tmp_path / "no_type.parquet")
    with pytest.raises(GexnetError, match=r"no_type\.parquet: orthologs table lacks .*type"):
        classify.read_orthologs(tmp_path / "no_type.parquet")
    twice = pd.concat([orthologs, orthologs.iloc[[0]].assign(mouse_gene_id="M99")])
    write_table(twice, tmp_path / "twice.parquet")
    with pytest.raises(GexnetError, match=r"twice\.parquet: 1 genes are in more than one one2one"):
        classify.read_orthologs(tmp_path / "twice.parquet")
    truth = pd.read_parquet(tmp_path / "programs.parquet")
    write_table(truth[truth["species"] == "human"], tmp_path / "human_truth.parquet")
    with pytest.raises(GexnetError, match=r"human_truth\.parquet: no mouse gene is in a program"):
        classify.read_labels(
            [], tmp_path / "human_truth.parquet", "mouse", tmp_path / "orthologs.parquet"
        )
    write_table(pd.DataFrame({"source": ["A"]}), tmp_path / "bad_labels.parquet")
    with pytest.raises(GexnetError, match=r"bad_labels\.parquet: labels table lacks columns"):
        classify.read_labels([tmp_path / "bad_labels.parquet"], None)


def write_embedding(path, genes, vectors):
    write_table(embeddings.embedding_table(genes, vectors), path)


def test_shuffled_and_random_baselines_keep_genes(tmp_path):
    genes = genes_table()
    vectors = np.random.default_rng(0).standard_normal((30, 8)).astype(np.float32)
    write_embedding(tmp_path / "e.parquet", genes, vectors)
    shuffled = classify.shuffled_embedding(tmp_path / "e.parquet", 1)
    assert shuffled["gene_id"].tolist() == genes["gene_id"].tolist()
    sv = shuffled.filter(regex="^dim_").to_numpy()
    assert not np.array_equal(sv, vectors)
    assert sorted(map(tuple, sv)) == sorted(map(tuple, vectors))  # the same vectors, dealt anew
    rand = classify.random_embedding(tmp_path / "e.parquet", 1).filter(regex="^dim_").to_numpy()
    assert rand.shape == vectors.shape and abs(rand.std() - 1) < 0.2


def test_read_embedding_rejects_bad_files(tmp_path):
    write_table(pd.DataFrame({"gene_id": ["a"], "x": [1.0]}), tmp_path / "bad.parquet")
    with pytest.raises(GexnetError, match="dim_1"):
        embeddings.read_embedding(tmp_path / "bad.parquet")
    write_embedding(tmp_path / "nan.parquet", genes_table().iloc[:2], np.array([[np.nan], [1.0]]))
    with pytest.raises(GexnetError, match="non-finite"):
        embeddings.read_embedding(tmp_path / "nan.parquet")


@pytest.fixture(scope="module")
def corpus(small_compendium, tmp_path_factory):
    cfg, files = small_compendium
    base = tmp_path_factory.mktemp("classify")
    write_table(qc.sample_qc(files["human_gene"], cfg["qc"], 10**8), base / "qc.parquet")
    settings = copy.deepcopy({k: cfg[k] for k in ("genes", "normalize", "tokens", "dense")})
    settings["tokens"]["context"] = 32
    settings["dense"]["dtype"] = "float32"
    normalize.normalize(
        files["human_gene"], base / "qc.parquet", base / "corpus", settings, 10**8, 1
    )
    return base / "corpus"


def test_coexpression_embedding_matches_the_correlation_eigenvectors(corpus):
    from gexnet.formats.matrixfile import open_array

    dense = np.asarray(open_array(corpus / "corpus.json", "dense"), np.float64)
    table = classify.coexpression_embedding(
        corpus, dims=6, seed=0, block_values=37 * dense.shape[1]
    )
    keep = dense.std(axis=0) > 0
    correlation = np.corrcoef(dense[:, keep], rowvar=False)
    values, vectors = np.linalg.eigh(correlation)
    values, vectors = values[::-1][:6], vectors[:, ::-1][:, :6]
    ours = table.filter(regex="^dim_").to_numpy()[keep]
    assert table["gene_id"].is_unique and len(table) == dense.shape[1]
    for k in range(3):  # the leading, well-separated components, up to sign
        expected = vectors[:, k] * np.sqrt(values[k])
        sign = np.sign(expected @ ours[:, k])
        np.testing.assert_allclose(sign * ours[:, k], expected, atol=2e-3 * np.abs(expected).max())


def test_coexpression_embedding_does_not_depend_on_the_block_budget(corpus):
    from gexnet.formats.matrixfile import open_array

    n, g = open_array(corpus / "corpus.json", "dense").shape
    whole = classify.coexpression_embedding(corpus, dims=6, seed=3, block_values=n * g)
    # a budget below one sample's genes still reads one sample a block
    for budget in (7 * g + 5, g // 2):
        blocks = classify.coexpression_embedding(corpus, dims=6, seed=3, block_values=budget)
        pd.testing.assert_frame_equal(blocks, whole, check_exact=False, atol=1e-5, rtol=1e-4)


def source_metrics():
    """Two sources: on P the model wins every label; on H (twice as many labels) it loses each
    by a little, so that a pooled comparison would call the model the winner."""
    p, h = [f"P:{i}" for i in range(10)], [f"H:{i}" for i in range(20)]
    rng = np.random.default_rng(0)
    model_p, model_h = rng.uniform(0.85, 0.95, 10), rng.uniform(0.45, 0.55, 20)
    shuffled_p = np.full(10, 0.5)
    shuffled_p[0] = model_p[0]  # a tie counts half
    shuffled_h = model_h + np.linspace(0.001, 0.02, 20)  # distinct differences: exact test

    def table(labels, auroc):
        return pd.DataFrame({"label": labels, "source": [x.split(":")[0] for x in labels],
                             "auroc": auroc})  # fmt: skip

    return (
        {
            "model": table(p + h, np.r_[model_p, model_h]),
            "shuffled": table(p + h, np.r_[shuffled_p, shuffled_h]),
            "partial": table(p[:5] + h, np.r_[model_p[:5] + 0.01, model_h]),
        },
        model_p,
        model_h,
    )


def test_comparison_is_per_source():
    metrics, model_p, model_h = source_metrics()
    table = classify.comparison(metrics, "model").set_index(["source", "embedding"])
    assert table.index.tolist() == [
        (s, e) for s in ("H", "P") for e in ("model", "shuffled", "partial")
    ]
    assert table.loc["P", "labels"].eq(5).all()  # the P labels every embedding has
    assert table.loc["H", "labels"].eq(20).all()
    np.testing.assert_allclose(table.loc[("P", "model"), "mean_auroc"], model_p[:5].mean())
    np.testing.assert_allclose(table.loc[("H", "model"), "median_auroc"], np.median(model_h))
    assert table.loc[("P", "shuffled"), "share_won_vs_model"] == 0.1  # 4 lost, 1 tie of 5
    assert table.loc[("H", "shuffled"), "share_won_vs_model"] == 1.0
    assert table.loc[("P", "partial"), "share_won_vs_model"] == 1.0
    # all 20 differences of one sign: the exact two-sided p is 2 / 2^20
    np.testing.assert_allclose(table.loc[("H", "shuffled"), "wilcoxon_p_vs_model"], 2.0**-19)
    assert table.loc[("H", "partial"), "wilcoxon_p_vs_model"] == 1.0  # identical on H
    assert np.isnan(table.loc[("P", "model"), "share_won_vs_model"])


def test_comparison_keeps_a_source_without_shared_labels_and_checks_its_input():
    metrics, _, _ = source_metrics()
    metrics["partial"] = metrics["partial"][metrics["partial"]["source"] == "H"]
    table = classify.comparison(metrics, "model").set_index(["source", "embedding"])
    assert table.loc["P", "labels"].eq(0).all() and table.loc["P", "mean_auroc"].isna().all()
    with pytest.raises(GexnetError, match="reference other is not among"):
        classify.comparison(metrics, "other")
    with pytest.raises(GexnetError, match="metrics of partial lack columns"):
        classify.comparison(
            dict(metrics, partial=metrics["partial"].drop(columns="source")), "model"
        )
    with pytest.raises(GexnetError, match="share no scored label"):
        classify.comparison(dict(metrics, partial=metrics["partial"].iloc[:0]), "model")


def planted_embedding(tmp_path, n_coding=400, n_lnc=60, dims=12, programs=4, seed=0):
    """Genes with program vectors plus noise; labels: each program's coding members."""
    rng = np.random.default_rng(seed)
    n = n_coding + n_lnc
    program = rng.integers(-1, programs, n)  # -1: no program
    centers = rng.standard_normal((programs, dims)) * 1.5
    vectors = rng.standard_normal((n, dims)) + np.where(program[:, None] >= 0, centers[program], 0)
    genes = pd.DataFrame(
        {"gene_id": [f"G{i:04d}" for i in range(n)], "symbol": [f"S{i}" for i in range(n)],
         "biotype": ["protein_coding"] * n_coding + ["lncRNA"] * n_lnc}
    )  # fmt: skip
    write_embedding(tmp_path / "emb.parquet", genes, vectors.astype(np.float32))
    members = genes[(program >= 0) & (genes["biotype"] == "protein_coding").to_numpy()]
    labels = pd.DataFrame(
        {"source": "P", "term_id": [f"p{k}" for k in program[members.index]],
         "term_name": "program", "gene_id": members["gene_id"]}
    )  # fmt: skip
    noise = pd.DataFrame(
        {"source": "P", "term_id": "noise", "term_name": "no signal",
         "gene_id": members["gene_id"].sample(40, random_state=seed)}
    )  # fmt: skip
    return tmp_path / "emb.parquet", pd.concat([labels, noise]), genes, program


def test_cross_validated_metrics_match_scikit_learn_per_fold(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score, roc_auc_score

    from gexnet.analysis import logreg

    path, labels, _, _ = planted_embedding(tmp_path)
    settings = dict(SETTINGS, min_genes=10, max_genes=500, folds=4)
    parts = [classify.cross_validated_metrics(path, labels, settings, 5, s, 2) for s in (0, 1)]
    table = pd.concat(parts).set_index("label").sort_index()
    assert len(table) == 5 and table.index.is_unique  # 4 programs and the noise label
    assert (table.drop(index="P:noise")["auroc"] > 0.9).all()
    assert abs(table.loc["P:noise", "auroc"] - 0.5) < 0.2
    # the oracle: one scikit-learn model per label and fold, the same folds, AUROC per fold
    g, x = embeddings.read_embedding(path)
    train = (g["biotype"] == "protein_coding").to_numpy()
    x, ids = x[train], g.loc[train, "gene_id"].to_numpy()
    folds = logreg.fold_of(len(ids), 4, 5)
    annotated = np.isin(ids, labels["gene_id"])
    for label, row in table.iterrows():
        term = label.split(":")[1]
        y = np.isin(ids, labels.loc[labels["term_id"] == term, "gene_id"])
        aucs, aps = [], []
        for f in range(4):
            fit_rows, test_rows = annotated & (folds != f), annotated & (folds == f)
            model = LogisticRegression(C=1.0, tol=1e-8, max_iter=10_000)
            model.fit(x[fit_rows], y[fit_rows])
            if 0 < y[test_rows].sum() < test_rows.sum():
                scores = model.decision_function(x[test_rows])
                aucs.append(roc_auc_score(y[test_rows], scores))
                aps.append(average_precision_score(y[test_rows], scores))
        assert abs(row["auroc"] - np.mean(aucs)) < 0.01, (label, row["auroc"], np.mean(aucs))
        assert abs(row["auprc"] - np.mean(aps)) < 0.01, (label, row["auprc"], np.mean(aps))
        assert row["n_pos"] == y.sum() and row["n_neg"] == (annotated & ~y).sum()


def test_transfer_ranks_lncrnas_of_a_program_first(tmp_path):
    path, labels, genes, program = planted_embedding(tmp_path)
    settings = dict(SETTINGS, min_genes=10, max_genes=500)
    predictions, top = classify.transfer(path, labels, settings, top=3)
    lnc = genes.index[genes["biotype"] == "lncRNA"]
    assert len(predictions) == len(lnc) * 5
    assert (np.diff(predictions["label"].cat.codes.to_numpy()) >= 0).all(), "sorted by label"
    assert predictions["percentile"].between(0, 100).all()
    for k in range(4):
        part = predictions[predictions["label"] == f"P:p{k}"].set_index("gene_id")
        assert len(part) == len(lnc) and part["percentile"].max() == 100
        own = part.loc[genes.loc[lnc[program[lnc] == k], "gene_id"], "percentile"]
        other = part.loc[genes.loc[lnc[program[lnc] != k], "gene_id"], "percentile"]
        assert own.median() > other.quantile(0.9), k
    assert top.groupby("gene_id").size().eq(3).all()
    assert (top.groupby("gene_id")["percentile"].apply(lambda p: p.is_monotonic_decreasing)).all()


def test_transfer_says_why_there_is_no_lncrna(tmp_path):
    path, labels, genes, _ = planted_embedding(tmp_path)
    coding = genes["biotype"] == "protein_coding"
    _, vectors = embeddings.read_embedding(path)
    write_embedding(tmp_path / "coding.parquet", genes[coding], vectors[coding.to_numpy()])
    settings = dict(SETTINGS, min_genes=10, max_genes=500)
    with pytest.raises(GexnetError, match=r"coding\.parquet: .*vocabulary has no lncRNA"):
        classify.transfer(tmp_path / "coding.parquet", labels, settings)
    both = dict(settings, train_biotypes=["protein_coding", "lncRNA"])
    with pytest.raises(GexnetError, match=r"emb\.parquet: .*lncRNAs are among .*train_biotypes"):
        classify.transfer(path, labels, both)
