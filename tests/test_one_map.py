"""One status-to-error map and one atomic-write helper (issue 11, items 3 and "one owner").

* A missing repository is a :class:`RepoNotFoundError` whichever transport found it missing:
  an archive URL answering 404/410 as much as a git host, while a missing weight file stays a
  :class:`DownloadError`.
* Git's smart-HTTP requests go through :func:`hubcore.store.http.error_for` (the server's own
  words are shown, with git's credential hint), not a map of their own.
* The site builder and the registry's folder store write through
  :mod:`hubcore.store.files`, and a failed write leaves no half-written file behind.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import threading
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import pytest

import hubcore
from hubcore.errors import AuthenticationError, DownloadError, RepoNotFoundError
from hubcore.store import files as store_files
from hubcore.store import transfer

# -- (a) a missing repository archive -------------------------------------------------------------


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        hubconf = "dependencies = []\ndef one():\n    '''One.'''\n    return 1\n"
        zf.writestr("hub/hubconf.py", hubconf)
    return buf.getvalue()


@pytest.mark.parametrize("status", [404, 410])
def test_missing_archive_repository_is_repo_not_found(hub_home, file_server, status) -> None:
    url = file_server.add("hub.zip", _zip())
    file_server.faults.errors = [(status, None)]
    secret_url = url.replace("127.0.0.1", "user:pa55word@127.0.0.1") + "?token=s3cr3t"
    with pytest.raises(RepoNotFoundError) as info:
        hubcore.list(secret_url)
    text = str(info.value)
    assert f"HTTP {status}" in text
    assert "/hub.zip" in text  # names the archive, redacted
    assert "s3cr3t" not in text
    assert "pa55word" not in text
    assert "Check" in text  # and says what to do


def test_missing_archive_of_an_unknown_name_is_repo_not_found(hub_home, file_server) -> None:
    base = file_server.add("other.zip", _zip()).rpartition("/")[0]
    with pytest.raises(RepoNotFoundError, match=r"nothing\.zip"):
        hubcore.load(f"{base}/nothing.zip", "one")


def test_missing_archive_on_disk_or_store_is_repo_not_found(hub_home, tmp_path, s3_bucket):
    """Not only HTTP: a repository archive missing from a folder or an object store is a
    missing repository too; a missing weight file there stays a DownloadError."""
    for url in (
        (tmp_path / "nothing.zip").as_uri(),
        f"s3://{s3_bucket}/hubs/nothing.zip",
    ):
        with pytest.raises(RepoNotFoundError, match=r"nothing\.zip does not exist\. Check"):
            hubcore.list(url)
        with pytest.raises(DownloadError) as info:
            transfer.fetch(url.replace("nothing.zip", "missing.pth"))
        assert not isinstance(info.value, RepoNotFoundError)


def test_missing_weight_file_stays_a_download_error(hub_home, file_server) -> None:
    base = file_server.add("other.pth", b"x").rpartition("/")[0]
    with pytest.raises(DownloadError) as info:
        transfer.fetch(f"{base}/missing.pth")
    assert not isinstance(info.value, RepoNotFoundError)
    assert "Check the URL" in str(info.value)


# -- (b) git's smart HTTP through the one map ------------------------------------------------------

Reply = tuple[int, bytes]


class ScriptedGit:
    """A loopback server answering ``POST .../git-upload-pack`` and ``GET .../info/refs``
    with fixed statuses and bodies."""

    def __init__(self, post: Reply, get: Reply = (404, b"not found")):
        self.post, self.get = post, get
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _reply(self, reply: Reply) -> None:
                status, body = reply
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._reply(scripted.post)

            def do_GET(self) -> None:
                self._reply(scripted.get)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/team/models.git"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedGit]]:
    servers: list[ScriptedGit] = []

    def start(post: Reply, get: Reply = (404, b"not found")) -> ScriptedGit:
        servers.append(ScriptedGit(post, get))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def _smart_http(url: str) -> Any:
    from hubcore.sources.gitproto import SmartHTTP

    return SmartHTTP(url, "git:team/models")


def test_refused_git_post_shows_the_server_words_and_git_hint(hub_home, scripted) -> None:
    server = scripted((401, b"HTTP Basic: Access denied, use a personal access token"))
    with pytest.raises(AuthenticationError) as info:
        _smart_http(server.url).ls_refs(["HEAD"])
    text = str(info.value)
    assert "git:team/models" in text
    assert "HTTP 401" in text
    assert "personal access token" in text  # the server's own words, as the one map adds them
    assert "git's credential configuration" in text


def test_refused_ref_listing_carries_git_hint(hub_home, scripted) -> None:
    # the POST is not understood (a v0 server), the info/refs GET is refused
    server = scripted((400, b"bad request"), get=(403, b"forbidden here"))
    with pytest.raises(AuthenticationError) as info:
        _smart_http(server.url).ls_refs(["HEAD"])
    text = str(info.value)
    assert "HTTP 403" in text
    assert "forbidden here" in text
    assert "git's credential configuration" in text


@pytest.mark.parametrize("status", [404, 410])
def test_missing_upload_pack_at_fetch_is_repo_not_found(hub_home, scripted, status) -> None:
    server = scripted((status, b"no such project"))
    with pytest.raises(RepoNotFoundError) as info:
        _smart_http(server.url).fetch(["a" * 40], None, io.BytesIO())
    text = str(info.value)
    assert "git:team/models" in text
    assert f"HTTP {status}" in text
    assert "no such project" in text


def test_missing_git_repository_is_repo_not_found_end_to_end(hub_home, scripted) -> None:
    server = scripted((404, b"no such project"), get=(404, b"no such project"))
    with pytest.raises(RepoNotFoundError):
        hubcore.list(f"git+{server.url}")


# -- (c) one atomic-write helper ---------------------------------------------------------------


@pytest.fixture
def failing_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``shutil.copyfileobj`` writes a first piece, then the disk is full."""

    def copy(src: IO[bytes], dst: IO[bytes], length: int = 0) -> None:
        dst.write(src.read(3))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", copy)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


