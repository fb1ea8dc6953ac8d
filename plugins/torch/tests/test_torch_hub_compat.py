"""hubcore-torch's side of torch.hub compatibility: the reader behind
``load_state_dict_from_url`` and the redirects of a repository's torch.hub calls."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch")

import torch
import torch.hub
import torch.utils.model_zoo

import hubcore
from hubcore.compat import torch_hub
from hubcore.errors import IntegrityError, OfflineError, WeightsFormatError
from hubcore.testing import FileServer

STATE = {"weight": torch.arange(6.0).reshape(2, 3), "bias": torch.tensor([0.5, -0.5])}


@pytest.fixture
def files(file_server: FileServer) -> FileServer:
    return file_server


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    """Where torch.hub itself would have written: it must stay empty."""
    home = tmp_path / "torch-home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


def serve_state(files: FileServer, name: str, state=STATE) -> str:
    path = files.folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return f"{files.url}/{name}"


def equal_states(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def blob_count(home: Path) -> int:
    return sum(1 for p in (home / "blobs").rglob("*") if p.is_file())


def test_load_state_dict_from_url_through_the_cache(hub_home, files, torch_home) -> None:
    url = serve_state(files, "net.pth")
    assert equal_states(torch_hub.load_state_dict_from_url(url, progress=False), STATE)
    files.reset_counters()
    assert equal_states(torch_hub.load_state_dict_from_url(url), STATE)
    assert files.requests() == []  # cached by URL and content, as torch.hub caches by name
    assert blob_count(hub_home) == 1
    assert not torch_home.exists()


def test_model_dir_keeps_a_copy_and_a_copy_placed_by_hand_is_used(
    hub_home, files, tmp_path, monkeypatch
) -> None:
    url = serve_state(files, "net.pth")
    model_dir = tmp_path / "checkpoints"
    torch_hub.load_state_dict_from_url(url, model_dir=str(model_dir), file_name="mine.pth")
    assert equal_states(torch.load(model_dir / "mine.pth", weights_only=True), STATE)
    # An offline machine: weights copied into model_dir by hand, nothing in hubcore's cache.
    monkeypatch.setenv("HUBCORE_HOME", str(tmp_path / "fresh-home"))
    files.stop()
    other = {"weight": torch.ones(2, 3), "bias": torch.zeros(2)}
    torch.save(other, model_dir / "net.pth")
    assert equal_states(torch_hub.load_state_dict_from_url(url, model_dir=model_dir), other)


def test_check_hash_and_file_name_prefixes(hub_home, files) -> None:
    url = serve_state(files, "plain.pth")
    digest = hubcore.file_sha256(files.folder / "plain.pth")
    good = torch_hub.load_state_dict_from_url(
        url, check_hash=True, file_name=f"net-{digest[:8]}.pth"
    )
    assert equal_states(good, STATE)
    with pytest.raises(RuntimeError) as bad:
        torch_hub.load_state_dict_from_url(url, check_hash=True, file_name="net-12345678.pth")
    assert isinstance(bad.value, IntegrityError)


def test_weights_only_by_default_and_checkpoints_as_stored(hub_home, files) -> None:
    checkpoint = {"epoch": 3, "state_dict": STATE, "optimizer": {"lr": 0.1}}
    url = serve_state(files, "ckpt.pth", checkpoint)
    got = torch_hub.load_state_dict_from_url(url)
    assert got["epoch"] == 3
    assert equal_states(got["state_dict"], STATE)
    unsafe = serve_state(files, "obj.pth", {"fn": Path("/x")})
    with pytest.raises(WeightsFormatError, match="weights_only=False"):
        torch_hub.load_state_dict_from_url(unsafe)
    assert torch_hub.load_state_dict_from_url(unsafe, weights_only=False)["fn"] == Path("/x")


HUBCONF = """
import torch
from torch.hub import load_state_dict_from_url  # bound at import: the redirect must catch it

dependencies = ["torch"]
URL = "https://weights.example.invalid/{name}"


def _net():
    net = torch.nn.Linear(3, 2)
    return net


