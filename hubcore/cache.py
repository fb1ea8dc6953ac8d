"""The on-disk cache: content-addressed weights and immutable repository snapshots.

Layout under the hub home (:func:`hubcore.get_dir`)::

    <home>/
      blobs/sha256/<2 hex>/<64 hex>      weight files, named by the sha256 of their bytes
      urls/<sha256 of the URL>.json      what a weight URL last resolved to (sha256, size, name)
      repos/<source>/<repo key>/
          snapshots/<snapshot id>/       one immutable tree per commit / content hash
          refs.json                      branch or tag -> the snapshot id it last resolved to
      tmp/                               partial files and trees, on the same filesystem
      locks/                             lock files (one per blob, URL and snapshot)

Nothing is ever visible at its final path until it is complete: files and trees are written
under ``tmp/`` and moved into place with an atomic rename while holding the entry's lock, so a
reader either sees a whole entry or none, and a process killed mid-write leaves only litter
under ``tmp/`` that nothing reads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import filelock

from hubcore import config

__all__ = ["Cache", "CachedBlob", "CachedSnapshot", "UrlRecord", "get_cache"]

_SAFE_COMPONENT = re.compile(r"[^A-Za-z0-9._-]+")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def safe_component(text: str) -> str:
    """Turn arbitrary text into one safe path component (no separators, no dot-dot)."""
    cleaned = _SAFE_COMPONENT.sub("_", text).strip("._") or "_"
    return cleaned[:120]


@attrs.frozen
class UrlRecord:
    """What a weight URL resolved to the last time it was fetched."""

    url: str
    sha256: str
    size: int
    name: str
    validator: str | None = None  # e.g. "mtime:size" for local files, an ETag for HTTP


@attrs.frozen
class CachedSnapshot:
    """One snapshot folder in the cache, for listing and cleaning."""

    source: str
    repo: str
    snapshot_id: str
    path: Path
    size: int
    mtime: float
    refs: tuple[str, ...]  # branches/tags whose last resolution is this snapshot


@attrs.frozen
class CachedBlob:
    """One weight blob, with the URLs last resolved to it."""

    sha256: str
    path: Path
    size: int
    mtime: float
    urls: tuple[str, ...]


@attrs.frozen
class Cache:
    """The cache rooted at *root*; see the module docstring for the layout."""

    root: Path

    # -- paths ---------------------------------------------------------------------------
    @property
    def tmp_dir(self) -> Path:
        return self._ensure(self.root / "tmp")

    def blob_path(self, sha256: str) -> Path:
        """Where the blob with this sha256 lives (it may not exist)."""
        if not _HEX64.match(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / "blobs" / "sha256" / sha256[:2] / sha256

    def repo_dir(self, source: str, repo_key: str) -> Path:
        """The folder of one repository of one source."""
        parts = [safe_component(p) for p in repo_key.split("/") if p]
        return self.root.joinpath("repos", safe_component(source), *parts)

    def snapshot_dir(self, source: str, repo_key: str, snapshot_id: str) -> Path:
        """Where an immutable snapshot of a repository lives (it may not exist)."""
        return self.repo_dir(source, repo_key) / "snapshots" / safe_component(snapshot_id)

    def lock(self, *key: str, timeout: float = -1) -> filelock.BaseFileLock:
        """A cross-process lock named by *key* (blocking unless a timeout is given)."""
        digest = hashlib.sha256("\0".join(key).encode()).hexdigest()[:32]
        path = self._ensure(self.root / "locks") / f"{digest}.lock"
        return filelock.FileLock(str(path), timeout=timeout)

    # -- blobs -----------------------------------------------------------------------------
    def has_blob(self, sha256: str) -> bool:
        return self.blob_path(sha256).is_file()

    def store_blob(self, tmp_file: Path, sha256: str) -> Path:
        """Move a verified temporary file into the store; return its final path."""
        final = self.blob_path(sha256)
        self._ensure(final.parent)
        os.replace(tmp_file, final)
        return final

    @contextlib.contextmanager
    def temp_file(self, suffix: str = ".part") -> Iterator[Path]:
        """A fresh temp file path under ``tmp/``; removed on exit unless it was moved away."""
        fd, name = tempfile.mkstemp(dir=self.tmp_dir, suffix=suffix)
        os.close(fd)
        path = Path(name)
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    # -- URL records -------------------------------------------------------------------------
    def _url_record_path(self, url: str) -> Path:
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
        self.atomic_write_json(self._url_record_path(record.url), attrs.asdict(record))

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
        when ``fill`` returns. Concurrent callers for the same snapshot wait for the first.
        ``replace=True`` rebuilds an existing snapshot (``force_reload``); the old tree is
        swapped out in one rename, so readers never see a mixture.
        """
        final = self.snapshot_dir(source, repo_key, snapshot_id)
        if final.is_dir() and not replace:
            return final
        with self.lock("snapshot", source, repo_key, snapshot_id):
            if final.is_dir() and not replace:
                return final
            work = Path(tempfile.mkdtemp(dir=self.tmp_dir, prefix="tree-"))
            try:
                fill(work)
                self._ensure(final.parent)
                if final.is_dir():
                    self.discard_tree(final)
                os.replace(work, final)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        return final

    def discard_tree(self, folder: Path) -> None:
        """Remove a tree: first renamed away atomically, then deleted."""
        trash = Path(tempfile.mkdtemp(dir=self.tmp_dir, prefix="trash-"))
        os.replace(folder, trash / "tree")
        shutil.rmtree(trash, ignore_errors=True)

    def read_refs(self, source: str, repo_key: str) -> dict[str, str]:
        """The branch/tag -> snapshot id record of a repository."""
        data = _read_json(self.repo_dir(source, repo_key) / "refs.json")
        return {str(k): str(v) for k, v in (data or {}).items()}

    def write_ref(self, source: str, repo_key: str, ref: str, snapshot_id: str) -> None:
        """Record that *ref* resolved to *snapshot_id*."""
        path = self.repo_dir(source, repo_key) / "refs.json"
        with self.lock("refs", source, repo_key):
            refs = self.read_refs(source, repo_key)
            refs[ref] = snapshot_id
            self.atomic_write_json(path, refs)

    # -- inspection and cleaning ------------------------------------------------------------------
    def snapshots(self) -> list[CachedSnapshot]:
        """Every snapshot in the cache, with size and the refs pointing at it."""
        found = []
        for snaps in sorted((self.root / "repos").glob("*/**/snapshots")):
            repo_dir = snaps.parent
            source = repo_dir.relative_to(self.root / "repos").parts[0]
            repo = "/".join(repo_dir.relative_to(self.root / "repos").parts[1:])
            refs = _read_json(repo_dir / "refs.json") or {}
            for folder in sorted(p for p in snaps.iterdir() if p.is_dir()):
                pointing = tuple(sorted(k for k, v in refs.items() if v == folder.name))
                found.append(
                    CachedSnapshot(
                        source,
                        repo,
                        folder.name,
                        folder,
                        _tree_size(folder),
                        folder.stat().st_mtime,
                        pointing,
                    )
                )
        return found

    def blobs(self) -> list[CachedBlob]:
        """Every weight blob, with the URLs whose records point at it."""
        urls: dict[str, list[str]] = {}
        for record_path in (self.root / "urls").glob("*.json"):
            data = _read_json(record_path) or {}
            if isinstance(data.get("sha256"), str) and isinstance(data.get("url"), str):
                urls.setdefault(data["sha256"], []).append(data["url"])
        found = []
        for blob in sorted((self.root / "blobs" / "sha256").glob("*/*")):
            if _HEX64.match(blob.name):
                st = blob.stat()
                found.append(
                    CachedBlob(
                        blob.name, blob, st.st_size, st.st_mtime, tuple(urls.get(blob.name, ()))
                    )
                )
        return found

    def remove_snapshot(self, snap: CachedSnapshot) -> None:
        """Delete a snapshot (atomically, under its lock) and refs that pointed at it."""
        with self.lock("snapshot", snap.source, snap.repo, snap.snapshot_id):
            if snap.path.is_dir():
                self.discard_tree(snap.path)
        with self.lock("refs", snap.source, snap.repo):
            refs = self.read_refs(snap.source, snap.repo)
            kept = {k: v for k, v in refs.items() if v != snap.snapshot_id}
            if kept != refs:
                self.atomic_write_json(self.repo_dir(snap.source, snap.repo) / "refs.json", kept)

    def remove_blob(self, blob: CachedBlob) -> None:
        """Delete a blob and the URL records that resolve to it."""
        for url in blob.urls:
            with self.lock("url", url):
                self._url_record_path(url).unlink(missing_ok=True)
        blob.path.unlink(missing_ok=True)

    def prune(self, *, older_than: float, now: float | None = None) -> tuple[int, int]:
        """Remove unreferenced blobs, snapshots no ref points at that are older than
        *older_than* seconds, and stale temporary files. Returns (files, bytes) freed."""
        import time

        now = time.time() if now is None else now
        freed = count = 0
        for blob in self.blobs():
            if not blob.urls and now - blob.mtime > older_than:
                self.remove_blob(blob)
                freed, count = freed + blob.size, count + 1
        for snap in self.snapshots():
            if not snap.refs and now - snap.mtime > older_than:
                self.remove_snapshot(snap)
                freed, count = freed + snap.size, count + 1
        for litter in (self.root / "tmp").glob("*"):
            try:
                if now - litter.stat().st_mtime > max(older_than, 3600):
                    size = _tree_size(litter) if litter.is_dir() else litter.stat().st_size
                    if litter.is_dir():
                        shutil.rmtree(litter, ignore_errors=True)
                    else:
                        litter.unlink(missing_ok=True)
                    freed, count = freed + size, count + 1
            except OSError:
                continue
        return count, freed

    # -- helpers --------------------------------------------------------------------------------
    def atomic_write_json(self, path: Path, data: Mapping[str, Any]) -> None:
        """Write JSON so that readers see either the old or the new content, never a part."""
        self._ensure(path.parent)
        fd, name = tempfile.mkstemp(dir=self.tmp_dir, suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1, sort_keys=True)
            os.replace(name, path)
        finally:
            Path(name).unlink(missing_ok=True)

    @staticmethod
    def _ensure(path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        return path


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        with path.open(encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _tree_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def get_cache() -> Cache:
    """The cache at the current hub home."""
    return Cache(config.get_dir())
