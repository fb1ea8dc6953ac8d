"""Nested loads: which other repositories a repository's code loads through a hub API.

Repositories build parts of a model from other repositories (``torch.hub.load("owner/repo",
...)`` inside an entrypoint). hubcore routes those calls through itself while repository code
runs (:mod:`hubcore.repo.redirects`); ``hubcore lock`` has to know them beforehand, without
running anything, so that a locked load pins the nested repository too. :func:`nested_loads`
reads every Python file of a snapshot with :mod:`ast` and reports each call of

* ``torch.hub.load`` / ``list`` / ``help`` (``source="github"``, the default; ``"local"``
  folders are the user's own and not locked),
* ``megengine.hub.load`` / ``list`` / ``help`` / ``import_module`` on GitHub (the default
  ``git_host``),
* ``hubcore.load`` / ``list`` / ``help`` / ``open_repo``,

however the module or function is imported (``import torch``, ``from torch import hub as h``,
``from torch.hub import load``), whose repository argument (and ``source``, ``host``,
``git_host``, ``commit``) is a string literal. A call whose repository is computed at run time
(or a megengine.hub call on another ``git_host``) is reported as a :class:`Gap` instead: name
that repository in ``hubcore lock`` yourself.

Limits: files larger than ``HUBCORE_MAX_HUBCONF_BYTES`` or nested too deeply are skipped (as
discovery refuses them), and at most :data:`MAX_FILES` files are read; files that do not
mention ``load``, ``list``, ``help`` or ``import_module`` are not parsed.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from hubcore.errors import HubError
from hubcore.records import Record, field
from hubcore.repo.discovery import _Scanner

__all__ = ["MAX_FILES", "Gap", "NestedLoad", "nested_loads"]

#: The most Python files of one repository read for nested loads.
MAX_FILES = 5000
#: Hub APIs whose calls load another repository: module -> functions.
_APIS: Mapping[str, frozenset[str]] = {
    "torch.hub": frozenset({"load", "list", "help"}),
    "megengine.hub": frozenset({"load", "list", "help", "import_module"}),
    "hubcore": frozenset({"load", "list", "help", "open_repo"}),
}
#: The keyword that names the repository, per API (when it is not the first argument).
_REPO_KEYWORD = {"torch.hub": "repo_or_dir", "megengine.hub": "repo_info", "hubcore": "repo"}
_MENTIONS = (b"load", b"list", b"help", b"import_module", b"open_repo")


class NestedLoad(Record):
    """A literal nested load: the reference and options hubcore parses it with."""

    text: str
    options: Mapping[str, str] = field(factory=dict)
    file: str = ""
    line: int = 0

    def __str__(self) -> str:
        return f"{self.text} ({self.file}:{self.line})"


class Gap(Record):
    """A hub call whose repository cannot be known without running the code."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


def nested_loads(root: Path) -> tuple[list[NestedLoad], list[Gap]]:
    """The literal nested loads in the Python files under *root*, and the calls that could
    not be read (see the module docstring). Runs no repository code."""
    found: list[NestedLoad] = []
    gaps: list[Gap] = []
    for file in _python_files(root):
        rel = file.relative_to(root).as_posix()
        try:
            with file.open("rb") as stream:
                head = stream.read()
        except OSError:
            continue
        if b"hub" not in head or not any(word in head for word in _MENTIONS):
            continue  # cheap: most files never call a hub API
        try:
            tree = _Scanner(root).parse(file)  # discovery's limits: size, nesting, syntax
        except HubError as exc:
            gaps.append(Gap(rel, 0, f"not read ({exc})"))
            continue
        for load, gap in _calls(tree, rel):
            if load is not None:
                found.append(load)
            if gap is not None:
                gaps.append(gap)
    return found, gaps


def _python_files(root: Path) -> Iterator[Path]:
    real_root = root.resolve()
    count = 0
    for folder, dirs, files in os.walk(root):  # symbolic links to folders are not followed
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            if not name.endswith(".py") or path.is_symlink():
                continue
            if not path.resolve().is_relative_to(real_root):
                continue
            count += 1
            if count > MAX_FILES:
                return
            yield path


def _calls(tree: ast.Module, rel: str) -> Iterator[tuple[NestedLoad | None, Gap | None]]:
    """Each hub call in *tree*, read as a nested load or a gap."""
    modules, functions = _aliases(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        api = _api_of(node.func, modules, functions)
        if api is None:
            continue
        yield _read_call(node, api, rel)


def _aliases(tree: ast.Module) -> tuple[dict[str, str], dict[str, str]]:
    """Names bound to hub API modules (``{"th": "torch.hub"}``; ``torch`` for ``torch``) and
    to their functions (``{"hub_load": "torch.hub"}``), anywhere in the file."""
    modules: dict[str, str] = {}
    functions: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    modules[alias.asname] = alias.name
                else:  # ``import torch.hub`` binds ``torch``
                    top = alias.name.partition(".")[0]
                    modules[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                bound = alias.asname or alias.name
                qualified = f"{node.module}.{alias.name}"
                if qualified in _APIS:
                    modules[bound] = qualified
                elif alias.name in _APIS.get(node.module, ()):
                    functions[bound] = node.module
    return modules, functions


def _api_of(
    func: ast.expr, modules: Mapping[str, str], functions: Mapping[str, str]
) -> tuple[str, str] | None:
    """``(api module, function)`` when *func* names a hub API function."""
    if isinstance(func, ast.Name):
        module = functions.get(func.id)
        return (module, func.id) if module is not None else None
    if not isinstance(func, ast.Attribute):
        return None
    parts = [func.attr]
    value = func.value
    while isinstance(value, ast.Attribute):
        parts.append(value.attr)
        value = value.value
    if not isinstance(value, ast.Name) or value.id not in modules:
        return None
    dotted = ".".join([modules[value.id], *reversed(parts[1:])])
    return (dotted, func.attr) if func.attr in _APIS.get(dotted, ()) else None


def _read_call(
    call: ast.Call, api: tuple[str, str], rel: str
) -> tuple[NestedLoad | None, Gap | None]:
    module, function = api
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    where = f"{module}.{function}"
    repo_node = call.args[0] if call.args else keywords.get(_REPO_KEYWORD[module])
    repo = _string(repo_node)
    if repo is None:
        return None, Gap(rel, call.lineno, f"{where} of a repository named at run time")
    options: dict[str, str] = {}
    for name in ("source", "host", "git_host", "commit", "revision"):
        if name in keywords:
            value = _string(keywords[name])
            if value is None and not _is_none(keywords[name]):
                return None, Gap(rel, call.lineno, f"{where}({repo!r}) with {name} set at run time")
            if value is not None:
                options[name] = value
    if module == "torch.hub":
        source = options.pop("source", "github").lower()
        if source == "local":
            return None, None  # a folder of the user's: nothing to lock
        return NestedLoad(repo, {"source": "github"}, rel, call.lineno), None
    if module == "megengine.hub":
        host = options.pop("git_host", "github.com")
        if host.strip().rstrip("/").removeprefix("https://") != "github.com":
            return None, Gap(rel, call.lineno, f"{where}({repo!r}) on git_host={host!r}")
        name, _, branch = repo.partition(":")
        revision = options.get("commit") or branch
        return NestedLoad(
            f"github:{name}", {"commit": revision} if revision else {}, rel, call.lineno
        ), None
    if "revision" in options:  # hubcore.load's other name for commit
        options.setdefault("commit", options.pop("revision"))
    kept = {k: v for k, v in options.items() if k in ("source", "host", "commit")}
    return NestedLoad(repo, kept, rel, call.lineno), None


def _string(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None
