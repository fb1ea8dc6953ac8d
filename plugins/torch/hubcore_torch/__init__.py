"""PyTorch backend for hubcore.

Installing this distribution registers the ``torch`` backend through the ``hubcore``
entry-point group; hubcore then applies ``@pretrained`` weights to any ``torch.nn.Module`` an
entrypoint returns. :func:`load_weights` is hubcore's ``load_state_dict_from_url``.
:mod:`hubcore_torch.hub` is ``torch.hub``'s API on hubcore (also importable as
``hubcore.compat.torch_hub``).
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hubcore_torch.backend import TorchBackend, load_weights

__all__ = ["TorchBackend", "load_weights"]


def __getattr__(name: str) -> Any:
    # imported on first use: hubcore imports this package (for its plugin module) in every
    # command, most of which need no backend
    if name in __all__:
        from hubcore_torch import backend

        return getattr(backend, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
