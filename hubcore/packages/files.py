"""Reading the files of a package folder that nobody has vouched for yet.

One rule for every file a load, a help or the catalog reads from a package: it is a regular
file (never a device, a pipe or a folder, which could be endless or block), and in a fetched
snapshot it does not reach outside the package through a symbolic link (a repository could
otherwise make hubcore read, hash or show a file of the loading machine). The small JSON
files (``config.json``, the manifest, the index) are read up to :data:`MAX_JSON_BYTES`, parsed
with every nesting depth and duplicate key refused (two readers could see two values).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from hubcore.packages.errors import PackageError, PackageIntegrityError

__all__ = ["MAX_JSON_BYTES", "checked_stat", "parse_json", "read_json_file"]

#: The largest ``config.json``, manifest or index read (real ones are kilobytes).
MAX_JSON_BYTES = 16 << 20


def checked_stat(root: Path, rel: str, label: str, *, remote: bool) -> os.stat_result:
    """The ``stat`` of the file *rel* of the package at *root*, which must be a regular file
    (and, when *remote*, inside *root* after following links). Raises
    :class:`FileNotFoundError` when it does not exist, else :class:`PackageIntegrityError`."""
    path = root / rel
    st = os.stat(path)  # FileNotFoundError: the caller's message
    if (
        remote
        and _through_link(root, rel)
        and not Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))
    ):
        raise PackageIntegrityError(rel, label, "is a link to a file outside the package")
    if not stat.S_ISREG(st.st_mode):
        raise PackageIntegrityError(rel, label, "is not a regular file")
    return st


def _through_link(root: Path, rel: str) -> bool:
    """Whether reaching *rel* from *root* follows a symbolic link (the file or a folder
    on the way): only then can it lead outside, so only then are the paths resolved (the
    folders above *root* are the cache's, and resolving each costs a system call)."""
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts) or "\\" in rel or os.path.isabs(rel):
        return True  # not a plain relative path: resolve it
    return any(
        stat.S_ISLNK(os.lstat(os.path.join(root, *parts[: i + 1])).st_mode)
        for i in range(len(parts))
    )


def read_json_file(root: Path, rel: str, label: str, *, remote: bool) -> Any:
    """The parsed JSON file *rel* of the package at *root* (see the module docstring);
    :class:`FileNotFoundError` when it is absent, :class:`PackageError` when it is not a
    small regular file of valid JSON."""
    st = checked_stat(root, rel, label, remote=remote)
    if st.st_size > MAX_JSON_BYTES:
        raise PackageError(
            f"{label}: its {rel} has {st.st_size} bytes, more than the {MAX_JSON_BYTES} a "
            "package's JSON files may have; it is not a package hubcore wrote"
        )
    with open(root / rel, "rb") as fh:
        raw = fh.read(MAX_JSON_BYTES + 1)
    return parse_json(raw, f"{label}: its {rel}")


class _Duplicate(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _Duplicate(key)
        found[key] = value
    return found


def parse_json(raw: bytes, what: str) -> Any:
    """*raw* as JSON, or :class:`PackageError` starting with *what*."""
    if len(raw) > MAX_JSON_BYTES:
        raise PackageError(f"{what} is larger than {MAX_JSON_BYTES} bytes")
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except _Duplicate as exc:
        raise PackageError(
            f"{what} names the key {str(exc)!r} more than once, so tools may disagree on "
            "its value; the file is refused"
        ) from None
    except RecursionError:
        raise PackageError(f"{what} is nested too deeply to be read") from None
    except ValueError as exc:  # also UnicodeDecodeError
        raise PackageError(f"{what} is not readable JSON ({exc})") from None
