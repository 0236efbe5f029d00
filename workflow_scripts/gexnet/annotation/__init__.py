"""Annotation tables from packaged data or configured files: genes, human–mouse orthologs and
gene-property labels (HPO, GO, gene-set libraries), keyed by Ensembl gene ID.
"""
