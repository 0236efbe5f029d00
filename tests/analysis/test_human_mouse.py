"""The human–mouse comparison stage: sides from separate, joint and pseudo-species embeddings,
the bad inputs, and every table on a planted structure (a rotated, noised copy whose diverged
genes moved), with the controls where they must be."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ortho_group
from sklearn.metrics import roc_auc_score

from gexnet import cli as gexnet_cli
from gexnet import config
from gexnet.analysis import dna, human_mouse
from gexnet.errors import GexnetError
from gexnet.formats.embeddings import embedding_table
from gexnet.formats.io import write_table

N, D, CLUSTERS = 600, 16, 12


def planted(seed: int = 0, diverged: int = 150):
    """Human and mouse embeddings of N genes in clusters; mouse = human rotated + noise, except
    `diverged` genes whose mouse copy sits in another cluster. Returns the two tables, the
    ortholog table (plus a pair of genes in neither embedding, and a one2many pair) and the
    diverged mouse genes."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CLUSTERS, D))
    cluster = rng.integers(0, CLUSTERS, N)
    human = centres[cluster] + 0.35 * rng.normal(size=(N, D))
    moved = rng.choice(N, diverged, replace=False)
    mouse_cluster = cluster.copy()
    mouse_cluster[moved] = (cluster[moved] + rng.integers(1, CLUSTERS, diverged)) % CLUSTERS
    mouse = centres[mouse_cluster] + 0.35 * rng.normal(size=(N, D))
    mouse[~np.isin(np.arange(N), moved)] = human[~np.isin(np.arange(N), moved)]
    mouse = mouse @ ortho_group.rvs(D, random_state=seed) + 0.05 * rng.normal(size=(N, D))
    h_ids = [f"ENSG{i:011d}" for i in range(N)]
    m_ids = [f"ENSMUSG{i:011d}" for i in range(N)]

    def table(ids, prefix, vectors):
        genes = pd.DataFrame({"gene_id": ids, "symbol": [f"{prefix}{i}" for i in range(N)],
                              "biotype": "protein_coding"})  # fmt: skip
        return embedding_table(genes, vectors.astype(np.float32))

    orthologs = pd.DataFrame({"human_gene_id": h_ids, "mouse_gene_id": m_ids,
                              "type": "one2one", "source": "biomart"})  # fmt: skip
    extra = pd.DataFrame(
        {"human_gene_id": ["ENSG_ABSENT", h_ids[0]], "mouse_gene_id": ["ENSMUSG_ABSENT", "X"],
         "type": ["one2one", "one2many"], "source": "biomart"}
    )  # fmt: skip
    orthologs = pd.concat([orthologs, extra], ignore_index=True)
    return (
        table(h_ids, "H", human),
        table(m_ids, "M", mouse),
        orthologs,
        set(np.array(m_ids)[moved]),
    )


SETTINGS = config.validate({})["human_mouse"] | {
    "refinements": 3,
    "held_out_fraction": 0.4,
    "unsupervised_init_size": 600,
    "dictionary_fractions": [0.1, 0.5, 1.0],
}


@pytest.fixture(scope="module")
def separate(tmp_path_factory):
    d = tmp_path_factory.mktemp("hm")
    human, mouse, orthologs, moved = planted()
    write_table(human, d / "human.parquet")
    write_table(mouse, d / "mouse.parquet")
    write_table(orthologs, d / "orthologs.parquet")
    sides = human_mouse.load_sides([d / "human.parquet", d / "mouse.parquet"], orthologs)
    rng = np.random.default_rng(1)
    dna_table = orthologs.iloc[:N][["human_gene_id", "mouse_gene_id"]].assign(
        dna_similarity=rng.uniform(0.5, 2.0, N)
    )
    tables = human_mouse.compare(sides, SETTINGS, seed=4, name="planted", dna_table=dna_table)
    return d, sides, tables, moved


