"""Static discovery: read ``hubconf.py`` with :mod:`ast`, never import it.

The entrypoints of a repository are the public names ``hubconf.py`` binds at its top level,
as ``torch.hub.list`` sees them, but found without running anything: definitions are read in
place, and re-exports (``from models.resnet import resnet18``, ``from .zoo import *``) are
followed into the repository's own modules to the real definition and its docstring. A name
that cannot be followed (imported from an installed package, computed by a call) is still
listed, marked unresolved with the reason, rather than guessed at.
"""

from __future__ import annotations

import ast
import copy
import importlib.machinery
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal

import attrs

from hubcore.errors import HubconfNotFoundError, HubconfSyntaxError
from hubcore.weights import Weights

__all__ = ["Entrypoint", "HubconfInfo", "WeightsInfo", "discover_hubconf"]

HUBCONF = "hubconf.py"
_MAX_DEPTH = 32
_PRETRAINED_NAMES = {"pretrained"}


@attrs.frozen
class WeightsInfo:
    """What ``@pretrained`` declares: variants by name, and which one ``pretrained=True`` uses.

    ``known`` is false when the decorator's arguments are not literals, so the URLs are only
    known at run time.
    """

    variants: Mapping[str, Weights]
    default: str | None
    known: bool = True


Kind = Literal["function", "class", "unresolved"]


@attrs.frozen
class Entrypoint:
    """A statically discovered entrypoint."""

    name: str
    kind: Kind
    signature: str | None = None
    doc: str | None = None
    defined_in: str | None = None  # "models/resnet.py:12"
    weights: WeightsInfo | None = None
    note: str | None = None  # why it is unresolved

    @property
    def resolved(self) -> bool:
        return self.kind != "unresolved"


@attrs.frozen
class HubconfInfo:
    """Everything static discovery learned about a repository."""

    root: Path
    dependencies: tuple[str, ...]
    entrypoints: Mapping[str, Entrypoint]
    #: Things that make the entrypoint list possibly incomplete (external star imports).
    warnings: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """Whether every public top-level name is accounted for."""
        return not self.warnings


# -- bindings: what a module-level name refers to --------------------------------------------


@attrs.frozen
class _Def:
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda
    file: Path


@attrs.frozen
class _ImportedName:
    file: Path  # module file inside the repository
    name: str


@attrs.frozen
class _LocalAlias:
    file: Path
    name: str


@attrs.frozen
class _Opaque:
    reason: str


@attrs.frozen
class _NotCallable:
    pass


_Binding = _Def | _ImportedName | _LocalAlias | _Opaque | _NotCallable


@attrs.define
class _ModuleScan:
    bindings: dict[str, _Binding]
    dependencies: list[str] | None
    explicit_all: list[str] | None
    warnings: list[str]
    #: Module-level names bound to literals (``URL = "https://..."``), for decorator arguments.
    constants: dict[str, object] = attrs.field(factory=dict)


