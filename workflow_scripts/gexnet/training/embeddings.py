"""Export a trained gene language model's gene embeddings: its token-embedding rows, special
tokens left out, as the embedding tables of `gexnet.formats.embeddings`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from gexnet.formats.corpus import FIRST_GENE_TOKEN
from gexnet.formats.embeddings import embedding_table
from gexnet.training.lm import load_model


def gene_embeddings(model_dir: str | Path) -> pd.DataFrame:
    """gene_id, symbol, biotype, species, dim_1..dim_d of a training output directory (a
    model from before vocabularies had a species column: its experiment's species)."""
    model, description = load_model(model_dir)
    vocabulary = pd.read_csv(
        Path(model_dir) / description["vocabulary"], sep="\t", keep_default_na=False
    )
    genes = vocabulary.iloc[FIRST_GENE_TOKEN:].reset_index(drop=True)
    vectors = model.gene_embeddings().numpy()
    if len(genes) != len(vectors):
        raise ValueError(f"{model_dir}: {len(vectors)} embeddings for {len(genes)} genes")
    if "species" not in genes.columns:
        genes = genes.assign(species=description["experiment"].get("species", "human"))
    return embedding_table(genes[["gene_id", "symbol", "biotype", "species"]], vectors)
