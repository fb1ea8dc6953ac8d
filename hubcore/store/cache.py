"""The on-disk cache: content-addressed weights and immutable repository snapshots.

Layout under the hub home (:func:`hubcore.get_dir`)::

    <home>/
      blobs/sha256/<2 hex>/<64 hex>            weight files, named by the sha256 of their bytes
      verified/sha256/<2 hex>/<64 hex>.json    size, mtime, ctime and inode of that blob when its
                                               sha256 was last checked
      urls/<sha256 of the URL>.json            what a weight URL last resolved to (sha256,
                                               size, name)
      repos/<source>/<repo key...>/            one folder per repository identity
          repo.json                            the source and the repository key, as the source
                                               passed them (what locks and `cache rm` use)
          snapshots/<snapshot id>/             one immutable tree per commit / content hash
          manifests/<snapshot id>.json         the files of that tree and their sizes
          refs.json                            branch or tag -> the snapshot id it last resolved to
      tmp/                                     partial files and trees, on the same filesystem;
                                               damaged blobs moved aside (``corrupt-*``)
      locks/                                   lock files (one per blob, URL and snapshot) and
                                               the removal counters ``removals.started`` and
                                               ``removals.finished``

Folder names are derived from the repository key one path component at a time, injectively:
a plain component (letters, digits, ``_``, ``-``, ``.``, not leading) is used as is; anything
else is percent-encoded (``git.example.org:8443/~alice`` -> ``git.example.org%3A8443/%7Ealice``),
and so are the reserved names above, so two keys never share a folder and no key reaches into
another repository's ``snapshots``. The identity itself is read back from ``repo.json``, never
from folder names; folders written by older versions (no ``repo.json``) are listed by their
path and can still be removed.

Nothing is ever visible at its final path until it is complete: files and trees are written
under ``tmp/`` and moved into place with an atomic rename while holding the entry's lock, so a
reader either sees a whole entry or none, and a process killed mid-write leaves only litter
under ``tmp/`` that nothing reads.

Nothing is trusted only because it is there. A blob is used only when its size matches its
verification record and, if its metadata changed since that record (or
``HUBCORE_VERIFY=always``), its sha256 matches its name; otherwise it is moved aside and
fetched again. A snapshot is used only when every file of its manifest is present with the
recorded size. Removals are counted (started and finished), so an operation that failed while
an entry it used was removed can tell, and run again (:func:`retried_after_removal`).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, ParamSpec, Protocol, TypeVar
from urllib.parse import unquote

from hubcore import config, settings
from hubcore.errors import CacheError, HubError
from hubcore.patterns import later
from hubcore.records import Record, asdict
from hubcore.store.files import atomic_write_json

# filelock, hashlib, shutil and tempfile are imported where they are used: every command
# imports this module, and reading a live folder or an intact snapshot needs none of them.
if TYPE_CHECKING:
    import filelock

__all__ = [
    "Cache",
    "CachedBlob",
    "CachedSnapshot",
    "UrlRecord",
    "file_sha256",
    "folder_name",
    "get_cache",
    "is_sha256",
    "retried_after_removal",
]

logger = logging.getLogger(__name__)

CHUNK = 1 << 20
_SAFE_COMPONENT = later(r"[^A-Za-z0-9._-]+")
_HEX64 = later(r"^[0-9a-f]{64}$")
_PLAIN = later(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")
_PLAIN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
_MAX_COMPONENT = 120
# Names with a meaning inside a repository folder; a key component never takes one of them.
_RESERVED = frozenset({"repo.json", "refs.json", "snapshots", "manifests"})
_ATTEMPTS = 8  # of an operation that keeps failing while cache entries are being removed


def is_sha256(text: object) -> bool:
    """Whether *text* is a sha256 hex digest as hubcore writes them (64 lower-case hex)."""
    return isinstance(text, str) and _HEX64().match(text) is not None


def safe_component(text: str) -> str:
    """Turn arbitrary text into one safe path component (no separators, no dot-dot).

    Lossy (``~alice`` and ``alice`` give the same name); the cache itself names folders with
    the injective :func:`folder_name`.
    """
    cleaned = _SAFE_COMPONENT().sub("_", text).strip("._") or "_"
    return cleaned[:120]


def folder_name(text: str) -> str:
    """One path component for *text*, different for different texts.

    Plain names stay as they are; other characters (and a leading dot, and the names the
    cache reserves) are percent-encoded; an over-long result is cut and suffixed with
    ``%%`` and a hash of *text*, a sequence percent-encoding never produces.
    """
    import hashlib

    if _PLAIN().match(text) and text not in _RESERVED and len(text) <= _MAX_COMPONENT:
        return text
    if not text:
        return "%"
    encoded = [
        c if c in _PLAIN_CHARS else "".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass"))
        for c in text
    ]
    if text[0] == "." or text in _RESERVED:
        encoded[0] = f"%{ord(text[0]):02X}"
    name = "".join(encoded)
    if len(name) > _MAX_COMPONENT:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        name = f"{name[:64]}%%{digest}"
    return name


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 hex digest of a local file."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class UrlRecord(Record):
    """What a weight URL resolved to the last time it was fetched."""

    url: str
    sha256: str
    size: int
    name: str
    validator: str | None = None  # e.g. "mtime:size" for local files, an ETag for HTTP


class CachedSnapshot(Record):
    """One snapshot folder in the cache, for listing and cleaning.

    ``repo`` is the repository key as the source passed it (from ``repo.json``); for a folder
    written by an older version without that record, ``recorded`` is false and ``repo`` is the
    folder's path below the source folder.
    """

    source: str
    repo: str
    snapshot_id: str
    path: Path
    size: int
    mtime: float
    refs: tuple[str, ...]  # branches/tags whose last resolution is this snapshot
    recorded: bool = True


class CachedBlob(Record):
    """One weight blob, with the URLs last resolved to it."""

    sha256: str
    path: Path
    size: int
    mtime: float
    urls: tuple[str, ...]


class _Rooted(Protocol):
    @property
    def root(self) -> Path: ...


_S = TypeVar("_S", bound=_Rooted)
_P = ParamSpec("_P")
_R = TypeVar("_R")


class Cache(Record):
    """The cache rooted at *root*; see the module docstring for the layout."""

    root: Path

    # -- paths ---------------------------------------------------------------------------
    @property
    def tmp_dir(self) -> Path:
        """Where partial files and trees are written (created on first use)."""
        return self._ensure(self.root / "tmp")

    def blob_path(self, sha256: str) -> Path:
        """Where the blob with this sha256 lives (it may not exist)."""
        if not _HEX64().match(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / "blobs" / "sha256" / sha256[:2] / sha256

    def repo_dir(self, source: str, repo_key: str) -> Path:
        """The folder of one repository of one source (see the module docstring)."""
        scheme, sep, rest = repo_key.partition("://")
        # a URL identity (``https://host/path``) keeps its host and path as folders
        pieces = [f"{scheme}:", *rest.split("/")] if sep and "/" not in scheme else None
        parts = [folder_name(p) for p in pieces or repo_key.split("/")]
        return self.root.joinpath("repos", folder_name(source), *parts)

    def snapshot_dir(self, source: str, repo_key: str, snapshot_id: str) -> Path:
        """Where an immutable snapshot of a repository lives (it may not exist)."""
        return self.repo_dir(source, repo_key) / "snapshots" / folder_name(snapshot_id)

    def lock(self, *key: str, timeout: float = -1) -> filelock.BaseFileLock:
        """A cross-process lock named by *key* (blocking unless a timeout is given)."""
        import hashlib

        digest = hashlib.sha256("\0".join(key).encode()).hexdigest()[:32]
        path = self._ensure(self.root / "locks") / f"{digest}.lock"
        return _lock_class()(str(path), timeout=timeout)

    # -- blobs -----------------------------------------------------------------------------
    def has_blob(self, sha256: str) -> bool:
        """Whether a file is stored under this sha256 (not whether it is intact)."""
        return self.blob_path(sha256).is_file()

    def store_blob(self, tmp_file: Path, sha256: str) -> Path:
        """Move a verified temporary file into the store; return its final path."""
        final = self.blob_path(sha256)
        self._ensure(final.parent)
        with self.lock("blob", sha256):
            with contextlib.suppress(FileNotFoundError):
                st = os.lstat(final)
                if not stat.S_ISREG(st.st_mode):
                    aside = self._move_aside(final, st)
                    logger.warning("%s was not a file; moved aside to %s", final, aside)
            _backdate(tmp_file)
            os.replace(tmp_file, final)
            self._write_record(sha256, os.lstat(final))
        return final

    @contextlib.contextmanager
    def temp_file(self, suffix: str = ".part") -> Iterator[Path]:
        """A fresh temp file path under ``tmp/``; removed on exit unless it was moved away."""
        import tempfile

        fd, name = tempfile.mkstemp(dir=self.tmp_dir, suffix=suffix)
        os.close(fd)
        path = Path(name)
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    def verified_blob(self, sha256: str) -> Path | None:
        """The blob with this sha256 if it is stored and intact; ``None`` if it is not stored.

        Its size is always compared with its verification record; its content is hashed
        when the record is missing, when the file changed since (mtime, ctime, inode) or
        with ``HUBCORE_VERIFY=always``. A blob that fails is moved aside under ``tmp/`` and
        :class:`~hubcore.errors.CacheError` says so.
        """
        path = self.blob_path(sha256)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CacheError(f"cannot read the cached weight file {path}: {exc}") from exc
        if not stat.S_ISREG(st.st_mode):
            self._reject(path, st, "it is not a regular file")
        if _VERIFIED.get(path) == _stamp(st) and not _verify_always():
            return path  # matched its record earlier in this process, and unchanged since
        record = _read_json(self._record_path(sha256)) or {}
        if "size" in record and record["size"] != st.st_size:
            self._reject(path, st, f"{st.st_size} bytes, {record['size']} when it was verified")
        if _verify_always() or _stamp(st) != _stamp_of(record):
            try:
                actual = file_sha256(path)
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise CacheError(f"cannot read the cached weight file {path}: {exc}") from exc
            if actual != sha256:
                self._reject(path, st, f"its content has sha256 {actual}")
            self._remember_verified(path, sha256, st)
        else:
            _VERIFIED[path] = _stamp(st)
        return path

    def _record_path(self, sha256: str) -> Path:
        return self.root / "verified" / "sha256" / sha256[:2] / f"{sha256}.json"

    def _write_record(self, sha256: str, st: os.stat_result) -> None:
        with contextlib.suppress(OSError):  # a read-only cache just verifies again next time
            self.atomic_write_json(self._record_path(sha256), {"sha256": sha256, **_stamp_dict(st)})

    def _remember_verified(self, path: Path, sha256: str, hashed: os.stat_result) -> None:
        """Record a blob just hashed, unless it changed meanwhile (then it is hashed again)."""
        with self.lock("blob", sha256):
            try:
                if _stamp(os.lstat(path)) != _stamp(hashed):
                    return
                _backdate(path)
                self._write_record(sha256, os.lstat(path))
            except OSError:
                return

    def _reject(self, path: Path, st: os.stat_result, why: str) -> NoReturn:
        with self.lock("blob", path.name):
            aside = self._move_aside(path, st)
        where = f"moved aside to {aside}" if aside else "already replaced by another process"
        raise CacheError(
            f"the cached weight file {path} is not what its name says ({why}); it was {where}"
        )

    def _move_aside(self, path: Path, st: os.stat_result) -> Path | None:
        """Move a damaged blob (the very file *st* describes) out of the store; call locked."""
        import tempfile

        try:
            if _stamp(os.lstat(path)) != _stamp(st):
                return None
        except FileNotFoundError:
            return None
        aside = Path(tempfile.mkdtemp(dir=self.tmp_dir, prefix=f"corrupt-{path.name[:16]}-"))
        with self._removing():
            os.replace(path, aside / path.name)
            self._record_path(path.name).unlink(missing_ok=True)
        return aside / path.name

    # -- URL records -------------------------------------------------------------------------
    def _url_record_path(self, url: str) -> Path:
        import hashlib

        return self.root / "urls" / f"{hashlib.sha256(url.encode()).hexdigest()}.json"

    def read_url_record(self, url: str) -> UrlRecord | None:
        """The last resolution of *url*, if one was recorded and still looks sane."""
        data = _read_json(self._url_record_path(url))
        if not data or data.get("url") != url:
            return None
        try:
            return UrlRecord(
                url=data["url"],
                sha256=data["sha256"],
                size=int(data["size"]),
                name=data["name"],
                validator=data.get("validator"),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def write_url_record(self, record: UrlRecord) -> None:
        """Record what a URL resolved to."""
        self.atomic_write_json(self._url_record_path(record.url), asdict(record))

    # -- snapshots ----------------------------------------------------------------------------
    def publish_tree(
        self,
        source: str,
        repo_key: str,
        snapshot_id: str,
        fill: Callable[[Path], None],
        *,
        replace: bool = False,
    ) -> Path:
        """Return the snapshot's folder, creating it with ``fill(tmp_folder)`` if needed.

        ``fill`` writes the tree into an empty temporary folder; it is moved into place only
        when ``fill`` returns, after its manifest (file list) and the repository's identity
        record are written. Concurrent callers for the same snapshot wait for the first.
        ``replace=True`` rebuilds an existing snapshot (``force_reload``); the old tree is
        swapped out in one rename, so readers never see a mixture.
        """
        import shutil
        import tempfile

        final = self.snapshot_dir(source, repo_key, snapshot_id)
        if final.is_dir() and not replace:
            return final
        with self.lock("snapshot", source, repo_key, snapshot_id):
            if final.is_dir() and not replace:
                return final
            work = Path(tempfile.mkdtemp(dir=self.tmp_dir, prefix="tree-"))
            try:
                fill(work)
                self._record_identity(source, repo_key)
                self.atomic_write_json(_manifest_path(final), {"files": _manifest_of(work)})
                self._ensure(final.parent)
                if final.exists():
                    with self._removing():  # loads that see the gap run again
                        self.discard_tree(final)
                        os.replace(work, final)
                else:
                    os.replace(work, final)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        return final

    def discard_tree(self, folder: Path) -> None:
        """Remove a tree: first renamed away atomically, then deleted."""
        import shutil
        import tempfile

        trash = Path(tempfile.mkdtemp(dir=self.tmp_dir, prefix="trash-"))
        with contextlib.suppress(FileNotFoundError):
            os.replace(folder, trash / "tree")
        shutil.rmtree(trash, ignore_errors=True)

    def check_snapshot(self, root: Path) -> str | None:
        """What is wrong with the snapshot folder *root*, or ``None`` when it is intact.

        Every file its manifest lists must be there with its recorded size (one ``lstat``
        per file; files added later, such as ``__pycache__``, are allowed). Folders that are
        not snapshots of this cache (live local folders) and snapshots published before
        manifests existed are not checked.
        """
        manifest = _manifest_path(root)
        if not root.is_relative_to(self.root / "repos"):
            return None
        data = _MANIFESTS.get(manifest)  # manifests never change once published
        if data is None:
            data = _read_json(manifest)
            if data is not None:
                _MANIFESTS[manifest] = data
        if not os.path.isdir(root):
            return "the folder is missing"
        files = data.get("files") if data else None
        if not isinstance(files, dict):
            return None
        missing, changed = [], []
        base = str(root) + os.sep
        for rel, size in files.items():
            try:
                st = os.lstat(base + rel)
            except OSError:
                missing.append(rel)
                continue
            is_link = stat.S_ISLNK(st.st_mode)
            if (size == -1) != is_link or (size != -1 and st.st_size != size):
                changed.append(rel)
        problems = [f"{len(missing)} file(s) missing: {_few(missing)}"] if missing else []
        problems += [f"{len(changed)} file(s) changed: {_few(changed)}"] if changed else []
        return "; ".join(problems) or None

    def intact(self, snapshot: _S, refetch: Callable[[], _S], *, offline: bool, label: str) -> _S:
        """*snapshot* if :meth:`check_snapshot` finds it intact; else fetched again with
        *refetch* (online), or :class:`~hubcore.errors.CacheError` naming the cache folder
        and the ways out (offline)."""
        damage = self.check_snapshot(snapshot.root)
        if damage is None:
            return snapshot
        where = f"the cached snapshot {snapshot.root} of {label}"
        hint = f"`hubcore cache rm {snapshot.root.name[:16]}`"
        if offline:
            raise CacheError(
                f"{where} is damaged ({damage}). Offline mode is on, so it cannot be fetched "
                f"again: run once online with --force-reload (force_reload=True), or remove "
                f"it with {hint}."
            )
        logger.warning("%s is damaged (%s); fetching it again", where, damage)
        fresh = refetch()
        damage = self.check_snapshot(fresh.root)
        if damage is not None:
            raise CacheError(
                f"{where} is still damaged after fetching it again ({damage}); remove it "
                f"with {hint} and check the disk"
            )
        return fresh

    def read_refs(self, source: str, repo_key: str) -> dict[str, str]:
        """The branch/tag -> snapshot id record of a repository."""
        return _refs_in(self.repo_dir(source, repo_key))

    def write_ref(self, source: str, repo_key: str, ref: str, snapshot_id: str) -> None:
        """Record that *ref* resolved to *snapshot_id*."""
        path = self.repo_dir(source, repo_key) / "refs.json"
        with self.lock("refs", source, repo_key):
            self._record_identity(source, repo_key)
            refs = self.read_refs(source, repo_key)
            refs[ref] = snapshot_id
            self.atomic_write_json(path, refs)

    def _record_identity(self, source: str, repo_key: str) -> None:
        path = self.repo_dir(source, repo_key) / "repo.json"
        if not path.is_file():
            self.atomic_write_json(path, {"source": source, "key": repo_key})

    # -- inspection and cleaning ------------------------------------------------------------------
    def snapshots(self) -> list[CachedSnapshot]:
        """Every snapshot in the cache, with size and the refs pointing at it.

        Entries that are not what the layout says (a file where a folder belongs) are
        skipped with a warning, so one odd entry never blocks listing or cleaning the rest.
        """
        found = []
        for folder, source, key, recorded in self._repositories():
            snaps = folder / "snapshots"
            if not os.path.lexists(snaps):
                continue
            if snaps.is_symlink() or not snaps.is_dir():
                logger.warning("skipping %s: not a folder of snapshots", snaps)
                continue
            refs = _refs_in(folder)
            for entry in _entries(snaps):
                path = Path(entry.path)
                try:
                    if not entry.is_dir(follow_symlinks=False):
                        logger.warning("skipping %s: not a snapshot folder", path)
                        continue
                    mtime = entry.stat(follow_symlinks=False).st_mtime
                except OSError:
                    continue  # removed meanwhile
                snapshot_id = _decoded(entry.name)
                pointing = tuple(sorted(k for k, v in refs.items() if v == snapshot_id))
                found.append(
                    CachedSnapshot(
                        source, key, snapshot_id, path, _tree_size(path), mtime, pointing, recorded
                    )
                )
        return found

    def _repositories(self) -> Iterator[tuple[Path, str, str, bool]]:
        """(folder, source, key, recorded) of every repository folder."""
        for top in _entries(self.root / "repos"):
            if top.is_dir(follow_symlinks=False):
                yield from self._walk_repositories(Path(top.path), _decoded(top.name), [])
            else:
                logger.warning("skipping %s: not a source folder", top.path)

    def _walk_repositories(
        self, folder: Path, source: str, parts: list[str]
    ) -> Iterator[tuple[Path, str, str, bool]]:
        entries = list(_entries(folder))
        names = {e.name for e in entries}
        if names & {"repo.json", "snapshots", "refs.json"}:
            record = _read_json(folder / "repo.json") or {}
            key, src = record.get("key"), record.get("source")
            if isinstance(key, str) and isinstance(src, str) and self.repo_dir(src, key) == folder:
                yield folder, src, key, True
            else:
                if "repo.json" in names:
                    logger.warning("%s does not describe its folder; ignoring it", record)
                yield folder, source, "/".join(_decoded(p) for p in parts), False
        for entry in entries:
            if entry.name not in _RESERVED and entry.is_dir(follow_symlinks=False):
                yield from self._walk_repositories(Path(entry.path), source, [*parts, entry.name])

    def blobs(self) -> list[CachedBlob]:
        """Every weight blob, with the URLs whose records point at it (odd entries are
        skipped with a warning)."""
        urls: dict[str, list[str]] = {}
        for record_path in (self.root / "urls").glob("*.json"):
            data = _read_json(record_path) or {}
            if isinstance(data.get("sha256"), str) and isinstance(data.get("url"), str):
                urls.setdefault(data["sha256"], []).append(data["url"])
        found = []
        for shard in _entries(self.root / "blobs" / "sha256"):
            for entry in _entries(Path(shard.path)):
                name = entry.name
                try:
                    if not (_HEX64().match(name) and entry.is_file(follow_symlinks=False)):
                        logger.warning("skipping %s: not a weight file", entry.path)
                        continue
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue  # removed meanwhile
                found.append(
                    CachedBlob(
                        name, Path(entry.path), st.st_size, st.st_mtime, tuple(urls.get(name, ()))
                    )
                )
        return found

    def remove_snapshot(self, snap: CachedSnapshot) -> None:
        """Delete a snapshot (atomically, under the lock loading takes) and refs that
        pointed at it."""
        folder = snap.path.parent.parent
        with self._removing():
            with self.lock("snapshot", snap.source, snap.repo, snap.snapshot_id):
                if snap.path.is_dir():
                    self.discard_tree(snap.path)
                _manifest_path(snap.path).unlink(missing_ok=True)
            with self.lock("refs", snap.source, snap.repo):
                refs = _refs_in(folder)
                kept = {k: v for k, v in refs.items() if v != snap.snapshot_id}
                if kept != refs:
                    self.atomic_write_json(folder / "refs.json", kept)

    def remove_blob(self, blob: CachedBlob) -> None:
        """Delete a blob and the URL records that resolve to it."""
        with self._removing():
            for url in blob.urls:
                with self.lock("url", url):
                    self._url_record_path(url).unlink(missing_ok=True)
            with self.lock("blob", blob.sha256):
                blob.path.unlink(missing_ok=True)
                self._record_path(blob.sha256).unlink(missing_ok=True)

    def prune(self, *, older_than: float, now: float | None = None) -> tuple[int, int]:
        """Remove unreferenced blobs, snapshots no ref points at that are older than
        *older_than* seconds, and stale temporary files. Returns (files, bytes) freed.
        An entry that cannot be removed is reported and skipped."""
        import shutil

        now = time.time() if now is None else now
        freed = count = 0
        removals: list[tuple[Any, int, Callable[[], None]]] = []
        for blob in self.blobs():
            if not blob.urls and now - blob.mtime > older_than:
                removals.append((blob.path, blob.size, functools.partial(self.remove_blob, blob)))
        for snap in self.snapshots():
            if not snap.refs and now - snap.mtime > older_than:
                removals.append(
                    (snap.path, snap.size, functools.partial(self.remove_snapshot, snap))
                )
        for path, size, remove in removals:
            try:
                remove()
            except OSError as exc:
                logger.warning("could not remove %s: %s", path, exc)
                continue
            freed, count = freed + size, count + 1
        for record in (self.root / "verified" / "sha256").glob("*/*.json"):
            if _HEX64().match(record.stem) and not self.blob_path(record.stem).exists():
                record.unlink(missing_ok=True)
        for litter in _entries(self.root / "tmp"):
            try:
                if now - litter.stat(follow_symlinks=False).st_mtime > max(older_than, 3600):
                    path = Path(litter.path)
                    if litter.is_dir(follow_symlinks=False):
                        size = _tree_size(path)
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        size = litter.stat(follow_symlinks=False).st_size
                        path.unlink(missing_ok=True)
                    freed, count = freed + size, count + 1
            except OSError:
                continue
        return count, freed

    # -- removals in flight -------------------------------------------------------------------
    def removal_mark(self) -> int:
        """How many removals have finished; see :meth:`removed_since`."""
        return _size_of(self.root / "locks" / "removals.finished")

    def removed_since(self, mark: int) -> bool:
        """Whether a removal overlapped the time since :meth:`removal_mark` returned *mark*:
        one was still running then or has started since."""
        return _size_of(self.root / "locks" / "removals.started") > mark

    @contextlib.contextmanager
    def _removing(self) -> Iterator[None]:
        """Count a removal as started before it begins and as finished after it ends."""
        folder = self._ensure(self.root / "locks")
        _append_byte(folder / "removals.started")
        try:
            yield
        finally:
            _append_byte(folder / "removals.finished")

    # -- helpers --------------------------------------------------------------------------------
    def atomic_write_json(self, path: Path, data: Mapping[str, Any]) -> None:
        """Write JSON so that readers see either the old or the new content, never a part."""
        self._ensure(path.parent)
        atomic_write_json(path, data, temp_dir=self.tmp_dir)

    @staticmethod
    def _ensure(path: Path) -> Path:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _unwritable(path, exc) from None
        return path


#: Blobs found intact in this process, by the stamp (size, times, inode) they had then.
_VERIFIED: dict[Path, Any] = {}
#: Snapshot manifests read in this process (written once, before their snapshot appears).
_MANIFESTS: dict[Path, dict[str, Any]] = {}


def _unwritable(path: Path, exc: OSError) -> CacheError:
    return CacheError(
        f"cannot write {path}: {exc.strerror or exc}. The hub home must be a writable folder: "
        "set HUBCORE_HOME (or pass --home) to one"
    )


@functools.cache
def _lock_class() -> type[filelock.FileLock]:
    import filelock

    class _Lock(filelock.FileLock):
        """A file lock whose failure to create its file (a read-only hub home) is a
        HubError."""

        def acquire(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().acquire(*args, **kwargs)
            except filelock.Timeout:
                raise
            except OSError as exc:
                raise _unwritable(Path(self.lock_file), exc) from None

    return _Lock


_retrying: contextvars.ContextVar[bool] = contextvars.ContextVar("hubcore_retrying", default=False)


def retried_after_removal(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorate an operation that opens and uses cache entries (a load) so that it runs again
    when it failed while another process or thread removed cache entries: the next run
    fetches what was removed. After a few such failures, a failure that is not a
    :class:`~hubcore.errors.HubError` becomes a :class:`~hubcore.errors.CacheError`.
    Nested decorated calls leave the retrying to the outermost."""

    @functools.wraps(fn)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        if _retrying.get():
            return fn(*args, **kwargs)
        cache = get_cache()
        token = _retrying.set(True)
        try:
            attempt = 1
            while True:
                mark = cache.removal_mark()
                try:
                    return fn(*args, **kwargs)
                except Exception as exc:
                    if not cache.removed_since(mark):
                        raise
                    if attempt == _ATTEMPTS:
                        if isinstance(exc, HubError):
                            raise
                        raise CacheError(
                            f"cache entries this operation used were removed while it ran "
                            f"({attempt} times; the last failure: {type(exc).__name__}: {exc}). "
                            "Another process is cleaning the cache; try again when it is done."
                        ) from exc
                    logger.info("cache entries in use were removed (%s); running again", exc)
                    attempt += 1
        finally:
            _retrying.reset(token)

    return run


