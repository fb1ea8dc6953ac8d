"""Small, careful HTTP: mirrors, timeouts, credential-safe redirects, one status-to-error map.

Every request goes through :func:`send` (or :func:`get`, which also maps failures to hub errors):

* The URL is rewritten by the configured mirrors (:func:`rewrite_url`). Mirror prefixes are
  parsed: scheme, host, port and whole path segments must match, dot segments (``..``, also
  percent-encoded) are resolved before matching, and a rewritten URL that would leave the
  mirror's origin or path is refused.
* :class:`Credentials` belong to an *origin*: scheme, host and port. Redirects are followed by
  hand and credentials are sent only to their own origin, so another port, another scheme or
  another host (a redirect target or a mirror) never receives them.
* A redirect from ``https`` to plain ``http`` is refused with a
  :class:`~hubcore.errors.DownloadError`, unless the target host is listed in
  ``HUBCORE_ALLOW_HTTP`` (comma-separated ``host`` or ``host:port`` entries). Even then no
  credentials follow, as the origin changed.
* :func:`status_error` is the one map from an HTTP status to a hub error, used here and by the
  weight downloader; :func:`describe_failure` turns a connection failure into a short reason.
  Messages show URLs only through :func:`redact`: never user info or a query string.
* The response-header phase of every request of :func:`session` (status line and headers,
  however slowly they come) ends when the stall budget left runs out
  (:class:`HeadersTooSlow`): no body byte arrives meanwhile, so it is all time without
  progress. The read timeout bounds each wait within it, as for the body.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import math
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias
from urllib.parse import SplitResult, unquote, urljoin, urlsplit, urlunsplit

from hubcore import config, runcontext, settings
from hubcore._version import VERSION
from hubcore.errors import (
    AuthenticationError,
    ConfigError,
    DownloadError,
    HubError,
    RepoNotFoundError,
    causes,
)
from hubcore.store.addresses import is_internal_host
from hubcore.store.redaction import public_query, redact, shown_url, shown_urls, url_identity

if TYPE_CHECKING:
    import requests

__all__ = [
    "Credentials",
    "HeadersTooSlow",
    "StallClock",
    "bound_headers",
    "describe_failure",
    "error_for",
    "failure_kind",
    "get",
    "headers_charged_to",
    "is_transient",
    "limit_wait",
    "origin",
    "public_query",
    "read_pieces",
    "redact",
    "remote_text",
    "rewrite_url",
    "send",
    "session",
    "shown_url",
    "status_error",
    "status_text",
    "url_identity",
]

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 10
USER_AGENT = f"hubcore/{VERSION}"
REDIRECTS = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}

#: scheme, lower-case host, port (the scheme's default port when the URL names none)
Origin: TypeAlias = tuple[str, str, int | None]

_local = threading.local()


def session() -> requests.Session:
    """A per-thread session (connection reuse), with proxies and CA bundles from the env."""
    current: requests.Session | None = getattr(_local, "session", None)
    if current is None:
        import requests  # imported on first use: it is slow to import

        current = requests.Session()
        current.headers["User-Agent"] = USER_AGENT
        adapter = _adapter_class()()
        current.mount("http://", adapter)
        current.mount("https://", adapter)
        _local.session = current
    return current


def origin(url: str) -> Origin:
    """The origin of *url*: ``(scheme, host, port)``, lower-cased, default ports filled in.

    A URL whose authority parsers read differently (a backslash, whitespace or a control
    character in it: ``http://a:1\\@b:2/`` is ``b`` to urllib and ``a`` to urllib3) is
    refused with :class:`DownloadError`, so the origin judged is the one connected to.
    """
    parts = urlsplit(url)
    if any(c == "\\" or c.isspace() or ord(c) < 32 or ord(c) == 127 for c in parts.netloc):
        raise DownloadError(
            f"refusing {redact(url)!r}: its host part holds a backslash, space or control "
            "character, which HTTP clients read differently"
        )
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        raise DownloadError(f"{redact(url)} has an invalid port") from None
    if scheme in ("http", "https") and not parts.hostname:  # refused at once, not retried
        raise DownloadError(f"{redact(url)!r} names no host; write http(s)://HOST/...")
    return scheme, (parts.hostname or "").lower(), port or DEFAULT_PORTS.get(scheme)


class Credentials:
    """Authentication headers per origin; sent only there, never shown by ``repr``.

    Keys are URLs (``https://gitlab.example:8443`` or any URL of that origin): the scheme,
    host and port all have to match for the headers to be sent.
    """

    def __init__(self, headers_by_origin: Mapping[str, Mapping[str, str]]):
        self._by_origin: dict[Origin, dict[str, str]] = {}
        for base, headers in headers_by_origin.items():
            if "://" not in base:
                raise ValueError(f"credentials need an origin such as https://{base}")
            self._by_origin[origin(base)] = dict(headers)

    def headers_for(self, url: str) -> dict[str, str]:
        """The headers for *url*'s origin (none for any other origin)."""
        try:
            key = origin(url)
        except HubError:
            return {}
        return dict(self._by_origin.get(key, {}))

    def __repr__(self) -> str:
        names = sorted(f"{s}://{h}:{p}" for s, h, p in self._by_origin)
        return f"Credentials(origins={names})"


# -- requests -------------------------------------------------------------------------------------


def send(
    url: str,
    *,
    credentials: Credentials | None = None,
    headers: Mapping[str, str] | None = None,
    stream: bool = False,
    timeout: tuple[float, float] | None = None,
    mirror: bool = True,
    method: str = "GET",
    data: bytes | None = None,
    clock: StallClock | None = None,
) -> requests.Response:
    """GET (or *method*) *url* after mirror rewriting (unless *mirror* is false: the URL came
    from an earlier response), following redirects by hand so that credentials reach only their own
    origin and ``https`` is not silently downgraded. Returns the final response whatever its
    status; connection failures raise ``requests.RequestException``. *data* is the request
    body (a webhook's POST). The response headers of every hop must come within the stall
    budget left on *clock* (the transfer's; default: the one of an enclosing
    :func:`headers_charged_to`, else a new one for this call, which the redirects share); a
    timeout whose cause is :class:`HeadersTooSlow` says so (:func:`describe_failure`)."""
    if timeout is None:  # the configured timeouts, the same for every transport
        timeout = (settings.current().connect_timeout, settings.current().read_timeout)
    clock = clock or getattr(_local, "clock", None) or StallClock()  # hops share one budget
    with headers_charged_to(clock):
        response = _send(url, credentials, headers, True, timeout, mirror, method, data)
    if not stream:  # requests would read it with the read timeout alone: a drip never ends
        _read_whole(response, clock, timeout[1])
    return response


def _read_whole(response: requests.Response, clock: StallClock, read_timeout: float) -> None:
    """Read the body of *response* into it (``.content``) within the stall budget of *clock*
    (:func:`read_piece` with :meth:`StallClock.cap`): a server dripping its body is cut off
    like a download. A spent budget is a ``requests.ReadTimeout`` naming it."""
    import requests

    pieces: list[bytes] = []

    def arrived(count: int) -> None:
        clock.arrived(count)
        if clock.spent():
            raise _BudgetSpent()

    try:
        while piece := read_piece(
            response, 1 << 20, arrived, decode=True, wait=lambda: clock.cap(read_timeout)
        ):
            pieces.append(piece)
    except Exception as exc:
        response.close()
        if isinstance(exc, _BudgetSpent) or clock.spent():
            raise requests.ReadTimeout(
                f"the body came slower than {MIN_PROGRESS >> 10} KiB within the stall budget "
                f"(HUBCORE_STALL_BUDGET={clock.budget:g} s)"
            ) from None
        if isinstance(exc, requests.RequestException):
            raise
        raise requests.ConnectionError(str(exc)) from exc
    response._content = b"".join(pieces)
    response._content_consumed = True  # type: ignore[attr-defined]


class _BudgetSpent(Exception):
    """The stall budget ran out while a body was read."""


@contextlib.contextmanager
def headers_charged_to(clock: StallClock) -> Iterator[None]:
    """Within the block, the response-header phase of this thread's requests (through
    :func:`session` or a manager given to :func:`bound_headers`) is charged to *clock*, the
    transfer's stall clock; outside any such block each request gets a fresh budget."""
    previous = getattr(_local, "clock", None)
    _local.clock = clock
    try:
        yield
    finally:
        _local.clock = previous


def _send(
    url: str,
    credentials: Credentials | None,
    headers: Mapping[str, str] | None,
    stream: bool,
    timeout: tuple[float, float],
    mirror: bool,
    method: str,
    data: bytes | None,
) -> requests.Response:
    target = rewrite_url(url) if mirror else url
    encrypted = False  # once a hop was https, plain http needs the user's allowance
    for _ in range(MAX_REDIRECTS + 1):
        scheme, host, _port = origin(target)
        encrypted = encrypted or scheme == "https"
        if runcontext.public_addresses_only() and is_internal_host(host):
            raise DownloadError(
                f"refusing {redact(target)}: it is on {host}, a loopback, private or link-local "
                "address, and the repository asking for it is not trusted (trust it, or set "
                "HUBCORE_ALLOW_PRIVATE_URLS=1)"
            )
        request_headers = dict(headers or {})
        if credentials is not None:
            request_headers.update(credentials.headers_for(target))
        response = session().request(
            method,
            target,
            headers=request_headers,
            data=data,
            stream=stream,
            allow_redirects=False,
            timeout=timeout,
        )
        if response.status_code not in REDIRECTS:
            return response
        location = response.headers.get("Location")
        response.close()
        if not location:
            raise DownloadError(f"{redact(target)} redirected without a Location")
        following = urljoin(target, location)
        _check_redirect(target, following, encrypted)
        target = following
        logger.debug("redirected to %s", redact(target))
    raise DownloadError(f"too many redirects fetching {redact(url)}")


#: Bytes that count as progress for a stall budget: fewer are a drip, not a transfer.
MIN_PROGRESS = 64 << 10
#: The shortest wait a capped timeout is given (a socket timeout of 0 would not block at all).
_MIN_WAIT = 0.001


class StallClock:
    """The stall budget of one transfer: ``HUBCORE_STALL_BUDGET`` seconds (*budget*; <= 0: no
    limit) without progress, counted across attempts, timeouts and backoff.

    The one place this rule lives, for every transport (HTTP weights and archives, git over
    smart HTTP, ``git://`` and SSH): call :meth:`arrived` with the bytes that arrive, cut every
    wait (connect, read, backoff) with :meth:`cap`, so that an attempt under way when the
    budget runs out ends at once instead of by its own timeouts, and call :meth:`failed` when
    an attempt fails and another will replace it.

    The rule:

    * *Progress* is :data:`MIN_PROGRESS` new bytes since the clock last moved: a drip of short
      reads is not progress, however steady.
    * Time since the last progress runs against the budget, wherever it is spent: connecting,
      waiting for response headers (no body byte arrives meanwhile), reading, backing off.
    * Progress restarts that count, except for a stall that ended an attempt: once an attempt
      failed, the whole stretch from the last progress to the next one (the dead connection's
      wait until its timeout fired, the backoff, the new connection's wait for its first
      bytes) stays *charged*. A server that gives every new connection a burst of new bytes
      and then stalls runs out of budget after about the budget, not after
      ``HUBCORE_RETRIES`` stalls.
    * The charge is forgiven once progress has been sustained: when the transfer keeps making
      progress, without another failed attempt, for a whole budget after it. A link that
      hiccups now and then, or a steady trickle of at least :data:`MIN_PROGRESS` per budget,
      completes.
    * Bytes fetched *again* (a retry without Range) are not progress: each
      :data:`MIN_PROGRESS` of them gives back the time they took to come, never the stall
      before them.
    """

    def __init__(self, budget: float | None = None):
        self.budget = settings.current().stall_budget if budget is None else budget
        self._last = time.monotonic()
        self._since = 0  # new bytes since the clock last restarted, across reads and attempts
        self._again = 0  # bytes fetched again since *_again_from* (this attempt)
        self._again_from: float | None = None
        self._charged = 0.0  # seconds of stalls that ended attempts, not yet forgiven
        self._failed = False  # an attempt failed since the last progress
        self._steady_from = self._last  # progress without a failed attempt since then

    def progressed(self) -> None:
        """New bytes arrived: the stall clock starts again (see the class for what stays)."""
        now = time.monotonic()
        if self._failed:  # a fresh connection's bytes do not forgive the stall before them
            self._charged += now - self._last
            self._failed = False
            self._steady_from = now
        elif self._charged and now - self._steady_from >= self.budget:
            self._charged = 0.0  # a whole budget of sustained progress
        self._last = now
        self._since = 0

    def failed(self) -> None:
        """An attempt failed (timed out, broke, was refused) and another will follow: the
        stretch without progress that it ended in stays charged (see the class)."""
        self._failed = True

    def arrived(self, count: int, *, again: bool = False) -> bool:
        """*count* bytes arrived; True if that moved the clock back.

        New bytes restart the clock once :data:`MIN_PROGRESS` of them have come since it last
        did (a drip of short reads never does). Bytes fetched *again* (a retry without Range)
        are a transfer that is alive, not progress: each :data:`MIN_PROGRESS` of them gives
        back the time they took to come, never the time stalled before them (a server that
        resends the same start and stalls still runs out of budget)."""
        if not again:
            self._since += count
            if self._since < MIN_PROGRESS:
                return False
            self.progressed()
            return True
        now = time.monotonic()
        if self._again_from is None:
            self._again_from, self._again = now, 0
        self._again += count
        if self._again < MIN_PROGRESS:
            return False
        self._last = min(now, self._last + (now - self._again_from))
        self._again_from, self._again = now, 0
        return True

    def new_attempt(self) -> None:
        """A new attempt begins: the time until its bytes come is not theirs to give back."""
        self._again_from = None

    def stalled_for(self) -> float:
        """Seconds without progress charged to the budget: since new bytes last arrived (or
        since the transfer began), plus the stalls that ended attempts (see the class)."""
        return self._charged + time.monotonic() - self._last

    def left(self) -> float:
        """Seconds of the budget left (negative once spent; infinite without a budget)."""
        return self.budget - self.stalled_for() if self.budget > 0 else math.inf

    def spent(self) -> bool:
        """Whether the budget has run out."""
        return self.left() <= 0

    def cap(self, seconds: float) -> float:
        """*seconds* cut to the budget left, for a timeout or a backoff wait."""
        return max(min(seconds, self.left()), _MIN_WAIT)


# -- the response-header phase ---------------------------------------------------------------


class HeadersTooSlow(DownloadError, TimeoutError):
    """A server that did not finish its status line and headers within the stall budget left.

    A :class:`TimeoutError` too, so that urllib3 and requests report it as a read timeout
    (``requests.ReadTimeout``, whose causes hold this error): callers that retry timeouts
    retry it, and :func:`describe_failure` gives its message."""

    def __init__(self, transport: str, host: str, seconds: float, budget: float):
        super().__init__(
            f"the {transport} server {host} did not finish its response headers within "
            f"{seconds:.3g} s, so the stall budget ran out (HUBCORE_STALL_BUDGET={budget:g}); "
            "raise it if the server is just slow"
        )


class _Watchdog:
    """One daemon thread that shuts down the socket of a request whose header phase outlasts
    its deadline: the read blocked in it returns at once (the request then fails)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._armed: dict[int, tuple[float, socket.socket]] = {}
        self._fired: set[int] = set()
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, sock: socket.socket, deadline: float) -> int:
        """Watch *sock* until :meth:`disarm`; shut it down at *deadline* (monotonic)."""
        with self._changed:
            token = next(self._tokens)
            self._armed[token] = (deadline, sock)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="hubcore-headers", daemon=True
                )
                self._thread.start()
            self._changed.notify()
            return token

    def disarm(self, token: int) -> bool:
        """Stop watching; True if the deadline had passed and the socket was shut down."""
        with self._changed:
            self._armed.pop(token, None)
            fired = token in self._fired
            self._fired.discard(token)
            return fired

    def _run(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                for token, (deadline, sock) in list(self._armed.items()):
                    if deadline <= now:
                        del self._armed[token]
                        self._fired.add(token)
                        with contextlib.suppress(OSError):
                            # the plain socket's shutdown: an SSLSocket's would drop its TLS
                            # state under the thread still reading
                            socket.socket.shutdown(sock, socket.SHUT_RDWR)
                soonest = min((deadline for deadline, _ in self._armed.values()), default=None)
                self._changed.wait(None if soonest is None else soonest - now)


_watchdog = _Watchdog()


def _new_watchdog() -> None:
    global _watchdog
    _watchdog = _Watchdog()  # a forked child has no watchdog thread, maybe a held lock


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_watchdog)


def _within_budget(connection: Any, transport: str, get_response: Callable[[], Any]) -> Any:
    """``get_response()`` (an urllib3 connection's), ended when this thread's stall clock
    (:func:`send`'s, else a new one) runs out before the headers are complete."""
    clock = getattr(_local, "clock", None) or StallClock()
    left = clock.left()
    sock = getattr(connection, "sock", None)
    if math.isinf(left) or not isinstance(sock, socket.socket):
        return get_response()
    began = time.monotonic()
    token = _watchdog.arm(sock, began + max(left, _MIN_WAIT))
    try:
        response = get_response()
    except BaseException:
        if not _watchdog.disarm(token):
            raise
        response = None
    else:
        if not _watchdog.disarm(token):
            return response
        response.close()  # cut at the budget: what was parsed is not the whole header
    host = f"{connection.host}:{connection.port}"
    raise HeadersTooSlow(transport, host, time.monotonic() - began, clock.budget) from None


@functools.cache
def _bounded_pools() -> dict[str, Any]:
    """urllib3's connection pools, with connections whose header phase is bounded."""
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    class BoundedHTTPConnection(HTTPConnection):
        def getresponse(self) -> Any:
            return _within_budget(self, "HTTP", super().getresponse)

    class BoundedHTTPSConnection(HTTPSConnection):
        def getresponse(self) -> Any:
            return _within_budget(self, "HTTPS", super().getresponse)

    class BoundedHTTPConnectionPool(HTTPConnectionPool):
        ConnectionCls = BoundedHTTPConnection

    class BoundedHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = BoundedHTTPSConnection

    return {"http": BoundedHTTPConnectionPool, "https": BoundedHTTPSConnectionPool}


def bound_headers(manager: Any) -> Any:
    """*manager* (an urllib3 ``PoolManager`` or ``ProxyManager``, such as a library's) with the
    header phase of its requests bounded like :func:`session`'s; a SOCKS proxy's manager is
    returned as it is. Returns *manager*."""
    from urllib3 import poolmanager

    if manager.pool_classes_by_scheme is poolmanager.pool_classes_by_scheme:
        manager.pool_classes_by_scheme = _bounded_pools()
    return manager


@functools.cache
def _adapter_class() -> Any:
    """A requests adapter whose pools (direct or through a proxy) use :func:`bound_headers`."""
    from requests.adapters import HTTPAdapter

    class BoundedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            bound_headers(self.poolmanager)

        def proxy_manager_for(self, proxy: Any, **kwargs: Any) -> Any:
            return bound_headers(super().proxy_manager_for(proxy, **kwargs))

    return BoundedAdapter


def limit_wait(response: Any, seconds: float) -> None:
    """Make the next reads of *response*'s body (a requests or urllib3 response) wait at most
    *seconds* each: the socket's timeout, which the client sets only when it sends a request."""
    sock = _body_socket(getattr(response, "raw", response))
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.settimeout(seconds)


def _body_socket(raw: Any) -> Any:
    """The socket a urllib3 response's body is read from, or None. With ``Connection: close``
    http.client drops ``connection.sock``; the body's own file object still holds it."""
    connection = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if sock is None:
        fp = getattr(getattr(raw, "_fp", None), "fp", None)  # http.client's socket file
        sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def read_piece(
    response: Any,
    size: int,
    arrived: Callable[[int], None],
    *,
    decode: bool = False,
    wait: Callable[[], float] | None = None,
    pieces: list[bytes] | None = None,
) -> bytes:
    """Up to *size* bytes of a streamed body (of a requests or a urllib3 response) (fewer only
    at its end), read as they arrive; *decode* undoes a Content-Encoding.

    ``arrived(n)`` is called with the size of every piece read, to feed a stall budget
    (:meth:`StallClock.arrived`, which counts across calls) and to raise when it is spent: a
    server dripping a byte now and then never trips a read timeout, and a plain
    ``read(size)`` would wait for all *size* bytes, however slowly they come. *wait* gives the
    longest wait for each read (:meth:`StallClock.cap`). *pieces*, if given, collects the
    pieces as they arrive: what came before a read failed (a download resumes after it).
    """
    got = read_pieces(response, size, arrived, decode=decode, wait=wait, pieces=pieces)
    return got[0] if len(got) == 1 else b"".join(got)


def read_pieces(
    response: Any,
    size: int,
    arrived: Callable[[int], None],
    *,
    decode: bool = False,
    wait: Callable[[], float] | None = None,
    pieces: list[bytes] | None = None,
) -> list[bytes]:
    """:func:`read_piece`, its pieces as they came (no joined copy: a writer that takes a
    list, such as ``os.pwritev``, saves copying every byte once more).

    Each read asks for what is waiting on the socket (at least :data:`PIECE`, at most what
    is left of *size*): a read allocates a buffer of the size it asks for and shrinks it to
    what came, and asking for a whole 8 MiB to receive one megabyte made the allocator map
    and unmap every buffer, a page fault for every 4 KiB received (a verified 1 GiB download
    took 15% longer). Over TLS a read brings one record at most, so it asks for :data:`PIECE`.
    """
    raw = getattr(response, "raw", response)
    pieces = [] if pieces is None else pieces
    sock = _body_socket(raw)
    filled = 0
    while filled < size:
        if wait is not None:
            limit_wait(raw, wait())
        asked = min(size - filled, max(_waiting(sock), PIECE))
        piece: bytes = raw.read1(asked, decode_content=decode)
        if not piece:
            break
        pieces.append(piece)
        filled += len(piece)
        arrived(len(piece))
    return pieces


#: The least a body read asks for (under the allocator's threshold for mapping a buffer).
PIECE = 64 << 10


def _waiting(sock: socket.socket | None) -> int:
    """Bytes received on plain TCP *sock* and not read yet (0 if unknown, or over TLS)."""
    if sock is None or hasattr(sock, "cipher"):
        return 0
    try:
        import fcntl
        import termios

        waiting = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    except (ImportError, OSError, ValueError):
        return 0
    return int.from_bytes(waiting, sys.byteorder, signed=True)


def _check_redirect(source: str, target: str, encrypted: bool) -> None:
    """Refuse a hop to a scheme other than http(s), and to plain http after any https hop
    (unless the user allowed that host); *encrypted*: an earlier hop was https."""
    origin(target)  # refuses hosts that clients parse differently
    scheme = urlsplit(target).scheme.lower()
    if scheme not in ("http", "https"):
        raise DownloadError(
            f"{redact(source)} redirected to a {scheme or 'schemeless'} URL; hubcore follows "
            "redirects only to http and https"
        )
    if encrypted and scheme == "http" and not _http_allowed(target):
        host = urlsplit(target).hostname or ""
        raise DownloadError(
            f"{redact(source)} redirected to plain http ({redact(target)}); refused, because "
            "the rest of the transfer would not be encrypted. If you trust that network, allow "
            f"the host with HUBCORE_ALLOW_HTTP={host}"
        )


def _http_allowed(url: str) -> bool:
    """Whether ``HUBCORE_ALLOW_HTTP`` lists *url*'s host (any port) or its ``host:port``."""
    _, host, port = origin(url)
    for entry in settings.current().allow_http:
        allowed = urlsplit(f"//{entry}")
        try:
            allowed_port = allowed.port
        except ValueError:
            raise ConfigError(f"HUBCORE_ALLOW_HTTP entry {entry!r} has an invalid port") from None
        if (allowed.hostname or "") == host and allowed_port in (None, port):
            return True
    return False


def get(
    url: str,
    *,
    credentials: Credentials | None = None,
    headers: Mapping[str, str] | None = None,
    stream: bool = False,
    what: str = "",
    token_hint: str = "",
) -> requests.Response:
    """:func:`send`, then map failures to hub errors with :func:`status_error` (a missing
    page is a missing repository: :class:`RepoNotFoundError`). *what* names the thing
    fetched in those messages ("the refs of github:owner/repo"); *token_hint* is added to
    authentication errors."""
    import requests

    label = what or redact(url)
    try:
        response = send(url, credentials=credentials, headers=headers, stream=stream)
    except requests.RequestException as exc:
        raise DownloadError(f"cannot fetch {label}: {describe_failure(exc)}") from None
    error = error_for(response, label, token_hint=token_hint)
    if error is not None:
        raise error
    return response


# -- errors ---------------------------------------------------------------------------------------

TRANSIENT_STATUSES = frozenset({408, 425, 429})


def is_transient(status: int) -> bool:
    """Whether an HTTP *status* is worth retrying (408, 425, 429 and 5xx)."""
    return status in TRANSIENT_STATUSES or status >= 500


def status_error(
    status: int,
    reason: str | None,
    label: str,
    *,
    resource: Literal["repository", "file"] = "repository",
    token_hint: str = "",
) -> HubError | None:
    """The hub error for an HTTP *status* (None below 400): the one map for every caller.

    404/410 is :class:`RepoNotFoundError` for a *resource* that is a repository and
    :class:`DownloadError` for a file (a weight URL); 401/403 is
    :class:`AuthenticationError` (with *token_hint*); anything else is
    :class:`DownloadError`. *label* names what was fetched, already redacted.
    """
    if status < 400:
        return None
    said = status_text(status, reason)
    if status in (404, 410):
        if resource == "repository":
            return RepoNotFoundError(f"{label} not found ({said}). Check the name and the host.")
        return DownloadError(f"{label} does not exist ({said}). Check the URL.")
    if status in (401, 403):
        why = (
            "the repository may be private or the token may lack permission."
            if resource == "repository"
            else "the server wants credentials (https://user:password@host/... in the URL) or "
            "the ones given lack permission."
        )
        hint = f" {token_hint}" if token_hint else ""
        return AuthenticationError(f"access to {label} was refused ({said}): {why}{hint}")
    if status == 416:
        return DownloadError(f"{label}: the server rejected the byte range ({said})")
    return DownloadError(f"fetching {label} failed: {said}")


def error_for(
    response: requests.Response,
    label: str,
    *,
    resource: Literal["repository", "file"] = "repository",
    token_hint: str = "",
) -> HubError | None:
    """:func:`status_error` for *response*, with the first line of the server's error body
    (bounded, redacted), which often says what is wrong; the response is closed."""
    error = status_error(
        response.status_code, response.reason, label, resource=resource, token_hint=token_hint
    )
    if error is None:
        return None
    said = _first_body_line(response)
    response.close()
    return type(error)(f"{error} The server said: {said}") if said else error


def _first_body_line(response: requests.Response) -> str:
    try:
        # read into .content already (within the budget)?
        if response._content_consumed:  # type: ignore[attr-defined]
            head = (response.content or b"")[:512]
        else:  # a streamed body, still unread: read as a download reads, within the budget
            clock = getattr(_local, "clock", None) or StallClock()

            def arrived(count: int) -> None:
                clock.arrived(count)
                if clock.spent():
                    raise _BudgetSpent()

            wait = settings.current().read_timeout
            head = read_piece(response, 512, arrived, decode=True, wait=lambda: clock.cap(wait))
    except Exception:  # the body is a courtesy; the status already says enough
        return ""
    for line in re.sub(rb"<[^>]*>", b" ", head).splitlines():
        text = remote_text(line, limit=200)
        if text:
            return text
    return ""


#: Terminal escape sequences (CSI, OSC, two-byte ESC) a remote may send to a user's terminal.
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-_]?)")
#: What a remote's text is cut to: enough for any real message (an SSH host-key warning is
#: about 1,000 characters), never a screenful a hostile server chose.
REMOTE_TEXT_LIMIT = 2000


def remote_text(data: bytes | str, limit: int = REMOTE_TEXT_LIMIT) -> str:
    """What a remote wrote (a server's error body or ``ERR`` line, an SSH client's stderr),
    fit for one ``error:`` line: decoded, terminal escapes and control characters removed,
    lines joined with ``; ``, redacted (:func:`redact`), and cut at *limit* characters with
    the number left out said, so that a hostile server cannot paint or flood the terminal."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = _ESCAPES.sub("", text)
    lines = ("".join(c for c in line if c.isprintable()) for line in text.splitlines())
    joined = "; ".join(" ".join(line.split()) for line in lines if line.strip())
    shown = redact(joined)
    if len(shown) <= limit:
        return shown
    return f"{shown[:limit]}... ({len(shown) - limit} more characters)"


def status_text(status: int, reason: str | None) -> str:
    """``HTTP 503 Service Unavailable``, with the server's reason phrase cleaned up."""
    return f"HTTP {status} {_printable(reason)}".rstrip()


#: What a connection failure means, by words its chain's messages contain.
_FAILURE_KINDS = (
    ("refused", "connection refused"),
    ("reset", "connection reset by the server"),
    ("name or service not known", "host name not found"),
    ("nodename nor servname", "host name not found"),
    ("name resolution", "host name not found"),
    ("no address associated", "host name not found"),
    ("incompleteread", "connection closed before the body ended"),
    ("connection broken", "connection broken"),
    ("aborted", "connection aborted"),
)


def failure_kind(exc: BaseException) -> str | None:
    """What a connection failure is (``"host name not found"``, ``"connection refused"``,
    ...: the first words of :func:`describe_failure`), if it is one of the known kinds."""
    lowered = str(exc).lower()
    return next((kind for needle, kind in _FAILURE_KINDS if needle in lowered), None)


def describe_failure(exc: BaseException, read_timeout: float | None = None) -> str:
    """A short reason for a connection failure (timeout, refused, reset, TLS ...) without
    URLs, user info or query strings, followed by the innermost error's own words where they
    say more (``host name not found: Name or service not known``)."""
    import requests
    from urllib3.exceptions import ConnectTimeoutError
    from urllib3.exceptions import TimeoutError as Urllib3Timeout

    slow_headers = _cause(exc, HeadersTooSlow)
    if slow_headers is not None:
        return str(slow_headers)
    text = remote_text(_scrub(str(exc)))
    if isinstance(exc, requests.ConnectTimeout | ConnectTimeoutError):
        return "timed out connecting"
    if isinstance(exc, requests.Timeout | Urllib3Timeout | socket.timeout | TimeoutError):
        if "HUBCORE_STALL_BUDGET" in text:  # a body read within the budget (_read_whole)
            return text
        quiet = f" (no data for {read_timeout:.3g} s)" if read_timeout else ""
        return f"timed out waiting for data{quiet}"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"TLS failure: {text}"
    kind = failure_kind(exc)
    if kind is not None:
        words = _root_words(exc)
        return f"{kind}: {words}" if words and words.lower() != kind else kind
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _root_words(exc: BaseException) -> str:
    """The innermost error's own words (an OS error's text without its number)."""
    *_, root = causes(exc)
    said = root.strerror if isinstance(root, OSError) and root.strerror else str(root)
    return remote_text(_scrub(said), limit=300)


def _cause(exc: BaseException, kind: type[HubError]) -> HubError | None:
    """The error of *kind* in *exc*'s chain (:func:`hubcore.errors.causes`), if any."""
    return next((e for e in causes(exc) if isinstance(e, kind)), None)


def _scrub(text: str) -> str:
    """A library's error text as a message shows it: through the one redactor, without
    requests' "with url: ..." (the message names the URL), with query strings of bare file
    names dropped too and long URLs cut in their middle."""
    text = re.sub(r"with url: \S+", "", text)
    text = re.sub(r"\?[^\s'\"()]*", "", redact(text))  # query strings of bare paths
    return shown_urls(text)


def _printable(text: str | None) -> str:
    return "".join(c for c in (text or "") if c.isprintable())[:80]


# -- mirrors --------------------------------------------------------------------------------------


def rewrite_url(url: str, table: Mapping[str, str] | None = None) -> str:
    """Apply the mirror (from *table*, default :func:`hubcore.config.mirrors`) whose prefix
    matches *url* in the most path segments.

    A prefix matches when scheme, host and port are equal and its path segments are the
    first segments of *url*'s path after dot segments are resolved; the rest of the path,
    the query and the fragment are appended to the replacement. User info in *url* is kept
    only when the mirror has the same origin. The result is checked to lie inside the
    mirror; :class:`DownloadError` if it does not. URLs no prefix matches are unchanged.
    """
    table = config.mirrors() if table is None else table
    if not table or "://" not in url:
        return url
    parts = urlsplit(url)
    source = origin(url)
    segments = _segments(parts.path)
    best: tuple[int, str, str] | None = None
    for prefix, replacement in table.items():
        if "://" not in prefix:
            raise ConfigError(f"mirror prefix {prefix!r} is not a URL (scheme://host/path)")
        wanted = _strip(_segments(urlsplit(prefix).path))
        if origin(prefix) != source or [unquote(s) for s in segments[: len(wanted)]] != [
            unquote(s) for s in wanted
        ]:
            continue
        if best is None or len(wanted) > best[0]:
            best = (len(wanted), prefix, replacement)
    if best is None:
        return url
    depth, prefix, replacement = best
    rest = segments[depth:]
    local = "://" not in replacement or replacement.lower().startswith("file:")
    if local and any(re.search(r"%(2f|5c)", segment, re.IGNORECASE) for segment in rest):
        # an encoded separator is one segment here but two once a file path is decoded
        raise DownloadError(
            f"refusing to rewrite {redact(url)} to the mirror {redact(replacement)}: its path "
            "holds an encoded '/' or '\\'"
        )
    rewritten = _join(replacement, rest, parts, source)
    _check_inside(rewritten, replacement, url)
    logger.debug("mirror: %s -> %s", prefix, redact(replacement))
    return rewritten


def _segments(path: str) -> list[str]:
    """Path segments with ``.`` and ``..`` (also percent-encoded) resolved (RFC 3986 5.2.4)."""
    if not path:
        return []
    raw = path[1:].split("/") if path.startswith("/") else path.split("/")
    out: list[str] = []
    for index, segment in enumerate(raw):
        last = index == len(raw) - 1
        plain = unquote(segment)
        if plain in (".", ".."):
            if plain == ".." and out:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(segment)
    return out


def _strip(segments: list[str]) -> list[str]:
    """Without trailing empty segments: ``/weights/`` and ``/weights`` name the same folder."""
    while segments and not segments[-1]:
        segments = segments[:-1]
    return segments


def _join(replacement: str, rest: list[str], parts: SplitResult, source: Origin) -> str:
    if "://" not in replacement:  # a local folder
        base = replacement.rstrip("/\\")
        return "/".join([base, *rest]) if rest else base
    target = urlsplit(replacement)
    path_segments = _strip(_segments(target.path)) + rest
    path = "/" + "/".join(path_segments) if path_segments else ""
    netloc = target.netloc
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    if userinfo and "@" not in netloc and origin(replacement) == source:
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit((target.scheme, netloc, path, parts.query, parts.fragment))


def _check_inside(rewritten: str, replacement: str, url: str) -> None:
    """Refuse a rewrite that would leave the mirror's origin or folder."""
    if "://" not in replacement:
        base = replacement.rstrip("/\\")
        inside = rewritten == base or rewritten.startswith(base + "/")
        inside = inside and ".." not in rewritten[len(base) :].split("/")
    else:
        mirror_path = _strip(_segments(urlsplit(replacement).path))
        got = urlsplit(rewritten).path
        segments = got[1:].split("/") if got.startswith("/") else ([got] if got else [])
        inside = (
            origin(rewritten) == origin(replacement)
            and segments[: len(mirror_path)] == mirror_path
            and not any(unquote(s) in (".", "..") for s in segments)
        )
    if not inside:
        raise DownloadError(
            f"refusing the mirror rewrite of {redact(url)}: the result would leave the mirror "
            f"{redact(replacement)}"
        )
