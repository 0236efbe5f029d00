"""Coding-sequence FASTA files as Ensembl distributes them (`*.cds.all.fa.gz`).

A header reads `>ENST00000269305.9 cds chromosome:GRCh38:17:7661779:7687538:-1
gene:ENSG00000141510.18 gene_biotype:protein_coding ... gene_symbol:TP53 ...`. The table read
from it has transcript_id, gene_id (both without their version: the gene tables, the ortholog
pairs and the compendia all use unversioned IDs) and the sequence, upper case.

The file is read line by line (a human CDS file is ~40 MB compressed, ~150 MB of sequence), and
`genes` keeps only the sequences of the genes asked for, so memory holds what is used. A file
that is not such a FASTA stops with one error naming the file, the line and the problem.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd

from gexnet.errors import GexnetError, first_line
from gexnet.formats.io import atomic_path, open_text

COLUMNS = ["transcript_id", "gene_id", "sequence"]
LINE_WIDTH = 60  # Ensembl's
# IUPAC ambiguity codes would make scores depend on how an aligner treats them; Ensembl CDS
# files hold A, C, G, T and N only, so anything else means a wrong file (protein, RNA, binary).
_BAD_BASE = re.compile(r"[^ACGTN]")
_GENE = re.compile(r"(?:^|\s)gene:(\S+)")


def _unversioned(identifier: str) -> str:
    return identifier.split(".", 1)[0]


def iter_cds(path: str | os.PathLike) -> Iterator[tuple[str, str, str]]:
    """(transcript_id, gene_id, sequence) per record, in file order, versions stripped."""
    number = 0
    record: tuple[str, str, list[str]] | None = None

    def fail(problem: str) -> GexnetError:
        return GexnetError(f"{path}: line {number}: {problem}")

    try:
        with open_text(path) as handle:
            for number, line in enumerate(handle, start=1):  # noqa: B007 (fail() reads it)
                line = line.rstrip("\r\n")
                if line.startswith(">"):
                    if record is not None:
                        yield _finish(record, fail)
                    words = line[1:].split()
                    gene = _GENE.search(line)
                    if not words:
                        raise fail("a header without a transcript ID")
                    if gene is None:
                        raise fail(f"the header of {words[0]} has no gene: field")
                    record = (_unversioned(words[0]), _unversioned(gene.group(1)), [])
                elif record is None:
                    if line.strip():
                        raise fail("not a FASTA file: the first record does not start with '>'")
                else:
                    bases = line.strip().upper()
                    bad = _BAD_BASE.search(bases)
                    if bad:
                        raise fail(f"{record[0]}: {bad.group()!r} is not one of A, C, G, T, N")
                    record[2].append(bases)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        # A truncated or corrupt gzip stream, or binary content.
        raise fail(f"cannot read: {first_line(exc)}") from exc
    if record is None:
        raise fail("no FASTA records (an empty file?)")
    yield _finish(record, fail)


def _finish(record, fail) -> tuple[str, str, str]:
    transcript, gene, parts = record
    sequence = "".join(parts)
    if not sequence:
        raise fail(f"{transcript} has no sequence")
    return transcript, gene, sequence


def read_cds(path: str | os.PathLike, genes: Iterable[str] | None = None) -> pd.DataFrame:
    """The CDS table of a FASTA file (gzip or plain, by content), optionally only of `genes`
    (unversioned gene IDs). A transcript ID seen twice is an error: which copy is meant?"""
    wanted = None if genes is None else set(genes)
    rows, seen = [], set()
    for transcript, gene, sequence in iter_cds(path):
        if transcript in seen:
            raise GexnetError(f"{path}: transcript {transcript} appears twice")
        seen.add(transcript)
        if wanted is None or gene in wanted:
            rows.append((transcript, gene, sequence))
    return pd.DataFrame(rows, columns=COLUMNS)


def write_cds(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a CDS table (transcript_id, gene_id, sequence; optional symbol) as an Ensembl-style
    FASTA, atomically; gzip-compressed when the name ends in .gz, with no timestamp in the gzip
    header so that the same table gives the same bytes."""
    symbols = table["symbol"] if "symbol" in table else [None] * len(table)
    with atomic_path(path) as tmp, open(tmp, "wb") as raw:
        # No name or time in the gzip header: it would hold the temporary name and the clock.
        compressed = Path(path).suffix == ".gz"
        binary = gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) if compressed else raw
        with io.TextIOWrapper(binary, encoding="ascii", newline="\n") as handle:
            for transcript, gene, sequence, symbol in zip(
                table["transcript_id"], table["gene_id"], table["sequence"], symbols, strict=True
            ):
                tail = f" gene_symbol:{symbol}" if symbol else ""
                handle.write(
                    f">{transcript} cds gene:{gene} gene_biotype:protein_coding "
                    f"transcript_biotype:protein_coding{tail}\n"
                )
                for start in range(0, len(sequence), LINE_WIDTH):
                    handle.write(sequence[start : start + LINE_WIDTH] + "\n")
