"""Running a repository: trust, lock and isolation applied in one place.

:mod:`hubcore.api` is the public surface; what it runs goes through here. A reference is
parsed and opened (:func:`open_ref`, a damaged snapshot fetched again), the lock file decides
the snapshot (:func:`open_locked`), trust is checked before ``hubconf.py`` is imported in its
own namespace (:func:`import_hubconf`), and entrypoints run inside
:func:`running_repository_code`: the run context (root, the lock's weight hashes, the weights
applied) and the framework redirects in place.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import types
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubcore import config, runcontext
from hubcore.errors import (
    EntrypointError,
    EntrypointNotFoundError,
    HubError,
    LockMismatchError,
    NoWeightsError,
    OfflineError,
)
from hubcore.events import notify
from hubcore.patterns import later
from hubcore.plugins import get_plugins
from hubcore.records import Record, replace
from hubcore.repo.discovery import discover_hubconf
from hubcore.sources import FetchContext, Snapshot, parse_reference
from hubcore.store.cache import get_cache

# What only loading or locking needs is imported in the function that needs it: every command
# imports this module, and `hubcore list` must stay fast (see hubcore/cli.py).
if TYPE_CHECKING:
    from hubcore.policy.lock import LockedRepo, LockFile
    from hubcore.policy.trust import TrustMode
    from hubcore.repo.discovery import Entrypoint, HubconfInfo
    from hubcore.repo.isolation import RepoImporter
    from hubcore.sources import RepoRef, Source

__all__ = [
    "RunLock",
    "call_entrypoint",
    "find_entrypoint",
    "import_hubconf",
    "open_locked",
    "open_ref",
    "parse_repo",
    "running_repository_code",
]

logger = logging.getLogger(__name__)

_importers: dict[tuple[Path, str | None], RepoImporter] = {}
_importers_lock = threading.Lock()
# An immutable snapshot always reads the same; a met requirement stays met in this process.
_discovered: dict[tuple[Path, str], HubconfInfo] = {}
_dependencies_met: set[tuple[str, ...]] = set()
_COMMITISH = later(r"^[0-9a-fA-F]{7,64}$")


def parse_repo(
    repo: str,
    *,
    source: str | None = None,
    host: str | None = None,
    token: str | None = None,
    commit: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> RepoRef:
    """Parse the reference *repo* (with the options of :func:`hubcore.api.open_repo`); no
    network."""
    options = {
        "host": host,
        "git_host": host,
        "token": token,
        "commit": commit,
        "storage_options": storage_options,
    }
    return parse_reference(
        repo,
        get_plugins().sources,
        source=source,
        options={k: v for k, v in options.items() if v is not None},
    )


def open_ref(
    ref: RepoRef,
    *,
    offline: bool | None = None,
    force_reload: bool = False,
    progress: bool | None = None,
) -> Snapshot:
    """Open a parsed reference with its source (see :func:`hubcore.api.open_repo`)."""
    ctx = FetchContext(
        cache=get_cache(),
        offline=config.is_offline(offline),
        force_reload=force_reload,
        progress=config.progress_enabled(progress),
        check_pin=_check_package_pin,
    )
    chosen = get_plugins().sources[ref.source]
    outer = runcontext.current()
    if outer is not None and ctx.offline:  # a nested load: say who asked, and how to prepare
        try:
            return _open_intact(chosen, ref, ctx)
        except OfflineError as exc:
            raise OfflineError(
                f"{exc} It is loaded by the code of {outer.label}; fetch it ahead of time, "
                f"while online, with `hubcore list {ref}`."
            ) from exc
    return _open_intact(chosen, ref, ctx)


def _check_package_pin(root: Path, pin: str, label: str) -> None:
    """A folder fetched for ``sha256:<package digest>`` must be that model package (the
    digest is the packages feature's; sources get this check through their fetch context)."""
    from hubcore.packages.manifest import check_pin  # only a pinned fetch needs packages

    check_pin(root, pin, label)


def _open_intact(chosen: Source, ref: RepoRef, ctx: FetchContext) -> Snapshot:
    snapshot = chosen.open(ref, ctx)
    if ctx.cache.check_snapshot(snapshot.root) is None:  # intact: no label (redactor) needed
        return snapshot
    return ctx.cache.intact(  # a damaged snapshot is fetched again, or named, never used
        snapshot,
        lambda: chosen.open(ref, replace(ctx, force_reload=True)),
        offline=ctx.offline,
        label=str(ref),
    )


def open_locked(
    repo: str,
    lock: str | os.PathLike[str] | bool | None = None,
    **options: Any,
) -> tuple[Snapshot, RunLock | None]:
    """:func:`hubcore.api.open_repo` under the lock file (see :func:`hubcore.api.load`).

    A lock entry applies when it names the same repository (by canonical identity, however
    the reference is spelled) and the same revision; the load then opens the recorded
    snapshot, and a source that cannot reproduce it raises
    :class:`~hubcore.errors.LockMismatchError`. An explicit commit (``repo@<sha>``,
    ``commit=``) is always honoured exactly: the lock's weight hashes apply to it only when
    the lock recorded that very commit. Returns the snapshot and the lock that applies.
    """
    from hubcore.policy import find_lock

    open_options = {
        k: options.pop(k) for k in ("offline", "force_reload", "progress") if k in options
    }
    ref = parse_repo(repo, **options)
    lockfile = find_lock(lock)
    entry = _lock_entry(lockfile, ref) if lockfile is not None else None
    if entry is None or lockfile is None:
        return open_ref(ref, **open_options), None
    if ref.revision != entry.snapshot:  # a branch or tag: the lock decides the commit
        ref = parse_repo(repo, **{**options, "commit": entry.snapshot})
    snapshot = open_ref(ref, **open_options)
    if snapshot.snapshot_id != entry.snapshot:
        raise LockMismatchError(
            f"{ref} is now {snapshot.snapshot_id} but {lockfile.path} records "
            f"{entry.snapshot}; regenerate the lock with `hubcore lock` if the change is "
            "intended"
        )
    return snapshot, RunLock(lockfile.path, entry)


class RunLock(Record):
    """The lock entry that applies to one load, and the file it comes from."""

    path: Path
    entry: LockedRepo

    def weight_hashes(self, root: Path) -> dict[str, str]:
        """Weight URL (absolute, as fetched, credential-free) -> the recorded sha256."""
        from hubcore.store import transfer
        from hubcore.store.redaction import url_identity

        return {
            url_identity(transfer.normalize_url(w.url, root)): w.sha256 for w in self.entry.weights
        }


def _lock_entry(lockfile: LockFile, ref: RepoRef) -> LockedRepo | None:
    """The entry of *lockfile* for *ref*: same repository and same revision, or (for an
    explicit commit) the entry that recorded that commit."""
    identity = ref.identity
    same_repo = [(e, revision) for e, (i, revision) in _keyed(lockfile) if i == identity]
    pinned = ref.revision.lower() if ref.revision and _COMMITISH().match(ref.revision) else None
    for entry, revision in same_repo:
        if revision == ref.revision:
            if pinned and not entry.snapshot.startswith(pinned):
                raise LockMismatchError(
                    f"{ref} pins commit {ref.revision} but {lockfile.path} records "
                    f"{entry.snapshot} for it; an explicit commit is never replaced: fix or "
                    "regenerate the lock"
                )
            return entry
    if ref.revision and _COMMITISH().match(ref.revision):
        for entry, _ in same_repo:
            if entry.snapshot.startswith(ref.revision.lower()):
                return entry
    return None


def _keyed(lockfile: LockFile) -> Iterator[tuple[LockedRepo, tuple[str, str | None]]]:
    """Each entry with its (identity, revision); entries written before identities were
    recorded are keyed by parsing their reference."""
    for entry in lockfile.repos:
        if entry.repo_id:
            yield entry, (entry.repo_id, entry.revision)
            continue
        try:
            parsed = parse_repo(entry.ref)
        except HubError:
            continue
        logger.warning(
            "%s: the entry for %s records no repository identity (an older lock file), so it "
            "is matched as if the reference named the default host; regenerate the lock with "
            "`hubcore lock`",
            lockfile.path,
            entry.ref,
        )
        yield entry, (parsed.identity, parsed.revision)


def import_hubconf(
    snapshot: Snapshot,
    *,
    trust_repo: TrustMode = "check",
    skip_dependency_check: bool = False,
    locked: RunLock | None = None,
) -> types.ModuleType:
    """Import *snapshot*'s ``hubconf.py`` in isolation and return the module.

    Checks trust (as :func:`hubcore.api.load` does) and the declared dependencies first. The
    module body runs in the repository's run context (*locked*'s weight hashes apply to what it
    downloads at import time) with the framework redirects in place. The module is the
    repository's own; call its entrypoints inside :func:`running_repository_code` so that
    weights and framework hub calls go through hubcore.
    """
    return _import_hubconf(
        snapshot, _discover_cached(snapshot), trust_repo, skip_dependency_check, locked
    )


def _import_hubconf(
    snapshot: Snapshot,
    info: HubconfInfo,
    trust_repo: TrustMode,
    skip_dependency_check: bool,
    locked: RunLock | None,
) -> types.ModuleType:
    """:func:`import_hubconf` with the static discovery of *snapshot* already made (a live
    folder is read again by every discovery)."""
    from hubcore.policy import trust
    from hubcore.repo.dependencies import check_dependencies

    label = str(snapshot.ref)  # the reference without credentials, for every message
    trust.ensure_trusted(snapshot, trust_repo)
    if not skip_dependency_check and info.dependencies not in _dependencies_met:
        check_dependencies(info.dependencies, label)
        _dependencies_met.add(info.dependencies)
    importer = _importer_for(snapshot)
    try:
        with runcontext.entered(_run_context(snapshot, locked)), _redirects_held():
            return importer.import_hubconf(fresh=snapshot.snapshot_id is None)
    except HubError:
        raise
    except Exception as exc:
        raise EntrypointError(
            f"importing hubconf.py of {label} failed: {type(exc).__name__}: {exc}"
        ) from exc


def call_entrypoint(
    snapshot: Snapshot,
    entry: str,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    trust_repo: TrustMode = "check",
    locked: RunLock | None = None,
    skip_dependency_check: bool = False,
) -> Any:
    """Run entrypoint *entry* of an opened *snapshot* with *args* and *kwargs*.

    The core of :func:`hubcore.api.load`, for callers that must pass every keyword to the
    entrypoint (the compatibility layers): nothing in *kwargs* is taken for the hub.
    """
    kwargs = dict(kwargs or {})
    label = str(snapshot.ref)
    # A name static reading did not find is refused here only when the listing is complete;
    # otherwise the imported hubconf decides, as under torch.hub.
    info = _discover_cached(snapshot)
    find_entrypoint(info, entry, label)
    module = _import_hubconf(snapshot, info, trust_repo, skip_dependency_check, locked)
    fn = _entry_of(module, entry, label)
    if kwargs.get("pretrained") and not _accepts_pretrained(fn):
        raise NoWeightsError(
            f"entrypoint {entry!r} of {label} declares no pretrained weights (no @pretrained) "
            "and takes no `pretrained` argument; call it without pretrained=..."
        )
    with running_repository_code(snapshot, locked) as context:
        try:
            result = fn(*args, **kwargs)
        except HubError:
            raise
        except Exception as exc:
            raise EntrypointError(
                f"entrypoint {entry!r} of {label} raised {type(exc).__name__}: {exc}"
            ) from exc
    weights = context.applied[-1].url if context.applied else None
    notify(
        "hubcore_entrypoint_loaded", repo=label, entrypoint=entry, result=result, weights=weights
    )
    return result


@contextlib.contextmanager
def running_repository_code(
    snapshot: Snapshot, locked: RunLock | None = None
) -> Iterator[runcontext.RunContext]:
    """The setting repository code of *snapshot* runs in: its isolated imports, the
    :class:`~hubcore.runcontext.RunContext` (its root for relative weight paths, the lock's
    recorded weight hashes, the weights applied), and the framework redirects
    (:mod:`hubcore.repo.redirects`) in place."""
    context = _run_context(snapshot, locked)
    with runcontext.entered(context), _importer_for(snapshot).active(), _redirects_held():
        yield context


def _run_context(snapshot: Snapshot, locked: RunLock | None) -> runcontext.RunContext:
    return runcontext.RunContext(
        root=snapshot.root,
        label=str(snapshot.ref),
        remote=snapshot.snapshot_id is not None,
        locked=locked.weight_hashes(snapshot.root) if locked is not None else {},
        lock_path=str(locked.path) if locked is not None else None,
    )


def _redirects_held() -> contextlib.AbstractContextManager[None]:
    from hubcore.repo.redirects import redirecting

    return redirecting(get_plugins().redirects)


def _accepts_pretrained(fn: Any) -> bool:
    import inspect

    from hubcore.repo.pretrained import weights_of

    if weights_of(fn) is not None:
        return True
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True  # cannot tell; let the call decide
    return any(p.name == "pretrained" or p.kind is p.VAR_KEYWORD for p in params)


def find_entrypoint(info: HubconfInfo, entry: str, repo: str) -> Entrypoint | None:
    """*entry* as discovered statically, ``None`` when the listing is incomplete and it may be
    bound where static reading cannot see (``info.gaps``), or when it is bound where static
    reading follows no value (``info.unread``: the imported hubconf decides); raises
    :class:`~hubcore.errors.EntrypointNotFoundError` (with close matches) when it surely does
    not exist: the listing is complete, or the name is private."""
    found = info.entrypoints.get(entry)
    if found is None and (info.complete or entry.startswith("_")) and entry not in info.unread:
        import difflib

        names = list(info.entrypoints)
        raise EntrypointNotFoundError(entry, repo, names, difflib.get_close_matches(entry, names))
    return found


def _discover_cached(snapshot: Snapshot) -> HubconfInfo:
    """Static discovery, remembered for immutable snapshots (never for live folders)."""
    if snapshot.snapshot_id is None:
        return discover_hubconf(snapshot.root)
    key = (snapshot.root, snapshot.snapshot_id)
    info = _discovered.get(key)
    if info is None:
        info = _discovered[key] = discover_hubconf(snapshot.root)
    return info


def _importer_for(snapshot: Snapshot) -> RepoImporter:
    spelled = (snapshot.root, snapshot.snapshot_id)
    importer = _importers.get(spelled)  # a warm load: no resolve() of the path
    if importer is not None:
        return importer
    from hubcore.repo.isolation import RepoImporter

    key = (snapshot.root.resolve(), snapshot.snapshot_id)
    with _importers_lock:
        importer = _importers.get(key)
        if importer is None:
            importer = _importers[key] = RepoImporter(snapshot.root, snapshot.snapshot_id)
        _importers[spelled] = importer
        return importer


def _public_callables(module: types.ModuleType) -> list[str]:
    """torch.hub's rule for the entrypoints of an imported hubconf."""
    return sorted(n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n)))


def _entry_of(module: types.ModuleType, entry: str, repo: str) -> Any:
    """The callable *entry* of an imported hubconf *module*, else
    :class:`~hubcore.errors.EntrypointNotFoundError` naming what it has."""
    fn = getattr(module, entry, None)
    if fn is None or not callable(fn) or entry.startswith("_"):
        import difflib

        names = _public_callables(module)
        raise EntrypointNotFoundError(entry, repo, names, difflib.get_close_matches(entry, names))
    return fn
