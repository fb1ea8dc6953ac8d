"""The plugin manager: built-in plugins, entry-point discovery, blocking, and registries.

Plugins are loaded once per process, on first use. The built-in sources are default plugins
registered through the same hooks as third-party ones. Entry points of the ``hubcore`` group
are loaded one by one, so a plugin that fails to import is reported (``hubcore plugins``) and
the rest still load. ``HUBCORE_DISABLE_PLUGIN_AUTOLOAD=1`` skips entry points;
``HUBCORE_BLOCK_PLUGINS=a,b`` blocks plugins by name (built-in ones too).
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Any

import attrs
import pluggy

from hubcore import settings
from hubcore._version import VERSION
from hubcore.errors import NoBackendError, PluginError
from hubcore.plugins import hookspecs
from hubcore.plugins.backends import Backend
from hubcore.repo.redirects import Redirect
from hubcore.sources import Source

__all__ = ["PluginInfo", "Plugins", "get_plugins", "reset_plugins"]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "hubcore"
#: Built-in plugins, registered before entry points, in this order.
#: Order matters for references without a ``name:`` prefix: the first source to claim wins,
#: so the broad ``owner/repo`` form of GitHub comes last.
DEFAULT_PLUGINS: tuple[tuple[str, str], ...] = (
    ("local", "hubcore.sources.local"),
    ("git", "hubcore.sources.git"),
    ("url", "hubcore.sources.archive"),
    ("fsspec", "hubcore.sources.folder"),
    ("git-hosts", "hubcore.sources.git_hosts"),
    ("registry", "hubcore.registry.source"),
)


@attrs.define
class PluginInfo:
    """One plugin: where it came from and what it registered, or why it failed."""

    name: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    sources: list[str] = attrs.field(factory=list)
    backends: list[str] = attrs.field(factory=list)
    redirects: list[str] = attrs.field(factory=list)
    error: str | None = None
    blocked: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and not self.blocked


@attrs.define
class Plugins:
    """The loaded plugin manager and everything the plugins registered."""

    manager: pluggy.PluginManager
    infos: dict[str, PluginInfo] = attrs.field(factory=dict)
    sources: dict[str, Source] = attrs.field(factory=dict)
    backends: dict[str, Backend] = attrs.field(factory=dict)
    redirects: list[Redirect] = attrs.field(factory=list)

    def backend_named(self, name: str) -> Backend:
        """The backend registered as *name*."""
        try:
            return self.backends[name]
        except KeyError:
            known = ", ".join(sorted(self.backends)) or "none"
            raise NoBackendError(
                f"no backend named {name!r} is installed (installed: {known}). Install its "
                f"plugin, for example `pip install hubcore-{name}`."
            ) from None

    def backend_for(self, obj: object) -> Backend | None:
        """The first backend that recognises *obj*, or ``None``."""
        for backend in self.backends.values():
            if backend.recognizes(obj):
                return backend
        return None


_lock = threading.Lock()
_plugins: Plugins | None = None


def get_plugins() -> Plugins:
    """The process-wide plugins, loading them on first call."""
    global _plugins
    with _lock:
        if _plugins is None:
            _plugins = load_plugins()
        return _plugins


def reset_plugins() -> None:
    """Forget loaded plugins so the next :func:`get_plugins` loads them afresh (for tests)."""
    global _plugins
    with _lock:
        _plugins = None


def load_plugins(
    *,
    autoload: bool | None = None,
    blocked: Iterable[str] | None = None,
    extra: Iterable[tuple[str, object]] = (),
) -> Plugins:
    """Build a plugin manager: defaults, then entry points, then *extra* ``(name, plugin)``.

    *autoload* and *blocked* default to the environment variables described in the module
    docstring.
    """
    if autoload is None:
        autoload = not settings.current().disable_plugin_autoload
    if blocked is None:
        blocked = settings.current().blocked_plugins
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    plugins = Plugins(manager=manager)
    for name in blocked:
        manager.set_blocked(name)
        plugins.infos[name] = PluginInfo(name=name, blocked=True)

    version = VERSION
    for name, module_name in DEFAULT_PLUGINS:
        if not manager.is_blocked(name):
            manager.register(importlib.import_module(module_name), name=name)
            plugins.infos[name] = PluginInfo(
                name=name, distribution="hubcore", version=version, builtin=True
            )
    if autoload:
        _load_entry_points(plugins)
    for name, plugin in extra:
        if not manager.is_blocked(name):
            manager.register(plugin, name=name)
            plugins.infos[name] = PluginInfo(name=name)

    _check_hook_names(plugins, strict=bool(extra))
    _collect(plugins, "hubcore_register_sources", _add_source)
    _collect(plugins, "hubcore_register_backends", _add_backend)
    _collect(plugins, "hubcore_register_redirects", _add_redirect)
    return plugins


def _load_entry_points(plugins: Plugins) -> None:
    seen: set[str] = set()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in seen:
            continue
        seen.add(ep.name)
        dist = ep.dist.name if ep.dist is not None else None
        version = ep.dist.version if ep.dist is not None else None
        if plugins.manager.is_blocked(ep.name):
            plugins.infos[ep.name] = PluginInfo(
                name=ep.name, distribution=dist, version=version, blocked=True
            )
            continue
        info = PluginInfo(name=ep.name, distribution=dist, version=version)
        plugins.infos[ep.name] = info
        try:
            plugin = ep.load()
            plugins.manager.register(plugin, name=ep.name)
        except Exception as exc:  # a broken plugin must not take the others down
            info.error = f"{type(exc).__name__}: {exc}"
            logger.warning("hubcore plugin %r (%s) failed to load: %s", ep.name, dist, info.error)


def _check_hook_names(plugins: Plugins, *, strict: bool) -> None:
    """Refuse plugins with hook implementations that match no hook (a misspelling), or with
    a hook's exact name but no ``@hookimpl`` marker: such code would silently never run.

    The offending plugin is unregistered and reported (``hubcore plugins``); with *strict*
    (plugins passed in by code, as tests do) a :class:`PluginError` is raised instead.
    """
    manager = plugins.manager
    known = {name for name in dir(hookspecs) if name.startswith(f"{hookspecs.PROJECT_NAME}_")}
    while True:
        try:
            manager.check_pending()
            problem = None
        except pluggy.PluginValidationError as exc:
            problem = (exc.plugin, f"{exc}. Known hooks: {', '.join(sorted(known))}")
        if problem is None:
            problem = next(
                (
                    (plugin, f"{name} is a hubcore hook but is not marked with @hookimpl")
                    for plugin in manager.get_plugins()
                    for name in known
                    if callable(getattr(plugin, name, None))
                    and plugin not in _implementers(manager, name)
                ),
                None,
            )
        if problem is None:
            return
        plugin, message = problem
        name = manager.get_name(plugin) or repr(plugin)
        manager.unregister(plugin)
        info = plugins.infos.setdefault(name, PluginInfo(name=name))
        info.error = message
        logger.warning("hubcore plugin %r: %s", name, message)
        if strict:
            raise PluginError(f"hubcore plugin {name!r}: {message}")


def _implementers(manager: pluggy.PluginManager, hook: str) -> list[object]:
    caller = getattr(manager.hook, hook)
    return [impl.plugin for impl in caller.get_hookimpls()]


def _collect(
    plugins: Plugins, hook_name: str, add: Callable[[Plugins, PluginInfo, Any], None]
) -> None:
    """Call one registration hook plugin by plugin, so each registration is attributed."""
    caller = getattr(plugins.manager.hook, hook_name)
    # get_hookimpls() lists implementations in registration order (built-ins first).
    for impl in caller.get_hookimpls():
        info = plugins.infos.setdefault(impl.plugin_name, PluginInfo(name=impl.plugin_name))
        try:
            kwargs = {"register": lambda obj, _info=info: add(plugins, _info, obj)}
            impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})
        except Exception as exc:
            info.error = f"{hook_name} failed: {type(exc).__name__}: {exc}"
            logger.warning("hubcore plugin %r: %s", impl.plugin_name, info.error)


def _add_source(plugins: Plugins, info: PluginInfo, source: object) -> None:
    _add(plugins.sources, info.sources, source, Source, info)


def _add_backend(plugins: Plugins, info: PluginInfo, backend: object) -> None:
    _add(plugins.backends, info.backends, backend, Backend, info)


def _add_redirect(plugins: Plugins, info: PluginInfo, redirect: object) -> None:
    if not isinstance(redirect, Redirect) or not callable(redirect.replacement):
        raise PluginError(f"{redirect!r} is not a hubcore.repo.redirects.Redirect")
    plugins.redirects.append(redirect)
    info.redirects.append(f"{redirect.module}.{redirect.attribute}")


def _add(
    registry: dict[str, Any], names: list[str], obj: object, protocol: type, by: PluginInfo
) -> None:
    """Validate *obj* against *protocol* and register it under its ``name``."""
    name = getattr(obj, "name", None)
    if not isinstance(obj, protocol) or not isinstance(name, str):
        raise PluginError(f"{obj!r} does not implement {protocol.__module__}.{protocol.__name__}")
    if name in registry:
        logger.info("plugin %r replaces the %s %r", by.name, protocol.__name__.lower(), name)
    registry[name] = obj
    names.append(name)


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]
