"""The docs' example backend, installed as a third-party distribution, passes the contract."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

example = pytest.importorskip("hubcore_numpy_example")

from hubcore.testing import BackendConformance  # noqa: E402

MODEL_SOURCE = """
from hubcore_numpy_example import NumpyModel


def build(seed=0):
    return NumpyModel({"weight": (3, 4), "bias": (3,)}, seed=seed)
"""


class TestNumpyExampleBackend(BackendConformance):
    backend_name = "numpy-example"
    formats = (".safetensors", ".npz")

    @pytest.fixture
    def model_source(self) -> str:
        return MODEL_SOURCE

    @pytest.fixture
    def other_model(self) -> Any:
        return example.NumpyModel({"weight": (5, 4), "bias": (5,), "scale": (1,)})

    @pytest.fixture
    def save_weights(self) -> Callable[[Any, Path], None]:
        def save(model: Any, path: Path) -> None:
            if path.suffix == ".safetensors":
                from safetensors.numpy import save_file

                save_file(model.state_dict(), str(path))
            else:
                np.savez(path, **model.state_dict())

        return save

    @pytest.fixture
    def to_numpy(self) -> Callable[[Any], dict[str, Any]]:
        return lambda model: model.state_dict()
