"""Downloads that survive flaky networks: resume, retries, fallback addresses and verification.

ARCHS4 files are over 30 GB, so a dropped connection must cost only the bytes not yet received:
data goes to `<dest>.part`, every attempt resumes it with a Range request, and only a complete,
verified file is renamed to `dest`, so no later stage ever reads a partial download.

Only what can come out differently is fetched again: a network fault (refused, reset, timed out,
cut short, HTTP 5xx), a size that differs from the server's and a checksum mismatch. A file that
is whole (its size is the one the server announced, or its checksum matched) but fails the
content check would come back the same, so it stops the download at once, on every address; its
bytes stay in the .part, where the next run checks them again without fetching them.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from gexnet import __version__
from gexnet.errors import GexnetError, first_line

log = logging.getLogger(__name__)

CHUNK = 1 << 20  # most bytes read (and held) at once
_CHECKSUM = re.compile(r"(sha256|md5):([0-9a-fA-F]+)")
_HEX_DIGITS = {"sha256": 64, "md5": 32}
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")
_HEADERS = {
    "User-Agent": f"gexnet/{__version__} (+python urllib)",
    # Sizes and offsets are those of the file itself only if nothing recodes it on the way.
    "Accept-Encoding": "identity",
}


class DownloadError(GexnetError):
    """No address gave a complete, verified file; the message names each address and why."""


class _Failed(Exception):
    """One attempt failed; `final` when trying this address again cannot help."""

    def __init__(self, problem: str, *, final: bool = False) -> None:
        super().__init__(problem)
        self.final = final


class _Invalid(Exception):
    """The .part is the whole file and fails validation: no address can give better bytes."""

    def __init__(self, problem: str, whole: str) -> None:
        super().__init__(problem)
        self.whole = whole  # what shows the file is whole


@dataclass
class _Job:
    """One file being fetched, and what is known about it across attempts and addresses."""

    dest: Path
    part: Path
    checksum: tuple[str, str] | None
    validate: Callable[[Path], None] | None
    timeout: float
    progress: bool
    total: int | None = None  # the size a server announced, to notice a file that changed
    high_water: int = 0  # the largest the .part has been: growing past it is progress
    digest: Any = None  # hash of the first `digested` bytes of the .part
    digested: int = 0


def fetch(
    urls: Sequence[str],
    dest: str | os.PathLike,
    *,
    checksum: str | None = None,
    validate: Callable[[Path], None] | None = None,
    retries: int = 5,
    backoff_seconds: float = 2.0,
    timeout_seconds: float = 60.0,
    local_key: str | None = None,
    progress: bool = True,
) -> Path:
    """Download `dest` from the first address in `urls` that gives a complete, verified file.

    Returns `dest` at once if it exists. Each address gets `retries` attempts in a row that make
    no progress (waits double from `backoff_seconds`); an attempt that added bytes to the .part
    starts the count afresh, so a long download over a network that drops now and then finishes.
    `checksum` is "sha256:<hex>" or "md5:<hex>"; `validate(path)` raises on a bad file.

    Retried (then the next address): network faults, HTTP 5xx/408/429, a size other than the
    server's (resumed) and a checksum mismatch (fetched again from zero). Not retried: other
    HTTP refusals (the next address is tried) and a validation failure of a whole file, one
    whose size is the one the server announced or whose checksum matched. That raises
    DownloadError at once, without trying the fallbacks, naming the validator's first line and
    keeping the bytes in `<dest>.part`: a rerun checks them again without fetching them, and
    deleting that file fetches it anew. Without an announced size or a checksum, a validation
    failure may be a transfer cut short, so it is fetched again like a checksum mismatch.

    Raises DownloadError, one line naming every address and its last problem (and `local_key`,
    the setting that could point at a local copy instead).
    """
    dest = Path(dest)
    if dest.exists():
        log.info("%s exists; not downloading", dest)
        return dest
    if retries < 1:
        raise ValueError(f"retries must be >= 1, got {retries}")
    hint = f"; or set {local_key} to a local copy" if local_key else ""
    urls = list(urls)
    if not urls:
        raise DownloadError(f"no address to download {dest.name} from{hint}")
    job = _Job(
        dest=dest,
        part=dest.with_name(dest.name + ".part"),
        checksum=_parse_checksum(checksum) if checksum else None,
        validate=validate,
        timeout=timeout_seconds,
        progress=progress,
    )
    job.high_water = _size(job.part)
    dest.parent.mkdir(parents=True, exist_ok=True)
    problems = []
    for number, url in enumerate(urls, start=1):
        if number > 1:
            log.info("trying fallback address %d of %d: %s", number, len(urls), url)
        try:
            problem = _try_address(url, job, retries, backoff_seconds)
        except _Invalid as exc:
            raise DownloadError(
                f"cannot use {dest.name} from {url}: {exc}; the file is whole ({exc.whole}), "
                f"so it was not fetched again: its bytes are kept in {job.part}; delete that "
                f"file to download it again{hint}"
            ) from None
        if problem is None:
            os.replace(job.part, dest)
            log.info("downloaded %s (%s bytes) from %s", dest, f"{dest.stat().st_size:,}", url)
            return dest
        problems.append(f"{url} ({problem})")
    kept = _size(job.part)
    resume = f" ({kept:,} bytes kept in {job.part.name}; running again resumes)" if kept else ""
    raise DownloadError(f"cannot download {dest.name}: {'; '.join(problems)}{hint}{resume}")


def validate_archs4(path: Path) -> None:
    """Raise Archs4FormatError unless `path` opens as an ARCHS4-layout file."""
    from gexnet.formats.archs4 import Archs4File  # h5py is slow to import; only this check needs it

    Archs4File(path).close()


def validate_cds(path: Path) -> None:
    """Raise GexnetError unless `path` reads to the end as a CDS FASTA with one record at
    least (a truncated gzip stream or an HTML error page fails here)."""
    from gexnet.formats.fasta import iter_cds

    if sum(1 for _ in iter_cds(path)) == 0:
        raise GexnetError(f"{path}: no sequence in the file")


VALIDATORS: dict[str, Callable[[Path], None] | None] = {
    "none": None,
    "archs4": validate_archs4,
    "cds": validate_cds,
}


# --- one address ---------------------------------------------------------------------------


def _try_address(url: str, job: _Job, retries: int, backoff: float) -> str | None:
    """Attempt `url` until the .part is complete and verified (None) or it gives up (why)."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        return "not an http(s) address"
    failures, wait = 0, 0.0  # failures: attempts in a row that added nothing to the .part
    while True:
        if wait:
            log.info("waiting %.3g s before retrying %s", wait, url)
            time.sleep(wait)
        log.info("GET %s (attempt %d of %d)", url, failures + 1, retries)
        try:
            _attempt(url, job)
            return None
        except _Failed as exc:
            problem, final = str(exc), exc.final
        log.warning("%s: %s", url, problem)
        if final:
            return problem
        size = _size(job.part)
        if size > job.high_water and (job.total is None or size <= job.total):
            # Progress: a fresh run of attempts. Measured against the most ever held, so a
            # server that ignores Range and drops at random cannot keep a download going forever.
            job.high_water = size
            failures, wait = 0, backoff
            continue
        failures += 1
        if failures >= retries:
            return f"{problem} after {retries} attempts" if retries > 1 else problem
        wait = backoff * 2 ** (failures - 1)


