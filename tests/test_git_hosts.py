"""GitHub and GitLab sources against a loopback stand-in (git http-backend + git archive)."""

from __future__ import annotations

import multiprocessing
import shutil
from pathlib import Path

import pytest

import hubcore
from hubcore.errors import (
    ArchiveError,
    AuthenticationError,
    DownloadError,
    OfflineError,
    RefNotFoundError,
    RepoNotFoundError,
)

from .gitserver import BareRepo, GitHostServer

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")

HUBCONF = """
dependencies = []

def version():
    '''Which version of the hub this is.'''
    from utils import VERSION
    return VERSION
"""


def hub_files(version: str) -> dict[str, str]:
    return {"hubconf.py": HUBCONF, "utils.py": f"VERSION = {version!r}\n"}


@pytest.fixture
def server(tmp_path: Path):
    srv = GitHostServer(tmp_path / "srv" / "repos").start()
    yield srv
    srv.stop()


@pytest.fixture
def acme(server: GitHostServer) -> BareRepo:
    repo = BareRepo(server.root, "acme/hub")
    repo.commit(hub_files("v1"), "first")
    return repo


def refs_requests(server: GitHostServer) -> list[str]:
    return [p for p in server.paths() if "/info/refs" in p]


def archive_requests(server: GitHostServer) -> list[str]:
    return [p for p in server.paths() if "zip" in p]


def test_github_list_help_load(hub_home, server, acme) -> None:
    assert hubcore.list("acme/hub", host=server.url) == ["version"]
    assert hubcore.help("github:acme/hub@main", "version", host=server.url).startswith("Which")
    assert hubcore.load("acme/hub:main", "version", host=server.url) == "v1"


def test_branch_resolution_costs_one_request_until_it_moves(hub_home, server, acme) -> None:
    hubcore.load("acme/hub:main", "version", host=server.url)
    server.reset_log()
    assert hubcore.load("acme/hub:main", "version", host=server.url) == "v1"
    assert server.paths() == refs_requests(server)
    assert len(server.paths()) == 1

    acme.commit(hub_files("v2"), "second")
    server.reset_log()
    assert hubcore.load("acme/hub:main", "version", host=server.url) == "v2"
    assert len(refs_requests(server)) == 1
    assert len(archive_requests(server)) == 1


def test_pinned_cached_commit_makes_no_request(hub_home, server, acme) -> None:
    sha = acme.commit(hub_files("pinned"), "pin")
    acme.commit(hub_files("later"), "later")
    assert hubcore.load(f"acme/hub:{sha}", "version", host=server.url) == "pinned"
    assert refs_requests(server) == []  # a full sha is not resolved
    server.reset_log()
    assert hubcore.load("acme/hub", "version", commit=sha, host=server.url) == "pinned"
    assert server.paths() == []


def test_tags_and_short_shas(hub_home, server, acme) -> None:
    acme.tag("v1.0")
    sha = acme.commit(hub_files("two"), "two")
    assert hubcore.load("acme/hub:v1.0", "version", host=server.url) == "v1"
    server.reset_log()
    snapshot = hubcore.open_repo(f"acme/hub:{sha[:10]}", host=server.url)
    assert snapshot.snapshot_id == sha
    assert refs_requests(server) != []  # the advertisement cannot resolve short shas...
    assert len(archive_requests(server)) == 1  # ...so the archive tells the full commit


def test_default_branch_is_remote_head(hub_home, server, acme) -> None:
    acme.commit(hub_files("other"), "on a branch", branch="dev")
    assert hubcore.load("acme/hub", "version", host=server.url) == "v1"
    assert hubcore.load("acme/hub:dev", "version", host=server.url) == "other"


def test_offline_uses_recorded_resolution(hub_home, server, acme, monkeypatch) -> None:
    hubcore.load("acme/hub:main", "version", host=server.url)
    acme.commit(hub_files("v2"), "moved meanwhile")
    server.reset_log()
    monkeypatch.setenv("HUBCORE_OFFLINE", "1")
    assert hubcore.load("acme/hub:main", "version", host=server.url) == "v1"
    assert server.paths() == []
    with pytest.raises(OfflineError, match="has not been fetched"):
        hubcore.load("acme/hub:dev", "version", host=server.url)


def test_force_reload_fetches_again(hub_home, server, acme) -> None:
    snap = hubcore.open_repo("acme/hub:main", host=server.url)
    (snap.root / "stray.txt").write_text("local damage")
    server.reset_log()
    again = hubcore.open_repo("acme/hub:main", host=server.url, force_reload=True)
    assert again.root == snap.root
    assert len(archive_requests(server)) == 1
    assert not (again.root / "stray.txt").exists()


def test_gitlab_nested_groups(hub_home, server) -> None:
    repo = BareRepo(server.root, "group/sub/hub")
    repo.commit(hub_files("gl"), "first")
    assert hubcore.load("gitlab:group/sub/hub@main", "version", host=server.url) == "gl"
    assert any(
        "/api/v4/projects/group%2Fsub%2Fhub/repository/archive.zip" in p for p in server.paths()
    )


