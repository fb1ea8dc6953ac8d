"""A burst on every new connection does not hide the stalls between them.

A server that supports Range and gives each new connection a burst of new data (more than
:data:`hubcore.store.http.MIN_PROGRESS`) and then stalls used to count as progressing: every
burst restarted the stall clock, so only ``HUBCORE_RETRIES`` ended the download. The stall that
ends a failed attempt now stays charged (:class:`hubcore.store.http.StallClock`), so the budget
ends it, while a link that hiccups once still completes. Calls run on a helper thread the test
waits for a bounded time: a hang fails the test instead of holding the session.
"""

from __future__ import annotations

import hashlib
import re
import socket
import threading
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hubcore.errors import DownloadError
from hubcore.records import replace
from hubcore.store import http
from hubcore.store.downloader import DownloadSettings, HttpDownload, download_settings
from tests.deadline import run_bounded

#: The stall budget of the downloads here, in seconds.
BUDGET = 2.0
#: Seconds past the budget a download may take: the last wait's overshoot, a loaded machine.
SLACK = 3.0
#: The file served: large enough that the bursts never complete it.
SIZE = 32 << 20
#: New bytes each connection gets before the stall: more than MIN_PROGRESS.
BURST = 80 << 10


def content(start: int, end: int) -> bytes:
    """Bytes *start* to *end* (exclusive) of the file served: a repeating pattern."""
    pattern = bytes(range(256))
    first = start % 256
    return (pattern * (-(-(end - start + first) // 256)))[first : first + end - start]


class BurstServer:
    """Serves :data:`SIZE` bytes with Range. Connection *n* (from 1) gets at most :data:`BURST`
    bytes of its range if ``bursts(n)`` (then the server stalls until the test ends), else its
    whole range."""

    def __init__(self, bursts: Callable[[int], bool] = lambda n: True):
        self.bursts = bursts
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/w.bin"
        self.stopped = threading.Event()
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections.append(conn)
            burst = BURST if self.bursts(len(self.connections)) else None
            threading.Thread(target=self._serve, args=(conn, burst), daemon=True).start()

    def _serve(self, conn: socket.socket, burst: int | None) -> None:
        conn.settimeout(5)
        try:
            request = conn.recv(65536).decode("latin-1")
            found = re.search(r"Range: bytes=(\d+)-(\d*)", request)
            start = int(found.group(1)) if found else 0
            end = int(found.group(2)) + 1 if found and found.group(2) else SIZE
            conn.sendall(
                f"HTTP/1.1 206 Partial Content\r\nContent-Length: {end - start}\r\n"
                f'Content-Range: bytes {start}-{end - 1}/{SIZE}\r\nETag: "v1"\r\n\r\n'.encode()
            )
            sent = start
            stop_at = end if burst is None else min(end, start + burst)
            while sent < stop_at:
                piece = content(sent, min(stop_at, sent + (1 << 20)))
                conn.sendall(piece)
                sent += len(piece)
            self.stopped.wait()  # stalls: the connection stays open, silent
        except OSError:
            return

    def stop(self) -> None:
        self.stopped.set()
        self.sock.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., BurstServer]]:
    started: list[BurstServer] = []

    def start(*args: Any, **kwargs: Any) -> BurstServer:
        server = BurstServer(*args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def quick_settings(**changes: Any) -> DownloadSettings:
    """The defaults' proportions, scaled down: the read timeout and the longest backoff
    together are shorter than the budget (60 s + 30 s against 120 s by default), so no
    single stall spends the budget; attempts are plenty, so only the budget can end it."""
    values: dict[str, Any] = {
        "read_timeout": 0.4,
        "connect_timeout": 5.0,
        "stall_budget": BUDGET,
        "attempts": 200,
        "backoff": 0.05,
        "max_backoff": 0.2,
        "connections": 1,
        "chunk_size": SIZE,
    }
    values.update(changes)
    return replace(download_settings(), **values)


def bounded(action: Callable[[], Any], seconds: float) -> tuple[BaseException | None, float]:
    """Run *action* on a helper thread; (its exception or None, seconds taken). Fails the test
    if it is still running after *seconds*."""
    finished = run_bounded(action, seconds, "the stall budget did not end it")
    return finished.error, finished.seconds


#: How the download fetches the rest: (settings, which connections burst and stall).
PATHS: dict[str, tuple[dict[str, Any], Callable[[int], bool]]] = {
    # one chunk: the first answer bursts, every retry resumes it
    "one chunk": ({}, lambda n: True),
    # the first answer brings a whole 1 MiB chunk; one stream fetches the rest, and bursts
    "stream": ({"chunk_size": 1 << 20}, lambda n: n > 1),
    # parallel connections, one chunk each, every connection bursts
    "parallel": ({"chunk_size": 1 << 20, "parallel_threshold": 0, "connections": 3}, None),
}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_a_burst_on_every_new_connection_runs_out_of_budget(
    hub_home, serve, tmp_path: Path, path: str
) -> None:
    """Each connection brings 80 KiB of new data and then stalls: the stalls add up."""
    changes, bursts = PATHS[path]
    server = serve(bursts) if bursts is not None else serve()
    download = HttpDownload(
        server.url, tmp_path / "w.part", tmp_path / "w.meta", settings=quick_settings(**changes)
    )
    exc, took = bounded(download.run, BUDGET + SLACK + 10)
    assert took < BUDGET + SLACK, f"took {took:.1f} s with a {BUDGET:g} s stall budget"
    assert isinstance(exc, DownloadError), repr(exc)
    message = str(exc)
    assert f"127.0.0.1:{server.port}" in message, message  # the host
    assert "HUBCORE_STALL_BUDGET=2" in message, message  # the limit that fired
    assert "no progress" in message, message
    assert len(server.connections) >= 3  # new bytes on several connections did not save it


def test_one_hiccup_is_forgiven(hub_home, serve, tmp_path: Path) -> None:
    """A link that stalls once (then serves everything) completes: one stall is charged, far
    less than the budget. A guard for the rule, not a reproduction (it passed before too)."""
    server = serve(lambda n: n == 1)
    download = HttpDownload(
        server.url, tmp_path / "w.part", tmp_path / "w.meta", settings=quick_settings()
    )
    result: list[tuple[str, int]] = []
    exc, _ = bounded(lambda: result.append(download.run()), 30)
    assert exc is None, repr(exc)
    assert result == [(hashlib.sha256(content(0, SIZE)).hexdigest(), SIZE)]
    assert len(server.connections) == 2


# -- the rule, on a clock that does not move by itself -------------------------------------------
class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> tuple[http.StallClock, FakeTime]:
    fake = FakeTime()
    monkeypatch.setattr(http, "time", types.SimpleNamespace(monotonic=fake))  # this module's
    return http.StallClock(10.0), fake


def test_a_failed_attempts_stall_stays_charged(clock) -> None:
    stall, now = clock
    now.now += 8  # a pause the connection survives: forgiven by its next bytes, as before
    stall.arrived(http.MIN_PROGRESS)
    assert stall.stalled_for() == pytest.approx(0)
    now.now += 4  # the connection stalls 4 s, times out
    stall.failed()
    now.now += 1  # backoff, a new connection
    assert stall.arrived(http.MIN_PROGRESS)  # its burst
    assert stall.stalled_for() == pytest.approx(5)  # not forgiven by the burst
    for _ in range(2):  # twice more: 10 s charged, the budget is spent
        now.now += 2.5
        stall.failed()
        stall.arrived(http.MIN_PROGRESS)
    assert stall.spent()


def test_sustained_progress_forgives_the_charge(clock) -> None:
    stall, now = clock
    now.now += 4
    stall.failed()
    stall.arrived(http.MIN_PROGRESS)
    assert stall.stalled_for() == pytest.approx(4)
    for _ in range(10):  # a steady trickle for a whole budget, without a failure
        now.now += 1
        stall.arrived(http.MIN_PROGRESS)
    assert stall.stalled_for() == pytest.approx(0)