class _Scanner:
    """Scans modules of one repository, following imports within it."""

    def __init__(self, root: Path):
        self.root = root
        self.search_roots: list[Path] = [root]
        self._scans: dict[Path, _ModuleScan] = {}
        self._in_progress: set[Path] = set()

    def rel(self, file: Path) -> str:
        try:
            return file.relative_to(self.root).as_posix()
        except ValueError:
            return str(file)

    def parse(self, file: Path) -> ast.Module:
        try:
            source = file.read_bytes()
        except OSError as exc:
            raise HubconfNotFoundError(f"cannot read {file}: {exc}") from exc
        try:
            return ast.parse(source, filename=str(file))
        except SyntaxError as exc:
            err = HubconfSyntaxError(
                f"{self.rel(file)} line {exc.lineno}: {exc.msg}. Fix the syntax error; "
                "nothing from the repository was run."
            )
            err.filename, err.lineno, err.offset, err.text = (
                str(file),
                exc.lineno,
                exc.offset,
                exc.text,
            )
            raise err from None

    def scan(self, file: Path) -> _ModuleScan:
        file = file.resolve()
        if file in self._scans:
            return self._scans[file]
        if file in self._in_progress:  # an import cycle: what is known so far is all we get
            return _ModuleScan({}, None, None, [])
        self._in_progress.add(file)
        try:
            tree = self.parse(file)
            scan = _ModuleScan({}, None, None, [])
            for stmt in _top_level_statements(tree.body):
                self._bind(stmt, file, scan)
            self._scans[file] = scan
            return scan
        finally:
            self._in_progress.discard(file)

    def _bind(self, stmt: ast.stmt, file: Path, scan: _ModuleScan) -> None:
        b = scan.bindings
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            b[stmt.name] = _Def(stmt, file)
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                b[alias.asname or alias.name.split(".")[0]] = _NotCallable()
        elif isinstance(stmt, ast.ImportFrom):
            self._bind_import_from(stmt, file, scan)
        elif isinstance(stmt, ast.Assign | ast.AnnAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                self._bind_assign(target, stmt.value, file, scan)
        elif isinstance(stmt, ast.Delete):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    b.pop(target.id, None)
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            self._note_sys_path(stmt.value, file)

    def _bind_assign(
        self, target: ast.expr, value: ast.expr | None, file: Path, scan: _ModuleScan
    ) -> None:
        if isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                self._bind_assign(element, None, file, scan)
            return
        if not isinstance(target, ast.Name):
            return
        name = target.id
        scan.constants.pop(name, None)
        if name == "dependencies":
            scan.dependencies = _literal_strings(value)
            if scan.dependencies is None:
                scan.warnings.append("`dependencies` is not a literal list of strings")
            scan.bindings[name] = _NotCallable()
        elif name == "__all__":
            scan.explicit_all = _literal_strings(value)
            scan.bindings[name] = _NotCallable()
        elif value is None:
            scan.bindings[name] = _Opaque("assigned by unpacking")
        elif isinstance(value, ast.Lambda):
            scan.bindings[name] = _Def(value, file)
        elif isinstance(value, ast.Name):
            scan.bindings[name] = _LocalAlias(file, value.id)
        elif _is_plain_data(value) or name.isupper() or _returns_data(value):
            # UPPER_CASE names are constants by convention (HERE = os.path.dirname(...)).
            scan.bindings[name] = _NotCallable()
            literal = _literal(value)
            if literal is not None:
                scan.constants[name] = literal
        else:
            scan.bindings[name] = _Opaque(f"assigned from `{_short(value)}`")

    def _bind_import_from(self, stmt: ast.ImportFrom, file: Path, scan: _ModuleScan) -> None:
        if stmt.level == 0 and (stmt.module or "").split(".")[0] == "hubcore":
            for alias in stmt.names:  # the hub's own API (pretrained, Weights), not entrypoints
                scan.bindings[alias.asname or alias.name] = _NotCallable()
            return
        module_file, package_dir = self.find_module(stmt.module, stmt.level, file)
        label = "." * stmt.level + (stmt.module or "")
        for alias in stmt.names:
            if alias.name == "*":
                if module_file is None:
                    scan.warnings.append(
                        f"`from {label} import *` in {self.rel(file)} imports from outside the "
                        "repository; names it brings cannot be listed statically"
                    )
                    continue
                for name, binding in self._public_names(module_file).items():
                    scan.bindings[name] = binding
                continue
            bound = alias.asname or alias.name
            if package_dir is not None and self._submodule(package_dir, alias.name):
                scan.bindings[bound] = _NotCallable()  # `from pkg import module`
            elif module_file is not None:
                scan.bindings[bound] = _ImportedName(module_file, alias.name)
            elif stmt.level == 0 and stmt.module and _installed_submodule(stmt.module, alias.name):
                scan.bindings[bound] = _NotCallable()  # `from torch import nn`
            else:
                scan.bindings[bound] = _Opaque(f"imported from `{label}`, outside the repository")

    def _public_names(self, module_file: Path) -> dict[str, _Binding]:
        scan = self.scan(module_file)
        names = scan.explicit_all
        if names is None:
            names = [n for n in scan.bindings if not n.startswith("_")]
        return {n: _LocalAlias(module_file, n) for n in names if n in scan.bindings}

    def find_module(
        self, module: str | None, level: int, importer: Path
    ) -> tuple[Path | None, Path | None]:
        """Locate a module inside the repository: (its file, its folder if a package)."""
        parts = module.split(".") if module else []
        if level:
            base = importer.parent
            for _ in range(level - 1):
                base = base.parent
            bases = [base]
        else:
            bases = self.search_roots
        for base in bases:
            target = base.joinpath(*parts)
            if parts and target.with_suffix(".py").is_file():
                return target.with_suffix(".py"), None
            if target.is_dir():
                init = target / "__init__.py"
                return (init if init.is_file() else None), target
        return None, None

    def _submodule(self, package_dir: Path, name: str) -> bool:
        return (package_dir / f"{name}.py").is_file() or (package_dir / name).is_dir()

    def _note_sys_path(self, call: ast.Call, file: Path) -> None:
        """Follow ``sys.path.insert(0, <dir>)`` / ``append`` with a literal folder name."""
        func = call.func
        if not (
            isinstance(func, ast.Attribute)
            and func.attr in ("insert", "append")
            and _short(func.value) == "sys.path"
        ):
            return
        literals = [
            n.value
            for n in ast.walk(call)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)
        ]
        if literals:
            candidate = (file.parent / literals[-1]).resolve()
            if candidate.is_dir() and candidate.is_relative_to(self.root):
                self.search_roots.append(candidate)

    # -- resolution ------------------------------------------------------------------------------
    def resolve(self, binding: _Binding, name: str, depth: int = 0) -> Entrypoint | None:
        """Follow *binding* to a definition; ``None`` if it is not callable."""
        if depth > _MAX_DEPTH:
            return Entrypoint(name, "unresolved", note="re-exported through too many modules")
        if isinstance(binding, _NotCallable):
            return None
        if isinstance(binding, _Opaque):
            return Entrypoint(name, "unresolved", note=binding.reason)
        if isinstance(binding, _Def):
            return self._describe(name, binding)
        target = self.scan(binding.file).bindings.get(binding.name)
        if target is None:
            where = self.rel(binding.file)
            if isinstance(binding, _ImportedName):
                return Entrypoint(name, "unresolved", note=f"{binding.name!r} not found in {where}")
            return None
        return self.resolve(target, name, depth + 1)

    def _describe(self, name: str, d: _Def) -> Entrypoint:
        node = d.node
        where = f"{self.rel(d.file)}:{node.lineno}"
        if isinstance(node, ast.Lambda):
            return Entrypoint(name, "function", f"({ast.unparse(node.args)})", None, where)
        doc = ast.get_docstring(node)
        constants = self.scan(d.file).constants
        weights = _pretrained_info([_inline_constants(x, constants) for x in node.decorator_list])
        if isinstance(node, ast.ClassDef):
            return Entrypoint(name, "class", _init_signature(node), doc, where, weights)
        return Entrypoint(name, "function", f"({ast.unparse(node.args)})", doc, where, weights)


