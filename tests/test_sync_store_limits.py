"""Synchronous fsspec filesystems (ftp through ftplib, sftp through paramiko) get hubcore's
connect and read timeouts and its stall budget, as asynchronous stores do.

The stall budget is :data:`~tests.test_stall_budgets.BUDGET` seconds and the connect and read
timeouts a minute (``only_the_budget``), so that only the budget can end these calls in time:
against a server that never lets a connection in, one that accepts and never answers, one that
logs in and then stalls a listing or a file, and one that drips a byte every 0.1 s (which no
read timeout trips), each path a user takes (``hubcore.list`` of an ``ftp://`` folder,
``hubcore.download`` of an ``ftp://`` file) must fail within the budget and a little slack,
naming the host, the transport and the budget. An answering server still works, a slow but
moving copy goes on past the budget, and files of a folder copied at once share the one FTP
conversation safely. Every call runs on a helper thread that the test waits for a bounded
time, so a hang fails the test instead of holding the session.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import hubcore
from hubcore.errors import DownloadError
from hubcore.store import stores
from tests.deadline import run_bounded
from tests.test_stall_budgets import (  # noqa: F401  (fixtures: the budget alone; TCP servers)
    BUDGET,
    DRIP_EVERY,
    SLACK,
    only_the_budget,
    serve,
    within_budget,
)

#: Seconds an answering server's call may take before the test calls it a hang.
BOUND = 60.0
#: A hubconf with one entrypoint, read statically by ``hubcore.list``.
HUBCONF = b'dependencies = []\n\n\ndef tiny(pretrained=False):\n    """A tiny model."""\n'


class FtpServer:
    """A loopback FTP server over *files* (``{"/hub/hubconf.py": b"..."}``), passive mode only,
    with what fsspec's FTPFileSystem uses (USER/PASS, TYPE, PASV, MLSD, REST, RETR, ABOR).

    *stall* is where it stops: ``"banner"`` (nothing after accepting, or with *drip* a
    banner line that never ends), or a command (``"MLSD"``, ``"RETR"``): no answer to it, or
    with *drip* its data connection sends one byte every :data:`DRIP_EVERY` seconds. *rate*
    throttles file data to that many bytes per second.
    """

    def __init__(
        self,
        files: dict[str, bytes],
        stall: str | None = None,
        drip: bool = False,
        rate: float | None = None,
    ) -> None:
        self.files, self.stall, self.drip, self.rate = files, stall, drip, rate
        self.stopped = threading.Event()
        self.held: list[socket.socket] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str) -> str:
        return f"ftp://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.stopped.set()
        self.sock.close()
        for conn in self.held:
            conn.close()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.held.append(conn)
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(None)
            # ftplib sends ABOR's last byte as urgent data: keep it in the stream
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
            if self.stall == "banner":
                if self.drip:
                    self._drip(conn, b"220 ")
                self.stopped.wait()
                return
            self._converse(conn)
        except (OSError, ValueError):  # the client went, or stop() closed the connection
            return

    def _converse(self, conn: socket.socket) -> None:
        def reply(text: str) -> None:
            conn.sendall(text.encode() + b"\r\n")

        reply("220 hubcore test server")
        listener: socket.socket | None = None
        rest, last = 0, "226"
        for raw in conn.makefile("rb"):
            verb, _, arg = raw.decode().strip().partition(" ")
            verb = verb.upper()
            if verb == self.stall:
                if self.drip and listener is not None:
                    reply("150 here it comes")
                    data, _ = listener.accept()
                    self.held.append(data)
                    self._drip(data, b"")
                self.stopped.wait()
                return
            if verb == "USER":
                reply("331 password please")
            elif verb == "PASS":
                reply("230 logged in")
            elif verb in ("TYPE", "NOOP"):
                reply("200 ok")
            elif verb == "PASV":
                listener = socket.socket()
                listener.bind(("127.0.0.1", 0))
                listener.listen(1)
                listener.settimeout(10)
                self.held.append(listener)
                port = listener.getsockname()[1]
                reply(f"227 Entering Passive Mode (127,0,0,1,{port >> 8},{port & 255})")
            elif verb == "REST":
                rest = int(arg)
                reply("350 restarting")
            elif verb == "ABOR":  # one line: the transfer's own answer was sent already
                reply("226 aborted" if last == "426" else "225 no transfer to abort")
            elif verb == "QUIT":
                reply("221 bye")
                return
            elif verb in ("MLSD", "RETR") and listener is not None:
                body = self._mlsd(arg) if verb == "MLSD" else self.files.get(arg)
                if body is None:
                    reply("550 no such file or folder")
                    continue
                reply("150 here it comes")
                data, _ = listener.accept()
                listener.close()
                listener = None
                last = self._send(data, body[rest:] if verb == "RETR" else body)
                rest = 0
                reply("226 done" if last == "226" else "426 transfer aborted")
            else:
                reply("502 not implemented")

    def _mlsd(self, folder: str) -> bytes | None:
        """MLSD lines of what is directly in *folder*, or ``None`` if it is not one."""
        prefix = folder.rstrip("/") + "/"
        entries: dict[str, str] = {}
        for path, body in self.files.items():
            if path.startswith(prefix):
                name, _, below = path[len(prefix) :].partition("/")
                entries[name] = "type=dir;" if below else f"type=file;size={len(body)};"
        if not entries:
            return None
        return b"".join(f"{facts} {name}\r\n".encode() for name, facts in entries.items())

    def _send(self, data: socket.socket, body: bytes) -> str:
        """Send *body* on the data connection and close it: "226", or "426" if the client
        went first."""
        piece = 1 << 16
        try:
            for start in range(0, len(body), piece):
                data.sendall(body[start : start + piece])
                if self.rate:
                    time.sleep(piece / self.rate)
        except OSError:
            return "426"
        finally:
            data.close()
        return "226"

    def _drip(self, conn: socket.socket, head: bytes) -> None:
        conn.sendall(head)
        while not self.stopped.wait(DRIP_EVERY):
            conn.sendall(b"x")


@pytest.fixture
def ftp() -> Iterator[Callable[..., FtpServer]]:
    started: list[FtpServer] = []

    def start(
        files: dict[str, bytes],
        stall: str | None = None,
        drip: bool = False,
        rate: float | None = None,
    ) -> FtpServer:
        server = FtpServer(files, stall, drip, rate)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def hub(**more: bytes) -> dict[str, bytes]:
    """A repository folder ``/hub`` with a hubconf, and a weights file ``/w.bin``."""
    files = {"/hub/hubconf.py": HUBCONF, "/w.bin": b"weights" * 100}
    files.update({f"/hub/{name}": body for name, body in more.items()})
    return files


def names_the_store(message: str, port: int) -> None:
    """The failure names the host and the transport (the limit: see ``within_budget``)."""
    assert f"127.0.0.1:{port}" in message, message
    assert "ftp (fsspec)" in message, message


def store_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "hubcore-store" and t.is_alive()}


# -- an answering server -----------------------------------------------------------------------
def test_ftp_folder_lists_and_copies(ftp) -> None:
    server = ftp(hub(**{"sub/data.txt": b"data"}))
    finished = run_bounded(lambda: hubcore.open_repo(server.url("/hub")), BOUND)
    assert finished.error is None, repr(finished.error)
    root = finished.value.root
    assert (root / "hubconf.py").read_bytes() == HUBCONF
    assert (root / "sub" / "data.txt").read_bytes() == b"data"
    names = run_bounded(lambda: hubcore.list(server.url("/hub")), BOUND)
    assert names.error is None, repr(names.error)
    assert names.value == ["tiny"]


def test_ftp_folder_of_many_files_copied_at_once(ftp) -> None:
    """The folder source copies files concurrently through one filesystem: its operations
    take turns on the one FTP conversation instead of interleaving on it."""
    files = {f"f{i}.bin": bytes([i]) * (50_000 + i) for i in range(12)}
    server = ftp(hub(**files))
    finished = run_bounded(lambda: hubcore.open_repo(server.url("/hub")), BOUND)
    assert finished.error is None, repr(finished.error)
    for name, body in files.items():
        assert (finished.value.root / name).read_bytes() == body


def test_ftp_weights_download(ftp, tmp_path: Path) -> None:
    """Weights larger than one range: fsspec reads each range with REST and ABOR."""
    body = bytes(range(256)) * ((stores.RANGE + 300_000) // 256)
    server = ftp({"/w.bin": body})
    finished = run_bounded(lambda: hubcore.download(server.url("/w.bin")), BOUND)
    assert finished.error is None, repr(finished.error)
    assert Path(finished.value).read_bytes() == body


def test_ftp_slow_but_moving_copy_goes_on(ftp) -> None:
    """Each range arrives well within the budget; the whole copy takes longer than it."""
    body = b"m" * (5 * stores.RANGE)
    server = ftp({"/w.bin": body}, rate=8 << 20)
    finished = run_bounded(lambda: hubcore.download(server.url("/w.bin")), BOUND)
    assert finished.error is None, repr(finished.error)
    assert finished.seconds > BUDGET, "not slow enough to tell"
    assert Path(finished.value).stat().st_size == len(body)


def test_ftp_timeouts_are_hubcore_s(ftp, monkeypatch) -> None:
    """The connect timeout while connecting and logging in, the read timeout after."""
    monkeypatch.setenv("HUBCORE_CONNECT_TIMEOUT", "7")
    monkeypatch.setenv("HUBCORE_READ_TIMEOUT", "11")
    assert stores.timed_options("ftp", {})["timeout"] == 7
    assert stores.timed_options("ftp", {"timeout": 99})["timeout"] == 99  # the caller's wins
    server = ftp(hub())
    finished = run_bounded(lambda: stores.open_store(server.url("/hub")), BOUND)
    assert finished.error is None, repr(finished.error)
    store = finished.value
    assert store.transport == "ftp (fsspec)"
    assert store.fs.ftp.sock.gettimeout() == 11
    given = run_bounded(lambda: stores.open_store(server.url("/hub"), {"timeout": 5}), BOUND)
    assert given.value.fs.ftp.sock.gettimeout() == 5


def test_sftp_timeouts_are_hubcore_s(monkeypatch) -> None:
    pytest.importorskip("paramiko")
    monkeypatch.setenv("HUBCORE_CONNECT_TIMEOUT", "7")
    monkeypatch.setenv("HUBCORE_READ_TIMEOUT", "11")
    options = stores.timed_options("sftp", {"auth_timeout": 99})
    assert options["timeout"] == 7
    assert options["banner_timeout"] == 11
    assert options["auth_timeout"] == 99  # the caller's wins


def test_local_filesystems_run_on_the_callers_thread(tmp_path: Path, monkeypatch) -> None:
    """Local files and memory pay nothing: no helper thread, no lock."""

    def no_thread(*args: object, **kwargs: object) -> None:
        raise AssertionError("a local filesystem went through a helper thread")

    monkeypatch.setattr(stores, "_in_time", no_thread)
    (tmp_path / "a.txt").write_bytes(b"local")
    for url in (str(tmp_path), tmp_path.as_uri(), "memory://hubcore-sync-test"):
        store = stores.open_store(url)
        store.fs.pipe_file(f"{store.path}/b.txt", b"bytes")
        assert stores.call(store, "cat_file", f"{store.path}/b.txt", what="reading") == b"bytes"
        got: list[bytes] = []
        assert stores.copy(store, f"{store.path}/b.txt", 5, got.append, "copying") == 5
        assert got == [b"bytes"]


# -- servers that stall ------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["unanswered", "silent"])
def test_ftp_connect_within_budget(serve, mode: str) -> None:  # noqa: F811
    """fsspec's FTP filesystem connects when it is created: never let in, or never a banner."""
    server = serve(mode)
    message = within_budget(lambda: hubcore.list(f"ftp://127.0.0.1:{server.port}/hub"))
    names_the_store(message, server.port)


