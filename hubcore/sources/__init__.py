"""Repository sources: from a reference string to a local, immutable snapshot folder.

A source is registered by a plugin (see :func:`hubcore.hookspecs.hubcore_register_sources`).
The core asks every source, in registration order, whether it claims a reference
(:meth:`Source.parse`); a ``name:`` prefix (``local:./dir``, ``github:owner/repo``) sends the
reference straight to the source of that name. The claimed :class:`RepoRef` is then opened
(:meth:`Source.open`) into a :class:`Snapshot`: a folder holding ``hubconf.py`` plus the
immutable id of what is in it (a commit sha, a content hash), which keys the cache.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs

from hubcore.cache import Cache
from hubcore.errors import InvalidReferenceError, UnknownSourceError

__all__ = ["FetchContext", "RepoRef", "Snapshot", "Source", "parse_reference", "redact_url"]

_PREFIX = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(?!//)(.*)$", re.DOTALL)


@attrs.frozen(repr=False)
class RepoRef:
    """A parsed repository reference.

    ``source`` is the name of the source that claimed it, ``repo`` its source-specific
    location (a path, ``owner/name``, a URL), ``revision`` a branch, tag or commit when the
    reference names one, ``text`` what the user wrote, and ``options`` anything else the source
    parsed (a host, a protocol).
    """

    source: str
    repo: str
    revision: str | None = None
    text: str = ""
    # Never shown: options may hold a token, and reprs end up in logs and tracebacks.
    options: Mapping[str, Any] = attrs.field(factory=dict, eq=False, hash=False)

    def __repr__(self) -> str:
        return (
            f"RepoRef(source={self.source!r}, repo={redact_url(self.repo)!r}, "
            f"revision={self.revision!r}, text={redact_url(self.text)!r})"
        )

    def __str__(self) -> str:
        """The reference as the user wrote it, without any credentials in URLs."""
        return redact_url(
            self.text
            or f"{self.source}:{self.repo}" + (f"@{self.revision}" if self.revision else "")
        )


@attrs.frozen
class Snapshot:
    """A repository made available on local disk.

    ``root`` is the folder with ``hubconf.py``; ``snapshot_id`` identifies its content
    immutably (``None`` for a live local folder, whose content may change at any time).
    """

    ref: RepoRef
    root: Path
    snapshot_id: str | None = None


@attrs.frozen
class FetchContext:
    """What a source needs to know to open a reference."""

    cache: Cache
    offline: bool = False
    force_reload: bool = False
    progress: bool = True


@runtime_checkable
class Source(Protocol):
    """The protocol every repository source implements."""

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
        snapshot with :meth:`hubcore.cache.Cache.publish_tree`; they must honour
        ``ctx.offline`` (no network; use what is cached or raise
        :class:`hubcore.errors.OfflineError`) and ``ctx.force_reload``.
        """
        ...


def redact_url(text: str) -> str:
    """*text* without credentials: :func:`hubcore.http.redact`, the one redactor."""
    from hubcore.http import redact

    return redact(text)


def parse_reference(
    text: str,
    sources: Mapping[str, Source],
    *,
    source: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> RepoRef:
    """Parse *text* with the registered *sources* (in order) into a :class:`RepoRef`.

    *source* forces a particular source by name, like ``torch.hub.load(source="local")``.
    """
    opts = dict(options or {})
    text = text.strip()
    if not text:
        raise InvalidReferenceError(_accepted_forms("empty repository reference", sources))
    if source is not None:
        opts["source"] = source
        candidates = [_source_named(source, sources)]
    else:
        match = _PREFIX.match(text)
        named = match.group(1).lower() if match and len(match.group(1)) > 1 else ""
        candidates = [sources[named]] if named in sources else list(sources.values())
    for candidate in candidates:
        ref = candidate.parse(text, opts)
        if ref is not None:
            return ref
    raise InvalidReferenceError(
        _accepted_forms(f"cannot understand the repository reference {text!r}", sources)
    )


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
