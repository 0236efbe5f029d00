"""GEO series through NCBI's generated RNA-seq counts, converted to one ARCHS4-layout file.

Inputs per series: the raw counts (`GSE…_raw_counts_<build>_NCBI.tsv.gz`: GeneID then one
column per GSM), the series matrix (sample metadata); and NCBI's gene annotation for the build
(`<Organism>.<build>.annot.tsv.gz`), shared by all series.

Choices, each reported:
- Genes are keyed by Ensembl ID: the annotation's EnsemblGeneID, else the Ensembl 100 gene that
  lists the Entrez ID (the shared `genome.symbol_mapper`; the lowest Ensembl ID where several
  genes list it). Symbol and biotype come from Ensembl 100; for an Ensembl ID it lacks, from
  NCBI's Symbol and GeneType. Entrez IDs with no Ensembl ID are dropped.
- Several Entrez IDs on one Ensembl ID: the one with the highest total count over all series is
  kept and the rest dropped (as in `gexnet.sources.byo`): summing could count reads twice where NCBI
  models overlap, and ARCHS4 holds one row per gene.
- Genes missing from a series' counts are 0 there (the gene set is the union over series).
- singlecellprobability is NaN: GEO does not provide one (ARCHS4 computes it from its own
  alignments), and NaN never passes or fails a threshold by accident.
- Samples in the series matrix without counts (e.g. other assays of a SuperSeries) are skipped;
  counted samples without metadata, and samples in two series, are errors.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from gexnet.errors import GexnetError, first_line
from gexnet.formats.archs4 import BLOCK_VALUES, Archs4Writer
from gexnet.formats.io import is_gzip, open_text
from gexnet.sources import byo, genome

log = logging.getLogger(__name__)

ORGANISM = {"human": "Homo sapiens", "mouse": "Mus musculus"}
TAXON = {"human": "9606", "mouse": "10090"}
ANNOTATION_COLUMNS = ("GeneID", "Symbol", "EnsemblGeneID", "GeneType")
_GSE = re.compile(r"^GSE\d+$")
_TABLE_BEGIN = "!series_matrix_table_begin"
# NCBI GeneType → Ensembl-style biotype, for genes Ensembl 100 does not have.
_NCBI_BIOTYPE = {"protein-coding": "protein_coding", "pseudo": "pseudogene"}


# --- reading -----------------------------------------------------------------------------------


def parse_series_matrix(path: str | os.PathLike) -> tuple[str, pd.DataFrame]:
    """The series accession and one row of metadata per sample (all `!Sample_` fields, named
    without the prefix: geo_accession, title, source_name_ch1, characteristics_ch1, ...).

    A field on several lines (characteristics_ch1 above all) is joined per sample with ',',
    skipping empty values, as ARCHS4 stores it. The data table is not read.
    """
    path = Path(path)
    if not path.is_file():
        raise GexnetError(f"{path}: no such file")
    accession = None
    fields: dict[str, list[tuple[int, list[str]]]] = {}  # name → (line number, values) per line
    try:
        with open_text(path, errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                line = line.rstrip("\r\n")
                if line.startswith(_TABLE_BEGIN):
                    break
                key, _, rest = line.partition("\t")
                values = [_unquote(v) for v in rest.split("\t")] if rest else []
                if key == "!Series_geo_accession" and values:
                    accession = values[0]
                elif key.startswith("!Sample_"):
                    fields.setdefault(key[len("!Sample_") :], []).append((number, values))
    except (OSError, EOFError) as exc:
        raise GexnetError(f"{path}: cannot read: {first_line(exc)}") from exc
    if accession is None:
        raise GexnetError(f"{path}: no !Series_geo_accession line (not a GEO series matrix?)")
    if "geo_accession" not in fields:
        raise GexnetError(f"{path}: no !Sample_geo_accession line (a series without samples?)")
    n = len(fields["geo_accession"][0][1])
    table = {}
    for name, lines in fields.items():
        for number, values in lines:
            if len(values) != n:
                raise GexnetError(
                    f"{path}: line {number} (!Sample_{name}) has {len(values)} values "
                    f"for {n} samples"
                )
        table[name] = [
            ",".join(v for v in per_sample if v)
            for per_sample in zip(*(values for _, values in lines), strict=True)
        ]
    meta = pd.DataFrame(table)
    byo.check_unique(meta["geo_accession"].tolist(), path, "sample accessions")
    return accession, meta[["geo_accession", *[c for c in meta if c != "geo_accession"]]]


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def check_ncbi_counts(
    path: str | os.PathLike, block_values: int
) -> tuple[byo.TsvMatrix, pd.Series]:
    """NCBI-generated raw counts (GeneID, then one column per GSM) read through once, in blocks
    of gene rows of at most `block_values` counts: the table (its samples and genes) and each
    Entrez ID's total count (float64, str index).

    Non-integer, negative or missing counts and repeated GeneID rows are a one-line error naming
    the file (and the gene and sample).
    """
    path = Path(path)
    if not path.is_file():
        raise GexnetError(f"{path}: no such file")
    counts = byo.TsvMatrix(path, gene_column="GeneID")
    totals = byo.check_counts(counts, block_values)
    byo.check_unique(counts.genes, path, "GeneID rows")
    return counts, pd.Series(totals, index=pd.Index(counts.genes, dtype=object))


def read_ncbi_annotation(path: str | os.PathLike, species: str) -> pd.DataFrame:
    """NCBI's gene annotation: Symbol, EnsemblGeneID ('' if none), GeneType by GeneID (str)."""
    path = Path(path)
    if not path.is_file():
        raise GexnetError(f"{path}: no such file")
    header = byo.first_rows(path, 1)
    header = header[0] if header else []
    missing = [c for c in ANNOTATION_COLUMNS if c not in header]
    if missing:
        raise GexnetError(
            f"{path}: no column {', '.join(missing)} (not an NCBI gene annotation file?)"
        )
    wanted = [*ANNOTATION_COLUMNS, *(["TaxID"] if "TaxID" in header else [])]
    try:
        table = pd.read_csv(
            path,
            sep="\t",
            usecols=wanted,
            dtype=str,
            keep_default_na=False,
            quoting=csv.QUOTE_NONE,  # descriptions hold stray quotes
            compression="gzip" if is_gzip(path) else None,
        )
    except (ValueError, OSError, EOFError, UnicodeDecodeError) as exc:
        raise GexnetError(f"{path}: cannot read as a TSV table: {first_line(exc)}") from exc
    if "TaxID" in table:
        taxa = table["TaxID"][table["TaxID"] != ""]
        if len(taxa) and (taxon := taxa.mode().iloc[0]) != TAXON[species]:
            raise GexnetError(
                f"{path}: annotation of taxon {taxon}, not {species} ({TAXON[species]})"
            )
    table["GeneID"] = table["GeneID"].str.strip()
    table = table.drop_duplicates("GeneID").set_index("GeneID")
    return table[list(ANNOTATION_COLUMNS[1:])]


