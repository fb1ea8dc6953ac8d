"""The HTTP download engine: resumable, parallel, retried, hashed while the bytes arrive.

One download writes one partial file under ``<home>/tmp/partial/`` next to a small JSON
sidecar. The first request asks for the first chunk with ``Range``:

* ``206``: the server supports ranges. The file is split into fixed-size chunks that worker
  threads (``HUBCORE_CONNECTIONS``, default 8, for files of at least 64 MiB) fetch in order and
  write at their offsets; the sidecar records finished chunks, so a later run (after a crash or
  ``kill -9``) fetches only the rest. ``If-Range`` and the ETag of every response make sure the
  pieces all belong to the same version of the file; a changed file starts over.
* ``200``: no range support (or the file changed); the body is streamed from the start.

A hashing thread follows the contiguous finished prefix of the file, so sha256 is computed
while the rest is still arriving, not in a second pass. Connection errors, timeouts and
408/429/5xx answers are retried with exponential backoff (honouring ``Retry-After``); other
4xx answers fail at once (:func:`hubcore.store.http.status_error` names the error).

Retries stop after ``HUBCORE_RETRIES`` attempts or when the *stall budget* is used up:
``HUBCORE_STALL_BUDGET`` seconds (default 120) in which fewer than 64 KiB of new bytes of the
file arrived, counted across attempts, timeouts, response headers and backoff waits
(:class:`hubcore.store.http.StallClock`, which has the whole rule). The stall that ends a failed
attempt stays charged after the next connection brings new bytes, until progress has been
sustained for a whole budget: a server that gives each new connection a burst and then stalls
fails after about the budget. A ranged retry resumes the broken chunk at its first
missing byte; without Range a retry starts over, and the bytes fetched again keep the transfer
alive while they flow (they give back the time they took, not the stall before them). Every
connect, every read and every backoff waits at most the budget that is left, and so does the
wait for a response's headers, so an attempt under way when the budget runs out ends then: a
server that stalls or drips fails after about the budget, not after attempts times timeouts.
The final :class:`~hubcore.errors.DownloadError` lists each failed attempt and why (timeout,
reset, HTTP status) and which limit ended the retries.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception

from hubcore import settings
from hubcore.errors import DownloadError
from hubcore.records import Record, asdict, field
from hubcore.store.files import atomic_write_json
from hubcore.store.hashing import OverlappedHash
from hubcore.store.http import (
    MIN_PROGRESS,
    Credentials,
    StallClock,
    describe_failure,
    error_for,
    failure_kind,
    is_transient,
    read_pieces,
    rewrite_url,
    send,
    shown_url,
    status_text,
)

__all__ = ["DownloadSettings", "HttpDownload", "download_settings"]

logger = logging.getLogger(__name__)

# Large reads: hashing on a helper thread only overlaps well with big pieces (measured:
# 1 MiB pieces were slower than hashing inline, 8 MiB pieces beat curl on loopback).
READ_SIZE = 8 << 20


class DownloadSettings(Record):
    """Tunables, read from the environment by :func:`download_settings`."""

    connections: int = 8
    chunk_size: int = 16 << 20
    parallel_threshold: int = 64 << 20
    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    #: Seconds without a byte arriving, across all attempts, before giving up (<= 0: no limit).
    stall_budget: float = 120.0
    #: A single connection at least this fast (bytes/s) is not split into several.
    fast_link: float = 200 * (1 << 20)


def download_settings() -> DownloadSettings:
    """The engine's tunables from :mod:`hubcore.settings` (``HUBCORE_CONNECTIONS``,
    ``HUBCORE_CHUNK_MB``, ``HUBCORE_PARALLEL_MIN_MB``, ``HUBCORE_FAST_LINK_MBPS``,
    ``HUBCORE_RETRIES``, ``HUBCORE_CONNECT_TIMEOUT``, ``HUBCORE_READ_TIMEOUT``,
    ``HUBCORE_STALL_BUDGET``)."""
    current = settings.current()
    return DownloadSettings(
        connections=max(1, current.connections),
        chunk_size=max(1 << 16, int(current.chunk_mb * (1 << 20))),
        parallel_threshold=int(current.parallel_min_mb * (1 << 20)),
        fast_link=current.fast_link_mbps * (1 << 20),
        attempts=max(1, current.retries),
        connect_timeout=current.connect_timeout,
        read_timeout=current.read_timeout,
        stall_budget=current.stall_budget,
    )


class _Transient(DownloadError):
    """A failure worth retrying (connection trouble, 408/429/5xx, a short body). Internal:
    :meth:`HttpDownload._retrying` turns the last one into a plain :class:`DownloadError`."""

    def __init__(self, why: str, retry_after: float | None = None):
        super().__init__(why)
        self.why = why
        self.retry_after = retry_after


class _Changed(Exception):
    """The file changed on the server, or it stopped honouring Range: start over."""


class _Meta(Record, frozen=False):
    url: str
    size: int
    validator: str | None
    chunk_size: int
    done: set[int] = field(factory=set)

    def save(self, path: Path) -> None:
        atomic_write_json(path, {**asdict(self), "done": sorted(self.done)}, compact=True)

    @classmethod
    def load(cls, path: Path, url: str) -> _Meta | None:
        try:
            data = json.loads(path.read_text())
            meta = cls(
                url=data["url"],
                size=int(data["size"]),
                validator=data.get("validator"),
                chunk_size=int(data["chunk_size"]),
                done={int(i) for i in data["done"]},
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return meta if meta.url == url else None


class HttpDownload:
    """Download *url* into *partial* (with sidecar *meta_path*); :meth:`run` returns
    ``(sha256, size)``. *on_bytes* is called with every number of bytes that arrive.

    *credentials* (else the URL's user info) authenticate to their own origin only; *label*
    names the download in messages (default: the URL as
    :func:`~hubcore.store.redaction.shown_url` shows it); *resource* and *token_hint* go to
    :func:`hubcore.store.http.error_for` (a repository archive that is missing is a missing
    repository)."""

    def __init__(
        self,
        url: str,
        partial: Path,
        meta_path: Path,
        *,
        settings: DownloadSettings | None = None,
        on_start: Callable[[int | None, int], None] | None = None,
        on_bytes: Callable[[int], None] | None = None,
        credentials: Credentials | None = None,
        label: str | None = None,
        resource: Literal["repository", "file"] = "file",
        token_hint: str = "",
    ):
        self.url, from_url = _split_credentials(url)
        # a caller's credentials (a git host's token) are bound to their origins like these
        self.credentials = credentials or from_url
        self.label = label or shown_url(url)
        self.resource, self.token_hint = resource, token_hint
        self.partial = partial
        self.meta_path = meta_path
        self.settings = settings or download_settings()
        self.on_start = on_start or (lambda total, resumed: None)
        self.on_bytes = on_bytes or (lambda n: None)
        self._meta_lock = threading.Lock()
        self._reached = False  # whether the server ever answered (refusals after are retried)
        self._clock = StallClock(self.settings.stall_budget)
        # the bytes of each chunk on disk from its start, in any attempt: a retry resumes there
        self._written: dict[int, int] = {}
        # the furthest byte received of each chunk (-1: a whole body), in any attempt: bytes
        # before it are fetched again (:meth:`StallClock.arrived`)
        self._held: dict[int, int] = {}
        self._waits = threading.local()  # the read timeout each thread last used

    # -- the whole download ----------------------------------------------------------------------
    def run(self) -> tuple[str, int]:
        self._clock = StallClock(self.settings.stall_budget)
        self._written.clear()
        self._held.clear()
        for _ in range(3):  # a file that keeps changing under us is given three chances
            try:
                return self._attempt()
            except _Changed:
                logger.info("%s changed on the server; starting over", self.label)
                self.discard()
                with self._meta_lock:
                    self._written.clear()  # another version's bytes
                    self._held.clear()
            except _Transient as exc:  # never reaches the user as such (see _retrying)
                raise DownloadError(f"downloading {self.label} failed: {exc.why}") from None
        raise DownloadError(f"{self.label} kept changing while it was downloaded")

    def discard(self) -> None:
        """Forget the partial download."""
        self.partial.unlink(missing_ok=True)
        self.meta_path.unlink(missing_ok=True)

    def _attempt(self) -> tuple[str, int]:
        meta = _Meta.load(self.meta_path, self.url) if self.partial.exists() else None
        if meta is not None and meta.chunk_size != self.settings.chunk_size:
            meta = None
        if meta is None:
            self.discard()
        # Ask for the first chunk still missing: it tells size, validator and Range support,
        # and its bytes are useful (after a crash, chunk 0 is usually on disk already).
        first_index = _first_missing(meta) if meta is not None else 0
        start = first_index * self.settings.chunk_size
        headers = {"Range": f"bytes={start}-{start + self.settings.chunk_size - 1}"}
        if meta is not None and meta.validator:
            headers["If-Range"] = meta.validator
        response = self._retrying(lambda: self._open(self.url, headers))
        final_url = response.url or rewrite_url(self.url)  # later requests skip the mirrors
        if response.status_code == 206:
            total = _content_range_total(response)
            validator = _validator(response)
            if meta is not None and (meta.size != total or meta.validator != validator):
                response.close()
                raise _Changed
            if meta is None:
                meta = _Meta(self.url, total, validator, self.settings.chunk_size)
                _preallocate(self.partial, total)
                meta.save(self.meta_path)
            return self._ranged(final_url, meta, response, first_index)
        return self._whole(response)

    # -- ranged downloads --------------------------------------------------------------------------
    def _ranged(
        self, url: str, meta: _Meta, first: requests.Response, first_index: int
    ) -> tuple[str, int]:
        chunks = max(1, -(-meta.size // meta.chunk_size))
        resumed = sum(self._chunk_len(meta, i) for i in meta.done)
        self.on_start(meta.size, resumed)
        fresh = not meta.done and first_index == 0
        fd = os.open(self.partial, os.O_WRONLY)
        try:
            # A fresh download hashes its first chunk in memory, and times it: a connection
            # that is fast on its own is not split (on a fast link, more connections only
            # add work); a slow one (a capped CDN) is.
            inline = OverlappedHash() if fresh else None
            began = time.monotonic()
            probe_ok = self._write_probe(fd, meta, first_index, first, inline)
            rate = self._chunk_len(meta, first_index) / max(time.monotonic() - began, 1e-6)
            more = [i for i in range(chunks) if i not in meta.done]
            single = (
                meta.size < self.settings.parallel_threshold
                or self.settings.connections == 1
                or rate >= self.settings.fast_link
            )
            if inline is not None and probe_ok and single:
                inline.checkpoint()  # a retry of the rest must not rewind past this chunk
                return self._stream_rest(fd, url, meta, inline, more), meta.size
            if inline is not None:
                inline.close()
            return self._parallel_rest(fd, url, meta, chunks, more, single), meta.size
        finally:
            os.close(fd)

    def _write_probe(
        self,
        fd: int,
        meta: _Meta,
        index: int,
        response: requests.Response,
        digest: OverlappedHash | None,
    ) -> bool:
        """Write the chunk the first response carries; False if it broke (retried later)."""
        if index in meta.done:
            response.close()
            return False
        try:
            self._write_chunk(fd, meta, index, response, digest)
        except _Transient as exc:
            logger.info("first chunk of %s failed: %s", self.label, exc.why)
            self._failed()
            return False
        with self._meta_lock:
            meta.done.add(index)
            meta.save(self.meta_path)
        return True

    def _parallel_rest(
        self, fd: int, url: str, meta: _Meta, chunks: int, pending: list[int], single: bool
    ) -> str:
        state = _ChunkState(chunks, meta.done)
        hasher = _PrefixHasher(self.partial, meta, chunks, state)
        hasher.start()
        try:
            if pending:
                workers = 1 if single else min(self.settings.connections, len(pending))
                self._fetch_chunks(fd, url, meta, pending, state, workers)
        except BaseException:
            state.abort()
            raise
        finally:
            hasher.join()
        if hasher.error is not None:
            raise hasher.error
        return hasher.hexdigest()

    def _stream_rest(
        self, fd: int, url: str, meta: _Meta, digest: OverlappedHash, pending: list[int]
    ) -> str:
        """Fetch the remaining chunks (a suffix of the file) over one connection."""
        if not pending:
            return digest.hexdigest()
        next_index, last = pending[0], pending[-1]

        def stream() -> None:
            nonlocal next_index
            skip = self._written.get(next_index, 0)  # resume where the last attempt broke
            start = next_index * meta.chunk_size + skip
            headers = {"Range": f"bytes={start}-{meta.size - 1}"}
            if meta.validator:
                headers["If-Range"] = meta.validator
            response = self._open(url, headers, mirror=False)
            if response.status_code != 206 or _content_range_total(response) != meta.size:
                response.close()
                raise _Changed
            with response:
                while next_index <= last:
                    self._write_chunk(
                        fd, meta, next_index, response, digest, close=False, start=skip
                    )
                    skip = 0
                    digest.checkpoint()
                    with self._meta_lock:
                        meta.done.add(next_index)
                        meta.save(self.meta_path)
                    next_index += 1

        def rewind(exc: BaseException) -> None:
            # back to the last finished chunk; the part of the next one on disk is hashed from
            # there, and the retry resumes after it
            nonlocal digest
            digest = digest.rewound()
            kept = self._written.get(next_index, 0)
            with open(self.partial, "rb") as fh:
                fh.seek(next_index * meta.chunk_size)
                while kept > 0 and (data := fh.read(min(READ_SIZE, kept))):
                    digest.update(data)
                    kept -= len(data)

        self._retrying(stream, on_retry=rewind)
        return digest.hexdigest()

    def _fetch_chunks(
        self, fd: int, url: str, meta: _Meta, pending: list[int], state: _ChunkState, workers: int
    ) -> None:
        work: queue.SimpleQueue[int] = queue.SimpleQueue()
        for index in pending:
            work.put(index)

        def worker() -> None:
            while not state.aborted:
                try:
                    index = work.get_nowait()
                except queue.Empty:
                    return

                def fetch_one(index: int = index) -> None:
                    skip = self._written.get(index, 0)  # resume where the last attempt broke
                    start = index * meta.chunk_size
                    end = start + self._chunk_len(meta, index) - 1
                    headers = {"Range": f"bytes={start + skip}-{end}"}
                    if meta.validator:
                        headers["If-Range"] = meta.validator
                    response = self._open(url, headers, mirror=False)
                    if response.status_code != 206:
                        response.close()
                        raise _Changed  # the server ignored Range or the file changed
                    if _content_range_total(response) != meta.size or (
                        meta.validator and _validator(response) not in (None, meta.validator)
                    ):
                        response.close()
                        raise _Changed
                    self._write_chunk(fd, meta, index, response, start=skip)

                self._retrying(fetch_one)
                self._finish(meta, index, state)

        with ThreadPoolExecutor(workers, thread_name_prefix="hubcore-dl") as pool:
            futures = [pool.submit(worker) for _ in range(workers)]
            errors = []
            for future in futures:
                try:
                    future.result()
                except BaseException as exc:
                    state.abort()
                    errors.append(exc)
            if errors:
                raise errors[0]

    def _write_chunk(
        self,
        fd: int,
        meta: _Meta,
        index: int,
        response: requests.Response,
        digest: OverlappedHash | None = None,
        *,
        close: bool = True,
        start: int = 0,
    ) -> None:
        """Write chunk *index* from its byte *start* (the bytes before it are on disk) as the
        body of *response* brings it; what arrived stays for the next attempt to resume."""
        offset = index * meta.chunk_size
        expected = self._chunk_len(meta, index)
        written = start
        with response if close else _kept_open():
            while written < expected:
                got: list[bytes] = []
                failure: Exception | None = None
                try:
                    want = min(READ_SIZE, expected - written)
                    data = self._read(response, want, index, written, got)
                except Exception as exc:  # requests, OSError and urllib3 protocol errors
                    failure, data = exc, got  # keep what came before the break
                if data:
                    count = _pwrite_pieces(fd, data, offset + written)
                    if digest is not None:
                        digest.update(data)
                    written += count
                    with self._meta_lock:
                        self._written[index] = written
                    self.on_bytes(count)
                if failure is not None:
                    raise self._broken(failure) from None
                if not data:
                    break
        if written != expected:
            raise _Transient(f"chunk {index} ended after {written} of {expected} bytes")

    def _finish(self, meta: _Meta, index: int, state: _ChunkState) -> None:
        with self._meta_lock:
            meta.done.add(index)
            meta.save(self.meta_path)
        state.mark(index)

    def _chunk_len(self, meta: _Meta, index: int) -> int:
        start = index * meta.chunk_size
        return min(meta.chunk_size, meta.size - start)

    # -- whole-body downloads (no Range support) ---------------------------------------------------
    def _whole(self, response: requests.Response) -> tuple[str, int]:
        self.discard()
        expected = response.headers.get("Content-Length")
        total = int(expected) if expected and expected.isdigit() else None
        self.on_start(total, 0)

        def stream(response: requests.Response) -> tuple[str, int]:
            digest = OverlappedHash()
            size = 0
            with response, open(self.partial, "wb") as fh:
                try:
                    while data := self._read(response, READ_SIZE, -1, size):
                        fh.writelines(data)
                        digest.update(data)
                        count = sum(map(len, data))
                        size += count
                        self.on_bytes(count)
                except Exception as exc:  # requests, OSError and urllib3 protocol errors
                    self.on_bytes(-size)
                    digest.close()
                    raise self._broken(exc) from None
            hexdigest = digest.hexdigest()
            if total is not None and size != total:
                self.on_bytes(-size)
                raise _Transient(f"received {size} of {total} bytes")
            return hexdigest, size

        unread: requests.Response | None = response  # the first attempt uses the probe's answer

        def attempt() -> tuple[str, int]:
            nonlocal unread
            current = unread if unread is not None else self._open(self.url, {})
            unread = None
            return stream(current)

        result: tuple[str, int] = self._retrying(attempt)
        return result

    # -- requests ---------------------------------------------------------------------------------
    def _open(self, url: str, headers: dict[str, str], *, mirror: bool = True) -> requests.Response:
        """GET with credential-safe redirects (:func:`hubcore.store.http.send`) and status checks.
        *mirror* is false for a URL that came from a response (already rewritten)."""
        self._check_slow()  # no new attempt once the budget is spent
        read_timeout = self._clock.cap(self.settings.read_timeout)
        timeout = (self._clock.cap(self.settings.connect_timeout), read_timeout)
        try:
            response = send(
                url,
                credentials=self.credentials,
                headers=headers,
                stream=True,
                timeout=timeout,
                mirror=mirror,
                clock=self._clock,  # waiting for the headers is time without progress too
            )
        except requests.RequestException as exc:
            why = describe_failure(exc, read_timeout)
            kind = failure_kind(exc)
            unreached = kind == "connection refused" and not self._reached
            if kind == "host name not found" or unreached:
                # nothing to wait for: no network, a wrong name, or no server at all
                host = urlsplit(url).netloc.rpartition("@")[2]
                raise DownloadError(
                    f"cannot fetch {self.label}: {why} ({host}). Without a network, set "
                    "HUBCORE_OFFLINE=1 to use only the cache, or configure a mirror "
                    "(HUBCORE_MIRRORS) for this host."
                ) from None
            raise _Transient(why) from None
        self._reached = True
        status = response.status_code
        if status < 400:
            return response
        if is_transient(status):
            retry_after = _retry_after(response.headers.get("Retry-After"))
            response.close()
            raise _Transient(status_text(status, response.reason), retry_after)
        error = error_for(response, self.label, resource=self.resource, token_hint=self.token_hint)
        assert error is not None
        raise error

    def _broken(self, exc: Exception) -> _Transient:
        # the timeout the failed read was given (cut to the budget left), not the setting
        used = getattr(self._waits, "last", self.settings.read_timeout)
        return _Transient(describe_failure(exc, used))

    def _read(
        self,
        response: requests.Response,
        size: int,
        region: int,
        offset: int,
        pieces: list[bytes] | None = None,
    ) -> list[bytes]:
        """Up to *size* bytes (:func:`hubcore.store.http.read_pieces`: the pieces as they came,
        written and hashed without joining them) of chunk *region* (-1: the
        whole body), from byte *offset* of it; *pieces* collects them as they come (kept if a
        read fails). They feed the stall clock shared by every connection of this download
        (:meth:`StallClock.arrived`: bytes before the furthest received so far are fetched
        again; ranged retries resume, so only a server without Range sends any). Each read
        waits at most the read timeout cut to the budget left."""
        position = offset

        def arrived(count: int) -> None:
            nonlocal position
            with self._meta_lock:
                held = self._held.get(region, 0)
                again = max(0, min(position + count, held) - position)
                position += count
                self._held[region] = max(held, position)
                moved = again > 0 and self._clock.arrived(again, again=True)
                if count > again and self._clock.arrived(count - again):
                    moved = True
                if not moved:
                    self._check_slow()

        def wait() -> float:
            self._waits.last = self._clock.cap(self.settings.read_timeout)
            return float(self._waits.last)

        return read_pieces(response, size, arrived, wait=wait, pieces=pieces)

    def _failed(self) -> None:
        """An attempt failed: its stall stays charged (:meth:`StallClock.failed`)."""
        with self._meta_lock:
            self._clock.failed()

    def _check_slow(self) -> None:
        if self._clock.spent():
            raise _Transient(
                f"too slow: less than {MIN_PROGRESS // 1024} KiB at a time in "
                f"{self._clock.stalled_for():.0f} s without progress "
                f"(HUBCORE_STALL_BUDGET={self.settings.stall_budget:g})"
            )

    def _retrying(
        self, action: Callable[[], Any], on_retry: Callable[[BaseException], None] | None = None
    ) -> Any:
        """Run *action*, retrying :class:`_Transient` failures until ``attempts`` or the stall
        budget runs out; then raise a :class:`DownloadError` that lists every attempt."""
        settings = self.settings
        failures: list[str] = []

        def attempt() -> Any:
            self._clock.new_attempt()
            try:
                return action()
            except _Transient as exc:
                failures.append(exc.why)
                self._failed()
                raise

        def stop(state: RetryCallState) -> bool:
            return state.attempt_number >= settings.attempts or self._clock.spent()

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            hint = getattr(exc, "retry_after", None)
            if isinstance(hint, int | float):
                delay = float(min(hint, settings.max_backoff))
            else:
                delay = min(
                    settings.backoff * 2 ** (state.attempt_number - 1), settings.max_backoff
                )
            return self._clock.cap(delay)  # the budget's end is the end of waiting

        def log(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            logger.info("retrying %s after: %s", self.label, getattr(exc, "why", exc))
            if on_retry is not None and exc is not None:
                on_retry(exc)

        retrying = Retrying(
            stop=stop,
            wait=wait,
            retry=retry_if_exception(lambda exc: isinstance(exc, _Transient)),
            before_sleep=log,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Transient:
            raise DownloadError(self._summary(failures)) from None

    def _summary(self, failures: list[str]) -> str:
        """Which attempts failed and why, and which limit ended the retries."""
        runs: list[tuple[int, int, str]] = []  # (first, last, why): repeats said once
        for number, why in enumerate(failures, 1):
            if runs and runs[-1][2] == why:
                runs[-1] = (runs[-1][0], number, why)
            else:
                runs.append((number, number, why))
        attempts = "; ".join(
            f"attempt {a}: {why}" if a == b else f"attempts {a}-{b}: {why}" for a, b, why in runs
        )
        if self._clock.spent():
            budget = self.settings.stall_budget
            limit = (
                f"the transfer made no progress (less than {MIN_PROGRESS // 1024} KiB of new "
                f"data at a time) for {self._clock.stalled_for():.0f} s, past the stall "
                f"budget (HUBCORE_STALL_BUDGET={budget:g})"
            )
        else:
            limit = f"{len(failures)} attempts failed (HUBCORE_RETRIES={self.settings.attempts})"
        return (
            f"downloading {self.label} failed: {attempts}. Gave up because {limit}. "
            "Try again later."
        )


class _ChunkState:
    """Which chunks are on disk; the hasher waits on it."""

    def __init__(self, chunks: int, done: set[int]):
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.ready = [i in done for i in range(chunks)]
        self.aborted = False

    def mark(self, index: int) -> None:
        with self.changed:
            self.ready[index] = True
            self.changed.notify_all()

    def abort(self) -> None:
        with self.changed:
            self.aborted = True
            self.changed.notify_all()

    def wait_for(self, index: int) -> bool:
        with self.changed:
            while not self.ready[index] and not self.aborted:
                self.changed.wait()
            return self.ready[index]


class _PrefixHasher(threading.Thread):
    """Hashes chunks in file order as soon as each is on disk (read back from the page cache)."""

    def __init__(self, path: Path, meta: _Meta, chunks: int, state: _ChunkState):
        super().__init__(name="hubcore-hash", daemon=True)
        self.path, self.meta, self.chunks, self.state = path, meta, chunks, state
        self.digest = hashlib.sha256()
        self.error: BaseException | None = None
        self.complete = False

    def run(self) -> None:
        try:
            with open(self.path, "rb", buffering=0) as fh:
                for index in range(self.chunks):
                    if not self.state.wait_for(index):
                        return
                    fh.seek(index * self.meta.chunk_size)
                    remaining = min(
                        self.meta.chunk_size, self.meta.size - index * self.meta.chunk_size
                    )
                    while remaining:
                        data = fh.read(min(READ_SIZE, remaining))
                        if not data:
                            raise DownloadError("the partial file is shorter than expected")
                        self.digest.update(data)
                        remaining -= len(data)
            self.complete = True
        except BaseException as exc:
            self.error = exc

    def hexdigest(self) -> str:
        if not self.complete:
            raise DownloadError("the download stopped before every chunk was hashed")
        return self.digest.hexdigest()


@contextmanager
def _kept_open() -> Iterator[None]:
    """Stands in for ``with response`` when a response spans several chunks."""
    yield


# -- helpers --------------------------------------------------------------------------------------


def _preallocate(path: Path, size: int) -> None:
    """Reserve the whole file on disk: a full disk fails now, not at 90%, and writes into
    reserved blocks are faster than into a sparse file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        if size and hasattr(os, "posix_fallocate"):
            try:
                os.posix_fallocate(fd, 0, size)
                return
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise DownloadError(
                        f"not enough disk space for {size} bytes in {path.parent}"
                    ) from None
        os.ftruncate(fd, size)  # the filesystem cannot preallocate: a sparse file will do
    finally:
        os.close(fd)


def _first_missing(meta: _Meta) -> int:
    chunks = max(1, -(-meta.size // meta.chunk_size))
    return next((i for i in range(chunks) if i not in meta.done), 0)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        from email.utils import parsedate_to_datetime

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _content_range_total(response: requests.Response) -> int:
    value = response.headers.get("Content-Range", "")
    total = value.rpartition("/")[2]
    if not total.isdigit():
        response.close()
        raise _Changed  # a 206 without a usable total: treat the server as range-less
    return int(total)


def _validator(response: requests.Response) -> str | None:
    etag = response.headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return response.headers.get("Last-Modified")


def _split_credentials(url: str) -> tuple[str, Credentials | None]:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
    clean = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return clean, Credentials({clean: {"Authorization": f"Basic {token}"}})  # its origin only


def _pwrite_pieces(fd: int, pieces: list[bytes], offset: int) -> int:
    """Write *pieces* in order at *offset* of *fd* (``pwritev``, in batches within the
    system's limit, finishing short writes); the number of bytes written."""
    total = 0
    for start in range(0, len(pieces), 512):
        batch = [memoryview(piece) for piece in pieces[start : start + 512]]
        while batch:
            done = os.pwritev(fd, batch, offset + total)
            total += done
            while batch and done >= len(batch[0]):
                done -= len(batch[0])
                batch.pop(0)
            if batch and done:
                batch[0] = batch[0][done:]
    return total
