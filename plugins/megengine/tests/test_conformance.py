"""hubcore's backend contract, run against the MegEngine backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

mge = pytest.importorskip("megengine")

import megengine.module as M  # noqa: E402

from hubcore.testing import BackendConformance  # noqa: E402

MODEL_SOURCE = """
import numpy as np
import megengine.module as M


class Net(M.Module):
    def __init__(self, seed):
        super().__init__()
        self.fc1 = M.Linear(4, 3)
        self.conv = M.Conv2d(3, 3, 1)
        self.fc2 = M.Linear(3, 2)
        rng = np.random.default_rng(seed)
        shapes = {k: v.shape for k, v in self.state_dict().items()}
        self.load_state_dict(
            {k: rng.standard_normal(s).astype("float32") for k, s in shapes.items()}
        )

    def forward(self, x):
        return self.fc2(self.fc1(x))


def build(seed=0):
    return Net(seed)
"""


class _Other(M.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = M.Linear(4, 5)
        self.fc2 = M.Linear(5, 2)

    def forward(self, x: Any) -> Any:
        return self.fc2(self.fc1(x))


class TestMegEngineBackend(BackendConformance):
    backend_name = "megengine"
    formats = (".safetensors", ".pkl", ".mge")

    @pytest.fixture
    def model_source(self) -> str:
        return MODEL_SOURCE

    @pytest.fixture
    def other_model(self) -> Any:
        return _Other()

    @pytest.fixture
    def save_weights(self) -> Callable[[Any, Path], None]:
        def save(model: Any, path: Path) -> None:
            if path.suffix == ".safetensors":
                from safetensors.numpy import save_file

                save_file(dict(model.state_dict()), str(path))
            else:
                mge.save(model.state_dict(), str(path))

        return save

    @pytest.fixture
    def to_numpy(self) -> Callable[[Any], dict[str, Any]]:
        return lambda model: dict(model.state_dict())