def test_ftp_dripped_banner_within_budget(ftp) -> None:
    """A banner line that never ends, one byte every 0.1 s."""
    server = ftp(hub(), stall="banner", drip=True)
    message = within_budget(lambda: hubcore.list(server.url("/hub")))
    names_the_store(message, server.port)


@pytest.mark.parametrize("drip", [False, True], ids=["silent", "drip"])
@pytest.mark.parametrize("stall", ["MLSD", "RETR"])
def test_ftp_folder_within_budget(ftp, stall: str, drip: bool) -> None:
    """Logs in, then the listing (MLSD) or a file (RETR) gets no answer or a drip; the
    connection is closed so the abandoned thread ends too."""
    server = ftp(hub(), stall=stall, drip=drip)
    before = store_threads()
    message = within_budget(lambda: hubcore.list(server.url("/hub")))
    names_the_store(message, server.port)
    assert ("copying" if stall == "RETR" else "listing") in message, message
    deadline = time.monotonic() + SLACK
    while store_threads() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not store_threads() - before, "the stalled call's thread still runs"


@pytest.mark.parametrize("drip", [False, True], ids=["silent", "drip"])
def test_ftp_weights_within_budget(ftp, drip: bool) -> None:
    server = ftp(hub(), stall="RETR", drip=drip)
    message = within_budget(lambda: hubcore.download(server.url("/w.bin")))
    names_the_store(message, server.port)


