"""The isoform data set of the splicing stage, as every later job reads it (written by
`gexnet.corpus.isoforms`, whose docstring lists its files): the isoform matrix, and the SFs'
and genes' log expression from the gene corpus's dense matrix, by corpus sample rows."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from gexnet.errors import GexnetError
from gexnet.formats.corpus import Corpus, Dense
from gexnet.formats.matrixfile import MatrixFile


class IsoformData:
    """A built isoform data set, read by sample rows (corpus rows)."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        header = self.directory / "data.json"
        if not header.exists():
            raise GexnetError(f"{header}: no isoform data here (run the splicing_data rule)")
        self.header = json.loads(header.read_text())
        self.corpus = Corpus(self.header["corpus"])
        if self.corpus.digest != self.header["corpus_digest"]:
            raise GexnetError(f"{self.directory}: built from another version of "
                              f"{self.corpus.directory}; rebuild it")  # fmt: skip
        meta = self.header["isoforms"]
        self.isoform_file = MatrixFile(self.directory / meta["file"], tuple(meta["shape"]),
                                       meta["dtype"])  # fmt: skip
        self.isoforms = pd.read_parquet(self.directory / "isoforms.parquet")
        self.genes = pd.read_parquet(self.directory / "genes.parquet")
        self.factors = pd.read_parquet(self.directory / "factors.parquet")
        self.samples = pd.read_parquet(self.directory / "samples.parquet")
        self.factor_values = Dense.of(self.corpus, self.factors["column"].to_numpy())
        self.gene_values = Dense.of(self.corpus, self.genes["column"].to_numpy())

    def rows(self, split: str) -> np.ndarray:
        return self.samples.loc[self.samples["split"] == split, "row"].to_numpy()

    def read(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """factors, genes, isoforms (float32, len(rows) × each) of corpus rows."""
        return {"factors": self.factor_values.rows(rows), "genes": self.gene_values.rows(rows),
                "isoforms": self.isoform_file.read_rows(rows).astype(np.float32)}  # fmt: skip

    def factor_scaling(self) -> tuple[np.ndarray, np.ndarray]:
        """The SFs' training means and standard deviations (1 where one is constant)."""
        std = self.factors["std"].to_numpy(np.float32)
        return self.factors["mean"].to_numpy(np.float32), np.where(std > 1e-6, std, 1.0)
