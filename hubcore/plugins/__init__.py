"""The plugin manager: built-in plugins, entry-point discovery, blocking, and registries.

Plugins are loaded once per process, on first use. The built-in sources are default plugins
registered through the same hooks as third-party ones. Entry points of the ``hubcore`` group
are loaded one by one, so a plugin that fails to import is reported (``hubcore plugins``) and
the rest still load. ``HUBCORE_DISABLE_PLUGIN_AUTOLOAD=1`` skips entry points;
``HUBCORE_BLOCK_PLUGINS=a,b`` blocks plugins by name (built-in ones too).

Loading is kept cheap, since every command pays for it: the entry-point scan of every installed
distribution is remembered in ``<home>/plugins/entry-points.json``, keyed by the interpreter,
``sys.path`` and the distributions' metadata folders found on it with their modification times
(installing, upgrading or removing a distribution rescans; the file is only a shortcut and is
rebuilt when missing or unreadable), and backends and redirects are collected from the
plugins on first use, not when the plugins load.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import json
import logging
import os
import re
import sys
import threading
import types
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pluggy

from hubcore import settings
from hubcore._version import VERSION
from hubcore.errors import NoBackendError, PluginError
from hubcore.plugins import hookspecs
from hubcore.records import Record, field

if TYPE_CHECKING:  # imported where used: loading the plugins needs neither
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


class PluginInfo(Record, frozen=False):
    """One plugin: where it came from and what it registered, or why it failed."""

    name: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    sources: list[str] = field(factory=list)
    backends: list[str] = field(factory=list)
    redirects: list[str] = field(factory=list)
    error: str | None = None
    blocked: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and not self.blocked


class Plugins(Record, frozen=False):
    """The loaded plugin manager and everything the plugins registered.

    Sources are collected when the plugins load (every reference needs them); backends and
    redirects when first read, so a command that uses neither (``hubcore list``) never imports
    a plugin's backend or framework-API module. Reading :attr:`infos` collects everything.
    """

    manager: pluggy.PluginManager
    _infos: dict[str, PluginInfo] = field(factory=dict, alias="infos")
    sources: dict[str, Source] = field(factory=dict)
    _backends: dict[str, Backend] = field(factory=dict, alias="backends")
    _redirects: list[Redirect] = field(factory=list, alias="redirects")
    #: registration hooks not collected yet
    _pending: list[str] = field(factory=list, alias="pending")

    @property
    def infos(self) -> dict[str, PluginInfo]:
        """Every plugin by name: where it came from, what it registered, or why it failed."""
        self._complete(*_DEFERRED)
        return self._infos

    @property
    def backends(self) -> dict[str, Backend]:
        """The registered backends by name."""
        self._complete("hubcore_register_backends")
        return self._backends

    @property
    def redirects(self) -> list[Redirect]:
        """The registered redirects, in registration order."""
        self._complete("hubcore_register_redirects")
        return self._redirects

    def _complete(self, *hooks: str) -> None:
        if not self._pending:  # the warm path: one check
            return
        with _collecting:
            for hook in hooks:
                if hook in self._pending:
                    self._pending.remove(hook)
                    _collect(self, hook, _ADDERS[hook])

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
_collecting = threading.RLock()
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
    manager = _Manager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    plugins = Plugins(manager=manager)
    for name in blocked:
        manager.set_blocked(name)
        plugins._infos[name] = PluginInfo(name=name, blocked=True)

    version = VERSION
    for name, module_name in DEFAULT_PLUGINS:
        if not manager.is_blocked(name):
            manager.register(importlib.import_module(module_name), name=name)
            plugins._infos[name] = PluginInfo(
                name=name, distribution="hubcore", version=version, builtin=True
            )
    if autoload:
        _load_entry_points(plugins)
    for name, plugin in extra:
        if not manager.is_blocked(name):
            manager.register(plugin, name=name)
            plugins._infos[name] = PluginInfo(name=name)

    _check_hook_names(plugins, strict=bool(extra))
    _collect(plugins, "hubcore_register_sources", _add_source)
    plugins._pending.extend(_DEFERRED)
    return plugins


class _Manager(pluggy.PluginManager):
    """pluggy's manager, quicker to register a module: pluggy looks every attribute up
    statically (imported modules, classes and constants too), a few microseconds each, paid by
    every command for every plugin."""

    def parse_hookimpl_opts(self, plugin: object, name: str) -> Any:
        """pluggy's answer, asked only for a module's functions (what it could accept)."""
        if isinstance(plugin, types.ModuleType) and not isinstance(
            plugin.__dict__.get(name), types.FunctionType | types.MethodType
        ):
            return None
        return super().parse_hookimpl_opts(plugin, name)


def _load_entry_points(plugins: Plugins) -> None:
    for ep in _entry_points():
        if plugins.manager.is_blocked(ep.name):
            plugins._infos[ep.name] = PluginInfo(
                name=ep.name, distribution=ep.distribution, version=ep.version, blocked=True
            )
            continue
        info = PluginInfo(name=ep.name, distribution=ep.distribution, version=ep.version)
        plugins._infos[ep.name] = info
        try:
            plugin = ep.load()
            plugins.manager.register(plugin, name=ep.name)
        except Exception as exc:  # a broken plugin must not take the others down
            info.error = f"{type(exc).__name__}: {exc}"
            logger.warning(
                "hubcore plugin %r (%s) failed to load: %s", ep.name, ep.distribution, info.error
            )


class _EntryPoint(NamedTuple):
    """One entry point of the ``hubcore`` group, as scanned or as the scan cache recorded it."""

    name: str
    value: str
    distribution: str | None
    version: str | None

    def load(self) -> object:
        """Import the object the entry point names, as ``importlib.metadata`` would."""
        match = _ENTRY_POINT_VALUE.match(self.value)
        if match is None:
            raise PluginError(f"entry point {self.name} = {self.value!r} is not module[:attr]")
        found: object = importlib.import_module(match["module"])
        for part in filter(None, (match["attr"] or "").split(".")):
            found = getattr(found, part)
        return found


#: ``importlib.metadata.EntryPoint.pattern``
_ENTRY_POINT_VALUE = re.compile(
    r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$"
)
_SCAN_FILE = ("plugins", "entry-points.json")
_SCANS_KEPT = 8  # interpreters and path sets remembered side by side in one hub home


def _entry_points() -> list[_EntryPoint]:
    """The ``hubcore`` entry points of the installed distributions (the first of each name).

    Scanning every distribution's metadata costs tens of milliseconds, paid by every command,
    so the result is remembered in the hub home under :func:`_scan_key`. Losing the file, or
    failing to write it, only costs a scan.
    """
    if any(  # a finder that lists distributions of its own: what it sees has no stamp
        hasattr(finder, "find_distributions") and finder is not importlib.machinery.PathFinder
        for finder in sys.meta_path
    ):
        return _scan()
    from hubcore import config
    from hubcore.store.files import atomic_write_json

    key = _scan_key()
    path = config.get_dir().joinpath(*_SCAN_FILE)
    scans = _read_scans(path)
    if key in scans:
        return scans[key]
    found = scans[key] = _scan()
    kept = {k: [list(ep) for ep in v] for k, v in list(scans.items())[-_SCANS_KEPT:]}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, kept, compact=True)
    except OSError as exc:  # a read-only home: scan every time
        logger.debug("cannot remember the entry-point scan in %s: %s", path, exc)
    return found


def _scan() -> list[_EntryPoint]:
    from importlib import metadata

    found: dict[str, _EntryPoint] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in found:
            dist = ep.dist
            found[ep.name] = _EntryPoint(
                ep.name,
                ep.value,
                dist.name if dist is not None else None,
                dist.version if dist is not None else None,
            )
    return list(found.values())


def _scan_key() -> str:
    """What the scan depends on: the interpreter, the ``sys.path`` entries, and in each the
    distributions' metadata folders (``*.dist-info``, ``*.egg-info``) with their modification
    times, which change when a distribution is installed, upgraded, reinstalled or removed.
    An entry that is itself a file or an egg (a zip, ``x.egg``) counts with its own time."""
    parts = [sys.executable, sys.version]
    for entry in sys.path:
        where = os.path.abspath(entry or os.curdir)
        try:
            if where.endswith(".egg") or not os.path.isdir(where):
                parts.append(f"{where}\0{os.stat(where).st_mtime_ns}")
                continue
            with os.scandir(where) as children:
                found = sorted(
                    f"{child.name}\0{child.stat().st_mtime_ns}"
                    for child in children
                    if child.name.lower().endswith((".dist-info", ".egg-info"))
                )
        except (OSError, ValueError):
            found = ["-"]
        parts.append(f"{where}\0" + "\0".join(found))
    # a checksum, not a secure hash (hashlib would load OpenSSL): it tells states apart; who
    # can write the hub home can change what it says anyway
    data = "\n".join(parts).encode("utf-8", "surrogateescape")
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}{len(data):x}"


def _read_scans(path: Path) -> dict[str, list[_EntryPoint]]:
    """The remembered scans, oldest first; empty when the file is missing or malformed."""
    try:
        with open(path, "rb") as fh:
            data = json.load(fh)
        scans = {}
        for key, rows in data.items():
            eps = [_EntryPoint(*row) for row in rows]
            if not all(_well_formed(ep) for ep in eps):
                raise ValueError(f"a malformed entry in {key}")
            scans[key] = eps
        return scans
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        logger.debug("ignoring the entry-point scan cache %s: %s", path, exc)
        return {}


def _well_formed(ep: _EntryPoint) -> bool:
    return (
        isinstance(ep.name, str)
        and isinstance(ep.value, str)
        and _ENTRY_POINT_VALUE.match(ep.value) is not None
        and all(isinstance(v, (str, type(None))) for v in (ep.distribution, ep.version))
    )


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
        info = plugins._infos.setdefault(name, PluginInfo(name=name))
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
        info = plugins._infos.setdefault(impl.plugin_name, PluginInfo(name=impl.plugin_name))
        try:
            kwargs = {"register": lambda obj, _info=info: add(plugins, _info, obj)}
            impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})
        except Exception as exc:
            info.error = f"{hook_name} failed: {type(exc).__name__}: {exc}"
            logger.warning("hubcore plugin %r: %s", impl.plugin_name, info.error)


def _add_source(plugins: Plugins, info: PluginInfo, source: object) -> None:
    from hubcore.sources import Source

    _add(plugins.sources, info.sources, source, Source, info)


def _add_backend(plugins: Plugins, info: PluginInfo, backend: object) -> None:
    from hubcore.plugins.backends import Backend

    _add(plugins._backends, info.backends, backend, Backend, info)


def _add_redirect(plugins: Plugins, info: PluginInfo, redirect: object) -> None:
    from hubcore.repo.redirects import Redirect

    if not isinstance(redirect, Redirect):
        raise PluginError(f"{redirect!r} is not a hubcore.repo.redirects.Redirect")
    redirect.check()
    plugins._redirects.append(redirect)
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


_ADDERS: dict[str, Callable[[Plugins, PluginInfo, Any], None]] = {
    "hubcore_register_sources": _add_source,
    "hubcore_register_backends": _add_backend,
    "hubcore_register_redirects": _add_redirect,
}
#: Registration hooks collected on first use of what they register.
_DEFERRED = ("hubcore_register_backends", "hubcore_register_redirects")
