"""Events: the one owner of telling plugins what happened.

Downloads (started, progress, finished) and loaded entrypoints are announced through the event
hooks of :mod:`hubcore.plugins.hookspecs`. The storage layer announces its events here without
importing the plugin manager; the manager is reached only when an event is sent.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["notify"]

logger = logging.getLogger(__name__)


def notify(event: str, /, **kwargs: Any) -> None:
    """Call every listener of the event hook *event*, each on its own: a failing listener is
    logged and the others still hear the event. (*event* is positional-only: a hook may have
    an argument named ``event``.)"""
    from hubcore.plugins import get_plugins  # the manager imports the layers below it

    caller = getattr(get_plugins().manager.hook, event)
    # pluggy's own order: the most recently registered listener first
    for impl in reversed(caller.get_hookimpls()):
        try:
            impl.function(**{name: kwargs[name] for name in impl.argnames})
        except Exception:
            logger.warning(
                "hubcore %s listener of plugin %r failed", event, impl.plugin_name, exc_info=True
            )
