"""Git-host archives go through the transfer engine: an interrupted archive resumes with a
Range request, retries within the stall budget, emits the download events, and lands in the
cache atomically (nothing half-written) before it is extracted.

The GitHub stand-in (tests/gitserver.py) resolves refs and redirects the archive request to
the fault-injecting file server (tests/fileserver.py), which serves the same ``git archive``
zip with ranges and ETags and misbehaves on demand.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import hubcore
from hubcore.errors import DownloadError

from .fileserver import FileServer
from .gitserver import GIT, BareRepo, GitHostServer

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")

HUBCONF = """
dependencies = []

def version():
    '''Which version of the hub this is.'''
    return 'v1'
"""


@pytest.fixture
def hosts(hub_home, tmp_path: Path, file_server: FileServer, monkeypatch):
    """``(git host, file server, commit)``: archives of acme/hub come from the file server."""
    server = GitHostServer(tmp_path / "srv" / "repos").start()
    repo = BareRepo(server.root, "acme/hub")
    # incompressible, so the zip is large enough for several 64 KiB chunks
    (repo.work / "blob.bin").write_bytes(os.urandom(600_000))
    commit = repo.commit({"hubconf.py": HUBCONF}, "first")
    data = subprocess.run(
        [*GIT, "archive", "--format=zip", f"--prefix=hub-{commit}/", commit],
        cwd=repo.bare,
        check=True,
        capture_output=True,
    ).stdout
    assert len(data) > 500_000
    file_server.add(f"acme/hub/archive/{commit}.zip", data)
    server.redirect_archives_to = file_server.url
    monkeypatch.setenv("HUBCORE_CHUNK_MB", "0.0625")  # 64 KiB chunks
    monkeypatch.setenv("HUBCORE_FAST_LINK_MBPS", "0")  # one stream, as for a real archive
    monkeypatch.setenv("HUBCORE_READ_TIMEOUT", "1")
    monkeypatch.setenv("HUBCORE_RETRIES", "4")
    yield server, file_server, commit
    server.stop()


def archive_gets(files: FileServer) -> list[dict[str, str]]:
    return [headers for path, headers in files.requests() if path.endswith(".zip")]


def assert_nothing_half_written(home: Path) -> None:
    """Every blob is named by the sha256 of its bytes; no partial archive is left behind."""
    for blob in (home / "blobs").rglob("*"):
        if blob.is_file():
            assert hubcore.file_sha256(blob) == blob.name
    partial = home / "tmp" / "partial"
    assert not partial.exists() or not any(partial.iterdir())


def test_a_cut_archive_resumes_with_a_range_request(hub_home, hosts) -> None:
    server, files, commit = hosts
    files.faults.cut_after = 150_000  # the rest of the archive breaks off once
    files.faults.times = 2  # the first response (the 64 KiB probe) is too short to be cut
    assert hubcore.load("acme/hub:main", "version", host=server.url) == "v1"
    ranges = [headers.get("Range", "") for headers in archive_gets(files)]
    assert len(ranges) >= 3, ranges  # probe, the cut stream, the resumed rest
    starts = [int(r.removeprefix("bytes=").partition("-")[0]) for r in ranges if r]
    assert starts[-1] > 65536, ranges  # the retry did not start over: it resumed
    assert_nothing_half_written(hub_home)
    snapshot = hubcore.open_repo("acme/hub:main", host=server.url)
    assert snapshot.snapshot_id == commit
    assert (snapshot.root / "blob.bin").stat().st_size == 600_000


def test_a_stalled_archive_is_retried_and_resumed(hub_home, hosts, monkeypatch) -> None:
    server, files, _ = hosts
    monkeypatch.setenv("HUBCORE_READ_TIMEOUT", "0.5")
    files.faults.stall_after = 200_000
    files.faults.stall_seconds = 30
    files.faults.times = 2  # the probe, then the stream of the rest
    assert hubcore.load("acme/hub:main", "version", host=server.url) == "v1"
    ranges = [headers.get("Range", "") for headers in archive_gets(files)]
    assert int(ranges[-1].removeprefix("bytes=").partition("-")[0]) > 65536, ranges
    assert_nothing_half_written(hub_home)


def test_archive_downloads_emit_events(hub_home, hosts) -> None:
    from hubcore.plugins import get_plugins

    server, _, commit = hosts
    seen: list[tuple[str, object]] = []

    class Listener:
        @hubcore.hookimpl
        def hubcore_download_started(self, url, total):
            seen.append(("start", url))

        @hubcore.hookimpl
        def hubcore_download_progress(self, url, done, total):
            seen.append(("progress", done))

        @hubcore.hookimpl
        def hubcore_download_finished(self, url, path, sha256, size, cached):
            seen.append(("finished", (url, size, cached)))

    get_plugins().manager.register(Listener())
    hubcore.list("acme/hub:main", host=server.url)
    assert seen[0] == ("start", f"{server.url}/acme/hub/archive/{commit}.zip")
    finished = [value for kind, value in seen if kind == "finished"]
    assert len(finished) == 1
    url, size, cached = finished[0]  # type: ignore[misc]
    assert url.endswith(f"{commit}.zip")
    assert size > 500_000
    assert cached is False
    assert ("progress", size) in seen


def test_an_archive_that_keeps_failing_leaves_nothing(hub_home, hosts, monkeypatch) -> None:
    server, files, _ = hosts
    monkeypatch.setenv("HUBCORE_RETRIES", "2")
    files.faults.cut_after = 100_000
    files.faults.times = 100
    with pytest.raises(DownloadError, match="the archive of github:acme/hub") as info:
        hubcore.list("acme/hub:main", host=server.url)
    assert "HUBCORE_RETRIES=2" in str(info.value)
    assert not any((hub_home / "repos").rglob("hubconf.py"))
    for blob in (hub_home / "blobs").rglob("*"):
        assert not blob.is_file(), "no archive blob may stay behind a failed load"
    files.faults.times = 0
    assert hubcore.list("acme/hub:main", host=server.url) == ["version"]
    assert_nothing_half_written(hub_home)
    # the archive is a means to the tree: once extracted it is not kept in the blob store
    assert not [b for b in (hub_home / "blobs").rglob("*") if b.is_file()]


def test_an_archive_that_keeps_stalling_ends_within_the_stall_budget(
    hub_home, hosts, monkeypatch
) -> None:
    """Every attempt sends the same first bytes and stalls: those bytes, fetched again, are
    not progress, so the budget (not fifty attempts) ends the download, and soon after it."""
    import time

    from hubcore.plugins import get_plugins

    server, files, _ = hosts
    monkeypatch.setenv("HUBCORE_STALL_BUDGET", "2")
    monkeypatch.setenv("HUBCORE_READ_TIMEOUT", "0.5")
    monkeypatch.setenv("HUBCORE_CONNECT_TIMEOUT", "60")
    monkeypatch.setenv("HUBCORE_RETRIES", "50")
    monkeypatch.setenv("HUBCORE_CHUNK_MB", "1")  # one chunk: no attempt finishes a piece of it
    files.faults.stall_after = 1000
    files.faults.stall_seconds = 60
    files.faults.times = 100
    files.faults.ignore_range = True  # with Range, a retry resumes: new bytes, not a stall
    started: list[float] = []

    class Listener:
        @hubcore.hookimpl
        def hubcore_download_started(self, url, total):
            started.append(time.monotonic())

    get_plugins().manager.register(Listener())
    with pytest.raises(DownloadError, match="HUBCORE_STALL_BUDGET=2"):
        hubcore.list("acme/hub:main", host=server.url)
    assert started
    assert time.monotonic() - started[0] < 2 + 3  # from the archive's first answer
    assert not [b for b in (hub_home / "blobs").rglob("*") if b.is_file()]
