"""Figures from the stages' summary tables, for the Snakemake report."""
