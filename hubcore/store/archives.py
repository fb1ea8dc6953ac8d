"""Extracting repository archives safely.

Only regular files, folders and symbolic links that stay inside are written, and only inside
the target folder, by :class:`TreeWriter` (which the git source uses too). A member with an
absolute path or a ``..`` component, a member under a symbolic link, a symbolic link that
resolves outside the tree through any chain of the archive's other links, a hard link that
does not name a regular file extracted before it, a device or FIFO, or a total size beyond the
limit is refused with an :class:`~hubcore.errors.ArchiveError` naming the member, and the
extraction leaves nothing. So do a name or link target holding a NUL byte, a path stored twice,
an encrypted member, one compressed with a method this Python cannot read, and any damage the
decompressors report (a compressed tar is read to its end, where its checksum is).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import posixpath
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Protocol, TypeVar, cast

from hubcore import settings
from hubcore.errors import ArchiveError, HubError

try:
    from lzma import LZMAError
except ImportError:  # pragma: no cover - a Python built without lzma cannot open .tar.xz either

    class LZMAError(Exception):  # type: ignore[no-redef]
        """Stands in for :class:`lzma.LZMAError`."""


__all__ = [
    "DEFAULT_MAX_BYTES",
    "TreeWriter",
    "archive_commit",
    "check_link",
    "check_member_name",
    "extract_archive",
]

#: Largest total uncompressed size accepted (a zip-bomb guard); ``HUBCORE_MAX_ARCHIVE_BYTES``.
DEFAULT_MAX_BYTES = settings.Settings().max_archive_bytes
_T = TypeVar("_T")
_HEX40 = re.compile(rb"^[0-9a-f]{40}$")


def max_bytes() -> int:
    """The configured archive size limit (``HUBCORE_MAX_ARCHIVE_BYTES``)."""
    return settings.current().max_archive_bytes


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
                _write(members, dest, strip_single_top, lambda m: zf.open(_zip_info(m)))
        elif tarfile.is_tarfile(path):
            with tarfile.open(path) as tf:
                members = list(_tar_members(tf))
                _write(members, dest, strip_single_top, lambda m: _tar_open(tf, m))
                _drain(tf)
        else:
            raise ArchiveError(f"{path.name} is neither a zip nor a tar archive")
    except HubError:
        _empty(dest)
        raise
    except _DAMAGE as exc:  # while reading the index, before any member is named
        _empty(dest)
        raise ArchiveError(f"damaged or unsupported archive: {_reason(exc)}") from exc


# What zipfile, tarfile and their decompressors raise for damaged, encrypted or unsupported
# input: a bad CRC or header, a password needed (RuntimeError), an unknown compression method
# (NotImplementedError), a name that does not decode (ValueError), a corrupt stream.
_DAMAGE = (
    zipfile.BadZipFile,
    tarfile.TarError,
    EOFError,
    OSError,
    RuntimeError,
    NotImplementedError,
    ValueError,
    zlib.error,
    LZMAError,
)


def _reason(exc: BaseException) -> str:
    return f"{exc}" if str(exc) else type(exc).__name__


def _reading(name: str, action: Callable[[], _T]) -> _T:
    """*action*'s result; what it raises for damage is an ArchiveError naming member *name*."""
    try:
        return action()
    except HubError:
        raise
    except _DAMAGE as exc:
        raise ArchiveError(
            f"refusing {name!r}: damaged or unsupported archive: {_reason(exc)}"
        ) from exc


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _MemberReader:
    """A member's bytes; reading errors name the member (see :func:`_reading`)."""

    def __init__(self, name: str, source: IO[bytes]) -> None:
        self.name, self.source = name, source

    def read(self, size: int = -1, /) -> bytes:
        return _reading(self.name, lambda: self.source.read(size))


class _Member:
    __slots__ = ("hard", "info", "is_dir", "link", "mode", "name", "size")

    def __init__(
        self,
        name: str,
        size: int,
        is_dir: bool,
        mode: int,
        link: str | None,
        info: zipfile.ZipInfo | tarfile.TarInfo,
        hard: bool = False,
    ):
        self.name, self.size, self.is_dir, self.mode = name, size, is_dir, mode
        self.link, self.info, self.hard = link, info, hard


