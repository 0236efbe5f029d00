"""gexnet: gene representations from bulk RNA-seq compendia, and virtual experiments on them."""

__version__ = "0.1.0"
