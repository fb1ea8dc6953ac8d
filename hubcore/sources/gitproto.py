"""Git's smart protocol for the git source: transports that never wait forever, and a small
protocol-v2 client for smart HTTP.

Every transport reads its limits from :func:`limits` (``HUBCORE_CONNECT_TIMEOUT``,
``HUBCORE_READ_TIMEOUT`` and ``HUBCORE_STALL_BUDGET``, from :mod:`hubcore.settings` as the
HTTP client and the download engine read them): connecting may take the connect timeout, and no
read waits longer than the read timeout or the stall budget left, whichever is smaller. The
stall budget counts the seconds in which fewer than :data:`hubcore.store.http.MIN_PROGRESS`
new bytes arrived (:class:`hubcore.store.http.StallClock`, one per listing or fetch), so a
server that drips a byte now and then is cut off too. A transport that runs out of time raises
:class:`TransportTimeout`, which names the transport, the host and the limit that fired.

* smart HTTP: :class:`SmartHTTP` speaks git's protocol itself with ``requests``: v2 (one
  ``ls-refs`` filtered by ``ref-prefix``, one ``fetch``), or for servers without v2 one ref
  advertisement and one v0 ``upload-pack`` request asking for what it offered;
* ``git://``: dulwich's client over a socket with those timeouts;
* SSH: dulwich's client over the SSH program git would run (``GIT_SSH_COMMAND``, then
  ``core.sshCommand``, then ``GIT_SSH``, then ``ssh``), with ``ConnectTimeout`` and
  ``ServerAlive*`` options for OpenSSH, and killed when it stays silent past the limits.
"""

from __future__ import annotations

import math
import os
import select
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any, ClassVar, NoReturn
from urllib.parse import urlsplit

from hubcore.errors import DownloadError, causes
from hubcore.records import Record
from hubcore.store import http

if TYPE_CHECKING:
    import subprocess

    import requests

__all__ = [
    "Limits",
    "Listing",
    "NotV2",
    "RemoteError",
    "SmartHTTP",
    "TransportTimeout",
    "dulwich_client",
    "limits",
    "ssh_client",
    "timeout_error",
]

AGENT = b"agent=hubcore/0.1"
_FLUSH = b"0000"
_DELIM = b"0001"


# -- limits --------------------------------------------------------------------------------
class Limits(Record):
    """Seconds a git transport may wait: to connect, for each read, without any progress."""

    connect: float
    read: float
    stall: float

    def read_wait(self) -> tuple[float, str]:
        """The longest wait for one read, and the name of the limit that sets it."""
        if self.stall < self.read:
            return self.stall, "stall budget HUBCORE_STALL_BUDGET"
        return self.read, "read timeout HUBCORE_READ_TIMEOUT"


def limits() -> Limits:
    """The git transports' limits: the HTTP client's connect and read timeouts and the weight
    downloads' stall budget, the same settings (:mod:`hubcore.settings`) every transport reads.
    """
    from hubcore import settings

    current = settings.current()  # not the download engine's module: slow to import
    return Limits(
        connect=float(current.connect_timeout),
        read=float(current.read_timeout),
        stall=float(current.stall_budget),
    )


class TransportTimeout(OSError):
    """A git server that did not connect or answer in time."""

    def __init__(self, transport: str, host: str, what: str, seconds: float, limit: str):
        super().__init__(
            f"the {transport} server {host} {what} within {seconds:g} s ({limit}); "
            "raise the limit if the server is just slow"
        )


def _connect_limit(transport: str, host: str, seconds: float) -> TransportTimeout:
    return TransportTimeout(
        transport, host, "did not accept a connection", seconds, "HUBCORE_CONNECT_TIMEOUT"
    )


def _read_limit(
    transport: str, host: str, lim: Limits, clock: http.StallClock | None = None
) -> TransportTimeout:
    """The timeout of a read: the stall budget's if it is spent, else the read timeout's."""
    if clock is not None and clock.spent():
        return _stalled(transport, host, clock)
    seconds, limit = lim.read_wait()
    return TransportTimeout(transport, host, "sent nothing", seconds, limit)


def _stalled(transport: str, host: str, clock: http.StallClock) -> TransportTimeout:
    return TransportTimeout(
        transport,
        host,
        f"sent less than {http.MIN_PROGRESS // 1024} KiB of new data",
        clock.budget,
        "stall budget HUBCORE_STALL_BUDGET",
    )