def _zip_members(zf: zipfile.ZipFile) -> Iterator[_Member]:
    for info in zf.infolist():
        mode = (info.external_attr >> 16) & 0xFFFF
        link = None
        if stat.S_ISLNK(mode):
            link = _reading(info.filename, functools.partial(zf.read, info)).decode(
                "utf-8", "replace"
            )
        elif stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            # a file type of 0 is a regular file: some zip writers store permission bits only
            raise ArchiveError(f"refusing {info.filename!r}: not a regular file or folder")
        yield _Member(info.filename, info.file_size, info.is_dir(), mode, link, info)


def _tar_members(tf: tarfile.TarFile) -> Iterator[_Member]:
    for info in tf.getmembers():
        if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE):  # pax headers
            continue
        if info.isdev() or info.isfifo():
            raise ArchiveError(f"refusing {info.name!r}: device files and FIFOs are not allowed")
        link = info.linkname if info.issym() or info.islnk() else None
        if link is None and not (info.isfile() or info.isdir()):
            raise ArchiveError(f"refusing {info.name!r}: unsupported member type")
        yield _Member(info.name, info.size, info.isdir(), info.mode, link, info, info.islnk())


def _drain(tf: tarfile.TarFile) -> None:
    """Read a compressed tar to its end: gzip, bzip2 and xz check their checksums there."""
    stream = tf.fileobj
    while stream is not None and stream.read(1 << 20):
        pass


def _zip_info(member: _Member) -> zipfile.ZipInfo:
    # by ZipInfo, never by name: zipfile would pick the last member of that name
    return cast(zipfile.ZipInfo, member.info)


def _tar_open(tf: tarfile.TarFile, member: _Member) -> IO[bytes]:
    # by TarInfo, never by name: tarfile would pick the last member of that name
    fh = tf.extractfile(cast(tarfile.TarInfo, member.info))
    if fh is None:
        raise ArchiveError(f"cannot read {member.name!r} from the archive")
    return fh


def _write(
    members: list[_Member], dest: Path, strip: bool, open_member: Callable[[_Member], IO[bytes]]
) -> None:
    names = [check_member_name(m.name) for m in members]
    _refuse_duplicates(members, names)
    prefix = _common_top(names) if strip else ""
    writer = TreeWriter(dest, limit=max_bytes())
    for member, name in zip(members, names, strict=True):
        rel = name[len(prefix) :] if prefix else name
        if not rel:
            continue
        if member.is_dir:
            writer.add_dir(member.name, rel)
        elif member.link is None:
            # opening fails for an encrypted member or an unknown compression method
            with _reading(member.name, functools.partial(open_member, member)) as src:
                reader = _MemberReader(member.name, src)
                writer.add_file(member.name, rel, reader, member.size, bool(member.mode & 0o111))
        elif member.hard:  # names another member of the archive: copy what it extracted to
            source = check_member_name(member.link)
            if prefix and not source.startswith(prefix):
                raise ArchiveError(f"refusing {member.name!r}: hard link outside the archive")
            writer.add_hard_link(member.name, rel, source[len(prefix) :])
        else:
            writer.add_symlink(member.name, rel, member.link)
    writer.finish()


def _refuse_duplicates(members: list[_Member], names: list[str]) -> None:
    """Refuse a path stored twice: which copy wins, and which member a name or a link refers
    to, would depend on the reader (git archive and the usual tools never write this)."""
    seen: set[str] = set()
    for member, name in zip(members, names, strict=True):
        path = name.rstrip("/")
        if path in seen:
            raise ArchiveError(
                f"refusing {member.name!r}: the archive holds {path!r} more than once"
            )
        if path:
            seen.add(path)


