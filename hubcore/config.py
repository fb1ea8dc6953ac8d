"""Process-wide settings, read from the environment with API overrides.

==============================  ===========================================================
``HUBCORE_HOME``                where the cache lives (default: the platform's user cache dir)
``HUBCORE_OFFLINE``             ``1`` forbids network access; only cached data is used
``HUBCORE_DISABLE_PROGRESS``    ``1`` hides progress bars
``HUBCORE_DISABLE_PLUGIN_AUTOLOAD``  ``1`` loads only the built-in plugins
``HUBCORE_BLOCK_PLUGINS``       comma-separated plugin names that must not be loaded
==============================  ===========================================================
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["get_dir", "is_offline", "progress_enabled", "set_dir"]

_TRUE = {"1", "true", "yes", "on"}
_home_override: Path | None = None


def env_flag(name: str) -> bool:
    """Whether environment variable *name* is set to a true value (1, true, yes, on)."""
    return os.environ.get(name, "").strip().lower() in _TRUE


def get_dir() -> Path:
    """Return the hub home directory (the cache root).

    Precedence: :func:`set_dir`, then ``HUBCORE_HOME``, then the platform's user cache
    directory (``~/.cache/hubcore`` on Linux).
    """
    if _home_override is not None:
        return _home_override
    env = os.environ.get("HUBCORE_HOME")
    if env:
        return Path(env).expanduser().absolute()
    return Path(platformdirs.user_cache_dir("hubcore", appauthor=False))


def set_dir(path: str | os.PathLike[str] | None) -> None:
    """Use *path* as the hub home for this process; ``None`` restores the default."""
    global _home_override
    _home_override = None if path is None else Path(path).expanduser().absolute()


def is_offline(offline: bool | None = None) -> bool:
    """Resolve an explicit *offline* argument against ``HUBCORE_OFFLINE``."""
    return env_flag("HUBCORE_OFFLINE") if offline is None else offline


def progress_enabled(progress: bool | None = None) -> bool:
    """Whether to draw progress bars: explicit argument, else ``HUBCORE_DISABLE_PROGRESS``."""
    if progress is not None:
        return progress
    return not env_flag("HUBCORE_DISABLE_PROGRESS")
