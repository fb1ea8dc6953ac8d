"""Repositories written for torch.hub and megengine.hub, loaded unchanged (see tests/wild/).

Every fixture goes through hubcore's native API, both compatibility layers (the megengine
one from a loopback git server) and, where installed, the peer itself; entrypoint lists and
loaded weights must agree. Listing needs no framework, so lists are compared in both test
environments; loading needs the fixture's framework.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

import hubcore
import hubcore.repo.dependencies
from hubcore.compat import megengine_hub, torch_hub
from hubcore.errors import DependencyError, InvalidReferenceError

from .fileserver import FileServer
from .gitserver import BareRepo, GitHostServer

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")

WILD = Path(__file__).parent / "wild"
WEIGHT = (np.arange(12, dtype="float32").reshape(3, 4) / 10).astype("float32")
BIAS = np.array([1.0, 2.0, 3.0], dtype="float32")


@attrs.frozen
class Call:
    """One call of an entrypoint, and what must come back."""

    entry: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = attrs.field(factory=dict)
    pretrained: bool = True  # the trained WEIGHT/BIAS, else just the shapes agree
    model_at: int | None = None  # the model's index when the entrypoint returns a tuple


@attrs.frozen
class Fixture:
    framework: str
    calls: tuple[Call, ...]
    helpers: frozenset[str] = frozenset()  # listed by the peer, not entrypoints for hubcore
    peer_refuses: type[Exception] | None = None  # the peer cannot load it; hubcore can
    #: Binds names static reading cannot see: listed complete only by importing the hubconf.
    imported: bool = False
    #: Other peers that can list it (its modules import the framework only when called).
    list_peers: tuple[str, ...] = ()


FIXTURES = {
    "torch_package": Fixture(
        "torch",
        (
            Call("tiny", (True,)),  # pretrained passed positionally
            Call("tiny", (), {"pretrained": True, "progress": False, "bias": True}),
            Call("wide", (), {"bias": False}, pretrained=False),  # **kwargs reach the model
        ),
    ),
    "torch_star_syspath": Fixture(
        "torch", (Call("small", (), {"pretrained": True, "scale": 3.0}, model_at=0),)
    ),
    "torch_clash_a": Fixture("torch", (Call("model", (True,)),)),
    "torch_clash_b": Fixture("torch", (Call("model", (), {"pretrained": True}),)),
    "torch_repo_weights": Fixture(
        "torch",
        (Call("by_path", (True,)), Call("declared", (), {"pretrained": True})),
        helpers=frozenset({"pretrained"}),  # hubcore's decorator, imported by the hubconf
    ),
    "torch_dist_deps": Fixture("torch", (Call("model", (True,)),), peer_refuses=RuntimeError),
    "torch_registry": Fixture(
        "torch",
        (Call("linear", (True,)), Call("deep", (), {"pretrained": False}, pretrained=False)),
    ),
    "torch_dynamic_exports": Fixture(
        "torch",
        (
            Call("linear", (True,)),
            Call("linear_wide", (), {"bias": False}, pretrained=False),
        ),
        imported=True,
    ),
    "torch_main_block": Fixture("torch", (Call("detector_tiny", (True,)),)),
    "torch_import_fallback": Fixture("torch", (Call("linear", (), {"pretrained": True}),)),
    "torch_nested_backbone": Fixture("torch", (Call("backbone", (True,)),)),
    # its load needs the backbone repository from a git server: see the nested-load tests
    "torch_nested_hub_load": Fixture("torch", ()),
    "torch_unreachable_weights": Fixture(
        "torch",
        (
            Call("refused", (), pretrained=False),  # without weights nothing is fetched
            Call("unresolvable", (False,), pretrained=False),
        ),
    ),
    "mge_package": Fixture("megengine", (Call("tiny", (True,)),)),
    "mge_shadowing_configs": Fixture(
        "megengine",
        (Call("linear_small", (True,)), Call("linear_large", (), pretrained=False)),
        list_peers=("torch",),
    ),
    "mge_computed_all": Fixture(
        "megengine",
        (Call("linear", (True,)), Call("linear_converted", (False,), pretrained=False)),
    ),
    "mge_namespace": Fixture("megengine", (Call("resnet18", (True,)),)),
    "mge_syspath_tuple": Fixture("megengine", (Call("net_with_preprocess", (True,), model_at=0),)),
}


def framework_or_skip(framework: str) -> None:
    pytest.importorskip(framework)
    pytest.importorskip(f"hubcore_{framework}")


def hashed_name(data: bytes) -> str:
    import hashlib

    digest = hashlib.sha256(data).hexdigest()
    width = 8
    while digest[:width].isdigit():
        width += 1
    return f"linear-{digest[:width]}.pth"


@pytest.fixture(scope="module")
def weights_server(tmp_path_factory) -> Iterator[FileServer]:
    """Serves the one set of trained weights, in each framework's format installed here."""
    server = FileServer(tmp_path_factory.mktemp("wild-weights")).start()
    with contextlib.suppress(ImportError):
        import torch

        path = server.folder / "linear.pth"
        torch.save({"weight": torch.from_numpy(WEIGHT), "bias": torch.from_numpy(BIAS)}, path)
        shutil.copyfile(path, server.folder / hashed_name(path.read_bytes()))
    with contextlib.suppress(ImportError):
        import megengine

        megengine.save({"weight": WEIGHT, "bias": BIAS}, str(server.folder / "linear.pkl"))
    yield server
    server.stop()


