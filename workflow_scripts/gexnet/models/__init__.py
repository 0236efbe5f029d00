"""Torch modules, one readable file each (the gene language models today). Imports no stage:
they take tensors and give tensors.
"""
