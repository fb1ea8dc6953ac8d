"""The manifest of a model package: the sha256 and size of every file, written last.

``hubcore-manifest.json`` lists every file of the package but itself::

    {"format": 1, "files": {"config.json": {"sha256": "...", "size": 412}, ...}}

Its own sha256 is the package's *digest*: ``revision="sha256:<digest>"`` pins a package on a
store that has no commits. A folder with ``config.json`` but no manifest is an incomplete
package (a push in progress or interrupted). Loading checks every listed file: its size
always, its sha256 when the file is new or changed since it was last checked against that
same sha256 (a record of ``(size, mtime, ctime, inode, sha256)`` per file kept in the cache,
written by a check and by :func:`~hubcore.packages.save.save_pretrained`, which hashes what
it writes), so a warm load, and a push right after a save, hash nothing.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hubcore.packages.errors import IncompletePackageError, PackageError, PackageIntegrityError
from hubcore.packages.files import MAX_JSON_BYTES, checked_stat, parse_json
from hubcore.store.cache import Cache, file_sha256, is_sha256
from hubcore.store.files import atomic_write, atomic_write_json

__all__ = [
    "FORMAT",
    "MANIFEST",
    "check_digest",
    "check_pin",
    "digest_of",
    "foreign_code",
    "found_files",
    "is_member_name",
    "manifest_bytes",
    "read_manifest",
    "read_manifest_digest",
    "record_verified",
    "verify_files",
    "write_manifest",
]

MANIFEST = "hubcore-manifest.json"
FORMAT = 1
_verified: dict[tuple[str, str], tuple[object, ...]] = {}  # (root, file) -> stamp, this process
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
    try:
        actual = digest_of(root)
    except FileNotFoundError:
        actual = f"(none: no {MANIFEST}, an incomplete package)"
    check_digest(actual, pin, label)


def check_digest(actual: str, pin: str, label: str) -> None:
    """Raise :class:`~hubcore.errors.LockMismatchError` unless the digest *actual* (of the
    manifest bytes in hand) is the pinned *pin*."""
    from hubcore.errors import LockMismatchError

    wanted = pin.removeprefix("sha256:")
    if actual != wanted:
        raise LockMismatchError(
            f"{label} is now the package sha256:{actual}, not the pinned sha256:{wanted}; a "
            "plain store keeps only its latest push (versions are the registry's job)"
        )


def read_manifest(root: Path, label: str, *, remote: bool = True) -> dict[str, tuple[str, int]]:
    """``{relative path: (sha256, size)}`` from *root*'s manifest (see
    :func:`read_manifest_digest`)."""
    return read_manifest_digest(root, label, remote=remote)[0]


def read_manifest_digest(
    root: Path, label: str, *, remote: bool = True
) -> tuple[dict[str, tuple[str, int]], str]:
    """*root*'s manifest as ``{relative path: (sha256, size)}`` and the package digest, both
    from one read of the file (so a pin is checked on the manifest that is used). Raises
    :class:`IncompletePackageError` without one and :class:`PackageError` for a bad one;
    *remote* as for :func:`hubcore.packages.files.checked_stat`."""
    try:
        checked_stat(root, MANIFEST, label, remote=remote)
        with open(root / MANIFEST, "rb") as fh:
            raw = fh.read(MAX_JSON_BYTES + 1)
    except FileNotFoundError:
        raise IncompletePackageError(
            f"{label} is an incomplete package: it has config.json but no {MANIFEST}, which a "
            "push writes last. A push is in progress or was interrupted: wait for it, or "
            "push again (`hubcore push` resumes)."
        ) from None
    data = parse_json(raw, f"{label}: its {MANIFEST}")
    try:
        if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
            raise ValueError("no 'files' object")
        version = data.get("format", 0)
        if type(version) is not int:
            raise ValueError(f"format {version!r} is not a number")
        if version > FORMAT:
            raise PackageError(
                f"{label}: its {MANIFEST} has format {version}, newer than this "
                f"hubcore reads ({FORMAT}); upgrade hubcore"
            )
        files = {}
        for name, entry in data["files"].items():
            sha, size = entry["sha256"], entry["size"]
            if not is_sha256(sha) or type(size) is not int or size < 0:
                raise ValueError(f"bad entry for {name!r}")
            if not is_member_name(name):
                raise ValueError(f"{name!r} is not the name of a file inside the package")
            files[str(name)] = (str(sha), size)
    except PackageError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise PackageError(f"{label}: its {MANIFEST} is malformed ({exc})") from None
    return files, hashlib.sha256(raw).hexdigest()


#: Characters no file name of a package has (NUL, path separators of other systems, ":"
#: of drive letters and streams, "~" of home folders at the start).
_BAD_NAME = re.compile(r"[\x00-\x1f\\:]|^~")


def is_member_name(name: object) -> bool:
    """Whether *name* may name a file of a package: a relative POSIX path of plain parts
    (no empty, ``.`` or ``..`` part), not the manifest, not under ``__pycache__``."""
    if not isinstance(name, str) or not name or _BAD_NAME.search(name):
        return False
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts) or "__pycache__" in parts:
        return False
    return name != MANIFEST


def _stamp(st: os.stat_result, sha: str) -> tuple[object, ...]:
    """What a check of a file against *sha* is remembered by: its stat and that sha256."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, sha)


