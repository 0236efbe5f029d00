"""The files of a generated demo compendium: ARCHS4-layout gene and transcript files and a CDS
FASTA (Ensembl's layout) per species, the planted truth tables, and the settings they were generated from (standard library only: the
rules name these files when the Snakefile is parsed)."""

from __future__ import annotations

from pathlib import Path

DEMO_TRUTH_TABLES = (
    "programs",
    "regulators",
    "orthologs",
    "splicing",
    "case_control",
    "case_control_regulators",
    "qc",
    "modules",
)


def demo_files(outdir: str | Path, species: list[str]) -> dict[str, Path]:
    """Every file `gexnet simulate` writes, by name: the compendia, the coding sequences
    (`<species>_cds`), the truth tables and the settings they were generated from."""
    outdir = Path(outdir)
    files = {
        f"{sp}_{level}": outdir / f"{sp}_{level}_demo.h5"
        for sp in species
        for level in ("gene", "transcript")
    }
    for sp in species:
        files[f"{sp}_cds"] = outdir / f"{sp}_cds_demo.fa.gz"
    for table in DEMO_TRUTH_TABLES:
        files[table] = outdir / "truth" / f"{table}.parquet"
    files["settings"] = outdir / "settings.json"
    return files