class _Progress:
    """A :class:`~hubcore.store.http.StallClock` fed by the bytes of one transfer: every
    :data:`~hubcore.store.http.MIN_PROGRESS` bytes restart it; :meth:`check` raises when the
    budget is spent between them (a drip)."""

    def __init__(self, transport: str, host: str, lim: Limits):
        self.transport, self.host, self.limits = transport, host, lim
        self.clock = http.StallClock(lim.stall)

    def arrived(self, count: int) -> None:
        """*count* new bytes arrived (counted across reads: dulwich reads a line at a time)."""
        if not self.clock.arrived(count):
            self.check()

    def check(self) -> None:
        """Raise :class:`TransportTimeout` once the stall budget is spent."""
        if self.clock.spent():
            raise _stalled(self.transport, self.host, self.clock)

    def read_wait(self) -> float:
        """The longest wait for the next read: the read timeout, cut to the budget left."""
        self.check()
        return self.clock.cap(self.limits.read)

    def connect_wait(self) -> float:
        """The longest wait to connect: the connect timeout, cut to the budget left."""
        self.check()
        return self.clock.cap(self.limits.connect)


def timeout_error(url: str, exc: BaseException) -> TransportTimeout | None:
    """*exc* as a :class:`TransportTimeout` of the transport for *url*, if it is a timeout
    (urllib3's, inside dulwich's HTTP client, or a socket's)."""
    if isinstance(exc, TransportTimeout):
        return exc
    parts = urlsplit(url)
    transport = {"http": "smart HTTP", "https": "smart HTTP", "git": "git://"}.get(
        parts.scheme.lower(), "SSH"
    )
    host = parts.netloc.rpartition("@")[2]
    name = type(exc).__name__
    if name in ("ConnectTimeoutError", "ConnectTimeout"):
        return _connect_limit(transport, host, limits().connect)
    if name in ("ReadTimeoutError", "ReadTimeout") or isinstance(exc, TimeoutError):
        return _read_limit(transport, host, limits())
    return None


# -- pkt-lines -----------------------------------------------------------------------------
def pkt(data: bytes) -> bytes:
    """*data* as one pkt-line."""
    return b"%04x" % (len(data) + 4) + data


class RemoteError(DownloadError):
    """The server reported an error in the protocol (an ``ERR`` line or side band 3)."""


class NotV2(Exception):
    """The server did not answer in protocol v2 (the caller falls back to v0)."""


class _Packets:
    """pkt-lines read from a byte stream; ``None`` stands for flush and delim packets."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buffer = bytearray()
        self.received = 0

    def _exact(self, size: int) -> bytes:
        while len(self._buffer) < size:
            chunk = next(self._chunks, b"")
            if not chunk:
                raise _Truncated()
            self.received += len(chunk)
            self._buffer += chunk
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def rest(self) -> Iterator[bytes]:
        """The bytes after the last packet read, to the end of the stream (a raw pack)."""
        if self._buffer:
            yield bytes(self._buffer)
            self._buffer.clear()
        for chunk in self._chunks:
            self.received += len(chunk)
            yield chunk

    def next(self) -> tuple[bytes | None, bytes]:
        """The next packet's payload (``None`` for a special packet) and its 4-byte head."""
        head = self._exact(4)
        try:
            size = int(head, 16)
        except ValueError:
            raise _Malformed(f"not a pkt-line length: {head!r}") from None
        if size < 4:
            return None, head
        payload = self._exact(size - 4)
        if payload.startswith(b"ERR "):
            raise RemoteError(f"the server said: {http.remote_text(payload[4:])}")
        return payload, head


class _Truncated(Exception):
    """The stream ended inside the protocol."""


class _Malformed(Exception):
    """The stream is not git's pkt-line format."""


# -- smart HTTP, protocol v2 ---------------------------------------------------------------
class Listing(Record):
    """Refs as listed by the server: ``{name: commit}`` (tags peeled) and HEAD's branch."""

    refs: dict[str, str]
    head: str | None


