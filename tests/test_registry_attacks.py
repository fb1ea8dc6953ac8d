"""The registry attacked: hostile names and folders, a tampered store, writers killed at every
step, storage that ignores conditional writes, hostile webhook receivers, huge lineage graphs,
and the CLI's ``--json`` on errors. Each test failed before the fix it guards."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import hubcore.registry as registry
from hubcore.cli import main
from hubcore.registry import notify
from hubcore.registry.core import collection_key, digest_key, version_key

from .test_registry import make_files
from .test_registry import reg_url as reg_url

SECRET_PATH = "/services/T0001/B0002/s3cr3tKEYs3cr3t"


def one_file(tmp_path: Path, text: str, name: str = "w.bin") -> Path:
    folder = tmp_path / f"src-{text}"
    return make_files(folder, {name: text}) / name


# -- notifications ---------------------------------------------------------------------------


class Listener:
    """A raw loopback TCP server whose connections are answered by *answer(conn, request)*."""

    def __init__(self, answer: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self.answer = answer
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                while len(body) < length:
                    body += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + body)
                self.answer(self, conn, head)
            except OSError:
                pass

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture
def quiet_cwd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no project hubcore.toml


def test_webhook_post_does_not_follow_a_redirect_to_another_origin(
    hub_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quiet_cwd: None
) -> None:
    def ok(listener: Listener, conn: socket.socket, head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    other = Listener(ok)

    def redirect(listener: Listener, conn: socket.socket, head: bytes) -> None:
        # same host, another port: another origin
        location = f"http://127.0.0.1:{other.port}/collect"
        conn.sendall(
            f"HTTP/1.1 307 Temporary\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()
        )

    first = Listener(redirect)
    try:
        monkeypatch.setenv(
            "HUBCORE_REGISTRY_WEBHOOK", f"http://127.0.0.1:{first.port}{SECRET_PATH}"
        )
        reg = registry.open(tmp_path / "reg")
        reg.log("clf", {"w": one_file(tmp_path, "a")}, progress=False)
        assert len(first.requests) >= 1
        assert other.requests == []  # the body (and its idempotency key) stayed home
        pending = notify.pending(reg)
        assert len(pending) == 1
        assert "redirect" in pending[0]["error"]
        assert SECRET_PATH not in pending[0]["error"]
    finally:
        first.close()
        other.close()


def test_webhook_follows_a_same_origin_307(
    hub_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quiet_cwd: None
) -> None:
    def answer(listener: Listener, conn: socket.socket, head: bytes) -> None:
        if head.startswith(b"POST /moved "):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        else:
            # this server answers one request per connection, and says so: a client that
            # reused the connection for the redirect would meet a reset
            conn.sendall(
                b"HTTP/1.1 308 Moved\r\nLocation: /moved\r\nContent-Length: 0\r\n"
                b"Connection: close\r\n\r\n"
            )

    server = Listener(answer)
    try:
        monkeypatch.setenv("HUBCORE_REGISTRY_WEBHOOK", f"http://127.0.0.1:{server.port}/hook")
        reg = registry.open(tmp_path / "reg")
        reg.log("clf", {"w": one_file(tmp_path, "a")}, progress=False)
        assert [r.split(b" ")[1] for r in server.requests] == [b"/hook", b"/moved"]
        assert all(r.endswith(b"}") for r in server.requests)  # the body went both times
        assert notify.pending(reg) == []
    finally:
        server.close()


def test_a_receiver_dripping_its_answer_cannot_hold_a_change(
    hub_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quiet_cwd: None
) -> None:
    def drip(listener: Listener, conn: socket.socket, head: bytes) -> None:
        # one byte of the status line every 0.2 s: every read succeeds within its timeout
        for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" * 100:
            if listener.stop.is_set():
                return
            conn.sendall(bytes([byte]))
            time.sleep(0.2)

    server = Listener(drip)
    try:
        monkeypatch.setattr(notify, "INLINE_BUDGET", 1.0)
        monkeypatch.setenv(
            "HUBCORE_REGISTRY_WEBHOOK", f"http://127.0.0.1:{server.port}{SECRET_PATH}"
        )
        reg = registry.open(tmp_path / "reg")
        started = time.monotonic()
        reg.log("clf", {"w": one_file(tmp_path, "a")}, progress=False)
        # the answer takes about 8 s to drip out; the change waits about the budget only
        assert time.monotonic() - started < 6.0
        assert len(notify.pending(reg)) == 1  # kept for a later delivery
    finally:
        server.close()


# -- what a log takes from a folder ----------------------------------------------------------


def test_a_link_out_of_the_logged_folder_is_refused(hub_home: Path, tmp_path: Path) -> None:
    secret = make_files(tmp_path / "home", {"credentials": "aws_secret_access_key=x"})
    folder = make_files(tmp_path / "ckpt", {"w.bin": "w", "sub/x.txt": "x"})
    os.symlink(secret / "credentials", folder / "creds")
    os.symlink("../w.bin", folder / "sub" / "inside")  # inside the folder: logged as a file
    reg = registry.open(tmp_path / "reg")
    with pytest.raises(registry.RegistryError, match="outside"):
        reg.log("clf", folder, progress=False)
    assert not (tmp_path / "reg" / "blobs").exists()  # nothing uploaded
    os.unlink(folder / "creds")
    version = reg.log("clf", folder, progress=False)
    assert [f.path for f in version.files] == ["sub/inside", "sub/x.txt", "w.bin"]
    # named explicitly, a file anywhere is fine
    assert reg.log("cfg", {"credentials": secret / "credentials"}, progress=False).number == 0


def test_a_file_where_a_folder_must_be_is_refused_at_log(hub_home: Path, tmp_path: Path) -> None:
    reg = registry.open(tmp_path / "reg")
    one = one_file(tmp_path, "1")
    with pytest.raises(registry.InvalidNameError, match="folder"):
        reg.log("clf", {"a": one, "a/b": one}, progress=False)
    with pytest.raises(registry.InvalidNameError, match="folder"):
        reg.log("clf", {"a/b": one, "a-x": one, "a/b/c/d": one}, progress=False)
    assert reg.log("clf", {"a": one, "a-b": one, "ab/c": one}, progress=False).number == 0


# -- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "..",
        "a/..",
        "../x",
        "a//b",
        "/a",
        "a/",
        "%2e%2e",
        "a%2Fb",
        "a\u2215b",
        "\uff21\uff22",
        "caf\u00e9",
        "a\\b",
        "a:",
        "a@",
        " a",
        "a/.b",
        "x" * 101,
        "",
    ],
)
def test_hostile_names_are_refused(name: str) -> None:
    with pytest.raises(registry.InvalidNameError):
        registry.parse_spec(name)


def test_names_that_differ_only_in_case_are_refused(reg_url: str, tmp_path: Path) -> None:
    reg = registry.open(reg_url)
    reg.log("Image Classifier", {"w": one_file(tmp_path, "a")}, progress=False)
    with pytest.raises(registry.InvalidNameError, match="only in case"):
        reg.log("image classifier", {"w": one_file(tmp_path, "b")}, progress=False)
    with pytest.raises(registry.InvalidNameError, match="only in case"):
        reg.link("Image Classifier:v0", "IMAGE CLASSIFIER")
    assert reg.artifacts() == ["Image Classifier"]
    reg.log("Image Classifier", {"w": one_file(tmp_path, "c")}, progress=False)  # same name: fine


def test_a_case_insensitive_folder_does_not_mix_two_artifacts(
    hub_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hubcore.registry import store

    # a folder that ignores case, as on macOS and Windows
    real = store.LocalStore._path
    monkeypatch.setattr(store.LocalStore, "_path", lambda self, key: real(self, key.lower()))
    reg = registry.open(tmp_path / "reg")
    reg.log("CLF", {"w": one_file(tmp_path, "a")}, progress=False)
    with pytest.raises(registry.InvalidNameError, match="only in case"):
        reg.log("clf", {"w": one_file(tmp_path, "b")}, progress=False)
    with pytest.raises(registry.ArtifactNotFoundError, match="ignores case"):
        reg.get("clf:v0")
    assert [v.name for v in reg.versions("CLF")] == ["CLF"]


# -- a tampered store ------------------------------------------------------------------------


def test_a_digest_pin_never_returns_another_version(reg_url: str, tmp_path: Path) -> None:
    reg = registry.open(reg_url)
    v0 = reg.log("clf", {"w": one_file(tmp_path, "a")}, progress=False)
    reg.log("clf", {"w": one_file(tmp_path, "b")}, progress=False)
    # the index entry of v0's digest now names v1 (edited outside hubcore)
    reg.store.delete(digest_key("clf", v0.digest))
    reg.store.create(digest_key("clf", v0.digest), json.dumps({"version": 1}).encode())
    with pytest.raises(registry.RegistryError, match="modified outside hubcore"):
        reg.get(f"clf@sha256:{v0.digest}")
    with pytest.raises(registry.RegistryError, match="modified outside hubcore"):
        reg.resolve(f"clf@sha256:{v0.digest}")


def test_a_forged_event_cannot_replace_a_real_one(reg_url: str, tmp_path: Path) -> None:
    reg = registry.open(reg_url)
    reg.log("clf", {"w": one_file(tmp_path, "a")}, progress=False)
    real = reg.history("clf")[0]
    forged = {**real, "who": "mallory@nowhere"}
    key = f"{collection_key('clf')}/events/99999999999999999999-ffffffffffff.json"
    reg.store.create(key, json.dumps(forged).encode())
    with pytest.raises(registry.RegistryError, match="outside hubcore"):
        reg.history("clf")
    reg.store.delete(key)
    assert [e["who"] for e in reg.history("clf")] == [real["who"]]
    reg.store.create(key, b"{}")  # no fields at all: a clear error, no KeyError
    with pytest.raises(registry.RegistryError, match="not a history event"):
        reg.history("clf")
    result = CliRunner().invoke(main, ["registry", "history", "clf", "--registry", reg_url])
    assert result.exit_code == 1
    assert "internal error" not in result.output


def test_a_tampered_blob_or_manifest_is_caught(reg_url: str, tmp_path: Path) -> None:
    from hubcore.errors import IntegrityError
    from hubcore.registry.core import blob_key, manifest_key

    reg = registry.open(reg_url)
    version = reg.log("clf", {"w": one_file(tmp_path, "weights")}, progress=False)
    sha = version.files[0].sha256
    reg.store.delete(blob_key(sha))
    reg.store.create(blob_key(sha), b"evil!!!")
    with pytest.raises(IntegrityError):
        registry.open(reg_url).get("clf:v0").download()
    data, tag = reg.store.read(manifest_key(version.digest))
    reg.store.swap(manifest_key(version.digest), data.replace(b"w", b"x", 1), tag)
    with pytest.raises(registry.RegistryError, match="outside hubcore"):
        _ = registry.open(reg_url).get("clf:v0").files


# -- storage that ignores conditional writes -------------------------------------------------


def test_storage_ignoring_conditional_writes_is_refused_loudly(
    reg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hubcore.registry import store

    reg = registry.open(reg_url)
    if isinstance(reg.store, store.S3Store):
        real_put = store.S3Store._put

        def unconditional(self: Any, key: str, data: bytes, condition: Any) -> bool:
            return real_put(self, key, data, {})  # an S3 clone that drops If-None-Match/If-Match

        monkeypatch.setattr(store.S3Store, "_put", unconditional)
    else:

        def create(self: Any, key: str, data: bytes) -> bool:
            self._path(key).parent.mkdir(parents=True, exist_ok=True)
            self._path(key).write_bytes(data)
            return True

        monkeypatch.setattr(store.LocalStore, "create", create)
        monkeypatch.setattr(
            store.LocalStore, "swap", lambda self, key, data, tag: create(self, key, data)
        )
    with pytest.raises(registry.UnsupportedStorageError, match="If-None-Match"):
        reg.log("clf", {"w": one_file(tmp_path, "a")}, progress=False)
    assert reg.store.info(version_key("clf", 0)) is None


def test_credentials_in_an_s3_url_stay_out_of_what_is_shown(hub_home: Path, s3_bucket: str) -> None:
    from hubcore.registry.source import RegistrySource

    reg = registry.open(f"s3://AKIDEXAMPLE:s3cr3t@{s3_bucket}/reg")
    assert "s3cr3t" not in reg.store.url
    assert "AKIDEXAMPLE" not in reg.store.url
    ref = RegistrySource().parse(
        "registry:clf:production",
        {"registry": f"s3://{s3_bucket}/reg", "storage_options": {"secret": "s3cr3t"}},
    )
    assert ref is not None
    assert "s3cr3t" not in ref.identity
    assert "s3cr3t" not in ref.location


# -- writers killed at every step ------------------------------------------------------------

KILLED = """
import os, sys
import hubcore.registry as r
from hubcore.registry import store