def test_registry_upload_uses_the_one_helper(tmp_path, monkeypatch) -> None:
    from hubcore.registry import store as registry_store

    calls: list[tuple[Path, Path, Path | None]] = []
    original = store_files.atomic_copy

    def spy(source: Path, target: Path, *, temp_dir: Path | None = None) -> None:
        calls.append((source, target, temp_dir))
        original(source, target, temp_dir=temp_dir)

    monkeypatch.setattr(registry_store, "atomic_copy", spy)
    local = tmp_path / "w.bin"
    local.write_bytes(b"weights")
    store = registry_store.LocalStore(tmp_path / "reg")
    store.upload(local, "blobs/ab/abcd")
    assert (tmp_path / "reg" / "blobs" / "ab" / "abcd").read_bytes() == b"weights"
    # the temporary file lives in the registry's tmp folder (gc clears what a crash leaves)
    assert calls == [(local, tmp_path / "reg" / "blobs" / "ab" / "abcd", tmp_path / "reg" / "tmp")]


def test_failed_registry_upload_leaves_no_partial_file(tmp_path, failing_copy) -> None:
    from hubcore.registry.store import LocalStore

    local = tmp_path / "w.bin"
    local.write_bytes(b"new weights")
    store = LocalStore(tmp_path / "reg")
    target = tmp_path / "reg" / "blobs" / "ab" / "abcd"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"old")
    with pytest.raises(OSError, match="No space"):
        store.upload(local, "blobs/ab/abcd")
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path / "reg") == ["abcd"]


def test_atomic_copy_keeps_the_temporary_file_in_temp_dir(tmp_path, failing_copy) -> None:
    source, temp = tmp_path / "src", tmp_path / "tmp"
    source.write_bytes(b"payload")
    temp.mkdir()
    seen: list[list[str]] = []
    real_unlink = os.unlink

    def unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        seen.append(_leftovers(temp))
        real_unlink(path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "unlink", unlink)
        with pytest.raises(OSError):
            store_files.atomic_copy(source, tmp_path / "out" / "target", temp_dir=temp)
    assert seen
    assert len(seen[0]) == 1
    assert seen[0][0].endswith(".part")
    assert _leftovers(temp) == []
    assert _leftovers(tmp_path / "out") == []


def test_atomic_write_mode(tmp_path) -> None:
    path = tmp_path / "page.html"
    store_files.atomic_write(path, lambda handle: handle.write(b"<p>"), mode=0o644)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert path.read_bytes() == b"<p>"


def test_site_writes_through_the_one_helper(tmp_path, monkeypatch) -> None:
    from hubcore.site import build

    written: list[Path] = []
    original = store_files.atomic_write

    def spy(path: Path, fill: Any, **kwargs: Any) -> None:
        written.append(path)
        original(path, fill, **kwargs)

    monkeypatch.setattr(build, "atomic_write", spy)
    out: list[Path] = []
    target = tmp_path / "site" / "static" / "a.js"
    build._write_if_changed(target, b"let a = 1;", out)
    assert written == [target]
    assert out == [target]
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # served as a web page
    build._write_if_changed(target, b"let a = 1;", out)  # unchanged: not written again
    assert written == [target]
    assert out == [target]


def test_failed_site_write_leaves_the_old_page(tmp_path, monkeypatch) -> None:
    from hubcore.site import build

    target = tmp_path / "site" / "index.html"
    target.parent.mkdir()
    target.write_bytes(b"old page")

    def full(path: Any, *args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    out: list[Path] = []
    with pytest.raises(OSError, match="No space"):
        build._write_if_changed(target, b"new page", out)
    assert target.read_bytes() == b"old page"
    assert out == []
    assert _leftovers(tmp_path / "site") == ["index.html"]
