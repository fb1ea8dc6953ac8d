"""Transfers under an adversary's eye (review of the body reads sized by what is waiting and
of the object-store read-ahead): healthy slow links complete, chunked bodies arrive whole,
abandoned object-store streams release their responses, a slow disk is not a network stall.
Every server here is on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hubcore
from tests.deadline import run_bounded

#: The stall budget of the tests here, in seconds.
BUDGET = 2.0


@pytest.fixture
def budget(hub_home, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBCORE_STALL_BUDGET", f"{BUDGET:g}")
    monkeypatch.setenv("HUBCORE_CONNECT_TIMEOUT", "60")
    monkeypatch.setenv("HUBCORE_READ_TIMEOUT", "60")
    monkeypatch.setenv("HUBCORE_RETRIES", "20")


class BurstThenSteady:
    """Serves *data* (``Range`` honoured when *ranges*): every response sends its first
    *burst* bytes at once, then *step* bytes every *every* seconds: a steady link far above
    the stall rule's :data:`~hubcore.store.http.MIN_PROGRESS` per budget, after a burst (a CDN
    that lets a connection start fast, then rate-limits it)."""

    def __init__(
        self,
        data: bytes,
        *,
        burst: int,
        step: int,
        every: float,
        ranges: bool = True,
        fast_start: bool = False,
    ) -> None:
        self.fast_start = fast_start  # the range from byte 0 comes at once
        self.data, self.burst, self.step, self.every, self.ranges = (
            data,
            burst,
            step,
            every,
            ranges,
        )
        self.stopped = threading.Event()
        self.requests: list[str] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _request(self, conn: socket.socket) -> str | None:
        """The request's head (its first line recorded), or None if the client went away."""
        request = b""
        while b"\r\n\r\n" not in request:
            got = conn.recv(65536)
            if not got:
                return None
            request += got
        text = request.decode("latin-1")
        self.requests.append(text.split("\r\n", 1)[0])
        return text

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            try:
                text = self._request(conn)
                if text is None:
                    return
                match = re.search(r"(?im)^range: bytes=(\d+)-(\d*)\s*$", text)
                size = len(self.data)
                if self.ranges and match:
                    start = int(match.group(1))
                    end = min(int(match.group(2)) if match.group(2) else size - 1, size - 1)
                    body = self.data[start : end + 1]
                    head = (
                        f"HTTP/1.1 206 Partial Content\r\nContent-Length: {len(body)}\r\n"
                        f"Content-Range: bytes {start}-{end}/{size}\r\nAccept-Ranges: bytes\r\n"
                        'ETag: "fixed"\r\nConnection: close\r\n\r\n'
                    )
                else:
                    body = self.data
                    head = (
                        f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n"
                        'ETag: "fixed"\r\nConnection: close\r\n\r\n'
                    )
                burst = len(body) if self.fast_start and "bytes=0-" in text else self.burst
                conn.sendall(head.encode() + body[:burst])
                sent = burst
                while sent < len(body) and not self.stopped.wait(self.every):
                    conn.sendall(body[sent : sent + self.step])
                    sent += self.step
            except OSError:
                return

    def stop(self) -> None:
        self.stopped.set()
        self.sock.close()