def _read_matrices(gse: str, paths: list[Path]) -> pd.DataFrame:
    """The series' sample metadata from its matrix file(s) (one per platform)."""
    metas = []
    for path in paths:
        accession, meta = parse_series_matrix(path)
        if accession != gse:
            raise GexnetError(f"{path}: series matrix of {accession}, expected {gse}")
        metas.append(meta)
    return pd.concat(metas, ignore_index=True).drop_duplicates("geo_accession")


# --- gene identities ---------------------------------------------------------------------------


def _map_entrez(entrez: pd.Index, ncbi: pd.DataFrame, species: str) -> tuple[np.ndarray, int, int]:
    """Ensembl ID per Entrez ID (None if none): NCBI's EnsemblGeneID, else the shared mapper's
    (`genome.symbol_mapper`; an Entrez ID on several genes goes to the lowest Ensembl ID).
    Also how many came from NCBI and from Ensembl 100."""
    given = ncbi["EnsemblGeneID"].reindex(entrez).fillna("").to_numpy(object)
    # EnsemblGeneID holds one ID; split anyway in case a release lists several
    bases = ([genome.ensembl_base(part) for part in re.split(r"[,;| ]+", g)] for g in given)
    from_ncbi = [next((b for b in found if b), None) for found in bases]
    rest = [gene for gene, found in zip(entrez, from_ncbi, strict=True) if found is None]
    mapper = genome.symbol_mapper(species)
    table = mapper.map(rest, "entrez", lowest_entrez=True).table.set_index("input")
    fallback = table["gene_id"].dropna().to_dict()
    out = np.array(
        [found or fallback.get(gene) for gene, found in zip(entrez, from_ncbi, strict=True)],
        dtype=object,
    )
    via_ncbi = sum(found is not None for found in from_ncbi)
    return out, via_ncbi, int(pd.notna(out).sum()) - via_ncbi