def test_a_stalled_store_is_given_up(ftp) -> None:
    """After a stall, the filesystem's connection is closed and it is not asked again."""
    server = ftp(hub(), stall="MLSD")
    store = run_bounded(lambda: stores.open_store(server.url("/hub")), BOUND).value
    within_budget(lambda: stores.call(store, "find", store.path, what="listing /hub"))
    again = run_bounded(lambda: stores.call(store, "ls", "/", what="listing /"), 1.0)
    assert isinstance(again.error, DownloadError), repr(again.error)
    assert str(again.error).startswith("listing / failed: not tried"), str(again.error)
    assert "HUBCORE_STALL_BUDGET" in str(again.error)


# -- the library's own timeouts, named ---------------------------------------------------------
def test_ftp_connect_timeout_is_named(serve, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setenv("HUBCORE_CONNECT_TIMEOUT", "1")
    monkeypatch.setenv("HUBCORE_STALL_BUDGET", "60")
    server = serve("silent")
    finished = run_bounded(lambda: hubcore.list(f"ftp://127.0.0.1:{server.port}/hub"), 30)
    assert isinstance(finished.error, DownloadError), repr(finished.error)
    assert "HUBCORE_CONNECT_TIMEOUT=1 s" in str(finished.error), str(finished.error)
    names_the_store(str(finished.error), server.port)


def test_ftp_read_timeout_is_named(ftp, monkeypatch) -> None:
    monkeypatch.setenv("HUBCORE_READ_TIMEOUT", "1")
    monkeypatch.setenv("HUBCORE_STALL_BUDGET", "60")
    server = ftp(hub(), stall="MLSD")
    finished = run_bounded(lambda: hubcore.list(server.url("/hub")), 30)
    assert isinstance(finished.error, DownloadError), repr(finished.error)
    assert "HUBCORE_READ_TIMEOUT=1 s" in str(finished.error), str(finished.error)
    names_the_store(str(finished.error), server.port)


# -- sftp (paramiko) ---------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["unanswered", "silent"])
def test_sftp_connect_within_budget(serve, mode: str) -> None:  # noqa: F811
    pytest.importorskip("paramiko")
    server = serve(mode)
    message = within_budget(lambda: hubcore.list(f"sftp://127.0.0.1:{server.port}/hub"))
    assert f"127.0.0.1:{server.port}" in message, message
    assert "sftp (fsspec)" in message, message


def test_sftp_dripped_banner_within_budget(ftp) -> None:
    """An SSH banner line that never ends (the FTP server's banner drip serves as one)."""
    pytest.importorskip("paramiko")
    server = ftp({}, stall="banner", drip=True)
    message = within_budget(lambda: hubcore.list(f"sftp://127.0.0.1:{server.port}/hub"))
    assert "sftp (fsspec)" in message, message
