"""Git transports never wait forever, list refs once and small, honour GIT_SSH_COMMAND, and
keep the cause of a failure.

Servers: silent loopback TCP listeners (accept, never answer) for git://, smart HTTP and SSH;
a smart-HTTP server (the real ``git http-backend``) that answers the ref listing and then
stalls the fetch, in protocol v2 and as a v0-only server; a counting one for requests and bytes.
Every call that could hang runs in a thread with a deadline, so a hang fails the test.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

import hubcore
from hubcore.errors import DownloadError, HubError, RefNotFoundError

from .deadline import run_bounded
from .gitserver import BareRepo, GitHostServer, git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")

HUBCONF = "def which():\n    '''The version.'''\n    return 'one'\n"
DEADLINE = 30.0  # seconds any single call may take here; limits are set to 1 s


def bounded(call: Callable[[], Any], seconds: float = DEADLINE) -> BaseException | Any:
    """Run *call* in a thread: what it raised, else what it returned; fails the test if it is
    still running after *seconds*."""
    finished = run_bounded(call, seconds)
    return finished.error if finished.error is not None else finished.value


@pytest.fixture
def short_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBCORE_CONNECT_TIMEOUT", "1")
    monkeypatch.setenv("HUBCORE_READ_TIMEOUT", "1")
    monkeypatch.setenv("HUBCORE_STALL_BUDGET", "1")
    monkeypatch.delenv("GIT_SSH_COMMAND", raising=False)
    monkeypatch.delenv("GIT_SSH", raising=False)
    monkeypatch.delenv("GIT_SSH_VARIANT", raising=False)


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never says a word."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)  # so that stop() ends the accepting thread before closing
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.held.append(conn)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.stop()


class GitServer(GitHostServer):
    """``git http-backend`` that records every request's body and the bytes it sent back,
    and can stall fetches or pretend to speak only protocol v0."""

    def __init__(self, root: Path):
        super().__init__(root)
        self.bodies: list[bytes] = []
        self.sent: list[int] = []
        self.stall = False
        self.v0_only = False
        self.fetch_reply: bytes | None = None  # a canned answer to every fetch
        self.release = threading.Event()

    def _git_backend(self, h: BaseHTTPRequestHandler, path: str, query: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        self.bodies.append(body)
        if self.v0_only:
            del h.headers["Git-Protocol"]
        if self.stall and (b"command=fetch" in body or b"want " in body):
            self.release.wait(DEADLINE)  # answer nothing until the test is over
            h.close_connection = True
            return
        if self.fetch_reply is not None and b"want " in body:
            h.send_response(200)
            h.send_header("Content-Type", "application/x-git-upload-pack-result")
            h.send_header("Content-Length", str(len(self.fetch_reply)))
            h.end_headers()
            h.wfile.write(self.fetch_reply)
            return
        rfile, wfile = h.rfile, h.wfile
        counter = _Counter(wfile)
        h.rfile, h.wfile = io.BytesIO(body), counter  # type: ignore[assignment]
        try:
            super()._git_backend(h, path, query)
        finally:  # the connection may carry another request
            h.rfile, h.wfile = rfile, wfile
        self.sent.append(counter.count)

    def stop(self) -> None:
        self.release.set()
        super().stop()


class _Counter:
    def __init__(self, stream: Any):
        self.stream = stream
        self.count = 0

    def write(self, data: bytes) -> int:
        self.count += len(data)
        return int(self.stream.write(data) or len(data))

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@pytest.fixture
def repos(tmp_path: Path) -> Path:
    return tmp_path / "srv" / "repos"


@pytest.fixture
def server(repos: Path) -> Iterator[GitServer]:
    repos.mkdir(parents=True, exist_ok=True)
    srv = GitServer(repos).start()
    yield srv
    srv.stop()


@pytest.fixture
def models(repos: Path) -> BareRepo:
    repo = BareRepo(repos, "lab/models")
    repo.commit({"hubconf.py": HUBCONF}, "one")
    return repo


def _timeout_error(outcome: object, transport: str, host: str, seconds: int = 1) -> str:
    assert isinstance(outcome, DownloadError), repr(outcome)
    message = str(outcome)
    assert transport in message
    assert host in message
    assert f"within {seconds} s" in message
    assert "HUBCORE_" in message
    return message


# -- item 2: no transport waits forever ------------------------------------------------------
def test_git_protocol_server_that_never_answers(hub_home, short_limits, silent) -> None:
    outcome = bounded(lambda: hubcore.list(f"git://127.0.0.1:{silent.port}/x.git"))
    _timeout_error(outcome, "git://", f"127.0.0.1:{silent.port}")


def test_smart_http_server_that_never_answers(hub_home, short_limits, silent) -> None:
    outcome = bounded(lambda: hubcore.list(f"git+http://127.0.0.1:{silent.port}/x.git@main"))
    _timeout_error(outcome, "smart HTTP", f"127.0.0.1:{silent.port}")


@pytest.mark.parametrize("v0_only", [False, True], ids=["v2", "v0"])
def test_smart_http_server_that_stalls_the_fetch(
    hub_home, short_limits, server, models, v0_only
) -> None:
    server.stall = True
    server.v0_only = v0_only
    port = server.url.rpartition(":")[2]
    outcome = bounded(lambda: hubcore.load(f"git+{server.url}/lab/models.git@main", "which"))
    _timeout_error(outcome, "smart HTTP", f"127.0.0.1:{port}")
    assert any(b"command=fetch" in b or b"want " in b for b in server.bodies)  # it got that far


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the ssh client")
def test_ssh_server_that_never_answers(hub_home, short_limits, silent) -> None:
    outcome = bounded(lambda: hubcore.list(f"git+ssh://git@127.0.0.1:{silent.port}/x.git"))
    assert isinstance(outcome, DownloadError), repr(outcome)
    # OpenSSH's ConnectTimeout fires first and says so in its own words
    assert "timed out" in str(outcome).lower()
    assert "127.0.0.1" in str(outcome)


def _script(folder: Path, body: str) -> Path:
    path = folder / "fake-ssh"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_ssh_client_that_stays_silent_is_killed(
    hub_home, short_limits, tmp_path, monkeypatch
) -> None:
    pid_file = tmp_path / "pid"
    script = _script(tmp_path, f'echo $$ > "{pid_file}"\nexec sleep {DEADLINE * 2:g}\n')
    monkeypatch.setenv("GIT_SSH_COMMAND", str(script))
    outcome = bounded(lambda: hubcore.list("git+ssh://git@silent.invalid/x.git"))
    message = _timeout_error(outcome, "SSH", "silent.invalid", seconds=2)
    assert "HUBCORE_CONNECT_TIMEOUT + read timeout HUBCORE_READ_TIMEOUT" in message
    pid = Path(f"/proc/{pid_file.read_text().strip()}/stat")
    deadline = time.monotonic() + 5
    while pid.exists() and b") Z" not in pid.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid.exists() or b") Z" in pid.read_bytes()  # killed (maybe not yet reaped)


def test_ssh_client_that_takes_no_input_is_killed(hub_home, short_limits) -> None:
    """A request larger than the pipe (thousands of tips to search for a short sha) to an SSH
    client that stopped reading is cut off by the read limits, and the client killed."""
    from hubcore.sources.gitproto import TransportTimeout, _TimedProcess, limits

    proc = subprocess.Popen(
        ["sleep", "60"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    timed = _TimedProcess(proc, "127.0.0.1:22", limits())
    outcome = bounded(lambda: timed.write(b"0032want " + b"1" * 40 + b"\n" * 100_000))
    assert isinstance(outcome, TransportTimeout), repr(outcome)
    assert "took no input within 1 s" in str(outcome)
    assert proc.poll() is not None  # killed


# -- item 5: GIT_SSH_COMMAND and core.sshCommand -----------------------------------------------
@pytest.mark.parametrize("where", ["GIT_SSH_COMMAND", "core.sshCommand", "GIT_CONFIG_COUNT"])
def test_ssh_command_of_git_is_used(hub_home, short_limits, tmp_path, monkeypatch, where) -> None:
    record = tmp_path / "called"
    script = _script(
        tmp_path, f'echo "$@" > "{record}"\necho "fake-ssh: no way to that host" >&2\nexit 1\n'
    )
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    if where == "GIT_SSH_COMMAND":
        monkeypatch.setenv("GIT_SSH_COMMAND", f"{script} -o Quoted='a b'")
    elif where == "GIT_CONFIG_COUNT":  # `git -c`-style settings in the environment win
        (tmp_path / ".gitconfig").write_text("[core]\n\tsshCommand = /nonexistent/ssh\n")
        monkeypatch.setenv("GIT_CONFIG_COUNT", "2")
        monkeypatch.setenv("GIT_CONFIG_KEY_0", "user.name")
        monkeypatch.setenv("GIT_CONFIG_VALUE_0", "someone")
        monkeypatch.setenv("GIT_CONFIG_KEY_1", "core.sshCommand")
        monkeypatch.setenv("GIT_CONFIG_VALUE_1", str(script))
    else:
        (tmp_path / ".gitconfig").write_text(f"[core]\n\tsshCommand = {script}\n")
    outcome = bounded(lambda: hubcore.list("git+ssh://git@example.invalid/lab/x.git@main"))
    assert isinstance(outcome, DownloadError), repr(outcome)
    assert "fake-ssh: no way to that host" in str(outcome)  # the cause, in its own words
    called = record.read_text()
    assert "git@example.invalid" in called
    assert "git-upload-pack '/lab/x.git'" in called
    if where == "GIT_SSH_COMMAND":
        assert called.startswith("-o Quoted=a b ")  # run by the shell, as git does


def test_hostile_ssh_stderr_is_shown_bounded_and_inert(
    hub_home, short_limits, tmp_path, monkeypatch
) -> None:
    """What the far side writes to stderr reaches the error line without terminal escapes or
    control characters, bounded, after the label of the repository it concerns."""
    script = _script(
        tmp_path,
        "printf '\\033[2J\\033]0;owned\\007\\033[31mPermission denied\\r\\n' >&2\n"
        "head -c 200000 /dev/zero | tr '\\0' 'A' >&2\nexit 255\n",
    )
    monkeypatch.setenv("GIT_SSH_COMMAND", str(script))
    outcome = bounded(lambda: hubcore.list("git+ssh://git@example.invalid/lab/x.git@main"))
    assert isinstance(outcome, DownloadError), repr(outcome)
    message = str(outcome)
    assert message.startswith("fetching ssh://example.invalid/lab/x.git@main failed: ")
    assert "Permission denied" in message
    assert "owned" not in message  # a window title is not text
    assert not any(not c.isprintable() for c in message), repr(message[:200])
    assert len(message) < 2300
    assert "more characters)" in message


@pytest.mark.parametrize(
    ("said", "shown"),
    [
        (b"\x1b[31mrepository \x1b[1mgone\x1b[0m\n", "repository gone"),
        (b"a\x00b\x07c\r\nnext line", "abc; next line"),
        (b"\x1b]8;;http://evil.example/\x1b\\link\x1b]8;;\x1b\\", "link"),
        (b"token=abc123 denied", "token=<hidden> denied"),
        (b"\xff\xfe bad utf-8", "\ufffd\ufffd bad utf-8"),
    ],
)
def test_remote_text_is_made_safe_to_show(said: bytes, shown: str) -> None:
    from hubcore.store.http import remote_text

    assert remote_text(said) == shown
    flood = remote_text(b"x" * 5000, limit=100)
    assert flood == "x" * 100 + "... (4900 more characters)"


@pytest.mark.parametrize("version", ["v2", "v0"])
def test_ssh_lists_and_fetches_on_one_connection(
    hub_home, short_limits, models, tmp_path, monkeypatch, version
) -> None:
    """Over SSH (and git://, the same client) a branch is picked from the refs the
    connection lists and fetched on that connection: a v0 server sends its whole ref
    advertisement on every connection, so a second one for the fetch would send it again. A
    cached commit needs no pack at all."""
    calls = tmp_path / "calls"
    protocol = "" if version == "v2" else "unset GIT_PROTOCOL\n"
    script = _script(
        tmp_path, f'echo x >> "{calls}"\n{protocol}for last; do :; done\nexec sh -c "$last"\n'
    )
    monkeypatch.setenv("GIT_SSH_COMMAND", str(script))
    ref = f"ssh://git@fake.invalid{models.bare}@main"
    assert hubcore.load(ref, "which") == "one"
    assert calls.read_text().count("x") == 1  # cold: one connection
    models.commit({"hubconf.py": HUBCONF.replace("'one'", "'two'")}, "two")
    assert hubcore.load(ref, "which") == "two"
    assert calls.read_text().count("x") == 2  # a new commit: one connection again
    assert hubcore.load(ref, "which") == "two"
    assert calls.read_text().count("x") == 3  # cached: the listing only
    models.tag("ann")  # annotated: its commit is listed peeled (v0) or peeled after the fetch
    models.tag("light", annotated=False)
    for n, tag in enumerate(("ann", "light", "ann"), start=4):
        assert hubcore.load(ref.replace("@main", f"@{tag}"), "which") == "two"
        assert calls.read_text().count("x") == n, tag  # one connection each
    with pytest.raises(RefNotFoundError, match="no branch or tag 'nosuch'"):
        hubcore.list(ref.replace("@main", "@nosuch"))


@pytest.mark.parametrize(
    "pack", [b"PACKgarbage", b"PACK\x00\x00\x00\x02\x00\x00\x00\x01\x95\x0anotzlib"]
)
def test_an_unreadable_pack_over_git_protocol_is_a_hub_error(hub_home, short_limits, pack) -> None:
    """A git:// server (dulwich's client) sending a pack that cannot be read: a hub error
    naming it, not an internal one."""
    sha = b"a" * 40
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                caps = b"side-band-64k shallow ofs-delta symref=HEAD:refs/heads/main"
                conn.sendall(
                    _pkt(sha + b" HEAD\0" + caps + b"\n")
                    + _pkt(sha + b" refs/heads/main\n")
                    + b"0000"
                )
                conn.recv(65536)
                reply = _pkt(b"shallow " + sha + b"\n") + b"0000" + _pkt(b"NAK\n")
                conn.sendall(reply + _pkt(b"\x01" + pack) + b"0000")
                time.sleep(0.5)

    threading.Thread(target=serve, daemon=True).start()
    try:
        port = listener.getsockname()[1]
        outcome = bounded(lambda: hubcore.list(f"git://127.0.0.1:{port}/x.git"))
    finally:
        listener.close()
    assert isinstance(outcome, DownloadError), repr(outcome)
    assert "a pack that cannot be read" in str(outcome)


# -- item 3: one ref listing, and a small one --------------------------------------------------
@pytest.fixture
def many_refs(models: BareRepo) -> tuple[BareRepo, str]:
    """3,000 refs, most of them refs/pull/*, at a commit no branch or tag holds."""
    models.tag("v1")
    side = models.commit({"hubconf.py": HUBCONF + "# pr\n"}, "pr", branch="pr-base")
    git("push", "-q", "origin", ":pr-base", cwd=models.work)
    git("checkout", "-q", "main", cwd=models.work)  # the pull request stays off main
    main = models.commit({"hubconf.py": HUBCONF + "# main\n"}, "main", branch="main")
    lines = "".join(f"create refs/pull/{n}/head {side}\n" for n in range(3000))
    subprocess.run(
        ["git", "update-ref", "--stdin"], input=lines, text=True, cwd=models.bare, check=True
    )
    return models, main


def _clone_bytes(server: GitServer, url: str, dest: Path) -> tuple[int, int]:
    server.sent.clear()
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", "--no-checkout", url, str(dest)],
        check=True,
        capture_output=True,
    )
    return len(server.sent), sum(server.sent)


def test_cold_fetch_lists_refs_once_and_small(hub_home, server, many_refs, tmp_path) -> None:
    _, main = many_refs
    url = f"{server.url}/lab/models.git"
    clone_requests, clone_bytes = _clone_bytes(server, url, tmp_path / "clone")
    server.sent.clear()
    server.bodies.clear()
    snapshot = hubcore.open_repo(f"git+{url}@main")
    assert snapshot.snapshot_id == main
    assert len(server.sent) == 2  # one ls-refs, one fetch
    assert server.sent[0] < 2000  # the listing names main, not 3,000 pull requests
    assert sum(server.sent) <= 1.05 * clone_bytes
    assert len(server.sent) <= clone_requests
    assert not any(b"refs/pull" in body for body in server.bodies)
    server.sent.clear()
    hubcore.open_repo(f"git+{url}@main")  # warm: one small listing
    assert len(server.sent) == 1
    assert server.sent[0] < 2000


def test_v0_server_lists_refs_once(hub_home, server, many_refs, tmp_path) -> None:
    """A server without protocol v2 is listed once (its advertisement is handed to the fetch,
    as git clone does), and the fetch asks only for what that advertisement offered."""
    from hubcore.sources.gitproto import SmartHTTP

    _, main = many_refs
    server.v0_only = True
    url = f"{server.url}/lab/models.git"
    clone_requests, clone_bytes = _clone_bytes(server, url, tmp_path / "clone")
    server.sent.clear()
    server.bodies.clear()
    try:
        snapshot = hubcore.open_repo(f"git+{url}@main")
        assert snapshot.snapshot_id == main
        # a v2 ls-refs (answered in v0), the advertisement, one v0 fetch
        assert len(server.sent) == 3, server.bodies
        assert b"command=ls-refs" in server.bodies[0]
        fetch = server.bodies[2]
        first = fetch[4:].split(b"\n", 1)[0].split(b" ")
        assert first[:2] == [b"want", main.encode()]
        assert b"side-band-64k" in first
        assert b"shallow" in first
        assert b"deepen 1" in fetch
        assert sum(server.sent) <= 1.05 * clone_bytes
        server.sent.clear()
        server.bodies.clear()
        assert hubcore.open_repo(f"git+{url}@main", force_reload=True).snapshot_id == main
        # known to be v0 now: no v2 attempt; the listing and the fetch, as git clone
        assert len(server.sent) == 2 <= clone_requests
    finally:
        SmartHTTP._v0_servers.pop(url, None)


def _pkt(data: bytes) -> bytes:
    return b"%04x" % (len(data) + 4) + data


@pytest.mark.parametrize(
    ("reply", "said"),
    [
        (_pkt(b"NAK\n") + b"0004" + b"0000", "was not found"),  # an empty packet, no pack
        (_pkt(b"NAK\n") + _pkt(b"\x01PACKgarbage") + b"0000", "a pack that cannot be read"),
        (_pkt(b"NAK\n") + _pkt(b"\x03\x1b[2Jgo away\x1b]0;t\x07") + b"0000", "said: go away"),
    ],
    ids=["empty-packet", "junk-pack", "band-3"],
)
def test_hostile_v0_fetch_replies_are_hub_errors(
    hub_home, short_limits, server, models, reply, said
) -> None:
    server.v0_only = True
    server.fetch_reply = reply
    outcome = bounded(lambda: hubcore.list(f"git+{server.url}/lab/models.git@main"))
    assert isinstance(outcome, HubError), repr(outcome)
    assert said in str(outcome)
    assert "\x1b" not in str(outcome)


def test_short_sha_never_asks_for_pull_requests(hub_home, server, many_refs) -> None:
    models, main = many_refs
    older = git("rev-parse", "HEAD~1", cwd=models.work)  # "one": behind main, tagged v1
    pr = git("rev-parse", "refs/pull/0/head", cwd=models.bare)
    url = f"git+{server.url}/lab/models.git"
    assert hubcore.open_repo(f"{url}@{main[:10]}").snapshot_id == main  # a tip: depth 1
    server.bodies.clear()
    assert hubcore.open_repo(f"{url}@{older[:10]}").snapshot_id == older
    sent = b"".join(server.bodies)
    assert pr.encode() not in sent
    assert b"refs/pull" not in sent
    outcome = bounded(lambda: hubcore.open_repo(f"{url}@{pr[:10]}"))
    assert isinstance(outcome, RefNotFoundError), repr(outcome)
    assert "was not found in the branches and tags" in str(outcome)


# -- item 4: errors keep their cause -----------------------------------------------------------
def test_unknown_host_shows_the_resolver_words(hub_home, short_limits) -> None:
    long_path = "/".join(["deep"] * 60)
    outcome = bounded(
        lambda: hubcore.list(f"git+http://user:s3cret@no-such-host.invalid/{long_path}/x.git")
    )
    assert isinstance(outcome, HubError), repr(outcome)
    message = str(outcome)
    assert "s3cret" not in message
    assert (
        "Name or service not known" in message
        or "not known" in message.lower()
        or ("Temporary failure in name resolution" in message)
    )
    assert "..." in message  # the long URL is cut in its middle, the cause is whole
    assert message.rstrip().endswith(("known", "resolution"))


# -- a cold fetch imports only what it uses ------------------------------------------------------
_FETCH_AND_LIST_MODULES = """
import sys, hubcore
hubcore.open_repo(sys.argv[1])
print(" ".join(sorted(sys.modules)))
"""


def test_a_smart_http_fetch_imports_only_what_it_uses(hub_home, server, models) -> None:
    """A protocol-v2 fetch needs neither fsspec (another source's library, asked whether it
    knows ``git+http``), dulwich's client and repository (the v2 requests are hubcore's own),
    nor the weights' download engine: each is milliseconds to tens of them of start-up on every
    cold load."""
    import os
    import sys

    url = f"git+{server.url}/lab/models.git@main"
    done = subprocess.run(
        [sys.executable, "-c", _FETCH_AND_LIST_MODULES, url],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        check=True,
        timeout=DEADLINE * 2,
    )
    loaded = set(done.stdout.split())
    assert "dulwich.object_store" in loaded  # it did fetch
    unused = {"fsspec", "dulwich.client", "dulwich.repo", "hubcore.store.downloader"}
    assert not unused & loaded, sorted(unused & loaded)
