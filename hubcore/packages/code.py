"""Where a package's classes come from: an installed distribution, or code shipped in it.

Saving: a class whose top-level module belongs to an installed distribution is recorded as
``module:qualname`` (with the distribution); any other class has its module's source copied
into the package, with the modules of the same folder it imports (recursively), as
transformers ships custom code. Classes defined in ``__main__`` or inside a function cannot
be found again and are refused.

Loading: an installed class is imported normally (installed code is the user's own); shipped
code is imported only after the trust check, under the private package of
:class:`hubcore.repo.isolation.RepoImporter`, as hubconf repositories are.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs

from hubcore.packages.errors import PackageError
from hubcore.repo.isolation import PRIVATE_PREFIX

__all__ = ["ClassRef", "class_ref", "installed_distribution", "resolve_installed", "shipped_files"]


@attrs.frozen
class ClassRef:
    """Where a class lives: ``module:qualname``, and the folder its module is rooted at when
    it must be shipped (``None``: importable from an installed distribution)."""

    module: str
    qualname: str
    root: Path | None = None
    distribution: str | None = None

    @property
    def text(self) -> str:
        """``module:qualname``."""
        return f"{self.module}:{self.qualname}"


def installed_distribution(module: str) -> str | None:
    """The installed distribution that provides the top-level package of *module*."""
    names = metadata.packages_distributions().get(module.partition(".")[0])
    return names[0] if names else None


def class_ref(target: Any) -> ClassRef:
    """Where the class (or function) *target* can be found again."""
    if not (inspect.isclass(target) or inspect.isfunction(target)):
        raise PackageError(
            f"a package can name only classes and functions to build a model, not a "
            f"{type(target).__name__} ({target!r}); define a function at the top level of a "
            "module"
        )
    module_name, qualname = target.__module__, target.__qualname__
    if module_name == "__main__" or "<locals>" in qualname:
        where = "the main script" if module_name == "__main__" else "a function"
        raise PackageError(
            f"{qualname} is defined in {where}, so a package cannot name it; define it at "
            "the top level of a module file"
        )
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if module_name.startswith(PRIVATE_PREFIX):  # from a hub repository: ship it by its own name
        package, _, plain = module_name.partition(".")
        root = Path(sys.modules[package].__path__[0])
        return ClassRef(plain, qualname, root)
    distribution = installed_distribution(module_name)
    if distribution is not None:
        return ClassRef(module_name, qualname, None, distribution)
    if not file:
        raise PackageError(f"{module_name} has no source file to ship with the package")
    root = Path(file).resolve().parent
    for _ in range(module_name.count(".") + (Path(file).name == "__init__.py")):
        root = root.parent
    return ClassRef(module_name, qualname, root)


def shipped_files(refs: Iterable[ClassRef]) -> dict[str, Path]:
    """``{relative path: source file}`` to copy for the classes of *refs* that need
    shipping: their modules, the packages' ``__init__.py`` above them, and the modules of the
    same root they import, recursively."""
    files: dict[str, Path] = {}
    pending = [(ref.root, ref.module) for ref in refs if ref.root is not None]
    seen: set[tuple[Path, str]] = set()
    while pending:
        root, name = pending.pop()
        if (root, name) in seen:
            continue
        seen.add((root, name))
        path = _module_file(root, name)
        if path is None:
            continue
        parts = name.split(".")
        for depth in range(1, len(parts)):  # the packages above the module
            init = root.joinpath(*parts[:depth], "__init__.py")
            if init.is_file():
                files[init.relative_to(root).as_posix()] = init
        files[path.relative_to(root).as_posix()] = path
        is_package = path.name == "__init__.py"
        for imported in _imports(path, name, is_package):
            if _module_file(root, imported.partition(".")[0]) is not None:
                pending.append((root, imported))
                parent = imported.rpartition(".")[0]
                while parent:
                    pending.append((root, parent))
                    parent = parent.rpartition(".")[0]
    return files


def _module_file(root: Path, name: str) -> Path | None:
    base = root.joinpath(*name.split("."))
    for candidate in (base.with_name(base.name + ".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, name: str, is_package: bool) -> list[str]:
    """Absolute names of the modules *path* (module *name*) imports, and of the names it
    imports from them that may be submodules."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, SyntaxError, UnicodeDecodeError) as exc:
        raise PackageError(f"cannot read {path} to ship it: {exc}") from None
    package = name if is_package else name.rpartition(".")[0]
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".") if package else []
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            if base:
                found.append(base)
                found.extend(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def resolve_installed(text: str, label: str) -> Any:
    """Import ``module:qualname`` from an installed distribution (never a local file: a
    package may not make hubcore import a module of the working directory).

    The object must be a class or a Python function *defined* at that name, as
    :func:`class_ref` records them: a package may not reach, through an installed module,
    whatever that module imported (``somelib:sys.exit``, ``somelib:subprocess.Popen``) or
    a builtin, and have it called with its configuration.
    """
    module_name, _, qualname = text.partition(":")
    dotted = [*module_name.split("."), *qualname.split(".")]
    if (
        not module_name
        or not qualname
        or not all(part.isidentifier() for part in dotted)
        or installed_distribution(module_name) is None
    ):
        raise PackageError(
            f"{label}: {text!r} is not a class of an installed distribution; install the "
            "distribution that provides it"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PackageError(f"{label}: cannot import {module_name}: {exc}") from exc
    found = resolve_in(module, qualname)
    if not _defined_at(found, module_name, qualname):
        raise PackageError(
            f"{label}: {text!r} is not a class or function defined in the installed module "
            f"{module_name} (it is a {type(found).__name__} from "
            f"{getattr(found, '__module__', None) or 'elsewhere'}); a package names the "
            "classes that build it where they are defined"
        )
    return found


def _defined_at(obj: Any, module_name: str, qualname: str) -> bool:
    """Whether *obj* is a class or Python function defined as *module_name*:*qualname*."""
    return (
        (inspect.isclass(obj) or inspect.isfunction(obj))
        and getattr(obj, "__module__", None) == module_name
        and getattr(obj, "__qualname__", None) == qualname
    )


def resolve_in(module: Any, qualname: str) -> Any:
    """The object *qualname* (dotted) of *module*."""
    obj = module
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PackageError(f"{module.__name__} has no {qualname}") from None
    return obj
