"""Fetching weight files into the content-addressed cache.

:func:`fetch` takes any fsspec URL (``file://``, ``s3://``, ``https://``, a plain path) and
returns a :class:`WeightsFile` whose bytes are in the cache, named by their sha256. The bytes
are hashed while they stream in, written to a temp file, checked against the expected sha256
when one is given, and only then renamed into place, all under a per-URL lock so that concurrent
processes transfer a file once.

A URL fetched before is served from the cache without a network request: by its sha256 when
the caller knows it, else by the URL record written on the first fetch. Local files are the
exception: their modification time and size are checked (cheaply) so an edited file is
re-read.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import posixpath
import re
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from hubcore import config, runcontext
from hubcore.errors import (
    CacheError,
    DownloadError,
    HubError,
    IntegrityError,
    InvalidArgumentError,
    OfflineError,
    RepoNotFoundError,
)
from hubcore.events import notify
from hubcore.records import Record
from hubcore.store import stores
from hubcore.store.cache import Cache, UrlRecord, file_sha256, get_cache
from hubcore.store.http import Credentials, redact, send, url_identity

__all__ = [
    "WeightsFile",
    "fetch",
    "fetched_once",
    "file_sha256",
    "hash_prefix",
    "normalize_url",
]

logger = logging.getLogger(__name__)
CHUNK = 1 << 20


class WeightsFile(Record):
    """A verified weight file in the cache (or a model file, for :class:`ModelFileOpener`).

    ``path`` is the file to read, ``name`` the file name it had at its URL (for its suffix),
    ``sha256`` and ``size`` describe its bytes, ``url`` says where it came from.
    """

    path: Path
    name: str
    sha256: str
    size: int
    url: str

    @property
    def suffix(self) -> str:
        """The lower-case suffix of the original name (``.pth``, ``.safetensors``)."""
        return Path(self.name).suffix.lower()


def normalize_url(url: str, base: Path | None = None) -> str:
    """Turn a plain path into a ``file://`` URL, relative to *base* when given."""
    if "://" in url or url.startswith(("file:", "memory:")):
        return url
    path = Path(url).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    return path.absolute().as_uri()


def fetch(
    url: str,
    *,
    sha256: str | None = None,
    offline: bool | None = None,
    progress: bool | None = None,
    cache: Cache | None = None,
    revalidate: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    sha256_prefix: str | None = None,
    resource: Literal["repository", "file"] = "file",
) -> WeightsFile:
    """Return the cached, verified file for *url*, transferring it only if needed.

    With *sha256* the content must match (:class:`~hubcore.errors.IntegrityError` otherwise)
    and a blob already in the cache is used without touching the network. While repository
    code runs under a lock file (:mod:`hubcore.runcontext`), a URL the lock records must also
    have the recorded hash. In offline mode (``offline=True`` or ``HUBCORE_OFFLINE=1``) only
    the cache is consulted. *revalidate* asks the server (one metadata request) whether a
    cached URL changed, by ETag or Last-Modified; without it a cached URL is trusted, as
    torch.hub does. Mirrors apply to the request, never to the cache key, and the cache
    records URLs without credentials (:func:`hubcore.store.redaction.url_identity`). *sha256_prefix*
    (torch.hub's ``check_hash`` and ``hash_prefix``) must start the sha256 of transferred
    bytes; like a wrong *sha256*, a mismatch caches nothing. A URL already cached is
    returned as it is: check its prefix. *resource* ``"repository"`` (a repository's archive)
    makes an http(s) 404/410 a :class:`~hubcore.errors.RepoNotFoundError`
    (:func:`hubcore.store.http.status_error`).

    A *sha256* that is not 64 hex digits, or a *sha256_prefix* that is not 1 to 64, is an
    :class:`~hubcore.errors.InvalidArgumentError`; a URL that urllib cannot parse (an unclosed
    IPv6 ``[``) is a :class:`~hubcore.errors.DownloadError`.
    """
    if sha256 and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise InvalidArgumentError(f"sha256={sha256[:80]!r} is not a sha256 (64 hex digits)")
    if sha256_prefix and not re.fullmatch(r"[0-9a-fA-F]{1,64}", sha256_prefix):
        raise InvalidArgumentError(
            f"sha256_prefix={sha256_prefix[:80]!r} is not the start of a sha256 (1 to 64 hex "
            "digits)"
        )
    url = normalize_url(url)
    try:
        urlsplit(url)  # raises for an unclosed IPv6 "[", wherever the URL is read later
    except ValueError as exc:
        raise DownloadError(f"{redact(url)!r} is not a valid URL: {exc}") from None
    key = url_identity(url)
    sha256, lock_path = runcontext.expected_sha256(key, sha256)
    named = hash_prefix(_file_name(url))
    if sha256 and named and not sha256.startswith(named):
        # the file name is a hash the publisher declared too: every declared hash must hold
        origin = f"the lock file {lock_path}" if lock_path else "the caller"
        raise IntegrityError(
            f"{redact(url)} (its name says sha256 {named}..., {origin} expects {sha256})",
            f"{named}... (from the file name)",
            sha256,
        )
    try:
        return _fetch(
            url,
            key,
            sha256,
            offline,
            progress,
            cache or get_cache(),
            revalidate,
            storage_options,
            sha256_prefix,
            resource,
        )
    except IntegrityError as exc:
        if lock_path is None:
            raise
        raise IntegrityError(
            f"{exc.url} (sha256 recorded in the lock file {lock_path})", exc.expected, exc.actual
        ) from None


