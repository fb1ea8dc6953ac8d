"""Package weights as safetensors: one ``model.safetensors``, or shards with an index.

The layout is the one safetensors tools already read: ``model.safetensors`` when the weights fit
under the shard threshold, else ``model-00001-of-0000N.safetensors`` ... and
``model.safetensors.index.json`` (``{"metadata": {"total_size": ...}, "weight_map": {tensor:
file}}``). The core writes the files itself from the tensors a backend exports
(:class:`hubcore.plugins.backends.WeightsExporter`): the format is a length, a JSON header and
the raw bytes, so each tensor is streamed from the framework's own memory into the file and
hashed on the way, without the whole-shard copy a library serializer makes, and without
importing a framework here."""

from __future__ import annotations

import hashlib
import json
import re
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from hubcore.errors import WeightsFormatError
from hubcore.packages.errors import PackageError
from hubcore.packages.files import read_json_file
from hubcore.plugins.backends import ExportedTensor
from hubcore.store.files import atomic_write

__all__ = [
    "DEFAULT_SHARD_BYTES",
    "INDEX_NAME",
    "WEIGHTS_NAME",
    "plan_shards",
    "save_weights",
    "weight_files",
]

WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
#: Shards are cut above this size unless ``max_shard_size`` says otherwise.
DEFAULT_SHARD_BYTES = 2 << 30
_SHARD = re.compile(r"^model-\d{5}-of-\d{5}\.safetensors$")


def plan_shards(tensors: Mapping[str, ExportedTensor], max_bytes: int) -> list[list[str]]:
    """Tensor names grouped into shards of at most *max_bytes* each, in order (a tensor
    larger than that gets a shard of its own)."""
    shards: list[list[str]] = [[]]
    size = 0
    for name, tensor in tensors.items():
        if shards[-1] and size + tensor.nbytes > max_bytes:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += tensor.nbytes
    return shards


def save_weights(
    folder: Path,
    tensors: Mapping[str, ExportedTensor],
    *,
    max_shard_bytes: int = DEFAULT_SHARD_BYTES,
    metadata: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, tuple[str, int]]]:
    """Write *tensors* into *folder*; return the entry file (the weights or the index) and
    ``{file name: (sha256, size)}`` of every file written."""
    if max_shard_bytes <= 0:
        raise PackageError(
            f"max_shard_size must be a positive number of bytes, not {max_shard_bytes}"
        )
    shards = plan_shards(tensors, max_shard_bytes)
    written: dict[str, tuple[str, int]] = {}
    if len(shards) == 1:
        written[WEIGHTS_NAME] = _write_file(folder / WEIGHTS_NAME, shards[0], tensors, metadata)
        return WEIGHTS_NAME, written
    weight_map = {}
    for number, names in enumerate(shards, 1):
        name = f"model-{number:05d}-of-{len(shards):05d}.safetensors"
        written[name] = _write_file(folder / name, names, tensors, metadata)
        weight_map.update(dict.fromkeys(names, name))
    total = sum(t.nbytes for t in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    data = (json.dumps(index, indent=1) + "\n").encode()
    atomic_write(folder / INDEX_NAME, lambda handle: handle.write(data))
    written[INDEX_NAME] = (hashlib.sha256(data).hexdigest(), len(data))
    return INDEX_NAME, written


def _write_file(
    path: Path,
    names: Sequence[str],
    tensors: Mapping[str, ExportedTensor],
    metadata: Mapping[str, str] | None,
) -> tuple[str, int]:
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for name in names:
        tensor = tensors[name]
        header[name] = {
            "dtype": tensor.dtype,
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + tensor.nbytes],
        }
        offset += tensor.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the data starts 8-aligned, as the library writes it
    digest = hashlib.sha256()
    size = 0

    def fill(handle: IO[bytes]) -> None:
        nonlocal size
        for chunk in (struct.pack("<Q", len(raw)), raw):
            digest.update(chunk)
            handle.write(chunk)
        size = 8 + len(raw)
        for name in names:
            tensor = tensors[name]
            data = memoryview(tensor.read()).cast("B")
            if data.nbytes != tensor.nbytes:
                raise WeightsFormatError(
                    f"{name}: the backend exported {data.nbytes} bytes for a {tensor.dtype} "
                    f"tensor of shape {tensor.shape}, which needs {tensor.nbytes}"
                )
            digest.update(data)
            handle.write(data)
            size += data.nbytes

    atomic_write(path, fill)
    return digest.hexdigest(), size


def weight_files(root: Path, entry: str, label: str, *, remote: bool = True) -> list[str]:
    """The weight files of a package whose ``config.json`` names *entry* (the weights file
    or the index), in order; the names are checked to be plain shard names of the folder,
    and each shard to hold exactly the tensors the index places in it (so no tensor is in
    two shards, where the order of applying them would decide)."""
    if entry == WEIGHTS_NAME:
        return [WEIGHTS_NAME]
    if entry != INDEX_NAME:
        raise PackageError(f"{label}: config.json names unknown weights {entry!r}")
    try:
        index = read_json_file(root, INDEX_NAME, label, remote=remote)
    except FileNotFoundError:
        raise PackageError(f"{label}: {INDEX_NAME} is missing") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise PackageError(f"{label}: {INDEX_NAME} has no weight_map")
    files = sorted({f for f in weight_map.values() if isinstance(f, str)})
    bad = [f for f in weight_map.values() if not isinstance(f, str) or not _SHARD.match(f)]
    if bad or not files:
        raise PackageError(f"{label}: {INDEX_NAME} names files that are not shards: {bad}")
    _check_shards(root, files, weight_map, label)
    return files


def _check_shards(
    root: Path, files: Sequence[str], weight_map: Mapping[str, str], label: str
) -> None:
    """Raise :class:`PackageError` unless every tensor of the shards *files* is in the one
    shard the index places it in, and every tensor of the index is in its shard."""
    from hubcore.store.safetensors_header import read_header

    held: dict[str, str] = {}
    for name in files:
        for tensor in read_header(root / name, f"{label}/{name}"):
            if tensor == "__metadata__":
                continue
            if tensor in held or weight_map.get(tensor) != name:
                where = held.get(tensor) or weight_map.get(tensor)
                raise PackageError(
                    f"{label}: the tensor {tensor!r} is in {name} but the index places it in "
                    f"{where}; the package was altered after it was saved"
                )
            held[tensor] = name
    absent = sorted(set(weight_map) - set(held))
    if absent:
        raise PackageError(
            f"{label}: {INDEX_NAME} places tensors in shards that do not hold them: "
            f"{', '.join(absent[:5])}"
        )
