"""The registry: log, get, alias, history, update, delete, gc (layout: :mod:`hubcore.registry`)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime
import getpass
import json
import logging
import os
import random
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import attrs

from hubcore import config
from hubcore.errors import CacheError, IntegrityError
from hubcore.registry.content import (
    FileEntry,
    LocalFile,
    Manifest,
    Reference,
    collect_files,
    hash_files,
)
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
from hubcore.registry.names import (
    LATEST,
    Spec,
    check_alias,
    check_name,
    check_path,
    decode_name,
    encode_name,
    misread_alias,
    parse_spec,
)
from hubcore.registry.store import Store, open_store
from hubcore.store.cache import Cache, get_cache, is_sha256
from hubcore.store.files import atomic_copy

if TYPE_CHECKING:
    from hubcore.registry.lineage import Lineage
    from hubcore.registry.runs import Run

__all__ = ["Registry", "Version", "actor", "open"]

logger = logging.getLogger(__name__)

#: The source name under which downloaded versions live in the cache.
CACHE_SOURCE = "registry"
#: A blob or manifest a log reuses is touched when older than this, so that gc (whose grace
#: period must exceed it plus the longest log) never removes what a running log relies on.
TOUCH_AGE = 3600.0
#: The kinds of collection: an artifact's versions hold content; a registered model's versions
#: link to artifact versions (and share their digests).
ARTIFACT = "artifact"
REGISTERED_MODEL = "registered-model"
#: gc's default grace period: unreferenced objects younger than this are kept.
GC_GRACE = 86400.0
_ATTEMPTS = 200
#: How many times a log (or link) makes its content a version again when other writers
#: delete the version it made or found before it returns (see :meth:`Registry._until_live`).
_RELOG_ATTEMPTS = 5
_WORKERS = 8


def actor() -> str:
    """Who is writing: ``HUBCORE_REGISTRY_ACTOR`` when set, else ``user@host``."""
    from hubcore import settings

    configured = settings.current().registry_actor.strip()
    if configured:
        return configured
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _same_name(name: str, stored: Mapping[str, Any]) -> None:
    """Refuse *name* where *stored* (a record found at its key) belongs to another spelling."""
    other = stored.get("name")
    if isinstance(other, str) and other != name:
        raise InvalidNameError(
            f"the name {name!r} differs from the existing {other!r} only in case; names that "
            f"differ only in case are refused (they would share a folder on case-insensitive "
            f"storage): use {other!r}"
        )


def _duplicate(record: Mapping[str, Any]) -> bool:
    """Whether the version *record* is the tombstone of a duplicate (see
    :meth:`Registry._claim_digest`)."""
    deleted = record.get("deleted")
    return isinstance(deleted, dict) and deleted.get("duplicate_of") is not None


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")


def _dumps(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, indent=1).encode()


def _latest_pointer(version: Version | None) -> bytes:
    """The ``latest`` pointer naming *version* (``None``: no live version)."""
    if version is None:
        return _dumps({"alias": LATEST, "version": None, "digest": None})
    return _dumps({"alias": LATEST, "version": version.number, "digest": version.digest})


def _event_id() -> str:
    """Sorts by time; unique without coordination."""
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}"


def _storable(value: Mapping[str, Any], what: str) -> None:
    """A :class:`RegistryError` if *value* cannot be stored as JSON."""
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise RegistryError(
            f"{what} must be JSON (strings, numbers, lists, objects): {exc}"
        ) from None


def _alias_names(aliases: Sequence[str]) -> list[str]:
    """*aliases* checked, a lone string taken as one alias (not as its letters)."""
    names = [aliases] if isinstance(aliases, str) else list(aliases)
    for alias in names:
        check_alias(alias)
    return names


def _one_version(spec: str | Spec, action: str) -> str | Spec:
    """*spec*, if it names one version explicitly; a bare ``NAME`` given to a removal would
    remove the newest version of an artifact its user may have meant as a whole."""
    if isinstance(spec, str) and ":" not in spec and "@" not in spec:
        quote = "'" if " " in spec else ""  # as it is typed in a shell
        raise RegistryError(
            f"{action} removes one version: write {quote}{spec}:v<N>{quote}, "
            f"{quote}{spec}:<alias>{quote} or {quote}{spec}:latest{quote} (a bare name does not "
            "say which)"
        )
    return spec


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, min(0.01 * 2**attempt, 0.5)))


def open(url: str | os.PathLike[str] | None = None, **storage_options: Any) -> Registry:
    """The registry at *url* (a folder or any fsspec URL; default ``HUBCORE_REGISTRY``, else
    ``<hub home>/registry``); *storage_options* go to the fsspec filesystem."""
    from hubcore import settings

    where = str(url) if url is not None else settings.current().registry
    if not where:
        where = str(config.get_dir() / "registry")
    return Registry(open_store(where, storage_options), storage_options)


def blob_key(sha256: str) -> str:
    """Where the file with this sha256 is stored."""
    return f"blobs/sha256/{sha256[:2]}/{sha256}"


def manifest_key(digest: str) -> str:
    """Where the manifest with this digest is stored."""
    return f"manifests/sha256/{digest[:2]}/{digest}.json"


def collection_key(name: str) -> str:
    """The folder of artifact *name*."""
    return f"collections/{encode_name(name)}"


def collection_record_key(name: str) -> str:
    """The record of collection *name*: kind (artifact or registered model), type, ..."""
    return f"{collection_key(name)}/collection.json"


def version_key(name: str, number: int) -> str:
    """The record of version *number* (zero-padded: key order is number order)."""
    return f"{collection_key(name)}/versions/v{number:010d}.json"


def alias_key(name: str, alias: str) -> str:
    """The pointer of one alias."""
    return f"{collection_key(name)}/aliases/{alias}.json"


def link_key(name: str, number: int, model: str, model_number: int) -> str:
    """The index entry saying registered model version *model* ``v<model_number>`` links to
    artifact version *name* ``v<number>`` (``~`` is in no name, so the key splits back)."""
    return f"{collection_key(name)}/linked/{number:010d}/{encode_name(model)}~v{model_number}.json"


def digest_key(name: str, digest: str) -> str:
    """The index entry from a digest to the version holding it."""
    return f"{collection_key(name)}/digests/{digest}.json"


#: What the records of a collection's folders must hold, so that a record edited by hand into
#: another shape is a clear error rather than a ``KeyError`` deep inside: field -> (types,
#: required).
_RECORD_SHAPES: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "versions": {
        "name": ((str,), True),
        "number": ((int,), True),
        "digest": ((str,), True),
        "pins": ((dict,), False),
        "link": ((dict, type(None)), False),
        "metadata": ((dict, type(None)), False),
        "tags": ((list, type(None)), False),
    },
    "aliases": {
        "alias": ((str,), False),
        "version": ((int, type(None)), False),
        "digest": ((str, type(None)), False),
        "seq": ((int,), False),
        "fence": ((int,), False),
        "event": ((dict,), False),
    },
}


def _shape_fault(folder: str, stem: str, record: Mapping[str, Any]) -> str | None:
    """What is wrong with *record* (``<folder>/<stem>.json``) beyond :data:`_RECORD_SHAPES`
    (its nested fields, and fields that must agree), or ``None``. ``latest`` pointers of older
    builds hold no digest, and none is read from them."""

    def number(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    if folder == "versions":
        pins = record.get("pins") or {}
        if not all(isinstance(k, str) and number(v) for k, v in pins.items()):
            return "its 'pins' are not alias -> move number"
        link = record.get("link")
        if link is not None and not (
            isinstance(link.get("name"), str) and number(link.get("version"))
        ):
            return "its 'link' is not a name and a version number"
    elif (
        folder == "aliases"
        and stem != LATEST
        and record.get("version") is not None
        and not is_sha256(record.get("digest"))
    ):
        return "it names a version without that version's sha256 digest"
    return None


@attrs.define
class Version:
    """One version of an artifact: its record (number, digest, metadata, who and when) and,
    once read, its manifest (files). See :meth:`Registry.get`."""

    registry: Registry
    record: dict[str, Any]
    _manifest: Manifest | None = None

    @property
    def name(self) -> str:
        """The artifact's name."""
        return str(self.record["name"])

    @property
    def number(self) -> int:
        """The version number (``v<number>``)."""
        return int(self.record["number"])

    @property
    def digest(self) -> str:
        """The content identity: sha256 of the manifest."""
        return str(self.record["digest"])

    @property
    def type(self) -> str:
        """The artifact type (``model``, ``dataset``, ...)."""
        return str(self.record.get("type", ""))

    @property
    def description(self) -> str:
        """The (editable) description."""
        return str(self.record.get("description") or "")

    @property
    def metadata(self) -> dict[str, Any]:
        """The (editable) metadata."""
        return dict(self.record.get("metadata") or {})

    @property
    def tags(self) -> list[str]:
        """The (editable) tags."""
        return list(self.record.get("tags") or [])

    @property
    def created(self) -> str:
        """When the version was logged (ISO 8601, UTC)."""
        return str(self.record.get("created", ""))

    @property
    def creator(self) -> str:
        """Who logged it (``user@host``)."""
        return str(self.record.get("creator", ""))

    @property
    def link(self) -> tuple[str, int] | None:
        """For a version of a registered model: the artifact version it bookmarks
        (``(name, number)``); ``None`` for an artifact's own version."""
        link = self.record.get("link")
        return (str(link["name"]), int(link["version"])) if link else None

    @property
    def run(self) -> str | None:
        """The id of the run that logged this version, if one did."""
        run = self.record.get("run")
        return str(run) if run else None

    def source(self) -> Version:
        """The artifact version behind this one: itself, or the one a registered model's
        version links to (read again, so edits of its metadata show)."""
        if self.link is None:
            return self
        name, number = self.link
        return self.registry._live(name, number, f"{name}:v{number}")

    @property
    def manifest(self) -> Manifest:
        """The files and references (one read, cached)."""
        if self._manifest is None:
            self._manifest = self.registry._read_manifest(self.digest)
        return self._manifest

    @property
    def files(self) -> tuple[FileEntry, ...]:
        """Every file, stored or referenced, in path order."""
        return self.manifest.files

    @property
    def aliases(self) -> list[str]:
        """The aliases pointing at this version now (``latest`` included)."""
        pointing = self.registry.aliases(self.name)
        return sorted(a for a, n in pointing.items() if n == self.number)

    def __str__(self) -> str:
        return f"{self.name}:v{self.number}"

    def to_dict(self, *, files: bool = True) -> dict[str, Any]:
        """A JSON-ready description (with the file list when *files*)."""
        data = {
            "name": self.name,
            "version": f"v{self.number}",
            "digest": f"sha256:{self.digest}",
            "type": self.type,
            "description": self.description,
            "metadata": self.metadata,
            "tags": self.tags,
            "created": self.created,
            "creator": self.creator,
            "size": self.record.get("size"),
            "file_count": self.record.get("file_count"),
        }
        if self.link is not None:
            data["link"] = f"{self.link[0]}:v{self.link[1]}"
        if self.run is not None:
            data["run"] = self.run
        if files:
            data["files"] = [f.to_dict() for f in self.files]
        return data

    def download(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        progress: bool | None = None,
        cache: Cache | None = None,
    ) -> Path:
        """Fetch the files into hubcore's content-addressed cache (each verified by sha256,
        in parallel, stored once whatever the versions sharing it) and return the folder:
        the cached snapshot, or a copy of it in *root* when given."""
        folder = self.registry.materialise(self.name, self.digest, self.manifest, progress, cache)
        if root is None:
            return folder
        target = Path(root)
        for entry in self.files:
            atomic_copy(folder / entry.path, target / entry.path)
        return target