class SmartHTTP:
    """Protocol v2 over smart HTTP: ``ls-refs`` and ``fetch`` POSTs with ``requests``.

    A server that speaks v2 answers a POST without a prior ``info/refs`` request, so a ref
    listing costs one request and a fetch one more. Where the server does not answer in v2,
    :meth:`ls_refs` asks ``info/refs`` (with ``Git-Protocol: version=2``) which version it
    speaks; a v0 server's advertisement is returned as the listing, :attr:`v2` is False, and
    :meth:`fetch` posts a v0 request with the capabilities that advertisement offered: the
    refs are listed once, as by ``git clone`` against the same server.
    """

    # URLs whose server answered in v0, with the capabilities it advertised, for this process
    # (a failed v2 POST costs a request; the capabilities are what the v0 fetch may ask for)
    _v0_servers: ClassVar[dict[str, frozenset[bytes]]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, url: str, label: str):
        from hubcore import config

        self.original = url.rstrip("/")
        self.url = config.rewrite_url(url).rstrip("/")
        self.label = label
        self.host = urlsplit(self.url).netloc.rpartition("@")[2]
        self.limits = limits()
        self.progress = _Progress("smart HTTP", self.host, self.limits)
        self.requests = 0
        self.received = 0
        with self._lock:
            self.v2 = self.url not in self._v0_servers

    # -- requests ----------------------------------------------------------------------
    def ready(self) -> None:
        """Make the HTTP session now (importing the HTTP library), not at the first request."""
        http.session()

    def _post(self, body: bytes, *, v2: bool = True) -> requests.Response:
        import requests

        timeout = (self.progress.connect_wait(), self.progress.read_wait())
        self.requests += 1
        headers = {
            "Content-Type": "application/x-git-upload-pack-request",
            "Accept": "application/x-git-upload-pack-result",
            **({"Git-Protocol": "version=2"} if v2 else {}),
        }
        try:
            with http.headers_charged_to(self.progress.clock):  # the fetch's budget, not a new one
                response = http.session().post(
                    f"{self.url}/git-upload-pack",
                    data=body,
                    headers=headers,
                    stream=True,
                    allow_redirects=False,  # git never follows a redirected POST either
                    timeout=timeout,
                )
        except requests.RequestException as exc:
            self._raise(exc)
        if response.status_code in (401, 403):  # other refusals may be a v0 server's: see callers
            _status_error(response, self.label)
        return response

    def _raise(self, exc: BaseException) -> NoReturn:
        """Re-raise *exc*, as a :class:`TransportTimeout` if a limit fired."""
        import requests

        if isinstance(exc, requests.ConnectTimeout):
            if self.progress.clock.spent():
                raise _stalled("smart HTTP", self.host, self.progress.clock) from exc
            raise _connect_limit("smart HTTP", self.host, self.limits.connect) from exc
        if isinstance(exc, requests.Timeout) or _has_read_timeout(exc):
            raise _read_limit("smart HTTP", self.host, self.limits, self.progress.clock) from exc
        raise exc

    def _chunks(self, response: requests.Response) -> Iterator[bytes]:
        """The body of *response* as it arrives, every read within the read timeout and the
        stall budget left (a server dripping bytes is cut off at the budget)."""
        import requests
        from urllib3.exceptions import HTTPError

        progress = self.progress
        while True:
            try:
                piece = http.read_piece(
                    response,
                    http.MIN_PROGRESS,
                    progress.arrived,
                    decode=True,
                    wait=progress.read_wait,
                )
            except (requests.RequestException, HTTPError, OSError) as exc:
                self._raise(exc)
            if not piece:
                return
            yield piece

    def _v2_reply(self, response: requests.Response) -> _Packets:
        kind = response.headers.get("Content-Type", "")
        if response.status_code != 200 or kind != "application/x-git-upload-pack-result":
            response.close()
            raise NotV2()
        return _Packets(self._chunks(response))

    # -- ls-refs -----------------------------------------------------------------------
    def ls_refs(self, prefixes: Sequence[str]) -> Listing:
        """The refs whose names start with one of *prefixes*, with HEAD's target."""
        if self.v2:
            try:
                return self._ls_refs_v2(prefixes)
            except NotV2:
                pass
        return self._discover(prefixes)

    def _ls_refs_v2(self, prefixes: Sequence[str]) -> Listing:
        body = b"".join(
            [pkt(b"command=ls-refs\n"), pkt(AGENT + b"\n"), _DELIM, pkt(b"peel\n")]
            + [pkt(b"symrefs\n")]
            + [pkt(f"ref-prefix {prefix}\n".encode()) for prefix in prefixes]
            + [_FLUSH]
        )
        with self._post(body) as response:
            packets = self._v2_reply(response)
            refs: dict[str, str] = {}
            head: str | None = None
            try:
                while True:
                    line, _ = packets.next()
                    if line is None:
                        break
                    name, target, commit = _ls_refs_line(line)
                    if name == "HEAD" and target:
                        head = target
                    if commit:
                        refs[name] = commit
            except (_Truncated, _Malformed, RemoteError):
                raise NotV2() from None  # a v0 server choking on a v2 request
            finally:
                self.received += packets.received
        return Listing(refs, head)

    def _discover(self, prefixes: Sequence[str]) -> Listing:
        """``GET info/refs``: a v2 server says so (then ls-refs); a v0 one lists every ref."""
        from hubcore.sources.git_hosts import parse_ref_advertisement

        timeout = (self.progress.connect_wait(), self.progress.read_wait())
        self.requests += 1
        import requests

        try:
            response = http.send(
                f"{self.original}/info/refs?service=git-upload-pack",
                headers={"Git-Protocol": "version=2"},
                timeout=timeout,
                stream=True,
            )
            with response:
                _status_error(response, f"the refs of {self.label}")  # before the body closes
                data = b"".join(self._chunks(response))
            tail = "/info/refs?service=git-upload-pack"
            if response.url.endswith(tail):  # redirected: git posts to the new place too
                self.url = response.url[: -len(tail)]
        except requests.RequestException as exc:
            self._raise(exc)
        self.received += len(data)
        if b"version 2" in data[:64]:
            if not self.v2:  # it speaks v2 after all
                self.v2 = True
                with self._lock:
                    self._v0_servers.pop(self.url, None)
                return self._ls_refs_v2(prefixes)
            raise DownloadError(f"{self.label} announces git protocol v2 but does not speak it")
        if not data.startswith(b"001e# service=git-upload-pack"):
            raise DownloadError(
                f"{self.label} is not a smart-HTTP git server (a dumb server or a web page)"
            )
        refs, head = parse_ref_advertisement(data)
        with self._lock:
            self._v0_servers[self.url] = _capabilities(data)
        self.v2 = False
        return Listing(refs, head)

    # -- fetch -------------------------------------------------------------------------
    def fetch(self, wants: Sequence[str], depth: int | None, sink: IO[bytes]) -> None:
        """Fetch the pack of *wants* (*depth* commits deep, or all history) into *sink*: in
        v2, else (a server found to speak only v0) in v0."""
        if self.v2:
            try:
                self._fetch_v2(wants, depth, sink)
                return
            except NotV2:
                pass
        self._fetch_v0(wants, depth, sink)

    def _fetch_v2(self, wants: Sequence[str], depth: int | None, sink: IO[bytes]) -> None:
        args = [b"ofs-delta\n", b"no-progress\n"]
        args += [f"want {sha}\n".encode() for sha in wants]
        if depth:
            args.append(f"deepen {depth}\n".encode())
        args.append(b"done\n")
        body = b"".join(
            [pkt(b"command=fetch\n"), pkt(AGENT + b"\n"), _DELIM]
            + [pkt(a) for a in args]
            + [_FLUSH]
        )
        with self._post(body) as response:
            if response.status_code in (404, 410):  # listed a moment ago: gone, or no service
                _status_error(response, f"the git-upload-pack service of {self.label}")
            packets = self._v2_reply(response)
            try:
                _read_fetch_reply(packets, sink)
            except NotV2:
                with self._lock:
                    self._v0_servers.setdefault(self.url, frozenset())
                self.v2 = False
                raise
            except _Truncated:
                raise DownloadError(f"{self.label} closed the connection mid-fetch") from None
            except _Malformed as exc:
                raise DownloadError(f"{self.label} sent a broken fetch reply: {exc}") from None
            finally:
                self.received += packets.received

    def _fetch_v0(self, wants: Sequence[str], depth: int | None, sink: IO[bytes]) -> None:
        """One v0 ``upload-pack`` POST (stateless, as git's own over HTTP), asking only for
        capabilities the server advertised when its refs were listed."""
        with self._lock:
            offered = self._v0_servers.get(self.url)
        if not offered:  # listed by another process, or found to be v0 only by the fetch
            self._discover(["HEAD"])
            with self._lock:
                offered = self._v0_servers.get(self.url, frozenset())
        band = next((b for b in (b"side-band-64k", b"side-band") if b in offered), None)
        asked: list[bytes] = [band] if band else []
        asked += [c for c in (b"ofs-delta", b"no-progress") if c in offered]
        if depth and b"shallow" in offered:
            asked.append(b"shallow")
        else:
            depth = None  # a server that cannot cut history sends all of it
        first = f"want {wants[0]} ".encode() + b" ".join([*asked, AGENT]) + b"\n"
        lines = [first] + [f"want {sha}\n".encode() for sha in wants[1:]]
        if depth:
            lines.append(f"deepen {depth}\n".encode())
        body = b"".join(pkt(line) for line in lines) + _FLUSH + pkt(b"done\n")
        with self._post(body, v2=False) as response:
            _status_error(response, f"the git-upload-pack service of {self.label}")
            kind = response.headers.get("Content-Type", "")
            if kind != "application/x-git-upload-pack-result":
                raise DownloadError(
                    f"{self.label} answered a fetch with {kind or 'no content type'}, not a pack"
                )
            packets = _Packets(self._chunks(response))
            try:
                _read_v0_reply(packets, sink, sideband=band is not None)
            except _Truncated:
                raise DownloadError(f"{self.label} closed the connection mid-fetch") from None
            except _Malformed as exc:
                raise DownloadError(f"{self.label} sent a broken fetch reply: {exc}") from None
            finally:
                self.received += packets.received