def test_sides_keep_the_one_to_one_pairs_of_both_embeddings(separate):
    _, sides, _, _ = separate
    assert sides.kind == "separate" and len(sides.pairs) == N  # absent and one2many pairs out
    ia, ib = sides.pairs["ia"].to_numpy(), sides.pairs["ib"].to_numpy()
    assert (sides.human["gene_id"].to_numpy()[ia] == sides.pairs["human_gene_id"]).all()
    assert (sides.mouse["gene_id"].to_numpy()[ib] == sides.pairs["mouse_gene_id"]).all()


def test_alignment_finds_the_planted_orthologs_and_controls_sit_at_chance(separate):
    _, _, tables, moved = separate
    pairs = tables["pairs"]
    held = pairs[pairs["split"] == "held_out"]
    assert held["mouse_gene_id"].nunique() == round(0.4 * N)
    conserved = held[~held["mouse_gene_id"].isin(moved)]
    by_method = conserved.groupby("method")["cosine_rank_human_to_mouse"]
    assert (by_method.apply(lambda r: (r == 1).mean())["supervised"]) >= 0.9
    # the aligned similarity tells conserved orthologs from the diverged ones
    for method in ("supervised", "unsupervised"):
        rows = held[held["method"] == method]
        auroc = roc_auc_score(~rows["mouse_gene_id"].isin(moved), rows["similarity"])
        assert auroc >= 0.95, (method, auroc)
    shuffled = held[held["method"] == "shuffled"]
    assert abs(shuffled["cosine_rank_human_to_mouse"].median() / (N / 2) - 1) < 0.2
    auroc = roc_auc_score(~shuffled["mouse_gene_id"].isin(moved), shuffled["similarity"])
    assert abs(auroc - 0.5) < 0.15  # ~60 diverged of 240 held out: chance within its noise
    # the unaligned embeddings of two models share no orientation
    none = held[held["method"] == "none"]["cosine_rank_human_to_mouse"]
    assert (none == 1).mean() < 0.05


def test_rates_equal_the_pairs_table(separate):
    _, _, tables, _ = separate
    pairs, methods = tables["pairs"], tables["methods"]
    for row in methods.itertuples():
        subset = pairs[pairs["method"] == row.method]
        if row.pairs == "held_out":
            subset = subset[subset["split"] == "held_out"]
        ranks = subset[f"{row.measure}_rank_{row.direction}"]
        assert row.n_pairs == len(subset)
        assert row.rank1 == pytest.approx((ranks == 1).mean())
        assert row.top10 == pytest.approx((ranks <= 10).mean())
        assert row.median_rank == pytest.approx(ranks.median())
    published = methods.dropna(subset=["published_rank1"])
    assert set(published["method"]) == {"supervised", "unsupervised", "shuffled"}
    assert (published["pairs"] == "all").all() and (published["measure"] == "cosine").all()


def test_tables_hold_what_the_module_documents(separate):
    tables = separate[2]
    assert set(tables) == set(human_mouse.TABLES)
    assert (tables["refinements"].groupby("method")["chosen"].sum() == 1).all()
    mapping = tables["mappings"].query("method == 'supervised'").filter(like="dim_").to_numpy()
    np.testing.assert_allclose(mapping @ mapping.T, np.eye(D), atol=1e-4)
    curve = tables["curve"]
    assert sorted(curve["fraction"].unique()) == [0.1, 0.5, 1.0]
    assert set(curve["direction"]) == {"human_to_mouse", "mouse_to_human"}
    pca = tables["pca"]
    assert set(pca["stage"]) == {"before", "after"} and len(pca) == 2 * 2 * N
    groups = tables["groups"]
    assert groups["pairs"].sum() == tables["pairs"]["group"].notna().sum() > 0
    assert (tables["pairs"].dropna(subset=["group"])["method"] == "supervised").all()
    for table in tables.values():
        assert (table["comparison"] == "planted").all()