def _fetch(
    url: str,
    key: str,
    sha256: str | None,
    offline: bool | None,
    progress: bool | None,
    cache: Cache,
    revalidate: bool,
    storage_options: Mapping[str, Any] | None,
    sha256_prefix: str | None,
    resource: Literal["repository", "file"] = "file",
) -> WeightsFile:
    name = _file_name(url)
    offline = config.is_offline(offline)
    if sha256 and (hit := _cached(cache, key, name, sha256, offline)):
        return hit

    record = cache.read_url_record(key)
    if offline:
        if (known := _still_valid(record, sha256, None)) and (
            hit := _cached(cache, key, name, known, True)
        ):
            return hit
        raise OfflineError(
            f"offline mode is on and {redact(url)} is not in the cache. Run once online "
            "(unset HUBCORE_OFFLINE) to cache it."
        )

    target = config.rewrite_url(url)
    fs: stores.Store | None = None
    path = target
    if _is_http(target):
        validator = _http_validator(target) if revalidate and sha256 is None else None
    elif _is_local(target):
        path = _local_path(target)
        validator = _local_validator(path)
    else:
        fs = stores.open_store(target, storage_options)
        path = fs.path
        validator = _remote_validator(fs, url) if revalidate and sha256 is None else None
    if (
        (known := _still_valid(record, sha256, validator))
        and not (revalidate and validator is None)
        and (hit := _cached(cache, key, name, known, False))
    ):
        return hit

    with cache.lock("url", key):
        # Someone may have finished the same transfer while we waited for the lock.
        record = cache.read_url_record(key)
        if (known := _still_valid(record, sha256, validator)) and (
            hit := _cached(cache, key, name, known, False)
        ):
            return hit
        return _transfer(
            cache, fs, path, url, key, name, sha256, validator, progress, sha256_prefix, resource
        )


