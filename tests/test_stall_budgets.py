"""The stall budget bounds the time of every transport that has one.

``HUBCORE_STALL_BUDGET`` is set to :data:`BUDGET` seconds and the connect and read timeouts to a
minute, so that only the budget can end a transfer in time: against a server that never lets a
connection in, one that accepts and never answers, and one that drips a byte every 0.1 s (which
no read timeout ever trips), each transport must fail within the budget and a little slack
(:data:`SLACK`, for a loaded machine), with a :class:`~hubcore.errors.DownloadError` naming the
budget. Transports: HTTP weights, fsspec store reads (s3fs), git over smart HTTP (protocol v2
and v0), ``git://`` and SSH (through ``GIT_SSH_COMMAND``). Git-host archives use the
weights' engine (tests/test_git_host_archives.py). Every call runs on a helper thread the test
waits for, so a hang fails the test instead of holding the session.
"""

from __future__ import annotations

import socket
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import hubcore
from hubcore.errors import DownloadError
from tests.deadline import run_bounded

#: The stall budget of every test here, in seconds.
BUDGET = 2.0
#: Seconds past the budget a transfer may take: the last wait's overshoot and a loaded machine.
SLACK = 3.0
#: A drip: one byte this often never trips a read timeout.
DRIP_EVERY = 0.1


@pytest.fixture(autouse=True)
def only_the_budget(hub_home, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBCORE_STALL_BUDGET", f"{BUDGET:g}")
    monkeypatch.setenv("HUBCORE_CONNECT_TIMEOUT", "60")
    monkeypatch.setenv("HUBCORE_READ_TIMEOUT", "60")
    monkeypatch.setenv("HUBCORE_RETRIES", "50")
    for name in ("GIT_SSH_COMMAND", "GIT_SSH", "GIT_SSH_VARIANT"):
        monkeypatch.delenv(name, raising=False)


def within_budget(action: Callable[[], Any]) -> str:
    """Run *action* on a helper thread; it must fail with a DownloadError naming the stall
    budget within ``BUDGET + SLACK`` seconds. Returns the message."""
    # past the bound only to report, not to wait forever
    finished = run_bounded(action, BUDGET + SLACK + 30, "the stall budget did not end it")
    took, exc = finished.seconds, finished.error
    assert took < BUDGET + SLACK, f"took {took:.1f} s with a {BUDGET:g} s stall budget"
    assert isinstance(exc, DownloadError), repr(exc)
    message = str(exc)
    assert "HUBCORE_STALL_BUDGET" in message, message
    return message


class Server:
    """A loopback TCP server with one of three behaviours for each connection:

    * ``unanswered``: its backlog is full, so a connection is never even accepted;
    * ``silent``: accepts, reads, never sends a byte;
    * ``drip``: reads the request, sends *head*, then one byte of *filler* every
      :data:`DRIP_EVERY` seconds until the client goes (over TLS with the server context
      *tls*).
    """

    def __init__(self, mode: str, head: bytes = b"", filler: bytes = b"x", tls: Any = None):
        self.mode, self.head, self.filler, self.tls = mode, head, filler, tls
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stopped = threading.Event()
        self.held: list[socket.socket] = []
        if mode == "unanswered":
            self.sock.listen(0)
            filler_conn = socket.create_connection(("127.0.0.1", self.port))  # fills the backlog
            self.held.append(filler_conn)
            return
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.held.append(conn)
            if self.mode == "drip":
                threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        try:  # stop() may close the connection before this thread starts
            conn.settimeout(1)
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
                self.held.append(conn)
            conn.recv(65536)  # the request (or its start)
            conn.sendall(self.head)
            while not self.stopped.wait(DRIP_EVERY):
                conn.sendall(self.filler)
        except OSError:
            return

    def stop(self) -> None:
        self.stopped.set()
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(mode: str, head: bytes = b"", filler: bytes = b"x", tls: Any = None) -> Server:
        server = Server(mode, head, filler, tls)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


HTTP_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n"


# -- HTTP weights ------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["unanswered", "silent", "drip"])
def test_http_weights(serve, mode: str) -> None:
    server = serve(mode, HTTP_HEAD)
    within_budget(lambda: hubcore.download(f"http://127.0.0.1:{server.port}/w.bin"))


#: A body that starts and then stops, on a connection the server closes after the response
#: (http.client then drops ``connection.sock``: the body's socket must still be found).
CLOSING_HEAD = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 100000000\r\n\r\n" + (
    b"x" * 1000
)


