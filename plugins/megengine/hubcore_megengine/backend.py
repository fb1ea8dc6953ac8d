"""Reading MegEngine's serialized state dicts (``.pkl``/``.mge``) and ``.safetensors``."""

from __future__ import annotations

import importlib
import pickle
import sys
from collections.abc import Mapping
from typing import IO, Any

import numpy as np

from hubcore import WeightsFile
from hubcore.api import load_weights as _load_weights
from hubcore.errors import WeightsFormatError
from hubcore.plugins.backends import (
    ExportedTensor,
    export_array,
    fit_state,
    sniff_format,
    unwrap_checkpoint,
)
from hubcore.store.safetensors_header import read_header, read_safetensors

#: The only globals a state-dict pickle may reference: containers, numpy arrays and scalars,
#: and MegEngine tensors (rebuilt from numpy data). Anything else is refused.
ALLOWED_GLOBALS = frozenset(
    {
        ("collections", "OrderedDict"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("megengine.tensor", "Tensor"),
        ("megengine.tensor", "Parameter"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "complex"),
    }
)


class _StateDictUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_GLOBALS or (
            module == "numpy.dtypes" and name.endswith("DType")
        ):
            return getattr(importlib.import_module(module), name)
        raise WeightsFormatError(
            f"refusing to unpickle {module}.{name}: a state dict holds only arrays and "
            "containers, and unpickling other objects can run arbitrary code"
        )


def safe_load(fh: IO[bytes]) -> Any:
    """Unpickle a MegEngine state dict from *fh*, allowing only :data:`ALLOWED_GLOBALS`."""
    try:
        return _StateDictUnpickler(fh).load()
    except WeightsFormatError:
        raise
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError) as exc:
        raise WeightsFormatError(f"not a readable MegEngine state dict: {exc}") from exc


def _is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) or type(value).__module__.startswith("megengine")


#: safetensors dtypes numpy maps as they are stored (little-endian).
_NUMPY_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U64": "<u8",
    "U32": "<u4",
    "U16": "<u2",
    "U8": "u1",
    "BOOL": "?",
}


def map_safetensors(file: WeightsFile) -> dict[str, np.ndarray] | None:
    """The arrays of a safetensors *file*, memory-mapped copy-on-write (MegEngine copies
    each into its own tensor, so reading them into memory first would be a second copy);
    ``None`` when a dtype has no numpy equivalent (bfloat16): read it with safetensors."""
    header = read_header(file.path, file.name)  # refuses malformed files, as every reader
    with file.path.open("rb") as fh:
        start = 8 + int.from_bytes(fh.read(8), "little")
    arrays: dict[str, np.ndarray] = {}
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        dtype = _NUMPY_DTYPES.get(entry.get("dtype"))
        if dtype is None:
            return None
        shape = tuple(int(n) for n in entry.get("shape", ()))
        begin, end = entry["data_offsets"]
        if end - begin != int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize:
            raise WeightsFormatError(f"{file.name}: tensor {key!r} has the wrong byte size")
        if begin == end:
            arrays[key] = np.zeros(shape, dtype)
        else:
            arrays[key] = np.memmap(file.path, dtype, "c", start + begin, shape)
    return arrays


class MegEngineBackend:
    """The ``megengine`` backend: recognises ``megengine.module.Module`` objects."""

    name = "megengine"

    def recognizes(self, obj: object) -> bool:
        module = sys.modules.get("megengine.module")
        return module is not None and isinstance(obj, module.Module)

    def read_weights(
        self, file: WeightsFile, *, map_location: Any = None, unwrap: bool = True
    ) -> Any:
        """Read *file* safely; ``unwrap=False`` returns a training checkpoint as stored."""
        if file.suffix == ".safetensors" or sniff_format(file.path) == "safetensors":
            mapped = map_safetensors(file)
            if mapped is not None:
                return mapped
            from safetensors.numpy import load_file

            return read_safetensors(file.path, load_file, file.name)
        with file.path.open("rb") as fh:
            state = safe_load(fh)
        if unwrap:
            state = unwrap_checkpoint(state, _is_array)
        if isinstance(map_location, str) and isinstance(state, Mapping):
            state = {k: v.to(map_location) if hasattr(v, "to") else v for k, v in state.items()}
        return state

    def apply_weights(self, model: Any, state: Any, *, strict: bool = True) -> None:
        fitted = fit_state(model.state_dict(), state, strict=strict, model=type(model).__name__)
        model.load_state_dict(fitted, strict=strict)

    def export_weights(self, model: Any) -> Mapping[str, ExportedTensor]:
        """The model's state dict (numpy arrays) for saving as safetensors."""
        return {k: export_array(np.asarray(v), k) for k, v in model.state_dict().items()}

    def summarize(self, model: Any) -> Mapping[str, Any]:
        params = list(model.parameters())
        summary: dict[str, Any] = {"parameters": sum(int(np.prod(p.shape)) for p in params)}
        if params:
            summary["dtype"] = str(params[0].dtype)
        return summary


def load_weights(
    url: str,
    *,
    sha256: str | None = None,
    map_location: Any = None,
    progress: bool | None = None,
    offline: bool | None = None,
) -> Any:
    """Fetch *url* through hubcore's cache and return its state dict (numpy arrays).

    The counterpart of ``megengine.hub.load_serialized_obj_from_url``, but cached by content,
    verified against *sha256* when given, and unpickled safely.
    """
    return _load_weights(
        url,
        backend="megengine",
        sha256=sha256,
        progress=progress,
        offline=offline,
        map_location=map_location,
    )
