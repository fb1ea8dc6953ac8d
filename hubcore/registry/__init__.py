"""The registry: versioned artifacts with aliases on storage you already have, no server.

::

    import hubcore.registry

    reg = hubcore.registry.open("s3://team-bucket/registry")   # or a folder; default:
                                                               # $HUBCORE_REGISTRY, <home>/registry
    v = reg.log("classifier", "./checkpoint", metadata={"acc": 0.91}, aliases=["staging"])
    reg.alias("classifier:v3", "production")
    folder = reg.get("classifier:production").download()
    hubcore.load("registry:classifier:production", "entry")    # as a hubcore source

Layout under the registry's root (a folder, or a prefix of a bucket)::

    <root>/
      registry.json                                  format marker (create-only; the first
                                                     change checks conditional writes on it)
      names/<name in lower case>.json                claims a name whatever its case (no two
                                                     names differ only in case)
      blobs/sha256/<2 hex>/<64 hex>                  file contents, stored once by sha256
      manifests/sha256/<2 hex>/<64 hex>.json         a version's file list (path, size, sha256,
                                                     and the URL of a reference), canonical
                                                     JSON; its sha256 is the version's digest
      collections/<name>/                            one per artifact ('/' in names is '%2F')
          collection.json                            kind ("artifact"), type, created, creator
          versions/v<10 digits>.json                 one per version, taken by create-only write:
                                                     number, digest, type, description,
                                                     metadata, tags, created, creator, pins
                                                     (alias -> seq of a move onto it); edits by
                                                     compare-and-swap; deleted: a tombstone
                                                     (duplicate_of: a number taken for content
                                                     another writer logged at the same time)
          digests/<64 hex>.json                      digest -> number (finds identical content):
                                                     claimed create-only once the number is
                                                     taken, the first claim wins; null once
                                                     that version is deleted
          aliases/<alias>.json                       one pointer per alias (version, digest, seq,
                                                     fence, and the event of its last move),
                                                     moved by compare-and-swap; latest.json too
                                                     (no event)
          events/<time ns>-<random>.json             append-only history: log, link, unlink,
                                                     alias, unalias, update, describe, card,
                                                     delete (when, who, before, after, ...)
          linked/<10 digits>/<model>~v<N>.json       registered-model versions linking here
          used/<10 digits>/<run id>.json             runs that used a version (lineage)
          card.json   cards/v<10 digits>.json        written model cards (compare-and-swap)
      runs/<run id>.json                             runs: created create-only, then changed by
                                                     compare-and-swap (inputs, outputs, lease)
      outbox/<event id>~<webhook>.json               notifications not yet delivered
      tmp/  locks/                                   local folders only: staged writes (gc
                                                     removes old ones) and compare-and-swap locks

A registered model is another collection (``collection.json`` kind ``"registered-model"``,
with a description and tags) whose versions link to an artifact's version and share its
digest, so aliases, history and loading work unchanged (:meth:`Registry.link`). Runs and
lineage: :mod:`hubcore.registry.runs`, :mod:`hubcore.registry.lineage`; cards:
:mod:`hubcore.registry.cards`; notifications (plugin hook, webhooks, outbox):
:mod:`hubcore.registry.notify`.

Guarantees (the storage operations are in :mod:`hubcore.registry.store`):

* version numbers are taken with create-only writes after the files and the manifest are
  stored: concurrent loggers get distinct numbers, and a logger that dies leaves no version
  (only unreferenced blobs, which :meth:`Registry.gc` removes), and blocks nobody;
* identical content is one version: the digest index entry is claimed create-only after the
  number is taken, and a logger that loses the claim to a live version of the same content
  tombstones its number as a duplicate and returns that version;
* an alias moving onto a version pins it first (compare-and-swap of the version record), and
  a deletion tombstones the record by compare-and-swap after checking its pins (fencing a
  move in flight), so no alias is left on a deleted version;
* an alias moves by compare-and-swap of its one pointer object, which carries the event of
  its move; the event is also written to ``events/`` (by the next mover if the writer died
  first), so the history has every move;
* ``latest`` is moved forward by compare-and-swap and read with one probe past it, so a
  logger that died after taking its number cannot hide its version;
* every read of a version is a constant number of objects: pointer, record, manifest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Imported on first use: every hubcore command registers the registry's source, which lives in
# this package, and must not pay for the registry itself.
_EXPORTS: dict[str, str] = {
    "AliasInUseError": "hubcore.registry.errors",
    "ArtifactNotFoundError": "hubcore.registry.errors",
    "ConflictError": "hubcore.registry.errors",
    "DeletedConcurrentlyError": "hubcore.registry.errors",
    "FileEntry": "hubcore.registry.content",
    "InvalidNameError": "hubcore.registry.errors",
    "Lineage": "hubcore.registry.lineage",
    "Manifest": "hubcore.registry.content",
    "Reference": "hubcore.registry.content",
    "Registry": "hubcore.registry.core",
    "RegistryError": "hubcore.registry.errors",
    "Run": "hubcore.registry.runs",
    "Spec": "hubcore.registry.names",
    "UnsupportedStorageError": "hubcore.registry.errors",
    "Version": "hubcore.registry.core",
    "VersionNotFoundError": "hubcore.registry.errors",
    "actor": "hubcore.registry.core",
    "open": "hubcore.registry.core",
    "parse_spec": "hubcore.registry.names",
}

if TYPE_CHECKING:
    from hubcore.registry.content import FileEntry, Manifest, Reference
    from hubcore.registry.core import Registry, Version, actor, open
    from hubcore.registry.errors import (
        AliasInUseError,
        ArtifactNotFoundError,
        ConflictError,
        DeletedConcurrentlyError,
        InvalidNameError,
        RegistryError,
        UnsupportedStorageError,
        VersionNotFoundError,
    )
    from hubcore.registry.lineage import Lineage
    from hubcore.registry.names import Spec, parse_spec
    from hubcore.registry.runs import Run


def __getattr__(name: str) -> Any:
    """An export, imported from its module on first access; submodules as usual."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "AliasInUseError",
    "ArtifactNotFoundError",
    "ConflictError",
    "DeletedConcurrentlyError",
    "FileEntry",
    "InvalidNameError",
    "Lineage",
    "Manifest",
    "Reference",
    "Registry",
    "RegistryError",
    "Run",
    "Spec",
    "UnsupportedStorageError",
    "Version",
    "VersionNotFoundError",
    "actor",
    "open",
    "parse_spec",
]
