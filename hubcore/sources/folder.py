"""The ``fsspec`` source: a repository folder on any fsspec filesystem (S3, OSS, GCS, ...).

The folder is listed once (one request for object stores); the snapshot id is a hash of that
listing (names, sizes and ETags or modification times), so an unchanged folder is served from
the cache after that one listing, and a changed one is fetched anew into a fresh snapshot.

``oss://bucket/path/`` uses ``ossfs`` when it is installed; otherwise it goes through s3fs
against OSS's S3-compatible endpoint, taken from ``storage_options={"endpoint_url": ...}`` or
``HUBCORE_OSS_ENDPOINT`` (for example ``https://oss-cn-hangzhou.aliyuncs.com``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hubcore import config
from hubcore.cache import safe_component
from hubcore.errors import (
    ConfigError,
    DownloadError,
    HubconfNotFoundError,
    OfflineError,
    RepoNotFoundError,
)
from hubcore.hookspecs import hookimpl
from hubcore.sources import FetchContext, RepoRef, Snapshot, Source

__all__ = ["FolderSource"]

#: Protocols other sources handle, or that are not folders of files.
_NOT_FOLDERS = {"http", "https", "file", "local", "git", "ssh", "github", "zip", "tar"}


class FolderSource:
    """A folder on an fsspec filesystem, snapshotted by its listing."""

    name = "fsspec"
    forms: tuple[str, ...] = ("s3://bucket/path/", "oss://bucket/path/", "<protocol>://path/")

    def parse(self, text: str, options: Mapping[str, Any]) -> RepoRef | None:
        body = text[len("fsspec:") :] if text.startswith("fsspec:") else text
        scheme = urlsplit(body).scheme
        if "://" not in body or scheme in _NOT_FOLDERS:
            return None
        import fsspec

        if scheme not in fsspec.available_protocols() and scheme != "oss":
            return None
        opts = {"storage_options": dict(options.get("storage_options") or {})}
        return RepoRef(source=self.name, repo=body.rstrip("/"), text=text, options=opts)

    def open(self, ref: RepoRef, ctx: FetchContext) -> Snapshot:
        key = _repo_key(ref.repo)
        if ctx.offline:
            sha = ctx.cache.read_refs(self.name, key).get("latest")
            folder = ctx.cache.snapshot_dir(self.name, key, sha) if sha else None
            if folder is None or not folder.is_dir():
                raise OfflineError(f"offline mode is on and {ref.repo} was never fetched")
            return Snapshot(ref, folder, sha)
        fs, root = _filesystem(ref)
        listing = _listing(fs, root, ref.repo)
        snapshot_id = (
            "listing-"
            + hashlib.sha256(json.dumps(sorted(listing.items())).encode()).hexdigest()[:32]
        )

        def fill(tree: Path) -> None:
            for rel, (size, _) in listing.items():
                target = tree / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    fs.get_file(f"{root}/{rel}", str(target))
                except OSError as exc:
                    raise DownloadError(f"copying {ref.repo}/{rel} failed: {exc}") from exc
                if size is not None and target.stat().st_size != size:
                    raise DownloadError(f"{ref.repo}/{rel} changed while it was copied")

        folder = ctx.cache.publish_tree(self.name, key, snapshot_id, fill, replace=ctx.force_reload)
        ctx.cache.write_ref(self.name, key, "latest", snapshot_id)
        return Snapshot(ref, folder, snapshot_id)


def _filesystem(ref: RepoRef) -> tuple[Any, str]:
    import fsspec

    url = config.rewrite_url(ref.repo)
    options = dict(ref.options.get("storage_options") or {})
    if url.startswith("oss://") and importlib.util.find_spec("ossfs") is None:
        endpoint = options.pop("endpoint_url", None) or os.environ.get("HUBCORE_OSS_ENDPOINT")
        if not endpoint:
            raise ConfigError(
                f"{ref.repo}: install ossfs, or reach OSS through its S3-compatible endpoint "
                "with storage_options={'endpoint_url': ...} or HUBCORE_OSS_ENDPOINT"
            )
        client = dict(options.pop("client_kwargs", {}) or {})
        client["endpoint_url"] = endpoint
        options["client_kwargs"] = client
        url = "s3://" + url[len("oss://") :]
    try:
        fs, root = fsspec.core.url_to_fs(url, **options)
    except ImportError as exc:
        raise DownloadError(f"cannot open {ref.repo}: {exc}") from exc
    return fs, str(root).rstrip("/")


def _listing(fs: Any, root: str, label: str) -> dict[str, tuple[int | None, str]]:
    """``{relative path: (size, change marker)}`` of every file below *root*."""
    try:
        found = fs.find(root, detail=True)
    except FileNotFoundError:
        found = {}
    except OSError as exc:
        raise DownloadError(f"listing {label} failed: {exc}") from exc
    if not found:
        raise RepoNotFoundError(f"{label} is empty or does not exist")
    listing: dict[str, tuple[int | None, str]] = {}
    for path, info in found.items():
        if info.get("type") == "directory":
            continue
        rel = str(path)[len(root) :].lstrip("/")
        if not rel or ".." in rel.split("/"):
            continue
        marker = next(
            (str(info[k]) for k in ("ETag", "etag", "mtime", "LastModified", "md5") if info.get(k)),
            "",
        )
        size = info.get("size")
        listing[rel] = (int(size) if size is not None else None, marker)
    if "hubconf.py" not in listing:
        raise HubconfNotFoundError(f"{label} has no hubconf.py at its root")
    return listing


def _repo_key(url: str) -> str:
    parts = urlsplit(url)
    return f"{safe_component(parts.scheme)}/{safe_component(parts.netloc)}/{parts.path.strip('/')}"


@hookimpl
def hubcore_register_sources(register: Callable[[Source], None]) -> None:
    """Register the fsspec folder source."""
    register(FolderSource())
