"""Bring your own matrix: a counts table and a sample sheet, converted to the ARCHS4 layout.

Counts come as TSV (genes in rows, first column the gene ID), Parquet (the same, gene IDs in the
first column or the pandas index) or h5ad (samples × genes in X, dense or sparse). Gene IDs may be
Ensembl (with or without version), Entrez or symbols; the type is detected and every gene is keyed
by its Ensembl 100 ID (primary assembly) through the shared `genome.symbol_mapper`, so later
stages never see which source a file came from.

The counts are streamed twice (checks and per-row totals, then writing) in blocks of at most
`block_values` counts: a TSV by blocks of gene rows (a line is a row), Parquet and h5ad by blocks
of samples. Memory is set by the budget, not by the matrix.

Choices, each reported (counts per row):
- Symbols map by current symbol, ignoring case, then by HGNC previous or alias symbol where only
  one gene has it (rescued_by_alias); a symbol of several genes is ambiguous and dropped. An
  Entrez ID listed on several genes goes to the lowest Ensembl ID (independent of row order).
- Genes that map to no Ensembl 100 gene of the species are dropped (no symbol, no biotype).
- Several rows mapping to one Ensembl ID: the row with the highest total count is kept (the first
  on ties) and the rest dropped. Summing could count the same reads twice where two models of one
  gene overlap, and keeping one row is what ARCHS4 itself holds per gene.
- singlecellprobability comes from the sheet's column of that name, else NaN (unknown): bulk
  matrices carry no single-cell score, and a made-up 0 would pass QC for the wrong reason.

The shared pieces (reading TSV matrices, count checks, duplicate resolution, gene features) are
used by `gexnet.sources.geo` too.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import warnings
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from gexnet import __version__
from gexnet.errors import GexnetError, first_line
from gexnet.formats.archs4 import BLOCK_VALUES, Archs4Writer
from gexnet.formats.io import atomic_path, is_gzip, open_text
from gexnet.formats.tables import SPECIES
from gexnet.sources import genome

log = logging.getLogger(__name__)

IdType = Literal["ensembl", "ensembl_versioned", "entrez", "symbol"]
RESERVED_SHEET_COLUMNS = ("geo_accession", "series_id")  # filled from `sample` and `series`
_UINT32_MAX = int(np.iinfo(np.uint32).max)
_VERSIONED = re.compile(r"^ENS[A-Z]*G\d+\.\d+")
_MISSING_TEXT = ("", "NA", "NaN", "nan", "N/A", "NULL", "null", "None")
_MAX_LISTED = 5
_MAGIC = {b"PAR1": "parquet", b"\x89HDF\r\n\x1a\n": "h5ad"}


# --- small helpers shared with gexnet.sources.geo ------------------------------------------------------


def check_species(species: str) -> None:
    if species not in SPECIES:
        raise GexnetError(f"unknown species {species!r}; expected one of {', '.join(SPECIES)}")


def listed(names: Sequence[object]) -> str:
    """A few names for a one-line message, and how many more there are."""
    shown = ", ".join(str(n) for n in names[:_MAX_LISTED])
    more = len(names) - _MAX_LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def first_rows(path: Path, n: int) -> list[list[str]]:
    """The first `n` rows of a TSV file as fields, read raw: pandas renames repeated column
    names (S1, S1.1), which would hide duplicate samples."""
    try:
        with open_text(path, errors="replace") as handle:
            rows = []
            for row in csv.reader(handle, delimiter="\t"):
                rows.append(row)
                if len(rows) == n:
                    break
    except (OSError, EOFError, csv.Error) as exc:
        raise GexnetError(f"{path}: cannot read: {first_line(exc)}") from exc
    return rows


def check_unique(names: Sequence[str], path: Path, what: str) -> None:
    repeated = pd.Index(names)
    repeated = repeated[repeated.duplicated()].unique()
    if len(repeated):
        raise GexnetError(f"{path}: duplicate {what}: {listed(list(repeated))}")


# --- counts: checks ----------------------------------------------------------------------------


def numeric(block: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """A block of counts as a numeric array, and its raw text where some was not numeric
    (for the error message)."""
    if not isinstance(block, pd.DataFrame):
        return np.asarray(block), None
    if all(isinstance(t, np.dtype) and t.kind in "iuf" for t in block.dtypes):
        return block.to_numpy(), None
    text = block.to_numpy(object)
    values = block.apply(pd.to_numeric, errors="coerce")
    return values.to_numpy(np.float64, na_value=np.nan), text


def counts_array(
    block: pd.DataFrame | np.ndarray,
    genes: Sequence[str],
    samples: Sequence[str],
    path: Path,
    hint: str = "",
) -> np.ndarray:
    """The block (genes × samples) as numbers, after checking that every count is a whole
    number in 0..2^32-1; floats that are whole (3.0) are fine, as exported matrices have them.

    Raises a one-line GexnetError naming the first offending gene and sample.
    """
    values, text = numeric(block)
    kind = values.dtype.kind
    if kind == "u":
        bad = values > _UINT32_MAX
    elif kind == "i":
        bad = (values < 0) | (values > _UINT32_MAX)
    elif kind == "f":
        with np.errstate(invalid="ignore"):
            bad = ~(
                np.isfinite(values)
                & (values >= 0)
                & (values <= _UINT32_MAX)
                & (values == np.floor(values))
            )
    else:
        raise GexnetError(f"{path}: counts have type {values.dtype}; expected numbers{hint}")
    n_bad = int(np.count_nonzero(bad))
    if n_bad:
        i, j = np.unravel_index(int(np.argmax(bad)), bad.shape)
        raw = text[i, j] if text is not None else values[i, j]
        more = f" ({n_bad - 1} more such values)" if n_bad > 1 else ""
        raise GexnetError(
            f"{path}: count for gene {genes[i]}, sample {samples[j]} "
            f"{_problem(values[i, j], raw)}{more}; counts must be whole numbers >= 0 "
            f"(raw counts, not normalized values){hint}"
        )
    return values


def _problem(value: Any, raw: Any) -> str:
    if isinstance(raw, str) and np.isnan(value) and raw.strip() not in _MISSING_TEXT:
        return f"is not a number ({raw!r})"
    if np.isnan(value):
        return "is missing (NaN or empty)"
    if np.isinf(value):
        return f"is infinite ({value})"
    if value < 0:
        return f"is negative ({value:g})"
    if value > _UINT32_MAX:
        return f"is larger than 2^32-1, the most ARCHS4 files hold ({value:g})"
    return f"is not an integer ({value:g})"


# --- gene identities ---------------------------------------------------------------------------


def map_genes(genes: Sequence[str], species: str) -> tuple[IdType, np.ndarray, np.ndarray]:
    """Each row's gene ID mapped by the shared `genome.symbol_mapper`, the whole list read as
    one ID type (`genome.detect_id_type`: the type most IDs have, so HTSeq's __no_feature
    rows or spike-ins do not change it); an Entrez ID on several genes goes to the lowest
    Ensembl ID.

    Returns the ID type (ensembl_versioned where most Ensembl IDs carry a version), each row's
    Ensembl 100 ID (object array, None where none) and how it mapped (the mapper's `how`).
    """
    keys = [str(g).strip() for g in genes]
    detected = genome.detect_id_type(keys)
    mapper = genome.symbol_mapper(species)
    table = mapper.map(keys, detected, lowest_entrez=True).table.set_index("input")
    gene_id = table["gene_id"].reindex(keys)
    ensembl = np.array([None if pd.isna(g) else g for g in gene_id], dtype=object)
    how = table["how"].reindex(keys).fillna("unmapped").to_numpy(object)  # '' is no ID
    id_type: IdType = detected
    if detected == "ensembl":
        n_ensembl = sum(genome.ensembl_base(k) is not None for k in keys)
        if sum(bool(_VERSIONED.match(k)) for k in keys) * 2 > n_ensembl:
            id_type = "ensembl_versioned"
    return id_type, ensembl, how


def keep_highest(ensembl: np.ndarray, totals: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """One row per Ensembl ID, ordered by ID: the row with the highest total (first on ties).

    Returns the rows kept, their Ensembl IDs, and how many mapped rows were dropped.
    """
    mapped = np.flatnonzero(pd.notna(ensembl))
    frame = pd.DataFrame({"row": mapped, "gene": ensembl[mapped], "total": totals[mapped]})
    frame = frame.sort_values(["gene", "total", "row"], ascending=[True, False, True])
    kept = frame.drop_duplicates("gene")
    return kept["row"].to_numpy(), kept["gene"].to_numpy(str), len(frame) - len(kept)


def gene_features(ensembl: Sequence[str], species: str) -> pd.DataFrame:
    """meta/genes: ensembl_gene, symbol and biotype from Ensembl 100 ('' where it has none)."""
    table = genome.genes(species).set_index("gene_id")
    ids = pd.Index(ensembl)
    return pd.DataFrame(
        {
            "ensembl_gene": np.asarray(ensembl, dtype=object),
            "symbol": table["symbol"].reindex(ids).fillna("").to_numpy(object),
            "biotype": table["biotype"].reindex(ids).fillna("").to_numpy(object),
        }
    )


def write_report(path: str | os.PathLike, report: dict) -> None:
    """The report as JSON, atomically (a rule's output is whole or absent)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")


def info(kind: str, species: str, **extra: str) -> dict[str, str]:
    """meta/info entries saying where the file came from."""
    return {
        "version": kind,
        "creation-date": date.today().isoformat(),
        "generator": f"gexnet {__version__} {kind}",
        "species": species,
        **extra,
    }


# --- counts: readers ---------------------------------------------------------------------------


class _Matrix:
    """A counts matrix read in blocks of at most `block_values` counts (at least one gene row
    and one sample): blocks of whole samples, or (text tables) of whole gene rows."""

    path: Path
    genes: list[str]
    samples: list[str]
    hint = ""

    def blocks(self, block_values: int) -> Iterator[tuple[slice, slice, pd.DataFrame | np.ndarray]]:
        """(gene rows, sample columns, counts genes × samples) blocks, covering the matrix once."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the file, if one is held open."""


class TsvMatrix(_Matrix):
    """A genes × samples TSV table (plain or gzip), streamed by blocks of gene rows: text has no
    random access by column, and a row is what a line holds.

    A header one field shorter than the rows (R's write.table) names samples only. Counts are
    read as pandas infers them, block by block; `counts_array` checks them. `gene_column`, if
    given, is what the first header field must be. `genes` fills as rows are read: it is
    complete once `blocks` has gone through the file.
    """

    def __init__(self, path: Path, gene_column: str | None = None) -> None:
        self.path = path
        rows = first_rows(path, 2)
        if not rows or not rows[0]:
            raise GexnetError(f"{path}: empty file; expected a header of gene ID then sample names")
        header = rows[0]
        if len(rows) > 1 and len(rows[1]) == len(header) + 1:
            names = ["", *header]  # R style: no header field over the row names
        else:
            names = header
        if gene_column is not None and names[0] != gene_column:
            raise GexnetError(
                f"{path}: first column is {names[0]!r}, expected {gene_column!r} "
                "(not an NCBI-generated counts file?)"
            )
        self.samples = names[1:]
        if not self.samples:
            raise GexnetError(f"{path}: no sample columns after the gene ID column")
        check_unique(self.samples, path, "sample names in the header")
        if "" in self.samples:
            raise GexnetError(f"{path}: empty sample name in the header")
        self.genes = []

    def blocks(self, block_values: int) -> Iterator[tuple[slice, slice, pd.DataFrame]]:
        samples = self.samples
        columns = slice(0, len(samples))
        self.genes = []
        try:
            with pd.read_csv(
                self.path,
                sep="\t",
                header=None,
                skiprows=1,
                names=["\0gene", *samples],  # a name no sample has
                index_col=0,
                dtype={"\0gene": str},
                keep_default_na=False,
                na_values={sample: [""] for sample in samples},
                compression="gzip" if is_gzip(self.path) else None,
                chunksize=max(1, block_values // len(samples)),
            ) as reader:
                for frame in reader:
                    start = len(self.genes)
                    self.genes += [str(g) for g in frame.index]
                    yield slice(start, len(self.genes)), columns, frame
        except (ValueError, OSError, EOFError, UnicodeDecodeError) as exc:
            raise GexnetError(
                f"{self.path}: cannot read as a TSV table: {first_line(exc)}"
            ) from exc


class _ParquetMatrix(_Matrix):
    """A Parquet table; columns (samples) are read a block at a time."""

    def __init__(self, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path = path
        try:
            self._file = pq.ParquetFile(path)
            schema = self._file.schema_arrow
            names = list(schema.names)
            check_unique(names, path, "column names")
            index = [c for c in (schema.pandas_metadata or {}).get("index_columns", [])]
            index = [c for c in index if isinstance(c, str)]  # a RangeIndex is a dict: no genes
            if len(index) > 1:
                raise GexnetError(f"{path}: a multi-level index; expected one gene ID column")
            gene_column = index[0] if index else names[0]
            self.samples = [n for n in names if n != gene_column]
            if not self.samples:
                raise GexnetError(f"{path}: no sample columns after the gene ID column")
            genes = self._file.read(columns=[gene_column]).column(0).to_pylist()
        except (pa.ArrowException, OSError) as exc:
            raise GexnetError(f"{path}: cannot read as Parquet: {first_line(exc)}") from exc
        self.genes = ["" if g is None else str(g) for g in genes]

    def blocks(self, block_values: int) -> Iterator[tuple[slice, slice, pd.DataFrame]]:
        width = max(1, block_values // max(1, len(self.genes)))
        for start in range(0, len(self.samples), width):
            columns = self.samples[start : start + width]
            block = self._file.read(columns=columns).to_pandas()
            yield slice(0, len(self.genes)), slice(start, start + len(columns)), block

    def close(self) -> None:
        self._file.close()


class _H5adMatrix(_Matrix):
    """An AnnData file (obs = samples, var = genes), opened backed: X is read by sample rows."""

    hint = " (h5ad: X must hold the raw counts)"

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            import anndata
        except ImportError as exc:
            raise GexnetError(f"{path}: reading .h5ad needs the anndata package") from exc
        try:
            with warnings.catch_warnings():  # repeated names: checked and reported here
                warnings.filterwarnings("ignore", "(Variable|Observation) names are not unique")
                self._data = anndata.read_h5ad(path, backed="r")
        except Exception as exc:  # anndata raises many types for a file it cannot read
            raise GexnetError(f"{path}: cannot read as h5ad: {first_line(exc)}") from exc
        if self._data.X is None:
            self.close()
            raise GexnetError(f"{path}: no X matrix; X must hold the raw counts")
        self.samples = [str(s) for s in self._data.obs_names]
        self.genes = [str(g) for g in self._data.var_names]

    def blocks(self, block_values: int) -> Iterator[tuple[slice, slice, np.ndarray]]:
        x = self._data.X
        width = max(1, block_values // max(1, len(self.genes)))
        for start in range(0, len(self.samples), width):
            block = x[start : start + width]
            if hasattr(block, "toarray"):
                block = block.toarray()
            yield (
                slice(0, len(self.genes)),
                slice(start, start + block.shape[0]),
                np.asarray(block).T,
            )

    def close(self) -> None:
        if self._data.file.is_open:
            self._data.file.close()


def check_counts(matrix: _Matrix, block_values: int) -> np.ndarray:
    """The first pass over a matrix: every count checked (`counts_array`), and each gene row's
    total (float64), for choosing among rows of one gene."""
    totals = np.zeros(0)
    for rows, columns, block in matrix.blocks(block_values):
        values = counts_array(
            block, matrix.genes[rows], matrix.samples[columns], matrix.path, matrix.hint
        )
        if rows.stop > len(totals):  # a text table's genes arrive with its rows
            totals = np.concatenate([totals, np.zeros(rows.stop - len(totals))])
        totals[rows] += values.sum(axis=1, dtype=np.float64)
    return totals


def _open_counts(path: Path) -> _Matrix:
    if not path.is_file():
        raise GexnetError(f"{path}: no such file")
    with open(path, "rb") as raw:
        head = raw.read(8)
    kind = next((k for magic, k in _MAGIC.items() if head.startswith(magic)), "tsv")
    if kind == "parquet":
        return _ParquetMatrix(path)
    if kind == "h5ad":
        return _H5adMatrix(path)
    return TsvMatrix(path)


# --- the sample sheet --------------------------------------------------------------------------


def read_sample_sheet(path: str | os.PathLike) -> pd.DataFrame:
    """The sample sheet: `sample` and `series` as text, other columns as numbers where every
    value is one, else text."""
    path = Path(path)
    if not path.is_file():
        raise GexnetError(f"{path}: no such file")
    rows = first_rows(path, 1)
    if not rows:
        raise GexnetError(f"{path}: empty file; expected a header with sample and series")
    header = [c.strip() for c in rows[0]]
    check_unique(header, path, "column names")
    missing = [c for c in ("sample", "series") if c not in header]
    if missing:
        raise GexnetError(
            f"{path}: sample sheet has no column {' or '.join(missing)} (columns: {listed(header)})"
        )
    reserved = [c for c in header if c in RESERVED_SHEET_COLUMNS]
    if reserved:
        raise GexnetError(
            f"{path}: column {reserved[0]!r} is filled from sample/series; rename or drop it"
        )
    if bad := [c for c in header if "/" in c or not c]:
        raise GexnetError(f"{path}: column name {bad[0]!r} cannot be a metadata field")
    try:
        sheet = pd.read_csv(
            path,
            sep="\t",
            dtype=str,
            keep_default_na=False,
            compression="gzip" if is_gzip(path) else None,
        )
    except (ValueError, OSError, EOFError, UnicodeDecodeError) as exc:
        raise GexnetError(f"{path}: cannot read as a TSV table: {first_line(exc)}") from exc
    sheet.columns = header
    for column in ("sample", "series"):
        sheet[column] = sheet[column].str.strip()
        empty = np.flatnonzero(sheet[column] == "")
        if len(empty):
            raise GexnetError(f"{path}: empty {column} on line {empty[0] + 2}")
    check_unique(sheet["sample"].tolist(), path, "sample names")
    for column in header:
        if column not in ("sample", "series"):
            sheet[column] = _typed(sheet[column])
    return sheet


def _typed(column: pd.Series) -> pd.Series:
    """Numbers where every present value is a number; else text with '' for missing."""
    present = column.str.strip()
    missing = present.isin(_MISSING_TEXT)
    as_numbers = pd.to_numeric(present.where(~missing), errors="coerce")
    if (as_numbers.notna() | missing).all() and not missing.all():
        return as_numbers.astype(np.float64)
    return column.where(~missing, "")


def sample_meta(
    sheet: pd.DataFrame, samples: Sequence[str], counts_path: Path, sheet_path: Path
) -> pd.DataFrame:
    """meta/samples in the counts' sample order: geo_accession = sample, series_id = series,
    singlecellprobability from the sheet or NaN, then the sheet's other columns."""
    in_sheet = set(sheet["sample"])
    if absent := [s for s in samples if s not in in_sheet]:
        raise GexnetError(
            f"{sheet_path}: no row for {len(absent)} sample(s) of {counts_path}: {listed(absent)}"
        )
    in_counts = set(samples)
    if extra := [s for s in sheet["sample"] if s not in in_counts]:
        raise GexnetError(
            f"{sheet_path}: {len(extra)} sample(s) not in {counts_path}: {listed(extra)}"
        )
    sheet = sheet.set_index("sample").loc[list(samples)]
    meta = pd.DataFrame(
        {
            "geo_accession": np.asarray(samples, dtype=object),
            "series_id": sheet["series"].to_numpy(object),
        }
    )
    if "singlecellprobability" in sheet:
        raw = sheet["singlecellprobability"]
        scp = pd.to_numeric(raw, errors="coerce").to_numpy(np.float64)
        bad = np.zeros(len(scp), dtype=bool)
        if raw.dtype == object:  # _typed kept text: some value is not a number ('' is missing)
            bad |= np.isnan(scp) & (raw != "").to_numpy()
        with np.errstate(invalid="ignore"):
            bad |= (scp < 0) | (scp > 1)
        if bad.any():
            k = int(np.argmax(bad))
            raise GexnetError(
                f"{sheet_path}: singlecellprobability of sample {samples[k]} is "
                f"{sheet['singlecellprobability'].iloc[k]!r}; expected a number in 0..1 or empty"
            )
        meta["singlecellprobability"] = scp
    else:
        meta["singlecellprobability"] = np.nan
    for column in sheet.columns:
        if column not in ("series", "singlecellprobability"):
            meta[column] = sheet[column].to_numpy()
    return meta


# --- conversion --------------------------------------------------------------------------------


def convert(
    counts_path: str | os.PathLike,
    samples_path: str | os.PathLike,
    species: str,
    out: str | os.PathLike,
    block_values: int = BLOCK_VALUES,
) -> dict:
    """Convert a counts matrix and its sample sheet to one gene-level ARCHS4 file at `out`.

    Everything is checked before anything is written; a failure leaves no file. The counts are
    read twice (checks and per-gene totals, then writing), each time in blocks of at most
    `block_values` counts, so memory is set by the budget, not by the matrix. Returns the
    report (also logged).
    """
    counts_path, samples_path, out = Path(counts_path), Path(samples_path), Path(out)
    check_species(species)
    if block_values < 1:
        raise GexnetError(f"block_values must be >= 1, got {block_values}")
    matrix = _open_counts(counts_path)
    try:
        samples = matrix.samples
        if not samples:
            raise GexnetError(f"{counts_path}: no samples")
        check_unique(samples, counts_path, "sample names")
        meta = sample_meta(read_sample_sheet(samples_path), samples, counts_path, samples_path)
        totals = check_counts(matrix, block_values)
        genes = matrix.genes
        if not genes:
            raise GexnetError(f"{counts_path}: no genes")
        try:
            id_type, ensembl, how = map_genes(genes, species)
        except GexnetError as exc:
            raise GexnetError(f"{counts_path}: {exc}") from exc
        unmapped = [g for g, e in zip(genes, ensembl, strict=True) if e is None]
        if len(unmapped) == len(genes):
            raise GexnetError(
                f"{counts_path}: none of the {len(genes)} gene IDs ({id_type}, e.g. "
                f"{listed(genes[:3])}) is a {species} Ensembl 100 gene; wrong species?"
            )
        rows, kept, dropped = keep_highest(ensembl, totals)
        position = np.full(len(genes), -1, np.int64)  # each input row's place in the output
        position[rows] = np.arange(len(rows))
        every_gene = slice(0, len(genes))
        with Archs4Writer(out, "gene", len(rows), len(samples), block_values) as writer:
            for block_rows, columns, block in matrix.blocks(block_values):
                values, _ = numeric(block)
                if block_rows == every_gene:
                    writer.write_samples(columns.start, values[rows].astype(np.uint32))
                else:  # gene rows of a text table, each to its place
                    where = position[block_rows]
                    have = where >= 0
                    writer.write_features(
                        where[have], columns.start, values[have].astype(np.uint32)
                    )
            writer.finish(
                gene_features(kept, species),
                meta,
                info("byo", species, counts=counts_path.name, samples=samples_path.name),
            )
    finally:
        matrix.close()
    report = {
        "source": "byo",
        "counts": str(counts_path),
        "samples_sheet": str(samples_path),
        "out": str(out),
        "species": species,
        "id_type": id_type,
        "genes_in": len(genes),
        "mapped": len(genes) - len(unmapped),
        "unmapped": len(unmapped),
        "unmapped_examples": unmapped[:_MAX_LISTED],
        "rescued_by_alias": int(np.count_nonzero(how == "alias")),
        "ambiguous": int(np.count_nonzero(how == "ambiguous")),
        "duplicates_dropped": int(dropped),
        "genes_out": len(rows),
        "samples": len(samples),
        "series": int(meta["series_id"].nunique()),
    }
    log.info(
        "%s: %d %s gene IDs, %d mapped to Ensembl 100 (%d by a previous or alias symbol), "
        "%d unmapped (dropped; %d ambiguous), %d duplicates dropped (highest-total row kept); "
        "%d genes × %d samples in %d series → %s",
        counts_path,
        report["genes_in"],
        id_type,
        report["mapped"],
        report["rescued_by_alias"],
        report["unmapped"],
        report["ambiguous"],
        report["duplicates_dropped"],
        report["genes_out"],
        report["samples"],
        report["series"],
        out,
    )
    return report


# --- command line ------------------------------------------------------------------------------