def _verify_always() -> bool:
    return settings.current().verify == "always"


def _backdate(path: Path) -> None:
    """Set *path*'s mtime to a whole second in the past before recording it as verified:
    any later write, even within the same coarse clock tick, then gives it another mtime."""
    past = (time.time_ns() // 1_000_000_000 - 1) * 1_000_000_000
    os.utime(path, ns=(past, past))


def _stamp_dict(st: os.stat_result) -> dict[str, int]:
    # ctime cannot be set by programs, so a write whose mtime was put back still shows.
    return {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "ino": st.st_ino,
    }


def _stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _stamp_of(record: Mapping[str, Any]) -> tuple[Any, ...] | None:
    try:
        return (record["size"], record["mtime_ns"], record["ctime_ns"], record["ino"])
    except KeyError:
        return None


def _manifest_path(snapshot: Path) -> Path:
    return snapshot.parent.parent / "manifests" / f"{snapshot.name}.json"


def _manifest_of(tree: Path) -> dict[str, int]:
    """``{relative path: size}`` of every file in *tree*; -1 for a symbolic link."""
    files: dict[str, int] = {}
    for folder, dirs, names in os.walk(tree):
        rel = os.path.relpath(folder, tree).replace(os.sep, "/")
        prefix = "" if rel == "." else rel + "/"
        for name in names + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            st = os.lstat(os.path.join(folder, name))
            files[prefix + name] = -1 if stat.S_ISLNK(st.st_mode) else st.st_size
    return files


def _few(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(sorted(names)[:limit])
    return shown + (", ..." if len(names) > limit else "")


def _decoded(name: str) -> str:
    """The text a :func:`folder_name` stands for (as far as it can be told)."""
    return name if "%" not in name or "%%" in name else unquote(name, errors="surrogatepass")


def _entries(folder: Path) -> Iterator[os.DirEntry[str]]:
    """The entries of *folder*, sorted; none when it is missing or not a folder."""
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except FileNotFoundError:
        return
    except OSError as exc:
        logger.warning("skipping %s: %s", folder, exc)
        return
    yield from entries


def _refs_in(folder: Path) -> dict[str, str]:
    data = _read_json(folder / "refs.json")
    return {str(k): str(v) for k, v in (data or {}).items()}


def _size_of(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _append_byte(path: Path) -> None:
    # O_APPEND writes of one byte are atomic: concurrent removals each count.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, b".")
    finally:
        os.close(fd)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        with path.open(encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _tree_size(folder: Path) -> int:
    total = 0
    for parent, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(parent, name))
                if stat.S_ISREG(st.st_mode):
                    total += st.st_size
    return total


def get_cache() -> Cache:
    """The cache at the current hub home."""
    return Cache(config.get_dir())
