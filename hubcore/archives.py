"""Extracting repository archives safely.

Only regular files and folders are written, and only inside the target folder. A member with
an absolute path or a ``..`` component, a link (symbolic or hard) that points outside the
archive, a device or FIFO, or a total size beyond the limit is refused with an
:class:`~hubcore.errors.ArchiveError` naming the member, and the extraction leaves nothing.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from hubcore.errors import ArchiveError, ConfigError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "archive_commit",
    "check_link",
    "check_member_name",
    "extract_archive",
]

#: Largest total uncompressed size accepted (a zip-bomb guard); ``HUBCORE_MAX_ARCHIVE_BYTES``.
DEFAULT_MAX_BYTES = 4 << 30
_HEX40 = re.compile(rb"^[0-9a-f]{40}$")


def max_bytes() -> int:
    """The configured archive size limit."""
    env = os.environ.get("HUBCORE_MAX_ARCHIVE_BYTES", "").strip()
    if not env:
        return DEFAULT_MAX_BYTES
    if not env.isdigit():
        raise ConfigError(f"HUBCORE_MAX_ARCHIVE_BYTES={env!r} is not a whole number of bytes")
    return int(env)


def archive_commit(path: Path) -> str | None:
    """The commit id ``git archive`` (and GitHub/GitLab) record in a zip's comment."""
    try:
        with zipfile.ZipFile(path) as zf:
            comment = zf.comment.strip()
    except (zipfile.BadZipFile, OSError):
        return None
    return comment.decode() if _HEX40.match(comment) else None


def extract_archive(path: Path, dest: Path, *, strip_single_top: bool = True) -> None:
    """Extract the zip or tar archive *path* into the empty folder *dest*.

    With *strip_single_top*, an archive whose members all live in one top folder
    (``repo-<sha>/...``, as git hosts produce) is extracted without that folder.
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                members = list(_zip_members(zf))
                _write(members, dest, strip_single_top, lambda m: zf.open(m.name))
        elif tarfile.is_tarfile(path):
            with tarfile.open(path) as tf:
                members = list(_tar_members(tf))
                _write(members, dest, strip_single_top, lambda m: _tar_open(tf, m.name))
        else:
            raise ArchiveError(f"{path.name} is neither a zip nor a tar archive")
    except ArchiveError:
        _empty(dest)
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        _empty(dest)
        raise ArchiveError(f"the archive is damaged or truncated: {exc}") from exc


class _Member:
    __slots__ = ("hard", "is_dir", "link", "mode", "name", "size")

    def __init__(
        self, name: str, size: int, is_dir: bool, mode: int, link: str | None, hard: bool = False
    ):
        self.name, self.size, self.is_dir, self.mode = name, size, is_dir, mode
        self.link, self.hard = link, hard


def _zip_members(zf: zipfile.ZipFile) -> Iterator[_Member]:
    for info in zf.infolist():
        mode = (info.external_attr >> 16) & 0xFFFF
        link = None
        if stat.S_ISLNK(mode):
            link = zf.read(info).decode("utf-8", "replace")
        elif stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            # a file type of 0 is a regular file: some zip writers store permission bits only
            raise ArchiveError(f"refusing {info.filename!r}: not a regular file or folder")
        yield _Member(info.filename, info.file_size, info.is_dir(), mode, link)


def _tar_members(tf: tarfile.TarFile) -> Iterator[_Member]:
    for info in tf.getmembers():
        if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE):  # pax headers
            continue
        if info.isdev() or info.isfifo():
            raise ArchiveError(f"refusing {info.name!r}: device files and FIFOs are not allowed")
        link = info.linkname if info.issym() or info.islnk() else None
        if link is None and not (info.isfile() or info.isdir()):
            raise ArchiveError(f"refusing {info.name!r}: unsupported member type")
        yield _Member(info.name, info.size, info.isdir(), info.mode, link, hard=info.islnk())


def _tar_open(tf: tarfile.TarFile, name: str) -> IO[bytes]:
    fh = tf.extractfile(name)
    if fh is None:
        raise ArchiveError(f"cannot read {name!r} from the archive")
    return fh


def _write(
    members: list[_Member], dest: Path, strip: bool, open_member: Callable[[_Member], IO[bytes]]
) -> None:
    limit = max_bytes()
    total = 0
    names = [check_member_name(m.name) for m in members]
    prefix = _common_top(names) if strip else ""
    root = dest.resolve()
    for member, name in zip(members, names, strict=True):
        rel = name[len(prefix) :] if prefix else name
        if not rel:
            continue
        target = root / rel
        if member.is_dir:
            target.mkdir(parents=True, exist_ok=True)
            continue
        if member.link is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
            if member.hard:  # names another member of the archive: copy what it extracted to
                source = check_member_name(member.link)
                if prefix and not source.startswith(prefix):
                    raise ArchiveError(f"refusing {member.name!r}: hard link outside the archive")
                shutil.copyfile(root / source[len(prefix) :], target)
            else:
                check_link(member.name, rel, member.link)
                os.symlink(member.link, target)
            continue
        total += member.size
        if total > limit:
            raise ArchiveError(
                f"refusing {member.name!r}: the archive expands beyond {limit} bytes "
                "(raise HUBCORE_MAX_ARCHIVE_BYTES if this is expected)"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        with open_member(member) as src, open(target, "wb") as dst:
            written = _copy_limited(src, dst, member.size)
        if written > member.size:
            raise ArchiveError(f"refusing {member.name!r}: larger than its header says")
        if member.mode & 0o111:
            target.chmod(0o755)


def _copy_limited(src: IO[bytes], dst: IO[bytes], declared: int) -> int:
    written = 0
    while chunk := src.read(1 << 20):
        written += len(chunk)
        if written > declared:
            return written
        dst.write(chunk)
    return written


def check_member_name(name: str) -> str:
    """*name* normalised to a relative path; :class:`ArchiveError` if it could escape."""
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or re.match(r"^[A-Za-z]:", normalized):
        raise ArchiveError(f"refusing {name!r}: absolute path")
    parts = [p for p in normalized.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"refusing {name!r}: '..' in the path")
    return "/".join(parts) + ("/" if normalized.endswith("/") and parts else "")


def check_link(name: str, rel: str, link: str) -> None:
    """Refuse a symbolic link at *rel* whose target *link* could point outside the tree."""
    if posixpath.isabs(link) or re.match(r"^[A-Za-z]:", link):
        raise ArchiveError(f"refusing {name!r}: symbolic link to the absolute path {link!r}")
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), link))
    if resolved == ".." or resolved.startswith("../"):
        raise ArchiveError(f"refusing {name!r}: symbolic link to {link!r} leaves the archive")


def _common_top(names: list[str]) -> str:
    tops = {n.split("/", 1)[0] for n in names if n}
    if len(tops) != 1:
        return ""
    top = tops.pop()
    if all(n == top + "/" or n.startswith(top + "/") for n in names if n):
        return top + "/"
    return ""


def _empty(dest: Path) -> None:
    for child in dest.iterdir() if dest.exists() else ():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
