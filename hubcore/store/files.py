"""Atomic file writes: a reader sees the old file or the new one, never a part of either.

The one way hubcore writes a file in place (records, lock files, copies handed to the user):
the bytes go to a temporary file in *temp_dir* (default: the target's folder, so the rename
stays on one filesystem), which is renamed over the target only when complete, and removed on
any failure.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_copy", "atomic_write", "atomic_write_json"]


def atomic_write(
    path: Path,
    fill: Callable[[IO[bytes]], object],
    *,
    temp_dir: Path | None = None,
    mode: int | None = None,
) -> None:
    """Write *path* with ``fill(file)``, atomically; OSError as raised by the system.

    The file is private to its owner (``0o600``, as :func:`tempfile.mkstemp` makes it) unless
    *mode* is given (``0o644`` for a page a web server shows)."""
    import tempfile  # where used: every command imports this module, few write

    folder = temp_dir or path.parent
    fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            fill(handle)
        if mode is not None:  # before the rename: the file never shows with other permissions
            os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def atomic_write_json(
    path: Path, data: Any, *, temp_dir: Path | None = None, compact: bool = False
) -> None:
    """Write *data* as JSON to *path*, atomically (*compact*: on one line)."""
    text = json.dumps(data, indent=None if compact else 1, sort_keys=not compact).encode()
    atomic_write(path, lambda handle: handle.write(text), temp_dir=temp_dir)


def atomic_copy(source: Path, target: Path, *, temp_dir: Path | None = None) -> None:
    """Copy *source* to *target*, atomically (creating *target*'s folder); the temporary file
    goes to *temp_dir* (on *target*'s filesystem), default *target*'s folder."""
    import shutil

    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as src:
        atomic_write(
            target, lambda handle: shutil.copyfileobj(src, handle, 8 << 20), temp_dir=temp_dir
        )
