"""File helpers shared by every stage: atomic outputs and Parquet tables."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds.

    Readers never see a half-written file, and a failed or killed writer leaves no output.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Keep the suffix: writers such as matplotlib choose the format from it.
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_table(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a table atomically; Parquet or TSV by the file's suffix."""
    with atomic_path(path) as tmp:
        if Path(path).suffix == ".tsv":
            table.to_csv(tmp, sep="\t", index=False)
        else:
            table.to_parquet(tmp, index=False)
