"""The one reader of expression files in the ARCHS4 HDF5 layout (genes by samples).

Every stage reads ARCHS4 files through `Archs4File`, so a malformed, transposed, truncated or
corrupt file fails once, here, with a one-line message naming the file and the problem, instead
of as a shape error or silently wrong numbers further down the workflow.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import h5py
import numpy as np
import pandas as pd

from gexnet.errors import GexnetError, first_line
from gexnet.formats.io import temporary_path
from gexnet.formats.matrixfile import MatrixFile

EXPRESSION = "data/expression"
SAMPLES = "meta/samples"
SAMPLE_ID = f"{SAMPLES}/geo_accession"
REQUIRED_SAMPLE_FIELDS = ("geo_accession", "series_id", "singlecellprobability")
GENE_FIELDS = ("ensembl_gene", "symbol", "biotype")
TRANSCRIPT_FIELDS = ("ensembl_id",)
OPTIONAL_TRANSCRIPT_FIELDS = ("ensembl_gene", "gene_symbol")
_MAX_LISTED = 5
_TIMES = "\N{MULTIPLICATION SIGN}"  # spelled out: ruff (RUF001) takes a literal one for a typo

# How h5py reports damage to the file's internal structures (bad B-tree, heap or chunk).
# Names are tested with `in` before use, so a KeyError here means damage, not absence.
_H5_ERRORS = (OSError, KeyError, RuntimeError)
_CORRUPT = "not a readable HDF5 file (truncated or corrupt?)"

Selection = slice | np.ndarray | None


class Archs4FormatError(GexnetError, ValueError):
    """The file is not a readable ARCHS4-layout expression file; the message says why."""


class Archs4File:
    """A read-only ARCHS4-layout file whose layout was validated at open.

    Counts are read on demand (`read`, `iter_sample_blocks`), so memory depends on what is
    asked for, never on the size of the file.
    """

    path: Path
    level: Literal["gene", "transcript"]
    n_features: int
    n_samples: int
    dtype: np.dtype

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise self._error("no such file")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            raise self._error(f"{_CORRUPT}: {first_line(exc)}") from exc
        try:
            with self._h5_errors(_CORRUPT):
                self._validate()
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> Archs4File:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    # --- metadata -------------------------------------------------------------------------

    def features(self) -> pd.DataFrame:
        """Feature (gene or transcript) annotation, one row per row of data/expression."""
        with self._h5_errors(_CORRUPT):
            return pd.DataFrame(
                {name: _values(self._file[path]) for name, path in self._feature_paths.items()}
            )

    def samples(self, fields: Sequence[str] | None = None) -> pd.DataFrame:
        """Sample metadata, one row per column of data/expression; all fields or those named."""
        with self._h5_errors(_CORRUPT):
            group = self._file[SAMPLES]
            available = [k for k, v in group.items() if isinstance(v, h5py.Dataset)]
            if fields is None:
                fields = available
            unknown = [name for name in fields if name not in available]
            if unknown:
                raise self._error(
                    f"no sample field {', '.join(map(repr, unknown))} in {SAMPLES} "
                    f"(available: {', '.join(available)})"
                )
            return pd.DataFrame({name: _values(group[name]) for name in fields})

    def info(self) -> dict[str, str]:
        """The meta/info entries (version, creation-date, ...) as text; empty if there are none."""
        with self._h5_errors(_CORRUPT):
            if "meta/info" not in self._file:
                return {}
            return {
                key: ", ".join(str(v) for v in np.ravel(_values(ds)))
                for key, ds in self._file["meta/info"].items()
                if isinstance(ds, h5py.Dataset)
            }

    # --- counts ---------------------------------------------------------------------------

    def read(self, samples: Selection = None, features: Selection = None) -> np.ndarray:
        """Counts, features by samples, in the file's integer dtype and the order asked for.

        Each of `samples` and `features` is None (all), a slice, or an integer or boolean
        array; index arrays may be unsorted and repeat indices, as in numpy.
        """
        s_get, s_order = _axis(samples, self.n_samples, "samples")
        f_get, f_order = _axis(features, self.n_features, "features")
        if isinstance(s_get, np.ndarray) and isinstance(f_get, np.ndarray):
            # h5py takes one index array per read: span the features with a slice, pick rows after.
            rows = f_get - f_get[0]
            f_order = rows if f_order is None else rows[f_order]
            f_get = slice(int(f_get[0]), int(f_get[-1]) + 1)
        try:
            block = self._expression[f_get, s_get]
        except _H5_ERRORS as exc:
            raise self._error(
                f"cannot read {EXPRESSION} samples {_span(s_get, self.n_samples)} "
                f"(file truncated or corrupt): {first_line(exc)}"
            ) from exc
        if f_order is not None:
            block = block[f_order]
        if s_order is not None:
            block = block[:, s_order]
        if block.dtype.kind == "i" and block.size and block.min() < 0:
            i, j = np.unravel_index(int(np.argmax(block < 0)), block.shape)
            feature = _positions(f_get, f_order, self.n_features)[i]
            sample = _positions(s_get, s_order, self.n_samples)[j]
            geo = _values(self._file[SAMPLE_ID])[sample]
            raise self._error(
                f"negative count {block[i, j]} in {EXPRESSION} at feature {feature}, "
                f"sample {geo} (column {sample}); counts must be >= 0"
            )
        return block

    def iter_sample_blocks(self, max_values: int) -> Iterator[tuple[slice, np.ndarray]]:
        """Consecutive blocks of whole samples, each at most `max_values` counts (at least one
        sample per block), so peak memory is set by the caller, not by the file."""
        if max_values < 1:
            raise ValueError(f"max_values must be >= 1, got {max_values}")
        width = max(1, max_values // max(1, self.n_features))
        for start in range(0, self.n_samples, width):
            columns = slice(start, min(start + width, self.n_samples))
            yield columns, self.read(samples=columns)

    # --- validation -----------------------------------------------------------------------

    def _validate(self) -> None:
        """Check the layout and set level, n_features, n_samples and dtype."""
        has_genes, has_transcripts = "meta/genes" in self._file, "meta/transcripts" in self._file
        if has_genes and has_transcripts:
            raise self._error("has both meta/genes and meta/transcripts; cannot tell the level")
        expression = self._dataset(EXPRESSION)
        if has_genes:
            self.level, group, required, optional = "gene", "meta/genes", GENE_FIELDS, ()
        elif has_transcripts:
            self.level, group = "transcript", "meta/transcripts"
            required, optional = TRANSCRIPT_FIELDS, OPTIONAL_TRANSCRIPT_FIELDS
        else:
            raise self._error("missing dataset 'meta/genes' or 'meta/transcripts' (features)")
        self._feature_paths = {name: f"{group}/{name}" for name in required}
        self._feature_paths |= {
            name: f"{group}/{name}" for name in optional if f"{group}/{name}" in self._file
        }
        self.n_features = self._common_length(
            [self._dataset(path) for path in self._feature_paths.values()]
        )

        sample_fields = [self._dataset(f"{SAMPLES}/{name}") for name in REQUIRED_SAMPLE_FIELDS]
        sample_fields += [
            ds
            for name, ds in self._file[SAMPLES].items()
            if isinstance(ds, h5py.Dataset) and name not in REQUIRED_SAMPLE_FIELDS
        ]
        self.n_samples = self._common_length(sample_fields)

        expected = (self.n_features, self.n_samples)
        unit = f"{self.level}s"
        if expression.shape != expected:
            if expression.ndim == 2 and expression.shape == expected[::-1]:
                raise self._error(
                    f"{EXPRESSION} is samples {_TIMES} {unit} ({_dims(expression.shape)}); "
                    f"the ARCHS4 layout is {unit} {_TIMES} samples ({_dims(expected)})"
                )
            raise self._error(
                f"{EXPRESSION} has shape {_dims(expression.shape)}; "
                f"expected {unit} {_TIMES} samples = {_dims(expected)} from the metadata"
            )
        if not np.issubdtype(expression.dtype, np.integer):
            raise self._error(
                f"{EXPRESSION} has dtype {expression.dtype}; "
                "expected integer counts (uint32 in ARCHS4)"
            )
        self.dtype = expression.dtype
        self._expression = expression
        self._check_unique_ids()

    def _check_unique_ids(self) -> None:
        ids = _values(self._file[SAMPLE_ID])
        repeated = pd.Index(ids).duplicated(keep=False)
        if repeated.any():
            counts = Counter(ids[repeated])
            listed = ", ".join(f"{i} ({_TIMES}{n})" for i, n in list(counts.items())[:_MAX_LISTED])
            more = f" and {len(counts) - _MAX_LISTED} more" if len(counts) > _MAX_LISTED else ""
            raise self._error(f"duplicate sample IDs in {SAMPLE_ID}: {listed}{more}")

    def _dataset(self, name: str) -> h5py.Dataset:
        # Not `get`: it answers None for a name it cannot look up in a damaged file too.
        if name not in self._file or not isinstance(ds := self._file[name], h5py.Dataset):
            raise self._error(f"missing dataset '{name}'")
        return ds

    def _common_length(self, datasets: list[h5py.Dataset]) -> int:
        """The length shared by 1-D metadata datasets, which must all describe the same axis."""
        first = datasets[0]
        for ds in datasets:
            if ds.ndim != 1:
                raise self._error(f"{ds.name.lstrip('/')} has shape {ds.shape}; expected 1-D")
            if ds.shape != first.shape:
                raise self._error(
                    f"{ds.name.lstrip('/')} has length {ds.shape[0]} but "
                    f"{first.name.lstrip('/')} has length {first.shape[0]}"
                )
        return first.shape[0]

    # --- errors ---------------------------------------------------------------------------

    def _error(self, problem: str) -> Archs4FormatError:
        return Archs4FormatError(f"{self.path}: {problem}")

    @contextlib.contextmanager
    def _h5_errors(self, problem: str) -> Iterator[None]:
        """Re-raise h5py's reports of a damaged file as a one-line Archs4FormatError."""
        try:
            yield
        except _H5_ERRORS as exc:
            raise self._error(f"{problem}: {first_line(exc)}") from exc


