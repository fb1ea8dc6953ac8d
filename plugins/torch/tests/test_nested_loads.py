"""A repository's own ``torch.hub.load`` of another repository goes through hubcore: its
sources, cache, mirrors, offline mode and trust."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

import hubcore
from hubcore.errors import OfflineError, UntrustedRepoError
from tests.gitserver import BareRepo, GitHostServer

OUTER = '''
import torch.hub

dependencies = []


def backbone(grant=False):
    """Builds its backbone from another repository, as depth-estimation repos do."""
    if grant:
        return torch.hub.load("acme/inner", "f", trust_repo=True)
    return torch.hub.load("acme/inner", "f")


def names():
    """Lists the other repository."""
    return torch.hub.list("acme/inner")
'''

INNER = 'dependencies = []\n\n\ndef f():\n    """The backbone."""\n    return "inner backbone"\n'


@pytest.fixture
def hosts(hub_home, tmp_path: Path, monkeypatch):
    server = GitHostServer(tmp_path / "srv" / "repos").start()
    BareRepo(server.root, "acme/outer").commit({"hubconf.py": OUTER}, "outer")
    BareRepo(server.root, "acme/inner").commit({"hubconf.py": INNER}, "inner")
    monkeypatch.setenv(
        "HUBCORE_MIRRORS",
        f"https://github.com/={server.url}/;https://codeload.github.com/={server.url}/",
    )
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("HUBCORE_TRUST", "acme/outer")  # the nested one is not trusted
    yield server
    server.stop()


def test_a_nested_repository_needs_trust_of_its_own(hosts, monkeypatch) -> None:
    for grant in (False, True):  # repository code cannot grant trust for the user
        with pytest.raises(UntrustedRepoError, match="acme/inner") as info:
            hubcore.load("acme/outer", "backbone", grant=grant)
        assert "loaded by the code of" in str(info.value)
        assert "acme/outer" in str(info.value)
    monkeypatch.setenv("HUBCORE_TRUST", "acme/outer,acme/inner")
    assert hubcore.load("acme/outer", "backbone") == "inner backbone"
    assert hubcore.load("acme/outer", "names") == ["f"]


def test_a_nested_load_uses_hubcores_cache_not_torch_hubs(hosts, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HUBCORE_TRUST", "acme/outer,acme/inner")
    assert hubcore.load("acme/outer", "backbone") == "inner backbone"
    assert any("acme/inner" in path for path in hosts.paths())  # fetched through the mirror
    assert not (tmp_path / "torch-home").exists()  # torch.hub's own cache was never used
    identities = {snapshot.repo for snapshot in hubcore.store.cache.get_cache().snapshots()}
    assert any("inner" in repo for repo in identities)


def test_a_nested_load_offline_names_the_repository(hosts, monkeypatch) -> None:
    monkeypatch.setenv("HUBCORE_TRUST", "acme/outer,acme/inner")
    hubcore.list("acme/outer")  # only the outer repository is fetched ahead of time
    monkeypatch.setenv("HUBCORE_OFFLINE", "1")
    hosts.reset_log()
    with pytest.raises(OfflineError, match="acme/inner") as info:
        hubcore.load("acme/outer", "backbone")
    assert "loaded by the code of" in str(info.value)
    assert "hubcore list" in str(info.value)
    assert not hosts.paths()  # offline: not one request
