"""The hubcore plugin module of hubcore-torch (the ``hubcore`` entry point)."""

from __future__ import annotations

from collections.abc import Callable

from hubcore import Backend, hookimpl
from hubcore_torch.backend import TorchBackend


@hookimpl
def hubcore_register_backends(register: Callable[[Backend], None]) -> None:
    """Register the PyTorch backend."""
    register(TorchBackend())