def refusing_port() -> int:
    """A loopback port nothing listens on (bound once, then closed): connections are refused."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def wild_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("wild")


@pytest.fixture(scope="module")
def prepared(wild_root, weights_server) -> dict[str, Path]:
    """Each fixture copied, with the weight server's URL filled in."""
    hashed = [p.name for p in weights_server.folder.glob("linear-*.pth")]
    folders = {}
    for name in FIXTURES:
        target = wild_root / name
        shutil.copytree(WILD / name, target)
        for file in target.rglob("*.py"):
            text = file.read_text().replace("@@WEIGHTS@@", weights_server.url)
            text = text.replace("@@REFUSING@@", f"127.0.0.1:{refusing_port()}")
            file.write_text(text.replace("@@HASHED@@", hashed[0] if hashed else "none.pth"))
        folders[name] = target
    if (weights_server.folder / "linear.pth").is_file():
        (wild_root / "torch_repo_weights" / "weights").mkdir()
        shutil.copyfile(
            weights_server.folder / "linear.pth",
            wild_root / "torch_repo_weights" / "weights" / "linear.pth",
        )
    return folders


@pytest.fixture(scope="module")
def git_server(tmp_path_factory, prepared) -> Iterator[GitHostServer]:
    """The fixtures as repositories ``wild/<name>`` on a loopback git server."""
    server = GitHostServer(tmp_path_factory.mktemp("wild-git") / "repos").start()
    for name, folder in prepared.items():
        repo = BareRepo(server.root, f"wild/{name}")
        shutil.copytree(folder, repo.work, dirs_exist_ok=True)
        repo.commit({}, "as published")
    yield server
    server.stop()


@contextlib.contextmanager
def peer_sandbox(root: Path) -> Iterator[None]:
    """The peers import repository modules under their plain names into ``sys.modules`` and
    may leave ``sys.path`` changed; undo that, so that they do not affect other tests."""
    saved_path = list(sys.path)
    before = set(sys.modules)
    try:
        yield
    finally:
        doomed = []
        for name in set(sys.modules) - before:
            module = sys.modules[name]
            # Namespace packages have no __file__, only a __path__ (read before sys.path is
            # restored: it is recomputed from sys.path).
            files = [getattr(module, "__file__", None) or ""]
            files += list(getattr(module, "__path__", None) or [])
            if any(file.startswith(str(root)) for file in files):
                doomed.append(name)
        sys.path[:] = saved_path
        for name in doomed:
            del sys.modules[name]


@contextlib.contextmanager
def torch_peer(local: Path, monkeypatch, tmp_path) -> Iterator[Any]:
    """torch.hub, with the GitHub download replaced by the fixture folder."""
    hub = pytest.importorskip("torch.hub")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr(hub, "_get_cache_or_reload", lambda *args, **kwargs: str(local))
    with peer_sandbox(local.parent):
        yield hub


@contextlib.contextmanager
def megengine_peer(local: Path, monkeypatch, tmp_path) -> Iterator[Any]:
    """megengine.hub, with its git fetch replaced by the fixture folder."""
    hub = pytest.importorskip("megengine.hub")
    monkeypatch.setenv("MGE_HOME", str(tmp_path / "mge-home"))
    monkeypatch.setattr(sys.modules["megengine.hub.hub"], "_get_repo", lambda *a, **k: str(local))
    with peer_sandbox(local.parent):
        yield hub


def arrays(result: Any, call: Call) -> dict[str, np.ndarray]:
    model = result[call.model_at] if call.model_at is not None else result
    state = model.state_dict()
    return {
        k: np.asarray(v.detach().cpu()) if hasattr(v, "detach") else np.asarray(v)
        for k, v in state.items()
    }