def discover_hubconf(root: Path) -> HubconfInfo:
    """Statically read ``root/hubconf.py`` (and what it re-exports) into a :class:`HubconfInfo`.

    Executes nothing: works when the repository's dependencies are not installed and when its
    modules would fail or misbehave if imported.
    """
    hubconf = root / HUBCONF
    if not hubconf.is_file():
        raise HubconfNotFoundError(
            f"{root} has no {HUBCONF}. A hub repository declares its entrypoints in a "
            f"{HUBCONF} at its root; check the path or reference."
        )
    scanner = _Scanner(root.resolve())
    scan = scanner.scan(hubconf)
    entrypoints: dict[str, Entrypoint] = {}
    for name in sorted(scan.bindings):
        if name.startswith("_"):
            continue
        entry = scanner.resolve(scan.bindings[name], name)
        if entry is not None:
            entrypoints[name] = entry
    return HubconfInfo(
        root=root,
        dependencies=tuple(scan.dependencies or ()),
        entrypoints=entrypoints,
        warnings=tuple(scan.warnings),
    )


# -- helpers ------------------------------------------------------------------------------------


def _top_level_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run at import time, descending into if/try/with blocks."""
    for stmt in body:
        if isinstance(stmt, ast.If):
            yield from _top_level_statements(stmt.body)
            yield from _top_level_statements(stmt.orelse)
        elif isinstance(stmt, ast.Try):
            yield from _top_level_statements(stmt.body)
            for handler in stmt.handlers:
                yield from _top_level_statements(handler.body)
            yield from _top_level_statements(stmt.orelse)
            yield from _top_level_statements(stmt.finalbody)
        elif isinstance(stmt, ast.With | ast.AsyncWith):
            yield from _top_level_statements(stmt.body)
        else:
            yield stmt


def _literal_strings(node: ast.expr | None) -> list[str] | None:
    if node is None:
        return None
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _is_plain_data(node: ast.expr) -> bool:
    return isinstance(
        node,
        ast.Constant
        | ast.List
        | ast.Tuple
        | ast.Dict
        | ast.Set
        | ast.JoinedStr
        | ast.ListComp
        | ast.DictComp
        | ast.SetComp
        | ast.BinOp
        | ast.Compare
        | ast.BoolOp,
    )


def _short(node: ast.AST, limit: int = 60) -> str:
    text = ast.unparse(node)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _init_signature(node: ast.ClassDef) -> str:
    for stmt in node.body:
        if isinstance(stmt, ast.FunctionDef) and stmt.name == "__init__":
            args = ast.unparse(stmt.args)
            head, _, rest = args.partition(",")
            return f"({rest.strip()})" if head.strip() == "self" else f"({args})"
    return "()"


def _pretrained_info(decorators: list[ast.expr]) -> WeightsInfo | None:
    for deco in decorators:
        if not isinstance(deco, ast.Call):
            continue
        func = deco.func
        fname = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if fname not in _PRETRAINED_NAMES:
            continue
        return _weights_from_call(deco)
    return None


def _weights_from_call(call: ast.Call) -> WeightsInfo:
    kwargs = {kw.arg: kw.value for kw in call.keywords if kw.arg}
    first = call.args[0] if call.args else kwargs.get("weights", kwargs.get("url"))
    sha_node = call.args[1] if len(call.args) > 1 else kwargs.get("sha256")
    sha = _literal(sha_node)
    size = _literal(kwargs.get("size"))
    default = _literal(kwargs.get("default"))
    unknown = WeightsInfo({}, None, known=False)
    if first is None:
        return unknown
    single = _weight_spec(first, sha if isinstance(sha, str) else None, size)
    if single is not None:
        return WeightsInfo({"default": single}, "default")
    if isinstance(first, ast.Dict):
        variants: dict[str, Weights] = {}
        for key, value in zip(first.keys, first.values, strict=True):
            name = _literal(key) if key is not None else None
            spec = _weight_spec(value, None, None)
            if not isinstance(name, str) or spec is None:
                return unknown
            variants[name] = spec
        if not variants:
            return unknown
        chosen = default if isinstance(default, str) else next(iter(variants))
        return WeightsInfo(variants, chosen)
    return unknown


def _weight_spec(node: ast.expr, sha: str | None, size: object) -> Weights | None:
    value = _literal(node)
    if isinstance(value, str):
        return Weights(value, sha, size if isinstance(size, int) else None)
    if isinstance(node, ast.Call) and getattr(
        node.func, "id", getattr(node.func, "attr", None)
    ) in ("Weights",):
        kw = {k.arg: _literal(k.value) for k in node.keywords if k.arg}
        pos = [_literal(a) for a in node.args]
        url = pos[0] if pos else kw.get("url")
        sha_v = pos[1] if len(pos) > 1 else kw.get("sha256")
        size_v = pos[2] if len(pos) > 2 else kw.get("size")
        if isinstance(url, str):
            return Weights(
                url,
                sha_v if isinstance(sha_v, str) else None,
                size_v if isinstance(size_v, int) else None,
            )
    return None


#: Calls whose result is data, never an entrypoint (``here = os.path.dirname(__file__)``).
_DATA_CALLS = frozenset(
    {"str", "int", "float", "bool", "dict", "list", "tuple", "set", "frozenset", "Path"}
)
_DATA_CALL_PREFIXES = ("os.path.", "os.environ.", "os.getenv", "pathlib.")


def _returns_data(node: ast.expr) -> bool:
    """Whether *node* is a data call, or an attribute or item of one
    (``Path(__file__).resolve().parent``)."""
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        if isinstance(node, ast.Call):
            func = ast.unparse(node.func)
            if func in _DATA_CALLS or func.startswith(_DATA_CALL_PREFIXES):
                return True
            node = node.func
        else:
            node = node.value
    return False


def _installed_submodule(module: str, name: str) -> bool:
    """Whether ``module.name`` is a module of an installed package, judged from the files on
    disk: nothing is imported (importing a package runs its code)."""
    top, *rest = module.split(".")
    try:
        spec = importlib.machinery.PathFinder.find_spec(top)
    except (ImportError, ValueError):
        return False
    if spec is None or not spec.submodule_search_locations:
        return False
    suffixes = importlib.machinery.all_suffixes()
    for location in spec.submodule_search_locations:
        folder = Path(location).joinpath(*rest)
        if (folder / name).is_dir() or any((folder / (name + s)).is_file() for s in suffixes):
            return True
    return False


def _inline_constants(node: ast.expr, constants: Mapping[str, object]) -> ast.expr:
    """A copy of *node* with names of module-level literals replaced by their values."""
    if not constants:
        return node

    class Inline(ast.NodeTransformer):
        def visit_Name(self, name: ast.Name) -> ast.expr:
            if name.id not in constants:
                return name
            literal = ast.parse(repr(constants[name.id]), mode="eval").body
            return ast.copy_location(literal, name)

    result: ast.expr = Inline().visit(copy.deepcopy(node))
    return result


def _literal(node: ast.expr | None) -> object:
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
