"""The isoform data set of the splicing stage, from a transcript-level compendium and the gene
corpus of the same species.

The transcript file (ARCHS4 `*_transcript_*.h5` layout) holds the same samples as the gene file;
its samples are those the gene corpus kept (QC as for genes), scaled by the same library totals
(log10(count / gene total · scale_to + 1)), so that an isoform's value and its gene's are on one
scale. What is read from where:

- isoform log expression: the transcript file, the configured gene set's isoforms (by default
  every gene of the corpus whose mean log expression is at least `min_gene_mean_log` and that
  keeps two or more isoforms whose own mean is at least `min_isoform_mean_log`);
- the splicing factors' (SF) and the isoforms' genes' log expression, and the branch's genes:
  the corpus's dense matrix (nothing copied).

Every filter is counted in filters.tsv (step, count, what it removed and why); SFs or genes the
compendium lacks are named in the log and dropped with a count, and none left is an error.

What `build` writes (atomically, one directory): data.json (sizes, settings, the corpus and its
digest, the arrays), isoforms.bin (samples × isoforms, float32, corpus sample order),
isoforms.parquet (transcript_id, gene_id, symbol, gene (its index in genes.parquet), mean),
genes.parquet (gene_id, symbol, column in the dense matrix, n_isoforms), factors.parquet
(gene_id, symbol, column, mean and std over the training samples, median over the test
samples), samples.parquet (geo_accession,
series_id, row in the corpus, split: train or test, by series by default) and filters.tsv.
"""

from __future__ import annotations

import json
import logging
import os
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from gexnet.corpus import binning
from gexnet.corpus.normalize import _kept_blocks
from gexnet.errors import GexnetError
from gexnet.formats.archs4 import Archs4File
from gexnet.formats.corpus import Corpus, Dense, validation_split
from gexnet.formats.io import atomic_dir, write_table
from gexnet.formats.matrixfile import MatrixFile

log = logging.getLogger(__name__)

FILTER_COLUMNS = ["step", "count", "reason"]
SPLIT_STREAM = 0x5346  # the test split's own stream beside the seed


def packaged_factors() -> pd.DataFrame:
    """The default SF list: human genes annotated to GO:0008380 RNA splicing (or a descendant),
    from org.Hs.eg.db 3.16.0 (see the file's header): symbol, entrez_id, gene_id (Ensembl IDs,
    ';'-joined where one Entrez gene has several), evidence."""
    path = resources.files("gexnet") / "data" / "splicing_factors.tsv"
    with resources.as_file(path) as p:
        return pd.read_csv(p, sep="\t", comment="#", dtype=str, keep_default_na=False)


def _strip_version(ids: pd.Series) -> pd.Series:
    return ids.astype(str).str.replace(r"\.\d+$", "", regex=True)


def resolve(names: list[str], genes: pd.DataFrame, what: str, filters: list) -> np.ndarray:
    """Rows of `genes` (gene_id, symbol) named by `names` (Ensembl IDs with or without version,
    or symbols; ';'-joined alternatives); those missing are named in the log and counted."""
    by_id = pd.Series(np.arange(len(genes)), index=genes["gene_id"].to_numpy())
    by_symbol = pd.Series(np.arange(len(genes)), index=genes["symbol"].to_numpy())
    by_symbol = by_symbol[~by_symbol.index.duplicated()]
    rows, missing = [], []
    for name in names:
        hit = None
        for alternative in str(name).split(";"):
            key = alternative.split(".")[0] if alternative.startswith("ENS") else alternative
            if key in by_id.index:
                hit = by_id[key]
            elif alternative in by_symbol.index:
                hit = by_symbol[alternative]
            if hit is not None:
                break
        if hit is None:
            missing.append(name)
        else:
            rows.append(int(hit))
    if missing:
        shown = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
        log.warning("%s: %d not in the corpus vocabulary, dropped: %s", what, len(missing), shown)
    filters.append((what, len(missing), "named but not in the corpus vocabulary (in the log)"))
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    if len(rows) == 0:
        raise GexnetError(f"{what}: none of the {len(names)} named is in the corpus vocabulary")
    return rows


def transcript_genes(features: pd.DataFrame, transcript_table, path) -> pd.Series:
    """Each transcript's gene (Ensembl ID, no version): the file's ensembl_gene where it has
    one, else `transcript_table()` (transcript_id, gene_id: Ensembl's, for the species)."""
    if "ensembl_gene" in features and features["ensembl_gene"].astype(str).ne("").any():
        return _strip_version(features["ensembl_gene"])
    if transcript_table is None:
        raise GexnetError(f"{path}: no ensembl_gene field and no transcript table to map its "
                          "transcripts to genes")  # fmt: skip
    table = transcript_table().set_index("transcript_id")["gene_id"]
    log.info("%s: no ensembl_gene field; genes from Ensembl's transcript table", path)
    return _strip_version(features["ensembl_id"]).map(table).fillna("")


