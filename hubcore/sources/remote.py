"""The one flow every remote source shares: resolve, publish, record, offline, force reload.

A remote source turns a reference into an immutable snapshot id (a commit, a content hash)
and a way to fill an empty folder with that snapshot. :class:`RemoteSource` does the rest the
same way for every source:

* a reference that already names an immutable id (:meth:`RemoteSource.pinned`) and is cached
  costs no request at all;
* offline, the id a reference last resolved to (the cache's refs record) is used, or an
  :class:`~hubcore.errors.OfflineError` says what is missing;
* online, :meth:`RemoteSource.resolve` finds the id, the cache publishes the tree under its
  lock (one fetch when many processes ask; ``force_reload`` replaces it atomically), and the
  resolution is recorded for the next offline run.

A new source implements ``name``, ``forms``, ``parse`` and ``resolve`` (see the plugin guide).
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hubcore.errors import OfflineError
from hubcore.sources import FetchContext, RepoRef, Snapshot

__all__ = ["FULL_SHA", "RemoteSource", "Resolution"]

#: A full git commit id: what git sources pin, and the default form of a snapshot id.
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")

#: What :meth:`RemoteSource.resolve` returns: the snapshot id, and how to fill a folder with it.
Resolution = tuple[str, Callable[[Path], None]]


class RemoteSource(abc.ABC):
    """Base of the sources that fetch (github, gitlab, git, url, fsspec); see the module."""

    name: str = ""
    forms: tuple[str, ...] = ()

    @abc.abstractmethod
    def parse(self, text: str, options: Mapping[str, Any]) -> RepoRef | None:
        """A :class:`RepoRef` if this source claims *text* (as :class:`~hubcore.sources.Source`)."""

    @abc.abstractmethod
    def resolve(self, ref: RepoRef, ctx: FetchContext) -> Resolution:
        """The immutable id *ref* names now (network allowed; for a pinned reference, the pin),
        and a function that fills an empty folder with that snapshot (called only when the
        cache does not hold it yet)."""

    def pinned(self, ref: RepoRef) -> str | None:
        """The immutable id the reference itself names (a full commit, a content hash)."""
        return None

    def is_snapshot_id(self, text: str) -> bool:
        """Whether *text* is written as this source's snapshot ids are (a full commit by
        default): what a trust entry may pin, since only a snapshot id can ever match."""
        return bool(FULL_SHA.match(text))

    def names_default(self, ref: RepoRef) -> bool:
        """Whether *ref* names the repository without choosing a revision: trusting it
        trusts every snapshot (a branch, tag or alias would be a moving name instead)."""
        return ref.revision is None

    def record_name(self, ref: RepoRef) -> str:
        """The name under which a resolution is recorded for offline runs."""
        return ref.revision or "HEAD"

    def recorded(self, ref: RepoRef, ctx: FetchContext) -> str | None:
        """The id *ref* last resolved to, for offline runs (sources may expand short ids)."""
        return ctx.cache.read_refs(self.name, ref.location).get(self.record_name(ref))

    def open(self, ref: RepoRef, ctx: FetchContext) -> Snapshot:
        """The snapshot *ref* names, from the cache or fetched (see the module docstring)."""
        key = ref.location
        pin = self.pinned(ref)
        if pin is not None and not ctx.force_reload:
            folder = ctx.cache.snapshot_dir(self.name, key, pin)
            if folder.is_dir():
                return Snapshot(ref, folder, pin)
        if ctx.offline:
            known = pin or self.recorded(ref, ctx)
            if known and ctx.cache.snapshot_dir(self.name, key, known).is_dir():
                return Snapshot(ref, ctx.cache.snapshot_dir(self.name, key, known), known)
            raise OfflineError(
                f"offline mode is on and {ref} has not been fetched before. Run once online "
                "(unset HUBCORE_OFFLINE) to cache it."
            )
        snapshot_id, fill = self.resolve(ref, ctx)
        folder = ctx.cache.publish_tree(self.name, key, snapshot_id, fill, replace=ctx.force_reload)
        if pin is None:
            ctx.cache.write_ref(self.name, key, self.record_name(ref), snapshot_id)
        return Snapshot(ref, folder, snapshot_id)
