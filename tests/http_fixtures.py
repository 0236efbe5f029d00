"""A local HTTP server for tests: serves byte payloads with the failures real networks have.

    with LocalServer() as server:
        url = server.add("/file.h5", payload, cut_at=[1000], fail_first=1)
        ...
        assert [seen.range for seen in server.seen("/file.h5")] == [None, None, "bytes=1000-"]

Each path counts its requests; behaviours that name "the first K requests" or "request i" use
that count. Everything binds to 127.0.0.1 on an ephemeral port.
"""

from __future__ import annotations

import re
import socket
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

_RANGE = re.compile(r"bytes=(\d+)-")


@dataclass
class Resource:
    """What one path serves, and how it misbehaves. Fields may be changed while serving."""

    payload: bytes
    honour_range: bool = True  # False: answer every request 200 with the whole payload
    status: int | None = None  # answer every request with this status and no body
    fail_first: int = 0  # the first K requests answer `fail_status`
    fail_status: int = 503
    # Request i sends its headers (full Content-Length) but stops at file offset cut_at[i].
    cut_at: Sequence[int] = ()
    # After a cut: close the connection, reset it (RST), or go silent for `stall_seconds`.
    cut_how: Literal["close", "reset", "stall"] = "close"
    stall_seconds: float = 5.0
    bodies: Sequence[bytes] = ()  # request i serves bodies[i] in place of `payload`
    # False: no Content-Length and no total in Content-Range; the body ends when the connection
    # closes, so a cut looks like the end of the file.
    announce_size: bool = True
    throttle: float = 0.0  # seconds slept after each chunk
    chunk_size: int = 64 * 1024
    requests: int = field(default=0, init=False)


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it, and the status it answered."""

    path: str
    range: str | None
    status: int


class LocalServer:
    """A ThreadingHTTPServer on 127.0.0.1 in a daemon thread; a context manager."""

    def __init__(self) -> None:
        self.resources: dict[str, Resource] = {}
        self.requests: list[Seen] = []
        self.lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        # A short poll interval: shutdown() waits for the loop to notice, once per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add(self, path: str, payload: bytes, **behaviour: object) -> str:
        """Serve `payload` at `path` (see Resource for the behaviours); returns its address."""
        self.resources[path] = Resource(payload, **behaviour)  # type: ignore[arg-type]
        return self.url(path)

    def seen(self, path: str | None = None) -> list[Seen]:
        """The requests so far, to `path` or to any path, in order of arrival."""
        with self.lock:
            return [r for r in self.requests if path is None or r.path == path]


def closed_port_url(path: str = "/file") -> str:
    """An address on 127.0.0.1 where nothing listens (the port was just bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler stalled on purpose must not hold up shutdown
    owner: LocalServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean

    def do_GET(self) -> None:
        owner = self.server.owner
        range_header = self.headers.get("Range")
        with owner.lock:
            resource = owner.resources.get(self.path)
            index = resource.requests if resource else 0
            if resource:
                resource.requests += 1
            status, body, start = _plan(resource, index, range_header)
            owner.requests.append(Seen(self.path, range_header, status))
        try:
            self._answer(resource, index, status, body, start)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (killed, or gave up): nothing to do

    def _answer(
        self, resource: Resource | None, index: int, status: int, body: bytes, start: int
    ) -> None:
        announce = resource is None or resource.announce_size
        self.send_response(status)
        if status == 416 and announce:
            self.send_header("Content-Range", f"bytes */{len(body)}")
        if status not in (200, 206):
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        assert resource is not None
        if status == 206:
            total = len(body) if announce else "*"
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{total}")
        if announce:
            self.send_header("Content-Length", str(len(body) - start))
        else:
            self.close_connection = True  # the close marks the end of the body
        self.end_headers()
        stop = resource.cut_at[index] if index < len(resource.cut_at) else len(body)
        position = start
        while position < stop:
            end = min(position + resource.chunk_size, stop)
            self.wfile.write(body[position:end])
            position = end
            if resource.throttle:
                time.sleep(resource.throttle)
        if stop < len(body):
            self._cut(resource)

    def _cut(self, resource: Resource) -> None:
        self.close_connection = True
        if resource.cut_how == "stall":
            time.sleep(resource.stall_seconds)
        elif resource.cut_how == "reset":
            # A reset discards what the client has not read yet; wait a little so that it has
            # read something, or a test could not tell resuming from restarting.
            time.sleep(0.1)
            # Linger 0: closing sends RST instead of FIN, as a dropped connection does.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()


def _plan(
    resource: Resource | None, index: int, range_header: str | None
) -> tuple[int, bytes, int]:
    """Status, body and first byte to send for request number `index` to `resource`."""
    if resource is None:
        return 404, b"", 0
    if resource.status is not None:
        return resource.status, b"", 0
    if index < resource.fail_first:
        return resource.fail_status, b"", 0
    body = resource.bodies[index] if index < len(resource.bodies) else resource.payload
    match = _RANGE.fullmatch(range_header or "")
    if resource.honour_range and match:
        start = int(match[1])
        if start >= len(body):
            return 416, body, start
        return 206, body, start
    return 200, body, 0
