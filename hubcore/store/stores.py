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
* **Synchronous remote filesystems** (ftp through ftplib, sftp through paramiko, ossfs, and
  any other that is neither asynchronous nor local) get the connect and read timeouts where
  their library takes them (ftp's one ``timeout``: the connect timeout while connecting and
  logging in, the read timeout after that; sftp: ``timeout``, then ``banner_timeout``,
  ``auth_timeout``, ``channel_timeout`` and its channel's reads the read timeout), and each
  operation must finish within the stall budget: creating the filesystem (which connects),
  every :func:`call` and every :data:`RANGE` that :func:`copy` reads. A blocked library call
  cannot be interrupted, so it runs on a daemon thread that is given up at the deadline, after
  the connection it waits on is closed where hubcore can reach it (ftplib's control and data
  sockets, paramiko's client), so that the thread ends; the filesystem is not used again. One
  operation at a time runs on such a filesystem (ftplib's connection is one conversation).
  Local filesystems (files, memory) run on the caller's thread, with no limit and no cost.
* **Errors** are :class:`~hubcore.errors.DownloadError` naming the host (the endpoint), the
  transport and the limit that fired, with URLs redacted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import importlib.util
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from hubcore import settings
from hubcore.errors import ConfigError, DownloadError, causes
from hubcore.records import Record
from hubcore.store.redaction import redact

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
#: Protocols of fsspec's SFTP filesystem (paramiko).
_SSH = frozenset({"sftp", "ssh"})
#: Protocols of filesystems that do no network I/O: run as they are, on the caller's thread.
_LOCAL = frozenset({"file", "local", "memory", "data"})
#: Attribute of a synchronous remote filesystem holding its :class:`_Line`.
_LINE = "_hubcore_line"
#: Attribute of an ftplib connection holding its open data sockets (see :func:`_watch`).
_DATA = "_hubcore_data_sockets"


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
    retries are set by :func:`open_store`. ftp: ``timeout``, the connect timeout, which
    :func:`open_store` turns into the read timeout once logged in. sftp: paramiko's
    ``timeout`` the connect timeout, ``banner_timeout``, ``auth_timeout`` and
    ``channel_timeout`` the read timeout). Options the caller gave are kept."""
    options = dict(storage)
    if protocol in _S3:
        current = settings.current()
        config = dict(options.get("config_kwargs") or {})
        config.setdefault("connect_timeout", current.connect_timeout)
        config.setdefault("read_timeout", current.read_timeout)
        config.setdefault("retries", {"max_attempts": 1, "mode": "standard"})
        options["config_kwargs"] = config
    elif protocol == "ftp":  # ftplib's one timeout: the read timeout is set once connected
        options.setdefault("timeout", settings.current().connect_timeout)
    elif protocol in _SSH:
        current = settings.current()
        options.setdefault("timeout", current.connect_timeout)
        for name in ("banner_timeout", "auth_timeout", "channel_timeout"):
            if _paramiko_takes(name):
                options.setdefault(name, current.read_timeout)
    return options


@functools.cache
def _paramiko_takes(name: str) -> bool:
    """Whether paramiko's ``SSHClient.connect`` takes the option *name* (``channel_timeout``
    is recent): an option it does not know would fail every connection."""
    import inspect

    try:
        paramiko: Any = importlib.import_module("paramiko")
    except ImportError:
        return False
    return name in inspect.signature(paramiko.SSHClient.connect).parameters


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
    except DownloadError:  # a limit fired: already names host, transport and limit
        raise
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
    options = timed_options(protocol, storage)
    given = endpoint(protocol, storage)
    if given:
        host = urlsplit(given if "://" in given else f"https://{given}").netloc
    else:
        host = urlsplit(url).netloc.rpartition("@")[2] or "(local)"
    kind = None if protocol in _LOCAL else _class(protocol)
    budget = settings.current().stall_budget
    if kind is not None and _synchronous_remote(kind):
        if budget > 0:  # made on a helper thread: cached under its id, it would never be found
            options.setdefault("skip_instance_cache", True)
        try:
            fs, path = _in_time(
                lambda: fsspec.core.url_to_fs(url, **options),
                budget,
                late=lambda got: _abort(got[0]),
            )
        except Exception as exc:  # the constructor connects: name the limit that fired
            if not any(isinstance(e, TimeoutError) for e in causes(exc)):
                raise
            raise DownloadError(
                f"cannot reach {redact(url)}: {_sync_reason(exc, connecting=True)} "
                f"(host {host}, transport {protocol} ({_library(kind)}))"
            ) from None
        _connected(fs, storage)
    else:
        fs, path = fsspec.core.url_to_fs(url, **options)
    if protocol in _S3 and hasattr(fs, "retries"):
        fs.retries = max(1, settings.current().retries)  # s3fs's attempts: hubcore's count
    return Store(fs, str(path), host, f"{protocol} ({_library(type(fs))})")


def _library(kind: type) -> str:
    """The library a filesystem class comes from: ``fsspec``, ``s3fs``, ..."""
    return kind.__module__.partition(".")[0]


def _class(protocol: str) -> type | None:
    """fsspec's filesystem class of *protocol*, or ``None`` (unknown, or its library is
    missing: creating the filesystem then says so)."""
    import fsspec

    try:
        return fsspec.get_filesystem_class(protocol)  # type: ignore[no-any-return]
    except Exception:
        return None


def _synchronous_remote(kind: type) -> bool:
    """Whether filesystems of class *kind* are synchronous and may reach a network, decided
    once per class (a dictionary look-up after that). Wrappers (``dir``, ``simplecache``,
    ``zip``, ...) count as remote: what they wrap may be."""
    known = _KINDS.get(kind)
    if known is None:
        known = _KINDS[kind] = _decide(kind)
    return known


#: :func:`_synchronous_remote` of each filesystem class met.
_KINDS: dict[type, bool] = {}


def _decide(kind: type) -> bool:
    from fsspec.asyn import AsyncFileSystem
    from fsspec.implementations.local import LocalFileSystem

    if issubclass(kind, (AsyncFileSystem, LocalFileSystem)):
        return False
    protocol = getattr(kind, "protocol", ())
    return not _LOCAL.intersection((protocol,) if isinstance(protocol, str) else protocol)


def _walks_as_fsspec(kind: type) -> bool:
    """Whether *kind* lists folders with fsspec's own ``find`` and ``walk`` (which take
    ``on_error``)."""
    from fsspec import AbstractFileSystem

    return bool(
        kind.find is AbstractFileSystem.find  # type: ignore[attr-defined]
        and kind.walk is AbstractFileSystem.walk  # type: ignore[attr-defined]
    )


def _connected(fs: Any, storage: Mapping[str, Any]) -> None:
    """Give a connected synchronous filesystem the read timeout where its library takes it
    only now: ftplib's one timeout (the connect timeout until now, unless the caller gave
    one) and paramiko's SFTP channel (no timeout otherwise); an SSH connection is closed
    when its filesystem is collected."""
    import ftplib

    read = settings.current().read_timeout
    conn: Any = getattr(fs, "ftp", None)
    with contextlib.suppress(Exception):  # a library's internals: best effort
        if isinstance(conn, ftplib.FTP):
            if "timeout" not in storage:
                conn.timeout = read  # its data connections
                if conn.sock is not None:
                    conn.sock.settimeout(read)
        elif callable(getattr(conn, "get_channel", None)):  # paramiko's SFTPClient
            conn.get_channel().settimeout(read)
            # made afresh for each store (not cached: see _open), and paramiko closes nothing
            # it lets go of: the connection ends with the filesystem
            weakref.finalize(fs, fs.client.close)


class _Stalled(TimeoutError):
    """An operation of a synchronous filesystem outlived the stall budget."""


class _Line:
    """The conversation with one synchronous remote filesystem: one operation at a time, and
    why it was given up, once it was."""

    __slots__ = ("lock", "stalled")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stalled: str | None = None


def _in_time(
    action: Callable[[], Any],
    budget: float,
    *,
    abort: Callable[[], object] | None = None,
    late: Callable[[Any], object] | None = None,
) -> Any:
    """What *action* returns (or raises), if it ends within *budget* seconds (none: 0); else
    *abort* is called and :class:`_Stalled` raised. A blocked library call cannot be
    interrupted, so *action* runs on a daemon thread, which no interpreter exit waits for (a
    ThreadPoolExecutor's are joined); should it return after all, *late* gets the result."""
    if budget <= 0:
        return action()
    guard = threading.Lock()
    outcome: list[tuple[bool, Any]] = []
    given_up = False

    def run() -> None:
        try:
            result: tuple[bool, Any] = (True, action())
        except BaseException as exc:  # handed to the caller, whatever it is
            result = (False, exc)
        with guard:
            outcome.append(result)
            gone = given_up
        finished.set()
        if gone and result[0] and late is not None:
            with contextlib.suppress(Exception):
                late(result[1])

    finished = threading.Event()
    threading.Thread(target=run, name="hubcore-store", daemon=True).start()
    if not finished.wait(budget):
        with guard:
            given_up = not outcome
        if given_up:
            if abort is not None:
                with contextlib.suppress(Exception):
                    abort()
            raise _Stalled(f"no answer within the stall budget (HUBCORE_STALL_BUDGET={budget:g} s)")
    ok, value = outcome[0]
    if ok:
        return value
    raise value


def _bounded(store: Store, action: Callable[[], Any], what: str) -> Any:
    """*action* on *store*'s synchronous remote filesystem, as :func:`call` runs it: after the
    operation before it, within the stall budget (then its connection is closed and the
    filesystem given up: later operations fail at once). :class:`FileNotFoundError` passes
    through; any other failure is a :class:`~hubcore.errors.DownloadError`."""
    fs = store.fs
    line: _Line = vars(fs).get(_LINE) or vars(fs).setdefault(_LINE, _Line())
    budget = settings.current().stall_budget
    try:
        with line.lock:  # each holder waits at most the budget: this wait is bounded
            if line.stalled is not None:
                raise _Stalled(line.stalled)
            _watch(fs)
            try:
                return _in_time(action, budget, abort=lambda: _abort(fs))
            except _Stalled:
                line.stalled = (
                    "not tried: an earlier operation had no answer within the stall budget "
                    f"(HUBCORE_STALL_BUDGET={budget:g} s), and its connection was closed"
                )
                raise
    except FileNotFoundError:
        raise
    except Exception as exc:  # a store library may raise anything: name it, never hang on it
        raise DownloadError(
            f"{what} failed: {_sync_reason(exc, connecting=False)} "
            f"(host {store.host}, transport {store.transport})"
        ) from None


def _watch(fs: Any) -> None:
    """Keep the data sockets of *fs*'s ftplib connection (ftplib keeps only the control
    socket), so that :func:`_abort` can close the one a stalled transfer waits on."""
    import ftplib

    conn = getattr(fs, "ftp", None)
    if not isinstance(conn, ftplib.FTP) or _DATA in vars(conn):
        return
    opened: weakref.WeakSet[Any] = weakref.WeakSet()
    owner: Callable[[], Any] = weakref.ref(conn)  # no cycle through the connection

    def ntransfercmd(cmd: str, rest: int | str | None = None) -> tuple[Any, int | None]:
        ftp = owner()
        sock, size = type(ftp).ntransfercmd(ftp, cmd, rest)
        opened.add(sock)
        return sock, size

    vars(conn)["ntransfercmd"] = ntransfercmd
    vars(conn)[_DATA] = opened


def _abort(fs: Any) -> None:
    """Close the connection a stalled operation of *fs* waits on, so that its thread ends:
    ftplib's sockets (shut down: a close alone wakes no blocked read), paramiko's client.
    Another library's thread ends when that library gives up."""
    import ftplib
    import socket

    conn = getattr(fs, "ftp", None)
    if isinstance(conn, ftplib.FTP):
        for sock in [*vars(conn).get(_DATA, ()), conn.sock]:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()
        return
    client: Any = getattr(fs, "client", None)
    if type(client).__module__.startswith("paramiko"):
        client.close()


def call(store: Store, method: str, *args: Any, what: str, **kwargs: Any) -> Any:
    """``store.fs.<method>(*args, **kwargs)``, bounded by the stall budget unless the
    filesystem is local (see the module's notes). :class:`FileNotFoundError` passes through
    (the caller says what is missing); any other failure is a
    :class:`~hubcore.errors.DownloadError` that starts with *what* ("listing s3://bucket/hub")
    and names host, transport and limit."""
    from fsspec.asyn import AsyncFileSystem, sync

    fs = store.fs
    if _synchronous_remote(type(fs)):
        if method in ("find", "walk") and _walks_as_fsspec(type(fs)):
            kwargs.setdefault("on_error", "raise")  # fsspec omits a failed listing: not empty
        return _bounded(store, lambda: getattr(fs, method)(*args, **kwargs), what)
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
    store is read as a file; a remote one (ftp, sftp) opens it and reads every :data:`RANGE`
    within the stall budget. With *writelines*, each streamed :data:`RANGE` is handed over as
    the stream's own pieces (in order, not joined: one copy of every byte fewer).
    """
    from fsspec.asyn import AsyncFileSystem

    done = 0
    if _synchronous_remote(type(store.fs)):
        return _copy_bounded(store, path, write, what)
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


def _copy_bounded(store: Store, path: str, write: Callable[[bytes], object], what: str) -> int:
    """Copy *path* of a synchronous remote store to *write*: opening it and each
    :data:`RANGE` it reads within the stall budget, so a slow but moving copy goes on and a
    stalled one stops (see :func:`_bounded`). Returns the bytes copied."""
    source = _bounded(store, lambda: store.fs.open(path, "rb"), what)
    done = 0
    try:
        while data := _bounded(store, lambda: source.read(RANGE), what):
            write(data)
            done += len(data)
    finally:
        with contextlib.suppress(Exception):  # a given-up filesystem is not asked again
            _bounded(store, source.close, what)
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


def _sync_reason(exc: BaseException, *, connecting: bool) -> str:
    """Which limit fired for a synchronous filesystem: the stall budget (:func:`_in_time`),
    else a socket timeout of its library (the connect timeout while it is created, the read
    timeout after), else what else went wrong (:func:`_reason`)."""
    chain = list(causes(exc))
    stalled = next((e for e in chain if isinstance(e, _Stalled)), None)
    if stalled is not None:
        return str(stalled)
    if any(isinstance(e, TimeoutError) for e in chain):
        current = settings.current()
        if connecting:
            return f"timed out connecting (HUBCORE_CONNECT_TIMEOUT={current.connect_timeout:g} s)"
        return f"timed out waiting for data (HUBCORE_READ_TIMEOUT={current.read_timeout:g} s)"
    return _reason(exc)


def _reason(exc: BaseException) -> str:
    """Which limit fired, or what else went wrong, from the whole chain of *exc*."""
    current = settings.current()
    chain = list(causes(exc))
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
