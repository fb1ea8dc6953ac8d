"""fsspec filesystems (object stores and the like) under hubcore's timeouts and stall budget.

The repository folders of the fsspec source and weights at ``s3://``-style URLs are read
through :func:`open_store`, :func:`call` and :func:`copy`, so that no store waits forever:

* **Timeouts.** S3 and S3-compatible stores (s3fs over aiobotocore, also OSS through its S3
  endpoint) get the HTTP client's connect and read timeouts (``HUBCORE_CONNECT_TIMEOUT``,
  ``HUBCORE_READ_TIMEOUT``) and ``HUBCORE_RETRIES`` attempts: s3fs retries, botocore does
  not, so attempts are not multiplied. Timeouts given in the storage options win. s3fs
  retries only "SlowDown"; a whole-file upload that S3 fails with HTTP 500 ("InternalError",
  which S3 asks clients to retry) is made again by :func:`put_file`, within the same count.
* **Stall budget.** Every operation of an asynchronous filesystem (s3fs, gcsfs, adlfs, ...)
  must finish within ``HUBCORE_STALL_BUDGET`` seconds, whatever retries it makes inside;
  when the budget is spent the operation is cancelled. Files are copied as one streamed
  request where the filesystem streams (s3fs, gcsfs), else range by range; either way each
  :data:`RANGE` bytes are bounded by the budget, so a slow but moving transfer goes on and
  a stalled one stops.
* **Errors** are :class:`~hubcore.errors.DownloadError` naming the host (the endpoint), the
  transport and the limit that fired, with URLs redacted.

Synchronous filesystems (local files, sftp, ftp) keep their own timeouts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib.util
import os
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from hubcore import settings
from hubcore.errors import ConfigError, DownloadError
from hubcore.records import Record
from hubcore.store.http import redact

__all__ = [
    "RANGE",
    "READ",
    "Store",
    "call",
    "copy",
    "endpoint",
    "open_store",
    "put_file",
    "timed_options",
]

#: Bytes read per request when copying from an asynchronous store: one unit of progress.
RANGE = 4 << 20
#: Bytes asked of a stream per read. aiohttp buffers up to twice what a read asks for and
#: joins what it holds into one new object: 1 MiB keeps that buffer small and the objects
#: below the sizes glibc hands out as fresh (page-faulting) mappings.
READ = 1 << 20
#: Protocols reached through s3fs (and so aiobotocore's timeouts).
_S3 = frozenset({"s3", "s3a"})


class Store(Record):
    """An opened filesystem, with what messages say about it."""

    fs: Any
    #: The path inside the filesystem (what fsspec's methods take).
    path: str
    #: Where requests go: the endpoint's ``host:port``, else the URL's host (a bucket).
    host: str
    #: The protocol and the library speaking it: ``s3 (s3fs)``.
    transport: str


def endpoint(protocol: str, storage: Mapping[str, Any]) -> str | None:
    """The endpoint URL a store of *protocol* is reached at, when it is not the default."""
    client = storage.get("client_kwargs") or {}
    given = storage.get("endpoint_url") or storage.get("endpoint") or client.get("endpoint_url")
    if given:
        return str(given)
    if protocol == "oss" and settings.current().oss_endpoint:
        return settings.current().oss_endpoint
    if protocol in _S3:  # boto's own variables: not hubcore's, so read where they apply
        return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    return None


def timed_options(protocol: str, storage: Mapping[str, Any]) -> dict[str, Any]:
    """*storage* plus hubcore's connect and read timeouts for a store that takes them (s3fs:
    botocore's ``connect_timeout``/``read_timeout``, one botocore attempt; s3fs's own
    retries are set by :func:`open_store`). Options the caller gave are kept."""
    options = dict(storage)
    if protocol in _S3:
        current = settings.current()
        config = dict(options.get("config_kwargs") or {})
        config.setdefault("connect_timeout", current.connect_timeout)
        config.setdefault("read_timeout", current.read_timeout)
        config.setdefault("retries", {"max_attempts": 1, "mode": "standard"})
        options["config_kwargs"] = config
    return options


def open_store(url: str, storage: Mapping[str, Any] | None = None) -> Store:
    """The filesystem and path of *url* (any fsspec URL or a path), with
    :func:`timed_options` applied: the one way hubcore opens a store.

    ``oss://`` without ``ossfs`` installed goes through OSS's S3-compatible endpoint (the
    storage options' ``endpoint_url`` or ``HUBCORE_OSS_ENDPOINT``). Any failure to create the
    filesystem (an unknown protocol, a missing library, a connection some filesystems make at
    once) is a :class:`~hubcore.errors.DownloadError` naming the URL, redacted; a missing OSS
    endpoint is a :class:`~hubcore.errors.ConfigError`. Mirrors are the caller's: pass the
    URL :func:`hubcore.config.rewrite_url` made.
    """
    options = dict(storage or {})
    if url.startswith("oss://") and importlib.util.find_spec("ossfs") is None:
        given = options.pop("endpoint_url", None) or settings.current().oss_endpoint
        if not given:
            raise ConfigError(
                f"{redact(url)}: install ossfs, or reach OSS through its S3-compatible "
                "endpoint with storage_options={'endpoint_url': ...} or HUBCORE_OSS_ENDPOINT"
            )
        client = dict(options.pop("client_kwargs", {}) or {})
        client["endpoint_url"] = given
        options["client_kwargs"] = client
        url = "s3://" + url[len("oss://") :]
    try:
        return _open(url, options)
    except ImportError as exc:
        raise DownloadError(f"cannot open {redact(url)}: {exc}") from exc
    except OSError as exc:  # some filesystems (ftp, sftp) connect when they are created
        raise DownloadError(f"cannot reach {redact(url)}: {redact(str(exc))}") from exc
    except ValueError as exc:
        raise DownloadError(
            f"cannot open {redact(url)}: {redact(str(exc))}. Use a URL of an fsspec filesystem "
            "(file://, https://, s3://, ...) or a path."
        ) from exc
    except Exception as exc:  # a filesystem's constructor may raise anything for a bad URL
        raise DownloadError(
            f"cannot open {redact(url)}: {type(exc).__name__}: {redact(str(exc))}"
        ) from exc


def _open(url: str, storage: Mapping[str, Any]) -> Store:
    import fsspec

    protocol = urlsplit(url).scheme if "://" in url else "file"
    fs, path = fsspec.core.url_to_fs(url, **timed_options(protocol, storage))
    if protocol in _S3 and hasattr(fs, "retries"):
        fs.retries = max(1, settings.current().retries)  # s3fs's attempts: hubcore's count
    given = endpoint(protocol, storage)
    if given:
        host = urlsplit(given if "://" in given else f"https://{given}").netloc
    else:
        host = urlsplit(url).netloc.rpartition("@")[2] or "(local)"
    library = type(fs).__module__.partition(".")[0]
    return Store(fs, str(path), host, f"{protocol} ({library})")


def call(store: Store, method: str, *args: Any, what: str, **kwargs: Any) -> Any:
    """``store.fs.<method>(*args, **kwargs)``, bounded by the stall budget when the
    filesystem is asynchronous. :class:`FileNotFoundError` passes through (the caller says
    what is missing); any other failure is a :class:`~hubcore.errors.DownloadError` that
    starts with *what* ("listing s3://bucket/hub") and names host, transport and limit."""
    from fsspec.asyn import AsyncFileSystem, sync

    fs = store.fs
    budget = settings.current().stall_budget
    try:
        if isinstance(fs, AsyncFileSystem) and not fs.asynchronous and budget > 0:
            return sync(fs.loop, getattr(fs, f"_{method}"), *args, timeout=budget, **kwargs)
        return getattr(fs, method)(*args, **kwargs)
    except FileNotFoundError:
        raise
    except Exception as exc:  # a store library may raise anything: name it, never hang on it
        raise DownloadError(
            f"{what} failed: {_reason(exc)} (host {store.host}, transport {store.transport})"
        ) from None


def put_file(fs: Any, local: str, remote: str, **options: Any) -> None:
    """``fs.put_file(local, remote, **options)``, made again (up to ``HUBCORE_RETRIES``
    attempts in all) when the server failed it with HTTP 500: uploading a whole file again is
    safe, and S3 asks clients to retry "InternalError" (s3fs, which maps it to ``EREMOTEIO``,
    retries only "SlowDown"). Any other failure is raised at once."""
    import errno

    from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

    retrying = Retrying(
        stop=stop_after_attempt(max(1, settings.current().retries)),
        wait=wait_exponential(multiplier=0.05, max=1.0),
        retry=retry_if_exception(
            lambda exc: isinstance(exc, OSError) and exc.errno == errno.EREMOTEIO
        ),
        reraise=True,
    )
    retrying(fs.put_file, local, remote, **options)


def copy(
    store: Store,
    path: str,
    size: int | None,
    write: Callable[[bytes], object],
    what: str,
    *,
    writelines: Callable[[list[bytes]], object] | None = None,
) -> int:
    """Copy the file *path* of *store* to *write*, in pieces; returns the bytes copied.

    From an asynchronous store every :data:`RANGE` must arrive within the stall budget: one
    streamed request where the filesystem streams (:func:`_stream`), else (and for what a
    broken stream left) one bounded request per range (see :func:`call`). A synchronous
    store is read as a file. With *writelines*, each streamed :data:`RANGE` is handed over as
    the stream's own pieces (in order, not joined: one copy of every byte fewer).
    """
    from fsspec.asyn import AsyncFileSystem

    done = 0
    if not isinstance(store.fs, AsyncFileSystem) or store.fs.asynchronous:
        with store.fs.open(path, "rb") as source:
            while data := source.read(RANGE):
                write(data)
                done += len(data)
        return done
    done, whole, known = _stream(store, path, writelines or _joined(write), what)
    size = known if size is None else size  # else a last range past the end: 416
    if size is None and not whole:  # the stream broke before it told the size
        found = call(store, "size", path, what=what)
        size = found if isinstance(found, int) else None
    while not whole and (size is None or done < size):
        wanted = RANGE if size is None else min(RANGE, size - done)
        data = call(store, "cat_file", path, start=done, end=done + wanted, what=what)
        if data:
            write(data)
            done += len(data)
        if len(data) < wanted:
            break  # the end of the file (or it shrank: the caller compares sizes)
    return done


def _joined(write: Callable[[bytes], object]) -> Callable[[list[bytes]], object]:
    """*write* called once with the pieces joined (one call per :data:`RANGE`)."""
    return lambda parts: write(parts[0] if len(parts) == 1 else b"".join(parts))


def _stream(
    store: Store, path: str, writelines: Callable[[list[bytes]], object], what: str
) -> tuple[int, bool, int | None]:
    """Copy *path* as one streamed request where the filesystem streams (s3fs, gcsfs), each
    :data:`RANGE` of it bounded by the stall budget: one request per file, not one per
    range (a store answers every request at a cost). The next piece is read while this
    thread writes the one before. Returns the bytes copied, whether that is the whole file,
    and the file's size if the stream told it: a stream that breaks leaves the rest to
    :func:`copy`'s ranges; one that stalls is an error."""
    from fsspec.asyn import AsyncFileSystem, sync

    fs, budget = store.fs, settings.current().stall_budget
    if type(fs).open_async is AsyncFileSystem.open_async:
        return 0, False, None

    async def piece(stream: Any) -> list[bytes]:
        parts: list[bytes] = []
        got = 0
        while got < RANGE and (data := await stream.read(min(READ, RANGE - got))):
            parts.append(data)
            got += len(data)
        return parts

    def failed(exc: BaseException) -> DownloadError:
        return DownloadError(
            f"{what} failed: {_reason(exc)} (host {store.host}, transport {store.transport})"
        )

    def bounded(func: Callable[..., Any], *args: Any) -> Any:
        try:
            return sync(fs.loop, func, *args, timeout=budget or None)
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise failed(exc) from None

    def ahead(stream: Any) -> concurrent.futures.Future[list[bytes]]:
        # the next piece is read on the loop while this thread writes the one before
        read = piece(stream) if not budget else asyncio.wait_for(piece(stream), budget)
        return asyncio.run_coroutine_threadsafe(read, fs.loop)

    try:
        stream = bounded(fs.open_async, path, "rb")
    except (FileNotFoundError, DownloadError):
        raise
    except Exception:  # no stream: the ranges say why
        return 0, False, None
    done = 0
    pending = ahead(stream)
    try:
        while True:
            try:
                data = pending.result()
            except (asyncio.TimeoutError, TimeoutError) as exc:
                raise failed(exc) from None
            except FileNotFoundError:
                raise
            except Exception:  # a broken stream: the ranges go on from where it stopped
                return done, False, _size(stream)
            if not data:
                return done, True, _size(stream)
            pending = ahead(stream)
            writelines(data)
            done += sum(map(len, data))
    finally:
        pending.cancel()
        with contextlib.suppress(Exception):
            sync(fs.loop, _close, stream, timeout=budget or None)


