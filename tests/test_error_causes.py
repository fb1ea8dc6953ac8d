"""Errors keep their cause (issue: "errors that keep their cause"): for every kind of failure a
user meets, through every transport, the one ``error:`` line ends in the root cause's own words,
whole, while a long URL is cut in its middle. One table over the failures."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from hubcore.cli import main

from .fileserver import FileServer
from .test_http_security import _make_certificate

LONG = "/".join(["deep"] * 60)
HOST_KEY_CHANGED = """\
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Someone could be eavesdropping on you right now (man-in-the-middle attack)!
It is also possible that a host key has just been changed.
The fingerprint for the ED25519 key sent by the remote host is
SHA256:0123456789abcdefghijklmnopqrstuvwxyzABCDEFG.
Please contact your system administrator.
Add correct host key in /home/user/.ssh/known_hosts to get rid of this message.
Offending ED25519 key in /home/user/.ssh/known_hosts:3
Host key for git.example.invalid has changed and you have requested strict checking.
Host key verification failed.
"""


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def refusing_server() -> Iterator[str]:
    """An HTTP server that refuses every request with 400 and a one-line reason."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html><body><h1>Bad request: the signature of this link has expired</h1>"
            self.send_response(400)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    script = tmp_path / "fake-ssh"
    (tmp_path / "said").write_text(HOST_KEY_CHANGED)
    script.write_text(f"#!/bin/sh\ncat '{tmp_path / 'said'}' >&2\nexit 255\n")
    script.chmod(0o755)
    monkeypatch.setenv("GIT_SSH_COMMAND", str(script))
    return f"git+ssh://git@git.example.invalid/{LONG}/x.git"


@contextlib.contextmanager
def _tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    cert, key = _make_certificate(tmp_path)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    server = FileServer(tmp_path / "untrusted", tls=(cert, key)).start()
    try:
        yield server.add(f"{LONG}/hub.zip", b"never reached")
    finally:
        server.stop()


# (failure, how to make the reference, words of the cause that must be on the line, whole)
CASES: list[tuple[str, Callable[..., str], tuple[str, ...]]] = [
    (
        "archive, unknown host",
        lambda **_: f"https://no-such-host.invalid/{LONG}/hub.zip",
        ("not known", "name resolution"),
    ),
    (
        "archive, nothing listening",
        lambda port, **_: f"http://127.0.0.1:{port}/{LONG}/hub.zip",
        ("connection refused",),
    ),
    (
        "archive, refused with a reason",
        lambda refusing, **_: f"{refusing}/{LONG}/hub.zip",
        ("HTTP 400", "the signature of this link has expired"),
    ),
    (
        "smart HTTP, nothing listening",
        lambda port, **_: f"git+http://127.0.0.1:{port}/{LONG}/x.git",
        ("Connection refused",),
    ),
    (
        "git://, nothing listening",
        lambda port, **_: f"git://127.0.0.1:{port}/{LONG}/x.git",
        ("Connection refused",),
    ),
    (
        "smart HTTP, unknown host",
        lambda **_: f"git+http://user:s3cret@no-such-host.invalid/{LONG}/x.git",
        ("not known", "name resolution"),
    ),
    (
        "SSH, host key changed",
        lambda ssh, **_: ssh,
        ("IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY", "Host key verification failed."),
    ),
    (
        "HTTPS, untrusted certificate",
        lambda tls, **_: tls,
        ("certificate verify failed",),
    ),
]


@pytest.mark.parametrize(("failure", "reference", "cause"), CASES, ids=[c[0] for c in CASES])
def test_the_cause_is_on_the_line(
    hub_home, tmp_path, monkeypatch, closed_port, refusing_server, failure, reference, cause
) -> None:
    monkeypatch.setenv("HUBCORE_CONNECT_TIMEOUT", "5")
    monkeypatch.setenv("HUBCORE_RETRIES", "1")
    quiet = contextlib.nullcontext("")
    with _tls(tmp_path, monkeypatch) if "certificate" in failure else quiet as tls:
        ref = reference(
            port=closed_port,
            refusing=refusing_server,
            ssh=_ssh(tmp_path, monkeypatch) if "SSH" in failure else "",
            tls=tls,
        )
        result = CliRunner().invoke(main, ["list", ref])
    line = result.output.strip()
    assert result.exit_code != 0, line
    assert line.startswith("error: "), line
    assert "\n" not in line, line
    assert "Traceback" not in line
    assert "s3cret" not in line
    wanted = [c for c in cause if c.lower() in line.lower()]
    if failure.endswith("unknown host"):  # the resolver's words depend on the machine's network
        assert wanted, line
    else:
        assert wanted == list(cause), line
    assert "..." in line  # the URL, cut in its middle; the cause whole after it
    assert line.index("...") < min(line.lower().index(c.lower()) for c in wanted)