def _transfer(
    cache: Cache,
    fs: stores.Store | None,
    path: str,
    url: str,
    key: str,
    name: str,
    sha256: str | None,
    validator: str | None,
    progress: bool | None,
    sha256_prefix: str | None = None,
    resource: Literal["repository", "file"] = "file",
) -> WeightsFile:
    logger.info("downloading %s", redact(url))
    bar = _ProgressBar(key, name, progress)
    try:
        with runcontext.collector_resumed():  # seconds of waiting: let other threads collect
            if _is_http(path):
                partial, digest, size, discard = _download_http(cache, url, bar, resource=resource)
            elif fs is None:
                local_size = _local_size(path, url, resource)
                pump = functools.partial(_file_pump, path)
                partial, digest, size, discard = _copy(cache, pump, local_size, url, bar)
            else:
                remote_size = _size(fs, url, resource)
                pump = functools.partial(_store_pump, fs, remote_size, url)
                partial, digest, size, discard = _copy(cache, pump, remote_size, url, bar)
    finally:
        bar.close()
    try:
        _verify(url, name, sha256, digest, sha256_prefix)
    except IntegrityError:
        discard()
        raise
    final = cache.store_blob(partial, digest)
    discard()
    cache.write_url_record(UrlRecord(key, digest, size, name, validator))
    notify(
        "hubcore_download_finished",
        url=key,
        path=str(final),
        sha256=digest,
        size=size,
        cached=False,
    )
    return WeightsFile(final, name, digest, size, key)


@contextlib.contextmanager
def fetched_once(
    url: str,
    *,
    credentials: Credentials | None = None,
    label: str | None = None,
    token_hint: str = "",
    name: str | None = None,
    progress: bool | None = None,
    cache: Cache | None = None,
    resource: Literal["repository", "file"] = "file",
) -> Iterator[WeightsFile]:
    """Fetch the http(s) *url* into the blob store for one use, and drop it after the block.

    For a file that is a means to an end, such as a git host's archive of a commit, which is
    extracted into a snapshot and then not needed: the transfer is the weights' own (resumed
    after a cut or a crash with ``Range``, retried within ``HUBCORE_RETRIES`` and the stall
    budget, hashed while streaming, with progress and the download events) and lands in the
    store atomically, under the URL's lock, but no URL record is written and the blob is
    removed when the block ends (unless it was already stored for another reason).
    *credentials* are sent only to their own origins; *label* names the file in messages;
    *resource* ``"repository"`` makes a missing file a missing repository
    (:class:`~hubcore.errors.RepoNotFoundError`); *token_hint* is added to authentication
    errors; *name* labels the progress bar.
    """
    cache = cache or get_cache()
    key = url_identity(url)
    bar = _ProgressBar(key, name or _file_name(url), progress)
    with cache.lock("url", key):
        logger.info("downloading %s", redact(url))
        try:
            partial, digest, size, discard = _download_http(
                cache,
                url,
                bar,
                credentials=credentials,
                label=label,
                resource=resource,
                token_hint=token_hint,
            )
        finally:
            bar.close()
        kept = cache.has_blob(digest)  # the same bytes stored for another reason stay
        final = cache.store_blob(partial, digest)
        inode = final.stat().st_ino
        discard()
        notify(
            "hubcore_download_finished",
            url=key,
            path=str(final),
            sha256=digest,
            size=size,
            cached=False,
        )
        try:
            yield WeightsFile(final, name or _file_name(url), digest, size, key)
        finally:
            if not kept:
                _drop_blob(cache, final, digest, inode)


def _drop_blob(cache: Cache, path: Path, sha256: str, inode: int) -> None:
    """Remove the blob *path* if it is still the file this process stored (inode *inode*).
    Not a cache removal (those make overlapping loads run again): nobody else knew of it.
    ``hubcore cache prune`` clears its verification record."""
    with cache.lock("blob", sha256), contextlib.suppress(FileNotFoundError):
        if path.stat().st_ino == inode:
            path.unlink()


def _download_http(
    cache: Cache,
    url: str,
    bar: _ProgressBar,
    *,
    credentials: Credentials | None = None,
    label: str | None = None,
    resource: Literal["repository", "file"] = "file",
    token_hint: str = "",
) -> tuple[Path, str, int, Callable[[], None]]:
    from hubcore.store.downloader import HttpDownload

    folder = cache.tmp_dir / "partial"
    folder.mkdir(exist_ok=True)
    key = hashlib.sha256(url.encode()).hexdigest()[:32]
    download = HttpDownload(
        url,
        folder / f"{key}.part",
        folder / f"{key}.json",
        on_start=bar.start,
        on_bytes=bar.update,
        credentials=credentials,
        label=label,
        resource=resource,
        token_hint=token_hint,
    )
    digest, size = download.run()
    return download.partial, digest, size, download.discard


