"""What a version holds: its files (hashed, with hashes reused) and its manifest and digest.

A manifest lists every file (path, size, sha256) and every reference (path, URL, size,
sha256) in path order; its canonical JSON bytes are stored as they are and their sha256 is the
version's identity (its *digest*), so the same content always has the same digest.

Hashing a large file costs about a second per GB, so the sha256 of a local file is remembered
under ``<hub home>/file-hashes/`` with its size, modification time and inode, and reused
while all three are unchanged. A hash is remembered only for a file last modified before
hashing began (strictly, and two seconds before on a filesystem with whole-second times), so a
file written again within the same clock tick is hashed again.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import itertools
import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from hubcore import config
from hubcore.registry.errors import InvalidNameError, RegistryError
from hubcore.registry.names import check_path
from hubcore.store.cache import file_sha256
from hubcore.store.files import atomic_write_json

__all__ = [
    "FileEntry",
    "LocalFile",
    "Manifest",
    "Reference",
    "collect_files",
    "hash_files",
]

#: Folders never logged from a directory: version control and byte-code caches.
SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__"})


@attrs.frozen
class Reference:
    """A file that stays at its URL; its sha256 is recorded and checked on download."""

    url: str
    sha256: str | None = None
    size: int | None = None


@attrs.frozen
class FileEntry:
    """One file of a version: stored in the registry (``url`` is ``None``) or referenced."""

    path: str
    size: int | None
    sha256: str
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The entry as stored in the manifest."""
        data: dict[str, Any] = {"path": self.path, "size": self.size, "sha256": self.sha256}
        if self.url is not None:
            data["url"] = self.url
        return data


@attrs.frozen
class LocalFile:
    """A local file about to be logged, with the stat its hash belongs to."""

    path: str
    source: Path
    size: int
    mtime_ns: int
    sha256: str = ""


@attrs.frozen
class Manifest:
    """The content of a version: files and references, in path order."""

    files: tuple[FileEntry, ...]

    @classmethod
    def of(cls, entries: Iterable[FileEntry]) -> Manifest:
        """A manifest of *entries* (two entries with one path are an error)."""
        ordered = sorted(entries, key=lambda e: e.path)
        for first, second in itertools.pairwise(ordered):
            if first.path == second.path:
                raise InvalidNameError(f"the file path {first.path!r} is given twice")
        paths = {e.path for e in ordered}
        for entry in ordered:
            parts = entry.path.split("/")
            for end in range(1, len(parts)):
                if "/".join(parts[:end]) in paths:  # a file where a folder must be
                    raise InvalidNameError(
                        f"the file path {entry.path!r} needs {'/'.join(parts[:end])!r} to be a "
                        "folder, but that is a file of the version too"
                    )
        return cls(tuple(ordered))

    def to_bytes(self) -> bytes:
        """The canonical bytes: what is stored, and what the digest is the sha256 of."""
        data = {"format": 1, "files": [e.to_dict() for e in self.files]}
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()

    @property
    def digest(self) -> str:
        """The version identity: sha256 of :meth:`to_bytes`."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    @property
    def size(self) -> int:
        """Total bytes of the files (references of unknown size count 0)."""
        return sum(e.size or 0 for e in self.files)

    @classmethod
    def from_bytes(cls, data: bytes, digest: str) -> Manifest:
        """Parse stored bytes, checking they are the content *digest* names."""
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise RegistryError(
                f"the manifest stored for sha256:{digest} has sha256:{actual}; the registry "
                "was modified outside hubcore"
            )
        parsed = json.loads(data)
        return cls(
            tuple(
                FileEntry(f["path"], f.get("size"), f["sha256"], f.get("url"))
                for f in parsed["files"]
            )
        )


def collect_files(source: str | os.PathLike[str] | Mapping[str, Any]) -> list[LocalFile]:
    """The local files to log from a folder, a single file, or ``{path in version: local}``.

    A folder is walked without following links to folders; ``.git``, ``__pycache__`` and the
    like are skipped; a link to a file is logged as the file it points to when that file is
    inside the folder, and refused when it is outside (a folder handed over to be logged must
    not send ``/etc/passwd`` or ``~/.aws/credentials`` along; name such a file in a mapping).
    """
    pairs: list[tuple[str, Path]] = []
    if isinstance(source, Mapping):
        pairs = [(check_path(str(k)), Path(v)) for k, v in source.items()]
    else:
        root = Path(source)
        if root.is_file():
            pairs = [(root.name, root)]
        elif root.is_dir():
            inside = root.resolve()
            for folder, dirs, names in os.walk(root):
                dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
                rel = Path(folder).relative_to(root).as_posix()
                for name in sorted(names):
                    path = Path(folder) / name
                    if path.is_symlink() and not path.resolve().is_relative_to(inside):
                        raise RegistryError(
                            f"{path} is a link to {path.resolve()}, outside {root}: copy the "
                            "file into the folder, or log it by name with a mapping "
                            "{path in version: file}"
                        )
                    if path.is_file():
                        pairs.append((check_path(name if rel == "." else f"{rel}/{name}"), path))
            if not pairs:
                raise RegistryError(f"{root} holds no files to log")
        else:
            raise RegistryError(f"{root} does not exist (give a folder, a file or a mapping)")
    found = []
    for rel, path in pairs:
        try:
            st = path.stat()
        except OSError as exc:
            raise RegistryError(f"cannot read {path}: {exc.strerror}") from None
        if not path.is_file():
            raise RegistryError(f"{path} is not a file")
        found.append(LocalFile(rel, path, st.st_size, st.st_mtime_ns))
    return found


def hash_files(files: list[LocalFile], *, workers: int = 4) -> list[LocalFile]:
    """*files* with their sha256, reused when size, mtime and inode are unchanged."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_hashed, files))


def _record_path(path: Path) -> Path:
    key = hashlib.sha256(str(path.resolve()).encode("utf-8", "surrogatepass")).hexdigest()
    return config.get_dir() / "file-hashes" / key[:2] / f"{key}.json"


def _hashed(item: LocalFile) -> LocalFile:
    st = item.source.stat()
    stamp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}
    record_path = _record_path(item.source)
    with contextlib.suppress(OSError, ValueError):
        record = json.loads(record_path.read_text())
        if record.get("stamp") == stamp and isinstance(record.get("sha256"), str):
            return attrs.evolve(
                item, size=st.st_size, mtime_ns=st.st_mtime_ns, sha256=record["sha256"]
            )
    started = time.time_ns()
    digest = file_sha256(item.source)
    after = item.source.stat()
    if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
        raise RegistryError(f"{item.source} changed while it was hashed; log it again")
    coarse = st.st_mtime_ns % 1_000_000_000 == 0
    if st.st_mtime_ns < started - (2_000_000_000 if coarse else 0):
        with contextlib.suppress(OSError):
            record_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(
                record_path, {"path": str(item.source), "stamp": stamp, "sha256": digest}
            )
    return attrs.evolve(item, size=st.st_size, mtime_ns=st.st_mtime_ns, sha256=digest)