def _attempt(url: str, job: _Job) -> None:
    """Bring the .part to the complete, verified file from `url`, or raise _Failed."""
    offset = _size(job.part)
    # Hash what is already there before asking: a server may drop a connection left idle.
    _sync_digest(job, offset)
    try:
        response = _open(url, offset, job.timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            _unsatisfiable(url, job, offset, _unsatisfied_total(exc.headers))
            return
        raise _Failed(f"HTTP {exc.code}", final=not _retryable(exc.code)) from None
    except urllib.error.URLError as exc:
        final = not isinstance(exc.reason, OSError)  # e.g. an unknown url type
        raise _Failed(f"cannot connect: {exc.reason}", final=final) from None
    except TimeoutError:
        raise _Failed(f"no response within {job.timeout:g} s") from None
    except (OSError, http.client.HTTPException) as exc:
        raise _Failed(f"no response: {first_line(exc)}") from None
    with response:
        length = response.headers.get("Content-Length")
        if response.status == 200 and offset and length == str(offset):
            # The server ignores Range, and the .part is as long as its file: check the bytes
            # kept rather than fetch them again, as after a 416.
            log.info("%s: the .part is as long as the file; verifying %s", url, job.part.name)
            job.total = offset
        else:
            offset, total = _start(response, job, offset)
            _stream(response, job, offset, total)
    _verify(job)


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse:
    headers = dict(_HEADERS)
    if offset:
        headers["Range"] = f"bytes={offset}-"
        log.info("resuming %s at %s bytes", url, f"{offset:,}")
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _start(response: http.client.HTTPResponse, job: _Job, offset: int) -> tuple[int, int | None]:
    """Where the response's bytes go in the file, and the file's size if the server said."""
    length = response.headers.get("Content-Length")
    if response.status == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        if not match:
            raise _Failed("HTTP 206 without a usable Content-Range")
        start = int(match[1])
        if start != offset:
            raise _Failed(f"asked for bytes from {offset:,}, got bytes from {start:,}")
        if match[3] != "*":
            total = int(match[3])
        else:
            total = offset + int(length) if length and length.isdigit() else None
        if job.total is not None and total is not None and total != job.total:
            # The file changed between requests (or mirrors hold different ones): start over.
            _discard(job)
            previous, job.total = job.total, total
            raise _Failed(f"remote size changed from {previous:,} to {total:,} bytes; restarting")
    elif response.status == 200:
        if offset:
            log.info("server ignores Range; restarting %s from zero", job.dest.name)
            offset = 0
            _sync_digest(job, 0)
        total = int(length) if length and length.isdigit() else None
    else:
        raise _Failed(f"HTTP {response.status}", final=True)
    if total is not None:
        job.total = total
    return offset, total


def _stream(response: http.client.HTTPResponse, job: _Job, offset: int, total: int | None) -> None:
    """Append the body to the .part chunk by chunk; raise _Failed if it ends short."""
    received = offset
    try:
        out = open(job.part, "ab" if offset else "wb")
    except OSError as exc:
        raise DownloadError(f"cannot write {job.part}: {exc}") from exc
    bar = tqdm(
        total=total,
        initial=offset,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=job.dest.name,
        disable=not job.progress,
        leave=False,
        file=sys.stderr,
        # Redrawn seldom when stderr is a log file, which keeps every redraw.
        mininterval=1.0 if sys.stderr.isatty() else 30.0,
    )
    with out, bar:
        while True:
            try:
                chunk = response.read1(CHUNK)
            except TimeoutError:
                raise _Failed(
                    f"timed out after {job.timeout:g} s at {_of(received, total)}"
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                raise _Failed(
                    f"connection lost at {_of(received, total)}: {first_line(exc)}"
                ) from None
            if not chunk:
                break
            try:
                out.write(chunk)
            except OSError as exc:
                raise DownloadError(f"cannot write {job.part}: {exc}") from exc
            if job.digest is not None:
                job.digest.update(chunk)
                job.digested += len(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    if total is not None and received != total:
        raise _Failed(f"connection closed at {_of(received, total)}")


def _unsatisfiable(url: str, job: _Job, offset: int, total: int | None) -> None:
    """416 to a resume: the .part may be complete already; keep it if it verifies."""
    if total == offset or (total is None and (job.checksum or job.validate)):
        log.info("%s: nothing left to fetch; verifying %s", url, job.part.name)
        if total is not None:
            job.total = total
        _verify(job)
        return
    log.info(
        "%s: the .part (%s bytes) does not fit the remote file (%s); restarting",
        url,
        f"{offset:,}",
        "size unknown" if total is None else f"{total:,} bytes",
    )
    _discard(job)
    _attempt(url, job)  # from zero: sends no Range, so cannot come back here


def _verify(job: _Job) -> None:
    """Check the finished .part's size, checksum and content.

    Bad bytes are deleted, to be fetched again, except a whole file that fails validation: it
    would come back the same, so it is kept and _Invalid raised.
    """
    size = _size(job.part)
    if job.total is not None and size != job.total:
        raise _Failed(f"got {size:,} bytes, expected {job.total:,}")
    whole = None  # what shows the .part is the whole file, if anything does
    if job.total is not None:
        whole = f"its size is the {size:,} bytes the server announced"
    if job.checksum is not None:
        algorithm, expected = job.checksum
        _sync_digest(job, size)
        actual = job.digest.hexdigest()
        if actual != expected:
            _discard(job)
            raise _Failed(
                f"checksum mismatch: expected {algorithm}:{expected}, got {algorithm}:{actual}"
            )
        whole = f"its {algorithm} checksum matched"
    if job.validate is not None:
        try:
            job.validate(job.part)
        except Exception as exc:  # a validator says "bad file" in its own exception types
            problem = f"validation failed: {first_line(exc)}"
            if whole is not None:
                raise _Invalid(problem, whole) from None
            _discard(job)  # perhaps cut short without a sign of it: fetch it again
            raise _Failed(problem) from None


# --- helpers -------------------------------------------------------------------------------


def _sync_digest(job: _Job, offset: int) -> None:
    """Make job.digest the hash of the .part's first `offset` bytes (rehashing only if needed)."""
    if job.checksum is None or (job.digest is not None and job.digested == offset):
        return
    job.digest, job.digested = hashlib.new(job.checksum[0]), 0
    if offset:
        log.info("hashing the %s bytes already in %s", f"{offset:,}", job.part.name)
        with open(job.part, "rb") as f:
            while job.digested < offset and (block := f.read(min(CHUNK, offset - job.digested))):
                job.digest.update(block)
                job.digested += len(block)


def _discard(job: _Job) -> None:
    job.part.unlink(missing_ok=True)
    job.digest, job.digested = None, 0


def _parse_checksum(text: str) -> tuple[str, str]:
    match = _CHECKSUM.fullmatch(text.strip())
    if not match or len(match[2]) != _HEX_DIGITS[match[1]]:
        raise DownloadError(
            f"checksum {text!r}: expected 'sha256:<64 hex digits>' or 'md5:<32 hex digits>'"
        )
    return match[1], match[2].lower()


def _unsatisfied_total(headers: Any) -> int | None:
    match = _UNSATISFIED_RANGE.fullmatch((headers or {}).get("Content-Range", "").strip())
    return int(match[1]) if match else None


def _retryable(status: int) -> bool:
    """Server trouble (5xx), a request timeout or rate limiting may pass; other refusals will not."""
    return status >= 500 or status in (408, 429)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _of(received: int, total: int | None) -> str:
    return f"{received:,} of {total:,} bytes" if total is not None else f"{received:,} bytes"
