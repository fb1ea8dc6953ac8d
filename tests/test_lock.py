"""Lock files: the recorded commit and weight hashes are what later loads use and verify."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

import hubcore
from hubcore.cli import main
from hubcore.errors import ConfigError, IntegrityError, LockMismatchError
from hubcore.lock import LockFile
from hubcore.testing.fileserver import FileServer

from .gitserver import BareRepo, GitHostServer

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")
pytest.importorskip("hubcore_numpy_example")


def hub_files(weights_url: str, version: str) -> dict[str, str]:
    return {
        "hubconf.py": f"""
from hubcore import pretrained
from hubcore_numpy_example import NumpyModel

dependencies = []


@pretrained({weights_url!r})
def linear():
    '''Version {version}.'''
    return NumpyModel({{"weight": (3, 4), "bias": (3,)}})


def version():
    return {version!r}
"""
    }


def weights_bytes(seed: int) -> bytes:
    import numpy as np
    from safetensors.numpy import save

    rng = np.random.default_rng(seed)
    return save(
        {
            "weight": rng.standard_normal((3, 4)).astype("float32"),
            "bias": rng.standard_normal(3).astype("float32"),
        }
    )


@pytest.fixture
def setup(hub_home, tmp_path, monkeypatch):
    git = GitHostServer(tmp_path / "srv" / "repos").start()
    files = FileServer(tmp_path / "weights").start()
    weights_url = files.add("linear.safetensors", weights_bytes(1))
    repo = BareRepo(git.root, "acme/hub")
    first = repo.commit(hub_files(weights_url, "v1"), "one")
    monkeypatch.chdir(tmp_path)
    yield git, files, repo, weights_url, first
    git.stop()
    files.stop()


def test_lock_then_move_branch_and_replace_weights(setup, tmp_path, monkeypatch) -> None:
    git, files, repo, weights_url, first = setup
    result = CliRunner().invoke(main, ["lock", "acme/hub:main", "--host", git.url])
    assert result.exit_code == 0, result.output
    lock = LockFile.read(tmp_path / "hub.lock")
    (locked,) = (r for r in lock.repos if r.ref == "acme/hub:main")
    assert locked.snapshot == first
    assert [w.url for w in locked.weights] == [weights_url]
    assert locked.weights[0].sha256 == hubcore.file_sha256(
        tmp_path / "weights" / "linear.safetensors"
    )

    # the world moves on: a new commit on main, and other bytes behind the same URL
    repo.commit(hub_files(weights_url, "v2"), "two")
    files.add("linear.safetensors", weights_bytes(2))

    # with ./hub.lock present: exactly the locked commit...
    assert hubcore.load("acme/hub:main", "version", host=git.url) == "v1"
    # ...and on a machine whose cache does not hold the old weights, a clear failure
    monkeypatch.setenv("HUBCORE_HOME", str(tmp_path / "other-machine"))
    with pytest.raises(IntegrityError, match="recorded in the lock file"):
        hubcore.load("acme/hub:main", "linear", host=git.url, pretrained=True)
    # without the lock: the new commit and the new weights
    assert hubcore.load("acme/hub:main", "version", host=git.url, lock=False) == "v2"
    model = hubcore.load("acme/hub:main", "linear", host=git.url, pretrained=True, lock=False)
    assert model.params["bias"].shape == (3,)


def test_lock_path_from_environment_and_unlocked_refs(setup, tmp_path, monkeypatch) -> None:
    git, _, repo, _, _ = setup
    locked = hubcore.api.lock_references(["acme/hub:main"], host=git.url)
    from hubcore.lock import write_lock

    write_lock(tmp_path / "elsewhere.lock", locked)
    monkeypatch.setenv("HUBCORE_LOCK", str(tmp_path / "elsewhere.lock"))
    repo.commit(hub_files("http://unused.invalid/w.safetensors", "v3"), "three")
    assert hubcore.load("acme/hub:main", "version", host=git.url) == "v1"
    assert hubcore.load("acme/hub", "version", host=git.url) == "v3"  # not in the lock


def test_config_file_and_errors(setup, tmp_path) -> None:
    git, *_ = setup
    (tmp_path / "hubcore.toml").write_text('repos = ["acme/hub:main"]\n')
    result = CliRunner().invoke(
        main, ["lock", "-c", str(tmp_path / "hubcore.toml"), "-o", "x.lock", "--host", git.url]
    )
    assert result.exit_code == 0, result.output
    assert "wrote x.lock" in result.output
    (tmp_path / "bad.toml").write_text("repos = 3\n")
    bad = CliRunner().invoke(main, ["lock", "-c", str(tmp_path / "bad.toml")])
    assert bad.exit_code == 1
    assert "repos = [" in bad.output
    (tmp_path / "broken.lock").write_text("[[repo]]\nref = 1\n")
    with pytest.raises(ConfigError, match="not a hubcore lock file"):
        LockFile.read(tmp_path / "broken.lock")


def test_local_folders_cannot_be_locked(setup, make_hub_repo) -> None:
    repo = make_hub_repo({"hubconf.py": "def f():\n    pass\n"})
    with pytest.raises(LockMismatchError, match="live local folder"):
        hubcore.api.lock_references([str(repo)])


def test_locked_snapshot_that_cannot_be_had(setup, tmp_path) -> None:
    git, *_ = setup
    (tmp_path / "hub.lock").write_text(
        '[[repo]]\nref = "acme/hub:main"\nsnapshot = "' + "0" * 40 + '"\n'
    )
    with pytest.raises(hubcore.HubError):
        hubcore.load("acme/hub:main", "version", host=git.url)