def _copy(
    cache: Cache,
    pump: Callable[[Callable[[bytes], None]], None],
    total: int | None,
    url: str,
    bar: _ProgressBar,
) -> tuple[Path, str, int, Callable[[], None]]:
    """Copy a local or fsspec file (*pump* feeds its bytes to a writer) into a temp file,
    hashing as it goes."""
    bar.start(total, 0)
    fd, name = tempfile.mkstemp(dir=cache.tmp_dir, suffix=".part")
    os.close(fd)
    tmp = Path(name)
    digest = hashlib.sha256()
    done = 0
    try:
        with open(tmp, "wb") as dst:

            def write(chunk: bytes) -> None:
                nonlocal done
                digest.update(chunk)
                dst.write(chunk)
                done += len(chunk)
                bar.update(len(chunk))

            pump(write)
    except FileNotFoundError as exc:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"{redact(url)} does not exist") from exc
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"reading {redact(url)} failed: {exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if total is not None and done != total:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"{redact(url)}: expected {total} bytes, received {done}")
    return tmp, digest.hexdigest(), done, lambda: tmp.unlink(missing_ok=True)


def _file_pump(path: str, write: Callable[[bytes], None]) -> None:
    with open(path, "rb") as src:
        while chunk := src.read(CHUNK):
            write(chunk)


def _store_pump(
    store: stores.Store, size: int | None, url: str, write: Callable[[bytes], None]
) -> None:
    # one streamed request (or ranges), every piece within the stall budget (hubcore.store.stores)
    stores.copy(store, store.path, size, write, f"reading {redact(url)}")


_HASH_PREFIX = re.compile(r"-([0-9a-f]{8,64})\.")


def hash_prefix(name: str, *, strict: bool = False) -> str | None:
    """The torch-style sha256 prefix in a file name (``resnet18-f37072fd.pth``), if any.

    By default only a run with a letter counts, so a date (``model-20240101.pth``) is not
    taken for a hash; ``strict=True`` takes any run of 8+ hex digits, as
    ``torch.hub``'s ``check_hash`` does.
    """
    for match in _HASH_PREFIX.finditer(name):
        if strict or not match.group(1).isdigit():
            return match.group(1)
    return None


def _verify(
    url: str, name: str, sha256: str | None, actual: str, sha256_prefix: str | None = None
) -> None:
    # case-sensitive, as torch.hub compares: a prefix that cannot match caches nothing
    if sha256_prefix and not actual.startswith(sha256_prefix):
        raise IntegrityError(redact(url), f"{sha256_prefix}... (the expected prefix)", actual)
    if sha256:
        if actual != sha256:
            raise IntegrityError(redact(url), sha256, actual)
        return
    prefix = hash_prefix(name)
    if prefix and not actual.startswith(prefix):
        raise IntegrityError(redact(url), f"{prefix}... (from the file name)", actual)


