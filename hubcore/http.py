"""Small, careful HTTP for talking to git hosts: mirrors, timeouts, credential-safe redirects.

Every request goes through :func:`get`: the URL is rewritten by the configured mirrors,
redirects are followed by hand so that credentials are dropped as soon as a redirect leaves the
host they were meant for, and failures become :class:`~hubcore.errors.HubError` subclasses whose
messages never contain a token.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from hubcore import config
from hubcore.errors import AuthenticationError, DownloadError, RepoNotFoundError

if TYPE_CHECKING:
    import requests

__all__ = ["Credentials", "get", "redact", "session", "url_identity"]

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
MAX_REDIRECTS = 10
USER_AGENT = "hubcore/0.1"

_local = threading.local()


def session() -> requests.Session:
    """A per-thread session (connection reuse), with proxies and CA bundles from the env."""
    current: requests.Session | None = getattr(_local, "session", None)
    if current is None:
        import requests  # imported on first use: it is slow to import

        current = requests.Session()
        current.headers["User-Agent"] = USER_AGENT
        _local.session = current
    return current


class Credentials:
    """Authentication headers per host; sent only to those hosts, never shown by ``repr``."""

    def __init__(self, headers_by_host: Mapping[str, Mapping[str, str]]):
        self._by_host = {host.lower(): dict(h) for host, h in headers_by_host.items()}

    def headers_for(self, url: str) -> dict[str, str]:
        """The headers for *url*'s host (none for any other host)."""
        return dict(self._by_host.get(_host(url), {}))

    def __repr__(self) -> str:
        return f"Credentials(hosts={sorted(self._by_host)})"


def send(
    url: str,
    *,
    credentials: Credentials | None = None,
    headers: Mapping[str, str] | None = None,
    stream: bool = False,
    timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
) -> requests.Response:
    """GET *url* after mirror rewriting, following redirects by hand so that credentials are
    sent only to their own host. Returns the final response whatever its status; connection
    failures raise ``requests.RequestException``."""
    target = config.rewrite_url(url)
    for _ in range(MAX_REDIRECTS + 1):
        request_headers = dict(headers or {})
        if credentials is not None:
            request_headers.update(credentials.headers_for(target))
        response = session().get(
            target, headers=request_headers, stream=stream, allow_redirects=False, timeout=timeout
        )
        if response.status_code not in (301, 302, 303, 307, 308):
            return response
        location = response.headers.get("Location")
        response.close()
        if not location:
            raise DownloadError(f"{redact(target)} redirected without a Location")
        target = urljoin(target, location)
        logger.debug("redirected to %s", redact(target))
    raise DownloadError(f"too many redirects fetching {redact(url)}")


def get(
    url: str,
    *,
    credentials: Credentials | None = None,
    headers: Mapping[str, str] | None = None,
    stream: bool = False,
    what: str = "",
    token_hint: str = "",
) -> requests.Response:
    """:func:`send`, then map failures to hub errors.

    404 raises :class:`RepoNotFoundError`, 401/403 :class:`AuthenticationError` (with
    *token_hint*), other failures :class:`DownloadError`. *what* names the thing fetched in
    those messages ("the refs of github:owner/repo").
    """
    import requests

    label = what or redact(url)
    try:
        response = send(url, credentials=credentials, headers=headers, stream=stream)
    except requests.RequestException as exc:
        raise DownloadError(f"cannot fetch {label}: {_reason(exc)}") from None
    _raise_for_status(response, label, token_hint)
    return response


def _raise_for_status(response: requests.Response, label: str, token_hint: str) -> None:
    status = response.status_code
    if status < 400:
        return
    response.close()
    if status == 404:
        raise RepoNotFoundError(f"{label} not found (HTTP 404). Check the name and the host.")
    if status in (401, 403):
        hint = f" {token_hint}" if token_hint else ""
        raise AuthenticationError(
            f"access to {label} was refused (HTTP {status}): the repository may be private or "
            f"the token may lack permission.{hint}"
        )
    raise DownloadError(f"fetching {label} failed: HTTP {status} {response.reason}")


_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*[^\s'\"<>.,;:)]")
_PIN_FRAGMENT = re.compile(r"^sha256=[0-9a-fA-F]{8,64}$")
#: Query parameters that carry credentials (tokens, presigned-URL signatures, SAS keys).
_SECRET_PARAM = re.compile(
    r"(?i)^(.*token.*|.*secret.*|.*password.*|.*credential.*|.*signature.*|sig|se|sp|sv|skoid|"
    r"sktid|api[-_]?key|key|auth.*|code|policy|key-pair-id|x-amz-.*|x-goog-.*|x-oss-.*)$"
)
_SECRET_TEXT = re.compile(
    r"(?i)\b(token|private-token|authorization|password|passwd|secret)([=:]\s*)"
    r"(?:(?:basic|bearer|token)\s+)?[^\s,;&]+"
)


_QUERY_IN_TEXT = re.compile(r"(/[^\s?\"'<>]*)\?[^\s\"'<>]+")


def redact(text: str) -> str:
    """*text* as it may be shown or logged: the one redactor of hubcore.

    Every URL in *text* loses its user info (``user:token@``), its whole query (signatures,
    tokens) and any fragment other than a ``#sha256=`` pin; so does a path with a query
    (``GET /w.pth?sig=...``); ``token=...``-style secrets in free text are hidden. Use it
    for every message, log line and listing that names a URL.
    """
    if "://" in text:
        text = _URL_IN_TEXT.sub(_shown_url, text)
    if "?" in text:  # a request line or path with a query (``GET /w.pth?X-Amz-...``)
        text = _QUERY_IN_TEXT.sub(r"\1", text)
    return _SECRET_TEXT.sub(r"\1\2<hidden>", text)


def _shown_url(match: re.Match[str]) -> str:
    parts = urlsplit(match.group(0))
    fragment = parts.fragment if _PIN_FRAGMENT.match(parts.fragment) else ""
    return urlunsplit((parts.scheme, _without_userinfo(parts.netloc), parts.path, "", fragment))


def url_identity(url: str) -> str:
    """*url* as it may be stored (cache records, lock files) and used as a key.

    User info is dropped and so are query parameters that carry credentials (``token``,
    ``X-Amz-Signature``, SAS ``sig``, ...); other parameters stay, because they often name the
    file (``download?id=...``). Presigned URLs of one object therefore share one identity.
    """
    if "://" not in url:
        return url
    parts = urlsplit(url)
    query = "&".join(
        pair
        for pair in parts.query.split("&")
        if pair and not _SECRET_PARAM.match(unquote(pair.partition("=")[0]))
    )
    return urlunsplit(
        (parts.scheme, _without_userinfo(parts.netloc), parts.path, query, parts.fragment)
    )


def _without_userinfo(netloc: str) -> str:
    return netloc.rpartition("@")[2]


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _reason(exc: BaseException) -> str:
    text = str(exc.__cause__ or exc) or type(exc).__name__
    return redact(text)[:300]
