"""``save_pretrained``: a model, its configuration and (when needed) its code, as a package.

A package folder holds::

    config.json                    the configuration + a "hubcore" section (framework, how
                                   to build the model, hubcore version, weights entry)
    model.safetensors              or model-0000N-of-0000M.safetensors + the index
    model.safetensors.index.json
    <module>.py ...                shipped code, when the classes are not installed/registered
    README.md                      the model card (front matter + a usage snippet)
    hubcore-manifest.json          sha256 and size of every other file; written last
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hubcore._version import VERSION
from hubcore.errors import NoBackendError
from hubcore.packages.code import class_ref, shipped_files
from hubcore.packages.config import (
    CONFIG_FORMAT,
    CONFIG_NAME,
    config_to_dict,
    is_model_config,
    write_config_json,
)
from hubcore.packages.errors import PackageError
from hubcore.packages.manifest import MANIFEST, record_verified, write_manifest
from hubcore.packages.types import model_types
from hubcore.packages.weights import DEFAULT_SHARD_BYTES, INDEX_NAME, save_weights
from hubcore.plugins import get_plugins
from hubcore.plugins.backends import exporter_of
from hubcore.store.cache import file_sha256, get_cache
from hubcore.store.files import atomic_copy, atomic_write

__all__ = ["package_files", "parse_size", "save_pretrained"]

CARD_NAME = "README.md"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B?\s*$", re.IGNORECASE)
_OLD_WEIGHTS = re.compile(r"^model(-\d{5}-of-\d{5})?\.safetensors$")


def parse_size(size: int | str) -> int:
    """Bytes from ``2_000_000``, ``"500MB"`` or ``"2GiB"`` (decimal or binary units)."""
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    match = _SIZE.match(str(size))
    if not match:
        raise PackageError(f"max_shard_size={size!r} is not a size such as 2GB or 500MiB")
    number, unit, binary = match.groups()
    base = 1024 if binary else 1000
    return int(float(number) * base ** " KMGT".index(unit.upper() or " "))


def save_pretrained(
    model: Any,
    folder: str | os.PathLike[str],
    *,
    config: Any,
    build: Callable[[Any], Any] | None = None,
    model_card: str | Mapping[str, Any] | None = None,
    max_shard_size: int | str = DEFAULT_SHARD_BYTES,
) -> Path:
    """Save *model* with its *config* (a :func:`hubcore.model_config` instance) as a package
    in *folder* and return the folder.

    The model is rebuilt on load by the registered model type of ``config.model_type``
    if there is one, else by *build* (a class or function taking the config; the model's
    class by default). Classes not importable from an installed distribution are shipped as
    source. Weights are written as safetensors through the backend that recognises the
    model, in shards above *max_shard_size* (bytes, or ``"2GB"``). *model_card* is the
    ``README.md`` text, or the front matter (``title``, ``summary``, ``tags``, ``license``,
    ``author``) of the card written otherwise. The manifest is written last, and the
    files' sha256 are recorded as checked (see :mod:`hubcore.packages.manifest`).
    """
    if not is_model_config(config):
        raise PackageError(
            f"config= must be an instance of a @hubcore.model_config class, not "
            f"{type(config).__name__}"
        )
    backend = get_plugins().backend_for(model)
    if backend is None:
        raise NoBackendError(
            f"no installed backend recognises {type(model).__name__}, so it cannot be saved; "
            "install the plugin for its framework (hubcore-torch, hubcore-megengine)"
        )
    exporter = exporter_of(backend)
    if exporter is None:
        raise NoBackendError(
            f"the {backend.name} backend cannot export weights (no export_weights); update "
            "its plugin to save packages"
        )
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    (target / MANIFEST).unlink(missing_ok=True)  # incomplete until the new manifest is written
    section: dict[str, Any] = {
        "format": CONFIG_FORMAT,
        "framework": backend.name,
        "hubcore_version": VERSION,
    }
    registered = model_types().get(config.model_type)
    code: dict[str, Path] = {}
    if registered is not None and registered.config is type(config) and build is None:
        section["build"] = None  # the registered type builds it
    else:
        refs = [class_ref(type(config)), class_ref(build or type(model))]
        section["config_class"], section["build"] = refs[0].text, refs[1].text
        dists = {r.distribution for r in refs if r.distribution}
        if dists:
            section["distributions"] = sorted(dists)
        code = shipped_files(refs)
        if code:
            section["code"] = sorted(code)
    for stale in os.listdir(target):
        if _OLD_WEIGHTS.match(stale) or stale == INDEX_NAME:
            (target / stale).unlink()
    entry, written = save_weights(
        target,
        exporter.export_weights(model),
        max_shard_bytes=parse_size(max_shard_size),
        metadata={"format": backend.name},
    )
    section["weights"] = entry
    for rel, source in code.items():
        atomic_copy(source, target / rel)
    written[CONFIG_NAME] = write_config_json(target, {**config_to_dict(config), "hubcore": section})
    if isinstance(model_card, str) or not (target / CARD_NAME).is_file():
        text = model_card if isinstance(model_card, str) else _card(config, section, model_card)
        data = text.encode()
        atomic_write(target / CARD_NAME, lambda handle: handle.write(data))
    files, checked = {}, {}
    for rel in package_files(target):
        st = os.stat(target / rel)  # before reading; just after writing what was written
        sha, size = written.get(rel) or (file_sha256(target / rel), st.st_size)
        files[rel], checked[rel] = (sha, size), (sha, st)
    write_manifest(target, files)
    # Every sha256 above is of bytes just written or read: a push or load of this folder
    # next hashes only the files changed since.
    record_verified(target, checked, get_cache())
    return target


def package_files(folder: Path) -> list[str]:
    """The files of a package folder the manifest lists: all but the manifest, hidden
    temporary files and ``__pycache__``."""
    found = []
    for dirpath, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "__pycache__" and not d.startswith(".")]
        rel = os.path.relpath(dirpath, folder).replace(os.sep, "/")
        for name in names:
            path = name if rel == "." else f"{rel}/{name}"
            if path != MANIFEST and not name.startswith("."):
                found.append(path)
    return sorted(found)


def _card(config: Any, section: Mapping[str, Any], info: Mapping[str, Any] | None) -> str:
    """A model card: front matter, then what the model is and how to load it."""
    info = dict(info or {})
    title = str(info.get("title") or f"{config.model_type} model")
    summary = str(info.get("summary") or f"A {config.model_type} model ({section['framework']}).")
    front: dict[str, Any] = {
        "title": title,
        "summary": summary,
        "tags": [str(t) for t in info.get("tags", [config.model_type, section["framework"]])],
        "license": str(info.get("license") or "unknown"),
        "author": str(info.get("author") or "unknown"),
    }
    lines = ["---", *(f"{k}: {json.dumps(v)}" for k, v in front.items()), "---", ""]
    lines += [f"# {title}", "", summary, "", "## Usage", "", "```python"]
    lines += ["import hubcore", "", 'model = hubcore.load("<where this package is>")', "```", ""]
    fields = config_to_dict(config)
    lines += ["## Configuration", "", "```json", json.dumps(fields, indent=2), "```", ""]
    return "\n".join(lines)
