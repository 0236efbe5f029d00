"""Gene embedding tables: a trained model's token-embedding rows (special tokens left out), or a
baseline's vectors, one row per gene.

Two files: Parquet (gene_id, symbol, biotype, species, then one float column per dimension,
dim_1..dim_d; tables written before the species column read too) and word2vec text (a header
line `genes dimensions`, then `gene v1 … vd` a line; the gene named by its symbol, or its
Ensembl ID where the symbol is empty or shared), which gensim's
`KeyedVectors.load_word2vec_format` and most embedding tools read. In a joint embedding (two
species, or a species and its pseudo copy) the second species' names get a prefix (m_ mouse,
h_ human, p_ the pseudo copy), so that every name is unique.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gexnet.errors import GexnetError
from gexnet.formats.io import atomic_path

GENE_COLUMNS = ("gene_id", "symbol", "biotype", "species")
PSEUDO_SUFFIX = "_pseudo"  # the pseudo-species control's copy of a species: "<species>_pseudo"


def read_embedding(path: str | Path) -> tuple[pd.DataFrame, np.ndarray]:
    """(genes: gene_id, symbol, biotype and species where the table has it; vectors genes × d
    float32) of an embedding Parquet."""
    table = pd.read_parquet(path)
    dims = table.filter(regex=r"^dim_\d+$")
    if dims.shape[1] == 0 or not {"gene_id", "symbol", "biotype"} <= set(table.columns):
        raise GexnetError(f"{path}: expected gene_id, symbol, biotype and dim_1.. columns")
    vectors = dims.to_numpy(np.float32)
    if not np.isfinite(vectors).all():
        raise GexnetError(f"{path}: non-finite values in the embedding")
    columns = [c for c in GENE_COLUMNS if c in table.columns]
    return table[columns].reset_index(drop=True), vectors


def embedding_table(genes: pd.DataFrame, vectors: np.ndarray) -> pd.DataFrame:
    """The Parquet layout: gene_id, symbol, biotype, species (where `genes` has it), then
    dim_1..dim_d."""
    genes = genes[[c for c in GENE_COLUMNS if c in genes.columns]].reset_index(drop=True)
    dims = pd.DataFrame(vectors, columns=[f"dim_{i + 1}" for i in range(vectors.shape[1])])
    return pd.concat([genes, dims], axis=1)


def species_prefix(species: str) -> str:
    """The word2vec prefix of a joint embedding's second species."""
    if species.endswith(PSEUDO_SUFFIX):
        return "p_"
    return {"mouse": "m_", "human": "h_"}.get(species, f"{species}_")


def word2vec_names(table: pd.DataFrame) -> pd.Series:
    """The symbol where it names one gene of its species, else the Ensembl ID; the second
    species of a joint embedding prefixed (species_prefix)."""
    species = table["species"] if "species" in table.columns else pd.Series("", table.index)
    symbol = table["symbol"]
    shared = pd.DataFrame({"species": species, "symbol": symbol}).duplicated(keep=False)
    names = symbol.where((symbol != "") & ~shared, table["gene_id"])
    order = list(dict.fromkeys(species))  # the species in the model's vocabulary order
    for second in order[1:]:
        names = names.where(species != second, species_prefix(second) + names)
    return names


def write_word2vec(table: pd.DataFrame, path: str | Path) -> None:
    vectors = table.filter(regex=r"^dim_\d+$").to_numpy(np.float32)
    names = word2vec_names(table)
    with atomic_path(path) as tmp, open(tmp, "w") as out:
        out.write(f"{len(table)} {vectors.shape[1]}\n")
        for name, vector in zip(names, vectors, strict=True):
            out.write(name + " " + " ".join(f"{v:.6g}" for v in vector) + "\n")


def read_word2vec(path: str | Path) -> pd.DataFrame:
    """gene (index) × dim_1..dim_d from a word2vec text file."""
    with open(path) as f:
        n, d = (int(x) for x in f.readline().split())
        rows = [line.rstrip("\n").split(" ") for line in f]
    if len(rows) != n or any(len(r) != d + 1 for r in rows):
        raise ValueError(f"{path}: header says {n} × {d}, body disagrees")
    index = [r[0] for r in rows]
    values = np.array([r[1:] for r in rows], dtype=np.float32)
    return pd.DataFrame(values, index=index, columns=[f"dim_{i + 1}" for i in range(d)])