def _capabilities(advertisement: bytes) -> frozenset[bytes]:
    """The capabilities a v0 ref advertisement offers (after the NUL of its first ref line)."""
    nul = advertisement.find(b"\0")
    if nul < 0:
        return frozenset()
    end = advertisement.find(b"\n", nul)
    return frozenset(advertisement[nul + 1 : end if end > 0 else None].split())


def _read_v0_reply(packets: _Packets, sink: IO[bytes], *, sideband: bool) -> None:
    """Skip the shallow lines and the ``NAK``, then copy the pack into *sink*: side band 1
    (band 3 is the server's error), or the raw bytes to the end without a side band."""
    while True:
        line, _ = packets.next()
        if line is None or line.startswith((b"shallow ", b"unshallow ")):
            continue
        if line.startswith((b"NAK", b"ACK ")):
            break
        raise _Malformed(f"expected NAK, not {line[:40]!r}")
    if not sideband:
        for chunk in packets.rest():
            sink.write(chunk)
        return
    _copy_sideband(packets, sink)


def _copy_sideband(packets: _Packets, sink: IO[bytes]) -> None:
    """Copy the side-band packets of a pack into *sink*, to the flush that ends them."""
    while True:
        line, head = packets.next()
        if line is None:
            if head == _FLUSH:
                return
            continue
        _sideband(line, sink)