def build(transcript_file: str | os.PathLike, corpus_dir: str | os.PathLike,
          qc_table: str | os.PathLike, outdir: str | os.PathLike, settings: dict, scale_to: float,
          species: str, block_values: int, seed: int,
          transcript_table=None) -> None:  # fmt: skip
    """Write the isoform data set (module docstring) into `outdir`. `settings`: the config's
    splicing section; `transcript_table`: a callable giving Ensembl's transcript → gene table,
    for a transcript file without genes."""
    with atomic_dir(outdir) as work:
        _build(Path(transcript_file), Corpus(corpus_dir), Path(qc_table), work, settings,
               scale_to, species, block_values, seed, transcript_table)  # fmt: skip


def _build(path, corpus, qc_table, work, settings, scale_to, species, block_values, seed,
           transcript_table):  # fmt: skip
    filters: list[tuple[str, int, str]] = []
    qc = pd.read_parquet(qc_table)
    samples = pd.read_parquet(corpus.directory / "samples.parquet").sort_values("row")
    vocab = corpus.genes.assign(column=np.arange(len(corpus.genes)))
    with Archs4File(path) as f:
        if f.level != "transcript":
            raise GexnetError(
                f"{path}: a {f.level}-level file; the splicing stage reads transcripts"
            )
        file_samples = f.samples(["geo_accession"])["geo_accession"]
        if not file_samples.equals(qc["geo_accession"]):
            raise GexnetError(
                f"{path}: its samples are not those of the gene file ({qc_table} lists "
                f"{len(qc)}, the transcript file {len(file_samples)}, or in another order)"
            )
        features = f.features()
        tx = pd.DataFrame({"row": np.arange(len(features)),
                           "transcript_id": _strip_version(features["ensembl_id"]),
                           "gene_id": transcript_genes(features, transcript_table, path)})  # fmt: skip
        # transcripts of genes the gene file has; of those, of the corpus's genes
        gene_file = set(pd.read_parquet(corpus.directory / "genes.parquet")["gene_id"])
        known = tx["gene_id"].isin(gene_file)
        if known.mean() < 0.5:
            raise GexnetError(
                f"{path}: {int((~known).sum())} of its {len(tx)} transcripts belong to genes "
                f"the gene file of {corpus.directory} does not have: not the same species or "
                "annotation as the gene file"
            )
        filters.append(("transcripts in the file", len(tx), ""))
        filters.append(("gene not in the gene file", int((~known).sum()),
                        "the transcript's gene is missing from the gene-level file"))  # fmt: skip
        in_vocab = tx["gene_id"].isin(vocab["gene_id"])
        filters.append(("gene not in the corpus", int((known & ~in_vocab).sum()),
                        "the gene left the vocabulary (biotype, duplicate symbol, low mean)"))  # fmt: skip
        tx = tx[in_vocab].reset_index(drop=True)

        # the gene set: configured, else the corpus genes above the expression floor
        mean_log = corpus.reference().set_index("gene_id")["mean"]
        if settings["genes"]:
            wanted = resolve(settings["genes"], vocab, "splicing.genes", filters)
            chosen = vocab.iloc[wanted]
        else:
            floor = settings["min_gene_mean_log"]
            chosen = vocab[mean_log.reindex(vocab["gene_id"]).to_numpy() >= floor]
            filters.append(("gene below the expression floor",
                            int((~tx["gene_id"].isin(chosen["gene_id"])).sum()),
                            f"transcripts of genes with mean log < {floor}"))  # fmt: skip
        tx = tx[tx["gene_id"].isin(chosen["gene_id"])].reset_index(drop=True)

        kept = np.flatnonzero(qc["kept"].to_numpy())
        totals = qc["total_counts"].to_numpy(np.float64)
        corpus_row = pd.Series(samples["row"].to_numpy(), index=samples["geo_accession"])
        rows_of_kept = corpus_row.reindex(qc["geo_accession"].to_numpy()[kept]).to_numpy()
        if np.isnan(rows_of_kept.astype(float)).any() or len(kept) != len(samples):
            raise GexnetError(f"{qc_table}: its kept samples are not those of {corpus.directory}")

        # isoform means over the kept samples, then the isoform filter
        sums = np.zeros(len(tx))
        file_rows = tx["row"].to_numpy()
        order = np.argsort(file_rows)
        for block, counts in _kept_blocks(f, kept, block_values, "isoform means",
                                          file_rows[order]):  # fmt: skip
            sums[order] += binning.scale_log(counts, totals[block], scale_to).sum(1, np.float64)
        tx["mean"] = sums / len(kept)
        low = tx["mean"] < settings["min_isoform_mean_log"]
        filters.append(("isoform below the floor", int(low.sum()),
                        f"isoform mean log < {settings['min_isoform_mean_log']}"))  # fmt: skip
        tx = tx[~low]
        n_isoforms = tx.groupby("gene_id")["transcript_id"].transform("size")
        filters.append(("gene with one isoform", int((n_isoforms < 2).sum()),
                        "its gene keeps a single isoform: no ratio to model"))  # fmt: skip
        tx = tx[n_isoforms >= 2].sort_values(["gene_id", "transcript_id"]).reset_index(drop=True)
        if tx.empty:
            raise GexnetError(f"{path}: no gene keeps two isoforms after the filters "
                              f"(see splicing.min_gene_mean_log, min_isoform_mean_log)")  # fmt: skip

        genes = vocab[vocab["gene_id"].isin(tx["gene_id"])].reset_index(drop=True)
        genes["n_isoforms"] = tx.groupby("gene_id").size().reindex(genes["gene_id"]).to_numpy()
        gene_index = pd.Series(np.arange(len(genes)), index=genes["gene_id"])
        tx["gene"] = gene_index.loc[tx["gene_id"]].to_numpy()
        tx["symbol"] = genes["symbol"].to_numpy()[tx["gene"].to_numpy()]

        # SFs: configured, else the packaged GO list (human)
        names = settings["factors"] or _default_factors(species)
        factor_rows = resolve(names, vocab, "splicing.factors", filters)
        factors = vocab.iloc[factor_rows].reset_index(drop=True)

        # the split: whole series (by default) drawn from the seed
        test = validation_split(samples, settings["test_fraction"], settings["split_by"],
                                seed + SPLIT_STREAM)  # fmt: skip
        if test.all() or not test.any():
            raise GexnetError(f"splicing.test_fraction {settings['test_fraction']}: the split "
                              f"leaves {'no training' if test.all() else 'no test'} sample")  # fmt: skip
        table = samples[["geo_accession", "series_id", "row"]].reset_index(drop=True)
        table["split"] = np.where(test, "test", "train")

        # isoform log values, corpus row order
        file_rows = tx["row"].to_numpy()
        order = np.argsort(file_rows)
        with MatrixFile(work / "isoforms.bin", (len(samples), len(tx)), np.float32, "w") as out:
            done = 0
            for block, counts in _kept_blocks(f, kept, block_values, "isoform values",
                                              file_rows[order]):  # fmt: skip
                values = np.empty((len(tx), counts.shape[1]), np.float32)
                values[order] = binning.scale_log(counts, totals[block], scale_to)
                out.write_rows(rows_of_kept[done : done + len(block)].astype(np.int64), values.T)
                done += len(block)

    dense = Dense.of(corpus, factors["column"].to_numpy())
    test_rows = table.loc[table["split"] == "test", "row"].to_numpy()
    sf_values = np.concatenate([v for _, v in dense.blocks(np.sort(test_rows), 4096)])
    factors["median"] = np.median(sf_values, axis=0)
    train_rows = np.sort(table.loc[table["split"] == "train", "row"].to_numpy())
    train_values = np.concatenate([v for _, v in dense.blocks(train_rows, 4096)])
    factors["mean"], factors["std"] = train_values.mean(0), train_values.std(0)
    write_table(tx.drop(columns="row"), work / "isoforms.parquet")
    write_table(genes, work / "genes.parquet")
    write_table(factors, work / "factors.parquet")
    write_table(table, work / "samples.parquet")
    pd.DataFrame(filters, columns=FILTER_COLUMNS).to_csv(work / "filters.tsv", sep="\t",
                                                          index=False)  # fmt: skip
    header = {
        "species": species, "corpus": str(corpus.directory), "corpus_digest": corpus.digest,
        "transcript_file": str(path), "n_samples": len(table), "n_isoforms": len(tx),
        "n_genes": len(genes), "n_factors": len(factors),
        "n_test": int(test.sum()), "settings": settings, "seed": seed,
        "isoforms": {"file": "isoforms.bin", "shape": [len(table), len(tx)], "dtype": "float32"},
    }  # fmt: skip
    (work / "data.json").write_text(json.dumps(header, indent=2) + "\n")
    log.info("%d isoforms of %d genes, %d SFs, %d samples (%d test)", len(tx), len(genes),
             len(factors), len(table), int(test.sum()))  # fmt: skip


def _default_factors(species: str) -> list[str]:
    """The packaged list as names `resolve` reads: the Ensembl IDs, then the symbol."""
    if species != "human":
        raise GexnetError(
            "splicing.factors: the default list (GO RNA splicing) is of human genes; name the "
            f"{species} SFs (symbols or Ensembl IDs)"
        )
    table = packaged_factors()
    return [f"{ids};{symbol}" if ids else symbol
            for ids, symbol in zip(table["gene_id"], table["symbol"], strict=True)]  # fmt: skip
