"""Fetching weight files into the content-addressed cache.

:func:`fetch` takes any fsspec URL (``file://``, ``s3://``, ``https://``, a plain path) and
returns a :class:`~hubcore.backends.WeightsFile` whose bytes are in the cache, named by their
sha256. The bytes are hashed while they stream in, written to a temp file, checked against the
expected sha256 when one is given, and only then renamed into place, all under a per-URL lock
so that concurrent processes transfer a file once.

A URL fetched before is served from the cache without a network request: by its sha256 when
the caller knows it, else by the URL record written on the first fetch. Local files are the
exception: their modification time and size are checked (cheaply) so an edited file is
re-read.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import fsspec
from fsspec.implementations.local import LocalFileSystem
from tqdm.auto import tqdm

from hubcore import config
from hubcore.backends import WeightsFile
from hubcore.cache import Cache, UrlRecord, get_cache
from hubcore.errors import DownloadError, IntegrityError, OfflineError
from hubcore.plugins import notify

__all__ = ["fetch", "file_sha256", "normalize_url"]

logger = logging.getLogger(__name__)
CHUNK = 1 << 20


def normalize_url(url: str, base: Path | None = None) -> str:
    """Turn a plain path into a ``file://`` URL, relative to *base* when given."""
    if "://" in url or url.startswith(("file:", "memory:")):
        return url
    path = Path(url).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    return path.absolute().as_uri()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 hex digest of a local file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(
    url: str,
    *,
    sha256: str | None = None,
    offline: bool | None = None,
    progress: bool | None = None,
    cache: Cache | None = None,
    revalidate: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> WeightsFile:
    """Return the cached, verified file for *url*, transferring it only if needed.

    With *sha256* the content must match (:class:`~hubcore.errors.IntegrityError` otherwise)
    and a blob already in the cache is used without touching the network. In offline mode
    (``offline=True`` or ``HUBCORE_OFFLINE=1``) only the cache is consulted. *revalidate*
    asks the server (one metadata request) whether a cached URL changed, by ETag or
    Last-Modified; without it a cached URL is trusted, as torch.hub does. Mirrors apply to
    the request, never to the cache key.
    """
    cache = cache or get_cache()
    url = normalize_url(url)
    sha256 = sha256.lower() if sha256 else None
    name = _file_name(url)
    if sha256 and cache.has_blob(sha256):
        return _cached(cache, url, name, sha256)

    record = cache.read_url_record(url)
    if config.is_offline(offline):
        if _still_valid(cache, record, sha256, None):
            assert record is not None
            return _cached(cache, url, name, record.sha256)
        raise OfflineError(
            f"offline mode is on and {url} is not in the cache. Run once online "
            "(unset HUBCORE_OFFLINE) to cache it."
        )

    fs, path = _filesystem(config.rewrite_url(url), storage_options)
    validator = _validator(fs, path, remote=revalidate and sha256 is None)
    if _still_valid(cache, record, sha256, validator) and not (revalidate and validator is None):
        assert record is not None
        return _cached(cache, url, name, record.sha256)

    with cache.lock("url", url):
        # Someone may have finished the same transfer while we waited for the lock.
        record = cache.read_url_record(url)
        if _still_valid(cache, record, sha256, validator):
            assert record is not None
            return _cached(cache, url, name, record.sha256)
        return _transfer(cache, fs, path, url, name, sha256, validator, progress)


def _transfer(
    cache: Cache,
    fs: Any,
    path: str,
    url: str,
    name: str,
    sha256: str | None,
    validator: str | None,
    progress: bool | None,
) -> WeightsFile:
    total = _size(fs, path, url)
    logger.info("downloading %s", url)
    notify("hubcore_download_started", url=url, total=total)
    digest = hashlib.sha256()
    done = 0
    with cache.temp_file() as tmp:
        bar = tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=name,
            # None lets tqdm hide itself when stderr is not a terminal.
            disable=None if config.progress_enabled(progress) else True,
            leave=False,
        )
        try:
            with fs.open(path, "rb") as src, open(tmp, "wb") as dst:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    dst.write(chunk)
                    done += len(chunk)
                    bar.update(len(chunk))
                    notify("hubcore_download_progress", url=url, done=done, total=total)
        except FileNotFoundError as exc:
            raise DownloadError(f"{url} does not exist") from exc
        except OSError as exc:
            raise DownloadError(f"reading {url} failed: {exc}") from exc
        finally:
            bar.close()
        if total is not None and done != total:
            raise DownloadError(f"{url}: expected {total} bytes, received {done}; nothing cached")
        actual = digest.hexdigest()
        if sha256 and actual != sha256:
            raise IntegrityError(url, sha256, actual)
        final = cache.store_blob(tmp, actual)
    cache.write_url_record(UrlRecord(url, actual, done, name, validator))
    notify(
        "hubcore_download_finished",
        url=url,
        path=str(final),
        sha256=actual,
        size=done,
        cached=False,
    )
    return WeightsFile(final, name, actual, done, url)


def _still_valid(
    cache: Cache, record: UrlRecord | None, sha256: str | None, validator: str | None
) -> bool:
    """Whether a URL record still describes a usable cached blob."""
    return (
        record is not None
        and cache.has_blob(record.sha256)
        and sha256 in (None, record.sha256)
        and (validator is None or validator == record.validator)
    )


def _cached(cache: Cache, url: str, name: str, sha256: str) -> WeightsFile:
    path = cache.blob_path(sha256)
    size = path.stat().st_size
    logger.debug("using cached %s for %s", path, url)
    notify(
        "hubcore_download_finished", url=url, path=str(path), sha256=sha256, size=size, cached=True
    )
    return WeightsFile(path, name, sha256, size, url)


def _filesystem(url: str, storage_options: Mapping[str, Any] | None = None) -> tuple[Any, str]:
    try:
        fs, path = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
        return fs, str(path)
    except ImportError as exc:
        raise DownloadError(f"cannot open {url}: {exc}") from exc
    except ValueError as exc:
        raise DownloadError(
            f"cannot open {url}: {exc}. Use a URL of an fsspec filesystem (file://, https://, "
            "s3://, ...) or a path."
        ) from exc


def _size(fs: Any, path: str, url: str) -> int | None:
    try:
        info = fs.info(path)
    except FileNotFoundError as exc:
        raise DownloadError(f"{url} does not exist") from exc
    except OSError as exc:
        raise DownloadError(f"cannot reach {url}: {exc}") from exc
    if info.get("type") == "directory":
        raise DownloadError(f"{url} is a folder, not a file")
    size = info.get("size")
    return int(size) if isinstance(size, int) else None


def _validator(fs: Any, path: str, *, remote: bool) -> str | None:
    """What tells whether a source file changed: mtime and size locally (free), the ETag
    or Last-Modified remotely (one metadata request, only when *remote*)."""
    if isinstance(fs, LocalFileSystem):
        try:
            st = os.stat(path)
        except OSError:
            return None
        return f"{st.st_mtime_ns}:{st.st_size}"
    if not remote:
        return None
    try:
        info = fs.info(path)
    except OSError:
        return None
    for key in ("ETag", "etag", "Last-Modified", "LastModified", "mtime", "md5"):
        if info.get(key):
            return f"{key}:{info[key]}:{info.get('size')}"
    return None


def _file_name(url: str) -> str:
    return posixpath.basename(unquote(urlsplit(url).path)) or "download"
