"""Redirects: a framework's own hub functions reach hubcore while repository code runs.

Repositories written for ``torch.hub`` or ``megengine.hub`` fetch weights by calling those
libraries (``torch.hub.load_state_dict_from_url(url)``). A framework plugin registers a
:class:`Redirect` for each such function (see
:func:`hubcore.plugins.hookspecs.hubcore_register_redirects`); while hubcore imports a
``hubconf.py`` or runs an entrypoint, the attribute is replaced by a *shim*, and on exit the
original is put back.

The shim, not the replacement, is what gets patched in, because repository modules bind names
at import time (``from torch.hub import load_state_dict_from_url``) and keep them. A shim calls
the replacement only while repository code is running under hubcore
(:func:`hubcore.runcontext.in_repository_code`: a context variable that follows repository code
into the threads it starts, so the user's other threads and later calls are unaffected) and the
original otherwise, so a name bound during a load stays harmless after it. A module that is
not imported yet when repository code starts (torch is often first imported by the
``hubconf.py`` itself) is patched the moment its import finishes.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

from hubcore import runcontext
from hubcore.errors import PluginError
from hubcore.records import Record

__all__ = ["Redirect", "in_repository_code", "redirecting"]


class Redirect(Record):
    """Replace ``<module>.<attribute>`` by *replacement* while repository code runs.

    *replacement* must accept every call the original accepts (same signature) and return
    what the original would. It is the function itself, or where to find it,
    ``"package.module:function"``: then its module is imported on the first redirected call,
    so a plugin whose replacements live in a heavy module (a framework's whole hub API) keeps
    every load that never calls them from importing it.
    """

    module: str
    attribute: str
    replacement: Callable[..., Any] | str

    def check(self) -> None:
        """Refuse a replacement that is neither callable nor ``"module:function"`` whose
        top-level package is installed, with a :class:`PluginError`. Nothing is imported: the
        rest of the name is checked by :meth:`resolve`, on the first redirected call."""
        target = self.replacement
        if callable(target):
            return
        module, _, function = target.partition(":") if isinstance(target, str) else ("", "", "")
        try:
            found = _dotted(module) and _dotted(function)
            # the top level only: finding a submodule would import its packages
            found = found and importlib.util.find_spec(module.partition(".")[0]) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise PluginError(
                f"the redirect of {self.module}.{self.attribute} names {target!r}: give the "
                "replacement function, or 'package.module:function' naming an installed module"
            )

    def resolve(self) -> Callable[..., Any]:
        """The replacement function, imported if it is named; a :class:`PluginError` when
        what it names cannot be imported (whatever its module raises) or is not callable."""
        target = self.replacement
        if callable(target):
            return target
        module, _, function = target.partition(":")
        problem = "is not callable"
        try:
            named: Any = importlib.import_module(module)
            for part in function.split("."):
                named = getattr(named, part)
        except Exception as exc:  # the plugin's module is broken, not the repository
            problem = f"cannot be imported ({type(exc).__name__}: {exc})"
            named = None
        if not callable(named):
            raise PluginError(
                f"the replacement of {self.module}.{self.attribute}, {target!r}, {problem}; "
                "reinstall the plugin that registers it, or block it (HUBCORE_BLOCK_PLUGINS; "
                "`hubcore plugins` lists each plugin's redirects)"
            )
        return cast(Callable[..., Any], named)


def _dotted(text: str) -> bool:
    return all(part.isidentifier() for part in text.split("."))


def _resolved(redirect: Redirect) -> Callable[..., Any]:
    """The replacement of *redirect*: a named one is imported when first called."""
    if callable(redirect.replacement):
        return redirect.replacement
    found: list[Callable[..., Any]] = []
    failed: list[PluginError] = []
    resolving = threading.Lock()

    def deferred(*args: Any, **kwargs: Any) -> Any:
        if not found:
            with resolving:  # one import, whichever thread calls first
                if failed:  # a broken module is not run again on every call
                    raise failed[0]
                if not found:
                    try:
                        found.append(redirect.resolve())
                    except PluginError as exc:
                        failed.append(exc)
                        raise
        return found[0](*args, **kwargs)

    return deferred


def in_repository_code() -> bool:
    """Whether repository code runs under hubcore right now (in this thread, or in a thread
    that repository code started)."""
    return runcontext.in_repository_code()


@contextlib.contextmanager
def redirecting(redirects: Sequence[Redirect]) -> Iterator[None]:
    """Hold *redirects* in place (and mark the block as running repository code)."""
    with runcontext.repository_code():
        _PATCHES.acquire(redirects)
        try:
            yield
        finally:
            _PATCHES.release()


def _make_shim(original: Any, replacement: Callable[..., Any]) -> Callable[..., Any]:
    in_repo_code = runcontext.in_repository_code

    def shim(*args: Any, **kwargs: Any) -> Any:
        target = replacement if in_repo_code() else original
        return target(*args, **kwargs)

    try:
        functools.update_wrapper(shim, original)
    except (AttributeError, TypeError):  # pragma: no cover - exotic callables
        pass
    shim.__hubcore_original__ = original  # type: ignore[attr-defined]
    return shim


class _Patches:
    """Reference-counted installation: the first user patches, the last one restores."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._users = 0
        self._redirects: tuple[Redirect, ...] = ()
        self._applied: list[tuple[types.ModuleType, str, Any]] = []
        self._shims: dict[tuple[str, str, int, object], Callable[..., Any]] = {}
        self._finder: _PatchOnImport | None = None

    def acquire(self, redirects: Sequence[Redirect]) -> None:
        with self._lock:
            self._users += 1
            if self._users > 1:
                return
            self._redirects = tuple(redirects)
            pending = set()
            for redirect in self._redirects:
                module = sys.modules.get(redirect.module)
                if module is None:
                    pending.add(redirect.module)
                else:
                    self._patch(module, redirect)
            if pending:
                self._finder = _PatchOnImport(pending, self._patch_module)
                sys.meta_path.insert(0, self._finder)

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users:
                return
            if self._finder is not None:
                with contextlib.suppress(ValueError):
                    sys.meta_path.remove(self._finder)
                self._finder = None
            for module, attribute, original in reversed(self._applied):
                setattr(module, attribute, original)
            self._applied.clear()
            self._redirects = ()

    def _patch_module(self, module: types.ModuleType) -> None:
        with self._lock:
            for redirect in self._redirects:
                if redirect.module == module.__name__:
                    self._patch(module, redirect)

    def _patch(self, module: types.ModuleType, redirect: Redirect) -> None:
        original = getattr(module, redirect.attribute, None)
        if original is None:
            return  # this version of the framework does not have it
        original = getattr(original, "__hubcore_original__", original)
        target = redirect.replacement  # another plugin set may name another replacement
        named = target if isinstance(target, str) else id(target)  # kept alive by the shim
        key = (redirect.module, redirect.attribute, id(original), named)
        shim = self._shims.get(key)
        if shim is None:
            shim = self._shims[key] = _make_shim(original, _resolved(redirect))
        self._applied.append((module, redirect.attribute, original))
        setattr(module, redirect.attribute, shim)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Wraps the loader of watched modules so they are patched as soon as they execute."""

    def __init__(self, names: set[str], on_loaded: Callable[[types.ModuleType], None]):
        self._names = names
        self._on_loaded = on_loaded

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self._names:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _PatchingLoader(spec.loader, self._on_loaded)
                return spec
        return None


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader: Any, on_loaded: Callable[[types.ModuleType], None]):
        self._loader = loader
        self._on_loaded = on_loaded

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        create: Callable[..., types.ModuleType | None] | None = getattr(
            self._loader, "create_module", None
        )
        return create(spec) if create is not None else None

    def exec_module(self, module: types.ModuleType) -> None:
        self._loader.exec_module(module)
        self._on_loaded(module)

    def __getattr__(self, name: str) -> Any:  # get_source, is_package, get_resource_reader...
        return getattr(self._loader, name)


_PATCHES = _Patches()
