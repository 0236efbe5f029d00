"""gexnet explore's answers against scipy's cosine distance (the oracle), its gene names, the
page's quantisation bound, the aligned pair and the exact neighbours of the map."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

from gexnet.analysis.explore import Explorer, aligned_embedding, edit_distance, parse_expression
from gexnet.errors import GexnetError
from gexnet.formats.embeddings import embedding_table
from gexnet.report import explorer as page


def two_species(n=300, d=16, seed=0) -> Explorer:
    """Human and mouse genes; APOE/Apoe in both species, HLA-A with a hyphen, an alias."""
    rng = np.random.default_rng(seed)
    symbols = [f"G{i}" for i in range(n)]
    symbols[:4] = ["APOE", "APP", "BRCA1", "HLA-A"]
    human = pd.DataFrame({"gene_id": [f"ENSG{i:011d}" for i in range(n)], "symbol": symbols,
                          "biotype": "protein_coding", "species": "human"})  # fmt: skip
    mouse = pd.DataFrame({"gene_id": [f"ENSMUSG{i:011d}" for i in range(n)],
                          "symbol": [s.capitalize() for s in symbols],
                          "biotype": "protein_coding", "species": "mouse"})  # fmt: skip
    genes = pd.concat([human, mouse], ignore_index=True)
    genes["aliases"] = ""
    genes.loc[2, "aliases"] = "BRCC1|RNF53"
    return Explorer(genes, rng.normal(size=(len(genes), d)).astype(np.float32), name="toy")


def oracle_rank(ex: Explorer, query: np.ndarray, exclude, species=None) -> list[str]:
    cos = 1 - cdist(query[None, :].astype(np.float64), ex.vectors.astype(np.float64), "cosine")[0]
    keep = [i for i in range(len(cos)) if i not in exclude
            and (species is None or ex.genes.at[i, "species"] == species)]  # fmt: skip
    keep.sort(key=lambda i: (-cos[i], i))
    return ex.genes["gene_id"].to_numpy()[keep].tolist(), cos


def test_similar_equals_scipy_brute_force():
    ex = two_species()
    got = ex.similar("human:APOE", top=50)
    want, cos = oracle_rank(ex, ex.vectors[0], {0})
    assert got["gene_id"].tolist() == want[:50]
    assert np.allclose(got["cosine"], np.sort(np.delete(cos, 0))[::-1][:50], atol=1e-12)
    mouse_only = ex.similar("human:APOE", top=20, species="mouse")
    assert mouse_only["gene_id"].tolist() == oracle_rank(ex, ex.vectors[0], {0}, "mouse")[0][:20]


def test_calculator_sums_unit_vectors_and_leaves_the_terms_out():
    ex = two_species()
    unit = ex.vectors / np.linalg.norm(ex.vectors, axis=1, keepdims=True)
    got = ex.calc("human:APOE - human:APP + human:BRCA1", top=30)
    want, _ = oracle_rank(ex, unit[0] - unit[1] + unit[2], {0, 1, 2})
    assert got["gene_id"].tolist() == want[:30]
    assert ex.calc("-human:APP +human:APOE + human:BRCA1", top=30)["gene_id"].tolist() == want[:30]


def test_similarity_counts_the_genes_closer_to_each():
    ex = two_species()
    table = ex.similarity("human:APOE", "human:APP")
    cos = 1 - cdist(ex.vectors[[0, 1]].astype(np.float64), ex.vectors.astype(np.float64), "cosine")
    others = np.ones(len(ex.vectors), bool)
    others[[0, 1]] = False
    assert np.isclose(table["cosine"][0], cos[0, 1])
    assert table["genes_closer"].tolist() == [int((cos[0, others] > cos[0, 1]).sum()),
                                             int((cos[1, others] > cos[0, 1]).sum())]  # fmt: skip
    assert np.isclose(table["share_closer"][0], table["genes_closer"][0] / others.sum())


@pytest.mark.parametrize(("name", "gene"), [
    ("ENSG00000000002", 2), ("ENSG00000000002.7", 2), ("ensg00000000002", 2),
    ("brcc1", 2), ("RNF53", 2), ("human:apoe", 0), ("mouse:APOE", 300), ("Apoe", 300),
    ("human:HLA-A", 3), ("mouse:Hla-a", 303),
])  # fmt: skip
def test_names_resolve(name, gene):
    ex = two_species()
    if name == "Apoe":  # exact case wins within a species, but both species match: ask
        with pytest.raises(GexnetError, match=r"names genes of human and mouse.*human:APOE"):
            ex.resolve(name)
        assert ex.resolve(name, species="mouse") == gene
        return
    assert ex.resolve(name) == gene


def test_unknown_and_ambiguous_names_say_what_to_do():
    ex = two_species()
    with pytest.raises(GexnetError, match=r"no gene named 'BRCA2'; close symbols: BRCA1"):
        ex.resolve("BRCA2")
    with pytest.raises(GexnetError, match=r"no gene named 'QQQQQQ'$"):
        ex.resolve("QQQQQQ")
    with pytest.raises(GexnetError, match="names genes of human and mouse"):
        ex.similar("APOE")
    genes = ex.genes.copy()
    genes.loc[5, "symbol"] = "APP"  # two human genes named APP
    with pytest.raises(GexnetError, match=r"names several genes.*Ensembl ID"):
        Explorer(genes, ex.vectors).resolve("human:APP")


def test_expressions_parse_and_bad_ones_are_named():
    assert parse_expression("APOE - APP + BRCA1") == [(1, "APOE"), (-1, "APP"), (1, "BRCA1")]
    assert parse_expression("HLA-A -APP") == [(1, "HLA-A"), (-1, "APP")]
    for bad in ("", "APOE -", "APOE - + APP"):
        with pytest.raises(GexnetError, match="calculator"):
            parse_expression(bad)
    assert edit_distance("kitten", "sitting") == 3


def test_zero_vectors_and_cancelling_sums_are_errors():
    ex = two_species()
    vectors = ex.vectors.copy()
    vectors[7] = 0
    with pytest.raises(GexnetError, match="zero vector"):
        Explorer(ex.genes, vectors)
    with pytest.raises(GexnetError, match="cancels"):
        ex.calc("human:APOE - human:APOE")


def test_quantised_cosines_stay_within_their_radius():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(2000, 64)).astype(np.float32) * rng.gamma(1, size=(2000, 1))
    codes, scale, radius = page.quantise(vectors)
    unit = vectors / np.linalg.norm(vectors.astype(np.float64), axis=1, keepdims=True)
    q = rng.normal(size=(50, 64))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    error = np.abs(unit @ q.T - (codes * scale[:, None].astype(np.float64)) @ q.T)
    assert (error <= radius[:, None]).all()
    assert radius.max() < 0.02  # tight enough that few genes need re-scoring


def test_neighbours_are_the_exact_ones():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(700, 8))
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    index, distance = page.neighbours(unit, 6, chunk=128)
    full = cdist(unit, unit, "cosine")
    np.fill_diagonal(full, np.inf)
    assert (index[:, 0] == np.arange(700)).all() and (distance[:, 0] == 0).all()
    assert (index[:, 1:] == np.argsort(full, axis=1, kind="stable")[:, :5]).all()
    assert np.allclose(distance[:, 1:], np.sort(full, axis=1)[:, :5], atol=1e-6)


def test_aligned_pair_maps_the_human_side(tmp_path):
    from gexnet.analysis import align

    rng = np.random.default_rng(3)
    human = embedding_table(pd.DataFrame({"gene_id": ["h1", "h2", "h3"], "symbol": ["A", "B", "C"],
                                          "biotype": "protein_coding", "species": "human"}),
                            rng.normal(size=(3, 4)).astype(np.float32))  # fmt: skip
    mouse = embedding_table(pd.DataFrame({"gene_id": ["m1", "m2"], "symbol": ["a", "b"],
                                          "biotype": "protein_coding", "species": "mouse"}),
                            rng.normal(size=(2, 4)).astype(np.float32))  # fmt: skip
    w = np.linalg.qr(rng.normal(size=(4, 4)))[0]
    mappings = pd.DataFrame(w, columns=[f"dim_{i + 1}" for i in range(4)])
    mappings = pd.concat([mappings.assign(method="none", row=range(4)),
                          mappings.assign(method="supervised", row=range(4))])  # fmt: skip
    for name, table in (("h", human), ("m", mouse), ("w", mappings)):
        table.to_parquet(tmp_path / f"{name}.parquet")
    table = aligned_embedding(
        tmp_path / "h.parquet", tmp_path / "m.parquet", tmp_path / "w.parquet"
    )
    assert table["species"].tolist() == ["human"] * 3 + ["mouse"] * 2
    dims = table.filter(regex="^dim_").to_numpy()
    human_vectors = human.filter(regex="^dim_").to_numpy()
    assert np.allclose(dims[:3], align.normalize(human_vectors.astype(np.float64)) @ w, atol=1e-6)
    with pytest.raises(GexnetError, match="no shuffled mapping"):
        aligned_embedding(
            tmp_path / "h.parquet", tmp_path / "m.parquet", tmp_path / "w.parquet", "shuffled"
        )


def test_a_map_of_other_genes_is_refused(tmp_path):
    ex = two_species(n=20)
    pd.DataFrame({"gene_id": ex.genes["gene_id"][::-1], "x": 0.0, "y": 0.0}).to_parquet(
        tmp_path / "m.parquet"
    )
    with pytest.raises(GexnetError, match="not the embedding's"):
        page.read_map(tmp_path / "m.parquet", ex.genes)


def test_cli_prints_tsv(tmp_path):
    ex = two_species()
    embedding_table(ex.genes, ex.vectors).to_parquet(tmp_path / "e.parquet")
    out = subprocess.run([sys.executable, "-m", "gexnet", "explore", "similar", "human:APOE",
                          "--embedding", str(tmp_path / "e.parquet"), "--top", "5", "--tsv"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    lines = out.splitlines()
    assert lines[0].split("\t") == ["rank", "gene_id", "symbol", "species", "cosine"]
    assert [line.split("\t")[1] for line in lines[1:]] == ex.similar("human:APOE", 5)[
        "gene_id"
    ].tolist()
    bad = subprocess.run([sys.executable, "-m", "gexnet", "explore", "similar", "NOPE1",
                          "--embedding", str(tmp_path / "e.parquet")], capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and "no gene named 'NOPE1'" in bad.stderr
