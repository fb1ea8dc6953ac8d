"""A cache entry is used only when it is what its name says, and removal never breaks a load.

Weight blobs are checked against their verification record (size always, the full sha256 when
the file changed since it was last verified); snapshots against the manifest written when they
were published; and loads that overlap a removal fetch what was removed again.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import zipfile
from pathlib import Path

import pytest

import hubcore
from hubcore.errors import CacheError, HubError, OfflineError
from hubcore.store import transfer
from hubcore.store.cache import Cache

HUBCONF = '''\
dependencies = []


def answer():
    """The answer, read from a data file by a sibling module."""
    from helper import read

    return read()
'''

HELPER = """\
from pathlib import Path


def read():
    return int((Path(__file__).parent / "data.txt").read_text())
"""


def make_hub_zip(folder: Path, name: str = "hub.zip") -> str:
    """A zipped hub repository on disk; returns its file:// URL (an archive reference)."""
    path = folder / name
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("hub/hubconf.py", HUBCONF)
        zf.writestr("hub/helper.py", HELPER)
        zf.writestr("hub/data.txt", "42\n")
        zf.writestr("hub/pkg/__init__.py", "")
    return "url:" + path.as_uri()


def flip_one_byte(path: Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def weight(tmp_path: Path) -> tuple[Path, str]:
    src = tmp_path / "w.bin"
    src.write_bytes(os.urandom(64 << 10))
    return src, transfer.file_sha256(src)


# -- weight blobs -----------------------------------------------------------------------------


def test_flipped_byte_in_a_declared_blob_is_moved_aside_and_fetched_again(
    hub_home: Path, weight: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    src, sha = weight
    cached = hubcore.download(str(src), sha256=sha)
    flip_one_byte(cached)
    with caplog.at_level(logging.WARNING, logger="hubcore"):
        again = hubcore.download(str(src), sha256=sha)
    assert again.read_bytes() == src.read_bytes()
    assert "moved aside" in caplog.text
    assert "fetching" in caplog.text
    (aside,) = (hub_home / "tmp").glob(f"corrupt-*/{sha}")
    assert aside.read_bytes() != src.read_bytes()
    assert str(aside) in caplog.text


def test_truncated_blob_found_by_url_record_is_repaired(
    hub_home: Path, weight: tuple[Path, str]
) -> None:
    src, _ = weight
    cached = hubcore.download(str(src))
    with open(cached, "r+b") as fh:
        fh.truncate(1000)
    assert hubcore.download(str(src)).read_bytes() == src.read_bytes()


def test_damaged_blob_offline_is_an_error_naming_the_cache(
    hub_home: Path, weight: tuple[Path, str]
) -> None:
    src, sha = weight
    cached = hubcore.download(str(src), sha256=sha)
    flip_one_byte(cached)
    with pytest.raises(OfflineError, match="cached weight file") as info:
        hubcore.download(str(src), sha256=sha, offline=True)
    assert "Offline mode is on" in str(info.value)
    assert "moved aside" in str(info.value)
    assert not cached.exists()  # a damaged copy is never served, not even offline


def test_unchanged_blob_is_not_hashed_again(
    hub_home: Path, weight: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    src, sha = weight
    hubcore.download(str(src), sha256=sha)
    hashed: list[object] = []
    monkeypatch.setattr("hubcore.store.cache.file_sha256", lambda p: hashed.append(p) or "0" * 64)
    hubcore.download(str(src), sha256=sha)
    hubcore.download(str(src))
    assert hashed == []


def test_verify_always_rehashes_a_blob_whose_metadata_looks_unchanged(
    hub_home: Path, weight: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    src, sha = weight
    cached = hubcore.download(str(src), sha256=sha)
    flip_one_byte(cached)
    # Bit rot below the filesystem changes no metadata: make the record match the new stat.
    (record,) = (hub_home / "verified").rglob(f"{sha}.json")
    st = os.stat(cached)
    data = json.loads(record.read_text())
    data.update(size=st.st_size, mtime_ns=st.st_mtime_ns, ctime_ns=st.st_ctime_ns, ino=st.st_ino)
    record.write_text(json.dumps(data))
    assert hubcore.download(str(src), sha256=sha).read_bytes() != src.read_bytes()  # cheap path
    monkeypatch.setenv("HUBCORE_VERIFY", "always")
    assert hubcore.download(str(src), sha256=sha).read_bytes() == src.read_bytes()


def test_folder_in_place_of_a_blob_is_moved_aside(hub_home: Path, weight: tuple[Path, str]) -> None:
    src, sha = weight
    Cache(hub_home).blob_path(sha).mkdir(parents=True)
    assert hubcore.download(str(src), sha256=sha).read_bytes() == src.read_bytes()


# -- snapshots ---------------------------------------------------------------------------------


def test_file_deleted_from_a_snapshot_is_fetched_again(
    hub_home: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ref = make_hub_zip(tmp_path)
    assert hubcore.load(ref, "answer") == 42
    (snap,) = Cache(hub_home).snapshots()
    assert sorted(p.name for p in snap.path.iterdir() if p.name != "__pycache__") == [
        "data.txt",
        "helper.py",
        "hubconf.py",
        "pkg",
    ]  # the manifest lives outside the tree, where repository code cannot see it
    (snap.path / "hubconf.py").unlink()
    with caplog.at_level(logging.WARNING, logger="hubcore"):
        assert hubcore.list(ref) == ["answer"]
    assert "damaged" in caplog.text
    assert "hubconf.py" in caplog.text
    (snap.path / "pkg" / "__init__.py").unlink()
    assert hubcore.list(ref) == ["answer"]
    assert (snap.path / "pkg" / "__init__.py").is_file()


def test_damaged_snapshot_offline_names_the_cache_and_force_reload(
    hub_home: Path, tmp_path: Path
) -> None:
    ref = make_hub_zip(tmp_path)
    assert hubcore.list(ref) == ["answer"]
    (snap,) = Cache(hub_home).snapshots()
    (snap.path / "data.txt").write_text("4")  # a changed size counts as damage too
    with pytest.raises(CacheError) as info:
        hubcore.list(ref, offline=True)
    message = str(info.value)
    assert str(snap.path) in message
    assert "--force-reload" in message
    assert "hubcore cache rm" in message


# -- removal while loading -----------------------------------------------------------------------


def test_loads_survive_concurrent_removal(hub_home: Path, tmp_path: Path) -> None:
    ref = make_hub_zip(tmp_path)
    assert hubcore.load(ref, "answer") == 42
    cache = Cache(hub_home)
    removals = 25
    stop = threading.Event()
    removed = []

    def remover() -> None:
        rng = random.Random(7)
        while len(removed) < removals and not stop.is_set():
            for snap in cache.snapshots():
                cache.remove_snapshot(snap)
                removed.append(snap.snapshot_id)
            for blob in cache.blobs():
                cache.remove_blob(blob)
            stop.wait(rng.uniform(0.005, 0.03))

    thread = threading.Thread(target=remover)
    thread.start()
    results, errors = [], []
    try:
        while thread.is_alive() and len(results) < 500:
            try:
                results.append(hubcore.load(ref, "answer"))
            except Exception as exc:
                errors.append(exc)
    finally:
        stop.set()
        thread.join()
    assert [e for e in errors if not isinstance(e, HubError)] == []
    assert errors == []
    assert len(removed) >= removals or len(results) == 500
    assert set(results) == {42}