@pytest.fixture
def burst_server() -> Iterator[Any]:
    started: list[BurstThenSteady] = []

    def start(data: bytes, **kwargs: Any) -> BurstThenSteady:
        server = BurstThenSteady(data, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.mark.parametrize("ranges", [True, False], ids=["range-206", "no-range-200"])
def test_a_steady_link_after_a_burst_completes(budget, burst_server, ranges: bool) -> None:
    """64 KiB every 0.1 s (10x the stall rule's MIN_PROGRESS per budget, each arrival restarts
    the clock) after a 4 MiB burst: a healthy transfer the StallClock rule says completes (a read
    that took the rest of its 8 MiB in one call, cut at the budget, failed it)."""
    data = hashlib.sha256(b"seed").digest() * ((8 << 20) // 32)  # 8 MiB
    server = burst_server(data, burst=4 << 20, step=64 << 10, every=0.1, ranges=ranges)
    url = f"http://127.0.0.1:{server.port}/w.bin"
    finished = run_bounded(lambda: hubcore.download(url), 60, "a steady download hung")
    assert finished.error is None, f"{finished.error!r} (requests: {server.requests})"
    path = finished.value
    assert Path(path).read_bytes() == data


def test_parallel_chunks_on_a_steady_link_after_a_burst(
    budget, burst_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunk 0 comes at once; then four connections, each 1 MiB at once then 32 KiB every
    0.1 s (the shared clock sees MIN_PROGRESS every 0.05 s): the transfer is healthy and must
    complete, each byte sent once or so."""
    monkeypatch.setenv("HUBCORE_CHUNK_MB", "2")
    monkeypatch.setenv("HUBCORE_PARALLEL_MIN_MB", "4")
    monkeypatch.setenv("HUBCORE_CONNECTIONS", "4")
    monkeypatch.setenv("HUBCORE_FAST_LINK_MBPS", "1000000")  # never "fast": split
    data = hashlib.sha256(b"seed").digest() * ((8 << 20) // 32)  # 8 MiB
    server = burst_server(data, burst=1 << 20, step=32 << 10, every=0.1, fast_start=True)
    url = f"http://127.0.0.1:{server.port}/w.bin"
    finished = run_bounded(lambda: hubcore.download(url), 90, "a steady download hung")
    assert finished.error is None, f"{finished.error!r} (requests: {server.requests})"
    assert Path(finished.value).read_bytes() == data
    assert len(server.requests) <= 6, server.requests


def test_an_abandoned_s3_stream_releases_its_response(
    s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that fails (a full disk) abandons the stream half read: its GetObject response
    must be closed, not left holding a pooled connection until garbage collection (s3fs's
    streamed file never sets ``_closed``, so fsspec's ``close`` returns at once and never
    touches the body)."""
    import s3fs
    from s3fs.core import S3AsyncStreamedFile

    from hubcore.store import stores

    data = os.urandom(3 * stores.RANGE)
    s3fs.S3FileSystem().pipe_file(f"{s3_bucket}/big.bin", data)
    opened = stores.open_store(f"s3://{s3_bucket}")
    streams: list[Any] = []
    original = S3AsyncStreamedFile.read

    async def read(self: Any, length: int = -1) -> bytes:
        streams.append(self)
        return await original(self, length)

    monkeypatch.setattr(S3AsyncStreamedFile, "read", read)

    def write(piece: bytes) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        stores.copy(opened, f"{s3_bucket}/big.bin", None, write, "reading big.bin")
    body = streams[0].r
    response = getattr(body, "_raw_stream", None) or getattr(body, "raw_stream", None)
    assert response is not None
    assert response.closed, "the GetObject response is still open"


class ChunkedServer(BurstThenSteady):
    """Serves *data* with ``Transfer-Encoding: chunked`` (no length, no Range), in chunks of
    *step* bytes, all at once."""

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                if self._request(conn) is None:
                    return
                out = [
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                ]
                for at in range(0, len(self.data), self.step):
                    part = self.data[at : at + self.step]
                    out.append(b"%x\r\n" % len(part) + part + b"\r\n")
                out.append(b"0\r\n\r\n")
                conn.sendall(b"".join(out))
            except OSError:
                return


@pytest.mark.parametrize("step", [1 << 20, 100_000])
def test_a_chunked_body_arrives_whole(budget, step: int) -> None:
    """A chunked body (big chunks and small ones) is read whole and verified."""
    data = os.urandom((8 << 20) + 12345)
    server = ChunkedServer(data, burst=0, step=step, every=0)
    try:
        path = hubcore.download(f"http://127.0.0.1:{server.port}/w.bin")
        assert Path(path).read_bytes() == data
    finally:
        server.stop()


def test_a_slow_disk_is_not_charged_to_the_s3_stall_budget(
    s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each write takes longer than the budget; the read ahead is done meanwhile and
    its own budget is the network's (a budget a loaded machine's moto meets for 4 MiB)."""
    import s3fs

    from hubcore.store import stores

    monkeypatch.setenv("HUBCORE_STALL_BUDGET", "3")
    data = os.urandom(2 * stores.RANGE + 7)
    s3fs.S3FileSystem().pipe_file(f"{s3_bucket}/big.bin", data)
    opened = stores.open_store(f"s3://{s3_bucket}")
    got: list[bytes] = []

    def write(piece: bytes) -> None:
        threading.Event().wait(3.5)
        got.append(piece)

    assert stores.copy(opened, f"{s3_bucket}/big.bin", None, write, "reading") == len(data)
    assert b"".join(got) == data


def test_an_empty_s3_object(s3_bucket: str) -> None:
    """A zero-length object copies as nothing, whether its size is given or not."""
    import s3fs

    from hubcore.store import stores

    s3fs.S3FileSystem().pipe_file(f"{s3_bucket}/empty.bin", b"")
    opened = stores.open_store(f"s3://{s3_bucket}")
    for size in (None, 0):
        got: list[bytes] = []
        assert stores.copy(opened, f"{s3_bucket}/empty.bin", size, got.append, "r") == 0
        assert b"".join(got) == b""


def test_a_stream_broken_before_its_size_on_whole_pieces(
    s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream breaks before its response told the size, on an object of whole pieces: the
    size is asked for, so the ranges stop at the end (they went one past it: 416)."""
    import s3fs
    from s3fs.core import S3AsyncStreamedFile

    from hubcore.store import stores

    data = os.urandom(2 * stores.RANGE)
    s3fs.S3FileSystem().pipe_file(f"{s3_bucket}/whole.bin", data)
    opened = stores.open_store(f"s3://{s3_bucket}")

    async def broken(self: Any, length: int = -1) -> bytes:
        raise ConnectionResetError("reset before the headers")

    monkeypatch.setattr(S3AsyncStreamedFile, "read", broken)
    got: list[bytes] = []
    assert stores.copy(opened, f"{s3_bucket}/whole.bin", None, got.append, "r") == len(data)
    assert b"".join(got) == data
