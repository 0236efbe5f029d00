"""Tests for gexnet.formats.archs4: a valid file round-trips, and every malformed file fails at open or at
the first read with a one-line Archs4FormatError naming the file and the problem."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from gexnet.errors import GexnetError
from gexnet.formats.archs4 import Archs4File, Archs4FormatError

N_GENES, N_SAMPLES, CHUNK_SAMPLES = 50, 30, 5
X = "\N{MULTIPLICATION SIGN}"


def write_archs4(
    path: Path,
    *,
    level: str = "gene",
    strings: str = "vlen",
    counts: np.ndarray | None = None,
    transcript_fields: tuple[str, ...] = ("ensembl_gene", "gene_symbol"),
) -> dict:
    """Write a valid ARCHS4-layout file and return what was written, for comparison.

    data/expression is written last, chunked and gzip-compressed, so the end of the file is
    chunk data: damage there leaves the metadata readable and breaks only the reads.
    """
    rng = np.random.default_rng(7)
    if counts is None:
        counts = rng.integers(0, 100_000, size=(N_GENES, N_SAMPLES), dtype=np.uint32)
    n_features, n_samples = counts.shape
    written = {
        "counts": counts,
        "features": {
            "ensembl_gene": [f"ENSG{i:011d}" for i in range(n_features)],
            "symbol": [f"GENE{i}" for i in range(n_features)],
            "biotype": ["protein_coding" if i % 3 else "lncRNA" for i in range(n_features)],
        },
        "samples": {
            "geo_accession": [f"GSM{1000 + i}" for i in range(n_samples)],
            "series_id": [f"GSE{10 + i // 10}" for i in range(n_samples)],
            "singlecellprobability": rng.random(n_samples),
            "alignedreads": rng.integers(10**6, 10**8, n_samples).astype(np.float64),
            "title": [f"liver, réplica {i}" for i in range(n_samples)],
        },
        "info": {"version": "2.5", "creation-date": "2024-01-01"},
    }
    if level == "transcript":
        written["features"] = {
            "ensembl_id": [f"ENST{i:011d}" for i in range(n_features)],
            "ensembl_gene": [f"ENSG{i // 2:011d}" for i in range(n_features)],
            "gene_symbol": [f"GENE{i // 2}" for i in range(n_features)],
        }
        written["features"] = {
            k: v
            for k, v in written["features"].items()
            if k == "ensembl_id" or k in transcript_fields
        }

    def put_strings(f: h5py.File, name: str, values: list[str]) -> None:
        if strings == "fixed":
            f.create_dataset(name, data=np.array([v.encode() for v in values]))
        else:
            f.create_dataset(name, data=np.array(values, dtype=object), dtype=h5py.string_dtype())

    with h5py.File(path, "w") as f:
        group = "meta/genes" if level == "gene" else "meta/transcripts"
        for name, values in written["features"].items():
            put_strings(f, f"{group}/{name}", values)
        for name, values in written["samples"].items():
            if isinstance(values, list):
                put_strings(f, f"meta/samples/{name}", values)
            else:
                f.create_dataset(f"meta/samples/{name}", data=values)
        put_strings(f, "meta/info/version", [written["info"]["version"]])
        date = written["info"]["creation-date"]  # a scalar, unlike version
        f.create_dataset(
            "meta/info/creation-date",
            data=np.bytes_(date.encode()) if strings == "fixed" else date,
            dtype=None if strings == "fixed" else h5py.string_dtype(),
        )
        f.create_dataset(
            "data/expression",
            data=counts,
            chunks=(n_features, CHUNK_SAMPLES),
            compression="gzip",
        )
    return written


def replace(path: Path, name: str, data: np.ndarray | None, **kwargs) -> None:
    """Delete dataset `name` and, unless `data` is None, write `data` in its place."""
    with h5py.File(path, "r+") as f:
        del f[name]
        if data is not None:
            f.create_dataset(name, data=data, **kwargs)


def check_error(error: Archs4FormatError, path: Path, *fragments: str) -> None:
    """The message is one line, starts with the file, and names the problem."""
    message = str(error)
    assert isinstance(error, ValueError)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def assert_released(path: Path) -> None:
    """HDF5 refuses to open a file for writing while this process still holds it open."""
    h5py.File(path, "r+").close()


@pytest.fixture
def gene_file(tmp_path: Path) -> tuple[Path, dict]:
    path = tmp_path / "human_gene_v2.5.h5"
    return path, write_archs4(path)


# --- valid files ----------------------------------------------------------------------------


def test_gene_file_round_trips(gene_file: tuple[Path, dict]) -> None:
    path, written = gene_file
    with Archs4File(path) as f:
        assert (f.path, f.level, f.n_features, f.n_samples) == (path, "gene", 50, 30)
        assert f.dtype == np.uint32
        pd.testing.assert_frame_equal(f.features(), pd.DataFrame(written["features"]))
        samples = f.samples()
        assert sorted(samples.columns) == sorted(written["samples"])
        for name, values in written["samples"].items():
            assert list(samples[name]) == list(values), name
        assert samples["title"][3] == "liver, réplica 3"
        subset = f.samples(["series_id", "geo_accession"])
        assert list(subset.columns) == ["series_id", "geo_accession"]
        assert list(subset["geo_accession"]) == written["samples"]["geo_accession"]
        assert f.info() == written["info"]
        whole = f.read()
        assert whole.dtype == np.uint32
        np.testing.assert_array_equal(whole, written["counts"])
    assert_released(path)


def test_unknown_sample_field_is_named(gene_file: tuple[Path, dict]) -> None:
    path, _ = gene_file
    with Archs4File(path) as f, pytest.raises(Archs4FormatError) as info:
        f.samples(["geo_accession", "tissue"])
    check_error(info.value, path, "'tissue'", "meta/samples", "available: ")


@pytest.mark.parametrize(
    ("samples", "features"),
    [
        (None, None),
        (slice(3, 17), None),
        (None, slice(10, 20)),
        (slice(None, None, 4), slice(1, 40, 3)),
        (slice(None, None, -2), slice(30, 5, -1)),
        (np.array([29, 0, 7, 7, 3]), None),
        (None, np.array([49, 2, 2, 17, 0])),
        (np.array([4, 1, 9]), np.array([40, 3, 12, 3])),
        (np.array([2, 5, 6]), np.array([0, 1, 2])),
        (np.array([-1, -30, 5]), np.array([-50, 49])),
        (np.arange(N_SAMPLES) % 3 == 0, np.arange(N_GENES) % 7 == 1),
        (np.array([], dtype=int), None),
        ([], [1, 2]),
        (np.array([1, 0]), []),
        (np.array([], dtype=int), np.array([], dtype=int)),
        (np.zeros(N_SAMPLES, dtype=bool), None),
    ],
)
def test_read_selections_match_numpy(gene_file: tuple[Path, dict], samples, features) -> None:
    path, written = gene_file
    expected = written["counts"][slice(None) if features is None else features]
    expected = expected[:, slice(None) if samples is None else samples]
    with Archs4File(path) as f:
        got = f.read(samples=samples, features=features)
    assert got.dtype == np.uint32
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    ("samples", "features"),
    [(np.array([30]), None), (None, np.array([-51])), (np.ones(29, dtype=bool), None)],
)
def test_read_rejects_bad_indices(gene_file: tuple[Path, dict], samples, features) -> None:
    path, _ = gene_file
    with Archs4File(path) as f, pytest.raises(IndexError):
        f.read(samples=samples, features=features)


@pytest.mark.parametrize("max_values", [1, 49, 50, 99, 100, 137, 50 * 30 - 1, 50 * 30, 10**9])
def test_sample_blocks_cover_the_matrix_within_budget(
    gene_file: tuple[Path, dict], max_values: int
) -> None:
    path, written = gene_file
    width = max(1, max_values // N_GENES)
    with Archs4File(path) as f:
        blocks = list(f.iter_sample_blocks(max_values))
    starts = [columns.start for columns, _ in blocks]
    assert starts == list(range(0, N_SAMPLES, width))
    for columns, block in blocks:
        assert columns.step is None
        assert block.shape == (N_GENES, columns.stop - columns.start)
        assert block.dtype == np.uint32
        assert block.shape[1] == min(width, N_SAMPLES - columns.start)
        assert block.size <= max(max_values, N_GENES)
        np.testing.assert_array_equal(block, written["counts"][:, columns])
    assert blocks[-1][0].stop == N_SAMPLES
    np.testing.assert_array_equal(np.hstack([b for _, b in blocks]), written["counts"])


def test_sample_blocks_need_a_positive_budget(gene_file: tuple[Path, dict]) -> None:
    path, _ = gene_file
    with Archs4File(path) as f, pytest.raises(ValueError, match="max_values"):
        next(f.iter_sample_blocks(0))


@pytest.mark.parametrize(
    "fields", [("ensembl_gene", "gene_symbol"), ("gene_symbol",), ()], ids=["all", "symbol", "id"]
)
def test_transcript_level_file(tmp_path: Path, fields: tuple[str, ...]) -> None:
    path = tmp_path / "human_transcript_v2.5.h5"
    written = write_archs4(path, level="transcript", transcript_fields=fields)
    with Archs4File(path) as f:
        assert (f.level, f.n_features, f.n_samples) == ("transcript", 50, 30)
        features = f.features()
        assert list(features.columns) == ["ensembl_id", *fields]
        pd.testing.assert_frame_equal(features, pd.DataFrame(written["features"]))
        np.testing.assert_array_equal(f.read(samples=slice(5, 9)), written["counts"][:, 5:9])


def test_fixed_length_byte_strings_decode(tmp_path: Path) -> None:
    path = tmp_path / "fixed.h5"
    written = write_archs4(path, strings="fixed")
    with h5py.File(path) as raw:
        for name in ("meta/samples/geo_accession", "meta/genes/symbol", "meta/info/creation-date"):
            assert raw[name].dtype.kind == "S"
        assert raw["meta/info/creation-date"].shape == ()
    with Archs4File(path) as f:
        features, samples = f.features(), f.samples()
        assert features["symbol"].tolist() == written["features"]["symbol"]
        assert all(type(v) is str for v in features["ensembl_gene"])
        assert samples["geo_accession"].tolist() == written["samples"]["geo_accession"]
        assert samples["title"][7] == "liver, réplica 7"
        assert f.info() == written["info"]


def test_signed_counts_without_negatives_keep_their_dtype(tmp_path: Path) -> None:
    path = tmp_path / "int32.h5"
    counts = np.arange(N_GENES * N_SAMPLES, dtype=np.int32).reshape(N_GENES, N_SAMPLES)
    write_archs4(path, counts=counts)
    with Archs4File(path) as f:
        assert f.dtype == np.int32
        got = f.read(samples=np.array([3, 1]))
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, counts[:, [3, 1]])


# --- malformed files ------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.h5"
    with pytest.raises(Archs4FormatError) as info:
        Archs4File(path)
    check_error(info.value, path, "no such file")


def test_not_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "counts.tsv.h5"
    path.write_text("gene\tGSM1\nA1BG\t3\n")
    with pytest.raises(Archs4FormatError) as info:
        Archs4File(path)
    check_error(info.value, path, "not a readable HDF5 file")


def test_truncated_file_fails_at_open(gene_file: tuple[Path, dict]) -> None:
    path, _ = gene_file
    with path.open("r+b") as fh:
        fh.truncate(int(path.stat().st_size * 0.6))
    with pytest.raises(Archs4FormatError) as info:
        Archs4File(path)
    check_error(info.value, path, "not a readable HDF5 file (truncated or corrupt?)", "truncated")


def test_damaged_chunks_fail_on_read(gene_file: tuple[Path, dict]) -> None:
    """A download that preallocated the file and stopped early: the size and metadata are intact,
    the last chunks are zeros. Open succeeds; reading those samples must fail, not return junk."""
    path, written = gene_file
    with h5py.File(path) as raw:
        chunk = raw["data/expression"].id.get_chunk_info(3)
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.truncate(chunk.byte_offset)
        fh.truncate(size)
    with Archs4File(path) as f:
        np.testing.assert_array_equal(f.read(samples=slice(0, 15)), written["counts"][:, :15])
        with pytest.raises(Archs4FormatError) as info:
            list(f.iter_sample_blocks(10 * N_GENES))
        check_error(
            info.value, path, "cannot read data/expression samples 10:20", "truncated or corrupt"
        )
        with pytest.raises(Archs4FormatError) as info:
            f.read(samples=np.array([29, 2]))
        check_error(info.value, path, "cannot read data/expression samples 2:30")


@pytest.mark.parametrize("zero_fill", [False, True], ids=["cut", "zero-filled"])
@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.6, 0.8, 0.9, 0.97, 0.995])
def test_truncation_fails_at_open_or_first_read(
    gene_file: tuple[Path, dict], fraction: float, zero_fill: bool
) -> None:
    path, _ = gene_file
    size = path.stat().st_size
    with path.open("r+b") as fh:
        fh.truncate(int(size * fraction))
        if zero_fill:
            fh.truncate(size)
    with pytest.raises(Archs4FormatError) as info:  # at open or at any later step
        with Archs4File(path) as f:
            f.features()
            f.samples()
            f.info()
            for _ in f.iter_sample_blocks(10**9):
                pass
    # Damage is reported as damage, never as a missing dataset or a bad shape.
    check_error(info.value, path)
    assert "not a readable HDF5 file" in str(info.value) or "cannot read" in str(info.value)


@pytest.mark.parametrize(
    "name",
    [
        "data/expression",
        "meta/samples/geo_accession",
        "meta/samples/series_id",
        "meta/samples/singlecellprobability",
        "meta/genes/symbol",
        "meta/genes/ensembl_gene",
        "meta/genes/biotype",
    ],
)
def test_missing_dataset(gene_file: tuple[Path, dict], name: str) -> None:
    path, _ = gene_file
    replace(path, name, None)
    with pytest.raises(Archs4FormatError) as info:
        Archs4File(path)
    check_error(info.value, path, f"missing dataset '{name}'")
    assert_released(path)


def test_missing_transcript_ids(tmp_path: Path) -> None:
    path = tmp_path / "tx.h5"
    write_archs4(path, level="transcript")
    replace(path, "meta/transcripts/ensembl_id", None)
    with pytest.raises(Archs4FormatError) as info:
        Archs4File(path)
    check_error(info.value, path, "missing dataset 'meta/transcripts/ensembl_id'")


def test_missing_feature_group(gene_file: tuple[Path, dict]) -> None:
    path, _ = gene_file
    replace(path, "meta/genes", None)
    with pytest.raises(Archs4FormatError) as info:
        Archs4File(path)
    check_error(info.value, path, "missing dataset 'meta/genes' or 'meta/transcripts'")


def test_transposed_expression(gene_file: tuple[Path, dict]) -> None:
    path, written = gene_file
    replace(path, "data/expression", written["counts"].T.copy())
    with pytest.raises(Archs4FormatError) as info:
        Archs4File(path)
    check_error(
        info.value,
        path,
        f"data/expression is samples {X} genes (30 {X} 50)",
        f"the ARCHS4 layout is genes {X} samples (50 {X} 30)",
    )


@pytest.mark.parametrize(
    ("data", "shown"),
    [
        (np.zeros((49, 30), dtype=np.uint32), f"has shape 49 {X} 30"),
        (np.zeros((50, 31), dtype=np.uint32), f"has shape 50 {X} 31"),
        (np.zeros(50 * 30, dtype=np.uint32), "has shape (1500,) (1-D)"),
        (np.zeros((50, 30, 1), dtype=np.uint32), "has shape (50, 30, 1) (3-D)"),
    ],
    ids=["genes", "samples", "1-D", "3-D"],
)
def test_mismatched_expression_shape(
    gene_file: tuple[Path, dict], data: np.ndarray, shown: str
) -> None:
    path, _ = gene_file
    replace(path, "data/expression", data)
    with pytest.raises(Archs4FormatError) as info:
        Archs4File(path)
    check_error(info.value, path, f"data/expression {shown}", f"genes {X} samples = 50 {X} 30")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_float_expression(gene_file: tuple[Path, dict], dtype: str) -> None:
    path, written = gene_file
    replace(path, "data/expression", written["counts"].astype(dtype))
    with pytest.raises(Archs4FormatError) as info:
        Archs4File(path)
    check_error(
        info.value,
        path,
        f"data/expression has dtype {dtype}; expected integer counts (uint32 in ARCHS4)",
    )


def test_negative_counts(tmp_path: Path) -> None:
    path = tmp_path / "signed.h5"
    counts = np.ones((N_GENES, N_SAMPLES), dtype=np.int32)
    counts[7, 12] = -3
    counts[40, 12] = -9
    counts[2, 25] = -1
    write_archs4(path, counts=counts)
    with Archs4File(path) as f:  # the layout is fine; the values are checked as they are read
        assert f.dtype == np.int32
        np.testing.assert_array_equal(f.read(samples=slice(0, 12)), counts[:, :12])
        with pytest.raises(Archs4FormatError) as info:
            f.read()  # first in row-major order: feature 2 before feature 7
        check_error(
            info.value, path, "negative count -1 in data/expression", "feature 2", "GSM1025"
        )
        with pytest.raises(Archs4FormatError) as info:
            f.read(samples=np.array([25, 12]), features=np.array([40, 2, 7]))
        check_error(info.value, path, "negative count -9", "feature 40", "GSM1012")
        with pytest.raises(Archs4FormatError) as info:
            list(f.iter_sample_blocks(N_GENES * 20))
        check_error(info.value, path, "negative", "feature 7", "GSM1012")
        blocks = f.iter_sample_blocks(N_GENES * 10)
        assert next(blocks)[0] == slice(0, 10)
        with pytest.raises(Archs4FormatError, match="GSM1012"):
            next(blocks)


@pytest.mark.parametrize(
    ("duplicates", "listed", "unlisted"),
    [
        ({3: 1}, f"GSM1001 ({X}2)", []),
        ({3: 1, 20: 7, 21: 7, 22: 7}, f"GSM1001 ({X}2), GSM1007 ({X}4)", []),
        (
            {i + 10: i for i in range(7)},
            ", ".join(f"GSM100{i} ({X}2)" for i in range(5)) + " and 2 more",
            ["GSM1005", "GSM1006"],
        ),
    ],
)
def test_duplicate_sample_ids(
    gene_file: tuple[Path, dict], duplicates: dict[int, int], listed: str, unlisted: list[str]
) -> None:
    path, written = gene_file
    ids = list(written["samples"]["geo_accession"])
    for position, copy_of in duplicates.items():
        ids[position] = ids[copy_of]
    replace(
        path, "meta/samples/geo_accession", np.array(ids, dtype=object), dtype=h5py.string_dtype()
    )
    with pytest.raises(Archs4FormatError) as info:
        Archs4File(path)
    check_error(info.value, path, f"duplicate sample IDs in meta/samples/geo_accession: {listed}")
    assert str(info.value).endswith(listed)
    for sample in unlisted:
        assert sample not in str(info.value)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("meta/samples/title", np.array(["x"] * 29, dtype=object)),
        ("meta/samples/series_id", np.array(["GSE1"] * 31, dtype=object)),
        ("meta/samples/alignedreads", np.zeros(29)),
        ("meta/samples/singlecellprobability", np.zeros((30, 2))),
        ("meta/genes/biotype", np.array(["lncRNA"] * 49, dtype=object)),
    ],
)
def test_metadata_field_of_wrong_length(
    gene_file: tuple[Path, dict], name: str, data: np.ndarray
) -> None:
    path, _ = gene_file
    kwargs = {"dtype": h5py.string_dtype()} if data.dtype == object else {}
    replace(path, name, data, **kwargs)
    with pytest.raises(Archs4FormatError) as info:
        Archs4File(path)
    shape = "has shape (30, 2); expected 1-D" if data.ndim == 2 else f"has length {len(data)}"
    check_error(info.value, path, f"{name} {shape}")


def test_both_feature_groups(gene_file: tuple[Path, dict]) -> None:
    path, _ = gene_file
    with h5py.File(path, "r+") as f:
        f.create_dataset("meta/transcripts/ensembl_id", data=np.array(["ENST1"] * 50, dtype="S5"))
    with pytest.raises(Archs4FormatError) as info:
        Archs4File(path)
    check_error(info.value, path, "meta/genes and meta/transcripts")
    assert_released(path)


def test_cli_reports_a_malformed_file_in_one_line(tmp_path):
    """What a user sees when a workflow command meets a bad file: one line, no traceback."""
    import subprocess
    import sys

    bad = tmp_path / "human_gene_v2.2.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    proc = subprocess.run(
        [sys.executable, "-m", "gexnet", "qc", str(bad), "--samples",
         str(tmp_path / "s.parquet"), "--summary", str(tmp_path / "s.tsv")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "human_gene_v2.2.h5" in proc.stderr and "not a readable HDF5 file" in proc.stderr
    assert not list(tmp_path.glob("s.*"))


def test_writer_round_trips_through_the_loader(tmp_path):
    from gexnet.formats.archs4 import Archs4Writer

    rng = np.random.default_rng(0)
    counts = rng.integers(0, 1000, size=(7, 300), dtype=np.uint32)
    features = pd.DataFrame(
        {"ensembl_gene": [f"ENSG{i:011d}" for i in range(7)], "symbol": list("ABCDEFG"),
         "biotype": ["protein_coding"] * 6 + ["lncRNA"]}
    )  # fmt: skip
    samples = pd.DataFrame(
        {"geo_accession": [f"GSM{i}" for i in range(300)], "series_id": ["GSE1"] * 300,
         "singlecellprobability": np.linspace(0, 1, 300), "title": ["t"] * 300}
    )  # fmt: skip
    path = tmp_path / "out" / "human_gene_x.h5"
    with Archs4Writer(path, "gene", 7, 300) as w:
        w.write_samples(0, counts[:, :256])
        assert not path.exists(), "not visible before finish"
        w.write_samples(256, counts[:, 256:])
        w.finish(features, samples, {"version": "x"})
    with Archs4File(path) as f:
        assert (f.read() == counts).all()
        pd.testing.assert_frame_equal(f.features(), features)
        pd.testing.assert_frame_equal(f.samples(list(samples)), samples)
        assert f.info() == {"version": "x"}


def test_writer_leaves_nothing_on_failure(tmp_path):
    from gexnet.formats.archs4 import Archs4Writer

    path = tmp_path / "human_gene_x.h5"
    with pytest.raises(GexnetError, match="counts outside"), Archs4Writer(path, "gene", 2, 3) as w:
        w.write_samples(0, np.array([[1, -1, 2], [0, 0, 0]]))
    with pytest.raises(GexnetError, match="without symbol"), Archs4Writer(path, "gene", 1, 1) as w:
        w.finish(
            pd.DataFrame({"ensembl_gene": ["E"], "biotype": ["x"]}),
            pd.DataFrame(
                {"geo_accession": ["G"], "series_id": ["S"], "singlecellprobability": [0.0]}
            ),
            {},
        )
    assert list(tmp_path.iterdir()) == []


def _meta(n_features: int, n_samples: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    features = pd.DataFrame(
        {"ensembl_gene": [f"ENSG{i:011d}" for i in range(n_features)],
         "symbol": [f"G{i}" for i in range(n_features)], "biotype": "protein_coding"}
    )  # fmt: skip
    samples = pd.DataFrame(
        {"geo_accession": [f"GSM{i}" for i in range(n_samples)], "series_id": "GSE1",
         "singlecellprobability": 0.0}
    )  # fmt: skip
    return features, samples


@pytest.mark.parametrize(
    ("block_values", "chunks"), [(700, (2, 256)), (3000, (11, 256)), (10**9, (2048, 256))]
)
def test_writer_by_feature_rows_places_every_row(tmp_path, block_values, chunks):
    """Rows in any order and sample ranges (as one GEO series' block of gene rows gives them)
    land where they belong and rows never written are zero, whatever the budget; chunks are
    2048 × 256, fewer rows where the budget is smaller than that."""
    from gexnet.formats.archs4 import Archs4Writer

    rng = np.random.default_rng(1)
    n_features, n_samples = 2100, 600  # more than one chunk along each axis
    expected = np.zeros((n_features, n_samples), np.uint32)
    path = tmp_path / "human_gene_x.h5"
    with Archs4Writer(path, "gene", n_features, n_samples, block_values) as w:
        for start, stop in ((0, 250), (250, 257), (257, 600)):  # three "series"
            rows = rng.permutation(n_features)[: n_features - 40]  # some genes absent
            for part in np.array_split(rows, 9):
                block = rng.integers(0, 2**32, (len(part), stop - start), dtype=np.uint32)
                w.write_features(part, start, block)
                expected[part, start:stop] = block
        scratch = [p for p in tmp_path.iterdir() if p.name != path.name and ".tmp" in p.name]
        assert len(scratch) == 2  # the HDF5 file being built and the staged counts
        w.finish(*_meta(n_features, n_samples), {})
    assert list(tmp_path.iterdir()) == [path]
    with Archs4File(path) as f:
        np.testing.assert_array_equal(f.read(), expected)
    with h5py.File(path) as h:
        assert h["data/expression"].chunks == chunks


def test_writer_takes_samples_or_feature_rows_not_both(tmp_path):
    from gexnet.formats.archs4 import Archs4Writer

    path = tmp_path / "human_gene_x.h5"
    with Archs4Writer(path, "gene", 3, 4) as w:
        w.write_samples(0, np.ones((3, 2), np.uint32))
        with pytest.raises(ValueError, match="write_features after write_samples"):
            w.write_features(np.array([0]), 0, np.ones((1, 4), np.uint32))
    with Archs4Writer(path, "gene", 3, 4) as w:
        w.write_features(np.array([2, 0]), 1, np.ones((2, 3), np.uint32))
        with pytest.raises(ValueError, match="write_samples after write_features"):
            w.write_samples(0, np.ones((3, 2), np.uint32))
        with pytest.raises(GexnetError, match="counts outside"):
            w.write_features(np.array([1]), 0, -np.ones((1, 4), np.int64))
    assert list(tmp_path.iterdir()) == []  # no file and no staged counts left
