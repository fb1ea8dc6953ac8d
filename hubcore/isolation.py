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

Repositories that extend ``sys.path`` themselves (``sys.path.insert(0, "src")``) are handled
too: whatever they add to ``sys.path`` and whatever modules they import from inside their own
folder are kept aside after the import and put back only while the repository's code runs
through :meth:`RepoImporter.active`.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
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
        self.top_names = _top_level_modules(self.root)
        self._builtins = self._make_builtins()
        self._extra_paths: list[str] = []
        self._stray: dict[str, types.ModuleType] = {}
        self._contains: dict[str, bool] = {}

    # -- public ---------------------------------------------------------------------------------
    def import_hubconf(self, *, fresh: bool = False) -> types.ModuleType:
        """Import (or return the already imported) ``hubconf`` module of the repository.

        ``fresh=True`` forgets previously imported modules of this repository first, so edits
        to a live folder are picked up.
        """
        with _import_lock:
            _install_finder()
            if fresh:
                self.forget()
            _FINDER.register(self)
            if self.package not in sys.modules:
                sys.modules[self.package] = self._make_package()
            with self.active():
                return importlib.import_module(f"{self.package}.hubconf")

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Run repository code: its ``sys.path`` additions and stray modules are in place.

        On exit the user's ``sys.path`` is restored exactly, and modules imported from inside
        the repository under their plain names are moved aside again.
        """
        with _import_lock:
            saved_path = list(sys.path)
            shadowed = {name: sys.modules.get(name) for name in self._stray}
            sys.path[:0] = [p for p in self._extra_paths if p not in sys.path]
            sys.modules.update(self._stray)
            before = set(sys.modules)
            _FINDER.running.append(self)
            try:
                yield
            finally:
                _FINDER.running.pop()
                self._remember_paths(sys.path, saved_path)
                self._collect_stray(set(sys.modules) - before)
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

    def _make_builtins(self) -> dict[str, Any]:
        namespace = dict(builtins.__dict__)
        package, top_names = self.package, self.top_names

        def repo_import(
            name: str,
            globals: Mapping[str, object] | None = None,
            locals: Mapping[str, object] | None = None,
            fromlist: Sequence[str] | None = (),
            level: int = 0,
        ) -> types.ModuleType:
            if level == 0 and name.partition(".")[0] in top_names:
                module = builtins.__import__(f"{package}.{name}", globals, locals, fromlist, 0)
                if fromlist:
                    return module
                return sys.modules[f"{package}.{name.partition('.')[0]}"]
            return builtins.__import__(name, globals, locals, fromlist, level)

        namespace["__import__"] = repo_import
        return namespace

    def _remember_paths(self, current: list[str], saved: list[str]) -> None:
        for entry in current:
            if entry not in saved and entry not in self._extra_paths and self.contains(entry):
                self._extra_paths.append(entry)

    def _collect_stray(self, new_names: set[str]) -> None:
        for name in new_names:
            if name == self.package or name.startswith(PRIVATE_PREFIX):
                continue
            module = sys.modules.get(name)
            file = getattr(module, "__file__", None)
            if module is not None and file and self.contains(file):
                self._stray[name] = module

    def contains(self, path: str) -> bool:
        """Whether *path* lies inside the repository folder (remembered per path)."""
        known = self._contains.get(path)
        if known is None:
            try:
                known = Path(path).resolve().is_relative_to(self.root)
            except (OSError, ValueError):
                known = False
            self._contains[path] = known
        return known

    def exec_builtins(self) -> dict[str, Any]:
        """The ``__builtins__`` every module of this repository runs with."""
        return self._builtins


class _IsolatingLoader(importlib.machinery.SourceFileLoader):
    """A source loader that runs the module with its repository's ``__builtins__``."""

    def __init__(self, fullname: str, path: str, importer: RepoImporter):
        super().__init__(fullname, path)
        self.importer = importer

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
        inside = [entry for entry in folders if importer.contains(entry)]
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


def _top_level_modules(root: Path) -> frozenset[str]:
    """Names ``import X`` would find directly in *root*: modules and (namespace) packages."""
    names = set()
    for child in root.iterdir():
        if child.suffix == ".py" and child.stem.isidentifier():
            names.add(child.stem)
        elif (
            child.is_dir()
            and child.name.isidentifier()
            and ((child / "__init__.py").is_file() or any(child.glob("*.py")))
        ):
            names.add(child.name)
    return frozenset(names)