limit, count = int(sys.argv[2]), [0]


def crashing(cls, name):
    original = getattr(cls, name)

    def wrapped(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        count[0] += 1
        if count[0] == limit:
            os._exit(137)  # as kill -9 right after this write: no cleanup, no finally
        return result

    setattr(cls, name, wrapped)


for cls in (store.LocalStore, store.S3Store):
    for name in ("create", "swap", "delete", "upload", "touch"):
        crashing(cls, name)
reg = r.open(sys.argv[1])
reg.link("a:v0", "M", aliases=["staging"])
reg.link("a:v1", "M")
reg.alias("M:v1", "staging")
reg.alias("a:v1", "production")
reg.log("a", {"w": sys.argv[3]}, progress=False)
print(count[0])
"""


def broken_invariants(reg: registry.Registry) -> list[str]:
    """What is wrong: versions with no event in the history, registered-model versions
    missing from their artifact's link index, aliases on versions that are not live."""
    problems = []
    for name in ("a", "M"):
        if name not in reg.artifacts():
            continue
        recorded = {
            (e["kind"], e["version"]) for e in reg.history(name) if e["kind"] in ("log", "link")
        }
        for version in reg.versions(name, limit=0, deleted=True):
            kind = "link" if version.link else "log"
            if (kind, version.number) not in recorded:
                problems.append(f"{version} has no {kind} event")
            if version.link and (name, version.number) not in reg.links(*version.link):
                problems.append(f"{version} is missing from the links of {version.link}")
        for alias, number in reg.aliases(name).items():
            target = reg._read_version(name, number)
            if target is None or target.record.get("deleted"):
                problems.append(f"{name}:{alias} names v{number}, which is not live")
    return problems


def test_killed_at_every_step_of_link_alias_and_log(reg_url: str, tmp_path: Path) -> None:
    files = [str(one_file(tmp_path, f"w{i}")) for i in range(3)]
    found: dict[int, list[str]] = {}
    step = 1
    while True:
        url = f"{reg_url}/{step}"
        reg = registry.open(url)
        reg.log("a", {"w": files[0]}, progress=False)
        reg.log("a", {"w": files[1]}, progress=False)
        killed = subprocess.run(
            [sys.executable, "-c", KILLED, url, str(step), files[2]],
            capture_output=True,
            text=True,
            timeout=120,
        )
        history = [e["id"] for e in reg.history("a")]
        # the next writer finishes what the killed one left, and is blocked by nothing
        again = subprocess.run(
            [sys.executable, "-c", KILLED, url, "0", files[2]],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 0, again.stderr[-2000:]
        problems = broken_invariants(reg)
        assert set(history) <= {e["id"] for e in reg.history("a")}  # append-only
        if problems:
            found[step] = problems
        if killed.returncode == 0:
            break
        assert killed.returncode == 137, killed.stderr[-2000:]
        step += 1
    assert step > 20  # every write of link, alias moves and log was a kill point
    assert found == {}


# -- the CLI's --json ------------------------------------------------------------------------


def test_every_registry_command_prints_json_on_success_and_on_error(
    hub_home: Path, tmp_path: Path, quiet_cwd: None
) -> None:
    url = str(tmp_path / "reg")
    folder = make_files(tmp_path / "ckpt", {"w.bin": "w"})
    card = make_files(tmp_path / "card", {"card.md": "---\ntitle: T\n---\nhello\n"}) / "card.md"
    runner = CliRunner()
    good = [
        ["log", str(folder), "clf"],
        ["ls"],
        ["ls", "clf"],
        ["show", "clf:v0"],
        ["alias", "clf:v0", "production"],
        ["history", "clf"],
        ["download", "clf:production", "-o", str(tmp_path / "out")],
        ["diff", "clf:v0", "clf:v0"],
        ["link", "clf:v0", "Image Classifier", "--alias", "staging"],
        ["lineage", "Image Classifier:staging", "--format", "mermaid"],
        ["card", "Image Classifier", "--set", str(card)],
        ["runs"],
        ["notify"],
        ["unlink", "Image Classifier:v0", "--force"],
        ["unalias", "clf", "production"],
        ["rm", "clf:v0"],
        ["gc", "--dry-run"],
    ]
    for args in good:
        result = runner.invoke(main, ["registry", *args, "--registry", url, "--json"])
        assert result.exit_code == 0, (args, result.output)
        json.loads(result.stdout)
    bad = [
        ["show", "nothing:v0"],
        ["show", "../x"],
        ["alias", "clf:v9", "production"],
        ["history", "nothing"],
        ["rm", "clf:v0"],
        ["diff", "clf:v0", "nothing:v1"],
        ["lineage", "nothing:v0"],
        ["card", "nothing"],
        ["runs", "no-such-run"],
        ["unlink", "clf:v9"],
    ]
    for args in bad:
        result = runner.invoke(main, ["registry", *args, "--registry", url, "--json"])
        assert result.exit_code == 1, (args, result.output)
        error = json.loads(result.stdout)["error"]
        assert error["type"].endswith("Error")
        assert error["message"]