def check(result: Any, call: Call, way: str) -> dict[str, np.ndarray]:
    got = arrays(result, call)
    if call.pretrained:
        assert sorted(got) == ["bias", "weight"], way
        np.testing.assert_array_equal(got["weight"], WEIGHT, err_msg=way)
        np.testing.assert_array_equal(got["bias"], BIAS, err_msg=way)
    return got


# -- lists -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_entrypoint_lists_agree(name, prepared, git_server, hub_home, monkeypatch, tmp_path):
    local = prepared[name]
    fixture = FIXTURES[name]
    info = hubcore.discover(str(local))
    native = hubcore.list(str(local))
    assert native == list(info.entrypoints)
    # Complete exactly when nothing is bound where static reading cannot see.
    assert info.complete is not fixture.imported, info.gaps
    if not fixture.imported:
        assert native, "every fixture has entrypoints"
        assert torch_hub.list(str(local), source="local") == native
        assert megengine_hub.list(f"wild/{name}", git_host=git_server.url) == native

    for framework in (fixture.framework, *fixture.list_peers):
        try:
            framework_or_skip(framework)
        except pytest.skip.Exception:
            continue
        if fixture.imported:  # importing runs the repository's code, so needs its framework
            native = hubcore.list(str(local), imported=True)
            assert set(info.entrypoints) < set(native)
        if framework == "torch":
            with torch_peer(local, monkeypatch, tmp_path) as hub:
                peer = hub.list("wild/" + name)
        else:
            with megengine_peer(local, monkeypatch, tmp_path) as hub:
                peer = hub.list("wild/" + name)
        helpers = fixture.helpers | {n for n in peer if n.startswith("_")}
        assert native == [n for n in peer if n not in helpers], framework


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_help_agrees_with_the_docstrings(name, prepared, git_server, hub_home):
    local = str(prepared[name])
    entries = hubcore.discover(local).entrypoints
    names = [n for n, found in entries.items() if found.resolved]
    if FIXTURES[name].imported:
        framework_or_skip(FIXTURES[name].framework)
        names = hubcore.list(local, imported=True)
    assert names
    for entry in names:
        # the peers return None for no docstring
        expected = hubcore.help(local, entry, imported=True) or None
        assert torch_hub.help(local, entry, source="local") == expected
        assert megengine_hub.help(f"wild/{name}", entry, git_host=git_server.url) == expected


# -- loads -------------------------------------------------------------------------------------

CASES = [(name, i) for name, fixture in FIXTURES.items() for i in range(len(fixture.calls))]


