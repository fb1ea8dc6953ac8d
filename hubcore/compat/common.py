"""The framework-free part of the peer hub APIs, shared by the compatibility layers that the
framework plugins ship (``hubcore_torch.hub`` for ``torch.hub``, ``hubcore_megengine.hub`` for
``megengine.hub``) and open to any plugin that offers another framework's hub API on hubcore:

* :func:`open_like_peer` -- open a repository reusing the cache as the peers do;
* :func:`docstring` -- an entrypoint's docstring, statically when possible;
* :func:`fetch_like_peer` -- a weight file through hubcore's cache, also kept in the peer's
  ``model_dir``; :func:`place_copy` -- an atomic copy to where the peer puts a file;
* :func:`progress_option` -- the peers' ``progress`` flag as hubcore's;
* :func:`peer_errors` -- hub errors re-raised as also of the builtin type the peer raises.

Nothing here imports a framework.
"""

from __future__ import annotations

import builtins
import contextlib
import inspect
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from hubcore import api, config, runcontext
from hubcore.api import RunLock
from hubcore.errors import (
    DownloadError,
    EntrypointNotFoundError,
    HubError,
    IntegrityError,
    OfflineError,
)
from hubcore.plugins.backends import WeightsFile
from hubcore.policy.trust import TrustMode
from hubcore.sources import Snapshot
from hubcore.store import transfer
from hubcore.store.files import atomic_copy
from hubcore.store.redaction import url_identity

__all__ = [
    "docstring",
    "fetch_like_peer",
    "list_like_peer",
    "open_like_peer",
    "peer_errors",
    "place_copy",
    "progress_option",
]


def open_like_peer(
    repo: str,
    *,
    use_cache: bool,
    verbose: bool = False,
    before_fetch: Callable[[], None] | None = None,
    **options: Any,
) -> tuple[Snapshot, RunLock | None]:
    """Open *repo* the way torch.hub and megengine.hub reuse their caches.

    With *use_cache*, a snapshot already cached for the reference is used without asking the
    network (a branch stays at the commit it was first fetched at, as the peers keep it);
    otherwise the reference is resolved afresh and the snapshot downloaded again, after
    *before_fetch* (a check that must pass first) is called. In offline mode nothing is
    fetched, so *before_fetch* (which may ask the network) is skipped and the refusal comes
    from opening the repository. The lock file applies as for :func:`hubcore.load`.
    """
    if use_cache:
        try:
            snapshot, locked = api.open_locked(repo, offline=True, **options)
        except OfflineError:
            pass
        else:
            if verbose and snapshot.snapshot_id is not None:
                sys.stderr.write(f"Using cache found in {snapshot.root}\n")
            return snapshot, locked
    if before_fetch is not None and not config.is_offline():
        before_fetch()
    return api.open_locked(repo, force_reload=not use_cache, **options)


def docstring(snapshot: Snapshot, entry: str, trust_repo: TrustMode = "check") -> str | None:
    """*entry*'s docstring, cleaned of indentation, ``None`` when it has none.

    Read statically when the entrypoint can be followed; otherwise (built by a call, imported
    from an installed package) from the imported ``hubconf.py``, which needs trust.
    """
    found = api.find_entrypoint(api.discover(snapshot), entry, str(snapshot.ref))
    if found is not None and found.resolved:
        return found.doc
    module = api.import_hubconf(snapshot, trust_repo=trust_repo)
    fn = getattr(module, entry, None)
    if fn is None or not callable(fn):
        names = sorted(n for n in dir(module) if not n.startswith("_"))
        raise EntrypointNotFoundError(entry, str(snapshot.ref), names, [])
    doc = getattr(fn, "__doc__", None)
    return inspect.cleandoc(doc) if isinstance(doc, str) else None


def progress_option(progress: bool) -> bool | None:
    """The peers' ``progress=True`` means "bars unless hubcore is told to be quiet"."""
    return None if progress else False


def list_like_peer(snapshot: Snapshot, trust_repo: TrustMode = "check") -> builtins.list[str]:
    """The entrypoints as the peers list them: read statically, or, when the hubconf binds
    names reading cannot see or whose value it does not follow (a loop's variable), from the
    imported hubconf (after the trust check), as the peers always do."""
    info = api.discover(snapshot)
    imported = not info.complete or bool(info.unread)
    return api.list(snapshot, imported=imported, trust_repo=trust_repo)


def fetch_like_peer(
    url: str,
    target: Path | None,
    *,
    hash_prefix: str | None = None,
    progress: bool = True,
) -> WeightsFile:
    """The file for *url*, from hubcore's cache or downloaded into it.

    *target* is where the peer would keep the file (a ``model_dir`` the caller chose): a file
    already there is used when the cache does not hold the URL (weights copied in by hand on
    an offline machine), and a downloaded file is also copied there. *hash_prefix* must
    start the file's sha256, checked before a downloaded file is cached or copied (a mismatch
    leaves nothing behind); under a lock file, a URL it records must have its hash.
    """
    try:
        cached: WeightsFile | None = transfer.fetch(url, offline=True)  # lock's hash: the run's
    except OfflineError:
        cached = None  # fetched below, outside the handler: its errors are not chained to this
    if cached is not None:
        file = cached
    elif target is not None and target.is_file():
        file = WeightsFile(
            target, target.name, transfer.file_sha256(target), target.stat().st_size, url
        )
        pinned, _ = runcontext.expected_sha256(url_identity(url), None)
        if pinned and file.sha256 != pinned:
            raise IntegrityError(str(target), pinned, file.sha256)
    else:
        file = transfer.fetch(url, progress=progress_option(progress), sha256_prefix=hash_prefix)
    if hash_prefix and not file.sha256.startswith(hash_prefix):
        raise IntegrityError(url, f"{hash_prefix}... (check_hash)", file.sha256)
    if target is not None and not target.is_file():
        place_copy(file.path, target)
    return file


def place_copy(source: Path, target: Path) -> None:
    """Copy *source* to *target* atomically: *target* is never seen half-written."""
    try:
        atomic_copy(source, target)
    except OSError as exc:
        raise DownloadError(f"cannot write {target}: {exc}") from exc


_PEER_TYPES: dict[tuple[type[HubError], type[Exception]], type[HubError]] = {}


@contextlib.contextmanager
def peer_errors(mapping: Mapping[type[HubError], type[Exception]]) -> Iterator[None]:
    """Re-raise the hub errors in *mapping* so they are also of the builtin type the peer
    raises in that situation (``except RuntimeError`` around ``torch.hub.load`` keeps
    working); the message and attributes stay hubcore's."""
    try:
        yield
    except HubError as exc:
        for hub_type, builtin in mapping.items():
            if isinstance(exc, hub_type) and not isinstance(exc, builtin):
                raise _as_peer_error(exc, builtin) from exc.__cause__
        raise


def _as_peer_error(exc: HubError, builtin: type[Exception]) -> HubError:
    key = (type(exc), builtin)
    peer_type = _PEER_TYPES.get(key)
    if peer_type is None:
        peer_type = _PEER_TYPES[key] = type(
            type(exc).__name__, (type(exc), builtin), {"__module__": type(exc).__module__}
        )
    twin = peer_type.__new__(peer_type, *exc.args)
    twin.__dict__.update(exc.__dict__)
    return twin.with_traceback(exc.__traceback__)
