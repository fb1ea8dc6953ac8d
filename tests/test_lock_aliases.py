"""``hubcore lock`` sees weights however ``@pretrained`` is spelled, or refuses to lock.

A spelling that discovery missed used to lock ``weights = []``, and a locked load then took
replaced bytes.
"""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

import hubcore
from hubcore.cli import main
from hubcore.errors import IntegrityError
from hubcore.policy.lock import LockFile

from .fileserver import FileServer
from .gitserver import BareRepo, GitHostServer
from .test_lock import weights_bytes

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")
pytest.importorskip("hubcore_numpy_example")

MODEL = 'NumpyModel({"weight": (3, 4), "bias": (3,)})'

# How each hubconf declares the weights at @url@ of the entrypoint `linear`.
LOCKABLE = {
    "assigned_alias": "P = hubcore.pretrained\n@P(@url@)\ndef linear():\n    return MODEL\n",
    "decorator_variable": "D = hubcore.pretrained(@url@)\n@D\ndef linear():\n    return MODEL\n",
    "call_form": (
        "def _linear():\n    return MODEL\nlinear = hubcore.pretrained(@url@)(_linear)\n"
    ),
    "dict_constant": (
        "BY_NAME = {'main': @url@}\n@hubcore.pretrained(BY_NAME)\ndef linear():\n    return MODEL\n"
    ),
}
HEADER = "import hubcore\nfrom hubcore_numpy_example import NumpyModel\ndependencies = []\n"


@pytest.fixture
def served(hub_home, tmp_path, monkeypatch):
    git = GitHostServer(tmp_path / "srv" / "repos").start()
    files = FileServer(tmp_path / "weights").start()
    monkeypatch.chdir(tmp_path)
    yield git, files
    git.stop()
    files.stop()


@pytest.mark.parametrize("form", list(LOCKABLE))
def test_every_spelling_is_locked(served, tmp_path, monkeypatch, form: str) -> None:
    git, files = served
    url = files.add("linear.safetensors", weights_bytes(1))
    hubconf = HEADER + LOCKABLE[form].replace("@url@", repr(url)).replace("MODEL", MODEL)
    BareRepo(git.root, "acme/hub").commit({"hubconf.py": hubconf})
    result = CliRunner().invoke(main, ["lock", "acme/hub:main", "--host", git.url])
    assert result.exit_code == 0, result.output
    (locked,) = LockFile.read(tmp_path / "hub.lock").repos
    assert [w.url for w in locked.weights] == [url]
    files.add("linear.safetensors", weights_bytes(2))  # replaced after locking
    monkeypatch.setenv("HUBCORE_HOME", str(tmp_path / "other"))
    with pytest.raises(IntegrityError):
        hubcore.load("acme/hub:main", "linear", host=git.url, pretrained=True, trust_repo=True)


def test_a_spelling_discovery_cannot_follow_is_not_locked(served, tmp_path) -> None:
    git, files = served
    url = files.add("linear.safetensors", weights_bytes(1))
    hubconf = (
        HEADER
        + "def with_weights(url):\n    return hubcore.pretrained(url)\n"
        + f"@with_weights({url!r})\ndef linear():\n    return {MODEL}\n"
    )
    BareRepo(git.root, "acme/hub").commit({"hubconf.py": hubconf})
    result = CliRunner().invoke(main, ["lock", "acme/hub:main", "--host", git.url])
    assert result.exit_code != 0
    assert "not literal" in result.output
    assert not (tmp_path / "hub.lock").exists()
