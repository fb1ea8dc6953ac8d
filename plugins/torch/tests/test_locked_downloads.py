"""A locked load checks the downloads a repository makes through torch.hub's own functions.

Many torch.hub repositories fetch their weights inside the entrypoint with
``torch.hub.download_url_to_file`` or ``load_state_dict_from_url`` (or the old
``torch.utils.model_zoo.load_url``) instead of declaring them; hubcore redirects those calls, so
the sha256 that ``hubcore lock`` recorded for a URL holds there too, also when the repository
calls them from a thread pool or a thread it starts.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import hubcore
from hubcore.errors import IntegrityError
from tests.lockedhub import locked_hub

torch = pytest.importorskip("torch")


def hubconf(url: str) -> str:
    return f'''
import concurrent.futures
import os
import threading

import torch
import torch.hub
import torch.utils.model_zoo
from hubcore import pretrained

dependencies = ["torch"]
URL = {url!r}


@pretrained(URL)
def declared():
    """Declares its weights, so the lock records their sha256."""
    return torch.nn.Linear(4, 3)


def to_file(dst):
    """Fetches the same weights itself, as many torch.hub repositories do."""
    torch.hub.download_url_to_file(URL, dst, progress=False)
    return open(dst, "rb").read()


def state_dict():
    """Loads them with torch.hub's state-dict helper."""
    return torch.hub.load_state_dict_from_url(URL, progress=False)


def model_zoo():
    """Loads them under the helper's old name."""
    return torch.utils.model_zoo.load_url(URL, progress=False)


def pooled_to_file(dst):
    """Fetches them from a worker of a thread pool."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(torch.hub.download_url_to_file, URL, dst, None, False).result()
    return open(dst, "rb").read()


def threaded_state_dict():
    """Loads them in a thread it starts."""
    out = {{}}

    def run():
        try:
            out["value"] = torch.hub.load_state_dict_from_url(URL, progress=False)
        except Exception as exc:
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]
'''


def state_bytes(seed: int) -> bytes:
    torch.manual_seed(seed)
    buffer = io.BytesIO()
    torch.save(torch.nn.Linear(4, 3).state_dict(), buffer)
    return buffer.getvalue()


@pytest.fixture
def locked(hub_home, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # if a call escaped hubcore
    monkeypatch.chdir(tmp_path)
    with locked_hub(tmp_path, "linear.pth", state_bytes(1), hubconf) as served:
        yield served


ENTRIES = ["to_file", "state_dict", "model_zoo", "pooled_to_file", "threaded_state_dict"]


@pytest.mark.parametrize("entry", ENTRIES)
def test_the_locked_bytes_load(locked, tmp_path, entry) -> None:
    git, _ = locked
    args = (str(tmp_path / "out.pth"),) if entry.endswith("to_file") else ()
    result = hubcore.load("acme/hub:main", entry, *args, host=git.url)
    if entry.endswith("to_file"):
        assert result == state_bytes(1)
    else:
        assert torch.equal(result["weight"], torch.load(io.BytesIO(state_bytes(1)))["weight"])


@pytest.mark.parametrize("entry", ENTRIES)
def test_replaced_bytes_behind_a_locked_url_are_refused(locked, tmp_path, monkeypatch, entry):
    git, files = locked
    files.add("linear.pth", state_bytes(2))  # replaced behind the same URL
    monkeypatch.setenv("HUBCORE_HOME", str(tmp_path / "another-machine"))
    out = tmp_path / "out.pth"
    args = (str(out),) if entry.endswith("to_file") else ()
    with pytest.raises(IntegrityError, match="recorded in the lock file"):
        hubcore.load("acme/hub:main", entry, *args, host=git.url)
    assert not out.exists()  # nothing written where the repository asked