def _features(
    ensembl: np.ndarray, entrez: np.ndarray, ncbi: pd.DataFrame, species: str
) -> tuple[pd.DataFrame, int]:
    """meta/genes from Ensembl 100, NCBI's Symbol and GeneType where Ensembl 100 lacks the gene;
    and how many genes needed NCBI's."""
    features = byo.gene_features(ensembl, species)
    lacking = ~pd.Index(ensembl).isin(genome.genes(species)["gene_id"])
    if lacking.any():
        rows = ncbi.reindex(entrez[lacking])
        features.loc[lacking, "symbol"] = rows["Symbol"].fillna("").to_numpy(object)
        features.loc[lacking, "biotype"] = [
            _NCBI_BIOTYPE.get(t, t.replace("-", "_")) if t else "unknown"
            for t in rows["GeneType"].fillna("")
        ]
    return features, int(lacking.sum())


# --- conversion --------------------------------------------------------------------------------


def _series_entries(series: list[dict]) -> list[tuple[str, Path, list[Path]]]:
    if not series:
        raise GexnetError("geo: no series given")
    entries = []
    for entry in series:
        missing = [k for k in ("gse", "counts", "matrix") if k not in entry]
        if missing:
            raise GexnetError(f"geo: series entry {entry} lacks {', '.join(missing)}")
        gse = str(entry["gse"])
        if not _GSE.match(gse):
            raise GexnetError(
                f"geo: {gse!r} is not a GEO series accession (GSE followed by digits)"
            )
        matrix = entry["matrix"]
        matrices = [
            Path(m) for m in ([matrix] if isinstance(matrix, str | os.PathLike) else matrix)
        ]
        entries.append((gse, Path(entry["counts"]), matrices))
    byo.check_unique([e[0] for e in entries], Path("geo.series"), "series")
    return entries