def test_http_weights_stalled_body_on_a_closing_connection(serve) -> None:
    """The body stops after 1,000 bytes: the error gives the wait actually used (cut to the
    budget), not the 60 s read timeout setting."""
    server = serve("drip", CLOSING_HEAD, filler=b"")
    message = within_budget(lambda: hubcore.download(f"http://127.0.0.1:{server.port}/w.bin"))
    assert "timed out" in message
    assert "60 s" not in message, message


def test_limit_wait_reaches_the_socket_of_a_closing_connection(serve) -> None:
    """With ``Connection: close`` each read still waits only as long as :func:`limit_wait` says
    (not the 60 s timeout the request was sent with)."""
    import requests

    from hubcore.store.http import limit_wait, read_piece

    server = serve("drip", CLOSING_HEAD, filler=b"")
    response = requests.get(f"http://127.0.0.1:{server.port}/w.bin", stream=True, timeout=60)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            with response:
                read_piece(response, 1 << 20, lambda _n: None, wait=lambda: 0.2)
        except BaseException as exc:
            outcome.append(exc)

    limit_wait(response, 0.2)
    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(BUDGET + SLACK)
    assert outcome, "the read still waits: limit_wait did not reach the socket"
    assert "timed out" in str(outcome[0]).lower(), repr(outcome[0])


#: A body that starts with a burst (reads then ask for all that is waiting) and then drips.
def _burst(head: bytes) -> bytes:
    return head + b"x" * (4 << 20)


@pytest.mark.parametrize(
    "head",
    [HTTP_HEAD, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"],
    ids=["length", "close-delimited"],
)
def test_http_weights_burst_then_drip(serve, head: bytes) -> None:
    """Reads sized by what is waiting still end at the budget once the burst is over, with
    or without a length (a body without one is never taken as whole at a stall)."""
    server = serve("drip", _burst(head))
    within_budget(lambda: hubcore.download(f"http://127.0.0.1:{server.port}/w.bin"))


# -- fsspec stores (s3fs) ----------------------------------------------------------------------
S3_HEAD = (
    b'HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\nETag: "0123456789abcdef"\r\n'
    b"Last-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
    b"Content-Type: application/octet-stream\r\n\r\n"
)


@pytest.mark.parametrize("mode", ["silent", "drip"])
def test_s3_store_read(serve, monkeypatch, mode: str) -> None:
    pytest.importorskip("s3fs")
    import fsspec

    server = serve(mode, S3_HEAD)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.port}")
    fsspec.get_filesystem_class("s3").clear_instance_cache()
    within_budget(lambda: hubcore.download("s3://bucket/w.bin"))


# -- git ---------------------------------------------------------------------------------------
#: A pkt-line that announces 65,531 bytes: the drip never completes it.
LONG_PKT = b"ffff"
GIT_V2_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-result\r\n"
    b"Content-Length: 100000000\r\n\r\n" + LONG_PKT
)


@pytest.mark.parametrize("mode", ["unanswered", "silent", "drip"])
def test_git_smart_http(serve, mode: str) -> None:
    server = serve(mode, GIT_V2_HEAD)
    within_budget(lambda: hubcore.list(f"git+http://127.0.0.1:{server.port}/x.git@main"))


@pytest.fixture
def v0_server() -> Iterator[Callable[[str], str]]:
    """Mark a URL as a server known to speak only protocol v0 (as after its first listing),
    with the capabilities a v0 fetch may ask for; forgotten after the test."""
    from hubcore.sources.gitproto import SmartHTTP

    marked: list[str] = []

    def mark(url: str) -> str:
        SmartHTTP._v0_servers[url] = frozenset({b"side-band-64k", b"ofs-delta", b"shallow"})
        marked.append(url)
        return url

    yield mark
    for url in marked:
        SmartHTTP._v0_servers.pop(url, None)