@attrs.define
class Registry:
    """A registry on one store; see the package docstring for the layout and guarantees."""

    store: Store
    storage_options: Mapping[str, Any] = attrs.field(factory=dict)
    _marked: bool = False

    def __str__(self) -> str:
        return self.store.url

    # -- small helpers -----------------------------------------------------------------------
    def _read_json(self, key: str) -> tuple[dict[str, Any], str] | None:
        try:
            data, tag = self.store.read(key)
        except FileNotFoundError:
            return None
        try:
            parsed = json.loads(data)
        except ValueError:
            raise RegistryError(
                f"{self.store.url}/{key} is not valid JSON; it was written outside hubcore"
            ) from None
        if not isinstance(parsed, dict):
            raise RegistryError(f"{self.store.url}/{key} is not a JSON object")
        parts = key.split("/")  # collections/<name>/<folder>/<record>.json
        shape = (
            _RECORD_SHAPES.get(parts[2]) if len(parts) == 4 and parts[0] == "collections" else None
        )
        for field, (kinds, required) in (shape or {}).items():
            value = parsed.get(field)
            if (field in parsed or required) and (
                not isinstance(value, kinds) or isinstance(value, bool)
            ):
                self._damaged(key, f"its {field!r} is {value!r}")
        if shape is not None and (
            fault := _shape_fault(parts[2], parts[3].removesuffix(".json"), parsed)
        ):
            self._damaged(key, fault)
        return parsed, tag

    def _damaged(self, key: str, what: str) -> NoReturn:
        raise RegistryError(
            f"{self.store.url}/{key} is damaged (written outside hubcore): {what}; restore it "
            "from a backup or remove it"
        )

    def _read_manifest(self, digest: str) -> Manifest:
        try:
            data, _ = self.store.read(manifest_key(digest))
        except FileNotFoundError:
            raise RegistryError(
                f"the manifest sha256:{digest} is missing from {self.store.url}; the registry "
                "was damaged (was gc run with a grace period shorter than a log?)"
            ) from None
        return Manifest.from_bytes(data, digest)

    def _mark(self) -> None:
        """Write the format marker once, and check on it that the storage honours both
        conditional writes: a store that ignores them would lose versions and alias moves
        without a word, so it is refused before the first change."""
        if self._marked:
            return
        marker = _dumps({"format": "hubcore-registry", "version": 1})
        self.store.create("registry.json", marker)
        ignored = []
        if self.store.create("registry.json", marker):
            ignored.append("If-None-Match: * (create-only)")
        data, _ = self.store.read("registry.json")
        if self.store.swap("registry.json", data, f'"{"0" * 32}-stale"'):
            ignored.append("If-Match (compare-and-swap)")
        if ignored:
            raise UnsupportedStorageError(
                f"the storage of the registry {self.store.url} ignores {' and '.join(ignored)}: "
                "concurrent writers would overwrite each other's versions and alias moves "
                "unnoticed. Use a store that honours conditional writes (AWS S3, MinIO, a "
                "local or network folder)."
            )
        self._marked = True

    def _update(
        self, key: str, change: Any, *, what: str
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Read-modify-compare-and-swap *key* until it holds; *change(current)* returns the
        new value or ``None`` (nothing to do). Returns (before, after), or ``None``."""
        self._mark()
        for attempt in range(_ATTEMPTS):
            found = self._read_json(key)
            if found is None:
                raise VersionNotFoundError(f"{what} does not exist")
            current, tag = found
            new = change(dict(current))
            if new is None:
                return None
            if self.store.swap(key, _dumps(new), tag):
                return current, new
            _backoff(attempt)
        raise ConflictError(f"{what} kept changing under other writers; try again")

    def _event_key(self, name: str, event: Mapping[str, Any]) -> str:
        return f"{collection_key(name)}/events/{event['id']}.json"

    def _append_event(self, name: str, event: dict[str, Any]) -> None:
        self.store.create(self._event_key(name, event), _dumps(event))

    def _event(
        self, name: str, kind: str, *, before: Any = None, after: Any = None, **fields: Any
    ) -> dict[str, Any]:
        """A change's event: what (kind, name), when, who, and the state before and after."""
        return {
            "id": _event_id(),
            "kind": kind,
            "name": name,
            "when": _now(),
            "who": actor(),
            "before": before,
            "after": after,
            **fields,
        }

    def _commit(
        self, name: str, event: dict[str, Any], *, announce: bool = True, notify: bool = True
    ) -> None:
        """Record a change that has happened: its notifications go to the outbox first, then
        the event to the append-only history (create-only: a second writer of the same event
        changes nothing); then plugins hear it and pending notifications are delivered, in a
        bounded time (:mod:`hubcore.registry.notify`). *notify* false: a record only (the
        artifact's side of a link); *announce* false: plugins heard it in the writer's process
        (a repair of a dead writer's event)."""
        from hubcore.registry import notify as notifier

        if notify:
            notifier.enqueue(self, event)
        self._append_event(name, event)
        if notify and announce:
            notifier.announce(self, event)
        if notify:
            notifier.deliver_pending(self)

    def _repair(self, name: str, event: dict[str, Any]) -> None:
        """Finish recording *event* (embedded in a pointer) if its writer died before."""
        if self.store.info(self._event_key(name, event)) is None:
            self._commit(name, event, announce=False)

    # -- logging -----------------------------------------------------------------------------
    def log(
        self,
        name: str,
        path_or_files: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        *,
        type: str = "model",
        description: str = "",
        metadata: Mapping[str, Any] | None = None,
        aliases: Sequence[str] = (),
        tags: Sequence[str] = (),
        references: Mapping[str, str | Reference] | None = None,
        progress: bool | None = None,
        run: str | None = None,
    ) -> Version:
        """Record a version of *name* from a folder, a file or ``{path: local file}``, plus
        *references* (``{path: URL or Reference}``: files left at their URL).

        Content is stored once by sha256; a version identical to an existing one (same
        paths, sizes and hashes) is that version (new *aliases* are applied, nothing is
        uploaded). Otherwise the next number ``v<N>`` is taken with a create-only write, only
        after every file and the manifest are stored, so a writer that dies leaves no version;
        ``latest`` moves to it, then each alias in *aliases*. *run* is the id of the run
        logging it (:meth:`Run.log <hubcore.registry.runs.Run.log>` passes it): the lineage.

        The version returned is live when the log returns: if another writer deletes it
        meanwhile (the version this log made, or the one found holding the content), the
        content is logged again as a new version, its files uploaded again only if they were
        removed; :class:`DeletedConcurrentlyError` if that keeps happening.
        """
        check_name(name)
        aliases = _alias_names(aliases)
        metadata = dict(metadata or {})
        _storable(metadata, "metadata")  # fails early on what cannot be stored
        local = hash_files(collect_files(path_or_files)) if path_or_files is not None else []
        entries = [FileEntry(f.path, f.size, f.sha256) for f in local]
        entries += self._references(references or {}, progress)
        if not entries:
            raise RegistryError(f"nothing to log for {name}: give files or references")
        manifest = Manifest.of(entries)
        digest = manifest.digest
        self._mark()
        self._ensure_collection(name, type)

        def log_once() -> Version:
            existing = self._by_digest(name, digest)
            if existing is not None:
                logger.info("%s already holds this content as v%d", name, existing.number)
                return existing
            self._store_files(local, progress)  # uploads only what is missing
            self._store_manifest(manifest)
            record = {
                "format": 1,
                "name": name,
                "digest": digest,
                "type": type,
                "description": description,
                "metadata": metadata,
                "tags": list(tags),
                "created": _now(),
                "creator": actor(),
                "writer": uuid.uuid4().hex,
                "event_id": _event_id(),
                "size": manifest.size,
                "file_count": len(manifest.files),
            }
            if run is not None:
                record["run"] = run
            number = self._take_number(name, record)
            version = self._complete(
                Version(self, {**record, "number": number}, manifest), repair=False
            )
            version._manifest = manifest
            return version

        return self._until_live(name, log_once, aliases, "log")

    def _until_live(
        self, name: str, make: Callable[[], Version], aliases: Sequence[str], verb: str
    ) -> Version:
        """The version *make* returns (made or found for some content), with *aliases* moved
        onto it, checked live after the last move: a version deleted by another writer
        before the check is never returned; *make* runs again instead (the deleted
        version's digest index entry is freed, or names a tombstone, so it makes a new
        version). A deletion after the check is a deletion after the log returned."""
        for _ in range(_RELOG_ATTEMPTS):
            version = make()
            try:
                for alias in aliases:
                    self._move_alias(name, alias, version)
            except VersionNotFoundError:  # its pin found it deleted
                if self._still_live(version):
                    raise
                continue
            if self._still_live(version):
                return version
            logger.info("%s was deleted by another writer during this %s: again", version, verb)
        raise DeletedConcurrentlyError(
            f"the version of {name} this {verb} made or found was deleted by another writer "
            f"before it could be returned, {_RELOG_ATTEMPTS} times in a row: {verb} it again "
            "once those deletions stop"
        )

    def _still_live(self, version: Version) -> bool:
        """Whether *version*'s record is there and not a tombstone (one read)."""
        current = self._read_version(version.name, version.number)
        return current is not None and not current.record.get("deleted")

    def _version_events(self, version: Version) -> list[tuple[dict[str, Any], bool]]:
        """The events recording *version*'s creation, rebuilt from its record alone (so its
        writer and anyone finishing for it write the same objects): ``(event, notify)``."""
        record, number = version.record, version.number
        if not isinstance(record.get("event_id"), str):
            return []  # written before versions carried their event
        base = {"id": record["event_id"], "when": record.get("created"), "before": None}
        base["who"] = record.get("creator")
        if version.link is None:
            after = {"version": number, "digest": version.digest, "run": record.get("run")}
            event = {**base, "kind": "log", "name": version.name, "after": after}
            return [({**event, "version": number, "digest": version.digest}, True)]
        source, source_number = version.link
        after = {"version": number, "link": f"{source}:v{source_number}", "digest": version.digest}
        linked = {"model": version.name, "version": number}
        event = {**base, "kind": "link", "name": version.name, "after": after, "version": number}
        other = {**base, "kind": "linked", "name": source, "after": linked}
        return [(event, True), ({**other, "version": source_number}, False)]

    def _complete(self, version: Version, *, repair: bool) -> Version:
        """The steps after a version's number is taken: the digest index, the link index (a
        registered model's version), ``latest``, and its events. Each step is create-only or
        moves forward only, so a writer killed part way is finished by the next writer that
        meets its version (*repair*: then plugins are not told again).

        Returns the version that holds the content: *version*, or, when another version of
        the same content holds the digest index, that one (*version* is then a duplicate,
        taken by a writer that raced another logging the same content, and is tombstoned:
        see :meth:`_claim_digest`)."""
        name, number = version.name, version.number
        events = self._version_events(version)
        if repair and events:  # the last event is the last step: present, nothing is left
            last = events[-1][0]
            if self.store.info(self._event_key(str(last["name"]), last)) is not None:
                return version
        holder = self._claim_digest(version)
        if holder.number != number:
            self._discard_duplicate(version, holder)
            return self._complete(holder, repair=True)  # its writer may have died
        digest = version.digest
        if version.link is not None:
            source, source_number = version.link
            self.store.create(link_key(source, source_number, name, number), b"{}")
        self._advance_latest(name, number, digest)
        for event, notify in events:
            where = str(event["name"])
            if repair:
                if self.store.info(self._event_key(where, event)) is None:
                    self._commit(where, event, announce=False, notify=notify)
            else:
                self._commit(where, event, notify=notify)
        return version

    def _claim_digest(self, version: Version) -> Version:
        """The version that holds *version*'s content: the digest index entry
        (``digests/<digest>.json``) is claimed with a create-only write after the number is
        taken, and the first claim wins. A claim on a version that is deleted (or holds other
        content: written outside hubcore) is taken over by compare-and-swap; a live version of
        the same content under another number is returned: *version* is a duplicate."""
        name, number, digest = version.name, version.number, version.digest
        key = digest_key(name, digest)
        entry = _dumps({"version": number})
        for attempt in range(_ATTEMPTS):
            if self.store.create(key, entry):
                return version
            found = self._read_json(key)
            if found is None:
                continue  # freed and removed meanwhile (by an older hubcore): claim again
            current, tag = found
            other = current.get("version")
            if other == number:
                return version
            if isinstance(other, int):
                holder = self._read_version(name, other)
                if (
                    holder is not None
                    and holder.digest == digest
                    and not holder.record.get("deleted")
                ):
                    return holder
            if self.store.swap(key, entry, tag):
                return version
            _backoff(attempt)
        raise ConflictError(f"the digest index of {version} kept changing under other writers")

    def _discard_duplicate(self, version: Version, holder: Version) -> None:
        """Tombstone *version*, a second number taken for *holder*'s content (no event: it
        was never logged as far as anyone is told; the tombstone names the version kept, and
        an alias set on it meanwhile moves to that version)."""
        logger.info(
            "%s holds the same content as v%d, logged at the same time: it is that version",
            version,
            holder.number,
        )
        self._tombstone(version, force=True, kind="delete", holder=holder)

    def _references(
        self, references: Mapping[str, str | Reference], progress: bool | None
    ) -> list[FileEntry]:
        from hubcore.store.transfer import fetch

        entries = []
        for path, ref in references.items():
            check_path(path)
            ref = Reference(ref) if isinstance(ref, str) else ref
            if ref.sha256 is None or ref.size is None:
                got = fetch(ref.url, sha256=ref.sha256, progress=progress)  # hashed as fetched
                ref = Reference(ref.url, got.sha256, got.size)
            entries.append(FileEntry(path, ref.size, str(ref.sha256), ref.url))
        return entries

    def _ensure_collection(
        self, name: str, type: str, kind: str = ARTIFACT, **fields: Any
    ) -> dict[str, Any]:
        """Create collection *name* of *kind* unless it exists; refuses the other kind (a
        registered model takes no logs; an artifact is not linked to). Returns its record."""
        key = collection_record_key(name)
        record = {
            "name": name,
            "kind": kind,
            "type": type,
            "created": _now(),
            "creator": actor(),
            **fields,
        }
        found = self._read_json(key)
        if found is None:
            self._claim_name(name)
            if self.store.create(key, _dumps(record)):
                return record
            found = self._read_json(key)
        existing = found[0] if found else record
        _same_name(name, existing)
        if existing.get("kind", ARTIFACT) != kind:
            if kind == ARTIFACT:
                raise RegistryError(
                    f"{name} is a registered model: link artifact versions to it with "
                    f"link(), or log under another name"
                )
            raise RegistryError(
                f"{name} is an artifact, not a registered model; link to another name"
            )
        if kind == REGISTERED_MODEL:
            return existing
        if found and found[0].get("type") != type:
            raise RegistryError(
                f"{name} is an artifact of type {found[0].get('type')!r}, not {type!r}; log "
                "it with that type or under another name"
            )
        return existing

    def _claim_name(self, name: str) -> None:
        """Claim *name* whatever its case (create-only), so that no two names that differ
        only in case exist: they would share one folder on case-insensitive storage."""
        key = f"names/{encode_name(name.lower())}.json"
        if self.store.create(key, _dumps({"name": name})):
            return
        found = self._read_json(key)
        if found is not None:
            _same_name(name, found[0])

    def _by_digest(self, name: str, digest: str) -> Version | None:
        """The live version holding *digest*, if any (finished first if its writer died)."""
        found = self._read_json(digest_key(name, digest))
        if found is not None:
            number = found[0].get("version")
            if not isinstance(number, int):
                return None  # freed: the version that held it was deleted
            version = self._read_version(name, number)
            if version is not None and version.digest == digest:
                if version.record.get("deleted"):
                    return None
                return self._complete(version, repair=True)  # its writer may have died
            return None
        # a writer may have died between taking its number and indexing it: check latest
        latest = self._latest(name)  # live, or None
        if latest is not None and latest.digest == digest:
            return self._complete(latest, repair=True)
        return None

    def _store_files(self, files: list[LocalFile], progress: bool | None) -> None:
        unique = {f.sha256: f for f in files}
        total = sum(f.size for f in unique.values())
        with (
            _bar(total, "upload", progress) as bar,
            concurrent.futures.ThreadPoolExecutor(max_workers=_WORKERS) as pool,
        ):
            for done in pool.map(self._store_file, unique.values()):
                bar.update(done)

    def _store_file(self, item: LocalFile) -> int:
        key = blob_key(item.sha256)
        info = self.store.info(key)
        if info is not None and info.size == item.size:
            if time.time() - info.mtime > TOUCH_AGE:
                self.store.touch(key, item.source)
            return item.size
        self.store.upload(item.source, key)
        st = item.source.stat()
        if (st.st_size, st.st_mtime_ns) != (item.size, item.mtime_ns):
            self.store.delete(key)
            raise RegistryError(f"{item.source} changed while it was uploaded; log it again")
        return item.size

    def _store_manifest(self, manifest: Manifest) -> None:
        key = manifest_key(manifest.digest)
        if not self.store.create(key, manifest.to_bytes()):
            info = self.store.info(key)
            if info is not None and time.time() - info.mtime > TOUCH_AGE:
                self.store.touch(key)

    def _take_number(self, name: str, record: dict[str, Any]) -> int:
        latest = self._read_json(alias_key(name, LATEST))
        number = (
            int(latest[0]["version"]) + 1 if latest and latest[0].get("version") is not None else 0
        )
        for _ in range(100_000):
            if self.store.create(version_key(name, number), _dumps({**record, "number": number})):
                return number
            found = self._read_json(version_key(name, number))
            if found is not None and found[0].get("writer") == record["writer"]:
                return number  # our write went through; only its answer was lost
            if found is not None and not found[0].get("deleted"):
                # its writer may have died after taking the number: finish for it
                self._complete(Version(self, found[0]), repair=True)
            number += 1
        raise ConflictError(f"could not take a version number for {name}")

    def _advance_latest(self, name: str, number: int, digest: str) -> None:
        """Move ``latest`` forward to ``v<number>``; if that version was deleted meanwhile
        (its deleter may have looked at ``latest`` before this move), move it back."""
        key = alias_key(name, LATEST)
        new = _dumps({"alias": LATEST, "version": number, "digest": digest})
        for attempt in range(_ATTEMPTS):
            found = self._read_json(key)
            if found is None:
                moved = self.store.create(key, new)
                if not moved:
                    continue
            else:
                current, tag = found
                if current.get("version") is not None and int(current["version"]) >= number:
                    return
                moved = self.store.swap(key, new, tag)
            if moved:
                # a tombstone written before this check is seen here; one written after
                # it is followed by its deleter's own retreat, which sees this move
                version = self._read_version(name, number)
                if version is None or version.record.get("deleted"):
                    self._retreat_latest(name, number)
                return
            _backoff(attempt)
        logger.warning("could not move %s:latest to v%d (readers still find it)", name, number)

    # -- reading -----------------------------------------------------------------------------
    def _read_version(self, name: str, number: int) -> Version | None:
        found = self._read_json(version_key(name, number))
        if found is None:
            return None
        stored = found[0].get("name")
        if isinstance(stored, str) and stored != name:  # a case-insensitive folder
            raise ArtifactNotFoundError(
                f"no artifact named {name!r} in {self.store.url} ({stored!r} is stored in its "
                "place: the storage ignores case)"
            )
        return Version(self, found[0])

    def _live(self, name: str, number: int, what: str) -> Version:
        version = self._read_version(name, number)
        if version is None:
            self._missing(name, what)
        assert version is not None
        if version.record.get("deleted"):
            raise VersionNotFoundError(f"{what} (v{number}) was deleted")
        return version

    def _missing(self, name: str, what: str, hint: str = "") -> None:
        if self.store.info(f"{collection_key(name)}/collection.json") is None:
            raise ArtifactNotFoundError(f"no artifact named {name!r} in {self.store.url}")
        raise VersionNotFoundError(f"{what} does not exist in {self.store.url}{hint}")

    def _latest(self, name: str) -> Version | None:
        """The newest live version: the ``latest`` pointer (its version checked live), then a
        probe past it (a writer may have died between taking a number and moving the
        pointer). A pointer left on a deleted or missing version (by an older hubcore, or a
        writer that died between moving it and seeing the deletion) resolves to the newest
        live version before it, and is repaired by compare-and-swap."""
        key = alias_key(name, LATEST)
        found = self._read_json(key)
        pointed = -1
        if found is not None and found[0].get("version") is not None:
            try:
                pointed = int(found[0]["version"])
            except (TypeError, ValueError):
                raise RegistryError(
                    f"{self.store.url}/{key} is damaged (written outside hubcore): remove it, "
                    "and it is rebuilt by the next log"
                ) from None
        newest = self._read_version(name, pointed) if pointed >= 0 else None
        if newest is not None and newest.record.get("deleted"):
            newest = None
        number = pointed
        while (probe := self._read_version(name, number + 1)) is not None:
            number += 1
            if not probe.record.get("deleted"):
                newest = probe
        if newest is None and pointed >= 0 and found is not None:
            newest = self._newest_live_before(name, pointed)
            self._repair_latest(name, found[1], newest)
        return newest

    def _latest_number(self, name: str) -> int | None:
        """The number of :meth:`_latest`."""
        latest = self._latest(name)
        return latest.number if latest is not None else None

    def _newest_live_before(self, name: str, number: int) -> Version | None:
        """The newest version numbered below *number* that is not deleted."""
        for previous in range(number - 1, -1, -1):
            candidate = self._read_version(name, previous)
            if candidate is not None and not candidate.record.get("deleted"):
                return candidate
        return None

    def _repair_latest(self, name: str, tag: str, newest: Version | None) -> None:
        """Move a ``latest`` pointer found on a deleted version (its version tag *tag*) to
        *newest*, by one compare-and-swap: if it moved meanwhile, its mover set it. A reader
        may be unable to write (read-only credentials): the repair is then left to the next
        writer, and the read is still right."""
        try:
            self._mark()
            if self.store.swap(alias_key(name, LATEST), _latest_pointer(newest), tag):
                logger.info("%s:latest was on a deleted version; it is repaired", name)
        except (OSError, UnsupportedStorageError) as exc:
            logger.debug("%s:latest is left as it is (%s)", name, exc)

    def resolve(self, spec: str | Spec) -> tuple[int, str]:
        """``(number, digest)`` a spec names now: one small read for an alias."""
        spec = parse_spec(spec) if isinstance(spec, str) else spec
        if spec.number is not None:
            version = self._live(spec.name, spec.number, str(spec))
            return version.number, version.digest
        if spec.digest is not None:
            version = self._with_digest(spec)
            return version.number, version.digest
        if spec.alias == LATEST:
            latest = self._newest(spec.name)
            return latest.number, latest.digest
        alias = str(spec.alias)
        pointer = self._read_json(alias_key(spec.name, alias))
        if (
            pointer is None
            or pointer[0].get("version") is None
            or pointer[0].get("alias", alias) != alias  # another spelling: the storage ignores case
        ):
            self._missing(spec.name, f"the alias {spec}", misread_alias(alias))
        assert pointer is not None
        return int(pointer[0]["version"]), str(pointer[0]["digest"])

    def _newest(self, name: str) -> Version:
        """What ``NAME:latest`` names: the newest live version, or a clear error."""
        latest = self._latest(name)
        if latest is None:
            self._missing(
                name, f"{name}:latest (no live version: none was logged, or every one was deleted)"
            )
        assert latest is not None
        return latest

    def _with_digest(self, spec: Spec) -> Version:
        """The live version holding digest *spec.digest*, found through the digest index and
        checked against the version's own record (an index entry is only a hint)."""
        found = self._read_json(digest_key(spec.name, str(spec.digest)))
        if found is None:
            self._missing(spec.name, str(spec))
        assert found is not None
        if found[0].get("version", 0) is None:  # freed: its version was deleted
            self._missing(spec.name, str(spec))
        try:
            number = int(found[0]["version"])
        except (KeyError, TypeError, ValueError):
            raise RegistryError(
                f"the digest index of {spec} in {self.store.url} is damaged (written outside "
                "hubcore)"
            ) from None
        version = self._live(spec.name, number, str(spec))
        if version.digest != spec.digest:
            raise RegistryError(
                f"the digest index of {spec} names v{number}, which holds sha256:"
                f"{version.digest}: the registry in {self.store.url} was modified outside hubcore"
            )
        return version

    def get(self, spec: str | Spec) -> Version:
        """The version *spec* names: ``NAME``/``NAME:latest``, ``NAME:ALIAS``, ``NAME:v3`` or
        ``NAME@sha256:<hex>`` (a constant number of reads, however many versions exist)."""
        spec = spec if isinstance(spec, Spec) else parse_spec(spec)
        if spec.number is not None:
            return self._live(spec.name, spec.number, str(spec))
        if spec.digest is not None:
            return self._with_digest(spec)
        if spec.alias == LATEST:
            return self._newest(spec.name)
        number, _ = self.resolve(spec)
        return self._live(spec.name, number, str(spec))

    def artifacts(self) -> list[str]:
        """The names of every artifact."""
        return [decode_name(c) for c in self.store.folders("collections")]

    def versions(
        self, name: str, *, start_after: int | None = None, limit: int = 100, deleted: bool = False
    ) -> list[Version]:
        """One page of versions of *name* in number order: those after ``v<start_after>``, at
        most *limit* (``0``: all), deleted ones only when *deleted*."""
        folder = f"{collection_key(name)}/versions"
        after = version_key(name, start_after) if start_after is not None else ""
        found = []
        for info in self.store.objects(folder, start_after=after, limit=limit):
            record = self._read_json(info.key)
            if record is not None and (deleted or not record[0].get("deleted")):
                found.append(Version(self, record[0]))
        if (
            not found
            and start_after is None
            and self.store.info(f"{collection_key(name)}/collection.json") is None
        ):
            raise ArtifactNotFoundError(f"no artifact named {name!r} in {self.store.url}")
        return found

    def aliases(self, name: str) -> dict[str, int]:
        """``{alias: version number}`` of every alias of *name*, ``latest`` included."""
        result: dict[str, int] = {}
        for info in self.store.objects(f"{collection_key(name)}/aliases"):
            alias = info.key.rpartition("/")[2].removesuffix(".json")
            if alias == LATEST:
                continue
            found = self._read_json(info.key)
            if found is not None and found[0].get("version") is not None:
                result[alias] = int(found[0]["version"])
        latest = self._latest_number(name)
        if latest is not None:
            result[LATEST] = latest
        return dict(sorted(result.items()))

    # -- aliases -----------------------------------------------------------------------------
    def alias(self, spec: str, alias: str) -> Version:
        """Point *alias* at the version *spec* names (``classifier:v3``); the move is a
        compare-and-swap and is recorded in the history."""
        check_alias(alias)
        version = self.get(spec)
        self._move_alias(version.name, alias, version)
        return version

    def unalias(self, name: str, alias: str) -> None:
        """Remove *alias* from artifact *name* (recorded in the history)."""
        check_name(name)
        check_alias(alias, existing=True)
        if not self._move_alias(name, alias, None):
            self._missing(name, f"the alias {name}:{alias}")

    def _move_alias(
        self, name: str, alias: str, version: Version | None, *, only_from: int | None = None
    ) -> bool:
        """CAS the pointer to *version* (``None``: remove), embedding the move's event; the
        event file is written after, and again by the next mover if this one died first.

        A move onto a version first pins it: ``pins[alias] = seq`` of the move is written into
        the version's record by compare-and-swap, which fails once the version is deleted
        (:class:`VersionNotFoundError`), and which a deletion sees (:meth:`_remove`)."""
        key = alias_key(name, alias)
        self._mark()
        for attempt in range(_ATTEMPTS):
            found = self._read_json(key)
            current, tag = found if found is not None else ({}, None)
            if version is not None:  # a removal makes no second spelling
                self._one_case(name, alias, current.get("alias") if found else None, key)
            elif current.get("alias") == LATEST and alias != LATEST:
                raise InvalidNameError(
                    f"{name}:{alias} is stored as {name}:latest here (the storage ignores case); "
                    "'latest' follows the newest version and is never removed"
                )
            if current.get("event"):
                self._repair(name, current["event"])  # its writer may have died
            before = current.get("version")
            target = version.number if version is not None else None
            if before == target or (only_from is not None and before != only_from):
                return target is not None and before == target
            event = self._event(
                name,
                "alias" if version else "unalias",
                before={"version": before} if before is not None else None,
                after={"version": target} if target is not None else None,
                alias=alias,
                **{"from": before},
                to=target,
                seq=int(current.get("seq", -1)) + 1,
            )
            pointer = {
                "alias": alias,
                "version": target,
                "digest": version.digest if version is not None else None,
                "seq": event["seq"],
                "event": event,
            }
            if version is not None:
                self._pin(version, alias, int(event["seq"]))
            done = (
                self.store.create(key, _dumps(pointer))
                if tag is None
                else self.store.swap(key, _dumps(pointer), tag)
            )
            if done:
                self._commit(name, event)
                return True
            _backoff(attempt)
        raise ConflictError(f"the alias {name}:{alias} kept moving under other writers")

    def _one_case(self, name: str, alias: str, stored: str | None, key: str) -> None:
        """Refuse *alias* if another alias of *name* differs from it only in case: the pointer
        read for it at *key* holds another spelling (*stored*: the storage ignores case), or,
        for an alias not set before, the artifact's aliases hold one (one listing, first time
        only). A removed alias keeps its pointer, so it holds its spelling too."""
        if stored is None:
            folder = f"{collection_key(name)}/aliases"
            keys = [info.key for info in self.store.objects(folder)]
            spellings = [key.rpartition("/")[2].removesuffix(".json") for key in keys]
            stored = next((n for n in spellings if n.lower() == alias.lower() and n != alias), None)
        if stored is None or stored == alias:
            return
        if stored.lower() != alias.lower():
            self._damaged(key, f"it names the alias {stored!r}")
        raise InvalidNameError(
            f"{name} has (or had: a removed alias keeps its spelling) the alias {stored!r}, "
            f"which differs from {alias!r} only in case; use that spelling (a case-insensitive "
            "folder would hold both in one file)"
        )

    def _pin(self, version: Version, alias: str, seq: int) -> None:
        """Record in *version*'s record that *alias* is about to move onto it with move number
        *seq* (or a later one); :class:`VersionNotFoundError` if it was deleted."""

        def pin(current: dict[str, Any]) -> dict[str, Any] | None:
            if current.get("deleted"):
                raise VersionNotFoundError(f"{version} was deleted")
            pins = dict(current.get("pins") or {})
            # pins only grow: a record never returns to bytes (and so a tag) seen before a
            # pin, and a pin covers every move of that alias up to its seq
            if int(pins.get(alias, -1)) >= seq:
                return None
            return {**current, "pins": {**pins, alias: seq}}

        self._update(version_key(version.name, version.number), pin, what=str(version))

    def _fence(self, name: str, alias: str, number: int, seq: int) -> bool:
        """Whether *alias*, pinned on ``v<number>`` for its move number *seq*, points at it.
        A pinned move not made yet (the pointer is older than *seq*) is in flight, or its
        mover died: the fence consumes its number (the pointer's ``seq`` becomes *seq*, and
        ``fence`` counts up), so its compare-and-swap fails and its retry takes a later
        number, which it must pin anew: that write changes the version record, so a deletion
        that read the record before fails its compare-and-swap and looks again."""
        key = alias_key(name, alias)
        for attempt in range(_ATTEMPTS):
            found = self._read_json(key)
            if found is None:  # a first move in flight: it creates the pointer, so be first
                empty = {"alias": alias, "version": None, "digest": None, "seq": seq, "fence": 1}
                if self.store.create(key, _dumps(empty)):
                    return False
                continue
            current, tag = found
            if current.get("version") == number:
                return True
            if int(current.get("seq", -1)) >= seq:
                return False  # the move numbered seq was made (and moved on) or fenced
            fenced = {**current, "seq": seq, "fence": int(current.get("fence", 0)) + 1}
            if self.store.swap(key, _dumps(fenced), tag):
                return False
            _backoff(attempt)
        raise ConflictError(f"the alias {name}:{alias} kept moving under other writers")

    def history(self, name: str) -> list[dict[str, Any]]:
        """Every recorded change of *name*, oldest first: logs, alias moves (when, who, from,
        to), updates and deletions."""
        check_name(name)
        events: dict[str, dict[str, Any]] = {}
        for info in self.store.objects(f"{collection_key(name)}/events"):
            found = self._read_json(info.key)
            if found is not None:
                stem = info.key.rpartition("/")[2].removesuffix(".json")
                events[stem] = self._checked_event(name, found[0], info.key, stem)
        for info in self.store.objects(f"{collection_key(name)}/aliases"):
            found = self._read_json(info.key)
            if found is not None and found[0].get("event"):
                event = self._checked_event(name, found[0]["event"], info.key)
                events.setdefault(str(event["id"]), event)
        # versions past the latest pointer: their writers may have died before their events
        pointer = self._read_json(alias_key(name, LATEST))
        number = -1
        if pointer is not None and pointer[0].get("version") is not None:
            number = int(pointer[0]["version"])
        while (probe := self._read_version(name, number + 1)) is not None:
            number += 1
            if _duplicate(probe.record):
                continue  # never logged: a second number taken for content logged at once
            for event, _ in self._version_events(probe):
                if event["name"] == name:
                    events.setdefault(str(event["id"]), event)
        if not events and self.store.info(f"{collection_key(name)}/collection.json") is None:
            raise ArtifactNotFoundError(f"no artifact named {name!r} in {self.store.url}")
        return [events[k] for k in sorted(events)]

    def _checked_event(
        self, name: str, event: Any, key: str, stem: str | None = None
    ) -> dict[str, Any]:
        """*event* read from *key* if it is one hubcore wrote there: the fields every event
        has, of *name*, and stored under its own id (so no object can stand in for another
        event); else :class:`RegistryError` naming the object."""
        fields = ("id", "kind", "name", "when", "who")
        if (
            not isinstance(event, dict)
            or not all(isinstance(event.get(f), str) for f in fields)
            or event["name"] != name
            or (stem is not None and event["id"] != stem)
        ):
            raise RegistryError(
                f"{self.store.url}/{key} is not a history event of {name} that hubcore wrote "
                "(fields missing, another name, or an id that is not its key); the history "
                "was modified outside hubcore: remove or restore that object"
            )
        return event

    # -- editing and housekeeping --------------------------------------------------------------
    def update(
        self,
        spec: str,
        *,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
    ) -> Version:
        """Change the description, metadata (replaced) or tags of a version; its content
        never changes. Recorded in the history with before and after."""
        version = self.get(spec)
        changes: dict[str, Any] = {}
        if description is not None:
            changes["description"] = description
        if metadata is not None:
            _storable(dict(metadata), "metadata")
            changes["metadata"] = dict(metadata)
        if tags is not None:
            changes["tags"] = list(tags)

        def change(current: dict[str, Any]) -> dict[str, Any] | None:
            if current.get("deleted"):
                raise VersionNotFoundError(f"{version} was deleted")
            new = {**current, **changes}
            return None if new == current else new

        result = self._update(version_key(version.name, version.number), change, what=str(version))
        if result is None:
            return version
        before, after = result
        self._commit(
            version.name,
            self._event(
                version.name,
                "update",
                version=version.number,
                before={k: before.get(k) for k in changes},
                after=changes,
            ),
        )
        return Version(self, after, version._manifest)

    def delete(self, spec: str, *, force: bool = False) -> Version:
        """Delete a version: refused while a user alias points at it, unless *force* (then
        those aliases are removed). Its number is never reused (a tombstone stays); its
        files go at the next :meth:`gc` if no other version holds them. *spec* names the
        version (``NAME:v3``, ``NAME:ALIAS``, ``NAME@sha256:...``, or ``NAME:latest`` written
        out): a bare name is refused, as it reads like the whole artifact."""
        return self._remove(self.get(_one_version(spec, "delete")), force, "delete")

    def _remove(self, version: Version, force: bool, kind: str) -> Version:
        """Tombstone *version* (a deletion, or the unlinking of a registered model's version)."""
        name, number = version.name, version.number
        if not self._tombstone(version, force=force, kind=kind):
            return version  # another writer removed it first, and recorded it
        self._free_digest(name, number, version.digest)
        self._retreat_latest(name, number)
        before: dict[str, Any] = {"version": number, "digest": version.digest}
        if version.link is not None:
            before["link"] = f"{version.link[0]}:v{version.link[1]}"
        self._commit(
            name,
            self._event(name, kind, before=before, version=number, digest=version.digest),
        )
        return version

    def _tombstone(
        self, version: Version, *, force: bool, kind: str, holder: Version | None = None
    ) -> bool:
        """Write *version*'s tombstone; ``False`` if another writer did first. An alias on it
        refuses that unless *force* (then the alias is removed, or moved to *holder*, the
        version a duplicate's content belongs to).

        Safe against alias moves onto it: every move pins the version first (:meth:`_pin`),
        so the record read here names every alias that points at it or is about to; a move
        in flight is fenced off (:meth:`_fence`), and the tombstone is written by
        compare-and-swap on that same record, so a pin written meanwhile makes it fail and
        the check runs again."""
        name, number = version.name, version.number
        key = version_key(name, number)
        self._mark()
        for attempt in range(_ATTEMPTS):
            found = self._read_json(key)
            if found is None:
                self._missing(name, str(version))
            assert found is not None
            current, tag = found
            if current.get("deleted"):
                return False
            pins = current.get("pins") or {}
            pointing = {a for a, seq in pins.items() if self._fence(name, a, number, int(seq))}
            # aliases moved before versions carried pins
            pointing |= {a for a, n in self.aliases(name).items() if n == number and a != LATEST}
            if pointing and not force:
                raise AliasInUseError(
                    f"{version} is aliased {', '.join(sorted(pointing))}; move those aliases "
                    f"first, or {kind} with force (which removes them)"
                )
            if pointing:
                for alias in sorted(pointing):
                    self._move_alias(name, alias, holder, only_from=number)
                continue  # look again: an alias may have moved back meanwhile
            deleted: dict[str, Any] = {"when": _now(), "who": actor()}
            if holder is not None:
                deleted["duplicate_of"] = holder.number
            if self.store.swap(key, _dumps({**current, "deleted": deleted}), tag):
                return True
            _backoff(attempt)
        raise ConflictError(f"{version} kept changing under other writers; try again")

    # -- registered models -------------------------------------------------------------------
    def link(
        self,
        spec: str,
        model: str,
        *,
        aliases: Sequence[str] = (),
        description: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> Version:
        """Bookmark the artifact version *spec* in the registered model *model* (created on
        first use, with *description* and *tags*): the model numbers its own versions
        ``v0, v1, ...``, each pointing at one artifact version and sharing its digest (so
        :meth:`get`, downloads and ``registry:`` loads work through it). Linking the same
        content again returns the existing model version; *aliases* then move to it by the
        same compare-and-swap as an artifact's aliases. Recorded in both histories."""
        check_name(model)
        aliases = _alias_names(aliases)
        source = self.get(spec).source()
        self._mark()
        collection = self._ensure_collection(
            model,
            source.type,
            REGISTERED_MODEL,
            description=description or "",
            tags=list(tags or ()),
        )
        if (description is not None and collection.get("description") != description) or (
            tags is not None and list(collection.get("tags") or []) != list(tags)
        ):
            self.describe(model, description=description, tags=tags)

        def link_once() -> Version:
            existing = self._by_digest(model, source.digest)
            if existing is not None:
                return existing
            record = {
                "format": 1,
                "name": model,
                "digest": source.digest,
                "type": source.type,
                "description": source.description,
                "metadata": source.metadata,
                "tags": source.tags,
                "created": _now(),
                "creator": actor(),
                "writer": uuid.uuid4().hex,
                "event_id": _event_id(),
                "size": source.record.get("size"),
                "file_count": source.record.get("file_count"),
                "link": {"name": source.name, "version": source.number},
            }
            number = self._take_number(model, record)
            taken = Version(self, {**record, "number": number}, source._manifest)
            return self._complete(taken, repair=False)

        return self._until_live(model, link_once, aliases, "link")

    def unlink(self, spec: str, *, force: bool = False) -> Version:
        """Remove a registered model's version (``"Image Classifier:v1"``); the artifact
        version it linked to stays. Refused while a user alias points at it, unless
        *force*."""
        version = self.get(_one_version(spec, "unlink"))
        if version.link is None:
            raise RegistryError(
                f"{version} is an artifact's version, not a registered model's: use delete()"
            )
        return self._remove(version, force, "unlink")

    def collection(self, name: str) -> dict[str, Any]:
        """The record of artifact or registered model *name* (kind, type, description, ...)."""
        found = self._read_json(collection_record_key(name))
        if found is None:
            raise ArtifactNotFoundError(f"nothing named {name!r} in {self.store.url}")
        return {"kind": ARTIFACT, **found[0]}

    def registered_models(self) -> list[str]:
        """The names of every registered model."""
        return [n for n in self.artifacts() if self.collection(n)["kind"] == REGISTERED_MODEL]

    def describe(
        self, name: str, *, description: str | None = None, tags: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """Change the description or tags of a registered model (or artifact) *name*,
        recorded in its history with before and after; returns the new record."""
        changes: dict[str, Any] = {}
        if description is not None:
            changes["description"] = description
        if tags is not None:
            changes["tags"] = list(tags)

        def change(current: dict[str, Any]) -> dict[str, Any] | None:
            new = {**current, **changes}
            return None if new == current else new

        check_name(name)
        try:
            result = self._update(collection_record_key(name), change, what=name)
        except VersionNotFoundError:
            raise ArtifactNotFoundError(f"nothing named {name!r} in {self.store.url}") from None
        if result is None:
            return self.collection(name)
        before, after = result
        self._commit(
            name,
            self._event(
                name, "describe", before={k: before.get(k) for k in changes}, after=changes
            ),
        )
        return after

    def links(self, name: str, number: int) -> list[tuple[str, int]]:
        """The registered-model versions that link to artifact version *name* ``v<number>``
        (``(model, model version)``), including removed ones."""
        found = []
        for info in self.store.objects(f"{collection_key(name)}/linked/{number:010d}"):
            model, _, version = info.key.rpartition("/")[2].removesuffix(".json").rpartition("~v")
            found.append((decode_name(model), int(version)))
        return found

    def _free_digest(self, name: str, number: int, digest: str) -> None:
        """Free the digest index entry of the deleted ``v<number>`` (compare-and-swap: an entry
        a new log of the same content claimed meanwhile stays), so that logging the content
        again makes a new version."""
        key = digest_key(name, digest)
        for attempt in range(_ATTEMPTS):
            found = self._read_json(key)
            if found is None or found[0].get("version") != number:
                return
            if self.store.swap(key, _dumps({"version": None}), found[1]):
                return
            _backoff(attempt)

    def _retreat_latest(self, name: str, number: int) -> None:
        key = alias_key(name, LATEST)
        for attempt in range(_ATTEMPTS):
            found = self._read_json(key)
            if found is None or found[0].get("version") != number:
                return
            pointer = _latest_pointer(self._newest_live_before(name, number))
            if self.store.swap(key, pointer, found[1]):
                return
            _backoff(attempt)

    def gc(self, *, grace: float = GC_GRACE, dry_run: bool = False) -> dict[str, int]:
        """Remove blobs and manifests no live version holds, if older than *grace* seconds.

        Safe while others log, as long as *grace* exceeds the longest log plus an hour: a log
        stores its files before its version, and touches any old file it reuses, so
        whatever a running log relies on is younger than the grace period. The listing may be
        minutes old by the time an object's turn comes, so each object's time is read again
        just before it is deleted: one a log touched meanwhile stays.

        Also drops expired notifications of webhooks no one configures (``"notifications"``
        in the report; the rule: :mod:`hubcore.registry.notify`).
        """
        from hubcore.registry import notify

        if not grace >= 0:
            raise RegistryError(f"the grace period must be 0 or more seconds, not {grace}")
        started = time.time()
        cutoff = started - grace
        live: set[str] = set()
        for folder in self.store.folders("collections"):
            for info in self.store.objects(f"collections/{folder}/versions"):
                found = self._read_json(info.key)
                if found is not None and not found[0].get("deleted"):
                    live.add(str(found[0]["digest"]))
        held: set[str] = set()
        report = {"manifests": 0, "blobs": 0, "bytes": 0, "temporary": 0}
        for info in list(self.store.objects("manifests")):
            digest = info.key.rpartition("/")[2].removesuffix(".json")
            if digest in live:
                held.update(e.sha256 for e in self._read_manifest(digest).files if e.url is None)
            elif info.mtime < cutoff and self._still_old(info.key, cutoff):
                report["manifests"] += 1
                if not dry_run:
                    self.store.delete(info.key)
        for info in list(self.store.objects("blobs")):
            unheld = info.key.rpartition("/")[2] not in held
            if unheld and info.mtime < cutoff and self._still_old(info.key, cutoff):
                report["blobs"] += 1
                report["bytes"] += info.size
                if not dry_run:
                    self.store.delete(info.key)
        for info in list(self.store.objects("tmp")):
            if info.mtime < cutoff:
                report["temporary"] += 1
                if not dry_run:
                    self.store.delete(info.key)
        report["notifications"] = notify.expire(self, dry_run=dry_run)
        return report

    def _still_old(self, key: str, cutoff: float) -> bool:
        """Whether *key* is still there and untouched since *cutoff*, read now (not from a
        listing a running log may have made stale by reusing the object)."""
        fresh = self.store.info(key)
        return fresh is not None and fresh.mtime < cutoff

    def diff(self, a: str, b: str) -> dict[str, Any]:
        """What changed from version *a* to *b*: files added, removed, changed; metadata
        keys added, removed, changed; description, type and tags."""
        first, second = self.get(a), self.get(b)
        old = {e.path: e for e in first.files}
        new = {e.path: e for e in second.files}
        meta_a, meta_b = first.metadata, second.metadata
        result: dict[str, Any] = {
            "from": str(first),
            "to": str(second),
            "added": sorted(set(new) - set(old)),
            "removed": sorted(set(old) - set(new)),
            "changed": sorted(p for p in set(old) & set(new) if old[p] != new[p]),
            "metadata": {
                k: [meta_a.get(k), meta_b.get(k)]
                for k in sorted(set(meta_a) | set(meta_b))
                if meta_a.get(k) != meta_b.get(k)
            },
        }
        for field in ("description", "type", "tags"):
            if getattr(first, field) != getattr(second, field):
                result[field] = [getattr(first, field), getattr(second, field)]
        return result

    # -- lineage, cards, notifications -----------------------------------------------------------
    def run(
        self,
        job_type: str = "run",
        config: Mapping[str, Any] | None = None,
        *,
        name: str = "",
        heartbeat: float | None = None,
    ) -> contextlib.AbstractContextManager[Run]:
        """A run, for lineage: ``with reg.run(job_type="train", config={...}) as run:``;
        ``run.use(spec)`` records an input, ``run.log(...)`` an output. The run is marked
        finished at the end of the block, failed if it raises, and failed by the next reader
        if its process dies (its lease, renewed every *heartbeat* seconds, runs out). See
        :mod:`hubcore.registry.runs`."""
        from hubcore.registry import runs

        _storable(dict(config or {}), "a run's config")  # fails early on what cannot be stored
        beat = runs.HEARTBEAT if heartbeat is None else heartbeat
        return runs.running(self, job_type, config, name, beat)

    def run_info(self, run_id: str) -> dict[str, Any]:
        """The record of a run (a dead run is found and marked failed here)."""
        from hubcore.registry import runs

        return runs.read(self, run_id)

    def runs(self) -> list[dict[str, Any]]:
        """Every run's record, oldest first."""
        from hubcore.registry import runs

        return runs.all_runs(self)

    def lineage(self, spec: str, *, depth: int = 3) -> Lineage:
        """The lineage graph of the version *spec* names: the runs that made it and their
        inputs, and the runs that used it and what they made, *depth* runs each way, and
        the registered models linking to it. See :mod:`hubcore.registry.lineage`."""
        from hubcore.registry.lineage import build

        return build(self, spec, depth)

    def card(self, spec: str) -> str:
        """The model card of ``NAME`` (a registered model or artifact) or of one version
        (``NAME:ALIAS``): the written card completed with versions, aliases, metadata,
        lineage and loading code. See :mod:`hubcore.registry.cards`."""
        from hubcore.registry import cards

        return cards.render(self, spec)

    def set_card(self, spec: str, text: str) -> None:
        """Store *text* (Markdown with model-page front matter) as the card of *spec*."""
        from hubcore.registry import cards

        cards.write(self, spec, text)

    def notify(self, *, budget: float = 120.0) -> dict[str, int]:
        """Deliver pending webhook notifications now, with retries and backoff, within
        *budget* seconds (see :mod:`hubcore.registry.notify`)."""
        from hubcore.registry import notify

        return notify.flush(self, budget=budget)

    # -- downloading -----------------------------------------------------------------------------
    def cache_key(self, name: str) -> str:
        """The repository key of *name*'s snapshots in hubcore's cache."""
        return f"{self.store.identity}/{encode_name(name)}"

    def materialise(
        self,
        name: str,
        digest: str,
        manifest: Manifest | None = None,
        progress: bool | None = None,
        cache: Cache | None = None,
    ) -> Path:
        """The cached snapshot folder of version *digest* of *name*, fetched if needed."""
        cache = cache or get_cache()
        key = self.cache_key(name)
        folder = cache.snapshot_dir(CACHE_SOURCE, key, digest)
        if (
            folder.is_dir()
            and cache.check_snapshot(folder) is None
            and _blobs_intact(manifest, cache)
        ):
            return folder

        def fill(tree: Path) -> None:
            self.fill(tree, manifest or self._read_manifest(digest), progress, cache)

        return cache.publish_tree(CACHE_SOURCE, key, digest, fill, replace=folder.is_dir())

    def fill(self, tree: Path, manifest: Manifest, progress: bool | None, cache: Cache) -> None:
        """Put every file of *manifest* into the empty folder *tree*: fetched into the
        cache's blobs (each streamed once and hashed as it is written, verified before it
        is stored, in parallel) and linked from there."""
        unique = {e.sha256: e for e in manifest.files}
        total = sum(e.size or 0 for e in unique.values())
        blobs: dict[str, Path] = {}
        with (
            _bar(total, "download", progress) as bar,
            concurrent.futures.ThreadPoolExecutor(max_workers=_WORKERS) as pool,
        ):
            futures = {pool.submit(self._fetch, e, cache, bar.update): e for e in unique.values()}
            for future in concurrent.futures.as_completed(futures):
                blobs[futures[future].sha256] = future.result()
        for entry in manifest.files:
            target = tree.joinpath(*check_path(entry.path).split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(blobs[entry.sha256], target)  # stored once, whatever the versions
            except OSError:
                shutil.copyfile(blobs[entry.sha256], target)

    def _fetch(self, entry: FileEntry, cache: Cache, on_bytes: Callable[[int], object]) -> Path:
        """The verified cache blob of *entry*: a reference fetched from its URL, else the
        registry's blob streamed into a temporary file and hashed as it is written; stored
        (renamed into place) only when its sha256 matches."""
        if entry.url is not None:
            from hubcore.store.transfer import fetch

            fetched = fetch(entry.url, sha256=entry.sha256, progress=False, cache=cache).path
            on_bytes(entry.size or 0)
            return fetched
        with contextlib.suppress(CacheError):  # a damaged blob was moved aside: fetch again
            if (cached := cache.verified_blob(entry.sha256)) is not None:
                on_bytes(entry.size or 0)
                return cached
        with cache.lock("registry-blob", entry.sha256):
            if (cached := cache.verified_blob(entry.sha256)) is not None:
                on_bytes(entry.size or 0)
                return cached
            with cache.temp_file() as tmp:
                actual = self.store.download(blob_key(entry.sha256), tmp, on_bytes)
                if actual != entry.sha256:
                    raise IntegrityError(
                        f"{self.store.url}/{blob_key(entry.sha256)}", entry.sha256, actual
                    )
                return cache.store_blob(tmp, entry.sha256)


def _blobs_intact(manifest: Manifest | None, cache: Cache) -> bool:
    """Whether the cache blobs behind a cached snapshot of *manifest* are what their sha256
    says (the snapshot's files are links to them), checked as every cached weight file is
    (:meth:`~hubcore.store.cache.Cache.verified_blob`): a file changed in place keeping its
    size passes the snapshot's own check of sizes. Without the manifest at hand (a pinned
    load, which makes no request) the snapshot's check is all there is."""
    if manifest is None:
        return True
    for sha256 in {entry.sha256 for entry in manifest.files}:
        try:
            if cache.verified_blob(sha256) is None:
                return False
        except CacheError:  # moved aside, with a warning: fetched again
            return False
    return True


@contextlib.contextmanager
def _bar(total: int, what: str, progress: bool | None) -> Iterator[Any]:
    """A tqdm bar over *total* bytes, or a stand-in when progress is off."""
    if not config.progress_enabled(progress) or total == 0:
        yield _NoBar()
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=what) as bar:
        yield _LockedBar(bar)


class _LockedBar:
    """A tqdm bar that the threads of one transfer update together."""

    def __init__(self, bar: Any):
        self.bar = bar
        self.lock = threading.Lock()

    def update(self, count: int) -> None:
        """Add *count* bytes."""
        with self.lock:
            self.bar.update(count)


class _NoBar:
    def update(self, count: int) -> None:
        """Nothing to draw."""
