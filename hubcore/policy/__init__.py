"""The policy layer: what may run and what must match.

The trust list (:mod:`~hubcore.policy.trust`), lock files (:mod:`~hubcore.policy.lock`) and the
publisher's checks of a hubconf (:mod:`~hubcore.policy.check`).

:func:`find_lock` lives here, not in :mod:`~hubcore.policy.lock`: every load asks for the lock
that applies, and when none does (the usual case) the lock module and its TOML parser are
never imported.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hubcore.policy.lock import LockFile

__all__ = ["LOCK_NAME", "find_lock", "lock_path"]

#: The lock file a load in a folder applies by itself.
LOCK_NAME = "hub.lock"


def lock_path(explicit: str | os.PathLike[str] | bool | None = None) -> Path | None:
    """Which lock file applies, without reading it: *explicit* (a path, or False for none);
    inside repository code (a nested load), the lock the outer load runs under;
    ``HUBCORE_LOCK``; or ``./hub.lock`` when it exists."""
    from hubcore import runcontext, settings

    if explicit is False:
        return None
    if explicit not in (None, True):
        return Path(str(explicit))
    outer = runcontext.current()
    if outer is not None and outer.lock_path:  # a nested load keeps the outer load's lock
        return Path(outer.lock_path)
    configured = settings.current().lock
    if configured is not None:
        return configured
    local = Path.cwd() / LOCK_NAME
    return local if local.is_file() else None


def find_lock(explicit: str | os.PathLike[str] | bool | None = None) -> LockFile | None:
    """The lock that applies (see :func:`lock_path`), read; ``None`` when none does."""
    path = lock_path(explicit)
    if path is None:
        return None
    from hubcore.policy.lock import LockFile

    return LockFile.read(path)