def _sideband(line: bytes, sink: IO[bytes]) -> None:
    """One side-band packet: band 1 is the pack, band 2 progress (dropped), band 3 an error."""
    if not line:
        return  # an empty packet carries nothing
    band, data = line[0], line[1:]
    if band == 1:
        sink.write(data)
    elif band == 3:
        raise RemoteError(f"the server said: {http.remote_text(data)}")


def _ls_refs_line(line: bytes) -> tuple[str, str | None, str | None]:
    """``(name, symref target, commit)`` of one ``ls-refs`` line (peeled tags by commit)."""
    fields = line.decode("utf-8", "surrogateescape").rstrip("\n").split(" ")
    if len(fields) < 2:
        raise _Malformed(f"not a ref line: {line[:80]!r}")
    oid, name = fields[0], fields[1]
    target = None
    commit = None if oid == "unborn" else oid
    for attr in fields[2:]:
        if attr.startswith("symref-target:"):
            target = attr[len("symref-target:") :]
        elif attr.startswith("peeled:"):
            commit = attr[len("peeled:") :]
    if commit is not None and not all(c in "0123456789abcdef" for c in commit):
        raise _Malformed(f"not an object id: {commit[:80]!r}")
    return name, target, commit


def _read_fetch_reply(packets: _Packets, sink: IO[bytes]) -> None:
    """Skip the sections before ``packfile``, then copy side band 1 into *sink*. A reply that
    does not start like a v2 one raises :class:`NotV2`."""
    first = True
    while True:
        try:
            line, _ = packets.next()
        except (_Truncated, _Malformed, RemoteError):
            if first:
                raise NotV2() from None
            raise
        if first and (line is None or line.rstrip(b"\n") not in _FETCH_SECTIONS):
            raise NotV2()
        first = False
        if line is not None and line.rstrip(b"\n") == b"packfile":
            break
    _copy_sideband(packets, sink)


_FETCH_SECTIONS = {
    b"acknowledgments",
    b"shallow-info",
    b"wanted-refs",
    b"packfile-uris",
    b"packfile",
}


#: What a git user does about a refused request, added to the one map's words.
#: What a refused git request tells the user to do (both protocol paths say it).
CREDENTIALS_HINT = "Put credentials in the URL or in git's credential configuration."


def _status_error(response: Any, label: str) -> None:
    """Raise the one status map's error (:func:`hubcore.store.http.error_for`: the server's
    first line included, a missing repository a :class:`RepoNotFoundError`) for a failed
    answer about *label*, with git's credential hint; return for a success."""
    error = http.error_for(response, label, resource="repository", token_hint=CREDENTIALS_HINT)
    if error is not None:
        raise error


def _has_read_timeout(exc: BaseException) -> bool:
    return any(
        type(e).__name__ in ("ReadTimeoutError", "TimeoutError", "timeout") for e in causes(exc)
    )


