"""Tests for gexnet.sources.download against local servers that cut, corrupt, refuse and stall."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gexnet.formats.archs4 import Archs4Writer
from gexnet.sources import download
from gexnet.sources.download import DownloadError, fetch

from ..http_fixtures import LocalServer, closed_port_url

FAST = {"backoff_seconds": 0.01, "timeout_seconds": 5.0, "progress": False}


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as s:
        yield s


@pytest.fixture(scope="module")
def payload() -> bytes:
    return np.random.default_rng(1).bytes(3 * 1024 * 1024 + 123)  # not a multiple of a chunk


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def part_of(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def ranges(server: LocalServer, path: str) -> list[str | None]:
    return [seen.range for seen in server.seen(path)]


def test_plain_download_then_no_second_request(server, payload, tmp_path, capsys):
    url = server.add("/f.bin", payload)
    dest = tmp_path / "sub" / "f.bin"
    assert fetch([url], dest, **{**FAST, "progress": True}) == dest
    assert sha256(dest.read_bytes()) == sha256(payload)
    assert not part_of(dest).exists()
    assert ranges(server, "/f.bin") == [None]
    assert "f.bin" in capsys.readouterr().err  # the progress bar, named after the file
    assert fetch([url], dest, **FAST) == dest
    assert len(server.seen()) == 1


def test_cut_mid_file_resumes_with_range(server, payload, tmp_path):
    cuts = [int(len(payload) * 0.3), int(len(payload) * 0.6)]
    url = server.add("/f.bin", payload, cut_at=cuts)
    dest = fetch([url], tmp_path / "f.bin", **FAST)
    assert sha256(dest.read_bytes()) == sha256(payload)
    assert ranges(server, "/f.bin") == [None, f"bytes={cuts[0]}-", f"bytes={cuts[1]}-"]
    assert [seen.status for seen in server.seen()] == [200, 206, 206]


def test_reset_connection_resumes_from_what_arrived(server, payload, tmp_path):
    """A reset throws away what the client had not read yet: resume from what it wrote."""
    cuts = [int(len(payload) * 0.3), int(len(payload) * 0.6)]
    url = server.add("/f.bin", payload, cut_at=cuts, cut_how="reset")
    dest = fetch([url], tmp_path / "f.bin", **FAST)
    assert sha256(dest.read_bytes()) == sha256(payload)
    first, *resumed = ranges(server, "/f.bin")
    offsets = [int(r.removeprefix("bytes=").removesuffix("-")) for r in resumed]
    assert first is None and len(offsets) == 2
    assert 0 < offsets[0] <= cuts[0] and offsets[0] < offsets[1] <= cuts[1]


def test_stalled_connection_times_out_and_resumes(server, payload, tmp_path):
    cut = len(payload) // 2
    url = server.add("/f.bin", payload, cut_at=[cut], cut_how="stall", stall_seconds=3)
    started = time.monotonic()
    dest = fetch([url], tmp_path / "f.bin", **{**FAST, "timeout_seconds": 0.3})
    assert time.monotonic() - started < 2.5  # gave up on the stall, did not wait it out
    assert dest.read_bytes() == payload
    assert ranges(server, "/f.bin") == [None, f"bytes={cut}-"]


def test_server_ignoring_range_restarts_from_zero(server, payload, tmp_path):
    cut = len(payload) // 3
    url = server.add("/f.bin", payload, cut_at=[cut], honour_range=False)
    dest = fetch([url], tmp_path / "f.bin", **FAST)
    assert sha256(dest.read_bytes()) == sha256(payload)
    assert ranges(server, "/f.bin") == [None, f"bytes={cut}-"]
    assert [seen.status for seen in server.seen()] == [200, 200]


def test_attempts_that_make_progress_do_not_use_up_retries(server, payload, tmp_path):
    cuts = [len(payload) * k // 6 for k in range(1, 6)]
    url = server.add("/f.bin", payload, cut_at=cuts)
    dest = fetch([url], tmp_path / "f.bin", **{**FAST, "retries": 2})
    assert dest.read_bytes() == payload
    assert len(server.seen()) == 6


def test_restarts_that_get_no_further_use_up_retries(server, payload, tmp_path):
    n = len(payload)
    url = server.add("/f.bin", payload, honour_range=False, cut_at=[n // 2, n // 3, n * 2 // 5])
    with pytest.raises(DownloadError, match=r"connection closed at .* after 2 attempts"):
        fetch([url], tmp_path / "f.bin", **{**FAST, "retries": 2})
    assert len(server.seen()) == 3


@pytest.mark.parametrize("algorithm", ["sha256", "md5"])
def test_corrupt_response_is_detected_by_checksum_and_fetched_again(
    server, payload, tmp_path, algorithm
):
    corrupt = bytearray(payload)
    corrupt[len(payload) // 2] ^= 0xFF
    url = server.add("/f.bin", payload, bodies=[bytes(corrupt)])
    checksum = f"{algorithm}:{hashlib.new(algorithm, payload).hexdigest()}"
    dest = fetch([url], tmp_path / "f.bin", checksum=checksum, **FAST)
    assert sha256(dest.read_bytes()) == sha256(payload)
    assert ranges(server, "/f.bin") == [None, None]  # the bad bytes were not resumed


def test_checksum_checked_over_resumed_file(server, payload, tmp_path):
    """A .part left by an earlier run is hashed from disk before the rest is appended."""
    dest = tmp_path / "f.bin"
    part_of(dest).write_bytes(payload[:1000])
    url = server.add("/f.bin", payload)
    fetch([url], dest, checksum=f"sha256:{sha256(payload)}", **FAST)
    assert dest.read_bytes() == payload
    assert ranges(server, "/f.bin") == ["bytes=1000-"]


def test_wrong_checksum_fails_after_the_attempts(server, payload, tmp_path):
    url = server.add("/f.bin", payload)
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match="checksum mismatch") as info:
        fetch([url], dest, checksum="sha256:" + "0" * 64, retries=3, **FAST)
    assert "after 3 attempts" in str(info.value)
    assert len(server.seen()) == 3
    assert not dest.exists() and not part_of(dest).exists()


@pytest.mark.parametrize("checksum", ["sha256:abc", "sha1:" + "0" * 40, "0" * 64])
def test_malformed_checksum_is_refused_before_any_request(server, payload, tmp_path, checksum):
    url = server.add("/f.bin", payload)
    with pytest.raises(DownloadError, match="expected 'sha256:<64 hex digits>'"):
        fetch([url], tmp_path / "f.bin", checksum=checksum, **FAST)
    assert server.seen() == []


def write_small_archs4(path: Path) -> bytes:
    n_genes, n_samples = 20, 12
    counts = np.random.default_rng(2).integers(0, 1000, (n_genes, n_samples), dtype=np.uint32)
    with Archs4Writer(path, "gene", n_genes, n_samples) as writer:
        writer.write_samples(0, counts)
        writer.finish(
            pd.DataFrame(
                {
                    "ensembl_gene": [f"ENSG{i:011d}" for i in range(n_genes)],
                    "symbol": [f"G{i}" for i in range(n_genes)],
                    "biotype": ["protein_coding"] * n_genes,
                }
            ),
            pd.DataFrame(
                {
                    "geo_accession": [f"GSM{i}" for i in range(n_samples)],
                    "series_id": ["GSE1"] * n_samples,
                    "singlecellprobability": np.zeros(n_samples),
                }
            ),
            {"version": "2.5"},
        )
    return path.read_bytes()


@pytest.fixture(scope="module")
def archs4_bytes(tmp_path_factory) -> bytes:
    return write_small_archs4(tmp_path_factory.mktemp("archs4") / "source.h5")


NOT_HDF5 = b"not an HDF5 file at all " * 1000


@pytest.mark.parametrize("whole_by", ["size", "checksum"])
def test_whole_file_failing_validation_stops_at_once_and_is_kept(
    server, archs4_bytes, tmp_path, whole_by
):
    """Fetching a whole file again would give the same bytes: one transfer, then stop."""
    by_size = whole_by == "size"
    primary = server.add("/a.h5", NOT_HDF5, announce_size=by_size)
    fallback = server.add("/b.h5", archs4_bytes)
    dest = tmp_path / "human_gene.h5"
    options = {
        "validate": download.validate_archs4,
        "checksum": None if by_size else f"sha256:{sha256(NOT_HDF5)}",
        "local_key": "archs4.local_files.human_gene",
        **FAST,
    }
    with pytest.raises(DownloadError) as first:
        fetch([primary, fallback], dest, **options)
    message = str(first.value)
    assert message.startswith(f"cannot use human_gene.h5 from {primary}: validation failed: ")
    assert "not a readable HDF5 file" in message and "\n" not in message
    whole = (
        f"its size is the {len(NOT_HDF5):,} bytes the server announced"
        if by_size
        else "its sha256 checksum matched"
    )
    assert f"the file is whole ({whole}), so it was not fetched again" in message
    assert f"kept in {part_of(dest)}; delete that file to download it again" in message
    assert "or set archs4.local_files.human_gene to a local copy" in message
    assert [(s.path, s.range, s.status) for s in server.seen()] == [("/a.h5", None, 200)]
    assert part_of(dest).read_bytes() == NOT_HDF5 and not dest.exists()

    with pytest.raises(DownloadError) as again:
        fetch([primary, fallback], dest, **options)
    assert str(again.value) == message
    # The rerun asks only for what lies past the kept bytes, and is told there is nothing.
    assert [(s.path, s.range, s.status) for s in server.seen()][1:] == [
        ("/a.h5", f"bytes={len(NOT_HDF5)}-", 416)
    ]
    assert part_of(dest).read_bytes() == NOT_HDF5

    # As the message says: without the .part, the file is fetched anew.
    part_of(dest).unlink()
    server.resources["/a.h5"].payload = archs4_bytes
    fetch([primary, fallback], dest, **{**options, "checksum": None})
    assert dest.read_bytes() == archs4_bytes
    assert [(s.path, s.range) for s in server.seen()][2:] == [("/a.h5", None)]


def test_rerun_where_range_is_ignored_checks_the_kept_bytes(server, tmp_path):
    """A server that answers a resume with the whole file: its size says the .part is whole."""
    other = bytes(reversed(NOT_HDF5))  # what a second transfer would write
    url = server.add("/a.h5", NOT_HDF5, bodies=[NOT_HDF5, other], honour_range=False)
    dest = tmp_path / "human_gene.h5"
    for _ in range(2):
        with pytest.raises(DownloadError, match=r"validation failed: .*kept in"):
            fetch([url], dest, validate=download.validate_archs4, **FAST)
    assert part_of(dest).read_bytes() == NOT_HDF5
    assert ranges(server, "/a.h5") == [None, f"bytes={len(NOT_HDF5)}-"]


def test_kept_part_once_valid_is_accepted_without_a_transfer(server, archs4_bytes, tmp_path):
    """Deleting the .part is one way out; a .part that now validates is another."""
    dest = tmp_path / "human_gene.h5"
    part_of(dest).write_bytes(archs4_bytes)
    url = server.add("/a.h5", archs4_bytes)
    fetch([url], dest, validate=download.validate_archs4, retries=1, **FAST)
    assert dest.read_bytes() == archs4_bytes
    assert [s.status for s in server.seen()] == [416]


def test_validation_failure_of_unknown_size_is_fetched_again(server, archs4_bytes, tmp_path):
    """Without a size or a checksum, a file cut short cannot be told from a bad one."""
    cut = archs4_bytes[: len(archs4_bytes) // 2]
    url = server.add("/human_gene.h5", archs4_bytes, bodies=[cut], announce_size=False)
    dest = fetch([url], tmp_path / "human_gene.h5", validate=download.validate_archs4, **FAST)
    assert dest.read_bytes() == archs4_bytes
    assert ranges(server, "/human_gene.h5") == [None, None]


def test_validation_failure_of_unknown_size_fails_after_the_attempts(server, tmp_path):
    url = server.add("/human_gene.h5", NOT_HDF5, announce_size=False)
    dest = tmp_path / "human_gene.h5"
    with pytest.raises(DownloadError, match=r"validation failed: .*not a readable HDF5 file"):
        fetch([url], dest, validate=download.validate_archs4, retries=3, **FAST)
    assert ranges(server, "/human_gene.h5") == [None] * 3
    assert not part_of(dest).exists()


def test_checksum_mismatch_is_fetched_again_before_validation(server, archs4_bytes, tmp_path):
    """Bytes corrupted on the way are whole in size only: the checksum sends them back."""
    corrupt = bytearray(archs4_bytes)
    corrupt[len(corrupt) // 2] ^= 0xFF
    url = server.add("/human_gene.h5", archs4_bytes, bodies=[bytes(corrupt)])
    dest = fetch(
        [url],
        tmp_path / "human_gene.h5",
        checksum=f"sha256:{sha256(archs4_bytes)}",
        validate=download.validate_archs4,
        **FAST,
    )
    assert dest.read_bytes() == archs4_bytes
    assert ranges(server, "/human_gene.h5") == [None, None]


def test_checksum_mismatch_with_validation_fails_after_the_attempts(server, tmp_path):
    url = server.add("/human_gene.h5", NOT_HDF5)
    dest = tmp_path / "human_gene.h5"
    with pytest.raises(DownloadError, match=r"checksum mismatch.* after 3 attempts"):
        fetch(
            [url],
            dest,
            checksum="sha256:" + "0" * 64,
            validate=download.validate_archs4,
            retries=3,
            **FAST,
        )
    assert ranges(server, "/human_gene.h5") == [None] * 3
    assert not part_of(dest).exists()


def test_cut_archs4_file_resumes_and_validates(server, archs4_bytes, tmp_path):
    cut = len(archs4_bytes) // 2
    url = server.add("/human_gene.h5", archs4_bytes, cut_at=[cut])
    dest = fetch([url], tmp_path / "human_gene.h5", validate=download.validate_archs4, **FAST)
    assert dest.read_bytes() == archs4_bytes
    assert ranges(server, "/human_gene.h5") == [None, f"bytes={cut}-"]


def test_404_on_primary_goes_to_fallback_at_once(server, payload, tmp_path, caplog):
    primary = server.url("/missing.bin")
    fallback = server.add("/f.bin", payload)
    with caplog.at_level(logging.INFO, logger="gexnet.sources.download"):
        dest = fetch([primary, fallback], tmp_path / "f.bin", **FAST)
    assert dest.read_bytes() == payload
    assert [(seen.path, seen.status) for seen in server.seen()] == [
        ("/missing.bin", 404),
        ("/f.bin", 200),
    ]
    assert any("fallback" in m and fallback in m for m in caplog.messages)


def test_cut_on_primary_resumes_from_fallback(server, payload, tmp_path):
    cut = len(payload) // 2
    # Later requests to the primary send headers, then nothing.
    primary = server.add("/a.bin", payload, cut_at=[cut] + [0] * 10)
    fallback = server.add("/b.bin", payload)
    dest = fetch([primary, fallback], tmp_path / "f.bin", retries=2, **FAST)
    assert dest.read_bytes() == payload
    assert ranges(server, "/a.bin") == [None, f"bytes={cut}-", f"bytes={cut}-"]
    assert ranges(server, "/b.bin") == [f"bytes={cut}-"]


def test_503_everywhere_fails_with_one_line_naming_both(server, payload, tmp_path):
    a = server.add("/a.bin", payload, status=503)
    b = server.add("/b.bin", payload, status=503)
    with pytest.raises(DownloadError) as info:
        fetch([a, b], tmp_path / "f.bin", retries=3, **FAST)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("cannot download f.bin: ")
    assert f"{a} (HTTP 503 after 3 attempts)" in message
    assert f"{b} (HTTP 503 after 3 attempts)" in message
    assert [seen.path for seen in server.seen()] == ["/a.bin"] * 3 + ["/b.bin"] * 3


def test_backoff_doubles(server, payload, tmp_path):
    url = server.add("/f.bin", payload, status=500)
    started = time.monotonic()
    with pytest.raises(DownloadError):
        fetch([url], tmp_path / "f.bin", retries=4, **{**FAST, "backoff_seconds": 0.1})
    assert time.monotonic() - started >= 0.1 + 0.2 + 0.4


def test_500_twice_then_ok(server, payload, tmp_path):
    url = server.add("/f.bin", payload, fail_first=2, fail_status=500)
    dest = fetch([url], tmp_path / "f.bin", **FAST)
    assert dest.read_bytes() == payload
    assert [seen.status for seen in server.seen()] == [500, 500, 200]


def test_unreachable_host_names_address_and_local_key(tmp_path):
    url = closed_port_url("/human_gene_v2.5.h5")
    with pytest.raises(DownloadError) as info:
        fetch(
            [url],
            tmp_path / "human_gene_v2.5.h5",
            retries=2,
            local_key="archs4.local_files.human_gene",
            **FAST,
        )
    message = str(info.value)
    assert url in message and "cannot connect" in message and "refused" in message
    assert "or set archs4.local_files.human_gene to a local copy" in message
    assert "\n" not in message


def test_complete_part_answered_416_is_verified_not_refetched(server, payload, tmp_path):
    dest = tmp_path / "f.bin"
    part_of(dest).write_bytes(payload)
    url = server.add("/f.bin", payload)
    fetch([url], dest, checksum=f"sha256:{sha256(payload)}", retries=1, **FAST)
    assert dest.read_bytes() == payload
    assert [(s.range, s.status) for s in server.seen()] == [(f"bytes={len(payload)}-", 416)]


def test_part_longer_than_remote_file_is_discarded(server, payload, tmp_path):
    dest = tmp_path / "f.bin"
    part_of(dest).write_bytes(payload + b"extra")
    url = server.add("/f.bin", payload)
    fetch([url], dest, retries=1, **FAST)  # one attempt suffices: the restart is part of it
    assert dest.read_bytes() == payload
    assert [s.status for s in server.seen()] == [416, 200]


def test_remote_file_changing_size_restarts(server, payload, tmp_path):
    """Resuming a different file would splice two files together; its size gives it away."""
    old = payload[: len(payload) // 2]
    url = server.add("/f.bin", payload, bodies=[old], cut_at=[len(old) // 2])
    dest = fetch([url], tmp_path / "f.bin", **FAST)
    assert dest.read_bytes() == payload
    assert [(s.range, s.status) for s in server.seen()] == [
        (None, 200),
        (f"bytes={len(old) // 2}-", 206),
        (None, 200),
    ]


def run_cli(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gexnet", "download", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_cli_error_is_one_line(tmp_path):
    url = closed_port_url()
    proc = run_cli("--url", url, "--out", str(tmp_path / "f"), "--config", "download.retries=1",
                   "--no-progress")  # fmt: skip
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 2
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("gexnet download: error: cannot download f: ") and url in last
    assert "Traceback" not in stderr


def test_killed_download_resumes_where_it_stopped(server, tmp_path):
    payload = np.random.default_rng(3).bytes(20 * 1024 * 1024)
    # ~4 s for the whole file, so the kill lands mid-transfer.
    url = server.add("/big.bin", payload, throttle=0.012)
    dest = tmp_path / "big.bin"
    part = part_of(dest)
    proc = run_cli("--url", url, "--out", str(dest), "--no-progress")
    deadline = time.monotonic() + 10
    try:
        while not (part.exists() and part.stat().st_size >= len(payload) // 2):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the download did not reach 50% in time"
            time.sleep(0.01)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    kept = part.stat().st_size
    assert len(payload) // 2 <= kept < len(payload) and not dest.exists()

    server.resources["/big.bin"].throttle = 0
    fetch([url], dest, checksum=f"sha256:{sha256(payload)}", **FAST)
    assert sha256(dest.read_bytes()) == sha256(payload)
    assert ranges(server, "/big.bin") == [None, f"bytes={kept}-"]


def test_cds_download_is_validated_to_its_last_record(server, tmp_path):
    """A CDS FASTA cut short inside its gzip stream is fetched again from the fallback; the
    whole file is accepted once it reads to the end."""
    import gzip

    record = b">ENST00000000001.1 cds gene:ENSG00000000001.2\n" + b"ACGT" * 60 + b"\n"
    whole = gzip.compress(record * 200, mtime=0)
    cut = server.add("/cut.fa.gz", whole[: len(whole) // 2], announce_size=False)
    good = server.add("/cds.fa.gz", whole)
    dest = fetch([cut, good], tmp_path / "cds.fa.gz", validate=download.validate_cds, **FAST)
    assert dest.read_bytes() == whole
    page = server.add("/page.fa.gz", b"<html>not found</html>\n")
    with pytest.raises(DownloadError, match=r"validation failed: .*line 1"):
        fetch([page], tmp_path / "page.fa.gz", validate=download.validate_cds, **FAST)