def _values(ds: h5py.Dataset) -> np.ndarray:
    """A dataset's values, strings (variable- or fixed-length bytes) decoded to str.

    Decoded as UTF-8 (a superset of ASCII) whatever the declared encoding, odd bytes replaced:
    one stray byte in a sample's free text must not stop a workflow.
    """
    if h5py.check_string_dtype(ds.dtype) is not None:
        return ds.asstr(encoding="utf-8", errors="replace")[()]
    return ds[()]


def _axis(selection: Selection, n: int, axis: str) -> tuple[slice | np.ndarray, np.ndarray | None]:
    """What to ask h5py for along one axis, and the reordering that turns its answer into the
    selection asked for (None if none is needed).

    h5py accepts only slices with a positive step and strictly increasing index arrays.
    """
    if selection is None:
        return slice(0, n), None
    if isinstance(selection, slice):
        start, stop, step = selection.indices(n)
        if step > 0:
            return slice(start, stop, step), None
        selection = np.arange(start, stop, step)
    index = np.asarray(selection)
    if index.dtype == bool:
        if index.shape != (n,):
            raise IndexError(f"boolean {axis} mask has shape {index.shape}; expected ({n},)")
        index = np.flatnonzero(index)
    if index.size == 0:  # as a slice: numpy makes [] float64, and h5py takes one index array
        return slice(0, 0), None
    if index.ndim != 1 or not np.issubdtype(index.dtype, np.integer):
        raise IndexError(f"{axis} must be None, a slice, or a 1-D integer or boolean array")
    if index.size and (index.min() < -n or index.max() >= n):
        raise IndexError(f"{axis} index out of range for {n} {axis}")
    index = np.where(index < 0, index + n, index)
    unique, order = np.unique(index, return_inverse=True)
    return unique, None if np.array_equal(unique, index) else order