@pytest.mark.parametrize(("name", "index"), CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_loaded_weights_agree(name, index, prepared, git_server, hub_home, monkeypatch, tmp_path):
    fixture = FIXTURES[name]
    framework_or_skip(fixture.framework)
    call = FIXTURES[name].calls[index]
    local = prepared[name]
    results = {
        "hubcore.load": hubcore.load(str(local), call.entry, *call.args, **call.kwargs),
        "compat.torch_hub": torch_hub.load(
            str(local), call.entry, *call.args, source="local", **call.kwargs
        ),
        "compat.megengine_hub": megengine_hub.load(
            f"wild/{name}", call.entry, *call.args, git_host=git_server.url, **call.kwargs
        ),
    }
    states = {way: check(result, call, way) for way, result in results.items()}
    shapes = {way: {k: v.shape for k, v in state.items()} for way, state in states.items()}
    assert len({tuple(sorted(s.items())) for s in shapes.values()}) == 1, shapes

    peer_context = torch_peer if fixture.framework == "torch" else megengine_peer
    with peer_context(local, monkeypatch, tmp_path) as hub:
        if fixture.peer_refuses is not None:
            with pytest.raises(fixture.peer_refuses):
                hub.load(str(local), call.entry, *call.args, **call.kwargs)
            return
        if fixture.framework == "torch":
            peer = hub.load(str(local), call.entry, *call.args, source="local", **call.kwargs)
        else:
            peer = hub.load(f"wild/{name}", call.entry, *call.args, **call.kwargs)
    peer_state = check(peer, call, "peer")
    assert {k: v.shape for k, v in peer_state.items()} == shapes["hubcore.load"]


def test_tuples_keep_their_helpers(prepared, hub_home) -> None:
    framework_or_skip("torch")
    _model, transform = hubcore.load(
        str(prepared["torch_star_syspath"]), "small", pretrained=True, scale=3.0
    )
    assert type(transform).__name__ == "Transform"
    assert transform(2.0) == 6.0


def test_dependencies_are_matched_by_distribution_name(prepared, hub_home) -> None:
    local = str(prepared["torch_dist_deps"])
    assert hubcore.discover(local).dependencies == ("torch", "PyYAML>=5", "python-dateutil")
    hubcore.repo.dependencies.check_dependencies(["PyYAML>=5", "python-dateutil"], local)
    with pytest.raises(DependencyError, match="PyYAML>=99"):
        hubcore.repo.dependencies.check_dependencies(["PyYAML>=99"], local)


def test_same_module_names_in_two_repositories_and_the_program(
    prepared, git_server, hub_home, monkeypatch, tmp_path
) -> None:
    framework_or_skip("torch")
    program_utils = types.ModuleType("utils")
    program_utils.NAME = "the program's own"
    monkeypatch.setitem(sys.modules, "utils", program_utils)
    monkeypatch.delitem(sys.modules, "layers", raising=False)
    a, b = str(prepared["torch_clash_a"]), str(prepared["torch_clash_b"])

    net_a = hubcore.load(a, "model", pretrained=True)
    net_b = torch_hub.load(b, "model", True, source="local")
    assert not hasattr(net_a, "repository")
    assert net_b.repository == "b"
    assert hubcore.load(a, "which") == "a"
    assert megengine_hub.load("wild/torch_clash_b", "which", git_host=git_server.url) == "b"
    assert hubcore.load(b, "which") == "b"
    assert sys.modules["utils"] is program_utils
    assert "layers" not in sys.modules

    # torch.hub, in the same process, hands the hubconf the program's `utils`.
    peer = torch_peer(prepared["torch_clash_a"], monkeypatch, tmp_path)
    with peer as hub, pytest.raises(ImportError, match="make"):
        hub.load(a, "model", source="local")


def test_a_local_folder_handed_to_megengine_hub(hub_home, monkeypatch) -> None:
    """A local clone's path as megengine.hub's ``repo_info``: the peer refuses it as invalid,
    and so does the compatibility layer, before any source is asked (it once read the path
    as the GitHub repository ``tmp/x``) and naming how to load a folder."""

    def no_source(*args: object, **kwargs: object) -> None:
        raise AssertionError("a local path must never reach a source")

    monkeypatch.setattr(hubcore.api, "open_locked", no_source)
    folder = str(WILD / "mge_local_folder")
    for call in (
        lambda: megengine_hub.list(folder),
        lambda: megengine_hub.load(folder, "tiny"),
        lambda: megengine_hub.help(folder, "tiny"),
    ):
        with pytest.raises(InvalidReferenceError, match=r"hubcore\.load"):
            call()
    try:
        from megengine import hub as peer
    except ImportError:
        return
    with pytest.raises(Exception, match="is invalid"):
        peer.list(folder)


# -- a repository that loads another one through torch.hub.load (issue 12, pattern 3) ----------

NESTED_INNER = "wild/torch_nested_backbone"


@pytest.fixture
def nested(prepared, git_server, hub_home, monkeypatch, tmp_path) -> Path:
    """The depth repository as a local folder; the backbone repository it names
    (``wild/torch_nested_backbone``, a GitHub reference) on the loopback git server, which
    hubcore reaches through a mirror of github.com."""
    framework_or_skip("torch")
    monkeypatch.setenv(
        "HUBCORE_MIRRORS",
        f"https://github.com/={git_server.url}/;https://codeload.github.com/={git_server.url}/",
    )
    monkeypatch.setenv("HUBCORE_TRUST", NESTED_INNER)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    git_server.reset_log()
    return prepared["torch_nested_hub_load"]


def nested_peer(prepared, monkeypatch, tmp_path) -> Any:
    """torch.hub, with its GitHub download replaced by the fixture folders by name."""
    hub = pytest.importorskip("torch.hub")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home-peer"))

    def local_copy(repo: str, *args: object, **kwargs: object) -> str:
        return str(prepared[repo.split(":")[0].rpartition("/")[2]])

    monkeypatch.setattr(hub, "_get_cache_or_reload", local_copy)
    return hub


def test_a_nested_hub_load_gives_what_the_peer_gives(
    nested, prepared, git_server, monkeypatch, tmp_path
) -> None:
    results = {
        "hubcore.load": hubcore.load(str(nested), "depth", pretrained=True),
        "compat.torch_hub": torch_hub.load(str(nested), "depth", True, source="local"),
    }
    assert any(NESTED_INNER in path for path in git_server.paths())  # fetched by hubcore
    assert not (tmp_path / "torch-home").exists()  # torch.hub's own cache never used
    assert hubcore.load(str(nested), "backbone_names") == ["backbone"]
    hub = nested_peer(prepared, monkeypatch, tmp_path)
    with peer_sandbox(nested.parent):
        results["peer"] = hub.load(str(nested), "depth", pretrained=True, source="local")
        assert hub.load(str(nested), "backbone_names", source="local") == ["backbone"]
    for way, model in results.items():
        state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
        assert sorted(state) == ["backbone.bias", "backbone.weight", "scale"], way
        np.testing.assert_array_equal(state["backbone.weight"], WEIGHT, err_msg=way)
        np.testing.assert_array_equal(state["backbone.bias"], BIAS, err_msg=way)


def test_a_nested_repository_is_refused_without_trust(nested, monkeypatch) -> None:
    from hubcore.errors import UntrustedRepoError

    monkeypatch.setenv("HUBCORE_TRUST", "")
    for load in (
        lambda: hubcore.load(str(nested), "depth"),
        lambda: torch_hub.load(str(nested), "depth", source="local"),
    ):
        with pytest.raises(UntrustedRepoError, match="torch_nested_backbone") as info:
            load()
        assert "loaded by the code of" in str(info.value)
        assert str(nested) in str(info.value)


def test_a_nested_load_offline_names_the_repository(nested, git_server, monkeypatch) -> None:
    from hubcore.errors import OfflineError

    monkeypatch.setenv("HUBCORE_OFFLINE", "1")
    with pytest.raises(OfflineError, match="torch_nested_backbone") as info:
        hubcore.load(str(nested), "depth")
    assert "loaded by the code of" in str(info.value)
    assert f"hubcore list {NESTED_INNER}" in str(info.value)
    assert not git_server.paths()  # offline: not one request
    monkeypatch.delenv("HUBCORE_OFFLINE")
    hubcore.list(NESTED_INNER)  # fetched ahead of time, as the message says
    monkeypatch.setenv("HUBCORE_OFFLINE", "1")
    assert type(hubcore.load(str(nested), "depth")).__name__ == "DepthNet"


# -- weights on a host never reached (issue 12, pattern 4) ---------------------------------------


@pytest.mark.parametrize(("entry", "why"), [("unresolvable", "not found"), ("refused", "refused")])
def test_weights_on_a_host_never_reached_fail_at_once(
    entry, why, prepared, hub_home, monkeypatch, tmp_path, caplog
) -> None:
    """No retries with backoff (torch.hub fails at once too): a typed error naming the host and
    how to work without a network."""
    import logging

    from hubcore.errors import DownloadError

    framework_or_skip("torch")
    local = prepared["torch_unreachable_weights"]
    caplog.set_level(logging.INFO, logger="hubcore")
    for load in (
        lambda: hubcore.load(str(local), entry, pretrained=True),
        lambda: torch_hub.load(str(local), entry, pretrained=True, source="local"),
    ):
        with pytest.raises(DownloadError, match=why) as info:
            load()
        assert "HUBCORE_OFFLINE=1" in str(info.value)
        assert "offline mode is on" not in str(info.value)  # the cache lookup is not the cause
        host = "hubcore-wild-weights.invalid" if entry == "unresolvable" else "127.0.0.1"
        assert host in str(info.value)
    assert "retrying" not in caplog.text  # not taken for a passing network hiccup
    with torch_peer(local, monkeypatch, tmp_path) as hub, pytest.raises(OSError):
        hub.load(str(local), entry, pretrained=True, source="local")


def test_the_dynamic_exports_fixture_through_the_command_line(prepared, hub_home) -> None:
    """`hubcore list` says the listing is incomplete and why; `--import` completes it (by
    running the hubconf), and `hubcore load` finds a name only importing reveals."""
    from click.testing import CliRunner

    from hubcore.cli import main

    local = str(prepared["torch_dynamic_exports"])
    listed = CliRunner().invoke(main, ["list", local], catch_exceptions=False)
    assert listed.exit_code == 0
    assert listed.stdout == ""
    assert listed.stderr.startswith("listing incomplete: hubconf.py:4 globals().update(...)")
    assert "`hubcore list --import`" in listed.stderr
    framework_or_skip("torch")
    completed = CliRunner().invoke(main, ["list", local, "--import"], catch_exceptions=False)
    assert completed.exit_code == 0, completed.output
    assert completed.stdout.split() == hubcore.list(local, imported=True)
    assert {"linear", "linear_wide"} <= set(completed.stdout.split())
    assert "incomplete" not in completed.stderr
    loaded = CliRunner().invoke(
        main, ["load", local, "linear_wide", "--kw", "bias=False"], catch_exceptions=False
    )
    assert loaded.exit_code == 0, loaded.output
    assert "Linear" in loaded.stdout
