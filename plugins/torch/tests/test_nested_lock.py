"""A locked load pins the repositories an entrypoint loads with ``torch.hub.load``:
``hubcore lock`` finds them in the code (without running it) and records them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("torch")

import hubcore
from hubcore.cli import main
from hubcore.policy.lock import LockFile
from tests.gitserver import BareRepo, GitHostServer

OUTER = '''
import torch.hub

dependencies = []


def backbone():
    """Builds its backbone from another repository, as depth-estimation repos do."""
    return torch.hub.load("acme/inner", "f")
'''


def inner(version: str) -> str:
    return f'dependencies = []\n\n\ndef f():\n    """The backbone."""\n    return "{version}"\n'


@pytest.fixture
def hosts(hub_home, tmp_path: Path, monkeypatch):
    server = GitHostServer(tmp_path / "srv" / "repos").start()
    BareRepo(server.root, "acme/outer").commit({"hubconf.py": OUTER}, "outer")
    repo = BareRepo(server.root, "acme/inner")
    repo.commit({"hubconf.py": inner("inner v1")}, "v1")
    monkeypatch.setenv(
        "HUBCORE_MIRRORS",
        f"https://github.com/={server.url}/;https://codeload.github.com/={server.url}/",
    )
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.chdir(tmp_path)
    yield server, repo
    server.stop()


def test_a_torch_hub_load_inside_an_entrypoint_is_locked_and_pinned(hosts, tmp_path) -> None:
    _, repo = hosts
    result = CliRunner().invoke(main, ["lock", "acme/outer", "-o", "pinned.lock"])
    assert result.exit_code == 0, result.output
    (nested,) = [r for r in LockFile.read(tmp_path / "pinned.lock").repos if r.loaded_by]
    assert nested.ref == "acme/inner"
    assert nested.loaded_by == "acme/outer"
    repo.commit({"hubconf.py": inner("inner v2")}, "v2")
    lock = str(tmp_path / "pinned.lock")
    assert hubcore.load("acme/outer", "backbone", lock=lock) == "inner v1"
    assert not (tmp_path / "torch-home").exists()
