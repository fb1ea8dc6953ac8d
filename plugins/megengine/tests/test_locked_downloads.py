"""A locked load checks what a repository fetches through megengine.hub's own functions.

MegEngine repositories declare weights with ``megengine.hub.pretrained`` and sometimes fetch
them inside the entrypoint with ``load_serialized_obj_from_url``; hubcore redirects both, so the
sha256 that ``hubcore lock`` recorded for a URL holds for each.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

import hubcore
from hubcore.errors import IntegrityError
from tests.lockedhub import locked_hub

mge = pytest.importorskip("megengine")


def hubconf(url: str) -> str:
    return f'''
import megengine.hub as hub
import megengine.module as M

dependencies = ["megengine"]
URL = {url!r}


@hub.pretrained(URL)
def declared():
    """Declares its weights with megengine.hub's decorator."""
    return M.Linear(4, 3)


def fetched():
    """Fetches the same weights itself."""
    return hub.load_serialized_obj_from_url(URL)
'''


def state_bytes(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    state = {
        "weight": rng.standard_normal((3, 4)).astype("float32"),
        "bias": rng.standard_normal(3).astype("float32"),
    }
    buffer = io.BytesIO()
    mge.save(state, buffer)
    return buffer.getvalue()


@pytest.fixture
def locked(hub_home, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with locked_hub(tmp_path, "linear.pkl", state_bytes(1), hubconf) as served:
        yield served


def test_the_locked_bytes_load(locked) -> None:
    git, _ = locked
    model = hubcore.load("acme/hub:main", "declared", host=git.url, pretrained=True)
    expected = mge.load(io.BytesIO(state_bytes(1)))
    np.testing.assert_array_equal(model.weight.numpy(), expected["weight"])
    fetched = hubcore.load("acme/hub:main", "fetched", host=git.url)
    np.testing.assert_array_equal(np.asarray(fetched["bias"]), expected["bias"])


@pytest.mark.parametrize("entry", ["declared", "fetched"])
def test_replaced_bytes_behind_a_locked_url_are_refused(locked, tmp_path, monkeypatch, entry):
    git, files = locked
    files.add("linear.pkl", state_bytes(2))  # replaced behind the same URL
    monkeypatch.setenv("HUBCORE_HOME", str(tmp_path / "another-machine"))
    kwargs = {"pretrained": True} if entry == "declared" else {}
    with pytest.raises(IntegrityError, match="recorded in the lock file"):
        hubcore.load("acme/hub:main", entry, host=git.url, **kwargs)
