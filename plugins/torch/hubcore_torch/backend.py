"""Reading ``.pt``/``.pth`` (zip or legacy pickle) and ``.safetensors`` files for PyTorch."""

from __future__ import annotations

import pickle
import re
import sys
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from functools import partial
from typing import Any

from hubcore import WeightsFile
from hubcore.api import load_weights as _load_weights
from hubcore.errors import WeightsFormatError
from hubcore.plugins.backends import ExportedTensor, fit_state, sniff_format, unwrap_checkpoint
from hubcore.store.safetensors_header import read_safetensors


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
            return read_safetensors(
                file.path, lambda p: load_file(p, device=str(device)), file.name
            )
        # torch's zip format can be memory-mapped: tensors are read when used, not copied.
        mmap = sniff_format(file.path) == "zip"
        try:
            state = torch.load(
                file.path, map_location=map_location, weights_only=weights_only, mmap=mmap
            )
        except pickle.UnpicklingError as exc:
            raise _unpickling_error(file, exc) from exc
        except RuntimeError as exc:
            raise WeightsFormatError(f"{file.name} is not a readable torch file: {exc}") from exc
        except Exception as exc:  # a damaged pickle breaks the unpickler in many ways
            raise _unpickling_error(file, exc) from exc
        if not unwrap:
            return state
        return unwrap_checkpoint(state, lambda v: isinstance(v, torch.Tensor))

    def apply_weights(self, model: Any, state: Any, *, strict: bool = True) -> None:
        fitted = fit_state(model.state_dict(), state, strict=strict, model=type(model).__name__)
        model.load_state_dict(fitted, strict=strict)

    def export_weights(self, model: Any) -> Mapping[str, ExportedTensor]:
        """The model's state dict as raw bytes, for saving as safetensors (no copy for
        contiguous CPU tensors; others are copied when written)."""
        exported = {}
        for name, tensor in model.state_dict().items():
            code = _SAFETENSORS_CODES.get(str(tensor.dtype).removeprefix("torch."))
            if code is None:
                raise WeightsFormatError(
                    f"{name}: a tensor of dtype {tensor.dtype} cannot be saved as safetensors"
                )
            exported[name] = ExportedTensor(code, tuple(tensor.shape), partial(_raw, tensor))
        return exported

    def building_for_weights(self) -> AbstractContextManager[Any]:
        """Parameters registered while the model is built are created on ``meta``
        (:mod:`hubcore_torch.assign`); nothing changes while torch is not imported."""
        from hubcore_torch.assign import building

        return building()

    def assign_weights(
        self,
        model: Any,
        files: Sequence[WeightsFile],
        build: Any,
        *,
        strict: bool,
        map_location: Any = None,
        **options: Any,
    ) -> None:
        """Assign the memory-mapped weights of *files* to *model* built on ``meta``."""
        from hubcore_torch.assign import assign

        assign(
            model, files, build, strict=strict, read=self.read_weights, map_location=map_location
        )

    def summarize(self, model: Any) -> Mapping[str, Any]:
        params = list(model.parameters())
        summary: dict[str, Any] = {"parameters": sum(p.numel() for p in params)}
        if params:
            summary["dtype"] = str(params[0].dtype).removeprefix("torch.")
            summary["device"] = str(params[0].device)
        return summary


_SAFETENSORS_CODES = {
    "bool": "BOOL", "uint8": "U8", "int8": "I8", "int16": "I16", "uint16": "U16",
    "float16": "F16", "bfloat16": "BF16", "int32": "I32", "uint32": "U32", "float32": "F32",
    "int64": "I64", "uint64": "U64", "float64": "F64", "float8_e4m3fn": "F8_E4M3",
    "float8_e5m2": "F8_E5M2",
}  # fmt: skip


def _raw(tensor: Any) -> Any:
    """The bytes of *tensor* (little-endian, row-major) as a numpy view."""
    import torch

    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy() if flat.numel() else b""


def _unpickling_error(file: WeightsFile, exc: Exception) -> WeightsFormatError:
    """Tell a file that is not a torch file, or a damaged one, from one holding objects
    beyond tensors: torch reports all three as one unpickling error."""
    text = str(exc)
    # weights_only's message buries the unpickler's own words after this marker.
    _, marker, rest = text.partition("WeightsUnpickler error:")
    detail = next(
        (line.strip() for line in (rest if marker else text).splitlines() if line.strip()), ""
    )
    detail = detail or type(exc).__name__
    if sniff_format(file.path) not in ("zip", "pickle"):
        return WeightsFormatError(
            f"{file.name} is not a torch file (neither torch's zip format nor a pickle): "
            f"{detail}. Is it a download error page, or a file of another framework?"
        )
    if marker and re.search(r"global|class", detail, re.IGNORECASE):
        return WeightsFormatError(
            f"{file.name} holds Python objects beyond tensors, so it was not unpickled "
            f"(loading it could run arbitrary code): {detail}. Prefer a .safetensors file; "
            "pass weights_only=False only for a file you trust."
        )
    return WeightsFormatError(f"{file.name} is not a readable torch file (damaged?): {detail}")


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
