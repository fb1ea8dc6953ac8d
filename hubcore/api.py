"""The user-facing operations: open a repository, list, help, load, download.

This is the public surface only. How a repository is opened, locked, trusted, imported in
isolation and run lives in :mod:`hubcore.runner`; the names callers use from there
(:func:`open_locked`, :func:`call_entrypoint`, :func:`import_hubconf`, ...) are importable from
here too.
"""

from __future__ import annotations

import builtins
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hubcore import runcontext
from hubcore.errors import LockMismatchError, UsageError
from hubcore.plugins import get_plugins
from hubcore.runner import (
    RunLock,
    _discover_cached,
    _entry_of,
    _public_callables,
    call_entrypoint,
    find_entrypoint,
    import_hubconf,
    open_locked,
    open_ref,
    parse_repo,
    running_repository_code,
)
from hubcore.sources import Snapshot
from hubcore.store.cache import retried_after_removal

# What only loading, locking or downloading needs is imported in the function that needs it:
# every command imports this module, and `hubcore list` must stay fast (see hubcore/cli.py).
if TYPE_CHECKING:
    from hubcore.plugins.backends import WeightsFile
    from hubcore.policy.lock import LockedRepo
    from hubcore.policy.trust import TrustMode
    from hubcore.repo.discovery import HubconfInfo

__all__ = [
    "RunLock",
    "call_entrypoint",
    "discover",
    "download_file",
    "entry_doc",
    "find_entrypoint",
    "help",
    "import_hubconf",
    "imported_doc",
    "imported_entrypoints",
    "list",
    "load",
    "load_model_file",
    "load_weights",
    "lock_references",
    "open_locked",
    "open_ref",
    "open_repo",
    "parse_repo",
    "running_repository_code",
]

logger = logging.getLogger(__name__)


@runcontext.public_call
def open_repo(
    repo: str,
    *,
    source: str | None = None,
    host: str | None = None,
    token: str | None = None,
    commit: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    offline: bool | None = None,
    force_reload: bool = False,
    progress: bool | None = None,
) -> Snapshot:
    """Resolve the reference *repo* and make its snapshot available on local disk.

    *source* forces a source by name (``"local"``, ``"github"``, ...). *host* selects a
    self-hosted GitHub/GitLab (``"gitlab.example.com"`` or a full base URL), *token*
    authenticates to it, *commit* pins a revision (like megengine.hub), *storage_options*
    go to fsspec for object-store folders. See the user guide for the reference forms.
    """
    ref = parse_repo(
        repo,
        source=source,
        host=host,
        token=token,
        commit=commit,
        storage_options=storage_options,
    )
    return open_ref(ref, offline=offline, force_reload=force_reload, progress=progress)


@runcontext.public_call
@retried_after_removal
def discover(repo: str | Snapshot, **options: Any) -> HubconfInfo:
    """Statically describe *repo*'s entrypoints, dependencies and weights; runs no repo code."""
    snapshot = repo if isinstance(repo, Snapshot) else open_repo(repo, **options)
    return _discover_cached(snapshot)


@runcontext.public_call
@retried_after_removal
def list(
    repo: str | Snapshot,
    *,
    imported: bool = False,
    trust_repo: TrustMode = "check",
    **options: Any,
) -> builtins.list[str]:
    """The names of *repo*'s entrypoints, read statically (never imports ``hubconf.py``).

    A static listing may be incomplete (``discover(repo).complete`` is false, and
    ``.gaps`` says where and why). With *imported*, ``hubconf.py`` is imported in isolation
    instead, after the trust check (*trust_repo* as for :func:`load`), and its public
    callables are listed, as torch.hub lists them.
    """
    snapshot = repo if isinstance(repo, Snapshot) else open_repo(repo, **options)
    if imported:
        return imported_entrypoints(snapshot, trust_repo=trust_repo)
    return builtins.list(discover(snapshot).entrypoints)


