"""Fetching into the content-addressed cache: verification, atomicity, one transfer for many."""

from __future__ import annotations

import multiprocessing
import os

import pytest

import hubcore
from hubcore.errors import DownloadError, IntegrityError


def test_plain_path_file_url_and_hash(hub_home, tmp_path) -> None:
    src = tmp_path / "w.bin"
    src.write_bytes(os.urandom(3 << 20))
    sha = hubcore.file_sha256(src)
    cached = hubcore.download(str(src), sha256=sha.upper())
    assert cached.read_bytes() == src.read_bytes()
    assert hubcore.download(src.as_uri(), sha256=sha) == cached


def test_known_blob_needs_no_source(hub_home, tmp_path) -> None:
    src = tmp_path / "w.bin"
    src.write_bytes(b"abc" * 1000)
    sha = hubcore.file_sha256(src)
    cached = hubcore.download(str(src), sha256=sha)
    src.unlink()
    assert hubcore.download(str(tmp_path / "moved.bin"), sha256=sha) == cached


def test_missing_file(hub_home, tmp_path) -> None:
    with pytest.raises(DownloadError, match="does not exist"):
        hubcore.download(str(tmp_path / "missing.bin"))


def test_folder_is_not_a_file(hub_home, tmp_path) -> None:
    with pytest.raises(DownloadError, match="folder"):
        hubcore.download(str(tmp_path))


def test_unknown_protocol(hub_home) -> None:
    with pytest.raises(DownloadError, match="cannot open"):
        hubcore.download("nosuchproto://bucket/file.bin")


def test_mismatch_leaves_nothing(hub_home, tmp_path) -> None:
    src = tmp_path / "w.bin"
    src.write_bytes(b"x" * 5000)
    with pytest.raises(IntegrityError):
        hubcore.download(str(src), sha256="f" * 64)
    files = [p for p in hub_home.rglob("*") if p.is_file() and p.suffix != ".lock"]
    assert [p for p in files if p.parent.name != "plugins"] == []  # plugins/: the scan cache


def _fetch_in_child(args: tuple[str, str, str]) -> tuple[str, int]:
    home, url, _log = args
    os.environ["HUBCORE_HOME"] = home
    os.environ["HUBCORE_DISABLE_PROGRESS"] = "1"
    import hubcore as hc
    from hubcore.plugins import get_plugins

    transfers = []

    class Counter:
        @hc.hookimpl
        def hubcore_download_started(self, url, total):
            transfers.append(url)

    get_plugins().manager.register(Counter())
    path = hc.download(url)
    return str(path), len(transfers)


def test_concurrent_processes_transfer_once(hub_home, tmp_path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(32 << 20))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(6) as pool:
        results = pool.map(_fetch_in_child, [(str(hub_home), str(src), "")] * 6)
    paths = {p for p, _ in results}
    assert len(paths) == 1
    assert sum(n for _, n in results) == 1
    assert hubcore.file_sha256(next(iter(paths))) == hubcore.file_sha256(src)


def test_mirrors_apply_to_weight_urls(hub_home, tmp_path, monkeypatch) -> None:
    from hubcore.store.cache import get_cache

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "w.bin").write_bytes(b"mirrored weights")
    monkeypatch.setenv("HUBCORE_MIRRORS", f"https://weights.invalid/={mirror.as_uri()}/")
    path = hubcore.download("https://weights.invalid/w.bin")
    assert path.read_bytes() == b"mirrored weights"
    record = get_cache().read_url_record("https://weights.invalid/w.bin")
    assert record is not None  # keyed by the original URL, not the mirror
    assert record.name == "w.bin"


def test_malformed_mirror_setting(hub_home, tmp_path, monkeypatch) -> None:
    from hubcore.errors import ConfigError

    monkeypatch.setenv("HUBCORE_MIRRORS", "no-equals-sign")
    with pytest.raises(ConfigError, match="PREFIX=REPLACEMENT"):
        hubcore.download(str(tmp_path / "x"))
