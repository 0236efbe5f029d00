"""From a compendium to the token corpus: sample QC, library-size scaling, Binning-By-Gene,
z-scores, each sample's top genes, the dense log matrix, binning new samples.
"""
