"""Checking a safetensors file before a framework reads it, so every backend refuses a
malformed one the same way (:class:`~hubcore.errors.WeightsFormatError`).

A safetensors file is an 8-byte little-endian header length, a JSON header mapping tensor
names to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (plus an optional
``__metadata__``), then the tensor bytes. The ``safetensors`` library accepts a header that
names a tensor twice (the last entry wins), so a file can show one tensor to a reviewer's
tool and another to the loader; that is refused here, as are a header larger than
:data:`MAX_HEADER`, a file shorter than its header says, and tensors whose bytes lie past the
end of the file. Framework-free: backends call :func:`read_safetensors` with their own loader.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hubcore.errors import WeightsFormatError

__all__ = ["MAX_HEADER", "read_header", "read_safetensors"]

#: The largest header accepted, as the safetensors library itself limits it.
MAX_HEADER = 100_000_000

T = TypeVar("T")


class _DuplicateKey(Exception):
    pass


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def read_header(path: Path, name: str | None = None) -> dict[str, Any]:
    """The JSON header of the safetensors file at *path*, checked as the module docstring
    says; *name* is how messages call the file (its file name by default)."""
    label = name or path.name
    with path.open("rb") as fh:
        size = path.stat().st_size
        head = fh.read(8)
        if len(head) < 8:
            raise WeightsFormatError(f"{label} is too short to be a safetensors file")
        (length,) = struct.unpack("<Q", head)
        if length > MAX_HEADER:
            raise WeightsFormatError(
                f"{label}: its safetensors header claims {length} bytes, more than the "
                f"{MAX_HEADER} accepted; the file is corrupt or not safetensors"
            )
        if 8 + length > size:
            raise WeightsFormatError(
                f"{label} is truncated: its safetensors header needs {length} bytes, the "
                f"file has {size - 8} after the length"
            )
        raw = fh.read(length)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_refuse_duplicates)
    except _DuplicateKey as exc:
        raise WeightsFormatError(
            f"{label}: its safetensors header names {str(exc)!r} more than once, so readers "
            "may disagree on which tensor it is; the file is refused"
        ) from None
    except (ValueError, RecursionError) as exc:  # also UnicodeDecodeError; nesting too deep
        raise WeightsFormatError(f"{label}: its safetensors header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise WeightsFormatError(f"{label}: its safetensors header is not a JSON object")
    data = size - 8 - length
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(type(o) is int for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]
        ):
            raise WeightsFormatError(f"{label}: tensor {key!r} has no valid data_offsets")
        if offsets[1] > data:
            raise WeightsFormatError(
                f"{label} is truncated: tensor {key!r} ends at byte {offsets[1]} of the data, "
                f"which has {data} bytes"
            )
    return header


def read_safetensors(path: Path, load: Callable[[str], T], name: str | None = None) -> T:
    """Check the file at *path* (:func:`read_header`), then read it with *load* (such as
    ``safetensors.torch.load_file``); the library's own refusals become
    :class:`~hubcore.errors.WeightsFormatError` too."""
    from safetensors import SafetensorError  # type: ignore[import-not-found, unused-ignore]

    read_header(path, name)
    try:
        return load(str(path))
    except (SafetensorError, ValueError, KeyError, TypeError) as exc:  # dtypes it cannot map
        raise WeightsFormatError(
            f"{name or path.name} is not a readable safetensors file: {exc}"
        ) from exc