def test_unknown_repo_and_ref(hub_home, server, acme) -> None:
    with pytest.raises(RepoNotFoundError, match="not found"):
        hubcore.list("acme/missing", host=server.url)
    with pytest.raises(RefNotFoundError, match=r"no branch or tag 'nope' \(branches: main\)"):
        hubcore.list("acme/hub:nope", host=server.url)


def test_unreachable_host(hub_home) -> None:
    with pytest.raises(DownloadError, match="cannot fetch"):
        hubcore.list("acme/hub", host="http://127.0.0.1:9")


def test_private_repo_needs_token(hub_home, server, acme, monkeypatch) -> None:
    server.tokens["acme/hub"] = "s3cr3t-token"
    with pytest.raises(AuthenticationError, match="HUBCORE_GITHUB_TOKEN") as info:
        hubcore.list("acme/hub", host=server.url)
    assert "s3cr3t" not in str(info.value)
    assert hubcore.load("acme/hub", "version", host=server.url, token="s3cr3t-token") == "v1"
    monkeypatch.setenv("HUBCORE_GITHUB_TOKEN", "s3cr3t-token")
    assert hubcore.load("acme/hub", "version", host=server.url, force_reload=True) == "v1"
    for path in hub_home.rglob("*"):
        assert "s3cr3t" not in str(path)
        if path.is_file() and path.suffix == ".json":
            assert "s3cr3t" not in path.read_text()


def test_gitlab_token(hub_home, server, monkeypatch) -> None:
    repo = BareRepo(server.root, "team/private")
    repo.commit(hub_files("gl"), "first")
    server.tokens["team/private"] = "gl-token"
    with pytest.raises(AuthenticationError, match="HUBCORE_GITLAB_TOKEN"):
        hubcore.list("gitlab:team/private", host=server.url)
    monkeypatch.setenv("HUBCORE_GITLAB_TOKEN", "gl-token")
    assert hubcore.load("gitlab:team/private", "version", host=server.url) == "gl"


def test_token_not_forwarded_to_another_host(hub_home, server, acme, tmp_path) -> None:
    other = GitHostServer(server.root).start()
    try:
        server.redirect_archives_to = other.url.replace("127.0.0.1", "localhost")
        assert hubcore.load("acme/hub", "version", host=server.url, token="tok") == "v1"
        assert other.log, "the archive should have come from the other host"
        for _, _, headers in other.log:
            assert "Authorization" not in headers
            assert "PRIVATE-TOKEN" not in headers
        assert any("Authorization" in h for _, _, h in server.log)
    finally:
        other.stop()


def test_server_stopping_mid_archive(hub_home, server, acme) -> None:
    server.truncate_archives = True
    with pytest.raises((DownloadError, ArchiveError)):
        hubcore.list("acme/hub", host=server.url)
    assert not any((hub_home / "repos").rglob("hubconf.py"))
    server.truncate_archives = False
    assert hubcore.list("acme/hub", host=server.url) == ["version"]


def test_mirrors_rewrite_repository_urls(hub_home, server, acme, monkeypatch) -> None:
    monkeypatch.setenv(
        "HUBCORE_MIRRORS",
        f"https://github.com/={server.url}/;https://codeload.github.com/={server.url}/",
    )
    assert hubcore.load("acme/hub", "version") == "v1"  # github.com, through the mirror
    assert any("/acme/hub/zip/" in p for p in server.paths())


def test_mirrors_from_config_file(hub_home, server, acme) -> None:
    (hub_home / "config.toml").write_text(
        f'[mirrors]\n"https://github.com/" = "{server.url}/"\n'
        f'"https://codeload.github.com/" = "{server.url}/"\n'
    )
    assert hubcore.list("acme/hub") == ["version"]


def _open_in_child(args: tuple[str, str]) -> str:
    import os

    home, url = args
    os.environ["HUBCORE_HOME"] = home
    os.environ["HUBCORE_DISABLE_PROGRESS"] = "1"
    import hubcore as hc

    return str(hc.open_repo("acme/hub:main", host=url).root)


def test_concurrent_processes_fetch_one_archive(hub_home, server, acme) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        roots = pool.map(_open_in_child, [(str(hub_home), server.url)] * 4)
    assert len(set(roots)) == 1
    assert (Path(roots[0]) / "hubconf.py").is_file()
    assert len(archive_requests(server)) == 1


def test_cli_with_host(hub_home, server, acme) -> None:
    from click.testing import CliRunner

    from hubcore.cli import main

    result = CliRunner().invoke(main, ["list", "acme/hub", "--host", server.url])
    assert result.exit_code == 0, result.output
    assert result.output.split() == ["version"]
    result = CliRunner().invoke(main, ["load", "acme/hub", "version", "--host", server.url])
    assert "loaded: builtins.str" in result.output
