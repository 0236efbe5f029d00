"""Command line: `python -m gexnet <command>`; the workflow's rules call these commands."""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import logging
import sys
from pathlib import Path

from gexnet.errors import GexnetError


def _json(text: str) -> dict:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON: {e}") from e


def _simulate(args: argparse.Namespace) -> None:
    from gexnet import config
    from gexnet.sources import simulate

    # The workflow passes the sections it validated; a user at the shell names a config file.
    cfg = args.settings if args.settings is not None else config.load(args.config)
    species = args.species or cfg["species"]
    simulate.simulate(cfg["simulate"], cfg["qc"], cfg["seed"], species, args.outdir)


def _qc(args: argparse.Namespace) -> None:
    from gexnet.corpus import qc
    from gexnet.formats.io import atomic_path, write_table

    table = qc.sample_qc(args.input, args.thresholds, args.block_values)
    write_table(table, args.samples)
    summary = qc.summarize(table, args.thresholds)
    write_table(summary, args.summary)
    logging.getLogger("gexnet.corpus.qc").info("%s\n%s", args.input, summary.to_string(index=False))
    with atomic_path(args.figure) as tmp:
        qc.plot(table, args.thresholds, tmp, args.title)


def _check_config(args: argparse.Namespace) -> None:
    import yaml

    from gexnet import config
    from gexnet.formats.io import atomic_path

    if args.settings is not None:  # the workflow's resolved config
        cfg, name = config.validate(args.settings), "the settings"
    else:
        cfg, name = config.load(args.config), str(args.config)
    text = yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True)
    if args.out:
        with atomic_path(args.out) as tmp:
            tmp.write_text(text)
    print(text if args.show else f"{name}: valid", end="" if args.show else "\n")


def _install_profile(args: argparse.Namespace) -> None:
    from gexnet import profiles

    for line in profiles.install(args.name, force=args.force, copy=args.copy):
        print(line)


def parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line; only `command`'s module is imported (training's loads torch, which
    no other job should pay for)."""
    p = argparse.ArgumentParser(prog="gexnet", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("simulate", help="write the demo compendium and its planted truth")
    source = s.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path, help="config file (validated)")
    source.add_argument(
        "--settings", type=_json, help="JSON of validated seed, species, simulate and qc keys"
    )
    s.add_argument(
        "--species", nargs="+", choices=["human", "mouse"], help="default: config species"
    )
    s.add_argument("--outdir", required=True, type=Path)
    s.set_defaults(func=_simulate)

    q = sub.add_parser("qc", help="per-sample QC metrics, a summary and a figure")
    q.add_argument("input", type=Path, help="ARCHS4-layout gene-level HDF5 file")
    q.add_argument("--thresholds", type=_json, required=True, help="JSON: the config's qc section")
    q.add_argument("--block-values", type=int, default=50_000_000, help="streaming budget")
    q.add_argument("--samples", type=Path, required=True, help="per-sample table (Parquet)")
    q.add_argument("--summary", type=Path, required=True, help="counts by rule (TSV)")
    q.add_argument("--figure", type=Path, required=True, help="metric histograms (SVG/PNG/PDF)")
    q.add_argument("--title", default="sample QC")
    q.set_defaults(func=_qc)

    # Commands whose module defines its own arguments (add_arguments) and entry point (run),
    # imported only when it is the command being run.
    for name, module, help_text in (
        ("download", "sources.download", "fetch a file: resume, retry, fall back, verify"),
        (
            "geo",
            "sources.geo",
            "GEO series (NCBI raw counts + series matrix) to an ARCHS4-layout file",
        ),
        ("byo", "sources.byo", "your own counts table and sample sheet to an ARCHS4-layout file"),
        ("annotate", "annotation.tables", "gene, ortholog and label tables"),
        ("normalize", "corpus.normalize", "Binning-By-Gene, the token corpus, binning new samples"),
        ("train", "training.lm", "train a gene language model (one process, torchrun or srun)"),
        ("embeddings", "training.embeddings", "export a trained model's gene embeddings"),
        ("classify", "analysis.classify", "gene-property classifiers, baselines, lncRNA transfer"),
    ):
        if name != command:
            sub.add_parser(name, help=help_text)
            continue
        mod = importlib.import_module(f"gexnet.{module}")
        cmd = sub.add_parser(name, help=help_text, description=mod.__doc__)
        mod.add_arguments(cmd)
        cmd.set_defaults(func=mod.run)

    c = sub.add_parser(
        "check-config",
        help="validate a config file against the schema",
        description="Validate a config file as `snakemake --configfile CONFIG` reads it: the "
        "file, then the schema's defaults (the demo's values are not merged in).",
    )
    c.add_argument("config", type=Path, nargs="?", default=Path("config/config.yaml"),
                   help="config file (default: config/config.yaml, the demo)")  # fmt: skip
    c.add_argument("--settings", type=_json, help="JSON of a whole config instead of a file")
    c.add_argument("--show", action="store_true", help="print it (YAML) with defaults filled")
    c.add_argument("--out", type=Path, help="write it (YAML) with defaults filled")
    c.set_defaults(func=_check_config)

    i = sub.add_parser("install-profile", help="make `snakemake --profile NAME` find a profile")
    i.add_argument("name", nargs="?", default="slurm-a100")
    i.add_argument("--force", action="store_true", help="replace an existing profile of that name")
    i.add_argument("--copy", action="store_true",
                   help="copy it instead of linking (to edit it outside a non-editable install)")  # fmt: skip
    i.set_defaults(func=_install_profile)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    args = parser(command).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        args.func(args)
    except GexnetError as e:
        print(f"gexnet {args.command}: error: {e}", file=sys.stderr)
        return 2
    finally:
        # Free Arrow's objects while the interpreter is whole: left to the final teardown, a
        # Parquet task still on Arrow's thread pool now and then aborts the finished job
        # ("terminate called without an active exception", exit 134; apache/arrow#34314).
        gc.collect()
    return 0