def _positions(get: slice | np.ndarray, order: np.ndarray | None, n: int) -> np.ndarray:
    """The file positions of the rows (or columns) that a read returned, in returned order."""
    positions = np.arange(n)[get]
    return positions if order is None else positions[order]


def _span(selection: slice | np.ndarray, n: int) -> str:
    """The range of sample columns a read covered, for error messages."""
    if isinstance(selection, slice):
        start, stop, _ = selection.indices(n)
        return f"{start}:{stop}"
    return f"{selection[0]}:{selection[-1] + 1}"


def _dims(shape: tuple[int, ...]) -> str:
    return f" {_TIMES} ".join(map(str, shape)) if len(shape) == 2 else f"{shape} ({len(shape)}-D)"


# --- writing ------------------------------------------------------------------------------

CHUNK_SAMPLES = 256  # HDF5 chunk width: reading any block of samples touches few chunks
CHUNK_FEATURES = 2048
BLOCK_VALUES = 50_000_000  # the schema's default block_values


class Archs4Writer:
    """Writes one ARCHS4-layout file: counts block by block, then the metadata.

    Counts go in by whole samples (`write_samples`, straight into the compressed dataset) or by
    rows of features (`write_features`, for sources read by gene rows such as text tables). The
    file is built under a temporary name and renamed into place by `finish`, so a failed or
    killed writer never leaves a file that looks complete. Use as a context manager.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        level: Literal["gene", "transcript"],
        n_features: int,
        n_samples: int,
        block_values: int = BLOCK_VALUES,
    ) -> None:
        if block_values < 1:
            raise GexnetError(f"block_values must be >= 1, got {block_values}")
        self.path = Path(path)
        self.level = level
        self.block_values = block_values
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = temporary_path(self.path)
        self._file = h5py.File(self._tmp, "w")
        self._expression = self._file.create_dataset(
            EXPRESSION,
            shape=(n_features, n_samples),
            dtype="uint32",
            chunks=_chunks(n_features, n_samples, block_values),
            # gzip level 1: 2% larger than level 4 in 57% of the time
            compression="gzip",
            compression_opts=1,
        )
        self._staged: MatrixFile | None = None
        self._wrote_samples = False
        self._done = False

    def __enter__(self) -> Archs4Writer:
        return self

    def __exit__(self, exc_type, *rest: object) -> None:
        if not self._done:
            self._file.close()
            self._tmp.unlink(missing_ok=True)
        self._drop_staged()

    def write_samples(self, start: int, counts: np.ndarray) -> None:
        """Counts (features × block) for samples start, start + 1, ..."""
        if self._staged is not None:
            raise ValueError("write_samples after write_features: use one or the other")
        self._check(counts, f"samples from {start}")
        self._expression[:, start : start + counts.shape[1]] = counts
        self._wrote_samples = True

    def write_features(self, rows: np.ndarray, start: int, counts: np.ndarray) -> None:
        """Counts (len(rows) × block) of the features at `rows` (distinct positions, any order)
        for samples start, start + 1, ...; features never written hold zeros.

        Rows of the dataset's compressed chunks cannot be written a few at a time without
        recompressing each chunk once per write, so they are staged, uncompressed, in a scratch
        file beside the output (4 bytes a count, on disk) and compressed into place by
        `finish`, one whole chunk at a time. Memory holds only the caller's block.
        """
        if self._wrote_samples:
            raise ValueError("write_features after write_samples: use one or the other")
        rows = np.asarray(rows, dtype=np.int64)
        self._check(counts, f"samples from {start}")
        if self._staged is None:
            self._staged = MatrixFile(
                self._tmp.with_name(f"{self._tmp.name}.counts"),
                self._expression.shape,
                np.uint32,
                "w",
            )
        order = np.argsort(rows, kind="stable")
        rows, counts = rows[order], counts[order]
        # one write per run of consecutive rows (whole rows of the scratch are one pwrite)
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        for run in np.split(np.arange(len(rows)), breaks):
            if run.size:
                self._staged.write(int(rows[run[0]]), start, counts[run[0] : run[-1] + 1])

    def finish(self, features: pd.DataFrame, samples: pd.DataFrame, info: dict[str, str]) -> None:
        """Write the metadata and move the file into place.

        `features`: gene level ensembl_gene, symbol, biotype; transcript level ensembl_id (and
        optionally ensembl_gene, gene_symbol). `samples`: geo_accession, series_id,
        singlecellprobability and any other per-sample fields (text or numbers).
        """
        required = GENE_FIELDS if self.level == "gene" else TRANSCRIPT_FIELDS
        missing = [c for c in required if c not in features] + [
            c for c in REQUIRED_SAMPLE_FIELDS if c not in samples
        ]
        if missing:
            raise GexnetError(f"{self.path}: cannot write without {', '.join(missing)}")
        if self._staged is not None:
            self._compress_staged()
        group = "meta/genes" if self.level == "gene" else "meta/transcripts"
        for name, values in features.items():
            _write_column(self._file, f"{group}/{name}", values)
        for name, values in samples.items():
            _write_column(self._file, f"{SAMPLES}/{name}", values)
        for key, value in info.items():
            _write_column(self._file, f"meta/info/{key}", pd.Series([value]))
        self._file.close()
        Archs4File(self._tmp).close()  # what was written must read back as valid
        os.replace(self._tmp, self.path)
        self._done = True

    def _compress_staged(self) -> None:
        """Copy the scratch into the dataset in tiles of whole chunks, at most block_values
        counts each: every chunk is compressed once."""
        n_features, n_samples = self._expression.shape
        height, chunk_cols = self._expression.chunks
        width = self.block_values // height // chunk_cols * chunk_cols
        for f0 in range(0, n_features, height):
            for s0 in range(0, n_samples, width):
                rows, cols = slice(f0, f0 + height), slice(s0, s0 + width)
                self._expression[rows, cols] = self._staged.read(rows, cols)
        self._drop_staged()

    def _drop_staged(self) -> None:
        if self._staged is not None:
            self._staged.close()
            self._staged.path.unlink(missing_ok=True)
            self._staged = None

    def _check(self, counts: np.ndarray, where: str) -> None:
        if counts.size and (counts.min() < 0 or counts.max() > np.iinfo(np.uint32).max):
            raise GexnetError(f"{self.path}: counts outside 0..2^32-1 for {where}")


def _chunks(n_features: int, n_samples: int, block_values: int) -> tuple[int, int]:
    """HDF5 chunk shape: CHUNK_FEATURES × CHUNK_SAMPLES, smaller where the file or the budget
    is (a chunk is the least a read or write of compressed data holds)."""
    cols = max(1, min(n_samples, CHUNK_SAMPLES, block_values))
    return max(1, min(n_features, CHUNK_FEATURES, block_values // cols)), cols


def _write_column(f: h5py.File, name: str, values: pd.Series) -> None:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        f.create_dataset(name, data=values.to_numpy(np.float64))
    else:
        text = np.array(["" if pd.isna(v) else str(v) for v in values], dtype=object)
        f.create_dataset(name, data=text, dtype=h5py.string_dtype())