async def _close(stream: Any) -> None:
    """Close *stream* and the response under it: s3fs's streamed file never marks itself
    open, so fsspec's ``close`` returns at once and leaves its body (``r``) holding a pooled
    connection when the copy stops half way."""
    try:
        await stream.close()
    finally:
        close = getattr(getattr(stream, "r", None), "close", None)
        if callable(close):
            close()


def _size(stream: Any) -> int | None:
    """The file's size as a stream learnt it (s3fs: the response's length), if it did."""
    size = getattr(stream, "size", None)
    return size if isinstance(size, int) and size >= 0 else None


def _reason(exc: BaseException) -> str:
    """Which limit fired, or what else went wrong, from the whole chain of *exc*."""
    current = settings.current()
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    names = " ".join(type(e).__name__ for e in chain)
    attempts = f"{max(1, current.retries)} attempts, HUBCORE_RETRIES"
    if "ConnectTimeout" in names:
        return (
            f"timed out connecting (HUBCORE_CONNECT_TIMEOUT={current.connect_timeout:g} s; "
            f"{attempts})"
        )
    if "ReadTimeout" in names:
        return (
            f"timed out waiting for data (HUBCORE_READ_TIMEOUT={current.read_timeout:g} s; "
            f"{attempts})"
        )
    if any(isinstance(e, (asyncio.TimeoutError, TimeoutError)) for e in chain):
        return (
            f"no answer within the stall budget (HUBCORE_STALL_BUDGET={current.stall_budget:g} s)"
        )
    if "EndpointConnectionError" in names or any(
        isinstance(e, ConnectionRefusedError) for e in chain
    ):
        return "could not connect to the endpoint"
    text = redact(" ".join(str(exc).split()))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
