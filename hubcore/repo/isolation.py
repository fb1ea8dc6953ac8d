"""Import isolation: every repository gets its own module namespace.

``torch.hub`` puts the repository on ``sys.path`` and leaves its ``utils``, ``models``, ...
in ``sys.modules``, so two repositories with the same module names (or one that shares a name
with the user's code) break each other. hubcore instead imports a repository as a private
package ``_hubcore_repo_<id>``: ``hubconf.py`` becomes ``_hubcore_repo_<id>.hubconf``, its
sibling ``utils.py`` becomes ``_hubcore_repo_<id>.utils``. Every module of the repository is
executed with its own ``__builtins__`` whose ``__import__`` maps the repository's top-level
names (``import utils``, ``from models.resnet import x``) onto the private package. The mapping
lives in the modules themselves, so imports that happen later (inside an entrypoint, inside
``forward``) still find the right module, while the user's ``sys.modules`` never sees a bare
``utils`` from a repository.

The same mapping applies to the repository's dynamic imports: its modules see their own
``importlib`` (a thin view of the real one) whose ``import_module``, ``__import__`` and
``util.find_spec`` map the repository's names, so the registry pattern
``import_module(f"models.{name}")`` works too. Nothing process-wide is patched for that: the
user's code and other threads keep the real functions.

Folders without ``__init__.py`` are implicit namespace packages, as in Python: the
repository's ``official/vision/...`` imports under the private name, but a folder never hides
a regular module of the same name found outside the repository (a ``json/`` folder of
scripts does not replace :mod:`json`).

Repositories that extend ``sys.path`` themselves (``sys.path.insert(0, "src")``) are handled
too: whatever they add to ``sys.path`` and whatever modules they import from inside their own
folder are kept aside after the import and put back only while the repository's code runs
through :meth:`RepoImporter.active`.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import threading
import types
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["RepoImporter"]

PRIVATE_PREFIX = "_hubcore_repo_"

# Imports mutate process-wide state (sys.path, sys.modules); one repository at a time.
_import_lock = threading.RLock()


class RepoImporter:
    """Imports one repository folder under a private package name."""

    def __init__(self, root: Path, key: str | None = None):
        self.root = root.resolve()
        digest = hashlib.sha256(f"{self.root}\0{key or ''}".encode()).hexdigest()[:12]
        self.package = PRIVATE_PREFIX + digest
        self.top_names, self.namespace_names = _top_level_modules(self.root)
        self._namespace_owned: dict[str, bool] = {}
        self._builtins = self._make_builtins()
        self._extra_paths: list[str] = []
        self._stray: dict[str, types.ModuleType] = {}
        self._contains: dict[str, bool] = {}
        self._importlib: _ImportlibView | None = None
        #: The user's own ``sys.path`` folders inside the repository (its root excepted), as
        #: they were when the repository's code started to run (see :meth:`owns`).
        self._users_folders: tuple[str, ...] = ()

    # -- public ---------------------------------------------------------------------------------
    def import_hubconf(self, *, fresh: bool = False) -> types.ModuleType:
        """Import (or return the already imported) ``hubconf`` module of the repository.

        ``fresh=True`` forgets previously imported modules of this repository first, so edits
        to a live folder are picked up.
        """
        return self.import_module("hubconf", fresh=fresh)

    def import_module(self, name: str, *, fresh: bool = False) -> types.ModuleType:
        """Import (or return) the repository's module *name* (``hubconf``, ``models.net``)
        under the private package; ``fresh`` as for :meth:`import_hubconf`."""
        with _import_lock:
            _install_finder()
            if fresh:
                self.forget()
            _FINDER.register(self)
            if self.package not in sys.modules:
                sys.modules[self.package] = self._make_package()
            full = f"{self.package}.{name}"
            imported = sys.modules.get(full)
            spec = getattr(imported, "__spec__", None)
            if imported is not None and not getattr(spec, "_initializing", False):
                return imported  # a warm load: nothing runs, so nothing to isolate
            with self.active():
                return importlib.import_module(full)

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Run repository code: its ``sys.path`` additions and stray modules are in place.

        On exit the user's ``sys.path`` is restored exactly, and modules imported from inside
        the repository under their plain names are moved aside again.
        """
        with _import_lock:
            saved_path = list(sys.path)
            outer_folders = self._users_folders
            if self not in _FINDER.running:  # nested: the user's path is the outermost one's
                self._users_folders = self._folders_of(saved_path)
            shadowed = {name: sys.modules.get(name) for name in self._stray}
            sys.path[:0] = [p for p in self._extra_paths if p not in sys.path]
            sys.modules.update(self._stray)
            before = list(sys.modules)
            _FINDER.running.append(self)
            try:
                yield
            finally:
                _FINDER.running.pop()
                self._remember_paths(sys.path, saved_path)
                self._collect_stray(_added_since(before))
                self._users_folders = outer_folders
                for name in self._stray:
                    previous = shadowed.get(name)
                    if previous is None:
                        sys.modules.pop(name, None)
                    else:
                        sys.modules[name] = previous
                sys.path[:] = saved_path

    def forget(self) -> None:
        """Drop this repository's private modules so the next import starts afresh."""
        with _import_lock:
            prefix = self.package + "."
            for name in [n for n in sys.modules if n == self.package or n.startswith(prefix)]:
                del sys.modules[name]
            self._stray.clear()
            self._extra_paths.clear()
            importlib.invalidate_caches()

    # -- internals --------------------------------------------------------------------------------
    def _make_package(self) -> types.ModuleType:
        spec = importlib.machinery.ModuleSpec(self.package, None, is_package=True)
        spec.submodule_search_locations = [str(self.root)]
        module = importlib.util.module_from_spec(spec)
        module.__path__ = [str(self.root)]
        module.__file__ = None
        return module

    def private_name(self, name: str) -> str:
        """The module *name* means to the repository's code: its own top-level modules (and
        what lies beneath them) under the private package, anything else unchanged."""
        top = name.partition(".")[0]
        if top in self.top_names or (top in self.namespace_names and self._owns_namespace(top)):
            return f"{self.package}.{name}"
        return name

    def _owns_namespace(self, top: str) -> bool:
        # Python's rule: a namespace portion yields to a regular module found anywhere.
        owned = self._namespace_owned.get(top)
        if owned is None:
            outside = [p for p in sys.path if isinstance(p, str) and not self.contains(p)]
            owned = not _regular_module_exists(top, outside)
            self._namespace_owned[top] = owned
        return owned

    def _make_builtins(self) -> dict[str, Any]:
        namespace = dict(builtins.__dict__)
        namespace["__import__"] = self._import
        return namespace

    def _import(
        self,
        name: str,
        globals: Mapping[str, object] | None = None,
        locals: Mapping[str, object] | None = None,
        fromlist: Sequence[str] | None = (),
        level: int = 0,
    ) -> types.ModuleType:
        """``__import__`` for the repository's modules (the ``import`` statement's hook)."""
        if level == 0:
            private = self.private_name(name)
            if private != name:
                module = builtins.__import__(private, globals, locals, fromlist, 0)
                if fromlist:
                    return module
                return sys.modules[f"{self.package}.{name.partition('.')[0]}"]
            if name == "importlib" or name.startswith("importlib."):
                return self._importlib_view(name, globals, locals, fromlist)
        return builtins.__import__(name, globals, locals, fromlist, level)

    def _importlib_view(
        self,
        name: str,
        globals: Mapping[str, object] | None,
        locals: Mapping[str, object] | None,
        fromlist: Sequence[str] | None,
    ) -> types.ModuleType:
        """What ``import importlib[.x]`` gives the repository: the real modules, but
        ``importlib`` and ``importlib.util`` seen through views that map its names."""
        module = builtins.__import__(name, globals, locals, fromlist, 0)
        if self._importlib is None:
            self._importlib = _ImportlibView(self)
        if module is importlib:
            return self._importlib
        if module is importlib.util:
            return self._importlib.util
        return module

    def _import_module(self, name: str, package: str | None = None) -> types.ModuleType:
        """``importlib.import_module`` for the repository's code."""
        return importlib.import_module(*self._private_target(name, package))

    def _find_spec(
        self, name: str, package: str | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        """``importlib.util.find_spec`` for the repository's code."""
        return importlib.util.find_spec(*self._private_target(name, package))

    def _private_target(self, name: str, package: str | None) -> tuple[str, str | None]:
        """``(name, package)`` of a dynamic import, mapped as :meth:`private_name` maps:
        a relative *name* is resolved against the mapped *package*."""
        if name.startswith("."):
            return name, self.private_name(package) if package else package
        return self.private_name(name), package

    def _remember_paths(self, current: list[str], saved: list[str]) -> None:
        for entry in current:
            if entry not in saved and entry not in self._extra_paths and self.contains(entry):
                self._extra_paths.append(entry)

    def _collect_stray(self, new_names: set[str]) -> None:
        """Move aside the modules the repository's code imported by their plain names from
        folders it owns (:meth:`owns`)."""
        for name in new_names:
            if name == self.package or name.startswith(PRIVATE_PREFIX):
                continue
            module = sys.modules.get(name)
            file = getattr(module, "__file__", None)
            if module is not None and file and self.owns(file):
                self._stray[name] = module

    def owns(self, path: str) -> bool:
        """Whether *path* (a ``sys.path`` entry, a package folder, a module's file) is the
        repository's: inside its folder, and not under a folder the user's own ``sys.path``
        held when the repository's code started (a virtual environment in the project,
        ``.venv``), which stays the user's as any installed package does. What the
        repository's code imports from its folders runs with its imports, and is moved aside
        when it stops."""
        if not self.contains(path):
            return False
        if not self._users_folders:
            return True
        # located as contains() locates: a module's own file may be a link (a venv of links)
        where = _located(os.path.abspath(path)) + os.sep
        return not where.startswith(self._users_folders)

    def _folders_of(self, users_path: list[str]) -> tuple[str, ...]:
        """The user's ``sys.path`` entries inside the repository folder but its root (and
        the folders the repository's code added), resolved now, each ending with a
        separator. Relative entries are resolved against the working folder now: the
        repository's code may change it."""
        root = str(self.root)
        found = []
        for entry in users_path:
            if not isinstance(entry, str) or entry in self._extra_paths:
                continue
            if not self.contains(entry):  # most entries: remembered, nothing resolved
                continue
            where = os.path.abspath(entry or os.curdir)
            # as a module's file is located, and, for an entry that is itself a link (a
            # `.venv/site` linked to its site-packages), where the files found through it are
            for folder in {_located(where), os.path.realpath(where)}:
                if folder != root and folder.startswith(root.rstrip(os.sep) + os.sep):
                    found.append(folder + os.sep)
        return tuple(found)

    def contains(self, path: str) -> bool:
        """Whether *path* lies inside the repository folder (remembered per absolute path: a
        relative one, ``''`` on ``sys.path``, means another folder once the working folder
        changes)."""
        known = self._contains.get(path)
        if known is None:
            try:
                real = _located(os.path.abspath(path) if path else os.getcwd())
            except (OSError, ValueError):
                known = False
            else:
                root = str(self.root)
                known = real == root or real.startswith(root.rstrip(os.sep) + os.sep)
            if os.path.isabs(path):
                self._contains[path] = known
        return known

    def exec_builtins(self) -> dict[str, Any]:
        """The ``__builtins__`` every module of this repository runs with."""
        return self._builtins


def _added_since(before: list[str]) -> set[str]:
    """The names in ``sys.modules`` now that were not in *before* (its keys then, in order).

    An import appends its module, and dicts keep insertion order, so when nothing was removed
    the new names are the tail: two list copies instead of two sets of a thousand names (a
    warm load spent more time here than anywhere else in hubcore)."""
    after = list(sys.modules)
    if after[: len(before)] == before:
        return set(after[len(before) :])
    return set(after).difference(before)


def _located(path: str) -> str:
    """Where *path* is: the real path of its folder, then its name (a module is where the
    import system found it, even when its file is a link)."""
    folder, name = os.path.split(path)
    if not folder or name in ("", ".", ".."):
        return _real_path(path)
    return os.path.join(_real_path(folder), name)


@functools.lru_cache(maxsize=1024)
def _real_path(folder: str) -> str:
    """``os.path.realpath(folder)``, each folder resolved once from its resolved parent:
    importing torch from a hubconf adds a thousand modules from a hundred folders, each checked
    by :meth:`RepoImporter.contains` (a ``realpath`` and a ``pathlib`` comparison per module
    took 15 ms of a cold load)."""
    parent, name = os.path.split(folder)
    if parent and parent != folder and name not in ("", ".", "..") and not os.path.islink(folder):
        return os.path.join(_real_path(parent), name)
    return os.path.realpath(folder)


class _IsolatingLoader(importlib.machinery.SourceFileLoader):
    """A source loader that runs the module with its repository's ``__builtins__``.

    Its cached bytecode is checked against the source's modification time in nanoseconds:
    Python's own check is by whole seconds and size, so a local repository edited within
    the second of its last load, its size unchanged (``return 1`` to ``return 2``), ran the
    old code."""

    def __init__(self, fullname: str, path: str, importer: RepoImporter):
        super().__init__(fullname, path)
        self.importer = importer

    def path_stats(self, path: str) -> Mapping[str, Any]:
        """The source's size and modification time, the time in nanoseconds."""
        stat = os.stat(path)
        return {"mtime": stat.st_mtime_ns, "size": stat.st_size}

    def exec_module(self, module: types.ModuleType) -> None:
        module.__dict__["__builtins__"] = self.importer.exec_builtins()
        super().exec_module(module)


class _RepoFinder(importlib.abc.MetaPathFinder):
    """Finds ``_hubcore_repo_<id>.*`` modules in the folders of registered repositories, and
    modules the running repository reaches through folders it added to ``sys.path``."""

    def __init__(self) -> None:
        self._importers: dict[str, RepoImporter] = {}
        #: The repositories whose code is running (innermost last), see RepoImporter.active.
        self.running: list[RepoImporter] = []

    def register(self, importer: RepoImporter) -> None:
        self._importers[importer.package] = importer

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(PRIVATE_PREFIX):
            return self._find_on_repo_paths(fullname, path)
        package, _, rest = fullname.partition(".")
        importer = self._importers.get(package)
        if importer is None or not rest:
            return None
        parts = rest.split(".")
        parent = importer.root.joinpath(*parts[:-1])
        # PathFinder looks up the last component of fullname in the given folder.
        spec = importlib.machinery.PathFinder.find_spec(fullname, [str(parent)])
        return self._isolated(spec, fullname, importer)

    def _find_on_repo_paths(
        self, fullname: str, path: Sequence[str] | None
    ) -> importlib.machinery.ModuleSpec | None:
        """A module under a folder the running repository put on ``sys.path`` (``src/``) runs
        with the repository's imports too, so it can import the repository's top-level
        modules as the repository's own code can."""
        if not self.running:
            return None
        importer = self.running[-1]
        folders = path if path is not None else sys.path
        inside = [entry for entry in folders if isinstance(entry, str) and importer.owns(entry)]
        if not inside:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, inside)
        return self._isolated(spec, fullname, importer)

    @staticmethod
    def _isolated(
        spec: importlib.machinery.ModuleSpec | None, fullname: str, importer: RepoImporter
    ) -> importlib.machinery.ModuleSpec | None:
        if spec is None:
            return None
        if isinstance(spec.loader, importlib.machinery.SourceFileLoader) and spec.origin:
            locations = spec.submodule_search_locations
            spec = importlib.util.spec_from_file_location(
                fullname,
                spec.origin,
                loader=_IsolatingLoader(fullname, spec.origin, importer),
                submodule_search_locations=locations,
            )
        return spec