class TreeWriter:
    """Writes folders, files and links into the empty folder *dest*, never outside it.

    Nothing is ever written through a link: every parent folder is made one level at a time
    and must be a real folder (``lstat``, not ``stat``), files are opened with ``O_NOFOLLOW``,
    a member under a symbolic-link member is refused, and symbolic links are made only in
    :meth:`finish`, after every other member. A symbolic link's target is resolved through the
    tree's other links as the kernel would, and refused if any step leaves the tree; after the
    links exist, each is resolved again on disk. A hard link copies a regular file the tree
    wrote earlier. The standard library's ``tarfile.data_filter`` checks each link too.
    Refusals raise :class:`ArchiveError` naming the member; the caller empties *dest*.
    """

    def __init__(self, dest: Path, *, limit: int | None = None) -> None:
        """Write into *dest*; *limit* caps the total bytes of files (``None``: no cap)."""
        self.root = dest.resolve()
        self.limit = limit
        self.total = 0
        self._files: set[str] = set()
        self._dirs: set[str] = set()
        self._links: dict[str, tuple[str, str]] = {}  # rel -> (member name, target)

    def add_dir(self, name: str, rel: str) -> None:
        """The folder *rel* (member *name*)."""
        rel = self._claim(name, rel, "folder")
        self._folder(name, rel.split("/"))

    def add_file(self, name: str, rel: str, src: _Readable, size: int, executable: bool) -> None:
        """The regular file *rel* with *size* bytes read from *src*."""
        rel = self._claim(name, rel, "file")
        self.total += size
        if self.limit is not None and self.total > self.limit:
            raise ArchiveError(
                f"refusing {name!r}: the archive expands beyond {self.limit} bytes "
                "(raise HUBCORE_MAX_ARCHIVE_BYTES if this is expected)"
            )
        parts = rel.split("/")
        target = self._folder(name, parts[:-1]) / parts[-1]
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW | getattr(os, "O_BINARY", 0)
        with _unwritable_refused(name):
            handle = os.open(target, flags, 0o666)
        with open(handle, "wb") as dst:
            written = _copy_limited(src, dst, size)
            if executable:
                _chmod(dst, target, 0o755)
        if written > size:
            raise ArchiveError(f"refusing {name!r}: larger than its header says")
        self._files.add(rel)

    def add_bytes(self, name: str, rel: str, data: bytes, executable: bool) -> None:
        """The regular file *rel* holding *data*."""
        self.add_file(name, rel, io.BytesIO(data), len(data), executable)

    def add_hard_link(self, name: str, rel: str, source: str) -> None:
        """A copy at *rel* of the regular file *source* this writer wrote earlier."""
        source = source.rstrip("/")
        if source not in self._files:
            raise ArchiveError(
                f"refusing {name!r}: a hard link must name a regular file earlier in the "
                f"archive, not {source!r}"
            )
        self._stdlib_check(name, rel.rstrip("/"), tarfile.LNKTYPE, source)
        path = self.root / source
        with open(os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_BINARY", 0)), "rb") as src:
            info = os.fstat(src.fileno())
            self.add_file(name, rel, src, info.st_size, bool(info.st_mode & 0o111))

    def add_symlink(self, name: str, rel: str, target: str) -> None:
        """A symbolic link at *rel* to *target*; made by :meth:`finish`."""
        if not target:
            raise ArchiveError(f"refusing {name!r}: symbolic link to nothing")
        if "\0" in target:
            raise ArchiveError(f"refusing {name!r}: symbolic link target contains a NUL byte")
        check_link(name, rel, target)
        rel = self._claim(name, rel, "symbolic link")
        self._links[rel] = (name, target)

    def finish(self) -> None:
        """Check and make the symbolic links; call once every other member is written."""
        for rel, (name, target) in self._links.items():
            parts = rel.split("/")
            self._resolve(name, target, parts[:-1], [0])
        for rel, (name, target) in self._links.items():
            parts = rel.split("/")
            parent = self._folder(name, parts[:-1])
            self._stdlib_check(name, rel, tarfile.SYMTYPE, target)
            os.symlink(target, parent / parts[-1])
        for rel, (name, target) in self._links.items():
            if not self._inside(os.path.realpath(self.root / rel)):
                raise ArchiveError(
                    f"refusing {name!r}: symbolic link to {target!r} leaves the tree"
                )

    # -- checks ------------------------------------------------------------------------------
    def _claim(self, name: str, rel: str, kind: str) -> str:
        """Record *rel* as a *kind*; refuse it under a link or a file, or as a second kind."""
        rel = rel.rstrip("/")
        if not rel and kind != "folder":
            raise ArchiveError(f"refusing {name!r}: a {kind} needs a name")
        parts = rel.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in self._links:
                raise ArchiveError(
                    f"refusing {name!r}: it lies inside the symbolic link {parent!r}"
                )
            if parent in self._files:
                raise ArchiveError(f"refusing {name!r}: {parent!r} is a file, not a folder")
        kinds = {"file": self._files, "folder": self._dirs, "symbolic link": self._links}
        taken = next((k for k, where in kinds.items() if rel in where), None)
        if taken is not None and (taken != kind or kind != "folder"):  # which one would win?
            raise ArchiveError(f"refusing {name!r}: {rel!r} is already a {taken} in the archive")
        self._dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
        if kind == "folder":
            self._dirs.add(rel)
        return rel

    def _folder(self, name: str, parts: list[str]) -> Path:
        """The real folder root/*parts*, made one level at a time; never through a link."""
        here = self.root
        for part in parts:
            here = here / part
            with _unwritable_refused(name):
                try:
                    mode = os.lstat(here).st_mode
                except FileNotFoundError:
                    os.mkdir(here)
                    continue
            if not stat.S_ISDIR(mode):
                raise ArchiveError(
                    f"refusing {name!r}: {here.relative_to(self.root).as_posix()!r} is not a "
                    "real folder"
                )
        return here

    def _resolve(self, name: str, target: str, start: list[str], hops: list[int]) -> list[str]:
        """Where *target*, read from folder *start*, leads through the tree's links."""
        parts = list(start)
        for part in re.split(r"[/\\]", target):
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    raise ArchiveError(
                        f"refusing {name!r}: symbolic link to {target!r} leaves the archive"
                    )
                parts.pop()
                continue
            parts.append(part)
            inner = self._links.get("/".join(parts))
            if inner is not None:
                hops[0] += 1
                if hops[0] > _MAX_HOPS:
                    raise ArchiveError(f"refusing {name!r}: a loop of symbolic links")
                parts = self._resolve(inner[0], inner[1], parts[:-1], hops)
        return parts

    def _inside(self, path: str) -> bool:
        root = str(self.root)
        return path == root or os.path.commonpath([path, root]) == root

    def _stdlib_check(self, name: str, rel: str, kind: bytes, link: str) -> None:
        """``tarfile.data_filter`` (where this Python has it) on a link, on top of the checks
        above. Files and folders skip it: their names are checked (no root, no ``..``), every
        folder above them is a real one made here, and files are opened without following
        links, which is stricter than the filter, whose two ``realpath`` calls per member
        (one ``lstat`` per level of the hub home's path) were two thirds of writing a small
        file."""
        data_filter = getattr(tarfile, "data_filter", None)
        if data_filter is None:
            return
        info = tarfile.TarInfo(rel)
        info.type, info.linkname = kind, link
        try:
            data_filter(info, str(self.root))
        except tarfile.FilterError as exc:
            raise ArchiveError(f"refusing {name!r}: {exc}") from exc


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_MAX_HOPS = 40  # as Linux's limit of links followed in one path lookup


@contextlib.contextmanager
def _unwritable_refused(name: str) -> Iterator[None]:
    """An :class:`ArchiveError` where this filesystem cannot hold member *name*'s path (too
    long, or a name it refuses); other failures (a full disk, a permission) are not the
    archive's fault and pass as they are."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENAMETOOLONG, errno.EINVAL, errno.EILSEQ):
            raise ArchiveError(
                f"refusing {name!r}: this filesystem cannot hold the name ({exc.strerror})"
            ) from exc
        raise


def _chmod(handle: IO[bytes], path: Path, mode: int) -> None:
    if hasattr(os, "fchmod"):
        os.fchmod(handle.fileno(), mode)
    else:  # Windows: the path was just opened as a regular file, not a link
        path.chmod(mode)


def _copy_limited(src: _Readable, dst: IO[bytes], declared: int) -> int:
    written = 0
    while chunk := src.read(1 << 20):
        written += len(chunk)
        if written > declared:
            return written
        dst.write(chunk)
    return written


def check_member_name(name: str) -> str:
    """*name* normalised to a relative path; :class:`ArchiveError` if it could escape."""
    if "\0" in name:
        raise ArchiveError(f"refusing {name!r}: the name contains a NUL byte")
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or re.match(r"^[A-Za-z]:", normalized):
        raise ArchiveError(f"refusing {name!r}: absolute path")
    parts = [p for p in normalized.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"refusing {name!r}: '..' in the path")
    return "/".join(parts) + ("/" if normalized.endswith("/") and parts else "")


def check_link(name: str, rel: str, link: str) -> None:
    """Refuse a symbolic link at *rel* whose target *link*, read as text, leaves the tree.

    Only a first check: :class:`TreeWriter` also resolves the target through the tree's links.
    """
    if link.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", link):
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