# -- dulwich transports --------------------------------------------------------------------
def dulwich_client(url: str) -> tuple[Any, str]:
    """A dulwich client and path for *url* (``git://`` or SSH), with this module's limits.
    Smart HTTP never goes through dulwich: :class:`SmartHTTP` speaks both protocol versions."""
    from dulwich.client import SSHGitClient, TCPGitClient, get_transport_and_path

    if urlsplit(url).scheme.lower() in ("http", "https"):
        raise ValueError(f"{http.redact(url)} is smart HTTP: use SmartHTTP, not dulwich")
    lim = limits()
    client, path = get_transport_and_path(url)
    if isinstance(client, TCPGitClient):
        return _timed_tcp_client(client, lim), path
    if isinstance(client, SSHGitClient):
        client.ssh_vendor = TimedSSHVendor(lim)  # type: ignore[assignment]
        return client, path
    return client, path


def _timed_tcp_client(client: Any, lim: Limits) -> Any:
    """*client* (a dulwich ``TCPGitClient``) connecting through a socket with timeouts."""
    from dulwich.client import TCPGitClient

    class TimedTCPGitClient(TCPGitClient):
        """``git://`` with a connect timeout and a bounded wait for every read."""

        def _connect(
            self, cmd: bytes, path: str | bytes, protocol_version: int | None = None
        ) -> Any:
            from dulwich.protocol import Protocol

            if not isinstance(path, bytes):
                path = path.encode(self._remote_path_encoding)
            host = f"{self._host}:{self._port}"
            progress = _Progress("git://", host, lim)
            try:
                sock = socket.create_connection((self._host, self._port), progress.connect_wait())
            except TimeoutError:
                if progress.clock.spent():
                    raise _stalled("git://", host, progress.clock) from None
                raise _connect_limit("git://", host, lim.connect) from None
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reader = _SocketReader(sock, progress)

            def shutdown_write() -> None:
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

            proto = Protocol(
                reader.read,
                reader.write,
                sock.close,
                report_activity=self._report_activity,
                shutdown_write=shutdown_write,
            )
            if path.startswith(b"/~"):
                path = path[1:]
            self.protocol_version = 2 if protocol_version is None else protocol_version
            if cmd != b"upload-pack":
                self.protocol_version = 0
            # v2 is asked for after two NULs, which servers without v2 ignore
            extra = b"\0\0version=%d\0" % self.protocol_version if self.protocol_version else b""
            proto.send_cmd(b"git-" + cmd, path, b"host=" + self._host.encode("ascii") + extra)
            return proto, lambda: reader.can_read(), None

    timed = TimedTCPGitClient.__new__(TimedTCPGitClient)
    timed.__dict__.update(client.__dict__)
    return timed


class _SocketReader:
    """Exact reads from a socket, each waiting at most the read timeout cut to the stall
    budget left; a timeout names the host and the limit."""

    def __init__(self, sock: socket.socket, progress: _Progress):
        self._sock = sock
        self._progress = progress

    def _timeout(self) -> TransportTimeout:
        p = self._progress
        return _read_limit(p.transport, p.host, p.limits, p.clock)

    def read(self, size: int = -1) -> bytes:
        parts: list[bytes] = []
        want = size if size >= 0 else 1 << 62
        while want > 0:
            self._sock.settimeout(self._progress.read_wait())
            try:
                chunk = self._sock.recv(min(want, 1 << 16))
            except TimeoutError:
                raise self._timeout() from None
            if not chunk:
                break
            self._progress.arrived(len(chunk))
            parts.append(chunk)
            want -= len(chunk)
        return b"".join(parts)

    def write(self, data: bytes) -> int:
        self._sock.settimeout(self._progress.read_wait())
        try:
            self._sock.sendall(data)
        except TimeoutError:
            raise self._timeout() from None
        return len(data)

    def can_read(self) -> bool:
        readable, _, _ = select.select([self._sock], [], [], 0)
        return bool(readable)