@runcontext.public_call
@retried_after_removal
def help(
    repo: str | Snapshot,
    entry: str | None = None,
    *,
    imported: bool = False,
    trust_repo: TrustMode = "check",
    **options: Any,
) -> str:
    """The docstring of entrypoint *entry* of *repo*, read statically.

    Raises :class:`~hubcore.errors.EntrypointNotFoundError` (with close matches) when the
    entrypoint does not exist. With *imported*, an entrypoint that static reading cannot
    follow (or cannot see) is read from the imported ``hubconf.py``, after the trust check.
    Without *entry*, *repo* must be a model package: its description (runs no code).
    """
    snapshot = repo if isinstance(repo, Snapshot) else open_repo(repo, **options)
    if entry is None:
        from hubcore.packages.load import package_help

        return package_help(snapshot)
    info = discover(snapshot)
    if imported:
        found = find_entrypoint(info, entry, str(snapshot.ref))
        if found is None or not found.resolved:
            return imported_doc(snapshot, entry, trust_repo=trust_repo) or ""
    return entry_doc(info, entry, str(snapshot.ref))


def entry_doc(info: HubconfInfo, entry: str, repo: str) -> str:
    """The docstring of *entry* in an already discovered *info* (see :func:`help`)."""
    found = find_entrypoint(info, entry, repo)
    if found is None:
        gaps = "; ".join(str(gap) for gap in info.gaps)
        return (
            f"({entry} is not among the names static reading sees: {gaps}. "
            "`hubcore help --import` (help(..., imported=True)) runs the hubconf to read it)"
        )
    if not found.resolved:
        return f"({entry} cannot be read statically: {found.note})"
    return found.doc or ""


def imported_entrypoints(
    snapshot: Snapshot, *, trust_repo: TrustMode = "check"
) -> builtins.list[str]:
    """The entrypoints of the imported ``hubconf.py`` of *snapshot* (after the trust check):
    its public callables, as torch.hub lists them."""
    return _public_callables(import_hubconf(snapshot, trust_repo=trust_repo))


def imported_doc(snapshot: Snapshot, entry: str, *, trust_repo: TrustMode = "check") -> str | None:
    """The docstring of *entry* of the imported ``hubconf.py`` (after the trust check), cleaned
    of indentation; ``None`` when it has none."""
    import inspect

    module = import_hubconf(snapshot, trust_repo=trust_repo)
    doc = getattr(_entry_of(module, entry, str(snapshot.ref)), "__doc__", None)
    return inspect.cleandoc(doc) if isinstance(doc, str) else None


@runcontext.public_call
@retried_after_removal
def load(
    repo: str,
    entry: str | None = None,
    *args: Any,
    source: str | None = None,
    host: str | None = None,
    token: str | None = None,
    commit: str | None = None,
    revision: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    offline: bool | None = None,
    force_reload: bool = False,
    progress: bool | None = None,
    trust_repo: TrustMode = "check",
    lock: str | os.PathLike[str] | bool | None = None,
    skip_dependency_check: bool = False,
    **kwargs: Any,
) -> Any:
    """Run entrypoint *entry* of *repo* with ``*args, **kwargs`` and return what it returns.

    Dependencies declared in ``hubconf.py`` are checked before anything is imported; the
    repository is imported in isolation (its ``utils`` never clashes with anyone else's).
    ``pretrained=True`` (or a variant name) applies the weights the entrypoint declares
    with ``@pretrained``. The keyword arguments named above configure the hub (see
    :func:`open_repo`; *revision* is another name for *commit*; *trust_repo* as in
    :mod:`hubcore.policy.trust`); every other one goes to the
    entrypoint. Nothing from a remote repository runs before it is trusted. Under a lock file
    (*lock*, ``HUBCORE_LOCK`` or ``./hub.lock``; ``lock=False`` for none) a locked reference
    loads its recorded commit and its weights are verified against the recorded hashes.

    Without *entry*, *repo* is a model package and :func:`hubcore.from_pretrained` loads it
    (*revision* may then be ``"sha256:<package digest>"``; *kwargs*: ``strict``,
    ``map_location``).
    """
    if entry is None:
        from hubcore.packages.load import from_pretrained

        if args:
            raise UsageError(
                f"a model package takes no positional arguments (got {len(args)}); pass "
                "options by keyword, or name an entrypoint to call one with arguments"
            )
        return from_pretrained(
            repo,
            revision=commit or revision,
            trust_repo=trust_repo,
            source=source,
            host=host,
            token=token,
            storage_options=storage_options,
            offline=offline,
            force_reload=force_reload,
            progress=progress,
            **kwargs,
        )
    snapshot, locked = open_locked(
        repo,
        lock,
        source=source,
        host=host,
        token=token,
        commit=commit or revision,
        storage_options=storage_options,
        offline=offline,
        force_reload=force_reload,
        progress=progress,
    )
    return call_entrypoint(
        snapshot,
        entry,
        args,
        kwargs,
        trust_repo=trust_repo,
        locked=locked,
        skip_dependency_check=skip_dependency_check,
    )


