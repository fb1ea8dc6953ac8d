"""The docs' example backends, installed as a third-party distribution, pass the contract:
``numpy-example`` (in place, opens whole-model .npz files) and ``numpy-functional`` (a
functional framework whose apply_weights returns a new model)."""

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

FUNCTIONAL_SOURCE = """
from hubcore_numpy_example.functional import Linear


def build(seed=0):
    module = Linear(features=3, inputs=4)
    return module.bind(module.init(seed))
"""


def save_arrays(arrays: dict[str, Any], path: Path) -> None:
    """Write *arrays* as .safetensors or .npz, by the suffix of *path*."""
    if path.suffix == ".safetensors":
        from safetensors.numpy import save_file

        save_file(arrays, str(path))
    else:
        np.savez(path, **arrays)


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
        return lambda model, path: save_arrays(model.state_dict(), path)

    @pytest.fixture
    def save_model(self) -> Callable[[Any, Path], None]:
        def save(model: Any, path: Path) -> None:
            save_arrays({example.ARCHITECTURE: np.array("linear"), **model.state_dict()}, path)

        return save

    @pytest.fixture
    def to_numpy(self) -> Callable[[Any], dict[str, Any]]:
        return lambda model: model.state_dict()


class TestNumpyFunctionalBackend(BackendConformance):
    backend_name = "numpy-functional"
    formats = (".safetensors", ".npz")

    @pytest.fixture
    def model_source(self) -> str:
        return FUNCTIONAL_SOURCE

    @pytest.fixture
    def other_model(self) -> Any:
        from hubcore_numpy_example.functional import Linear

        module = Linear(features=5, inputs=4)
        return module.bind(module.init(0))

    @pytest.fixture
    def save_weights(self) -> Callable[[Any, Path], None]:
        return lambda model, path: save_arrays(dict(model.params), path)

    @pytest.fixture
    def to_numpy(self) -> Callable[[Any], dict[str, Any]]:
        return lambda model: dict(model.params)
