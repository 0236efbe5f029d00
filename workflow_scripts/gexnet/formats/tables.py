"""Names the stages' tables share: the species, and the columns of the gene-property labels
table (written by the annotation stage, read by the classifiers)."""

from __future__ import annotations

SPECIES = ("human", "mouse")
LABEL_COLUMNS = ["source", "term_id", "term_name", "gene_id"]