def test_git_smart_http_v0_advertisement(serve, v0_server) -> None:
    """A server that does not answer v2 is asked for ``info/refs``, which it drips."""
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-advertisement\r\n"
        b"Content-Length: 100000000\r\n\r\n001e# service=git-upload-pack\n0000" + LONG_PKT
    )
    server = serve("drip", head)
    url = v0_server(f"http://127.0.0.1:{server.port}/x.git")  # straight to info/refs
    within_budget(lambda: hubcore.list(f"git+{url}@main"))


@pytest.mark.parametrize("mode", ["unanswered", "silent", "drip"])
def test_git_smart_http_v0_fetch(serve, v0_server, mode: str) -> None:
    """The v0 fetch (a full commit needs no listing) reads within the budget too."""
    server = serve(mode, GIT_V2_HEAD)
    url = v0_server(f"http://127.0.0.1:{server.port}/x.git")
    within_budget(lambda: hubcore.list(f"git+{url}@{'1' * 40}"))


def _pkt(data: bytes) -> bytes:
    return b"%04x" % (len(data) + 4) + data


def test_git_smart_http_v0_drip_of_valid_lines(serve, v0_server) -> None:
    """A server dripping short, valid v0 ref lines must not restart the stall clock with
    every line."""
    oid = b"1" * 40
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-advertisement\r\n"
        b"Content-Length: 100000000\r\n\r\n"
        + _pkt(b"# service=git-upload-pack\n")
        + b"0000"
        + _pkt(oid + b" HEAD\0side-band-64k\n")
    )
    server = serve("drip", head, filler=_pkt(oid + b" refs/heads/main\n"))
    url = v0_server(f"http://127.0.0.1:{server.port}/x.git")
    within_budget(lambda: hubcore.list(f"git+{url}@main"))


@pytest.mark.parametrize("mode", ["unanswered", "silent", "drip"])
def test_git_protocol(serve, mode: str) -> None:
    server = serve(mode, LONG_PKT)
    within_budget(lambda: hubcore.list(f"git://127.0.0.1:{server.port}/x.git"))