# -- SSH -----------------------------------------------------------------------------------
def ssh_client() -> tuple[list[str], str, str]:
    """The SSH client git would run, as ``(argv prefix, variant, where it came from)``.

    As git: ``GIT_SSH_COMMAND``, then ``core.sshCommand`` (both run by the shell), then
    ``GIT_SSH`` (a program), then ``ssh``. The variant (``ssh`` for OpenSSH, ``plink``,
    ``simple``) comes from ``GIT_SSH_VARIANT`` or ``ssh.variant``, else from the program name.
    """
    env = os.environ
    config = _git_config()
    shell_command = env.get("GIT_SSH_COMMAND") or ""
    origin = "GIT_SSH_COMMAND"
    if not shell_command:
        shell_command, origin = config.get("core.sshcommand", ""), "core.sshCommand"
    if shell_command:
        import shlex

        words = shlex.split(shell_command)
        program = words[0] if words else "ssh"
        if sys.platform == "win32":
            argv = words
        else:  # the way git runs it: by the shell, with the arguments appended
            argv = ["/bin/sh", "-c", f'{shell_command} "$@"', shell_command]
    elif env.get("GIT_SSH"):
        program, origin = env["GIT_SSH"], "GIT_SSH"
        argv = [program]
    else:
        program, origin = "ssh", "ssh"
        argv = ["ssh"]
    variant = env.get("GIT_SSH_VARIANT") or config.get("ssh.variant", "auto")
    if variant == "auto":
        base = os.path.basename(program).lower().removesuffix(".exe")
        variant = {"ssh": "ssh", "plink": "plink", "tortoiseplink": "tortoiseplink"}.get(
            base, "simple"
        )
    return argv, variant, origin


def _git_config() -> dict[str, str]:
    """``core.sshCommand`` and ``ssh.variant`` as git reads them: its user and system
    configuration, then ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_<n>``/``GIT_CONFIG_VALUE_<n>``
    from the environment, which win (git 2.31 and later)."""
    found: dict[str, str] = {}
    try:
        from dulwich.config import StackedConfig

        stacked = StackedConfig.default()
    except Exception:  # an unreadable config file: git's defaults
        stacked = None
    for key, section, name in (
        ("core.sshcommand", (b"core",), b"sshCommand"),
        ("ssh.variant", (b"ssh",), b"variant"),
    ):
        try:
            value = stacked.get(section, name) if stacked is not None else None
        except KeyError:
            continue
        if value:
            found[key] = value.decode("utf-8", "surrogateescape")
    try:
        count = int(os.environ.get("GIT_CONFIG_COUNT", "0"))
    except ValueError:
        count = 0
    for n in range(max(0, count)):
        key = os.environ.get(f"GIT_CONFIG_KEY_{n}", "").lower()
        if key in ("core.sshcommand", "ssh.variant"):
            found[key] = os.environ.get(f"GIT_CONFIG_VALUE_{n}", "")
    return {key: value for key, value in found.items() if value}


class TimedSSHVendor:
    """Runs the SSH client git would run, and kills it when it stays silent too long."""

    def __init__(self, lim: Limits):
        self.limits = lim

    def run_command(
        self,
        host: str,
        command: bytes,
        username: str | None = None,
        port: int | None = None,
        password: str | None = None,
        key_filename: str | None = None,
        ssh_command: str | None = None,  # dulwich's; git's choice wins (see ssh_client)
        protocol_version: int | None = None,
    ) -> _TimedProcess:
        """Start the SSH client for *command* on *host*; dulwich's vendor interface."""
        if password is not None:
            raise DownloadError("SSH passwords in URLs are not supported; use an SSH key")
        argv, variant, origin = ssh_client()
        args = list(argv)
        if variant == "ssh":
            interval = max(1, math.ceil(self.limits.read_wait()[0] / 3))
            args += [
                "-o",
                f"ConnectTimeout={max(1, math.ceil(self.limits.connect))}",
                "-o",
                f"ServerAliveInterval={interval}",
                "-o",
                "ServerAliveCountMax=3",
                "-o",
                "SendEnv=GIT_PROTOCOL",
                "-x",
            ]
            if port:
                args += ["-p", str(port)]
        elif variant in ("plink", "putty", "tortoiseplink"):
            args += ["-batch"] if variant == "tortoiseplink" else []
            if port:
                args += ["-P", str(port)]
        elif port:
            raise DownloadError(
                f"the SSH client from {origin} ({argv[-1]!r}) is of the 'simple' kind, which "
                "takes no port; set GIT_SSH_VARIANT=ssh if it accepts OpenSSH's options"
            )
        if key_filename and variant == "ssh":
            args += ["-i", key_filename]
        target = f"{username}@{host}" if username else host
        if target.startswith("-"):
            raise DownloadError(f"refusing the SSH host name {target!r}")
        args += [target, command.decode("utf-8", "surrogateescape")]
        env = dict(os.environ)
        if protocol_version != 0:
            env["GIT_PROTOCOL"] = "version=2"
        shown = f"{host}:{port}" if port else host
        import subprocess  # only SSH runs a program

        try:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                bufsize=0,
            )
        except OSError as exc:
            raise DownloadError(
                f"cannot run the SSH client from {origin} ({args[0]}): {exc.strerror or exc}"
            ) from None
        return _TimedProcess(proc, shown, self.limits)


