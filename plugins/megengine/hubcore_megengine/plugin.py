"""The hubcore plugin module of hubcore-megengine (the ``hubcore`` entry point)."""

from __future__ import annotations

from collections.abc import Callable

from hubcore import Backend, hookimpl
from hubcore_megengine.backend import MegEngineBackend


@hookimpl
def hubcore_register_backends(register: Callable[[Backend], None]) -> None:
    """Register the MegEngine backend."""
    register(MegEngineBackend())