class _ProgressBar:
    """tqdm plus the progress events; created when the size is known."""

    def __init__(self, url: str, name: str, progress: bool | None):
        self.url, self.name = url, name
        self.enabled = config.progress_enabled(progress)
        self.bar: Any = None
        self.total: int | None = None
        self.done = 0
        self.lock = threading.Lock()

    def start(self, total: int | None, resumed: int) -> None:
        from tqdm.auto import tqdm

        self.total, self.done = total, resumed
        notify("hubcore_download_started", url=self.url, total=total)
        self.bar = tqdm(
            total=total,
            initial=resumed,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=self.name,
            # None lets tqdm hide itself when stderr is not a terminal.
            disable=None if self.enabled else True,
            leave=False,
        )

    def update(self, count: int) -> None:
        with self.lock:
            self.done += count
            done = self.done
            if self.bar is not None:
                self.bar.update(count)
        notify("hubcore_download_progress", url=self.url, done=done, total=self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _is_http(url: str) -> bool:
    return urlsplit(url).scheme in ("http", "https")


def _http_validator(url: str) -> str | None:
    """ETag or Last-Modified (with the size) from one HEAD request; None if unavailable."""
    import requests

    try:
        response = send(url, method="HEAD", mirror=False)  # *url* is already rewritten
    except (requests.RequestException, DownloadError):
        return None
    with response:
        if response.status_code >= 400:
            return None
        headers = response.headers
        marker = headers.get("ETag") or headers.get("Last-Modified")
        return f"{marker}:{headers.get('Content-Length')}" if marker else None


def _still_valid(record: UrlRecord | None, sha256: str | None, validator: str | None) -> str | None:
    """The sha256 a URL record resolves to, if the record still describes what is wanted
    (whether that blob is cached and intact is :func:`_cached`'s question)."""
    if (
        record is None
        or sha256 not in (None, record.sha256)
        or (validator is not None and validator != record.validator)
    ):
        return None
    return record.sha256


def _cached(cache: Cache, url: str, name: str, sha256: str, offline: bool) -> WeightsFile | None:
    """The intact cached blob *sha256* as the file of *url*; ``None`` when it is not cached,
    or was damaged and moved aside (then it is fetched again, or offline, an error)."""
    try:
        path = cache.verified_blob(sha256)
    except CacheError as exc:
        if offline:
            raise OfflineError(
                f"{exc}. Offline mode is on, so {redact(url)} cannot be fetched again: run "
                "once online (unset HUBCORE_OFFLINE) to restore it in the cache."
            ) from exc
        logger.warning("%s; fetching %s again", exc, redact(url))
        return None
    if path is None:
        return None
    try:
        size = path.stat().st_size
    except FileNotFoundError:  # removed meanwhile: fetch it again
        return None
    logger.debug("using cached %s for %s", path, redact(url))
    notify(
        "hubcore_download_finished", url=url, path=str(path), sha256=sha256, size=size, cached=True
    )
    return WeightsFile(path, name, sha256, size, url)


def _missing(url: str, resource: Literal["repository", "file"]) -> HubError:
    """A missing file; a missing repository when the file is a repository's archive (the
    error the one status map gives for an HTTP 404 of either)."""
    if resource == "repository":
        return RepoNotFoundError(
            f"{redact(url)} does not exist. Check the path or URL of the repository archive."
        )
    return DownloadError(f"{redact(url)} does not exist")


def _size(
    store: stores.Store, url: str, resource: Literal["repository", "file"] = "file"
) -> int | None:
    try:
        info = stores.call(store, "info", store.path, what=f"reading {redact(url)}")
    except FileNotFoundError as exc:
        raise _missing(url, resource) from exc
    if info.get("type") == "directory":
        raise DownloadError(f"{redact(url)} is a folder, not a file")
    size = info.get("size")
    return int(size) if isinstance(size, int) else None


def _is_local(url: str) -> bool:
    return url.startswith("file:")


def _local_path(url: str) -> str:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise DownloadError(f"{url} names a file on another host")
    return unquote(parts.path)


def _local_size(path: str, url: str, resource: Literal["repository", "file"] = "file") -> int:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise _missing(url, resource) from None
    except OSError as exc:
        raise DownloadError(f"cannot read {redact(url)}: {exc}") from None
    if not os.path.isfile(path):
        raise DownloadError(f"{redact(url)} is a folder, not a file")
    return st.st_size


def _local_validator(path: str) -> str | None:
    """Modification time and size: tells, for free, whether a local file changed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{st.st_mtime_ns}:{st.st_size}"


def _remote_validator(store: stores.Store, url: str) -> str | None:
    """ETag or Last-Modified of an fsspec file (one metadata request)."""
    try:
        info = stores.call(store, "info", store.path, what=f"reading {redact(url)}")
    except (OSError, DownloadError):
        return None
    for key in ("ETag", "etag", "Last-Modified", "LastModified", "mtime", "md5"):
        if info.get(key):
            return f"{key}:{info[key]}:{info.get('size')}"
    return None


def _file_name(url: str) -> str:
    return posixpath.basename(unquote(urlsplit(url).path)) or "download"
