"""File helpers shared by every stage: atomic outputs, Parquet tables, gzip by content."""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pandas as pd

from gexnet.errors import GexnetError, first_line

GZIP_MAGIC = b"\x1f\x8b"


def temporary_path(path: str | os.PathLike) -> Path:
    """A hidden name beside `path` for writing it before it is renamed into place (the suffix
    kept: writers such as matplotlib choose the format from it)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds.

    Readers never see a half-written file, and a failed or killed writer leaves no output.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty work directory beside `path`; it replaces `path` only if the block
    succeeds (a failure leaves the old directory, or none, and no work directory)."""
    path = Path(path)
    work = temporary_path(path)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        yield work
        shutil.rmtree(path, ignore_errors=True)
        os.replace(work, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_table(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a table atomically; Parquet or TSV by the file's suffix."""
    with atomic_path(path) as tmp:
        if Path(path).suffix == ".tsv":
            table.to_csv(tmp, sep="\t", index=False)
        else:
            table.to_parquet(tmp, index=False)


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """A table write_table wrote: TSV by the file's suffix, else Parquet; a missing or
    unreadable file is one error naming it."""
    path = Path(path)
    try:
        if path.suffix == ".tsv":
            return pd.read_csv(path, sep="\t")
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise GexnetError(f"{path}: no such table") from None
    except (OSError, ValueError) as e:
        raise GexnetError(f"{path}: not a readable table ({e})") from None


def is_gzip(path: str | os.PathLike) -> bool:
    """Whether a file is gzip-compressed, by its first bytes (downloads keep whatever name
    they get, so the name does not tell)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(2) == GZIP_MAGIC
    except OSError as exc:
        raise GexnetError(f"{path}: cannot read: {first_line(exc)}") from exc


def open_text(path: str | os.PathLike, errors: str = "strict") -> IO[str]:
    """A UTF-8 text handle on a plain or gzip-compressed file."""
    if is_gzip(path):
        return gzip.open(path, "rt", encoding="utf-8", errors=errors, newline="")
    return open(path, encoding="utf-8", errors=errors, newline="")
