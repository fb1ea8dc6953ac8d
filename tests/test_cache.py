"""Cache paths stay inside the hub home whatever a source or URL calls things."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubcore.cache import Cache, UrlRecord, safe_component

ROOT = Path("/hub-home")


@given(st.text())
def test_safe_component_is_one_harmless_name(text: str) -> None:
    name = safe_component(text)
    assert name
    for forbidden in ("/", "\\", "\0"):
        assert forbidden not in name
    assert name not in (".", "..")
    assert len(name) <= 120


@given(st.text(), st.text(), st.text())
def test_snapshot_dirs_stay_under_root(source: str, repo: str, snapshot: str) -> None:
    path = Cache(ROOT).snapshot_dir(source, repo, snapshot)
    assert Path(*path.parts).resolve().is_relative_to(ROOT.resolve())
    assert ".." not in path.parts


def test_url_record_round_trip(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    record = UrlRecord("file:///x.pth", "a" * 64, 10, "x.pth", "1:10")
    cache.write_url_record(record)
    assert cache.read_url_record("file:///x.pth") == record
    assert cache.read_url_record("file:///other.pth") is None


def test_corrupt_url_record_is_ignored(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.write_url_record(UrlRecord("u", "a" * 64, 1, "n"))
    (path,) = (tmp_path / "urls").iterdir()
    path.write_text("{not json")
    assert cache.read_url_record("u") is None


def test_publish_tree_is_atomic_and_runs_fill_once(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    calls = []

    def fill(folder: Path) -> None:
        calls.append(folder)
        (folder / "hubconf.py").write_text("x = 1\n")

    first = cache.publish_tree("git", "org/repo", "abc123", fill)
    second = cache.publish_tree("git", "org/repo", "abc123", fill)
    assert first == second
    assert (first / "hubconf.py").read_text() == "x = 1\n"
    assert len(calls) == 1
    assert not any((tmp_path / "tmp").iterdir())


def test_failed_fill_leaves_nothing(tmp_path: Path) -> None:
    cache = Cache(tmp_path)

    def fill(folder: Path) -> None:
        (folder / "partial").write_text("x")
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        cache.publish_tree("git", "org/repo", "abc", fill)
    assert not cache.snapshot_dir("git", "org/repo", "abc").exists()
    assert not any((tmp_path / "tmp").iterdir())


def test_refs_record(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.write_ref("github", "o/r", "main", "sha1")
    cache.write_ref("github", "o/r", "v1", "sha2")
    assert cache.read_refs("github", "o/r") == {"main": "sha1", "v1": "sha2"}