def convert(
    series: list[dict],
    annotation_path: str | os.PathLike,
    species: str,
    out: str | os.PathLike,
    block_values: int = BLOCK_VALUES,
) -> dict:
    """Convert GEO series (each {"gse", "counts", "matrix"}) into one gene-level ARCHS4 file.

    Every input is read and checked before anything is written; a failure leaves no file.
    Counts are read twice rather than held (checks and totals, then writing), each series in
    blocks of gene rows of at most `block_values` counts. Returns the report.
    """
    byo.check_species(species)
    if block_values < 1:
        raise GexnetError(f"block_values must be >= 1, got {block_values}")
    out = Path(out)
    entries = _series_entries(series)
    ncbi = read_ncbi_annotation(annotation_path, species)

    totals = pd.Series(dtype=np.float64)
    owner: dict[str, str] = {}
    metas, per_series, skipped = [], {}, {}
    for gse, counts_path, matrices in entries:
        meta = _read_matrices(gse, matrices)
        counts, series_totals = check_ncbi_counts(counts_path, block_values)
        samples = counts.samples
        if twice := [s for s in samples if s in owner]:
            raise GexnetError(
                f"{counts_path}: sample {twice[0]} of {gse} is also in {owner[twice[0]]}; "
                "a sample may be in one series only"
            )
        owner |= dict.fromkeys(samples, gse)
        known = set(meta["geo_accession"])
        if absent := [s for s in samples if s not in known]:
            raise GexnetError(
                f"{matrices[0]}: no metadata for {len(absent)} sample(s) of {counts_path}: "
                f"{byo.listed(absent)}"
            )
        meta = meta.set_index("geo_accession").loc[samples].reset_index()
        _check_organism(meta, species, gse, matrices[0])
        meta["series_id"] = gse
        meta["singlecellprobability"] = np.nan
        metas.append(meta)
        per_series[gse] = len(samples)
        skipped[gse] = len(known) - len(samples)
        totals = totals.add(series_totals, fill_value=0.0)

    entrez = pd.Index(sorted(totals.index, key=lambda e: (len(e), e)), dtype=object)
    ensembl, via_ncbi, via_ensembl = _map_entrez(entrez, ncbi, species)
    rows, kept, dropped = byo.keep_highest(ensembl, totals.reindex(entrez).to_numpy())
    if not len(rows):
        raise GexnetError(
            f"{annotation_path}: none of the {len(entrez)} Entrez IDs maps to an Ensembl gene; "
            f"wrong annotation or species ({species})?"
        )
    kept_entrez = pd.Index(entrez[rows])
    features, from_ncbi = _features(kept, entrez[rows].to_numpy(object), ncbi, species)
    samples_meta = pd.concat(metas, ignore_index=True)
    for column in samples_meta:  # a field some series lack is '' there, not NaN text
        if samples_meta[column].dtype == object:
            samples_meta[column] = samples_meta[column].fillna("")

    with Archs4Writer(out, "gene", len(rows), len(samples_meta), block_values) as writer:
        start = 0
        for _, counts_path, _ in entries:
            counts = byo.TsvMatrix(counts_path, gene_column="GeneID")
            for block_rows, _, block in counts.blocks(block_values):
                values, _ = byo.numeric(block)
                position = kept_entrez.get_indexer(counts.genes[block_rows])
                have = position >= 0  # genes absent from a series stay 0 there
                writer.write_features(position[have], start, values[have].astype(np.uint32))
            start += len(counts.samples)
        writer.finish(
            features,
            samples_meta,
            byo.info(
                "geo",
                species,
                series=",".join(per_series),
                annotation=Path(annotation_path).name,
            ),
        )

    n_mapped = int(pd.notna(ensembl).sum())
    report = {
        "source": "geo",
        "out": str(out),
        "species": species,
        "annotation": str(annotation_path),
        "genes_in": len(entrez),
        "mapped": n_mapped,
        "mapped_via_ncbi": via_ncbi,
        "mapped_via_ensembl": via_ensembl,
        "unmapped": len(entrez) - n_mapped,
        "duplicates": int(dropped),
        "genes_out": len(rows),
        "genes_annotated_by_ncbi": from_ncbi,
        "samples": len(samples_meta),
        "samples_per_series": per_series,
        "matrix_samples_without_counts": skipped,
    }
    log.info(
        "%d series, %d samples: %d Entrez genes, %d mapped to Ensembl (%d via NCBI, %d via "
        "Ensembl 100), %d unmapped (dropped), %d duplicates dropped (highest-total kept); "
        "%d genes → %s",
        len(per_series),
        report["samples"],
        report["genes_in"],
        n_mapped,
        via_ncbi,
        via_ensembl,
        report["unmapped"],
        report["duplicates"],
        report["genes_out"],
        out,
    )
    for gse, n in per_series.items():
        log.info("%s: %d samples (%d in the matrix without counts, skipped)", gse, n, skipped[gse])
    return report


def _check_organism(meta: pd.DataFrame, species: str, gse: str, path: Path) -> None:
    """A series of another species in this compendium would be mislabelled, not just noisy."""
    if "organism_ch1" not in meta:
        return
    latin = ORGANISM[species].lower()
    organisms = meta["organism_ch1"].astype(str)
    wrong = organisms[(organisms != "") & ~organisms.str.lower().str.contains(latin, regex=False)]
    if len(wrong):
        k = wrong.index[0]
        raise GexnetError(
            f"{path}: sample {meta['geo_accession'].iloc[k]} of {gse} is {wrong.iloc[0]!r}, "
            f"not {ORGANISM[species]}; list {gse} under its own species"
        )