_FINDER = _RepoFinder()


def _install_finder() -> None:
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


class _ImportlibView(types.ModuleType):
    """The ``importlib`` a repository's modules import: the real module's attributes, with
    ``import_module``, ``__import__`` and ``util.find_spec`` mapping the repository's names."""

    def __init__(self, importer: RepoImporter):
        super().__init__("importlib", importlib.__doc__)
        self.__real__ = importlib
        self.import_module = importer._import_module
        self.__import__ = importer._import
        self.util = _ImportlibUtilView(importer)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__real__, name)


class _ImportlibUtilView(types.ModuleType):
    """``importlib.util`` as a repository's modules see it (see :class:`_ImportlibView`)."""

    def __init__(self, importer: RepoImporter):
        super().__init__("importlib.util", importlib.util.__doc__)
        self.__real__ = importlib.util
        self.find_spec = importer._find_spec

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__real__, name)


def _top_level_modules(root: Path) -> tuple[frozenset[str], frozenset[str]]:
    """Names ``import X`` finds directly in *root*: modules and regular packages, then the
    folders that are implicit namespace packages (no ``__init__.py``, whatever is inside)."""
    regular, namespace = set(), set()
    for child in root.iterdir():
        if child.suffix == ".py" and child.stem.isidentifier() and child.is_file():
            regular.add(child.stem)
        elif child.name.isidentifier() and child.name != "__pycache__" and child.is_dir():
            if (child / "__init__.py").is_file():
                regular.add(child.name)
            else:
                namespace.add(child.name)
    return frozenset(regular), frozenset(namespace - regular)


def _regular_module_exists(name: str, path: list[str]) -> bool:
    """Whether *name* is a built-in, frozen, or regular module or package on *path*."""
    for finder in (importlib.machinery.BuiltinImporter, importlib.machinery.FrozenImporter):
        if finder.find_spec(name) is not None:
            return True
    spec = importlib.machinery.PathFinder.find_spec(name, path)
    return spec is not None and spec.origin is not None and spec.loader is not None
