"""`hubcore lock` records the repositories a locked repository's code loads (nested loads), and
a locked load pins them: the nested repository loads the recorded commit, not its branch.

The outer repository's entrypoint calls ``hubcore.load`` on another repository (the
framework-neutral form of ``torch.hub.load``; the torch plugin's tests cover that spelling);
both are served by the loopback GitHub stand-in behind a mirror of github.com.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import hubcore
from hubcore.cli import main
from hubcore.policy.lock import LockFile
from hubcore.repo.nested import nested_loads

from .gitserver import BareRepo, GitHostServer

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")

OUTER = '''
import hubcore as hc
from hubcore import load as hub_load

dependencies = []


def backbone():
    """Builds its backbone from another repository."""
    return hc.load("acme/inner", "f")


def pinned_tool():
    """A repository at a tag, loaded through an imported function."""
    return hub_load("acme/tools", "f", commit="v1")


def dynamic(name="inner"):
    """A repository named at run time: cannot be locked statically."""
    return hc.load("acme/" + name, "f")
'''


def inner(version: str) -> str:
    return f'dependencies = []\n\n\ndef f():\n    """The backbone."""\n    return "{version}"\n'


@pytest.fixture
def hosts(hub_home, tmp_path: Path, monkeypatch):
    server = GitHostServer(tmp_path / "srv" / "repos").start()
    BareRepo(server.root, "acme/outer").commit({"hubconf.py": OUTER}, "outer")
    inner_repo = BareRepo(server.root, "acme/inner")
    inner_repo.commit({"hubconf.py": inner("inner v1")}, "v1")
    tools = BareRepo(server.root, "acme/tools")
    tools.commit({"hubconf.py": inner("tools v1")}, "v1")
    tools.tag("v1")
    monkeypatch.setenv(
        "HUBCORE_MIRRORS",
        f"https://github.com/={server.url}/;https://codeload.github.com/={server.url}/",
    )
    monkeypatch.chdir(tmp_path)
    yield server, inner_repo
    server.stop()


def test_nested_loads_are_read_statically(tmp_path: Path) -> None:
    (tmp_path / "hubconf.py").write_text(OUTER)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "net.py").write_text(
        "import torch\nimport megengine.hub as mh\nfrom torch import hub as th\n\n"
        "def a():\n    return torch.hub.load('acme/a:dev', 'x', pretrained=True)\n\n"
        "def b():\n    return th.load('/some/folder', 'x', source='local')\n\n"
        "def c():\n    return mh.load('acme/c:v2', 'x')\n\n"
        "def d():\n    return mh.load('acme/d', 'x', git_host='git.example.org')\n"
    )
    found, gaps = nested_loads(tmp_path)
    assert [(n.text, dict(n.options), n.file) for n in found] == [
        ("acme/inner", {}, "hubconf.py"),
        ("acme/tools", {"commit": "v1"}, "hubconf.py"),
        ("acme/a:dev", {"source": "github"}, "models/net.py"),
        ("github:acme/c", {"commit": "v2"}, "models/net.py"),
    ]
    assert [(g.file, g.line) for g in gaps] == [("hubconf.py", 20), ("models/net.py", 15)]
    assert "named at run time" in gaps[0].reason
    assert "git.example.org" in gaps[1].reason


def test_lock_records_nested_repositories_and_pins_them(hosts, tmp_path, caplog) -> None:
    _, inner_repo = hosts
    first = inner_repo.commit({"hubconf.py": inner("inner v1")}, "still v1")
    with caplog.at_level(logging.WARNING):
        result = CliRunner().invoke(main, ["lock", "acme/outer", "-o", "outer.lock"])
    assert result.exit_code == 0, result.output
    assert "named at run time" in caplog.text  # the dynamic one is reported, not guessed
    lock = LockFile.read(tmp_path / "outer.lock")
    nested = {r.ref: r for r in lock.repos if r.loaded_by is not None}
    assert set(nested) == {"acme/inner", "acme/tools"}
    assert nested["acme/inner"].snapshot == first
    assert nested["acme/inner"].loaded_by == "acme/outer"
    assert nested["acme/inner"].repo_id == "github:https://github.com/acme/inner"
    assert nested["acme/tools"].revision == "v1"

    inner_repo.commit({"hubconf.py": inner("inner v2")}, "v2")  # the branch moves on
    locked = str(tmp_path / "outer.lock")
    # a locked load of the outer repository pins the nested one, with the lock it was given
    assert hubcore.load("acme/outer", "backbone", lock=locked) == "inner v1"
    assert hubcore.load("acme/outer", "pinned_tool", lock=locked) == "tools v1"
    # without the lock, the nested load follows its branch
    assert hubcore.load("acme/outer", "backbone", lock=False, force_reload=True) == "inner v2"


def test_a_locked_nested_repository_loads_offline(hosts, tmp_path, monkeypatch) -> None:
    server, _ = hosts
    result = CliRunner().invoke(main, ["lock", "acme/outer"])  # ./hub.lock
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("HUBCORE_OFFLINE", "1")
    server.reset_log()
    # `hubcore lock` fetched the nested repository too: nothing to fetch now
    assert hubcore.load("acme/outer", "backbone") == "inner v1"
    assert server.paths() == []


def test_a_nested_repository_named_in_the_lock_is_pinned(hosts, tmp_path) -> None:
    _, inner_repo = hosts
    result = CliRunner().invoke(main, ["lock", "acme/outer", "acme/inner", "-o", "both.lock"])
    assert result.exit_code == 0, result.output
    entries = LockFile.read(tmp_path / "both.lock").repos
    assert [r.ref for r in entries][:2] == ["acme/outer", "acme/inner"]
    inner_repo.commit({"hubconf.py": inner("inner v2")}, "v2")
    # the nested load runs under the lock the outer load was given (not ./hub.lock)
    assert hubcore.load("acme/outer", "backbone", lock=str(tmp_path / "both.lock")) == "inner v1"
    assert entries[1].loaded_by is None  # declared by the user, recorded once
