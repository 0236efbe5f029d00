"""Normalization and the token corpus, streamed in blocks within a budget of values.

From one ARCHS4-layout gene file and its sample QC table, for the samples QC kept:

1. gene statistics (sample blocks): each gene's mean log value, then the vocabulary: biotypes
   from config, duplicate symbols collapsed to the gene with the highest mean, genes whose mean
   log value is at most `genes.min_mean_log` dropped; every gene's fate in genes.parquet;
2. log values (sample blocks): log10(count / total · scale_to + 1) of the vocabulary genes into
   the dense matrix (samples × genes) and a gene-major scratch copy;
3. Binning-By-Gene (gene blocks of the scratch): bins, the per-gene reference for new samples,
   and the mean and standard deviation of the z-score variant;
4. tokens (sample blocks): per sample its top `context` expressed genes by bin and by z-score,
   with their within-sample expression levels; validation samples (by series by default) after
   the training ones.

Every pass holds at most `block_values` values of the compendium at once (times a small number
of bytes per value), so memory is set by the budget and not by the number of samples. The
output directory is built under a temporary name and renamed into place when complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from gexnet.corpus import binning, tokens
from gexnet.errors import GexnetError
from gexnet.formats import corpus as corpus_format
from gexnet.formats.archs4 import Archs4File
from gexnet.formats.io import atomic_dir, atomic_path, write_table
from gexnet.formats.matrixfile import MatrixFile, write_header

log = logging.getLogger(__name__)

SETTINGS = ("genes", "normalize", "tokens", "dense")  # the config sections a corpus depends on


def normalize(
    compendium: str | os.PathLike,
    qc_table: str | os.PathLike,
    outdir: str | os.PathLike,
    settings: dict,
    block_values: int,
    seed: int,
) -> None:
    """Write genes.parquet, vocabulary.tsv, samples.parquet, reference.parquet, the dense log
    matrix and the token corpora (with corpus.json describing them) into `outdir`.

    `settings`: the config's genes, normalize, tokens and dense sections. corpus.json records
    them, the seed, and the SHA-256 of the vocabulary and of every array, so its content
    changes whenever the corpus does, and only then (the block budget changes nothing).
    """
    with atomic_dir(outdir) as work:
        _normalize(Path(compendium), Path(qc_table), work, settings, block_values, seed)
        shutil.rmtree(work / "scratch")


def _normalize(compendium, qc_table, work, settings, block_values, seed) -> None:
    cfg_genes, cfg_norm, cfg_tokens = settings["genes"], settings["normalize"], settings["tokens"]
    bins, scale_to = cfg_norm["bins"], cfg_norm["scale_to"]
    qc = pd.read_parquet(qc_table)
    with Archs4File(compendium) as f:
        samples = f.samples(["geo_accession", "series_id"])
        if not samples["geo_accession"].equals(qc["geo_accession"]):
            raise GexnetError(f"{qc_table}: its samples are not those of {compendium}")
        kept = np.flatnonzero(qc["kept"].to_numpy())
        if len(kept) == 0:
            raise GexnetError(f"{qc_table}: QC kept no sample")
        totals = qc["total_counts"].to_numpy(np.float64)
        features = f.features()

        # 1. gene statistics over the kept samples → vocabulary
        sums = np.zeros(f.n_features)
        for block, counts in _kept_blocks(f, kept, block_values, "gene statistics"):
            sums += binning.scale_log(counts, totals[block], scale_to).sum(axis=1, dtype=np.float64)
        genes = _vocabulary(features, sums / len(kept), cfg_genes)
        write_table(genes, work / "genes.parquet")
        vocab = genes[genes["in_vocabulary"]].reset_index(drop=True)
        rows = vocab["row"].to_numpy()
        n_genes, n_samples = len(vocab), len(kept)
        if n_genes == 0:
            raise GexnetError(f"{compendium}: no gene passed the vocabulary filters (genes.*)")
        vocabulary = corpus_format.vocabulary(vocab)
        vocabulary.to_csv(work / "vocabulary.tsv", sep="\t", index=False)

        # the split decides the corpus order: training samples first, then validation
        table = samples.iloc[kept].reset_index(drop=True)
        validation = corpus_format.validation_split(
            table, cfg_tokens["validation_fraction"], cfg_tokens["split_by"], seed
        )
        order = np.concatenate([np.flatnonzero(~validation), np.flatnonzero(validation)])
        position = np.empty(n_samples, np.int64)
        position[order] = np.arange(n_samples)
        table["split"] = np.where(validation, "validation", "train")
        table["row"] = position
        write_table(table.sort_values("row"), work / "samples.parquet")

        # 2. log values: dense (samples × genes, corpus order) and the gene-major scratch
        dense_dtype = np.dtype(settings["dense"]["dtype"])
        scratch = work / "scratch"
        with (
            MatrixFile(work / "dense.bin", (n_samples, n_genes), dense_dtype, "w") as dense,
            MatrixFile(scratch / "log.f32", (n_genes, n_samples), np.float32, "w") as by_gene,
        ):
            done = 0
            for block, counts in _kept_blocks(f, kept, block_values, "log values", rows):
                values = binning.scale_log(counts, totals[block], scale_to)
                by_gene.write(0, done, values)
                dense.write_rows(position[done : done + values.shape[1]], values.T)
                done += values.shape[1]

    # 3. Binning-By-Gene, by gene blocks of the scratch; each block's reference rows go to
    # reference.parquet as one row group (0.5% of every value would grow with the samples)
    n_nonzero = np.zeros(n_genes, np.int64)
    gene_block = max(1, block_values // n_samples)
    mean = np.zeros(n_genes, np.float64)
    std = np.zeros(n_genes, np.float64)
    token_ids = vocabulary["token_id"].iloc[corpus_format.FIRST_GENE_TOKEN :].to_numpy()
    with (
        MatrixFile(scratch / "log.f32", (n_genes, n_samples), np.float32) as by_gene,
        MatrixFile(scratch / "bins.u16", (n_genes, n_samples), np.uint16, "w") as bin_file,
        _reference_writer(work / "reference.parquet") as write_reference,
    ):
        for g0 in tqdm(range(0, n_genes, gene_block), desc="binning", unit="block"):
            values = by_gene.read(slice(g0, g0 + gene_block))
            here = slice(g0, g0 + len(values))
            block_bins, sorted_values = binning.bin_genes(values, bins)
            bin_file.write(g0, 0, block_bins)
            mean[here] = values.mean(axis=1, dtype=np.float64)
            std[here] = values.std(axis=1, dtype=np.float64)
            n_nonzero[here] = np.count_nonzero(values, axis=1)
            samples_kept = [
                binning.reference_sample(
                    row[np.searchsorted(row, 0.0, side="right") :],
                    cfg_norm["reference_fraction"],
                    bins,
                )
                for row in sorted_values
            ]
            write_reference(
                vocab["gene_id"].to_numpy()[here], token_ids[here], n_nonzero[here],
                mean[here], std[here], [np.asarray(r, np.float32) for r in samples_kept],
            )  # fmt: skip

    # 4. tokens, by sample blocks
    context = cfg_tokens["context"]
    dtype = corpus_format.token_dtype(len(vocabulary))
    sample_block = max(1, block_values // n_genes)
    safe_std = np.where(std > 0, std, 1.0).astype(np.float32)
    outputs = {}
    with (
        MatrixFile(scratch / "log.f32", (n_genes, n_samples), np.float32) as by_gene,
        MatrixFile(scratch / "bins.u16", (n_genes, n_samples), np.uint16) as bin_file,
    ):
        for norm in corpus_format.NORMALIZATIONS:
            outputs[norm] = (
                MatrixFile(work / f"tokens_{norm}.bin", (n_samples, context), dtype, "w"),
                MatrixFile(work / f"levels_{norm}.bin", (n_samples, context), np.uint8, "w"),
            )
        try:
            for s0 in tqdm(range(0, n_samples, sample_block), desc="tokens", unit="block"):
                window = slice(s0, s0 + sample_block)
                values = by_gene.read(slice(None), window).T  # samples × genes
                expressed = values > 0
                scores = {
                    "binning": bin_file.read(slice(None), window).T,
                    "zscore": (values - mean.astype(np.float32)) / safe_std,
                }
                where = position[s0 : s0 + len(values)]
                for norm, (token_file, level_file) in outputs.items():
                    chosen = tokens.top_genes(scores[norm], expressed, context)
                    ids = np.where(
                        chosen >= 0, chosen + corpus_format.FIRST_GENE_TOKEN, corpus_format.PAD
                    )
                    token_file.write_rows(where, ids)
                    level_file.write_rows(where, tokens.within_sample_levels(values, chosen))
        finally:
            for files in outputs.values():
                for file in files:
                    file.close()

    n_train = int((~validation).sum())
    arrays = {
        "dense": {"file": "dense.bin", "dtype": dense_dtype.name, "shape": [n_samples, n_genes]}
    }
    for norm in corpus_format.NORMALIZATIONS:
        arrays[f"tokens_{norm}"] = {"file": f"tokens_{norm}.bin", "dtype": dtype.name,
                                    "shape": [n_samples, context]}  # fmt: skip
        arrays[f"levels_{norm}"] = {"file": f"levels_{norm}.bin", "dtype": "uint8",
                                    "shape": [n_samples, context]}  # fmt: skip
    write_header(
        work / "corpus.json",
        {
            "arrays": arrays,
            "n_samples": n_samples,
            "n_train": n_train,
            "n_validation": n_samples - n_train,
            "rows": "training samples first, then validation (samples.parquet: row, split)",
            "vocabulary": "vocabulary.tsv",
            "n_tokens": len(vocabulary),
            "special_tokens": dict(zip(corpus_format.SPECIAL_TOKENS, range(3), strict=True)),
            "context": context,
            "bins": bins,
            "levels": 100,
            "scale_to": scale_to,
            "dense_genes": "vocabulary order (token_id - 3)",
            "source": str(compendium),
            # what it was built from and what it holds: a rebuild that would give another
            # corpus gives another description (training tells corpora apart by its digest)
            "settings": {section: settings[section] for section in SETTINGS},
            "seed": seed,
            "sha256": {
                name: _sha256(work / name)
                for name in ["vocabulary.tsv", *(a["file"] for a in arrays.values())]
            },
        },
    )
    log.info(
        "%s: %d samples (%d train, %d validation), %d genes in the vocabulary",
        compendium, n_samples, n_train, n_samples - n_train, n_genes,
    )  # fmt: skip


REFERENCE_ROW_GROUP = 1024  # genes a row group of reference.parquet holds


@contextlib.contextmanager
def _reference_writer(path: Path):
    """reference.parquet written a row group at a time: yields write(gene_id, token_id,
    n_nonzero, mean, std, reference) for a block of genes, `reference` being each gene's kept
    sorted non-zero values. Row groups hold a fixed number of genes, so the file's bytes do not
    depend on the block budget."""
    schema = pa.schema(
        [("gene_id", pa.string()), ("token_id", pa.int64()), ("n_nonzero", pa.int64()),
         ("mean", pa.float64()), ("std", pa.float64()), ("reference", pa.list_(pa.float32()))]
    )  # fmt: skip
    pending: list[pa.Table] = []

    def flush(final: bool) -> None:
        table = pa.concat_tables(pending) if pending else schema.empty_table()
        whole = len(table) if final else len(table) // REFERENCE_ROW_GROUP * REFERENCE_ROW_GROUP
        for start in range(0, whole, REFERENCE_ROW_GROUP):
            writer.write_table(table.slice(start, min(REFERENCE_ROW_GROUP, whole - start)))
        pending[:] = [table.slice(whole)] if whole < len(table) else []

    def write(*columns) -> None:
        arrays = [pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)]
        pending.append(pa.Table.from_arrays(arrays, schema=schema))
        flush(final=False)

    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        yield write
        flush(final=True)


def _kept_blocks(f: Archs4File, kept: np.ndarray, block_values: int, what: str, rows=None):
    """(sample indices, counts of `rows` × those samples) over the kept samples, in blocks.

    Each read is a window of at most the budget's width of consecutive samples, starting at a
    kept one, of which only the kept columns are kept: a run of removed samples (a failing
    study: ARCHS4 files are ordered by series) is stepped over, never read whole.
    """
    width = max(1, block_values // f.n_features)
    with tqdm(total=len(kept), desc=what, unit="sample") as progress:
        i = 0
        while i < len(kept):
            start = int(kept[i])
            end = int(np.searchsorted(kept, start + width))  # the kept samples in the window
            chosen = kept[i:end]
            counts = f.read(samples=slice(start, int(chosen[-1]) + 1))
            if counts.shape[1] != len(chosen):
                counts = counts[:, chosen - start]
            yield chosen, (counts if rows is None else counts[rows])
            progress.update(len(chosen))
            i = end


def _vocabulary(features: pd.DataFrame, mean_log: np.ndarray, cfg: dict) -> pd.DataFrame:
    """Every gene of the file with its mean log value and why it is in or out of the vocabulary."""
    genes = pd.DataFrame(
        {"row": np.arange(len(features)), "gene_id": features["ensembl_gene"],
         "symbol": features["symbol"], "biotype": features["biotype"], "mean_log": mean_log}
    )  # fmt: skip
    reason = np.full(len(genes), "", dtype=object)
    reason[~genes["biotype"].isin(cfg["biotypes"]).to_numpy()] = "biotype"
    candidates = genes[reason == ""]
    best = candidates.sort_values(["mean_log", "row"], ascending=[False, True])
    duplicate = best[best["symbol"].ne("") & best.duplicated("symbol")]["row"].to_numpy()
    reason[duplicate] = "duplicate_symbol"
    low = (genes["mean_log"].to_numpy() <= cfg["min_mean_log"]) & (reason == "")
    reason[low] = "low_mean"
    genes["reason"] = reason
    genes["in_vocabulary"] = reason == ""
    return genes.sort_values("gene_id", kind="stable").reset_index(drop=True)


def bin_new_samples(
    compendium: str | os.PathLike, corpus: str | os.PathLike, outdir: str | os.PathLike,
    block_values: int,
) -> None:  # fmt: skip
    """Bin the samples of any ARCHS4-layout file against a corpus's stored reference.

    As a user would for their own data: the same scaling and log transform, each vocabulary
    gene binned against its reference (genes missing from the file count as zeros), and the
    token sequences built as for the corpus. Writes bins.bin (samples × vocabulary genes),
    tokens_binning.bin, levels_binning.bin, samples.parquet and corpus.json into `outdir`.
    """
    reader, outdir = corpus_format.Corpus(corpus), Path(outdir)
    header, reference = reader.header, reader.reference()
    bins, scale_to, context = header["bins"], header["scale_to"], header["context"]
    n_genes = len(reference)
    with atomic_dir(outdir) as work:
        with Archs4File(compendium) as f:
            row_of = pd.Series(np.arange(f.n_features), index=f.features()["ensembl_gene"])
            rows = row_of.reindex(reference["gene_id"]).to_numpy()
            present = ~np.isnan(rows)
            log.info("%d of %d vocabulary genes present in %s", present.sum(), n_genes, compendium)
            samples = f.samples(["geo_accession", "series_id"])
            n_samples = f.n_samples
            dtype = corpus_format.token_dtype(header["n_tokens"])
            with (
                MatrixFile(work / "bins.bin", (n_samples, n_genes), np.uint16, "w") as bin_file,
                MatrixFile(work / "tokens_binning.bin", (n_samples, context), dtype, "w") as tok,
                MatrixFile(work / "levels_binning.bin", (n_samples, context), np.uint8, "w") as lev,
            ):
                # blocks hold the file's genes and the vocabulary's: the budget takes the larger
                width = max(1, block_values // max(f.n_features, n_genes))
                for start in range(0, n_samples, width):
                    counts = f.read(samples=slice(start, start + width))
                    totals = counts.sum(axis=0, dtype=np.int64)
                    values = np.zeros((n_genes, counts.shape[1]), np.float32)
                    values[present] = binning.scale_log(
                        counts[rows[present].astype(np.int64)], totals, scale_to
                    )
                    del counts
                    block_bins = np.empty(values.shape, np.uint16)
                    for g, ref in enumerate(reference["reference"]):
                        block_bins[g] = binning.bin_against_reference(values[g], ref, bins)
                    bin_file.write(start, 0, block_bins.T)
                    chosen = tokens.top_genes(block_bins.T, values.T > 0, context)
                    ids = np.where(
                        chosen >= 0, chosen + corpus_format.FIRST_GENE_TOKEN, corpus_format.PAD
                    )
                    tok.write(start, 0, ids)
                    lev.write(start, 0, tokens.within_sample_levels(values.T, chosen))
        write_table(samples, work / "samples.parquet")
        write_header(
            work / "corpus.json",
            {
                "arrays": {
                    "bins": {"file": "bins.bin", "dtype": "uint16", "shape": [n_samples, n_genes]},
                    "tokens_binning": {
                        "file": "tokens_binning.bin",
                        "dtype": dtype.name,
                        "shape": [n_samples, context],
                    },
                    "levels_binning": {
                        "file": "levels_binning.bin",
                        "dtype": "uint8",
                        "shape": [n_samples, context],
                    },
                },
                "reference": str(reader.directory),
                "vocabulary": str(reader.directory / "vocabulary.tsv"),
                "genes_missing_from_input": int((~present).sum()),
                "context": context,
                "bins": bins,
            },
        )


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def summary(corpus: str | os.PathLike) -> pd.DataFrame:
    """What the normalization kept and dropped: genes by reason, samples by split."""
    corpus = Path(corpus)
    genes = pd.read_parquet(corpus / "genes.parquet")
    samples = pd.read_parquet(corpus / "samples.parquet")
    names = {"": "in the vocabulary", "biotype": "removed: biotype not in genes.biotypes",
             "duplicate_symbol": "removed: duplicate symbol (lower mean)",
             "low_mean": "removed: mean log value ≤ genes.min_mean_log"}  # fmt: skip
    rows = [("genes", "in the file", len(genes))]
    rows += [("genes", names[r], int((genes["reason"] == r).sum())) for r in names]
    rows += [("samples", "kept by QC", len(samples))]
    rows += [("samples", f"{s} ({samples.loc[samples['split'] == s, 'series_id'].nunique()} "
              "series)", int((samples["split"] == s).sum())) for s in ("train", "validation")]  # fmt: skip
    return pd.DataFrame(rows, columns=["what", "step", "count"])
