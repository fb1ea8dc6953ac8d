"""hubcore.compat: torch.hub's and megengine.hub's APIs on hubcore, against loopback servers.

The framework-specific readers (``load_state_dict_from_url``, ``load_serialized_obj_from_url``)
are tested with their plugins; the wild-hubconf suite compares with the peers themselves.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import hubcore
from hubcore import config
from hubcore.compat import megengine_hub, torch_hub
from hubcore.errors import (
    DependencyError,
    DownloadError,
    EntrypointNotFoundError,
    IntegrityError,
    InvalidReferenceError,
    OfflineError,
    RefNotFoundError,
    UntrustedRepoError,
)
from hubcore.policy import trust

from .gitserver import BareRepo, GitHostServer, git

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")

HUBCONF = '''
import functools

from models.net import build
from utils import VERSION

dependencies = ["packaging"]


def version():
    """Which version of the hub this is.

    Indented lines are cleaned, as inspect.getdoc does.
    """
    return VERSION


def echo(*args, progress=True, verbose=None, **kwargs):
    """Return what it was called with."""
    return args, progress, verbose, kwargs


def in_hub():
    from hubcore.repo.redirects import in_repository_code

    return in_repository_code()


def _factory():
    def made():
        """Built by a call, so only importing the hubconf can tell its docstring."""
        return "made"

    return made


made = _factory()


def _private_helper():
    return None
'''

FILES = {
    "hubconf.py": HUBCONF,
    "models/__init__.py": "",
    "models/net.py": 'def build(width=2):\n    """Build a net."""\n    return ("net", width)\n',
}


def hub_files(version: str) -> dict[str, str]:
    return {**FILES, "utils.py": f"VERSION = {version!r}\n"}


ENTRYPOINTS = ["build", "echo", "in_hub", "made", "version"]


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


@pytest.fixture
def github_mirror(hub_home, server, monkeypatch) -> GitHostServer:
    """github.com and codeload.github.com served by the loopback server, as a mirror would."""
    monkeypatch.setenv(
        "HUBCORE_MIRRORS",
        f"https://github.com/={server.url}/;https://codeload.github.com/={server.url}/",
    )
    return server


def requests_made(server: GitHostServer) -> list[str]:
    return server.paths()


# -- torch.hub -------------------------------------------------------------------------------


def test_torch_hub_local_folder(hub_home, make_hub_repo) -> None:
    repo = str(make_hub_repo(hub_files("local")))
    assert torch_hub.list(repo, source="local") == ENTRYPOINTS
    assert torch_hub.help(repo, "version", source="local") == (
        "Which version of the hub this is.\n\nIndented lines are cleaned, as inspect.getdoc does."
    )
    assert torch_hub.help(repo, "echo", source="local") == "Return what it was called with."
    assert torch_hub.load(repo, "version", source="local") == "local"
    assert torch_hub.load(repo, "build", source="local", width=5) == ("net", 5)


def test_torch_hub_passes_every_other_keyword_to_the_entrypoint(hub_home, make_hub_repo) -> None:
    repo = str(make_hub_repo(hub_files("local")))
    # `progress`, `offline`, `lock` are hub options of hubcore.load, but torch.hub hands them
    # to the entrypoint; `verbose` is torch.hub's own.
    result = torch_hub.load(
        repo, "echo", 1, source="LOCAL", verbose=False, progress=False, offline=1, lock=2
    )
    assert result == ((1,), False, None, {"offline": 1, "lock": 2})


def test_torch_hub_help_of_an_entrypoint_built_by_a_call(hub_home, make_hub_repo) -> None:
    repo = str(make_hub_repo(hub_files("local")))
    assert "cannot be read statically" in hubcore.help(repo, "made")
    assert torch_hub.help(repo, "made", source="local").startswith("Built by a call")


def test_torch_hub_github_uses_the_cache_like_torch_hub(
    github_mirror, acme, capsys, monkeypatch
) -> None:
    server = github_mirror
    assert torch_hub.list("acme/hub") == ENTRYPOINTS
    assert torch_hub.load("acme/hub", "version") == "v1"
    assert torch_hub.load("acme/hub:main", "version") == "v1"
    acme.commit(hub_files("v2"), "second")
    server.reset_log()
    # Cached, as torch.hub keeps it: no request at all, and it says so.
    assert torch_hub.load("acme/hub:main", "version") == "v1"
    assert requests_made(server) == []
    assert "Using cache found in" in capsys.readouterr().err
    assert torch_hub.load("acme/hub:main", "version", verbose=False) == "v1"
    assert "Using cache" not in capsys.readouterr().err
    assert torch_hub.load("acme/hub:main", "version", force_reload=True) == "v2"
    assert any("info/refs" in p for p in requests_made(server))
    assert not any(p.startswith("/repos/") or "api" in p for p in requests_made(server))


def test_torch_hub_validation_refuses_commits_that_are_not_ref_heads(github_mirror, acme) -> None:
    old = acme.commit(hub_files("old"), "old")
    head = acme.commit(hub_files("new"), "new")
    with pytest.raises(RefNotFoundError, match="skip_validation=True"):
        torch_hub.load(f"acme/hub:{old}", "version")
    assert torch_hub.load(f"acme/hub:{old}", "version", skip_validation=True) == "old"
    assert torch_hub.load(f"acme/hub:{head[:10]}", "version") == "new"


def test_torch_hub_errors_are_of_the_types_torch_hub_raises(hub_home, make_hub_repo) -> None:
    repo = str(make_hub_repo(hub_files("x")))
    with pytest.raises(ValueError, match='Unknown source: "svn"'):
        torch_hub.load(repo, "version", source="svn")
    with pytest.raises(RuntimeError) as missing:
        torch_hub.load(repo, "verison", source="local")
    assert isinstance(missing.value, EntrypointNotFoundError)
    assert "version" in str(missing.value)  # the close match is suggested
    needs = make_hub_repo({**hub_files("x"), "hubconf.py": "dependencies = ['nonexistent_pkg']\n"})
    (needs / "hubconf.py").write_text(
        "dependencies = ['nonexistent_pkg']\n\ndef f():\n    return 1\n"
    )
    with pytest.raises(RuntimeError) as deps:
        torch_hub.load(str(needs), "f", source="local")
    assert isinstance(deps.value, DependencyError)
    assert "nonexistent_pkg" in str(deps.value)


def test_torch_hub_trust(github_mirror, acme, monkeypatch) -> None:
    monkeypatch.delenv("HUBCORE_TRUST")
    assert torch_hub.list("acme/hub") == ENTRYPOINTS  # static: nothing runs, nothing to trust
    with pytest.raises(UntrustedRepoError):
        torch_hub.load("acme/hub", "version")
    assert "github:https://github.com/acme/hub" not in trust.entries()
    assert torch_hub.load("acme/hub", "version", trust_repo=True) == "v1"
    assert torch_hub.load("acme/hub", "version") == "v1"  # remembered
    assert "github:https://github.com/acme/hub" in trust.entries()
    other = BareRepo(github_mirror.root, "acme/other")
    other.commit(hub_files("other"), "first")
    torch_hub.list("acme/other", trust_repo=True)  # as in torch.hub, list records the trust
    assert torch_hub.load("acme/other", "version") == "other"


def test_torch_hub_get_and_set_dir(hub_home, tmp_path) -> None:
    assert torch_hub.get_dir() == str(hub_home)
    try:
        torch_hub.set_dir(tmp_path / "elsewhere")
        assert torch_hub.get_dir() == str(tmp_path / "elsewhere")
        assert hubcore.get_dir() == tmp_path / "elsewhere"
    finally:
        config.set_dir(None)


def test_torch_hub_download_url_to_file(hub_home, file_server, tmp_path) -> None:
    files = file_server
    data = b"weights" * 1000
    url = files.add("w.bin", data)
    digest = hubcore.file_sha256(files.folder / "w.bin")
    dst = tmp_path / "out" / "w.bin"
    dst.parent.mkdir()
    torch_hub.download_url_to_file(url, str(dst), hash_prefix=digest[:8], progress=False)
    assert dst.read_bytes() == data
    with pytest.raises(RuntimeError) as bad:
        torch_hub.download_url_to_file(url, tmp_path / "out" / "bad.bin", hash_prefix="0000")
    assert isinstance(bad.value, IntegrityError)
    assert not (tmp_path / "out" / "bad.bin").exists()
    assert sorted(p.name for p in dst.parent.iterdir()) == ["w.bin"]  # no temp files
    with pytest.raises(DownloadError, match="cannot write"):
        torch_hub.download_url_to_file(url, dst.parent, progress=False)  # a folder
    assert sorted(p.name for p in dst.parent.iterdir()) == ["w.bin"]
    files.add("w.bin", b"changed")  # the server's copy changes: the next call sees it
    torch_hub.download_url_to_file(url, dst, progress=False)
    assert dst.read_bytes() == b"changed"


# -- megengine.hub ---------------------------------------------------------------------------


def test_megengine_hub_any_git_server(hub_home, server, acme) -> None:
    host = server.url  # http://127.0.0.1:<port>: fetched over git's smart HTTP
    assert megengine_hub.list("acme/hub", git_host=host) == ENTRYPOINTS
    assert megengine_hub.help("acme/hub:main", "echo", git_host=host) == (
        "Return what it was called with."
    )
    assert megengine_hub.load("acme/hub:main", "version", git_host=host) == "v1"
    assert megengine_hub.load("acme/hub", "echo", 1, git_host=host, progress=3) == (
        (1,),
        3,
        None,
        {},
    )


def test_megengine_hub_github_commit_and_use_cache(github_mirror, acme) -> None:
    server = github_mirror
    first = git("rev-parse", "HEAD", cwd=acme.work)
    assert megengine_hub.load("acme/hub", "version") == "v1"
    acme.commit(hub_files("v2"), "second")
    server.reset_log()
    assert megengine_hub.load("acme/hub", "version") == "v1"  # use_cache=True: as fetched
    assert requests_made(server) == []
    assert megengine_hub.load("acme/hub", "version", use_cache=False) == "v2"
    assert megengine_hub.load("acme/hub:main", "version", commit=first) == "v1"


def test_megengine_hub_import_module_runs_functions_in_the_repository(
    hub_home, server, acme
) -> None:
    module = megengine_hub.import_module("acme/hub", git_host=server.url)
    assert module.version() == "v1"
    assert module.in_hub() is True  # called through the module: in hubcore's setting
    assert module.__hubcore_module__.in_hub() is False
    assert "version" in dir(module)
    assert module.__file__.endswith("hubconf.py")
    assert module.dependencies == ["packaging"]


def test_megengine_hub_references() -> None:
    from hubcore_megengine.hub import reference as ref

    assert ref("a/b", "github.com", "HTTPS") == ("github:a/b", None)
    assert ref("a/b:dev", "github.com", "https") == ("github:a/b", "dev")
    assert ref("g/s/r:v1", "git.example.com", "HTTPS") == (
        "git+https://git.example.com/g/s/r.git",
        "v1",
    )
    assert ref("a/b", "git.example.com", "SSH") == ("git+ssh://git@git.example.com/a/b.git", None)
    assert ref("a/b", "http://10.0.0.1:8080/", "HTTPS") == (
        "git+http://10.0.0.1:8080/a/b.git",
        None,
    )
    for bad in [
        ("a/b", "github.com", "FTP"),
        ("nobranch", "github.com", "HTTPS"),
        ("a/b", "", "HTTPS"),
    ]:
        with pytest.raises(InvalidReferenceError):
            ref(*bad)
    with pytest.raises(ValueError, match="one of HTTPS, SSH"):
        megengine_hub.list("a/b", protocol="GIT")


def test_megengine_hub_errors_are_runtime_errors(hub_home, server, acme) -> None:
    with pytest.raises(RuntimeError) as missing:
        megengine_hub.load("acme/hub", "nope", git_host=server.url)
    assert isinstance(missing.value, EntrypointNotFoundError)


def test_megengine_hub_load_needs_trust(hub_home, server, acme, monkeypatch) -> None:
    monkeypatch.delenv("HUBCORE_TRUST")
    assert megengine_hub.list("acme/hub", git_host=server.url) == ENTRYPOINTS
    with pytest.raises(UntrustedRepoError, match="hubcore trust add"):
        megengine_hub.load("acme/hub", "version", git_host=server.url)
    trust.add(f"git:{server.url}/acme/hub.git")
    assert megengine_hub.load("acme/hub", "version", git_host=server.url) == "v1"


def test_megengine_pretrained_decorator(hub_home, make_hub_repo) -> None:
    np = pytest.importorskip("numpy")
    pytest.importorskip("hubcore_numpy_example")
    from hubcore_numpy_example import NumpyModel

    shapes = {"weight": (2, 3), "bias": (2,)}
    trained = NumpyModel(shapes, seed=7).params
    repo = make_hub_repo(
        {
            "hubconf.py": """
            from hubcore.compat import megengine_hub as hub
            from hubcore_numpy_example import NumpyModel

            @hub.pretrained("weights/net.npz")
            def net(seed=0, **kwargs):
                '''A numpy net.'''
                return NumpyModel({"weight": (2, 3), "bias": (2,)}, seed=seed)
            """
        }
    )
    (repo / "weights").mkdir()
    np.savez(repo / "weights" / "net.npz", **trained)
    assert hubcore.discover(str(repo)).entrypoints["net"].weights.variants["default"].url == (
        "weights/net.npz"
    )
    positional = hubcore.load(str(repo), "net", True)  # megengine.hub's positional pretrained
    assert all(np.array_equal(positional.params[k], trained[k]) for k in shapes)
    keyword = torch_hub.load(str(repo), "net", source="local", pretrained=True, seed=1)
    assert all(np.array_equal(keyword.params[k], trained[k]) for k in shapes)
    plain = hubcore.load(str(repo), "net", seed=1)
    assert not np.array_equal(plain.params["weight"], trained["weight"])
    with pytest.raises(hubcore.HubError, match="positional"):
        hubcore.load(str(repo), "net", True, 5)


def test_peer_downloads_honour_the_lock_files_hashes(hub_home, file_server, tmp_path) -> None:
    files = file_server
    from hubcore import runcontext
    from hubcore.compat.common import fetch_like_peer

    url = files.add("w.bin", b"locked bytes")
    actual = hubcore.file_sha256(files.folder / "w.bin")

    def locked_run(sha: str):
        context = runcontext.RunContext(
            root=tmp_path, label="t", remote=True, locked={url: sha}, lock_path="t.lock"
        )
        return runcontext.entered(context)

    with locked_run("0" * 64), pytest.raises(IntegrityError, match=r"t\.lock"):
        fetch_like_peer(url, None)
    with locked_run(actual):
        assert fetch_like_peer(url, tmp_path / "kept" / "w.bin").sha256 == actual
    assert (tmp_path / "kept" / "w.bin").read_bytes() == b"locked bytes"


#: Defaults hubcore changes on purpose (docs/migration.md): safer reads.
CHANGED_DEFAULTS = {("load_state_dict_from_url", "weights_only")}


@pytest.mark.parametrize(
    ("peer_name", "compat"), [("torch.hub", torch_hub), ("megengine.hub", megengine_hub)]
)
def test_signatures_match_the_peer(peer_name, compat) -> None:
    """Every public function of the peer exists with the same parameters, in the same order,
    with the same defaults; hubcore may add keyword-only parameters and missing defaults."""
    import inspect

    peer = pytest.importorskip(peer_name)
    for name in getattr(peer, "__all__", compat.__all__):  # megengine.hub has none
        theirs = inspect.signature(getattr(peer, name)).parameters
        ours = inspect.signature(getattr(compat, name)).parameters
        shared = [p for p in ours.values() if p.kind is not p.KEYWORD_ONLY or p.name in theirs]
        assert [p.name for p in shared] == list(theirs), name
        for param in shared:
            expected = theirs[param.name].default
            if (name, param.name) in CHANGED_DEFAULTS or expected is param.empty:
                continue  # a changed default, or one hubcore adds (import_module's git_host)
            assert param.default == expected, (name, param.name)
            assert param.kind == theirs[param.name].kind, (name, param.name)


# -- offline mode and rejected hashes --------------------------------------------------------


@pytest.mark.parametrize("force_reload", [False, True])
def test_torch_hub_load_offline_sends_no_request(
    github_mirror, acme, monkeypatch, force_reload
) -> None:
    head = acme.commit(hub_files("v2"), "second")  # a commit sha: the fork check would apply
    monkeypatch.setenv("HUBCORE_OFFLINE", "1")
    github_mirror.reset_log()
    with pytest.raises(OfflineError):
        torch_hub.load(f"acme/hub:{head}", "version", force_reload=force_reload)
    assert requests_made(github_mirror) == []


def _cache_files(home: Path) -> list[Path]:
    return [p for d in ("blobs", "urls") for p in (home / d).rglob("*") if p.is_file()]


def test_a_rejected_hash_prefix_caches_nothing(hub_home, file_server, tmp_path) -> None:
    from hubcore.compat.common import fetch_like_peer

    url = file_server.add("net-12345678.pth", b"bytes whose sha256 starts otherwise")
    kept = tmp_path / "kept" / "net.pth"
    with pytest.raises(IntegrityError, match="12345678"):
        fetch_like_peer(url, kept, hash_prefix="12345678")
    assert _cache_files(hub_home) == []
    assert not kept.exists()
    # The next call without the check transfers the file again: nothing rejected is served.
    file_server.reset_counters()
    assert fetch_like_peer(url, None).path.read_bytes() == b"bytes whose sha256 starts otherwise"
    assert len(file_server.requests()) == 1


def test_download_url_to_file_with_a_wrong_hash_prefix_caches_nothing(
    hub_home, file_server, tmp_path
) -> None:
    url = file_server.add("w.bin", b"some weights")
    with pytest.raises(RuntimeError) as bad:
        torch_hub.download_url_to_file(url, tmp_path / "w.bin", hash_prefix="00000000")
    assert isinstance(bad.value, IntegrityError)
    assert _cache_files(hub_home) == []
    assert not (tmp_path / "w.bin").exists()


# -- where the peer APIs live --------------------------------------------------------------------

PEER_MODULES = [
    ("hubcore.compat.torch_hub", "hubcore_torch", "hubcore-torch"),
    ("hubcore.compat.megengine_hub", "hubcore_megengine", "hubcore-megengine"),
]


def _forget(monkeypatch, *names: str) -> None:
    """Make the next import of *names* run afresh (restored after the test)."""
    import sys

    import hubcore.compat

    for name in names:
        monkeypatch.delitem(sys.modules, name, raising=False)
        package, _, attribute = name.rpartition(".")
        if package == "hubcore.compat":
            monkeypatch.delattr(hubcore.compat, attribute, raising=False)


@pytest.mark.parametrize(("public", "package", "distribution"), PEER_MODULES)
def test_compat_module_without_its_plugin_says_what_to_install(
    monkeypatch, public, package, distribution
) -> None:
    import importlib
    import sys

    _forget(monkeypatch, public, f"{package}.hub")
    monkeypatch.setitem(sys.modules, package, None)  # as if the plugin were not installed
    with pytest.raises(DependencyError, match=f"pip install {distribution}") as info:
        importlib.import_module(public)
    assert isinstance(info.value, ImportError)
    assert isinstance(info.value, hubcore.HubError)


@pytest.mark.parametrize(("public", "package", "distribution"), PEER_MODULES)
def test_compat_module_with_a_plugin_too_old_for_it_says_to_upgrade(
    monkeypatch, public, package, distribution
) -> None:
    import importlib
    import sys

    _forget(monkeypatch, public)
    monkeypatch.setitem(sys.modules, f"{package}.hub", None)  # a release before the move
    with pytest.raises(DependencyError, match=f"pip install -U {distribution}"):
        importlib.import_module(public)


@pytest.mark.parametrize(("public", "package", "distribution"), PEER_MODULES)
def test_compat_module_is_the_plugins_api(public, package, distribution) -> None:
    import importlib

    compat = importlib.import_module(public)
    home = importlib.import_module(f"{package}.hub")
    assert compat.__all__ == home.__all__
    assert all(getattr(compat, name) is getattr(home, name) for name in home.__all__)


def test_importing_the_compat_modules_imports_no_framework() -> None:
    import os
    import subprocess
    import sys

    script = (
        "import sys, hubcore.compat.torch_hub, hubcore.compat.megengine_hub\n"
        "print(sorted({'torch', 'megengine'} & set(sys.modules)))\n"
    )
    # This interpreter's path: it reaches a plugin that conftest imports from the checkout.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, sys.path))}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