class _TimedProcess:
    """A subprocess's pipes as dulwich wants them, with a bounded wait for every read."""

    def __init__(self, proc: subprocess.Popen[bytes], host: str, lim: Limits):
        assert proc.stdout is not None
        assert proc.stdin is not None
        assert proc.stderr is not None
        self.proc = proc
        self._host = host
        self._limits = lim
        self._progress = _Progress("SSH", host, lim)  # its clock starts with the first bytes
        self._out = proc.stdout.fileno()
        self._first = True
        self._errors = bytearray()
        self._drain = threading.Thread(target=self._read_stderr, args=(proc.stderr,), daemon=True)
        self._drain.start()
        self.stderr = _Stderr(self)  # dulwich reads it when the connection hangs up

    def _read_stderr(self, stream: IO[bytes]) -> None:
        for line in iter(stream.readline, b""):
            if len(self._errors) < 1 << 16:
                self._errors += line

    def read(self, size: int = -1) -> bytes:
        parts: list[bytes] = []
        want = size if size >= 0 else 1 << 62
        while want > 0:
            wait, limit = self._limits.read_wait()
            if self._first:  # connecting, the key exchange and logging in come first
                wait += self._limits.connect
                limit = f"connect timeout HUBCORE_CONNECT_TIMEOUT + {limit}"
            else:
                try:
                    wait = self._progress.read_wait()
                except TransportTimeout:
                    self.kill()
                    raise
            said = wait if self._first else self._limits.read_wait()[0]
            deadline = time.monotonic() + wait
            while True:
                left = deadline - time.monotonic()
                readable, _, _ = select.select([self._out], [], [], max(0.0, left))
                if readable:
                    break
                if left <= 0:
                    self.kill()
                    if not self._first and self._progress.clock.spent():
                        raise _stalled("SSH", self._host, self._progress.clock)
                    raise TransportTimeout("SSH", self._host, "sent nothing", said, limit)
            chunk = os.read(self._out, min(want, 1 << 16))
            if not chunk:
                break
            if self._first:
                self._first = False
                self._progress.clock.progressed()
            try:
                self._progress.arrived(len(chunk))
            except TransportTimeout:
                self.kill()
                raise
            parts.append(chunk)
            want -= len(chunk)
        return b"".join(parts)

    def write(self, data: bytes) -> int:
        """Write all of *data*, each wait for room in the pipe within the read limits: an
        SSH client that stops reading (a stalled connection, a full pipe) is killed, never
        waited for."""
        assert self.proc.stdin is not None
        fd = self.proc.stdin.fileno()
        view = memoryview(data)
        while view:
            wait, limit = self._limits.read_wait()
            _, writable, _ = select.select([], [fd], [], wait)
            if not writable:
                self.kill()
                raise TransportTimeout("SSH", self._host, "took no input", wait, limit)
            try:
                view = view[os.write(fd, view[: select.PIPE_BUF]) :]  # never blocks
            except BrokenPipeError:
                break  # the client exited; the next read reports why
        return len(data)

    def can_read(self) -> bool:
        readable, _, _ = select.select([self._out], [], [], 0)
        return bool(readable)

    def error_text(self) -> bytes:
        """What the SSH client wrote to stderr (once it exited, or after a moment's wait)."""
        import subprocess

        try:
            self.proc.wait(timeout=min(2.0, self._limits.connect))
        except subprocess.TimeoutExpired:
            pass
        self._drain.join(timeout=0.5)
        return bytes(self._errors)

    def kill(self) -> None:
        """Stop the SSH client now, with what it started (the shell of ``GIT_SSH_COMMAND``
        does not always ``exec`` the client)."""
        if self.proc.poll() is None:
            for pid in _descendants(self.proc.pid):
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass
            self.proc.kill()
        self.proc.wait()

    def close(self, timeout: float | None = None) -> None:
        """Close the pipes and end the client."""
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        import subprocess

        try:
            self.proc.wait(timeout=min(5.0, self._limits.connect))
        except subprocess.TimeoutExpired:
            self.kill()


def _descendants(pid: int) -> list[int]:
    """The processes *pid* started, and theirs (from ``/proc``; none where there is none)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rpartition(b")")[2].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class _Stderr:
    """The SSH client's stderr as dulwich reads it after a hang-up."""

    def __init__(self, process: _TimedProcess):
        self._process = process

    def readlines(self) -> list[bytes]:
        """The lines, as a file would give them."""
        return self._process.error_text().splitlines(keepends=True)
