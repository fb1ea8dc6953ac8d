"""No object store waits forever: fsspec folders and weights at ``s3://`` URLs fail within the
configured timeouts and stall budget, naming the host, the transport and the limit that fired.

The S3 endpoint (``AWS_ENDPOINT_URL``) is a loopback server that accepts connections and
never answers, or one that answers the metadata request and then stalls the body. Every call
runs on a helper thread that the test waits for a bounded time, so a hang fails the test
instead of holding the session.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import hubcore
from hubcore.errors import DownloadError
from tests.deadline import run_bounded

pytest.importorskip("s3fs")

#: Seconds a call may take before the test calls it a hang (the limits set below are 1-2 s).
BOUND = 40.0


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never sends a byte."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def stop(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


class StallingS3:
    """Answers HEAD of any object (1 MiB, with an ETag), then sends 100 KB of a GET and
    stalls until the test ends."""

    SIZE = 1 << 20

    def __init__(self) -> None:
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _headers(self, status: int, length: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(length))
                self.send_header("ETag", '"0123456789abcdef"')
                self.send_header("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")
                self.send_header("Content-Type", "application/octet-stream")

            def do_HEAD(self) -> None:
                self._headers(200, outer.SIZE)
                self.end_headers()

            def do_GET(self) -> None:
                self._headers(206, outer.SIZE)
                self.send_header("Content-Range", f"bytes 0-{outer.SIZE - 1}/{outer.SIZE}")
                self.end_headers()
                try:
                    self.wfile.write(b"x" * 100_000)
                    self.wfile.flush()
                except OSError:
                    return
                outer.release.wait(120)
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def bounded(action: Callable[[], Any], seconds: float = BOUND) -> BaseException | None:
    """Run *action* on a helper thread; its exception (None if it returned). Fails the test
    if it is still running after *seconds*."""
    return run_bounded(action, seconds, "a transport without a time limit").error


@pytest.fixture
def endpoint_env(hub_home, monkeypatch) -> Callable[[int], None]:
    """Point S3 at a loopback port, with fresh fsspec instances (they are cached by options)."""
    import fsspec

    def use(port: int) -> None:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
        fsspec.get_filesystem_class("s3").clear_instance_cache()

    return use


@pytest.fixture
def silent(endpoint_env) -> Iterator[SilentServer]:
    server = SilentServer()
    endpoint_env(server.port)
    yield server
    server.stop()


@pytest.fixture
def stalling(endpoint_env) -> Iterator[StallingS3]:
    server = StallingS3()
    endpoint_env(server.port)
    yield server
    server.stop()


def assert_names_the_failure(exc: BaseException | None, port: int, limit: str) -> str:
    assert isinstance(exc, DownloadError), repr(exc)
    message = str(exc)
    assert f"127.0.0.1:{port}" in message  # the host
    assert "s3 (s3fs)" in message  # the transport
    assert limit in message  # the timeout that fired
    assert "?" not in message  # no query strings (signatures) from the library's own text
    return message


def test_a_silent_store_fails_a_folder_listing_by_the_read_timeout(silent, monkeypatch) -> None:
    monkeypatch.setenv("HUBCORE_CONNECT_TIMEOUT", "1")
    monkeypatch.setenv("HUBCORE_READ_TIMEOUT", "1")
    monkeypatch.setenv("HUBCORE_RETRIES", "2")
    exc = bounded(lambda: hubcore.list("s3://bucket/hub"))
    message = assert_names_the_failure(exc, silent.port, "HUBCORE_READ_TIMEOUT=1")
    assert message.startswith("listing s3://bucket/hub failed")
    assert silent.accepted  # it did connect: the read timeout, not the connect one, fired


def test_the_stall_budget_bounds_a_folder_listing(silent, monkeypatch) -> None:
    monkeypatch.setenv("HUBCORE_READ_TIMEOUT", "60")  # the budget comes first
    monkeypatch.setenv("HUBCORE_STALL_BUDGET", "2")
    exc = bounded(lambda: hubcore.list("s3://bucket/hub"), seconds=2 + 3)
    assert_names_the_failure(exc, silent.port, "HUBCORE_STALL_BUDGET=2")


def test_a_silent_store_fails_a_weight_fetch(silent, monkeypatch) -> None:
    monkeypatch.setenv("HUBCORE_READ_TIMEOUT", "1")
    monkeypatch.setenv("HUBCORE_RETRIES", "1")
    exc = bounded(lambda: hubcore.download("s3://bucket/w.bin"))
    assert_names_the_failure(exc, silent.port, "HUBCORE_READ_TIMEOUT=1")


@pytest.mark.parametrize(
    ("variables", "limit"),
    [
        ({"HUBCORE_READ_TIMEOUT": "1", "HUBCORE_RETRIES": "2"}, "HUBCORE_READ_TIMEOUT=1"),
        ({"HUBCORE_READ_TIMEOUT": "60", "HUBCORE_STALL_BUDGET": "2"}, "HUBCORE_STALL_BUDGET=2"),
    ],
)
def test_a_store_that_stalls_mid_file_fails_and_caches_nothing(
    stalling, hub_home: Path, monkeypatch, variables: dict[str, str], limit: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    exc = bounded(lambda: hubcore.download("s3://bucket/w.bin"))
    message = assert_names_the_failure(exc, stalling.port, limit)
    assert "reading s3://bucket/w.bin" in message
    assert not [p for p in (hub_home / "blobs").rglob("*") if p.is_file()]
    assert not list((hub_home / "tmp").glob("*.part"))
    assert not (hub_home / "urls").exists() or not any((hub_home / "urls").iterdir())


def test_timeouts_given_in_the_storage_options_win(silent, monkeypatch) -> None:
    from hubcore.store import stores

    monkeypatch.setenv("HUBCORE_READ_TIMEOUT", "7")
    options = stores.timed_options("s3", {"config_kwargs": {"read_timeout": 3}})
    assert options["config_kwargs"]["read_timeout"] == 3
    assert options["config_kwargs"]["connect_timeout"] == 10.0
    assert stores.timed_options("memory", {}) == {}
