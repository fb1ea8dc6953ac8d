"""Where the hub lives and what its configuration file says: the hub home, offline mode,
progress, and the ``[mirrors]`` table of ``<home>/config.toml`` (or ``HUBCORE_CONFIG``)::

    [mirrors]
    "https://github.com/" = "https://git-mirror.internal/github/"
    "https://example.org/weights/" = "s3://weights-mirror/"

Rewrites from ``HUBCORE_MIRRORS`` take precedence over the file; how prefixes match is
:func:`hubcore.store.http.rewrite_url`'s. The environment variables and the file are read by
:mod:`hubcore.settings` (the one reader); this module answers from its snapshot.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hubcore import settings
from hubcore.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["get_dir", "is_offline", "mirrors", "progress_enabled", "rewrite_url", "set_dir"]


def get_dir() -> Path:
    """Return the hub home directory (the cache root).

    Precedence: :func:`set_dir` (or ``--home``), then ``HUBCORE_HOME``, then the platform's
    user cache directory (``~/.cache/hubcore`` on Linux).
    """
    return settings.current().hub_home()


def set_dir(path: str | os.PathLike[str] | None) -> None:
    """Use *path* as the hub home for this process; ``None`` restores the default."""
    settings.override_process(home=None if path is None else Path(path).expanduser().absolute())


def is_offline(offline: bool | None = None) -> bool:
    """Resolve an explicit *offline* argument against ``HUBCORE_OFFLINE``."""
    return settings.current().offline if offline is None else offline


def progress_enabled(progress: bool | None = None) -> bool:
    """Whether to draw progress bars: explicit argument, else ``HUBCORE_DISABLE_PROGRESS``."""
    if progress is not None:
        return progress
    return not settings.current().disable_progress


def config_path() -> Path:
    """The configuration file: ``HUBCORE_CONFIG`` or ``<home>/config.toml``."""
    return settings.current().config_path()


def load_config() -> dict[str, Any]:
    """The parsed configuration file (empty when there is none), as it is now."""
    return settings.current().user_config().data


def mirrors() -> dict[str, str]:
    """URL prefix rewrites, from ``HUBCORE_MIRRORS`` and the ``[mirrors]`` table (parsed once
    per settings snapshot: :meth:`hubcore.settings.Settings.mirror_table`).

    A prefix or replacement that urllib cannot parse (an unclosed IPv6 ``[``, a port that is
    not a number) is a :class:`ConfigError` naming where it was written.
    """
    return dict(settings.current().mirror_table())


def parse_mirrors(user: settings.TomlFile, variable: str) -> dict[str, str]:
    """The rewrites of the ``[mirrors]`` table of *user* (the configuration file) and of
    *variable* (``HUBCORE_MIRRORS``: ``FROM=TO`` separated by ``;``), checked; the variable's
    win. The settings snapshot calls this; others ask :func:`mirrors`."""
    table = user.data.get("mirrors", {})
    if not isinstance(table, dict):
        raise ConfigError(f"[mirrors] in {user.path} must be a table of prefix = replacement")
    found = [(str(k), str(v), f"[mirrors] in {user.path}") for k, v in table.items()]
    for pair in filter(None, (p.strip() for p in variable.split(";"))):
        prefix, sep, replacement = pair.partition("=")
        if not sep or not prefix.strip():
            raise ConfigError(
                f"HUBCORE_MIRRORS entry {pair!r} is not of the form PREFIX=REPLACEMENT"
            )
        found.append((prefix.strip(), replacement.strip(), "HUBCORE_MIRRORS"))
    result: dict[str, str] = {}
    for prefix, replacement, origin in found:
        for role, url in (("prefix", prefix), ("replacement", replacement)):
            try:
                parts = urlsplit(url)
                _ = parts.port  # what rewriting and fetching would raise later
                if parts.scheme.lower() in ("http", "https") and not parts.hostname:
                    raise ValueError("it names no host")  # every fetch would be refused
            except ValueError as exc:
                from hubcore.store.redaction import redact

                raise ConfigError(
                    f"{origin}: the mirror {role} {redact(url)!r} is not a valid URL: {exc}"
                ) from None
        result[prefix] = replacement
    return result


def rewrite_url(url: str) -> str:
    """Apply the best matching mirror to *url* (rules: :func:`hubcore.store.http.rewrite_url`)."""
    from hubcore.store import http  # http imports this module

    return http.rewrite_url(url, mirrors())
