"""Gene-property labels (HPO, GO, gene-set libraries) from packaged data or configured files,
keyed by Ensembl gene ID; the gene and ortholog tables they map through come from sources.genome.
"""