def test_joint_and_pseudo_embeddings_give_their_sides(tmp_path):
    human, mouse, orthologs, _ = planted()
    joint = pd.concat([human.assign(species="human"), mouse.assign(species="mouse")])
    cols = ["gene_id", "symbol", "biotype", "species"]
    joint = joint[cols + [c for c in joint if c.startswith("dim_")]]
    write_table(joint, tmp_path / "joint.parquet")
    sides = human_mouse.load_sides([tmp_path / "joint.parquet"], orthologs)
    assert sides.kind == "joint" and len(sides.pairs) == N
    pseudo = joint.assign(species=["human"] * N + ["human_pseudo"] * N)
    pseudo["gene_id"] = list(human["gene_id"]) * 2
    write_table(pseudo, tmp_path / "pseudo.parquet")
    sides = human_mouse.load_sides([tmp_path / "pseudo.parquet"], None)
    assert sides.kind == "pseudo" and sides.names == ("human", "human_pseudo")
    assert (sides.pairs["ia"] == sides.pairs["ib"]).all() and len(sides.pairs) == N


def test_bad_inputs_get_one_clear_error(separate, tmp_path):
    d, _, _, _ = separate
    human, mouse, orthologs, _ = planted()
    write_table(human.assign(species="human"), tmp_path / "human_only.parquet")
    with pytest.raises(GexnetError, match=r"human_only.parquet: no mouse genes in the embedding"):
        human_mouse.load_sides([tmp_path / "human_only.parquet"], orthologs)
    with pytest.raises(GexnetError, match=r"mouse.parquet: no mouse genes"):
        write_table(mouse.assign(species="human"), tmp_path / "mouse.parquet")
        human_mouse.load_sides([d / "human.parquet", tmp_path / "mouse.parquet"], orthologs)
    other = orthologs.assign(human_gene_id=lambda t: "X" + t["human_gene_id"])
    with pytest.raises(GexnetError, match=r"none of the 601 1:1 ortholog pairs has both genes"):
        human_mouse.load_sides([d / "human.parquet", d / "mouse.parquet"], other)
    narrow = mouse.drop(columns=["dim_16"])
    write_table(narrow, tmp_path / "narrow.parquet")
    with pytest.raises(GexnetError, match=r"differ in width \(16 and 15\)"):
        human_mouse.load_sides([d / "human.parquet", tmp_path / "narrow.parquet"], orthologs)
    few = orthologs.iloc[:3]
    sides = human_mouse.load_sides([d / "human.parquet", d / "mouse.parquet"], few)
    with pytest.raises(GexnetError, match=r"dictionary"):
        human_mouse.compare(sides, SETTINGS, 0, "few")
    with pytest.raises(GexnetError, match=r"no column source"):
        dna.one_to_one(orthologs.drop(columns=["source"]))


def test_the_commands_write_the_tables_and_figures(separate, tmp_path):
    d, _, _, _ = separate
    out = tmp_path / "planted"
    settings = '{"human_mouse": {"refinements": 1, "dictionary_fractions": [0.5, 1.0], ' \
        '"unsupervised_init_size": 300}}'  # fmt: skip
    argv = ["human-mouse", "align", str(d / "human.parquet"), str(d / "mouse.parquet"),
            "--orthologs", str(d / "orthologs.parquet"), "--name", "planted", "--config",
            settings, "--out", str(out)]  # fmt: skip
    assert gexnet_cli.main(argv) == 0
    assert {p.stem for p in out.glob("*.parquet")} == set(human_mouse.TABLES)
    figures = {"species_pca": ["pca"], "ortholog_ranks": ["pairs"],
               "dictionary_curve": ["curve"], "rna_dna_groups": ["pairs", "groups"]}  # fmt: skip
    for kind, tables in figures.items():
        argv = ["figure", "draw", kind, *(f"{t}={out / t}.parquet" for t in tables),
                "--out", str(tmp_path / f"{kind}.png")]  # fmt: skip
        assert gexnet_cli.main(argv) == 0
        assert (tmp_path / f"{kind}.png").stat().st_size > 5000
    summary = tmp_path / "summary.tsv"
    assert gexnet_cli.main(["human-mouse", "summary", str(out / "methods.parquet"),
                            "--out", str(summary)]) == 0  # fmt: skip
    table = pd.read_csv(summary, sep="\t")
    assert table["pairs"].iloc[0] == "held_out" and len(table) == 4 * 2 * 2 * 2
