"""The ``registry`` source: ``registry:NAME[:ALIAS|:vN|@sha256:HEX]`` as a hubcore repository.

The snapshot id is the version's digest, and the snapshot folder holds the version's files,
so a logged hubconf repository loads with an entry and a logged model package without one,
like any other source. A digest costs no request once cached; ``v3`` neither (a version's
content never changes, so what it resolved to is recorded); an alias costs one small read (the
alias pointer); offline, an alias is taken as what it last resolved to, and a warning says so.
The registry is ``HUBCORE_REGISTRY`` (else ``<home>/registry``), or ``registry=`` given to
:func:`hubcore.load` as a source option.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubcore.plugins.hookspecs import hookimpl
from hubcore.sources import Claim, FetchContext, RepoRef, Snapshot, Source
from hubcore.sources.remote import RemoteSource, Resolution

if TYPE_CHECKING:
    from hubcore.registry.core import Registry

__all__ = ["RegistrySource"]

logger = logging.getLogger(__name__)
_PREFIX = "registry:"


class RegistrySource(RemoteSource):
    """Versions in a hubcore registry (see the module docstring)."""

    name = "registry"  # hubcore.registry.core.CACHE_SOURCE (not imported: every command loads this)
    forms: tuple[str, ...] = ("registry:NAME[:ALIAS|:vN|@sha256:HEX]",)

    def claim(self, text: str, options: Mapping[str, Any]) -> int:
        """Only ``registry:`` references (a prefix sends them here already)."""
        return Claim.SPECIFIC if text.startswith(_PREFIX) else Claim.NONE

    def parse(self, text: str, options: Mapping[str, Any]) -> RepoRef | None:
        """A :class:`RepoRef` for ``registry:NAME[...]`` (in the registry of *options*, else
        the default one), or for the identity spelling ``registry:<registry URL>/<NAME>[...]``
        that trust entries and messages use (a name holds no ``://``, so it is unambiguous)."""
        if not text.startswith(_PREFIX):
            return None
        from hubcore.registry.names import decode_name, parse_spec  # once a reference is claimed

        body = text[len(_PREFIX) :]
        if "://" in body:
            where, _, named = body.rpartition("/")
            if where.startswith("file://"):  # a folder's URI: %-escapes name its characters
                from urllib.parse import urlsplit
                from urllib.request import url2pathname

                where = url2pathname(urlsplit(where).path)
            spec = parse_spec(decode_name(named))
            registry = _registry({**options, "registry": where})
        else:
            spec = parse_spec(body)
            registry = _registry(options)
        revision = str(spec)[len(spec.name) + 1 :]
        return RepoRef(
            source=self.name,
            repo=spec.name,
            revision=revision,
            text=text,
            options={"registry": registry, "spec": spec},
            identity=f"{self.name}:{registry.cache_key(spec.name)}",
        )

    def names_default(self, ref: RepoRef) -> bool:
        """A bare ``registry:NAME`` names every version (its ``latest`` is implied)."""
        named = ref.text[len(_PREFIX) :].rpartition("/")[2]  # a registry URL may hold '@'
        return ":" not in named and "@" not in named

    def is_snapshot_id(self, text: str) -> bool:
        """A version's digest (the 64 hex digits, as snapshot ids are written)."""
        from hubcore.store.cache import is_sha256

        return is_sha256(text)

    def pinned(self, ref: RepoRef) -> str | None:
        """A digest names its content."""
        digest = ref.options["spec"].digest
        return str(digest) if digest else None

    def record_name(self, ref: RepoRef) -> str:
        """``v3`` or the alias: what the resolution is recorded under."""
        return str(ref.revision)

    def recorded(self, ref: RepoRef, ctx: FetchContext) -> str | None:
        """What *ref* last resolved to (offline); says so for an alias."""
        known = super().recorded(ref, ctx)
        if known and ref.options["spec"].alias is not None:
            logger.warning(
                "offline: %s is taken as sha256:%s, what it resolved to when last online; "
                "the alias may have moved since",
                ref.text,
                known[:12],
            )
        return known

    def open(self, ref: RepoRef, ctx: FetchContext) -> Snapshot:
        """A version number once resolved is served from the cache with no request."""
        spec = ref.options["spec"]
        if spec.number is not None and not ctx.force_reload:
            known = ctx.cache.read_refs(self.name, ref.location).get(self.record_name(ref))
            folder = ctx.cache.snapshot_dir(self.name, ref.location, known) if known else None
            if folder is not None and folder.is_dir():
                return Snapshot(ref, folder, known)
        return super().open(ref, ctx)

    def resolve(self, ref: RepoRef, ctx: FetchContext) -> Resolution:
        """The digest the reference names now (one small read for an alias)."""
        registry: Registry = ref.options["registry"]
        spec = ref.options["spec"]
        number, digest = registry.resolve(spec)
        if spec.number is None:
            # A version's content never changes: once an alias or a digest has shown which
            # number it is, a later load of ``vN`` needs no request either.
            ctx.cache.write_ref(self.name, ref.location, f"v{number}", digest)

        def fill(tree: Path) -> None:
            manifest = registry._read_manifest(digest)
            registry.fill(tree, manifest, ctx.progress, ctx.cache)

        return digest, fill


def _registry(options: Mapping[str, Any]) -> Registry:
    from hubcore.registry.core import Registry
    from hubcore.registry.core import open as open_registry

    given = options.get("registry")
    if isinstance(given, Registry):
        return given
    return open_registry(given, **dict(options.get("storage_options") or {}))


@hookimpl
def hubcore_register_sources(register: Callable[[Source], None]) -> None:
    """Register the registry source."""
    register(RegistrySource())
