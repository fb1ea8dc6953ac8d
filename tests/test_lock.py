"""Lock files: the recorded commit and weight hashes are what later loads use and verify."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

import hubcore
from hubcore.cli import main
from hubcore.errors import ConfigError, IntegrityError, LockMismatchError
from hubcore.policy.lock import LockFile

from .fileserver import FileServer
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
    from hubcore.policy.lock import write_lock

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
    from hubcore.sources import identify

    identity, _ = identify("acme/hub:main", host=git.url)
    (tmp_path / "hub.lock").write_text(
        f'[[repo]]\nref = "acme/hub:main"\nrepo_id = "{identity}"\nrevision = "main"\n'
        'snapshot = "' + "0" * 40 + '"\n'
    )
    with pytest.raises(hubcore.HubError):
        hubcore.load("acme/hub:main", "version", host=git.url)


def test_an_explicit_commit_wins_over_the_lock(setup, tmp_path) -> None:
    git, _, repo, weights_url, first = setup
    second = repo.commit(hub_files(weights_url, "v2"), "two")
    assert CliRunner().invoke(main, ["lock", "acme/hub", "--host", git.url]).exit_code == 0
    assert hubcore.load("acme/hub", "version", host=git.url) == "v2"  # the locked commit
    # a pin in the reference or as commit= is honoured exactly, never replaced by the lock
    assert hubcore.load(f"github:acme/hub@{first}", "version", host=git.url) == "v1"
    assert hubcore.load(f"acme/hub:{first[:10]}", "version", host=git.url) == "v1"
    assert hubcore.load("acme/hub", "version", host=git.url, commit=first) == "v1"
    assert hubcore.load("acme/hub", "version", host=git.url, revision=second) == "v2"


def test_one_repository_is_one_lock_entry_however_it_is_spelled(setup, tmp_path) -> None:
    git, _, repo, _, _first = setup
    assert CliRunner().invoke(main, ["lock", "acme/hub:main", "--host", git.url]).exit_code == 0
    repo.commit(hub_files("http://unused.invalid/w.safetensors", "v2"), "two")
    for spelling in ("acme/hub:main", "github:acme/hub@main", "github:acme/hub:main"):
        assert hubcore.load(spelling, "version", host=git.url) == "v1", spelling


def test_declared_and_locked_hashes_must_both_hold(setup, tmp_path) -> None:
    git, files, repo, weights_url, _ = setup
    declared = hubcore.file_sha256(tmp_path / "weights" / "linear.safetensors")
    other = files.add("other.safetensors", weights_bytes(7))
    other_sha = hubcore.file_sha256(tmp_path / "weights" / "other.safetensors")
    text = hub_files(weights_url, "v3")["hubconf.py"].replace(
        f"@pretrained({weights_url!r})", f"@pretrained({weights_url!r}, sha256={declared!r})"
    )
    repo.commit({"hubconf.py": text}, "declared")
    assert CliRunner().invoke(main, ["lock", "acme/hub:main", "--host", git.url]).exit_code == 0
    lock_path = tmp_path / "hub.lock"
    # an attacker edits the lock: the other file's hash, and the URL served with other bytes
    lock_path.write_text(lock_path.read_text().replace(declared, other_sha))
    files.add("linear.safetensors", (tmp_path / "weights" / "other.safetensors").read_bytes())
    assert other  # served too, so only the hashes decide
    with pytest.raises(LockMismatchError, match=f"declares {declared}.*records {other_sha}"):
        hubcore.load("acme/hub:main", "linear", host=git.url, pretrained=True)


@pytest.mark.parametrize("when", ["in_an_entrypoint", "at_import_time"])
def test_repository_code_downloads_are_checked_against_the_lock(
    setup, tmp_path, monkeypatch, when
) -> None:
    """Repository code that fetches a locked URL itself, in an entrypoint or in the hubconf's
    module body (a config file, a label map), gets the recorded bytes or an error."""
    git, files, repo, weights_url, _ = setup
    text = hub_files(weights_url, "v4")["hubconf.py"]
    if when == "at_import_time":
        fetch = f"import hubcore\n\nFETCHED = hubcore.download({weights_url!r})"
        text, entry = text.replace("dependencies = []", f"dependencies = []\n\n{fetch}"), "version"
    else:
        fetch = f"def fetch_it():\n    import hubcore\n    return hubcore.download({weights_url!r})"
        text += f"\n\n{fetch}\n"
        entry = "fetch_it"
    repo.commit({"hubconf.py": text}, "downloads")
    assert CliRunner().invoke(main, ["lock", "acme/hub:main", "--host", git.url]).exit_code == 0
    files.add("linear.safetensors", weights_bytes(2))  # replaced behind the same URL
    monkeypatch.setenv("HUBCORE_HOME", str(tmp_path / "other-machine"))
    with pytest.raises(IntegrityError, match="recorded in the lock file"):
        hubcore.load("acme/hub:main", entry, host=git.url)
    # outside any repository's code the lock does not apply
    assert hubcore.download(weights_url).is_file()


@pytest.mark.parametrize(
    "variant",
    [
        'quote" and \\ backslash',
        "new\nline\ttab",
        "\N{GRINNING FACE} outside the BMP \U0001f9e0",
        "x" * 5000,
        "'''\"\"\"",
    ],
)
def test_lock_round_trips_hostile_names(tmp_path, variant) -> None:
    from hubcore.policy.lock import LockedRepo, LockedWeight, write_lock

    weight = LockedWeight(variant, variant, f"https://h/{variant}", "a" * 64)
    written = LockedRepo(variant, "b" * 40, (weight,), f"github:{variant}", variant)
    write_lock(tmp_path / "hub.lock", [written])
    (read,) = LockFile.read(tmp_path / "hub.lock").repos
    assert read == written


def test_lock_never_stores_credentials(setup, tmp_path) -> None:
    git, _files, repo, weights_url, _ = setup
    secret_url = weights_url.replace("http://", "http://user:s3cr3t@") + "?token=s3cr3t&v=1"
    repo.commit(hub_files(secret_url, "v5"), "secret")
    result = CliRunner().invoke(main, ["lock", "acme/hub:main", "--host", git.url])
    assert result.exit_code == 0, result.output
    assert "s3cr3t" not in (tmp_path / "hub.lock").read_text()
    assert "s3cr3t" not in result.output
    (locked,) = LockFile.read(tmp_path / "hub.lock").repos
    assert locked.weights[0].url.endswith("linear.safetensors?v=1")


def test_a_lock_cannot_swap_the_commit_of_an_explicit_pin(setup, tmp_path) -> None:
    git, _, repo, weights_url, first = setup
    second = repo.commit(hub_files(weights_url, "v2"), "two")
    from hubcore.sources import identify

    identity, _ = identify("acme/hub", host=git.url)
    # a crafted lock: the entry for commit A names commit B
    (tmp_path / "hub.lock").write_text(
        f'[[repo]]\nref = "x"\nrepo_id = "{identity}"\nrevision = "{first}"\n'
        f'snapshot = "{second}"\n'
    )
    for options in ({"commit": first}, {}):
        ref = "acme/hub" if options else f"github:acme/hub@{first}"
        with pytest.raises(LockMismatchError, match=f"pins commit {first}.*records {second}"):
            hubcore.load(ref, "version", host=git.url, **options)


def test_a_hash_in_the_file_name_must_agree_with_the_lock(setup, tmp_path, monkeypatch) -> None:
    git, files, repo, _, _ = setup
    data = weights_bytes(3)
    named = files.add("linear-deadbeef12.safetensors", data)  # the name declares a prefix
    repo.commit(hub_files(named, "v6"), "named")
    lock = tmp_path / "hub.lock"
    from hubcore.policy.lock import LockedRepo, LockedWeight, write_lock
    from hubcore.sources import identify

    identity, revision = identify("acme/hub:main", host=git.url)
    head = hubcore.api.open_repo("acme/hub:main", host=git.url).snapshot_id
    actual = hubcore.file_sha256(tmp_path / "weights" / "linear-deadbeef12.safetensors")
    weight = LockedWeight("linear", "default", named, actual)
    write_lock(lock, [LockedRepo("acme/hub:main", head, (weight,), identity, revision)])
    monkeypatch.setenv("HUBCORE_HOME", str(tmp_path / "fresh"))
    with pytest.raises(IntegrityError, match="from the file name"):
        hubcore.load("acme/hub:main", "linear", host=git.url, pretrained=True)


def test_a_name_that_is_not_unicode_is_a_clear_error(tmp_path) -> None:
    from hubcore.policy.lock import LockedRepo, LockedWeight, write_lock

    weight = LockedWeight("f", "bad\ud800name", "https://h/w", "a" * 64)
    with pytest.raises(ConfigError, match="not valid Unicode"):
        write_lock(tmp_path / "hub.lock", [LockedRepo("r", "b" * 40, (weight,), "github:r")])
    assert list(tmp_path.iterdir()) == []