def bound_name(pretrained=False):
    net = _net()
    if pretrained:
        net.load_state_dict(load_state_dict_from_url(URL, progress=False))
    return net


def attribute(pretrained=False):
    net = _net()
    if pretrained:
        net.load_state_dict(torch.hub.load_state_dict_from_url(URL, map_location="cpu"))
    return net


def model_zoo(pretrained=False):
    import torch.utils.model_zoo

    net = _net()
    if pretrained:
        net.load_state_dict(torch.utils.model_zoo.load_url(URL))
    return net


def downloaded(pretrained=False):
    import os, tempfile

    net = _net()
    if pretrained:
        target = os.path.join(tempfile.mkdtemp(), "w.pth")
        torch.hub.download_url_to_file(URL, target, progress=False)
        net.load_state_dict(torch.load(target, weights_only=True))
    return net
"""


@pytest.fixture
def torch_repo(hub_home, files, make_hub_repo, monkeypatch):
    serve_state(files, "net.pth")
    # The hubconf names a host that does not exist; a mirror sends hubcore to the loopback
    # server, which proves the calls went through hubcore and not through torch.hub.
    monkeypatch.setenv("HUBCORE_MIRRORS", f"https://weights.example.invalid/={files.url}/")
    return make_hub_repo({"hubconf.py": HUBCONF.replace("{name}", "net.pth")})


@pytest.mark.parametrize("entry", ["bound_name", "attribute", "model_zoo", "downloaded"])
def test_repository_calls_to_torch_hub_go_through_hubcore(
    torch_repo, entry, torch_home, hub_home, monkeypatch
) -> None:
    originals = (
        torch.hub.load_state_dict_from_url,
        torch.hub.download_url_to_file,
        torch.utils.model_zoo.load_url,
    )
    net = hubcore.load(str(torch_repo), entry, pretrained=True)
    assert equal_states(net.state_dict(), STATE)
    assert (
        torch.hub.load_state_dict_from_url,
        torch.hub.download_url_to_file,
        torch.utils.model_zoo.load_url,
    ) == originals
    assert not torch_home.exists()
    # Cached by hubcore: offline, the same call is served without the network.
    monkeypatch.setenv("HUBCORE_OFFLINE", "1")
    again = torch_hub.load(str(torch_repo), entry, True, source="local")
    assert equal_states(again.state_dict(), STATE)


def test_offline_without_cache_is_a_clear_error(torch_repo, monkeypatch) -> None:
    monkeypatch.setenv("HUBCORE_OFFLINE", "1")
    with pytest.raises(OfflineError, match="offline mode is on"):
        hubcore.load(str(torch_repo), "attribute", pretrained=True)


def test_redirect_when_the_hubconf_is_first_to_import_torch(torch_repo, hub_home, tmp_path):
    """In a fresh interpreter torch is imported by the hubconf itself, during the load."""
    script = textwrap.dedent(
        f"""
        import sys, hubcore
        assert "torch" not in sys.modules
        net = hubcore.load({str(torch_repo)!r}, "bound_name", pretrained=True)
        import torch.hub
        assert not hasattr(torch.hub.load_state_dict_from_url, "__hubcore_original__")
        print(net.weight.sum().item())
        """
    )
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch-home-2")}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.strip()) == float(STATE["weight"].sum())
    assert not (tmp_path / "torch-home-2").exists()


def test_torch_hub_api_lives_in_this_plugin(hub_home) -> None:
    """hubcore.compat.torch_hub re-exports this plugin's module, whose functions are the ones
    the plugin redirects torch.hub's to."""
    from hubcore.plugins import get_plugins
    from hubcore_torch import hub

    assert torch_hub.__all__ == hub.__all__
    assert all(getattr(torch_hub, name) is getattr(hub, name) for name in hub.__all__)
    targets = {(r.module, r.attribute): r.resolve() for r in get_plugins().redirects}
    assert targets[("torch.hub", "load_state_dict_from_url")] is hub.load_state_dict_from_url
    assert targets[("torch.hub", "download_url_to_file")] is hub.download_url_to_file
    assert targets[("torch.utils.model_zoo", "load_url")] is hub.load_state_dict_from_url
