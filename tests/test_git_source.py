"""The generic git source over git daemon (git://) and smart HTTP (git http-backend)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import hubcore
from hubcore.errors import InvalidReferenceError, OfflineError, RefNotFoundError, RepoNotFoundError

from .gitserver import BareRepo, GitDaemon, GitHostServer

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")

HUBCONF = "from pkg.mod import which\n\ndependencies = []\n"


def files(version: str) -> dict[str, str]:
    return {
        "hubconf.py": HUBCONF,
        "pkg/__init__.py": "",
        "pkg/mod.py": f"def which():\n    '''The version.'''\n    return {version!r}\n",
        "run.sh": "#!/bin/sh\necho hi\n",
    }


@pytest.fixture
def repos(tmp_path: Path) -> Path:
    return tmp_path / "srv" / "repos"


@pytest.fixture
def daemon(repos: Path):
    repos.mkdir(parents=True, exist_ok=True)
    d = GitDaemon(repos).start()
    yield d
    d.stop()


@pytest.fixture
def http_server(repos: Path):
    srv = GitHostServer(repos).start()
    yield srv
    srv.stop()


@pytest.fixture
def models(repos: Path) -> BareRepo:
    repo = BareRepo(repos, "lab/models")
    repo.commit(files("one"), "one")
    return repo


@pytest.mark.parametrize("transport", ["daemon", "http"])
def test_load_over_each_transport(hub_home, request, models, transport) -> None:
    server = request.getfixturevalue("daemon" if transport == "daemon" else "http_server")
    base = server.url if transport == "daemon" else f"git+{server.url}"
    ref = f"{base}/lab/models.git@main"
    assert hubcore.list(ref) == ["which"]
    assert hubcore.help(ref, "which") == "The version."
    assert hubcore.load(ref, "which") == "one"
    snapshot = hubcore.open_repo(ref)
    assert (snapshot.root / "run.sh").stat().st_mode & 0o111


def test_pinned_commit_and_moved_branch_over_http(hub_home, http_server, models) -> None:
    first = models.commit(files("two"), "two")
    ref = f"git+{http_server.url}/lab/models.git"
    assert hubcore.load(f"{ref}@main", "which") == "two"
    models.commit(files("three"), "three")
    http_server.reset_log()
    assert hubcore.load(f"{ref}@{first}", "which") == "two"
    assert http_server.paths() == []  # pinned and cached: no request at all
    assert hubcore.load(f"{ref}@main", "which") == "three"


def test_branch_unchanged_costs_one_request(hub_home, http_server, models) -> None:
    ref = f"git+{http_server.url}/lab/models.git@main"
    hubcore.load(ref, "which")
    http_server.reset_log()
    hubcore.load(ref, "which")
    assert len(http_server.paths()) == 1
    assert http_server.paths()[0].endswith("/git-upload-pack")


def test_non_tip_commit_and_short_sha(hub_home, daemon, models) -> None:
    old = models.commit(files("old"), "old")
    models.commit(files("new"), "new")
    ref = f"{daemon.url}/lab/models.git"
    assert hubcore.load(f"{ref}@{old}", "which") == "old"
    snapshot = hubcore.open_repo(f"{ref}@{old[:9]}")
    assert snapshot.snapshot_id == old


def test_annotated_tag(hub_home, daemon, models) -> None:
    models.tag("v1")
    models.commit(files("after"), "after")
    assert hubcore.load(f"{daemon.url}/lab/models.git@v1", "which") == "one"


def test_offline(hub_home, daemon, models, monkeypatch) -> None:
    ref = f"{daemon.url}/lab/models.git@main"
    hubcore.load(ref, "which")
    daemon.stop()
    monkeypatch.setenv("HUBCORE_OFFLINE", "1")
    assert hubcore.load(ref, "which") == "one"
    with pytest.raises(OfflineError):
        hubcore.load(f"{daemon.url}/lab/models.git@other", "which")


def test_errors(hub_home, daemon, http_server, models) -> None:
    with pytest.raises(RefNotFoundError, match="no branch or tag 'nope'"):
        hubcore.list(f"{daemon.url}/lab/models.git@nope")
    with pytest.raises(RepoNotFoundError):
        hubcore.list(f"git+{http_server.url}/lab/missing.git")
    with pytest.raises(RefNotFoundError, match="was not found"):
        hubcore.list(f"{daemon.url}/lab/models.git@deadbeef1")
    with pytest.raises(InvalidReferenceError):
        hubcore.list("git+https://")
    with pytest.raises(InvalidReferenceError, match="names no revision"):
        hubcore.list("git://host/repo.git@")


def test_credentials_in_urls_never_surface(hub_home, http_server, models) -> None:
    ref = f"git+http://alice:t0psecret@{http_server.url.removeprefix('http://')}/lab/models.git"
    with pytest.raises(hubcore.HubError) as info:
        hubcore.load(f"{ref}@main", "missing_entry")
    assert "t0psecret" not in str(info.value)
    snapshot = hubcore.open_repo(f"{ref}@main")
    assert "t0psecret" not in repr(snapshot)
    assert "t0psecret" not in str(snapshot.ref)
    assert "t0psecret" not in str(snapshot.root)


def test_loading_and_cache_rm_take_one_lock_for_an_odd_url(
    hub_home, http_server, repos, cache_locks
) -> None:
    """A URL the cache rewrites into a safe folder name (a port, ``~``): the load that
    publishes the snapshot and ``hubcore cache rm`` lock the same key, so they cannot race."""
    from click.testing import CliRunner

    from hubcore.cli import main

    BareRepo(repos, "~alice/zoo").commit(files("odd"), "odd")
    taken = cache_locks
    ref = f"git+{http_server.url}/~alice/zoo.git"
    assert hubcore.load(ref, "which") == "odd"
    loaded = {key for key in taken if key[0] == "snapshot"}
    assert len(loaded) == 1
    assert "~alice" in next(iter(loaded))[2]  # the identity, not its folder's escaped name
    taken.clear()
    listed = CliRunner().invoke(main, ["cache", "ls"])
    (identity,) = [word for word in listed.output.split() if "zoo" in word]
    result = CliRunner().invoke(main, ["cache", "rm", identity])
    assert result.exit_code == 0, result.output
    assert {key for key in taken if key[0] == "snapshot"} == loaded
