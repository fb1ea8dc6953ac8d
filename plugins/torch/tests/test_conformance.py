"""hubcore's backend contract, run against the PyTorch backend."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from hubcore.testing import BackendConformance  # noqa: E402

MODEL_SOURCE = """
import torch
from torch import nn


def build(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
"""


class TestTorchBackend(BackendConformance):
    backend_name = "torch"
    formats = (".safetensors", ".pth", ".pt")

    @pytest.fixture
    def model_source(self) -> str:
        return MODEL_SOURCE

    @pytest.fixture
    def other_model(self) -> Any:
        return torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Linear(5, 2))

    @pytest.fixture
    def save_weights(self) -> Callable[[Any, Path], None]:
        def save(model: Any, path: Path) -> None:
            if path.suffix == ".safetensors":
                from safetensors.torch import save_file

                save_file(model.state_dict(), str(path))
            else:
                torch.save(model.state_dict(), path)

        return save

    @pytest.fixture
    def to_numpy(self) -> Callable[[Any], dict[str, Any]]:
        return lambda model: {k: v.detach().numpy() for k, v in model.state_dict().items()}
