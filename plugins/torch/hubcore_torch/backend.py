"""Reading ``.pt``/``.pth`` (zip or legacy pickle) and ``.safetensors`` files for PyTorch."""

from __future__ import annotations

import pickle
import sys
from collections.abc import Mapping
from typing import Any

from hubcore import WeightsFile
from hubcore.api import load_weights as _load_weights
from hubcore.backends import fit_state, sniff_format, unwrap_checkpoint
from hubcore.errors import WeightsFormatError


class TorchBackend:
    """The ``torch`` backend: recognises ``torch.nn.Module`` objects."""

    name = "torch"

    def recognizes(self, obj: object) -> bool:
        torch = sys.modules.get("torch")  # a torch model implies torch is already imported
        return torch is not None and isinstance(obj, torch.nn.Module)

    def read_weights(
        self,
        file: WeightsFile,
        *,
        map_location: Any = None,
        weights_only: bool = True,
        unwrap: bool = True,
    ) -> Any:
        """Read *file*; ``weights_only=False`` allows arbitrary pickles (trusted files only),
        ``unwrap=False`` returns a training checkpoint as stored."""
        import torch

        if file.suffix == ".safetensors" or sniff_format(file.path) == "safetensors":
            from safetensors.torch import load_file

            device = map_location if isinstance(map_location, str | torch.device) else "cpu"
            return load_file(str(file.path), device=str(device))
        try:
            state = torch.load(file.path, map_location=map_location, weights_only=weights_only)
        except pickle.UnpicklingError as exc:
            raise WeightsFormatError(
                f"{file.name} holds Python objects beyond tensors, so it was not unpickled "
                f"(loading it could run arbitrary code): {str(exc).splitlines()[0]}. Prefer a "
                ".safetensors file; pass weights_only=False only for a file you trust."
            ) from exc
        except RuntimeError as exc:
            raise WeightsFormatError(f"{file.name} is not a readable torch file: {exc}") from exc
        if not unwrap:
            return state
        return unwrap_checkpoint(state, lambda v: isinstance(v, torch.Tensor))

    def apply_weights(self, model: Any, state: Any, *, strict: bool = True) -> None:
        fitted = fit_state(model.state_dict(), state, strict=strict, model=type(model).__name__)
        model.load_state_dict(fitted, strict=strict)

    def summarize(self, model: Any) -> Mapping[str, Any]:
        params = list(model.parameters())
        summary: dict[str, Any] = {"parameters": sum(p.numel() for p in params)}
        if params:
            summary["dtype"] = str(params[0].dtype).removeprefix("torch.")
            summary["device"] = str(params[0].device)
        return summary


def load_weights(
    url: str,
    *,
    sha256: str | None = None,
    map_location: Any = None,
    weights_only: bool = True,
    progress: bool | None = None,
    offline: bool | None = None,
) -> Any:
    """Fetch *url* through hubcore's cache and return its state dict (torch tensors).

    The counterpart of ``torch.hub.load_state_dict_from_url``: any fsspec URL or path, cached
    by content, verified against *sha256* when given, read safely (``weights_only=True``).
    """
    return _load_weights(
        url,
        backend="torch",
        sha256=sha256,
        progress=progress,
        offline=offline,
        map_location=map_location,
        weights_only=weights_only,
    )