def download_file(
    url: str,
    *,
    sha256: str | None = None,
    offline: bool | None = None,
    progress: bool | None = None,
) -> Path:
    """Fetch *url* (any fsspec URL or a path) into the cache and return the cached file."""
    from hubcore.store import transfer

    return transfer.fetch(url, sha256=sha256, offline=offline, progress=progress).path


@runcontext.public_call
def load_weights(
    url: str,
    *,
    backend: str,
    sha256: str | None = None,
    offline: bool | None = None,
    progress: bool | None = None,
    **read_options: Any,
) -> Any:
    """Fetch *url* through the cache and read it with the backend named *backend*.

    This is the framework-neutral ``load_state_dict_from_url``; *read_options* go to the
    backend (``map_location=...``).
    """
    from hubcore.repo.pretrained import read_state
    from hubcore.store import transfer

    chosen = get_plugins().backend_named(backend)
    file: WeightsFile = transfer.fetch(url, sha256=sha256, offline=offline, progress=progress)
    return read_state(chosen, file, **read_options)


@runcontext.public_call
def load_model_file(
    url: str,
    *,
    backend: str | None = None,
    sha256: str | None = None,
    offline: bool | None = None,
    progress: bool | None = None,
    **options: Any,
) -> Any:
    """Fetch a file that *is* a model (ONNX and the like) through the cache, verified like
    weights, and open it with the backend that declares its suffix (or the one named
    *backend*); *options* go to the backend's ``open_model``."""
    from hubcore.plugins import model_files

    return model_files.open_model_file(
        url, backend=backend, sha256=sha256, offline=offline, progress=progress, **options
    )


def lock_references(
    refs: Sequence[str],
    *,
    host: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    progress: bool | None = None,
) -> builtins.list[LockedRepo]:
    """Resolve *refs* and record, for each, its snapshot id and the sha256 of every weight
    file its entrypoints declare (downloading, to hash them, those declared without one).
    Repositories their code loads through a hub API (:mod:`hubcore.repo.nested`) are locked
    too, marked ``loaded_by``. Runs no repository code; URLs are recorded without
    credentials."""
    from hubcore.policy import trust
    from hubcore.policy.lock import LockedRepo, LockedWeight
    from hubcore.repo.nested import nested_loads
    from hubcore.repo.pretrained import resolve_repo_weight_url
    from hubcore.store import transfer
    from hubcore.store.redaction import redact, url_identity

    locked = []
    wanted: builtins.list[tuple[str, Mapping[str, Any], str | None]] = [
        (text, {"host": host, "storage_options": storage_options}, None) for text in refs
    ]
    seen: set[tuple[str, str | None]] = set()
    while wanted:
        text, parse_options, loaded_by = wanted.pop(0)
        ref = parse_repo(text, **parse_options)
        if (ref.identity, ref.revision) in seen:
            continue
        seen.add((ref.identity, ref.revision))
        snapshot = open_ref(ref, progress=progress)
        if snapshot.snapshot_id is None:
            raise LockMismatchError(
                f"{ref} is a live local folder: it has no immutable snapshot to lock"
            )
        info = _discover_cached(snapshot)
        trusted = trust.is_trusted(snapshot)
        weights = []
        for entry in info.entrypoints.values():
            if entry.weights is None:
                continue
            if not entry.weights.known:
                raise LockMismatchError(
                    f"{ref}: the weights of {entry.name} are not literal in the hubconf, so "
                    "they cannot be locked without running it"
                )
            for variant, spec in entry.weights.variants.items():
                sha = spec.sha256
                if sha is None:
                    url = resolve_repo_weight_url(
                        spec.url, snapshot.root, remote=True, allow_local=trusted
                    )
                    with runcontext.fetching_for(trusted):
                        sha = transfer.fetch(url, progress=progress).sha256
                weights.append(LockedWeight(entry.name, variant, url_identity(spec.url), sha))
        locked.append(
            LockedRepo(
                redact(text),
                snapshot.snapshot_id,
                tuple(weights),
                ref.identity,
                ref.revision,
                loaded_by,
            )
        )
        found, gaps = nested_loads(snapshot.root)
        for gap in gaps:
            logger.warning("%s: %s; lock it by naming it too", ref, gap)
        wanted += [(n.text, n.options, redact(text)) for n in found]
    return locked
