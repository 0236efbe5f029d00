"""Expression compendia from where they come from (ARCHS4 downloads, GEO series, your own matrix,
the generated demo) to ARCHS4-layout files, and the packaged Ensembl genes they are keyed by.
"""