def record_verified(
    root: Path, checked: Mapping[str, tuple[str, os.stat_result]], cache: Cache
) -> None:
    """Remember that the files of *root* in *checked* (``{relative path: (sha256, stat)}``:
    the caller hashed the bytes it wrote or read, and took the stat before reading or just
    after writing) have those sha256 while their stat is unchanged, so that the next
    :func:`verify_files` hashes only what changed since."""
    record_path = _record_path(cache, root)
    record = _read_record(record_path)
    for name, (sha, st) in checked.items():
        stamp = _stamp(st, sha)
        with _verified_lock:
            _verified[(str(root), name)] = stamp
        record[name] = list(stamp)
    _write_record(record_path, record)


def _write_record(path: Path, record: Mapping[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, record)
    except OSError:
        pass  # a read-only cache verifies again next time


def verify_files(
    root: Path,
    manifest: Mapping[str, tuple[str, int]],
    label: str,
    cache: Cache,
    extra: Iterable[str] = (),
    *,
    remote: bool = True,
) -> None:
    """Check every file of *manifest* under *root* (see the module docstring; each must be
    a regular file, inside *root* when *remote*) and that none of *extra* (the files found
    in the folder, ``__pycache__`` included) is code Python could import that the manifest
    does not list (:func:`foreign_code`).

    Raises :class:`PackageIntegrityError` naming the first bad file.
    """
    for name in extra:
        if name not in manifest and foreign_code(root, name):
            raise PackageIntegrityError(name, label, "is code its manifest does not list")
    record_path = _record_path(cache, root)
    record: dict[str, Any] | None = None  # read only if this process has not seen a file
    changed = False
    for name, (sha, size) in manifest.items():
        path = root / name
        try:
            st = checked_stat(root, name, label, remote=remote)
        except (FileNotFoundError, NotADirectoryError):
            raise PackageIntegrityError(name, label, "is missing") from None
        if st.st_size != size:
            raise PackageIntegrityError(
                name, label, f"has {st.st_size} bytes, its manifest says {size}"
            )
        stamp = _stamp(st, sha)
        key = (str(root), name)
        if _verified.get(key) == stamp:
            continue
        if record is None:
            record = _read_record(record_path)
        if tuple(record.get(name, ())) == stamp:
            with _verified_lock:
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
    if changed and record is not None:
        _write_record(record_path, record)


def found_files(root: Path) -> list[str]:
    """Every file in the package folder *root* but the manifest and hidden ones, including
    ``__pycache__`` (what :func:`verify_files` takes as *extra*)."""
    found = []
    for dirpath, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
        for name in names:
            path = name if rel == "." else f"{rel}/{name}"
            if path != MANIFEST and not name.startswith("."):
                found.append(path)
    return sorted(found)


#: Suffixes of files Python imports: sources, sourceless bytecode, extension modules.
_IMPORTABLE = tuple(importlib.machinery.all_suffixes())


def foreign_code(root: Path, name: str) -> bool:
    """Whether the unlisted file *name* of the package at *root* is code an import could
    run instead of, or beside, the listed code: a source, a sourceless ``.pyc`` or an
    extension module anywhere (an extension module is found before a listed ``.py`` of
    the same name), or bytecode in ``__pycache__`` that Python would run without checking
    it against its source (an unchecked hash-based ``.pyc``). Bytecode Python checks
    against the listed source (timestamp or checked-hash ``.pyc``, what imports write) is
    not foreign."""
    parts = name.split("/")
    if "__pycache__" not in parts[:-1]:
        return name.endswith(_IMPORTABLE)
    if not name.endswith(".pyc"):
        return name.endswith(_IMPORTABLE)
    try:
        with open(root / name, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return True
    flags = int.from_bytes(head[4:8], "little") if len(head) == 8 else -1
    return flags not in (0, 0b11)  # timestamp, or hash-based with check_source


def _record_path(cache: Cache, root: Path) -> Path:
    key = hashlib.sha256(str(root.absolute()).encode()).hexdigest()
    return cache.root / "verified" / "packages" / f"{key}.json"


def _read_record(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
