"""hubcore-megengine's side of megengine.hub compatibility: ``load_serialized_obj_from_url``
and the redirects of a repository's ``hub.pretrained`` / ``load_serialized_obj_from_url``."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest

mge = pytest.importorskip("megengine")

import megengine.hub  # noqa: E402
import megengine.hub.hub  # noqa: E402

import hubcore  # noqa: E402
from hubcore.errors import WeightsFormatError  # noqa: E402
from hubcore.testing import FileServer  # noqa: E402
from hubcore_megengine import hub as megengine_hub  # noqa: E402

STATE = {
    "weight": np.arange(6, dtype="float32").reshape(2, 3),
    "bias": np.array([0.5, -0.5], dtype="float32"),
}


@pytest.fixture
def files(file_server: FileServer) -> FileServer:
    return file_server


@pytest.fixture
def mge_home(tmp_path, monkeypatch) -> Path:
    """Where megengine.hub itself would have written: it must stay empty."""
    home = tmp_path / "mge-home"
    monkeypatch.setenv("MGE_HOME", str(home))
    return home


def serve_state(files: FileServer, name: str, state=STATE) -> str:
    path = files.folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    mge.save(state, str(path))
    return f"{files.url}/{name}"


def same(a, b) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(np.asarray(a[k]), b[k]) for k in a)


def test_load_serialized_obj_from_url(hub_home, files, mge_home, tmp_path) -> None:
    url = serve_state(files, "net.pkl")
    assert same(megengine_hub.load_serialized_obj_from_url(url), STATE)
    files.reset_counters()
    model_dir = tmp_path / "serialized"
    assert same(megengine_hub.load_serialized_obj_from_url(url, model_dir=str(model_dir)), STATE)
    assert files.requests() == []
    name = hashlib.sha256(url.encode()).hexdigest()[:6] + "_net.pkl"
    assert [p.name for p in model_dir.iterdir()] == [name]  # megengine.hub's file name
    assert not mge_home.exists()


def test_checkpoints_are_returned_as_stored_and_objects_refused(hub_home, files) -> None:
    url = serve_state(files, "ckpt.pkl", {"epoch": 2, "state_dict": STATE})
    got = megengine_hub.load_serialized_obj_from_url(url)
    assert got["epoch"] == 2
    assert same(got["state_dict"], STATE)
    (files.folder / "obj.pkl").write_bytes(pickle.dumps({"p": Path("/x")}))
    with pytest.raises(WeightsFormatError, match="refusing to unpickle pathlib"):
        megengine_hub.load_serialized_obj_from_url(f"{files.url}/obj.pkl")


HUBCONF = """
import megengine.module as M
from megengine import hub
from megengine.hub import load_serialized_obj_from_url

dependencies = ["megengine"]
URL = "https://weights.example.invalid/net.pkl"


@hub.pretrained(URL)
def decorated(**kwargs):
    '''megengine.hub's decorator: pretrained=True, also positionally.'''
    return M.Linear(3, 2, **kwargs)


def serialized(pretrained=False):
    net = M.Linear(3, 2)
    if pretrained:
        net.load_state_dict(load_serialized_obj_from_url(URL))
    return net, "a preprocessing helper"
