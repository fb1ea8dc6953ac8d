"""A loopback HTTP file server with fault injection, for hubcore's download tests and
benchmarks. Kept out of the installed package: plugin tests get the plain
:class:`hubcore.testing.files.FileServer` (the ``file_server`` fixture), which this extends.

It serves files from a folder with ``Range``, ``ETag``/``If-Range`` and ``HEAD``, uses
``sendfile`` when nothing is being injected, can cap each connection's rate (as CDNs do), and
can misbehave on purpose: cut the connection, send fewer bytes than promised, reset, answer
errors with ``Retry-After``, stall, ignore ``Range``, change the file, or redirect. It counts
requests and body bytes, so tests can assert "exactly one transfer", and logs every request's
path and headers, so tests can assert which credentials reached it. Given a certificate and key
(``tls=(cert, key)``) it speaks HTTPS.
"""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import BinaryIO

import attrs

from hubcore.testing import files

__all__ = ["Faults", "FileServer"]


@attrs.define
class Faults:
    """What to do wrong. The per-response faults apply to the first ``times`` GETs with a body."""

    cut_after: int | None = None  # close the connection after this many body bytes
    reset_after: int | None = None  # send a TCP reset after this many body bytes
    short_body: bool = False  # promise the full length, send half, close
    stall_after: int | None = None  # stop sending for ``stall_seconds`` after this many bytes
    stall_seconds: float = 5.0
    times: int = 1
    errors: list[tuple[int, int | None]] = attrs.field(factory=list)  # (status, Retry-After)
    ignore_range: bool = False
    change_after_requests: int | None = None  # replace file contents after this many GETs
    changed_content: bytes = b""
    wrong_bytes: bool = False  # serve other bytes than the ETag describes (every time)


class FileServer(files.FileServer):
    """``FileServer(folder).start()``; ``add(name, data)`` returns the file's URL. Set
    ``faults``, ``redirects`` or ``rate_limit`` to make it misbehave."""

    def __init__(
        self,
        folder: Path,
        *,
        rate_limit: int | None = None,
        host: str = "127.0.0.1",
        tls: tuple[Path, Path] | None = None,
    ):
        super().__init__(folder, host=host)
        self.rate_limit = rate_limit  # bytes per second per connection
        self.faults = Faults()
        self.redirects: dict[str, str] = {}  # path -> absolute URL
        self.bytes_sent = 0
        self._faulty_responses = 0
        self._gets = 0
        self._stopping = threading.Event()  # wakes stalled responses when the server stops
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"

    def stop(self) -> None:
        self._stopping.set()
        super().stop()

    def reset_counters(self) -> None:
        super().reset_counters()
        with self._lock:
            self.bytes_sent = 0
            self._faulty_responses = 0
            self._gets = 0

    # -- handling ----------------------------------------------------------------------------------
    def _serve(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        self._record(h, head)
        with self._lock:
            self._gets += 0 if head else 1
            gets = self._gets
            errors = self.faults.errors
            error = errors.pop(0) if errors and not head else None
        path = h.path.split("?", 1)[0]
        if path in self.redirects:
            h.send_response(302)
            h.send_header("Location", self.redirects[path])
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        if error is not None:
            status, retry_after = error
            h.send_response(status)
            if retry_after is not None:
                h.send_header("Retry-After", str(retry_after))
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        file = self.file_for(path)
        if file is None:
            h.send_response(404)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        change_at = self.faults.change_after_requests
        if not head and change_at is not None and gets > change_at:
            with self._lock:
                if self.faults.change_after_requests is not None:
                    file.write_bytes(self.faults.changed_content)
                    self.faults.change_after_requests = None
        size = file.stat().st_size
        etag = _etag(file)
        start, end, partial = 0, size - 1, False
        wanted = h.headers.get("Range")
        if_range = h.headers.get("If-Range")
        match = re.match(r"^bytes=(\d+)-(\d*)$", wanted or "")
        if match and not self.faults.ignore_range and (if_range in (None, etag)):
            start = int(match.group(1))
            end = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
            if start >= size:
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{size}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            partial = True
        length = end - start + 1
        h.send_response(206 if partial else 200)
        h.send_header("Content-Length", str(length))
        h.send_header("ETag", etag)
        h.send_header("Accept-Ranges", "bytes")
        if partial:
            h.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        h.end_headers()
        if head:
            return
        with self._lock:
            faulty = self._faulty_responses < self.faults.times and self._has_stream_fault()
            if faulty:
                self._faulty_responses += 1
        with open(file, "rb") as fh:
            fh.seek(start)
            if not faulty and self.rate_limit is None and not self.faults.wrong_bytes:
                sent = _sendfile(h.connection, fh, start, length)
            else:
                sent = self._send_slowly(h, fh, length, faulty)
        with self._lock:
            self.bytes_sent += sent

    def _has_stream_fault(self) -> bool:
        f = self.faults
        return (
            any(x is not None for x in (f.cut_after, f.reset_after, f.stall_after)) or f.short_body
        )

    def _send_slowly(
        self, h: BaseHTTPRequestHandler, fh: BinaryIO, length: int, faulty: bool
    ) -> int:
        f = self.faults
        limit = length
        if faulty and f.short_body:
            limit = length // 2
        for point in (f.cut_after, f.reset_after) if faulty else ():
            if point is not None:
                limit = min(limit, point)
        sent = 0
        began = time.monotonic()
        stalled = False
        while sent < limit:
            piece = fh.read(min(64 << 10, limit - sent))
            if not piece:
                break
            if f.wrong_bytes:
                piece = bytes(b ^ 0xFF for b in piece)
            try:
                h.wfile.write(piece)
                h.wfile.flush()
            except OSError:
                return sent
            sent += len(piece)
            if faulty and f.stall_after is not None and sent >= f.stall_after and not stalled:
                stalled = True
                self._stopping.wait(f.stall_seconds)
            if self.rate_limit:
                ahead = sent / self.rate_limit - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)
        if sent < length:
            if faulty and f.reset_after is not None:
                h.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return sent


def _sendfile(sock: socket.socket, fh: BinaryIO, offset: int, count: int) -> int:
    try:
        return sock.sendfile(fh, offset, count)
    except OSError:
        return 0


def _etag(file: Path) -> str:
    st = file.stat()
    key = f"{st.st_size}-{st.st_mtime_ns}-{st.st_ino}".encode()
    return '"' + hashlib.sha256(key).hexdigest()[:16] + '"'
