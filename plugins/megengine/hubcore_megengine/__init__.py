"""MegEngine backend for hubcore.

Installing this distribution registers the ``megengine`` backend through the ``hubcore``
entry-point group; hubcore then applies ``@pretrained`` weights to any
``megengine.module.Module`` an entrypoint returns. MegEngine's pickled state dicts are read
with a restricted unpickler (arrays and containers only), never with plain ``pickle``.
:mod:`hubcore_megengine.hub` is ``megengine.hub``'s API on hubcore (also importable as
``hubcore.compat.megengine_hub``).
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hubcore_megengine.backend import MegEngineBackend, load_weights, safe_load

__all__ = ["MegEngineBackend", "load_weights", "safe_load"]


def __getattr__(name: str) -> Any:
    # imported on first use: hubcore imports this package (for its plugin module) in every
    # command, most of which need no backend
    if name in __all__:
        from hubcore_megengine import backend

        return getattr(backend, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