"""


@pytest.fixture
def mge_repo(hub_home, files, make_hub_repo, monkeypatch):
    serve_state(files, "net.pkl")
    monkeypatch.setenv("HUBCORE_MIRRORS", f"https://weights.example.invalid/={files.url}/")
    return make_hub_repo({"hubconf.py": HUBCONF})


def test_repository_calls_to_megengine_hub_go_through_hubcore(mge_repo, mge_home, hub_home) -> None:
    originals = [
        getattr(module, name)
        for module in (megengine.hub, megengine.hub.hub)
        for name in ("pretrained", "load_serialized_obj_from_url")
    ]
    info = hubcore.discover(str(mge_repo)).entrypoints["decorated"]
    assert info.weights.variants["default"].url == "https://weights.example.invalid/net.pkl"
    net = hubcore.load(str(mge_repo), "decorated", True)
    assert same(net.state_dict(), STATE)
    net, helper = hubcore.load(str(mge_repo), "serialized", pretrained=True)
    assert same(net.state_dict(), STATE)
    assert helper == "a preprocessing helper"
    assert originals == [
        getattr(module, name)
        for module in (megengine.hub, megengine.hub.hub)
        for name in ("pretrained", "load_serialized_obj_from_url")
    ]
    assert not mge_home.exists()
    assert sum(1 for p in (hub_home / "blobs").rglob("*") if p.is_file()) == 1


def test_unsafe_file_behind_a_repository_call_is_refused(mge_repo, files) -> None:
    (files.folder / "net.pkl").write_bytes(pickle.dumps({"p": Path("/x")}))
    with pytest.raises(WeightsFormatError, match="refusing to unpickle"):
        hubcore.load(str(mge_repo), "serialized", pretrained=True)


# -- repo_info, git_host and protocol, parsed as megengine.hub parses them ----------------------

from megengine.hub.exceptions import FetcherError, InvalidRepo  # noqa: E402
from megengine.hub.fetcher import RepoFetcherBase  # noqa: E402

from hubcore.errors import InvalidReferenceError  # noqa: E402


def peer_parse(repo_info: str) -> tuple[str, str, str] | None:
    try:
        return RepoFetcherBase._parse_repo_info(repo_info)
    except InvalidRepo:
        return None


def hubcore_parse(repo_info: str, git_host: str = "github.com") -> tuple[str, str | None] | None:
    try:
        return megengine_hub.reference(repo_info, git_host, "HTTPS")
    except InvalidReferenceError:
        return None


@pytest.mark.parametrize(
    "repo_info",
    [
        *("a/b", "a/b:dev", "a/b:feature/x", "Org-1/repo_2.x:v1.0", "a/b:c:d", "a/b/c"),
        *("nobranch", "a/b/", "/tmp/x", "~/hub/x", "C:/x/y", "C:\\x\\y", "models\\hub", "."),
    ],
)
def test_repo_info_is_read_as_megengine_hub_reads_it(repo_info) -> None:
    peer, ours = peer_parse(repo_info), hubcore_parse(repo_info)
    assert (peer is None) == (ours is None)
    if peer is not None and ours is not None:
        owner, repo, branch = peer
        assert ours == (f"github:{owner}/{repo}", None if ":" not in repo_info else branch)


@pytest.mark.parametrize("repo_info", ["./hub", "../hub", "/x", "a/b:", "a/b c", "a/b?x"])
def test_paths_and_garbage_megengine_hub_would_send_to_the_host_are_refused(repo_info) -> None:
    assert peer_parse(repo_info) is not None  # megengine.hub builds a URL of them
    assert hubcore_parse(repo_info) is None


@pytest.mark.parametrize(
    "git_host",
    [
        *("github.com", "git.example.com", "10.0.0.1", "code.example-1.org"),
        *("github.com/evil", "user@github.com", "git hub.com", "file:///srv/git", "-oX"),
        "999.1.1.1",
    ],
)
def test_git_host_is_checked_as_megengine_hub_checks_it(git_host) -> None:
    peer = bool(RepoFetcherBase._check_git_host(git_host))
    assert peer == (hubcore_parse("a/b", git_host) is not None)


def test_hubcore_extensions_of_git_host_and_protocol() -> None:
    # Documented extensions: a port, a base URL, single-label and upper-case host names, and
    # a protocol in lower case.
    for host in ["git.example.com:8443", "http://127.0.0.1:8080", "localhost", "GitHub.com"]:
        assert not RepoFetcherBase._check_git_host(host)
        assert hubcore_parse("a/b", host) is not None
    assert megengine_hub.reference("a/b", "github.com", "ssh")[0].startswith("git+ssh://")
    with pytest.raises(FetcherError):
        megengine.hub.hub._get_repo("github.com", "a/b", protocol="ssh")


def test_a_local_folder_is_refused_as_megengine_hub_refuses_it(
    hub_home, make_hub_repo, mge_home, monkeypatch
) -> None:
    repo = make_hub_repo({"hubconf.py": "def m():\n    return 1\n"})
    monkeypatch.setattr(hubcore.api, "open_locked", None)  # nothing may be fetched
    with pytest.raises(InvalidRepo):
        megengine.hub.list(str(repo))
    for call in (megengine_hub.list, megengine_hub.import_module):
        with pytest.raises(InvalidReferenceError, match=r"hubcore\.load"):
            call(str(repo))
    with pytest.raises(InvalidReferenceError, match=r"hubcore\.load"):
        megengine_hub.load(str(repo), "m")


def test_megengine_hub_api_lives_in_this_plugin(hub_home) -> None:
    """hubcore.compat.megengine_hub re-exports this plugin's module, whose functions are the
    ones the plugin redirects megengine.hub's to."""
    from hubcore.compat import megengine_hub as public
    from hubcore.plugins import get_plugins

    assert public.__all__ == megengine_hub.__all__
    assert all(getattr(public, name) is getattr(megengine_hub, name) for name in public.__all__)
    targets = {(r.module, r.attribute): r.resolve() for r in get_plugins().redirects}
    assert targets[("megengine.hub", "pretrained")] is megengine_hub.pretrained
    assert (
        targets[("megengine.hub.hub", "load_serialized_obj_from_url")]
        is megengine_hub.load_serialized_obj_from_url
    )
