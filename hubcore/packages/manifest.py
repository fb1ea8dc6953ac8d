"""The manifest of a model package: the sha256 and size of every file, written last.

``hubcore-manifest.json`` lists every file of the package but itself::

    {"format": 1, "files": {"config.json": {"sha256": "...", "size": 412}, ...}}

Its own sha256 is the package's *digest*: ``revision="sha256:<digest>"`` pins a package on a
store that has no commits. A folder with ``config.json`` but no manifest is an incomplete
package (a push in progress or interrupted). Loading checks every listed file: its size
always, its sha256 when the file is new or changed since it was last checked (a record of
``(size, mtime, ctime, inode)`` per file kept in the cache), so a warm load hashes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hubcore.packages.errors import IncompletePackageError, PackageError, PackageIntegrityError
from hubcore.store.cache import Cache, file_sha256
from hubcore.store.files import atomic_write, atomic_write_json

__all__ = [
    "FORMAT",
    "MANIFEST",
    "check_pin",
    "digest_of",
    "manifest_bytes",
    "read_manifest",
    "verify_files",
    "write_manifest",
]

MANIFEST = "hubcore-manifest.json"
FORMAT = 1
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
#: Files a load or an import may add to a package folder; never listed, never refused.
_LITTER = ("__pycache__/",)
_verified: dict[tuple[str, str], tuple[int, ...]] = {}  # (root, file) -> stamp, this process
_verified_lock = threading.Lock()


def manifest_bytes(files: Mapping[str, tuple[str, int]]) -> bytes:
    """The manifest of *files* (``{relative path: (sha256, size)}``), as written."""
    entries = {name: {"sha256": sha, "size": size} for name, (sha, size) in sorted(files.items())}
    return (json.dumps({"format": FORMAT, "files": entries}, indent=1) + "\n").encode()


def write_manifest(folder: Path, files: Mapping[str, tuple[str, int]]) -> str:
    """Write the manifest of *files* into *folder* atomically; return the package digest."""
    data = manifest_bytes(files)
    atomic_write(folder / MANIFEST, lambda handle: handle.write(data))
    return hashlib.sha256(data).hexdigest()


def digest_of(root: Path) -> str:
    """The sha256 of *root*'s manifest file (the package digest)."""
    return file_sha256(root / MANIFEST)


def check_pin(root: Path, pin: str, label: str) -> None:
    """Raise :class:`~hubcore.errors.LockMismatchError` unless the package in *root* has the
    digest *pin* (``sha256:<hex>`` or the hex alone)."""
    from hubcore.errors import LockMismatchError

    wanted = pin.removeprefix("sha256:")
    try:
        actual = digest_of(root)
    except FileNotFoundError:
        actual = f"(none: no {MANIFEST}, an incomplete package)"
    if actual != wanted:
        raise LockMismatchError(
            f"{label} is now the package sha256:{actual}, not the pinned sha256:{wanted}; a "
            "plain store keeps only its latest push (versions are the registry's job)"
        )


def read_manifest(root: Path, label: str) -> dict[str, tuple[str, int]]:
    """``{relative path: (sha256, size)}`` from *root*'s manifest; raises
    :class:`IncompletePackageError` without one and :class:`PackageError` for a bad one."""
    path = root / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise IncompletePackageError(
            f"{label} is an incomplete package: it has config.json but no {MANIFEST}, which a "
            "push writes last. A push is in progress or was interrupted: wait for it, or "
            "push again (`hubcore push` resumes)."
        ) from None
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
            raise ValueError("no 'files' object")
        if int(data.get("format", 0)) > FORMAT:
            raise PackageError(
                f"{label}: its {MANIFEST} has format {data['format']}, newer than this "
                f"hubcore reads ({FORMAT}); upgrade hubcore"
            )
        files = {}
        for name, entry in data["files"].items():
            sha, size = entry["sha256"], entry["size"]
            if not _HEX64.match(str(sha)) or type(size) is not int or size < 0:
                raise ValueError(f"bad entry for {name!r}")
            if name.startswith("/") or ".." in name.split("/") or "\\" in name:
                raise ValueError(f"{name!r} is not a path inside the package")
            files[str(name)] = (str(sha), size)
    except PackageError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise PackageError(f"{label}: its {MANIFEST} is malformed ({exc})") from None
    return files


def _stamp(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def verify_files(
    root: Path,
    manifest: Mapping[str, tuple[str, int]],
    label: str,
    cache: Cache,
    extra: Iterable[str] = (),
) -> None:
    """Check every file of *manifest* under *root* (see the module docstring) and that none
    of *extra* (files found in the folder) is Python code the manifest does not list.

    Raises :class:`PackageIntegrityError` naming the first bad file.
    """
    for name in extra:
        if name not in manifest and name.endswith(".py") and not name.startswith(_LITTER):
            raise PackageIntegrityError(name, label, "is not listed in its manifest")
    record_path = _record_path(cache, root)
    record = _read_record(record_path)
    changed = False
    for name, (sha, size) in manifest.items():
        path = root / name
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise PackageIntegrityError(name, label, "is missing") from None
        if st.st_size != size:
            raise PackageIntegrityError(
                name, label, f"has {st.st_size} bytes, its manifest says {size}"
            )
        stamp = _stamp(st)
        key = (str(root), name)
        if _verified.get(key) == stamp or tuple(record.get(name, ())) == stamp:
            _verified[key] = stamp
            continue
        actual = file_sha256(path)
        if actual != sha:
            raise PackageIntegrityError(
                name, label, f"has sha256 {actual}, its manifest says {sha}"
            )
        with _verified_lock:
            _verified[key] = stamp
        record[name] = list(stamp)
        changed = True
    if changed:
        try:
            atomic_write_json(record_path, record)
        except OSError:
            pass  # a read-only cache verifies again next time


def _record_path(cache: Cache, root: Path) -> Path:
    key = hashlib.sha256(str(root.absolute()).encode()).hexdigest()
    folder = cache.root / "verified" / "packages"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{key}.json"


def _read_record(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
