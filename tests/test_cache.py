"""Cache paths stay inside the hub home whatever a source or URL calls things."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hubcore.store.cache import Cache, UrlRecord, folder_name, safe_component

ROOT = Path("/hub-home")


@given(st.text())
def test_safe_component_is_one_harmless_name(text: str) -> None:
    name = safe_component(text)
    assert name
    for forbidden in ("/", "\\", "\0"):
        assert forbidden not in name
    assert name not in (".", "..")
    assert len(name) <= 120


@given(st.text(), st.text())
def test_folder_names_are_harmless_and_never_shared(a: str, b: str) -> None:
    for name in (folder_name(a), folder_name(b)):
        assert name
        assert name not in (".", "..", "snapshots", "manifests", "refs.json", "repo.json")
        assert not name.startswith(".")
        assert all(c.isascii() and (c.isalnum() or c in "._-%") for c in name)
        assert len(name) <= 120
    assert (folder_name(a) == folder_name(b)) == (a == b)


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


def _fill(text: str):
    def fill(folder: Path) -> None:
        (folder / "hubconf.py").write_text(text)

    return fill


def test_listing_removing_and_pruning(tmp_path: Path) -> None:
    import os

    cache = Cache(tmp_path)
    old = cache.publish_tree("github", "h/o/r", "a" * 40, _fill("old"))
    cache.publish_tree("github", "h/o/r", "b" * 40, _fill("new"))
    cache.write_ref("github", "h/o/r", "main", "b" * 40)
    src = tmp_path / "w.bin"
    src.write_bytes(b"w" * 10)
    from hubcore.store.transfer import fetch

    kept = fetch(str(src), cache=cache, progress=False)
    orphan = cache.blob_path("c" * 64)
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"orphan")

    snaps = {s.snapshot_id: s for s in cache.snapshots()}
    assert snaps["b" * 40].refs == ("main",)
    assert snaps["a" * 40].refs == ()
    assert snaps["a" * 40].size == 3
    blobs = {b.sha256: b for b in cache.blobs()}
    assert blobs[kept.sha256].urls == (src.absolute().as_uri(),)
    assert blobs["c" * 64].urls == ()

    week_ago = 7 * 86400
    past = os.stat(old).st_mtime - week_ago
    os.utime(old, (past, past))
    os.utime(orphan, (past, past))
    count, freed = cache.prune(older_than=86400)
    assert count == 2
    assert freed == 3 + 6
    assert not old.exists()
    assert not orphan.exists()
    assert kept.path.exists()
    assert cache.snapshot_dir("github", "h/o/r", "b" * 40).exists()

    cache.remove_snapshot(next(s for s in cache.snapshots() if s.snapshot_id == "b" * 40))
    assert cache.read_refs("github", "h/o/r") == {}
    cache.remove_blob(next(iter(cache.blobs())))
    assert cache.blobs() == []
    assert cache.read_url_record(src.absolute().as_uri()) is None


def test_cache_cli(hub_home, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from hubcore.cli import main
    from hubcore.store.transfer import fetch

    src = tmp_path / "model.bin"
    src.write_bytes(b"m" * 2048)
    blob = fetch(str(src), progress=False)
    Cache(hub_home).publish_tree("git", "host/x", "d" * 40, _fill("x"))
    runner = CliRunner()
    out = runner.invoke(main, ["cache", "ls"]).output
    assert "git:host/x  dddddddddddddddd" in out
    assert f"{blob.sha256[:16]}  2.0 KiB  file://" in out
    result = runner.invoke(main, ["cache", "rm", "abc"])
    assert result.exit_code == 1
    assert "too short" in result.output
    result = runner.invoke(main, ["cache", "rm", blob.sha256[:10], "git:host/x"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(main, ["cache", "ls"]).output.count("\n  ") == 0
    assert "pruned 0 item(s)" in runner.invoke(main, ["cache", "prune"]).output


def test_cache_ls_hides_credentials_in_urls(hub_home) -> None:
    from click.testing import CliRunner

    from hubcore.cli import main

    cache = Cache(hub_home)
    sha = "e" * 64
    cache.blob_path(sha).parent.mkdir(parents=True)
    cache.blob_path(sha).write_bytes(b"x")
    cache.write_url_record(UrlRecord("https://bob:hunter2@host/w.pth?token=abc", sha, 1, "w.pth"))
    out = CliRunner().invoke(main, ["cache", "ls"]).output
    assert "https://host/w.pth" in out
    assert "hunter2" not in out
    assert "abc" not in out


# -- identities, odd entries and removal patterns ----------------------------------------------

ODD_KEY = "git.example.org:8443/~alice/zoo.git"


def test_keys_that_sanitize_alike_get_their_own_folders(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    first = cache.publish_tree("git", ODD_KEY, "a" * 40, _fill("tilde"))
    second = cache.publish_tree("git", "git.example.org_8443/alice/zoo.git", "a" * 40, _fill("x"))
    assert first != second
    assert (first / "hubconf.py").read_text() == "tilde"
    cache.write_ref("git", ODD_KEY, "main", "a" * 40)
    assert cache.read_refs("git", "git.example.org_8443/alice/zoo.git") == {}
    assert {(s.source, s.repo) for s in cache.snapshots()} == {
        ("git", ODD_KEY),
        ("git", "git.example.org_8443/alice/zoo.git"),
    }


def test_reserved_names_in_keys_cannot_reach_another_repository(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    cache.publish_tree("git", "h/a", "1" * 40, _fill("a"))
    inner = cache.publish_tree("git", "h/a/snapshots/x", "2" * 40, _fill("inner"))
    assert not inner.is_relative_to(cache.repo_dir("git", "h/a") / "snapshots")
    assert sorted((s.repo, s.snapshot_id[:1]) for s in cache.snapshots()) == [
        ("h/a", "1"),
        ("h/a/snapshots/x", "2"),
    ]


def test_cache_rm_takes_the_lock_loading_takes(hub_home, cache_locks) -> None:
    from click.testing import CliRunner

    from hubcore.cli import main

    Cache(hub_home).publish_tree("git", ODD_KEY, "b" * 40, _fill("x"))
    taken = cache_locks
    result = CliRunner().invoke(main, ["cache", "rm", f"git:{ODD_KEY}"])
    assert result.exit_code == 0, result.output
    assert ("snapshot", "git", ODD_KEY, "b" * 40) in taken
    assert Cache(hub_home).snapshots() == []


def test_cache_rm_matches_whole_identities(hub_home) -> None:
    from click.testing import CliRunner

    from hubcore.cli import main

    cache = Cache(hub_home)
    cache.publish_tree("url", "127.0.0.1:8000/files/one.zip", "1" * 64, _fill("1"))
    cache.publish_tree("url", "127.0.0.1:8000/files/myone.zip", "2" * 64, _fill("2"))
    cache.publish_tree("url", "other.org/one.zip", "3" * 64, _fill("3"))
    runner = CliRunner()
    for empty in ("url:", "url:/", ":"):
        result = runner.invoke(main, ["cache", "rm", empty])
        assert result.exit_code == 1, result.output
        assert "names no repository" in result.output
    result = runner.invoke(main, ["cache", "rm", "url:one.zip"])
    assert result.exit_code == 1
    assert "ambiguous" in result.output
    assert "127.0.0.1:8000/files/one.zip" in result.output
    assert "other.org/one.zip" in result.output
    assert len(cache.snapshots()) == 3
    result = runner.invoke(main, ["cache", "rm", "url:files/one.zip"])
    assert result.exit_code == 0, result.output
    assert sorted(s.repo for s in cache.snapshots()) == [
        "127.0.0.1:8000/files/myone.zip",
        "other.org/one.zip",
    ]


def test_odd_entries_are_skipped_with_a_warning(hub_home, caplog) -> None:
    from click.testing import CliRunner

    from hubcore.cli import main

    cache = Cache(hub_home)
    good = cache.publish_tree("github", "github.com/o/r", "c" * 40, _fill("x"))
    cache.write_ref("github", "github.com/o/r", "main", "c" * 40)  # kept by prune
    cache.blob_path("d" * 64).mkdir(parents=True)  # a folder where a blob should be
    (cache.root / "repos" / "github" / "h").mkdir(parents=True)
    (cache.root / "repos" / "github" / "h" / "snapshots").write_text("not a folder")
    (good.parent / "stray-file").write_text("not a snapshot")
    runner = CliRunner()
    listed = runner.invoke(main, ["cache", "ls"])
    assert listed.exit_code == 0, listed.output
    assert "github:github.com/o/r  cccccccccccccccc" in listed.output
    assert "weights (0 files)" in listed.output
    assert "stray-file" in caplog.text
    assert "snapshots" in caplog.text
    assert "d" * 64 in caplog.text
    pruned = runner.invoke(main, ["cache", "prune", "--older-than", "0"])
    assert pruned.exit_code == 0, pruned.output
    result = runner.invoke(main, ["cache", "rm", "cccccccc"])
    assert result.exit_code == 0, result.output
    assert not good.exists()


def test_unrecorded_legacy_folders_are_listed_and_removable(hub_home) -> None:
    from click.testing import CliRunner

    from hubcore.cli import main

    legacy = hub_home / "repos" / "git" / "host_8443" / "zoo" / "snapshots" / ("e" * 40)
    legacy.mkdir(parents=True)
    (legacy / "hubconf.py").write_text("x")
    (snap,) = Cache(hub_home).snapshots()
    assert (snap.repo, snap.recorded) == ("host_8443/zoo", False)
    runner = CliRunner()
    assert "git:host_8443/zoo  eeeeeeeeeeeeeeee" in runner.invoke(main, ["cache", "ls"]).output
    result = runner.invoke(main, ["cache", "rm", "git:host_8443/zoo"])
    assert result.exit_code == 0, result.output
    assert not legacy.exists()
