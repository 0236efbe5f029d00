"""The token corpus: what normalization writes (gexnet.corpus.normalize) and every later stage
reads, through this one reader (no torch).

A corpus directory holds corpus.json (the arrays' files, dtypes and shapes, counts, the settings
and seed it was built with, the SHA-256 of its files), vocabulary.tsv, the memory-mapped arrays
(tokens_<normalization>, levels_<normalization>, dense) and reference.parquet.

Token IDs: 0 <pad> (after a sample's last expressed gene), 1 <mask> (masked-gene and
masked-expression training), 2 <cls> (reserved for a sequence summary); genes follow from 3
in vocabulary order (Ensembl ID order).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from gexnet.errors import GexnetError
from gexnet.formats.matrixfile import open_array

SPECIAL_TOKENS = ("<pad>", "<mask>", "<cls>")
PAD, MASK, CLS = range(len(SPECIAL_TOKENS))
FIRST_GENE_TOKEN = len(SPECIAL_TOKENS)
NORMALIZATIONS = ("binning", "zscore")


def vocabulary(genes: pd.DataFrame) -> pd.DataFrame:
    """token_id, token, gene_id, symbol, biotype: the special tokens, then the genes in order."""
    special = pd.DataFrame(
        {"token_id": range(FIRST_GENE_TOKEN), "token": SPECIAL_TOKENS,
         "gene_id": "", "symbol": "", "biotype": ""}
    )  # fmt: skip
    body = genes[["gene_id", "symbol", "biotype"]].reset_index(drop=True)
    body.insert(0, "token", body["gene_id"])
    body.insert(0, "token_id", np.arange(len(body)) + FIRST_GENE_TOKEN)
    return pd.concat([special, body], ignore_index=True)


def token_dtype(n_tokens: int) -> np.dtype:
    return np.dtype(np.uint16 if n_tokens <= 2**16 else np.uint32)


def validation_split(samples: pd.DataFrame, fraction: float, by: str, seed: int) -> np.ndarray:
    """The one train/validation split of the workflow (the corpus's samples.parquet, and the
    autoencoder's own when its settings differ): True for validation samples: whole series (by="series") or single samples (by="sample"),
    drawn with `seed` until `fraction` of the samples is reached."""
    rng = np.random.default_rng(seed)
    target = round(fraction * len(samples))
    if by == "sample":
        validation = np.zeros(len(samples), bool)
        validation[rng.permutation(len(samples))[:target]] = True
        return validation
    sizes = samples.groupby("series_id", sort=True).size()
    chosen, total = [], 0
    for series in rng.permutation(sizes.index.to_numpy()):
        if total >= target:
            break
        chosen.append(series)
        total += sizes[series]
    return samples["series_id"].isin(chosen).to_numpy()


class Corpus:
    """A corpus directory: its description, vocabulary and arrays.

    `digest` (SHA-256 of corpus.json's bytes) identifies the corpus: its description changes
    whenever a rebuild would change the arrays, and does not depend on where the corpus lies.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.header_path = self.directory / "corpus.json"
        if not self.header_path.exists():
            raise GexnetError(f"{self.header_path}: no corpus here (run the corpus rule first)")
        raw = self.header_path.read_bytes()
        self.digest = hashlib.sha256(raw).hexdigest()
        self.header = json.loads(raw)
        self.n_samples, self.n_train = self.header["n_samples"], self.header["n_train"]
        self.context, self.n_levels = self.header["context"], self.header["levels"]
        self.vocabulary = pd.read_csv(
            self.directory / self.header["vocabulary"], sep="\t", keep_default_na=False
        )

    @property
    def genes(self) -> pd.DataFrame:
        """gene_id, symbol, biotype of the vocabulary's genes, in token order."""
        genes = self.vocabulary.iloc[FIRST_GENE_TOKEN:][["gene_id", "symbol", "biotype"]]
        return genes.reset_index(drop=True)

    def array(self, name: str) -> np.memmap:
        """An array of the corpus (read-only memory map), e.g. "dense" or "tokens_binning"."""
        if name not in self.header["arrays"]:
            known = ", ".join(sorted(self.header["arrays"]))
            raise GexnetError(f"{self.header_path}: no {name} array (it has {known})")
        return open_array(self.header_path, name)

    def reference(self) -> pd.DataFrame:
        """Per gene: gene_id, token_id, n_nonzero, mean, std, reference (sorted values)."""
        return pd.read_parquet(self.directory / "reference.parquet")

    def sequences(self, normalization: str, biotypes=None) -> TokenSequences:
        """The token sequences of one normalization, optionally of some biotypes only."""
        return TokenSequences(self, normalization, biotypes)


class TokenSequences:
    """A corpus's token and level arrays for one normalization, optionally restricted to genes
    of some biotypes (renumbered; each sequence keeps its order)."""

    def __init__(self, corpus: Corpus, normalization: str, biotypes=None) -> None:
        if normalization not in NORMALIZATIONS:
            raise GexnetError(
                f"unknown normalization {normalization!r} ({', '.join(NORMALIZATIONS)})"
            )
        self.corpus = corpus
        self.tokens = corpus.array(f"tokens_{normalization}")
        self.levels = corpus.array(f"levels_{normalization}")
        vocabulary = corpus.vocabulary
        self.remap = None
        if biotypes:
            keep = (vocabulary["token_id"] < FIRST_GENE_TOKEN) | vocabulary["biotype"].isin(
                biotypes
            )
            if not keep[FIRST_GENE_TOKEN:].any():
                raise GexnetError(f"{corpus.header_path}: no gene of biotypes {list(biotypes)}")
            self.remap = np.where(keep, np.cumsum(keep) - 1, -1).astype(np.int64)
            vocabulary = vocabulary[keep].assign(token_id=lambda v: np.arange(len(v)))
        self.vocabulary = vocabulary.reset_index(drop=True)
        self.n_tokens = len(self.vocabulary)
        # the corpus's sizes, as the sequences' users need them
        self.n_train, self.n_samples = corpus.n_train, corpus.n_samples
        self.context, self.n_levels = corpus.context, corpus.n_levels

    def rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Token IDs and levels (int64, len(rows) × context) of corpus rows."""
        context = self.corpus.context
        order = np.argsort(rows)  # memory maps read fastest in order
        tokens = np.empty((len(rows), context), np.int64)
        levels = np.empty((len(rows), context), np.int64)
        tokens[order] = self.tokens[rows[order]]
        levels[order] = self.levels[rows[order]]
        if self.remap is not None:  # drop other biotypes, close the gaps, pad the end
            mapped = self.remap[tokens]
            kept = mapped >= 0
            shift = np.argsort(~kept, axis=1, kind="stable")  # kept positions first, in order
            tokens = np.where(
                np.take_along_axis(kept, shift, 1), np.take_along_axis(mapped, shift, 1), PAD
            )
            levels = np.where(tokens != PAD, np.take_along_axis(levels, shift, 1), 0)
        return tokens, levels


class Dense:
    """A dense matrix file (samples × genes) restricted to some genes (columns), read by rows."""

    def __init__(self, path: str | Path, shape: tuple[int, int], dtype, columns) -> None:
        from gexnet.formats.matrixfile import MatrixFile

        self.path = Path(path)
        self.file = MatrixFile(self.path, shape, dtype)
        self.columns = np.asarray(columns, dtype=np.int64)

    @classmethod
    def of(cls, corpus: Corpus, columns) -> Dense:
        """A corpus's dense log matrix."""
        meta = corpus.header["arrays"]["dense"]
        return cls(corpus.directory / meta["file"], tuple(meta["shape"]), meta["dtype"], columns)

    def rows(self, rows: np.ndarray) -> np.ndarray:
        """float32 log values (len(rows) × genes) of corpus rows."""
        return self.file.read_rows(rows)[:, self.columns].astype(np.float32)

    def blocks(self, rows: np.ndarray, block: int):
        for i in range(0, len(rows), block):
            yield rows[i : i + block], self.rows(rows[i : i + block])
