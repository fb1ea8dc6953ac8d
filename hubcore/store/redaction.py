"""The one redactor of hubcore: what of a URL or a message may be shown, logged or stored.

Labels of every reference pass through :func:`redact` on every load, so this module is kept
apart from :mod:`hubcore.store.http` (which re-exports it): a load that makes no request never
imports the HTTP client.
"""

from __future__ import annotations

import functools
import re
from urllib.parse import unquote, urlsplit, urlunsplit

from hubcore.patterns import later

__all__ = ["SHOWN_URL", "public_query", "redact", "shown_url", "shown_urls", "url_identity"]

#: How long a URL may be in a message before its middle is cut.
SHOWN_URL = 160


def shown_urls(text: str, limit: int = SHOWN_URL) -> str:
    """*text* with every URL in it redacted and cut as :func:`shown_url` shows one."""
    return _URL_IN_TEXT().sub(lambda m: shown_url(m.group(), limit), text)


def shown_url(url: str, limit: int = SHOWN_URL) -> str:
    """*url* redacted (:func:`redact`) and, when longer than *limit*, cut in its middle: the
    start names the host, the end the file, and the words after it (the cause) stay whole."""
    shown = redact(url)
    if len(shown) <= limit:
        return shown
    keep = (limit - 3) // 2
    return f"{shown[:keep]}...{shown[-keep:]}"


_URL_IN_TEXT = later(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*[^\s'\"<>.,;:)]")
_PIN_FRAGMENT = later(r"^sha256=[0-9a-fA-F]{8,64}$")
#: Query parameters that carry credentials (tokens, presigned-URL signatures, SAS keys).
_SECRET_PARAM = later(
    r"(?i)^(.*token.*|.*secret.*|.*password.*|.*credential.*|.*signature.*|sig|skoid|sktid|"
    r"api[-_]?key|key|auth.*|code|x-amz-.*|x-goog-.*|x-oss-.*|jwt|"
    # presigned URLs of the older forms (S3, GCS, OSS): the key's id beside the signature
    r".*accesskeyid|googleaccessid|"
    # HMAC and edge tokens (Akamai), session ids
    r"hmac|hdnts|session|session[-_]?id)$"
)
#: An Azure SAS's other fields: no secret, but new with every signing, and short enough to be
#: a file's own parameter (``sr=16000``): dropped only beside the SAS's signature, ``sig``.
_SAS_FIELDS = frozenset({"se", "sp", "sv", "st", "spr", "srt", "ss", "sr", "sdd"})
#: The other fields of a signed URL (CloudFront, the older presigned forms, CDN tokens): new
#: with every signing, dropped only beside a credential (``Signature``, ``token``, ...).
_SIGNED_FIELDS = frozenset({"policy", "expires", "key-pair-id"})
#: A secret named in free text (``token=...``, ``access_token: ...``, ``'Authorization':
#: 'Bearer ...'`` in a dict's repr): its value, up to a space or a quote, is hidden.
_SECRET_TEXT = later(
    r"(?i)(?<![/\w-])([\w-]*(?:token|authorization|password|passwd|secret|signature))"
    r"([\"']?\s*[=:]\s*[\"']?)(?:(?:basic|bearer|token)\s+)?[^\s'\"]+"
)


_USERINFO_IN_TEXT = later(r"(?<![\w.%+-])[\w.%+-]+:[^\s/@:'\"]+@(?=[\w\[])")
_QUERY_IN_TEXT = later(r"(/[^\s?\"'<>]*)\?[^\s\"'<>]+")


def redact(text: str) -> str:
    """*text* as it may be shown or logged: the one redactor of hubcore.

    Every URL in *text* loses its user info (``user:token@``), its whole query (signatures,
    tokens) and any fragment other than a ``#sha256=`` pin; so does a path with a query
    (``GET /w.pth?sig=...``); ``token=...``-style secrets in free text are hidden. Use it
    for every message, log line and listing that names a URL.
    """
    if len(text) <= 2048:  # labels and URLs: the same few are redacted many times per load
        return _redact_short(text)
    return _redact(text)


@functools.lru_cache(maxsize=1024)
def _redact_short(text: str) -> str:
    return _redact(text)


def _redact(text: str) -> str:
    if "://" in text:
        text = _URL_IN_TEXT().sub(_shown_url, text)
    if "?" in text:  # a request line or path with a query (``GET /w.pth?X-Amz-...``)
        text = _QUERY_IN_TEXT().sub(r"\1", text)
    if "@" in text:  # user info a library quoted without its scheme (``"KEY:SECRET@bucket"``)
        text = _USERINFO_IN_TEXT().sub("", text)
    return _SECRET_TEXT().sub(r"\1\2<hidden>", text)


def _shown_url(match: re.Match[str]) -> str:
    try:
        parts = urlsplit(match.group(0))
    except ValueError:  # urllib cannot parse it (an unclosed "[" of an IPv6 host): cut by hand
        scheme, _, rest = re.split(r"[?#]", match.group(0), maxsplit=1)[0].partition("://")
        netloc, slash, path = rest.partition("/")
        return f"{scheme}://{_without_userinfo(netloc)}{slash}{path}"
    fragment = parts.fragment if _PIN_FRAGMENT().match(parts.fragment) else ""
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
    return urlunsplit(
        (
            parts.scheme,
            _without_userinfo(parts.netloc),
            parts.path,
            public_query(parts.query),
            parts.fragment,
        )
    )


def public_query(query: str) -> str:
    """*query* without the parameters that carry credentials (``token``, ``X-Amz-Signature``,
    SAS ``sig``, ...), in its order: what an identity of a URL keeps."""
    pairs = [p for p in re.split("[&;]", query) if p]  # ';' separates them for some servers
    names = [unquote(p.partition("=")[0]) for p in pairs]
    secret = [_SECRET_PARAM().match(name) is not None for name in names]
    lowered = [name.lower() for name in names]
    dropped: set[str] = set()
    if "sig" in lowered:
        dropped |= _SAS_FIELDS
    if any(secret):
        dropped |= _SIGNED_FIELDS
    return "&".join(
        pair
        for pair, name, hidden in zip(pairs, lowered, secret, strict=True)
        if not hidden and name not in dropped
    )


def _without_userinfo(netloc: str) -> str:
    return netloc.rpartition("@")[2]