def test_git_over_ssh_drip(tmp_path: Path, monkeypatch) -> None:
    """An SSH client (``GIT_SSH_COMMAND``) whose server drips after logging in."""
    script = tmp_path / "dripping-ssh"
    script.write_text("#!/bin/sh\nprintf ffff\nwhile :; do printf x || exit 0; sleep 0.1; done\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("GIT_SSH_COMMAND", str(script))
    within_budget(lambda: hubcore.list("git+ssh://git@drip.invalid/x.git"))


# -- the response-header phase -----------------------------------------------------------------
#: What a server drips, one byte every DRIP_EVERY seconds, before its headers ever end: the
#: status line itself, or one endless header line (each byte well within the read timeout).
HEADER_DRIPS = {
    "status-line": (b"", b"H"),
    "header": (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-Drip: ", b"a"),
}


def names_the_header_stall(message: str, port: int) -> None:
    """The failure names the host, the transport and the limit that fired."""
    assert f"127.0.0.1:{port}" in message, message
    assert "HTTP" in message, message
    assert "headers" in message, message
    assert "HUBCORE_STALL_BUDGET" in message, message


@pytest.mark.parametrize("drip", sorted(HEADER_DRIPS))
def test_http_weights_dripped_headers(serve, drip: str) -> None:
    """Headers that never end count against the budget: no body byte arrives meanwhile."""
    server = serve("drip", *HEADER_DRIPS[drip])
    message = within_budget(lambda: hubcore.download(f"http://127.0.0.1:{server.port}/w.bin"))
    names_the_header_stall(message, server.port)


def test_https_weights_dripped_headers(serve, tmp_path: Path, monkeypatch) -> None:
    """Over TLS too: the watchdog ends the read under the TLS layer."""
    import shutil
    import ssl

    from .test_http_security import _make_certificate

    if shutil.which("openssl") is None:
        pytest.importorskip("cryptography")
    cert, key = _make_certificate(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = serve("drip", *HEADER_DRIPS["header"], tls=context)
    message = within_budget(lambda: hubcore.download(f"https://127.0.0.1:{server.port}/w.bin"))
    names_the_header_stall(message, server.port)
    assert "HTTPS server" in message, message


@pytest.mark.parametrize("drip", sorted(HEADER_DRIPS))
def test_http_get_dripped_headers(serve, drip: str) -> None:
    """A plain request (a git host's API, an archive's redirect) has a budget of its own."""
    from hubcore.store import http

    server = serve("drip", *HEADER_DRIPS[drip])
    message = within_budget(lambda: http.get(f"http://127.0.0.1:{server.port}/api", stream=True))
    names_the_header_stall(message, server.port)


def test_git_smart_http_dripped_headers(serve) -> None:
    server = serve("drip", *HEADER_DRIPS["header"])
    message = within_budget(lambda: hubcore.list(f"git+http://127.0.0.1:{server.port}/x.git@main"))
    assert f"127.0.0.1:{server.port}" in message, message
    assert "smart HTTP" in message, message


def test_dripped_headers_on_a_kept_alive_connection(serve) -> None:
    """The first answer comes at once and its connection is reused (keep-alive still works);
    the second answer's headers drip on that same connection and are cut at the budget."""
    import requests

    from hubcore.store import http

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve_one() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        accepted.append(conn)
        conn.settimeout(1)
        try:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            conn.recv(65536)  # the second request, on the same connection
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Drip: ")
            while not stop.wait(DRIP_EVERY):
                conn.sendall(b"a")
        except OSError:
            return

    threading.Thread(target=serve_one, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{port}/x"
        assert http.get(url).content == b"ok"

        def again() -> None:
            try:
                http.send(url)
            except requests.RequestException as exc:
                raise DownloadError(http.describe_failure(exc)) from None

        names_the_header_stall(within_budget(again), port)
        assert len(accepted) == 1  # one connection for both requests
    finally:
        stop.set()
        listener.close()
        for conn in accepted:
            conn.close()


def test_git_smart_http_v0_fetch_dripped_headers(serve, v0_server) -> None:
    """The v0 fetch bounds the header phase too."""
    server = serve("drip", *HEADER_DRIPS["header"])
    url = v0_server(f"http://127.0.0.1:{server.port}/x.git")
    message = within_budget(lambda: hubcore.list(f"git+{url}@{'1' * 40}"))
    assert f"127.0.0.1:{server.port}" in message, message
    assert "smart HTTP" in message, message


@pytest.mark.parametrize("status", [b"200 OK", b"404 Not Found"])
def test_git_host_ref_listing_with_a_dripped_body(serve, monkeypatch, status: bytes) -> None:
    """A GitHub/GitLab ref listing is read within the budget, whatever its status: the HTTP
    client reads every body (not only downloads) as a download is read."""
    monkeypatch.setenv("HUBCORE_ALLOW_HTTP", "127.0.0.1")
    server = serve("drip", b"HTTP/1.1 " + status + b"\r\nContent-Length: 100000\r\n\r\n")
    within_budget(lambda: hubcore.list(f"github:http://127.0.0.1:{server.port}/acme/models@main"))


def test_an_error_body_cannot_outlast_the_budget(serve) -> None:
    """The first line of a server's error body is a courtesy, read within the budget too:
    the refusal comes within it, without the line it never finished sending."""
    from hubcore.errors import HubError

    server = serve("drip", b"HTTP/1.1 404 Not Found\r\nContent-Length: 100000\r\n\r\n")
    finished = run_bounded(
        lambda: hubcore.list(f"git+http://127.0.0.1:{server.port}/x.git@main"),
        BUDGET + SLACK + 30,
        "the stall budget did not end it",
    )
    assert finished.seconds < BUDGET + SLACK, finished.seconds
    assert isinstance(finished.error, HubError), repr(finished.error)
    assert "404" in str(finished.error)
