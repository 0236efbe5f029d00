"""The file contracts every stage reads and writes: ARCHS4-layout HDF5 compendia, raw matrix
files, the token corpus and its special tokens, embedding tables, atomic writes. Imports no stage.
"""
