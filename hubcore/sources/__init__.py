"""Repository sources: from a reference string to a local, immutable snapshot folder.

A source is registered by a plugin (see :func:`hubcore.plugins.hookspecs.hubcore_register_sources`).
A ``name:`` prefix (``local:./dir``, ``github:owner/repo``) sends a reference straight to the
source of that name. Otherwise every source says how specifically it claims the reference
(:meth:`Source.claim`, a :class:`Claim` rank) and the most specific claim wins, whatever the
registration order: ``file:///x/hub.zip`` is an archive (a suffix rule beats a scheme), a
plugin declaring ``hf://`` beats the generic fsspec folder source, and an existing folder
named like ``acme/models`` never shadows the GitHub repository of that name (a guess loses to
a form). Two equally specific claims are an ambiguity error that names each spelling.

The claimed :class:`RepoRef` carries the repository's :attr:`RepoRef.identity`: one canonical,
credential-free, host-qualified name (``github:https://github.com/acme/models``) that keys the
cache, its locks, trust entries and lock-file entries alike. It is then opened
(:meth:`Source.open`) into a :class:`Snapshot`: a folder holding ``hubconf.py`` plus the
immutable id of what is in it (a commit sha, a content hash).
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from hubcore.errors import HubError, InvalidReferenceError, UnknownSourceError
from hubcore.records import Record, field
from hubcore.store.cache import Cache

__all__ = [
    "Claim",
    "FetchContext",
    "PinCheck",
    "RepoRef",
    "Snapshot",
    "Source",
    "canonical_url",
    "identify",
    "parse_reference",
    "redact_url",
]

logger = logging.getLogger(__name__)

_PREFIX = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(?!//)(.*)$", re.DOTALL)


class RepoRef(Record):
    """A parsed repository reference.

    ``source`` is the name of the source that claimed it, ``repo`` its source-specific
    location (a path, ``owner/name``, a URL), ``revision`` a branch, tag or commit when the
    reference names one, ``text`` what the user wrote, and ``options`` anything else the source
    parsed (a host, a protocol).

    ``identity`` names the repository itself, the same however it was spelled:
    ``<source>:<location>``, canonical, host-qualified, without credentials or revision
    (``github:https://github.com/acme/models``, ``git:ssh://host:2222/srv/repo.git``,
    ``fsspec:s3+https://minio.example:9000/bucket/hub``, ``local:/abs/dir``). It keys the
    cache (:attr:`location` is the repo key under ``repos/<source>/``), trust and lock files.
    A source that sets none gets ``<source>:<repo>`` with any URL canonicalised.
    """

    source: str
    repo: str
    revision: str | None = None
    text: str = ""
    # Never shown: options may hold a token, and reprs end up in logs and tracebacks.
    options: Mapping[str, Any] = field(factory=dict, eq=False)
    #: Empty (the default) means :func:`_default_identity`, set by ``__post_init__``.
    identity: str = ""

    def __post_init__(self) -> None:
        # replace() passes an identity already set through, as attrs.evolve did
        if not self.identity:
            object.__setattr__(self, "identity", _default_identity(self))

    @property
    def location(self) -> str:
        """The identity without its ``<source>:`` prefix: the repository's cache key."""
        return self.identity.partition(":")[2]

    def __repr__(self) -> str:
        return (
            f"RepoRef(source={self.source!r}, repo={redact_url(self.repo)!r}, "
            f"revision={self.revision!r}, text={redact_url(self.text)!r}, "
            f"identity={self.identity!r})"
        )

    def __str__(self) -> str:
        """The reference as the user wrote it, without any credentials in URLs."""
        return redact_url(
            self.text
            or f"{self.source}:{self.repo}" + (f"@{self.revision}" if self.revision else "")
        )


class Snapshot(Record):
    """A repository made available on local disk.

    ``root`` is the folder with ``hubconf.py``; ``snapshot_id`` identifies its content
    immutably (``None`` for a live local folder, whose content may change at any time).
    """

    ref: RepoRef
    root: Path
    snapshot_id: str | None = None


class PinCheck(Protocol):
    """Raises a :class:`~hubcore.errors.HubError` unless the folder *root*, filled for the
    content pin *pin* (``sha256:<digest>``) of the reference *label*, holds that content."""

    def __call__(self, root: Path, pin: str, label: str) -> None: ...


class FetchContext(Record):
    """What a source needs to know to open a reference.

    *check_pin* is how a source that accepts a content pin verifies what it fetched before
    the cache publishes it; the features that define pins supply it (a model package's
    digest), so no source imports them. A source given a pin and no *check_pin* refuses.
    """

    cache: Cache
    offline: bool = False
    force_reload: bool = False
    progress: bool = True
    check_pin: PinCheck | None = None


class Claim(enum.IntEnum):
    """How specifically a source claims a reference; the highest claim wins.

    A source without a ``claim`` method claims what its ``parse`` accepts at :attr:`FORM`.
    """

    NONE = 0  #: not this source's
    GUESS = 10  #: a guess from the machine's state (an existing folder named without ``./``)
    GENERIC = 20  #: any URL of a family (every protocol fsspec knows)
    FORM = 30  #: one of this source's own forms (``owner/repo``, ``./dir``, ``file://``)
    SPECIFIC = 40  #: a scheme named after the source (``git://``), or a scheme plus a rule
    #: (an archive suffix on any fetchable URL)


@runtime_checkable
class Source(Protocol):
    """The protocol every repository source implements.

    A source may also define ``claim(text, options) -> int``: how specifically it claims a
    reference without a ``name:`` prefix (a :class:`Claim`; ``0`` for not at all), so that the
    most specific source wins whatever the registration order. Without it, the source claims
    what :meth:`parse` accepts, at :attr:`Claim.FORM`. A source may set
    :attr:`RepoRef.identity`; without it the identity is ``<source>:<repo>``.
    """

    #: Unique short name, also usable as a reference prefix (``name:...``).
    name: str
    #: The reference forms this source accepts, shown in help and in parse errors.
    forms: tuple[str, ...]

    def parse(self, text: str, options: Mapping[str, Any]) -> RepoRef | None:
        """Return a :class:`RepoRef` if this source claims *text*, else ``None``.

        Raise :class:`hubcore.errors.InvalidReferenceError` when *text* is clearly meant for
        this source (for example it carries its prefix) but is malformed. *options* are the
        keyword options the caller passed along with the reference (such as ``host``).
        """
        ...

    def open(self, ref: RepoRef, ctx: FetchContext) -> Snapshot:
        """Make the snapshot *ref* names available locally and return it.

        Remote sources resolve the reference to an immutable id first and materialise that
        snapshot with :meth:`hubcore.store.cache.Cache.publish_tree`; they must honour
        ``ctx.offline`` (no network; use what is cached or raise
        :class:`hubcore.errors.OfflineError`) and ``ctx.force_reload``.
        """
        ...


def redact_url(text: str) -> str:
    """*text* without credentials: :func:`hubcore.store.redaction.redact`, the one redactor."""
    from hubcore.store.redaction import redact

    return redact(text)


def parse_reference(
    text: str,
    sources: Mapping[str, Source],
    *,
    source: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> RepoRef:
    """Parse *text* with the registered *sources* into a :class:`RepoRef`.

    *source* forces a particular source by name, like ``torch.hub.load(source="local")``; a
    ``name:`` prefix does the same. Otherwise the most specific claim wins (see
    :class:`Claim`); equally specific claims by two sources are an ambiguity error.
    """
    opts = dict(options or {})
    text = text.strip()
    if not text:
        raise InvalidReferenceError(_accepted_forms("empty repository reference", sources))
    forced: Source | None
    if source is not None:
        opts["source"] = source
        forced = _source_named(source, sources)
    else:
        match = _PREFIX.match(text)
        named = match.group(1).lower() if match and len(match.group(1)) > 1 else ""
        forced = sources.get(named)
    try:
        if forced is None:
            return _most_specific(text, sources, opts)
        ref = forced.parse(text, opts)
    except HubError:
        raise
    except ValueError as exc:  # urllib's, for an unclosed IPv6 "[" or a port that is no number
        raise InvalidReferenceError(
            f"{redact_url(text)!r} is not a valid reference: {exc}"
        ) from None
    if ref is None:
        raise InvalidReferenceError(
            f"{text!r} is not a {forced.name} reference; expected " + " or ".join(forced.forms)
        )
    return ref


def _most_specific(text: str, sources: Mapping[str, Source], opts: dict[str, Any]) -> RepoRef:
    claims: list[tuple[int, Source, RepoRef | None]] = []
    for candidate in sources.values():
        claim = getattr(candidate, "claim", None)
        if callable(claim):
            claims.append((int(claim(text, opts)), candidate, None))
        else:  # a source without claim(): what it parses, it claims as one of its forms
            parsed = candidate.parse(text, opts)
            claims.append((Claim.FORM if parsed is not None else Claim.NONE, candidate, parsed))
    best = max((rank for rank, _, _ in claims), default=Claim.NONE)
    if best <= Claim.NONE:
        raise InvalidReferenceError(_accepted_forms(_unclaimed(text), sources))
    winners = [(src, parsed) for rank, src, parsed in claims if rank == best]
    if len(winners) > 1:
        spellings = " or ".join(f"{src.name}:{text}" for src, _ in winners)
        raise InvalidReferenceError(
            f"{text!r} is ambiguous: sources {', '.join(s.name for s, _ in winners)} all "
            f"accept it; write {spellings}"
        )
    winner, ref = winners[0]
    if ref is None:
        ref = winner.parse(text, opts)
    if ref is None:
        raise InvalidReferenceError(
            f"the source {winner.name!r} claimed {text!r} but could not parse it; "
            f"write {winner.name}:... in one of its forms: {', '.join(winner.forms)}"
        )
    for rank, src, _ in claims:
        if rank == Claim.GUESS and src is not winner:
            logger.warning(
                "%r is read as %s; write %s:%s to use the %s source instead",
                text,
                redact_url(ref.identity),
                src.name,
                text,
                src.name,
            )
    return ref


def _unclaimed(text: str) -> str:
    scheme = urlsplit(text).scheme if "://" in text else ""
    if scheme:
        return (
            f"no installed source handles {scheme}:// references ({redact_url(text)!r}); "
            "install the plugin (or the fsspec filesystem) that provides it"
        )
    return f"cannot understand the repository reference {text!r}"


def identify(text: str, *, source: str | None = None, **options: Any) -> tuple[str, str | None]:
    """``(identity, revision)`` of reference *text*, parsed as ``load`` parses it.

    *options* are ``load``'s source options (``host=``, ``commit=``, ``storage_options=``).
    Two spellings of one repository at one revision (``acme/models:main`` and
    ``github:acme/models@main``) give the same pair, so it keys lock-file entries. Nothing
    is fetched.
    """
    from hubcore.plugins import get_plugins  # the plugin registry imports this module

    given = {k: v for k, v in options.items() if v is not None}
    if "host" in given:
        given.setdefault("git_host", given["host"])
    ref = parse_reference(text, get_plugins().sources, source=source, options=given)
    return ref.identity, ref.revision


_DEFAULT_PORTS = {"http": 80, "https": 443, "git": 9418, "ssh": 22, "ftp": 21}


def canonical_url(url: str, *, keep_query: bool = False) -> str:
    """*url* as an identity: scheme and host lowercased, default port, user info (credentials),
    fragment and query dropped, no trailing slash, ``@`` written ``%40``. With *keep_query*
    the query's parameters that do not carry credentials stay
    (:func:`hubcore.store.redaction.public_query`): they often name the file
    (``download?file=a.zip``), so URLs differing in them are different.

    Raises :class:`InvalidReferenceError` for a URL whose port is not a number, or that urllib
    cannot parse (an unclosed IPv6 ``[``).
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise InvalidReferenceError(f"{redact_url(url)!r} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    path = parts.path.rstrip("/")
    if any(unquote(segment) in (".", "..") for segment in path.split("/")):
        # servers resolve them, so `trusted/../other` would be another repository
        raise InvalidReferenceError(
            f"{redact_url(url)!r} has '.' or '..' in its path; write the path it leads to"
        )
    if keep_query and parts.query:
        from hubcore.store.redaction import public_query

        query = f"?{public_query(parts.query)}".rstrip("?")
    else:
        query = ""
    # no '@' after the host: a trust entry pins a snapshot as `<identity>@<id>`, which an
    # identity of its own must never spell (`hub.zip?v=1@<hex>` is another URL)
    return f"{scheme}://{host}{path}{query}".replace("@", "%40")


def _default_identity(ref: RepoRef) -> str:
    repo = canonical_url(ref.repo) if "://" in ref.repo else ref.repo
    return f"{ref.source}:{repo}"


def _source_named(name: str, sources: Mapping[str, Source]) -> Source:
    try:
        return sources[name]
    except KeyError:
        known = ", ".join(sorted(sources)) or "(none)"
        raise UnknownSourceError(
            f"no source named {name!r} is installed (known sources: {known}). "
            "Install the plugin that provides it, or check `hubcore plugins`."
        ) from None


def _accepted_forms(problem: str, sources: Mapping[str, Source]) -> str:
    forms = "; ".join(f"{form} ({src.name})" for src in sources.values() for form in src.forms)
    return f"{problem}. Accepted forms: {forms or '(no sources are installed)'}"
