"""Raw row-major matrices on disk with a JSON header beside them, read and written by block.

Used for the token corpora, the dense log matrix and the normalization scratch. Reads and
writes go through positioned I/O on a plain file (not a memory map), so the pages a block
touches are not held in the process: memory stays set by the block, whatever the file's size.
Readers elsewhere can still `np.memmap(path, dtype, shape=...)` the file from its header.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


class MatrixFile:
    """A rows × cols matrix of one dtype in a raw file, accessed by row and column ranges."""

    def __init__(self, path: str | os.PathLike, shape: tuple[int, int], dtype, mode: str = "r"):
        self.path = Path(path)
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        if mode == "w":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "wb") as f:
                f.truncate(self.shape[0] * self.shape[1] * self.dtype.itemsize)
        self._fd = os.open(self.path, os.O_RDWR if mode == "w" else os.O_RDONLY)

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> MatrixFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _offset(self, row: int, col: int) -> int:
        return (row * self.shape[1] + col) * self.dtype.itemsize

    def read(self, rows: slice, cols: slice = slice(None)) -> np.ndarray:
        r0, r1, _ = rows.indices(self.shape[0])
        c0, c1, _ = cols.indices(self.shape[1])
        out = np.empty((r1 - r0, c1 - c0), self.dtype)
        if c0 == 0 and c1 == self.shape[1]:  # whole rows are one contiguous run
            _pread_into(self._fd, out, self._offset(r0, 0))
        else:
            for i, row in enumerate(range(r0, r1)):
                _pread_into(self._fd, out[i], self._offset(row, c0))
        return out

    def read_rows(self, rows: np.ndarray) -> np.ndarray:
        """Whole rows at arbitrary positions (out row i is rows[i]), read in file order."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.shape[1]), self.dtype)
        for i in np.argsort(rows, kind="stable"):
            _pread_into(self._fd, out[i], self._offset(int(rows[i]), 0))
        return out

    def write(self, row0: int, col0: int, block: np.ndarray) -> None:
        """Write a block with its top-left corner at (row0, col0)."""
        block = np.ascontiguousarray(block, dtype=self.dtype)
        if col0 == 0 and block.shape[1] == self.shape[1]:
            os.pwrite(self._fd, block.tobytes(), self._offset(row0, 0))
        else:
            for i in range(block.shape[0]):
                os.pwrite(self._fd, block[i].tobytes(), self._offset(row0 + i, col0))

    def write_rows(self, rows: np.ndarray, block: np.ndarray) -> None:
        """Write whole rows at arbitrary row positions (block row i goes to rows[i])."""
        block = np.ascontiguousarray(block, dtype=self.dtype)
        for i, row in enumerate(rows):
            os.pwrite(self._fd, block[i].tobytes(), self._offset(int(row), 0))


def _pread_into(fd: int, out: np.ndarray, offset: int) -> None:
    view = memoryview(out).cast("B")
    done = 0
    while done < len(view):
        n = os.preadv(fd, [view[done:]], offset + done)
        if n == 0:
            raise OSError(f"unexpected end of file reading at offset {offset + done}")
        done += n


def write_header(path: str | os.PathLike, header: dict) -> None:
    Path(path).write_text(json.dumps(header, indent=2, sort_keys=True) + "\n")


def open_array(header_path: str | os.PathLike, name: str) -> np.memmap:
    """Memory-map the array `name` described in a JSON header (read-only)."""
    header_path = Path(header_path)
    meta = json.loads(header_path.read_text())["arrays"][name]
    return np.memmap(
        header_path.parent / meta["file"], dtype=meta["dtype"], mode="r", shape=tuple(meta["shape"])
    )
