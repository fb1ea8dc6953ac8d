"""Static discovery: read ``hubconf.py`` with :mod:`ast`, never import it.

The entrypoints of a repository are the public names ``hubconf.py`` binds at its top level,
as ``torch.hub.list`` sees them, but found without running anything: definitions are read in
place, and re-exports (``from models.resnet import resnet18``, ``from .zoo import *``) are
followed into the repository's own modules to the real definition and its docstring. A name
that cannot be followed (imported from an installed package, computed by a call) is still
listed, marked unresolved with the reason, rather than guessed at.

``@pretrained`` is recognised when the decorator really is hubcore's (however it is imported:
``from hubcore import pretrained as hp``, ``import hubcore as hc; @hc.pretrained``, a
re-export from one of the repository's modules) or megengine.hub's, which hubcore runs in its
place; a decorator of another package that happens to be called ``pretrained`` is not. It is
followed as Python runs the module, top to bottom: through assigned aliases (``P =
hubcore.pretrained``), decorators bound to names (``D = pretrained(url)`` then ``@D``), the call
form (``m = pretrained(url)(_m)``), and arguments that are literals, module constants (also
imported ones), items of them, short ``+``/``*`` of strings, and ``Weights(...)`` of those. The
arguments then go through :func:`hubcore.repo.weights.declared_weights`, the grammar the
decorator itself runs, so both read the same variants and default. Any other use of the
decorator (computed arguments, a decorator made by a call, a repository function that uses it)
is reported as weights declared but not known (``WeightsInfo(known=False)``), never as no
weights, so ``hubcore lock`` refuses it rather than lock nothing. So is a use of a name whose
value there reading in order cannot be sure of: bound both in and out of a branch or loop that
may not run, by a loop, ``with ... as``, ``match``, ``:=`` or ``global``, changed in place
(``URLS['m'] = ...``, ``URLS.update(...)``), or after ``globals()`` writes or ``exec``.

Limits, so that a hostile or broken repository gets a clear error instead of a hang, a
crash or a look at files it does not own:

* Only files whose real path (symbolic links resolved) lies inside the repository's real root
  are read. ``hubconf.py`` linking out of the repository is a :class:`HubconfError`; an import
  that leads outside (``from ..outside import f``, a linked module or folder, a ``sys.path``
  folder elsewhere) is not followed and its names are listed as unresolved.
* ``HUBCORE_MAX_HUBCONF_BYTES`` (default 1 MiB): the largest file discovery parses, for
  ``hubconf.py`` and each module it follows (all of them together: 4 times that); more is a
  :class:`HubconfError`.
* :data:`MAX_NAMES` top-level names per module (so also entrypoints); more is a
  :class:`HubconfError`.
* Expressions nested more than :data:`MAX_NESTING` levels where discovery reads them (module-
  level statements, signatures, decorators), chains (``a+a+a...``, ``a.b.c...``) longer than
  :data:`MAX_CHAIN` anywhere (found by a scan of the text before parsing: on Python 3.10 such
  a chain crashes the parser), or anything else too deep for Python's parser are a
  :class:`HubconfSyntaxError`; ``RecursionError``/``MemoryError`` never escape.

Each file is parsed at most once per discovery.

What counts as an entrypoint, and what not (each skipped public name is reported in
:attr:`HubconfInfo.skipped` with its reason):

* Names are resolved as Python binds them: ``from pkg import x`` takes the attribute ``x`` that
  ``pkg/__init__.py`` binds before the submodule ``pkg/x.py`` (a function shadows the module
  of the same name); a star import brings the module's ``__all__`` (literal, or built from
  literal lists and tuples with ``+``, ``+=``, ``.extend`` and ``.append``), else its public
  names.
* Not entrypoints: names starting with ``_``, modules, data (literals, paths, UPPER_CASE
  constants), hubcore's own API, ``dependencies``, and names bound only under
  ``if __name__ == "__main__":`` or ``if TYPE_CHECKING:`` (importing never runs those). In a
  ``try:`` block, the body's bindings hold (its imports succeed when the dependencies are
  installed); an ``except`` handler only adds names the body does not bind.
* A name that cannot be followed (imported from an installed package, computed by a call, an
  alias of a builtin) is listed, unresolved, with the reason.
* Names static reading cannot see make the listing incomplete, each with its line and reason
  (:attr:`HubconfInfo.gaps`): ``globals().update``, ``globals()[...] =``, ``vars()``,
  ``setattr`` or ``__dict__`` writes on ``sys.modules[__name__]``, ``exec``, a module
  ``__getattr__``, a star import from outside the repository or of a module whose
  ``__all__`` is computed. Importing the hubconf (``list(..., imported=True)``, which runs its
  code and so needs trust) completes such a listing.
"""

from __future__ import annotations

import ast
import functools
import importlib.machinery
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from hubcore import settings
from hubcore.errors import HubconfError, HubconfNotFoundError, HubconfSyntaxError
from hubcore.records import Record, field, replace

if TYPE_CHECKING:  # imported where built: most repositories declare no weights
    from hubcore.repo.weights import Weights

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_BYTES_ENV",
    "MAX_CHAIN",
    "MAX_NAMES",
    "MAX_NESTING",
    "Entrypoint",
    "Gap",
    "HubconfInfo",
    "WeightsInfo",
    "discover_hubconf",
    "max_file_bytes",
]

HUBCONF = "hubconf.py"
#: Environment variable: the largest file, in bytes, that discovery parses.
MAX_BYTES_ENV = "HUBCORE_MAX_HUBCONF_BYTES"
DEFAULT_MAX_BYTES = 1024 * 1024
#: All the files one discovery reads together may hold this many times the per-file limit.
TOTAL_FILES_FACTOR = 4
#: The most top-level names one module may bind (definitions, imports, assignments).
MAX_NAMES = 10_000
#: The deepest expression discovery walks; Python's own recursive helpers stay well within
#: the recursion limit below it.
MAX_NESTING = 100
_MAX_DEPTH = 32  # re-exports and imports followed in a chain
#: The longest chain of operators, attribute accesses, calls and subscripts let through to
#: Python's parser. Each link nests the syntax tree one level deeper; a chain of 100,000
#: (``a+a+a...``, 200 kB) crashes the interpreter on Python 3.10 and costs gigabytes on later
#: versions before they give up. Real code stays far below.
MAX_CHAIN = 5000

#: A name in another package: (module, attributes), ``("hubcore", ("pretrained",))``.
_Ref = tuple[str, tuple[str, ...]]
#: Submodules that attribute access reaches (``import megengine; megengine.hub.pretrained``).
_SUBMODULES = frozenset(
    {
        "hubcore.compat",
        "hubcore.compat.megengine_hub",
        "hubcore_megengine.hub",
        "hubcore.repo",
        "hubcore.repo.pretrained",
        "hubcore.repo.weights",
        "megengine.hub",
        "megengine.hub.hub",
    }
)
#: Package attributes that are not the submodule their name suggests: ``hubcore.pretrained`` is
#: the decorator (``hubcore/__init__`` re-exports it from :mod:`hubcore.repo.pretrained`).
_SHADOWED = frozenset({("hubcore", "pretrained")})
#: The decorators discovery reads, by what they are, and their parameters as at run time.
_PRETRAINED: dict[_Ref, Literal["hubcore", "megengine"]] = {
    ("hubcore", ("pretrained",)): "hubcore",
    ("hubcore.repo.pretrained", ("pretrained",)): "hubcore",
    ("hubcore.compat.megengine_hub", ("pretrained",)): "megengine",
    ("hubcore_megengine.hub", ("pretrained",)): "megengine",
    ("megengine.hub", ("pretrained",)): "megengine",
    ("megengine.hub.hub", ("pretrained",)): "megengine",
}
_WEIGHTS: frozenset[_Ref] = frozenset(
    {
        ("hubcore", ("Weights",)),
        ("hubcore.repo.pretrained", ("Weights",)),
        ("hubcore.repo.weights", ("Weights",)),
    }
)
#: (positional parameters, all parameter names) of each decorator and of ``Weights``.
_PARAMETERS: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "hubcore": (("weights", "sha256"), frozenset({"weights", "sha256", "size", "default"})),
    "megengine": (("url",), frozenset({"url"})),
    "Weights": (("url", "sha256", "size"), frozenset({"url", "sha256", "size"})),
}


def max_file_bytes() -> int:
    """The size limit for files discovery parses: ``HUBCORE_MAX_HUBCONF_BYTES`` or 1 MiB."""
    return settings.current().max_hubconf_bytes


class WeightsInfo(Record):
    """What ``@pretrained`` declares: variants by name, and which one ``pretrained=True`` uses.

    ``known`` is false when the decorator's arguments are not literals, so the URLs are only
    known at run time.
    """

    variants: Mapping[str, Weights]
    default: str | None
    known: bool = True


Kind = Literal["function", "class", "unresolved"]


class Entrypoint(Record):
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


class Gap(Record):
    """A place where ``hubconf.py`` (or a module it star-imports) may bind names that static
    reading cannot see."""

    where: str  # "hubconf.py:3"
    reason: str

    def __str__(self) -> str:
        return f"{self.where} {self.reason}"


class HubconfInfo(Record):
    """Everything static discovery learned about a repository."""

    root: Path
    dependencies: tuple[str, ...]
    entrypoints: Mapping[str, Entrypoint]
    #: Where names may be bound that static reading cannot see; any makes the list incomplete.
    gaps: tuple[Gap, ...] = ()
    #: Public names ``hubconf.py`` binds that are not entrypoints, with the reason.
    skipped: Mapping[str, str] = field(factory=dict)
    #: Skipped names whose value static reading does not follow (a loop's target, a ``with``
    #: target, ``:=``): ``load`` imports the hubconf for them, as for a gap.
    unread: frozenset[str] = frozenset()
    #: Other findings (``dependencies`` not a literal list).
    notes: tuple[str, ...] = ()
    #: Whether ``hubconf.py`` assigns ``dependencies`` at its top level (literal or not).
    declares_dependencies: bool = False

    @property
    def warnings(self) -> tuple[str, ...]:
        """Every finding as text: the gaps first, then the notes."""
        return tuple(str(gap) for gap in self.gaps) + self.notes

    @property
    def complete(self) -> bool:
        """Whether every public top-level name is accounted for (no :attr:`gaps`)."""
        return not self.gaps


# -- bindings: what a module-level name refers to --------------------------------------------
# Plain classes, not attrs ones: they are only built and told apart with isinstance, and every
# `hubcore list` would pay for generating their attrs methods at import.


class _Def:
    __slots__ = ("file", "node", "weights")

    def __init__(
        self,
        node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda,
        file: Path,
        weights: WeightsInfo | None = None,
    ):
        self.node = node
        self.file = file
        self.weights = weights  # what its decorators declare, read where it is defined


class _ImportedName:
    __slots__ = ("file", "name")

    def __init__(self, file: Path, name: str):
        self.file = file  # module file inside the repository
        self.name = name


class _LocalAlias:
    __slots__ = ("file", "name")

    def __init__(self, file: Path, name: str):
        self.file = file
        self.name = name


class _Opaque:
    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason


class _NotCallable:
    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason  # why it is not an entrypoint, for `list --verbose`


class _Wrapped:
    """What ``pretrained(...)`` applied in a call (``m = pretrained(url)(_m)``) binds: *inner*
    (its signature and docstring, as ``functools.wraps`` keeps them) with the weights."""

    __slots__ = ("inner", "weights")

    def __init__(self, inner: _LocalAlias | _Opaque, weights: WeightsInfo):
        self.inner = inner
        self.weights = weights


#: Why names are skipped.
MODULE = "a module"
MAIN_ONLY = 'bound only under `if __name__ == "__main__":`, which importing never runs'
TYPE_CHECKING_ONLY = "bound only under `if TYPE_CHECKING:`, which never runs"


_Binding = _Def | _ImportedName | _LocalAlias | _Opaque | _NotCallable | _Wrapped


class _NotLiteral:
    """The value of an expression that is present but not a literal."""


_NOT_LITERAL = _NotLiteral()


class _ModuleScan:
    """What reading one module found."""

    def __init__(self) -> None:
        self.bindings: dict[str, _Binding] = {}
        self.dependencies: list[str] | None = None
        self.declares_dependencies = False
        self.explicit_all: list[str] | None = None
        #: Where ``__all__`` is computed (a star import of the module then reads its public
        #: names).
        self.all_gap: Gap | None = None
        self.warnings: list[str] = []
        #: Where the module binds names static reading cannot see.
        self.gaps: list[Gap] = []
        #: Names bound only in blocks that never run on import, with the reason.
        self.never_run: dict[str, str] = {}
        #: Public names bound where no value is read (a loop's target, ``with ... as``,
        #: ``:=``), with where and how: accounted for, their value known only by importing.
        self.unread: dict[str, str] = {}
        #: Names ``sys.modules[__name__]`` is bound to (``this = sys.modules[__name__]``).
        self.module_aliases: set[str] = set()
        #: Names an ``except`` handler being read must not rebind (its ``try`` body binds them).
        self.protected: frozenset[str] = frozenset()
        #: Module-level names bound to literals (``URL = "https://..."``), for decorator
        #: arguments.
        self.constants: dict[str, object] = {}
        #: Names bound to something of another package (``hp`` in ``from hubcore import
        #: pretrained as hp``), to recognise hubcore's decorator however it is spelled.
        self.externals: dict[str, _Ref] = {}
        #: Names bound to what ``pretrained(...)`` returns (``D = pretrained(url)``), or to
        #: anything else made with hubcore's decorator (then the weights are not known).
        self.decorators: dict[str, WeightsInfo] = {}
        #: Names whose value where they are used may differ from what reading the statements
        #: in order gives (:func:`_unsure_names`), and whether a statement read so far binds
        #: names static reading cannot see (``globals()[...] =``, ``exec``): values read from
        #: them are not literal.
        self.unsure: set[str] = set()
        self.unseen = False
        #: Names bound, at some point read so far, to hubcore's decorator or something made
        #: with it.
        self.weighty: set[str] = set()

    def doubtful(self, name: str) -> bool:
        """Whether *name*'s value here may not be the one reading in order gives."""
        return self.unseen or name in self.unsure

    def forget(self, name: str) -> None:
        """Drop what is known of *name*'s value."""
        self.constants.pop(name, None)
        self.externals.pop(name, None)
        self.decorators.pop(name, None)
        self.module_aliases.discard(name)

    def bind(self, name: str, binding: _Binding, external: _Ref | None = None) -> bool:
        """(Re)bind *name*, forgetting what it was bound to before; false (and nothing done)
        when an ``except`` handler would rebind what its ``try`` body binds."""
        if name in self.protected:
            return False
        self.bindings[name] = binding
        self.forget(name)
        if external is not None:
            self.externals[name] = external
        return True


class _Found:
    """Where an import leads: a module file and/or package folder inside the repository, or
    ``outside`` when it exists but its real path is not inside the repository."""

    __slots__ = ("file", "outside", "package")

    def __init__(
        self, file: Path | None = None, package: Path | None = None, outside: bool = False
    ):
        self.file = file
        self.package = package
        self.outside = outside


class _Scanner:
    """Scans modules of one repository, following imports within it."""

    def __init__(self, root: Path):
        self.root = root
        self.max_bytes = max_file_bytes()
        self.bytes_left = self.max_bytes * TOTAL_FILES_FACTOR
        self.search_roots: list[Path] = [root]
        self.warnings: list[str] = []
        self.gaps: list[Gap] = []
        self.current = root / HUBCONF  # the file being read, for errors
        self._scans: dict[Path, _ModuleScan] = {}
        self._in_progress: set[Path] = set()
        #: The scans being built, as bound so far (what their own module-level code sees).
        self._partial: dict[Path, _ModuleScan] = {}
        #: Whether each function of the repository may use hubcore's decorator when called.
        self._mentions: dict[ast.AST, bool] = {}

    def rel(self, file: Path) -> str:
        try:
            return file.relative_to(self.root).as_posix()
        except ValueError:
            return str(file)

    def inside(self, path: Path) -> Path | None:
        """*path* with symbolic links resolved, or ``None`` when that is outside the root."""
        try:
            real = path.resolve()
        except (OSError, RuntimeError):  # a symbolic link loop
            return None
        return real if real.is_relative_to(self.root) else None

    # -- reading -------------------------------------------------------------------------------
    def parse(self, file: Path) -> ast.Module:
        self.current = file
        try:
            with file.open("rb") as stream:
                source = stream.read(self.max_bytes + 1)  # never more than the limit
        except OSError as exc:
            raise HubconfNotFoundError(f"cannot read {file}: {exc}") from exc
        if len(source) > self.max_bytes:
            raise HubconfError(
                f"{self.rel(file)} is larger than {self.max_bytes} bytes, the most static "
                f"discovery reads. If the file is genuine, raise {MAX_BYTES_ENV}; nothing from "
                "the repository was run."
            )
        self.bytes_left -= len(source)
        if self.bytes_left < 0:
            raise HubconfError(
                f"{self.rel(file)}: the modules hubconf.py leads to hold more than "
                f"{self.max_bytes * TOTAL_FILES_FACTOR} bytes together, the most static "
                f"discovery reads ({TOTAL_FILES_FACTOR} x {MAX_BYTES_ENV}); nothing from the "
                "repository was run."
            )
        if len(source) > 2 * MAX_CHAIN and _longest_chain(source) > MAX_CHAIN:
            raise self.too_deep(file)  # before ast.parse, which could crash on it
        try:
            return ast.parse(source, filename=str(file))
        except SyntaxError as exc:
            where = f" line {exc.lineno}" if exc.lineno else ""
            err = HubconfSyntaxError(
                f"{self.rel(file)}{where}: {exc.msg}. Fix the syntax error; "
                "nothing from the repository was run."
            )
            err.filename, err.lineno, err.offset, err.text = (
                str(file),
                exc.lineno,
                exc.offset,
                exc.text,
            )
            raise err from None
        except (RecursionError, MemoryError):  # how the parser reports too deep a nesting
            raise self.too_deep(file) from None
        except ValueError as exc:  # null bytes, on Python 3.10
            raise HubconfSyntaxError(
                f"{self.rel(file)}: {exc}. It is not a Python source file; nothing from the "
                "repository was run."
            ) from None

    def too_deep(self, file: Path) -> HubconfSyntaxError:
        """The error for a file nested too deeply to read without deep recursion."""
        err = HubconfSyntaxError(
            f"{self.rel(file)} is too deeply nested to read statically (an expression nested "
            f"more than {MAX_NESTING} levels where discovery reads it, or a chain such as "
            f"a+a+a... or a.b.c... more than {MAX_CHAIN} long). Simplify it; nothing from the "
            "repository was run."
        )
        err.filename = str(file)
        return err

    def check_nesting(self, file: Path, *nodes: ast.AST) -> None:
        """Refuse *nodes* nested deeper than :data:`MAX_NESTING`, before anything walks them
        recursively (``ast.unparse``, ``ast.literal_eval``)."""
        for node in nodes:
            if _deeper_than(node, MAX_NESTING):
                raise self.too_deep(file)

    def scan(self, file: Path) -> _ModuleScan:
        known = self._scans.get(file)
        if known is not None:
            return known
        real = self.inside(file)
        if real is None:  # callers only pass files inside; a last line of defence
            raise HubconfError(f"{file} is outside the repository {self.root}; not read")
        if real in self._scans:
            return self._scans[real]
        if real in self._in_progress:  # an import cycle: what is known so far is all we get
            return _ModuleScan()
        if len(self._in_progress) >= _MAX_DEPTH:
            self.gaps.append(
                Gap(
                    self.rel(real),
                    f"is imported through modules more than {_MAX_DEPTH} deep; names from "
                    "deeper modules are not listed",
                )
            )
            return _ModuleScan()
        previous = self.current
        self._in_progress.add(real)
        try:
            tree = self.parse(real)
            scan = self._partial[real] = _ModuleScan()
            scan.unsure = _unsure_names(tree.body)
            for stmt, protected, never in _top_level_statements(tree.body):
                if never is not None:  # only recorded, for `list --verbose`
                    for name in _bound_names([stmt]):
                        scan.never_run.setdefault(name, never)
                    continue
                if isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign | ast.Expr):
                    self.check_nesting(real, stmt)
                scan.protected = protected
                self._doubt(stmt, scan)
                self._bind(stmt, real, scan)
                scan.protected = frozenset()
                self._note_weighty(stmt, scan)
                for line, reason in _dynamic_exports(stmt, scan.module_aliases):
                    scan.gaps.append(Gap(f"{self.rel(real)}:{line}", reason))
                    scan.unseen = True
                if len(scan.bindings) > MAX_NAMES:
                    raise HubconfError(
                        f"{self.rel(real)} binds more than {MAX_NAMES} top-level names, the most "
                        "static discovery reads from one module. Nothing from the repository "
                        "was run."
                    )
            hidden: dict[str, tuple[int, str, bool]] = {}
            for line, name, how, defined in sorted(_hidden_bindings(tree.body)):
                hidden.setdefault(name, (line, how, defined))
            for name, (line, how, defined) in hidden.items():
                if name.startswith("_") or name in scan.bindings or name in scan.never_run:
                    continue
                scan.unsure.add(name)
                where = f"{self.rel(real)}:{line}"
                if defined:  # a function or class: an entrypoint torch.hub would list
                    scan.gaps.append(
                        Gap(where, f"defines `{name}` {how}, which static reading does not follow")
                    )
                else:  # a loop variable, a `with` target: most often data, never guessed
                    scan.unread[name] = (
                        f"bound {how} ({where}): its value is known only by importing the hubconf"
                    )
            for name in scan.weighty:  # an entrypoint bound more than one way: which one runs?
                binding = scan.bindings.get(name)
                if scan.doubtful(name) and isinstance(binding, _Def | _Wrapped):
                    binding.weights = WeightsInfo({}, None, known=False)
            self._scans[real] = scan
            self.current = previous
            return scan
        finally:
            self._in_progress.discard(real)
            self._partial.pop(real, None)

    @staticmethod
    def _doubt(stmt: ast.stmt, scan: _ModuleScan) -> None:
        """A name assigned from a doubtful one (``E = D``, ``U = URL``) is doubtful too."""
        if isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
            used = {n.id for n in ast.walk(stmt.value) if isinstance(n, ast.Name)}
            if any(scan.doubtful(n) for n in used):
                scan.unsure.update(_bound_names([stmt]))

    @staticmethod
    def _note_weighty(stmt: ast.stmt, scan: _ModuleScan) -> None:
        """Remember the names *stmt* bound to hubcore's decorator or something made with it."""
        for name in _bound_names([stmt]):
            binding = scan.bindings.get(name)
            if (
                name in scan.decorators
                or _PRETRAINED.get(scan.externals.get(name, ("", ()))) is not None
                or isinstance(binding, _Wrapped)
                or (isinstance(binding, _Def) and binding.weights is not None)
            ):
                scan.weighty.add(name)

    def _bind(self, stmt: ast.stmt, file: Path, scan: _ModuleScan) -> None:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            # read now: the decorators see the names as bound at this point of the module
            weights = self._decorated(stmt.decorator_list, file, scan)
            scan.bind(stmt.name, _Def(stmt, file, weights))
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                top, *rest = alias.name.split(".")
                if alias.asname:  # `import a.b as c` binds c to attribute b of a
                    scan.bind(alias.asname, _NotCallable(MODULE), (top, tuple(rest)))
                else:
                    scan.bind(top, _NotCallable(MODULE), (top, ()))
        elif isinstance(stmt, ast.ImportFrom):
            self._bind_import_from(stmt, file, scan)
        elif isinstance(stmt, ast.Assign | ast.AnnAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                self._bind_assign(target, stmt.value, file, scan)
        elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
            if isinstance(stmt.op, ast.Add):
                self._extend(scan, file, stmt.target.id, stmt.value, stmt)
            elif stmt.target.id == "__all__":
                self._computed_all(scan, file, stmt)
        elif isinstance(stmt, ast.Delete):
            for target in stmt.targets:
                if isinstance(target, ast.Name) and target.id not in scan.protected:
                    scan.bindings.pop(target.id, None)
                    scan.forget(target.id)
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            self._note_sys_path(stmt.value, file)
            self._note_list_call(stmt.value, file, scan)

    def _extend(
        self, scan: _ModuleScan, file: Path, name: str, value: ast.expr, node: ast.stmt | ast.expr
    ) -> None:
        """``name += value`` / ``name.extend(value)`` on a list of strings (``__all__`` or a
        constant it is built from)."""
        current = scan.explicit_all if name == "__all__" else scan.constants.get(name)
        added = _string_list(value, scan.constants)
        if isinstance(current, list | tuple) and added is not None:
            extended = [*current, *added]
            if name == "__all__":
                scan.explicit_all = extended
            else:
                scan.constants[name] = type(current)(extended)
        elif name == "__all__":
            self._computed_all(scan, file, node)
        else:
            scan.constants.pop(name, None)

    def _note_list_call(self, call: ast.Call, file: Path, scan: _ModuleScan) -> None:
        """``__all__.extend([...])``, ``.append("x")`` and other calls that change a list."""
        func = call.func
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)):
            return
        name = func.value.id
        if name != "__all__" and not isinstance(scan.constants.get(name), list):
            return
        if func.attr in ("extend", "append") and len(call.args) == 1 and not call.keywords:
            arg = call.args[0]
            added = ast.List([arg]) if func.attr == "append" else arg
            self._extend(scan, file, name, added, call)
        elif name == "__all__":
            self._computed_all(scan, file, call)
        else:
            scan.constants.pop(name, None)

    def _computed_all(self, scan: _ModuleScan, file: Path, node: ast.stmt | ast.expr) -> None:
        scan.explicit_all = None
        scan.all_gap = Gap(
            f"{self.rel(file)}:{node.lineno}",
            "computes `__all__`, so what a star import of it brings is read as its public names",
        )

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
        ref = self.ref(value, file, scan) if isinstance(value, ast.Attribute) else None
        if name == "dependencies":
            if not scan.bind(name, _NotCallable("the `dependencies` list")):
                return
            scan.declares_dependencies = True
            scan.dependencies = _literal_strings(value)
            if scan.dependencies is None:
                scan.warnings.append("`dependencies` is not a literal list of strings")
        elif name == "__all__":
            if not scan.bind(name, _NotCallable("`__all__`")):
                return
            scan.explicit_all = _string_list(value, scan.constants)
            scan.all_gap = None
            if scan.explicit_all is None:
                self._computed_all(scan, file, value or target)
        elif value is None:
            scan.bind(name, _Opaque("assigned by unpacking"))
        elif isinstance(value, ast.Lambda):
            scan.bind(name, _Def(value, file))
        elif isinstance(value, ast.Name):
            if scan.bind(name, _LocalAlias(file, value.id), scan.externals.get(value.id)):
                # an alias takes the value it has now (later rebinding of the original aside)
                if value.id in scan.constants:
                    scan.constants[name] = scan.constants[value.id]
                if value.id in scan.decorators:
                    scan.decorators[name] = scan.decorators[value.id]
        elif self._bind_weights_api(name, value, file, scan):
            pass
        elif _is_this_module(value, scan.module_aliases):
            if scan.bind(name, _NotCallable(MODULE)):
                scan.module_aliases.add(name)
        elif _is_plain_data(value) or name.isupper() or _returns_data(value):
            # UPPER_CASE names are constants by convention (HERE = os.path.dirname(...)).
            what = "data" if _is_plain_data(value) or _returns_data(value) else "a constant"
            if not scan.bind(name, _NotCallable(f"{what} (`{_short(value, 40)}`)"), ref):
                return
            literal = _literal(value)
            if literal is _NOT_LITERAL:  # lists of names built from others: `a + b`
                literal = _string_list(value, scan.constants)
            if literal is None and not isinstance(value, ast.Constant):
                literal = self.value(value, file, scan)  # `{"a": Weights(...)}`, `URLS["a"]`
            if literal is not _NOT_LITERAL and (
                literal is not None or isinstance(value, ast.Constant)
            ):
                scan.constants[name] = literal
        else:
            scan.bind(name, _Opaque(f"assigned from `{_short(value)}`"), ref)

    def _bind_weights_api(self, name: str, value: ast.expr, file: Path, scan: _ModuleScan) -> bool:
        """Bind *name* when *value* is hubcore's weights API or made with it, read as Python
        runs it here: an alias (``P = hubcore.pretrained``), a decorator (``D =
        pretrained(url)``), an entrypoint it wraps (``m = pretrained(url)(_m)``, ``m =
        D(_m)``), or anything else built with it (``D = make(pretrained)``: weights declared,
        not known). False, and nothing bound, for any other value."""
        ref = self.ref(value, file, scan) if isinstance(value, ast.Attribute) else None
        if ref in _WEIGHTS or _PRETRAINED.get(ref) == "hubcore":  # type: ignore[arg-type]
            assert ref is not None
            dotted = ".".join((ref[0], *ref[1]))
            scan.bind(name, _NotCallable(f"hubcore's own API (`{dotted}`)"), ref)
            return True
        if ref is not None or _is_plain_data(value) or _returns_data(value):
            return False  # another package's name (megengine.hub's decorator too) or data
        opaque = _Opaque(f"assigned from `{_short(value)}`")
        if isinstance(value, ast.Call):
            func = self.ref(value.func, file, scan)
            kind = _PRETRAINED.get(func) if func is not None else None
            if kind is not None:  # a decorator
                weights = self._weights_from_call(value, kind, file, scan)
                if scan.bind(name, opaque):
                    scan.decorators[name] = weights
                return True
            applied = self._decorated([value.func], file, scan)
            if applied is not None:  # a decorator applied
                arg = value.args[0] if len(value.args) == 1 and not value.keywords else None
                inner = _LocalAlias(file, arg.id) if isinstance(arg, ast.Name) else opaque
                scan.bind(name, _Wrapped(inner, applied))
                return True
        if self.mentions_pretrained(value, file, scan):
            unknown = WeightsInfo({}, None, known=False)
            if scan.bind(name, _Wrapped(opaque, unknown)):
                scan.decorators[name] = unknown
            return True
        return False

    def _bind_import_from(self, stmt: ast.ImportFrom, file: Path, scan: _ModuleScan) -> None:
        module = stmt.module or ""
        if stmt.level == 0 and module.split(".")[0] == "hubcore":
            for alias in stmt.names:  # the hub's own API (pretrained, Weights), not entrypoints
                for name in ("pretrained", "Weights") if alias.name == "*" else (alias.name,):
                    why = _NotCallable(f"hubcore's own API (`{module}.{name}`)")
                    scan.bind(alias.asname or name, why, (module, (name,)))
            return
        found = self.find_module(stmt.module, stmt.level, file)
        label = "." * stmt.level + module
        leaves = (
            f"`{label}` resolves outside the repository (a symbolic link, or a relative "
            "import above its root), so it is not followed"
        )
        where = f"{self.rel(file)}:{stmt.lineno}"
        for alias in stmt.names:
            if alias.name == "*":
                if found.file is not None:
                    names, gaps = self._public_names(found.file)
                    for name, binding in names.items():
                        scan.bind(name, binding)
                    scan.gaps += gaps
                elif found.outside:
                    scan.gaps.append(
                        Gap(
                            where,
                            f"`from {label} import *`: {leaves}; the names it brings "
                            "cannot be listed statically",
                        )
                    )
                else:
                    scan.gaps.append(
                        Gap(
                            where,
                            f"`from {label} import *` imports from outside the "
                            "repository; the names it brings cannot be listed statically",
                        )
                    )
                continue
            bound = alias.asname or alias.name
            init = self._package_binding(found, alias.name)
            if init is not None:
                # Python takes the package's attribute before the submodule of that name
                scan.bind(bound, _ImportedName(init, alias.name))
            elif found.package is not None and self._submodule(found.package, alias.name):
                scan.bind(bound, _NotCallable(MODULE))  # `from pkg import module`
            elif found.file is not None:
                scan.bind(bound, _ImportedName(found.file, alias.name))
            elif found.outside:
                scan.bind(bound, _Opaque(leaves))
            elif stmt.level:
                scan.bind(bound, _Opaque(f"imported from `{label}`, not found in the repository"))
            elif (module, alias.name) == ("typing", "TYPE_CHECKING"):
                scan.bind(bound, _NotCallable("a constant (`typing.TYPE_CHECKING`)"))
            elif _installed_submodule(module, alias.name):  # `from torch import nn`
                scan.bind(bound, _NotCallable(MODULE), (module, (alias.name,)))
            else:
                scan.bind(
                    bound,
                    _Opaque(f"imported from `{label}`, outside the repository"),
                    (module, (alias.name,)),
                )

    def _package_binding(self, found: _Found, name: str) -> Path | None:
        """The ``__init__.py`` of the package *found* when it binds *name* itself."""
        if found.package is None or found.file is None:
            return None
        return found.file if name in self.scan(found.file).bindings else None

    def _public_names(self, module_file: Path) -> tuple[dict[str, _Binding], list[Gap]]:
        """What ``from <module> import *`` binds, and the gaps it brings along."""
        scan = self.scan(module_file)
        if scan.explicit_all is None:
            names = {n: _LocalAlias(module_file, n) for n in scan.bindings if not n.startswith("_")}
            return dict(names), scan.gaps + ([scan.all_gap] if scan.all_gap else [])
        bound: dict[str, _Binding] = {}
        package = module_file.parent if module_file.name == "__init__.py" else None
        for name in scan.explicit_all:
            if name in scan.bindings:
                bound[name] = _LocalAlias(module_file, name)
            elif package is not None and self._submodule(package, name):
                bound[name] = _NotCallable(MODULE)  # `__all__` naming a submodule imports it
            else:
                bound[name] = _Opaque(
                    f"named in `__all__` of {self.rel(module_file)}, which binds it only at run "
                    "time"
                )
        return bound, []

    def find_module(self, module: str | None, level: int, importer: Path) -> _Found:
        """Locate a module inside the repository, as the import system would find it."""
        parts = module.split(".") if module else []
        if level:
            base = importer.parent
            for _ in range(level - 1):
                base = base.parent
            if not base.is_relative_to(self.root):
                return _Found(outside=True)
            bases = [base]
        else:
            bases = self.search_roots
        for base in bases:
            target = base.joinpath(*parts)
            if parts and target.with_suffix(".py").is_file():
                real = self.inside(target.with_suffix(".py"))
                return _Found(file=real, outside=real is None)
            if target.is_dir():
                folder = self.inside(target)
                if folder is None:
                    return _Found(outside=True)
                init = target / "__init__.py"
                if not init.is_file():
                    return _Found(package=folder)
                real = self.inside(init)
                return _Found(file=real, package=folder, outside=real is None)
        return _Found()

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
            candidate = self.inside(file.parent / literals[-1])
            if candidate is not None and candidate.is_dir():
                self.search_roots.append(candidate)

    # -- resolution ------------------------------------------------------------------------------
    def resolve(self, binding: _Binding, name: str, depth: int = 0) -> Entrypoint | str:
        """Follow *binding* to a definition; the reason it is skipped if it is not callable."""
        if depth > _MAX_DEPTH:
            return Entrypoint(name, "unresolved", note="re-exported through too many modules")
        if isinstance(binding, _NotCallable):
            return binding.reason
        if isinstance(binding, _Opaque):
            return Entrypoint(name, "unresolved", note=binding.reason)
        if isinstance(binding, _Def):
            return self._describe(name, binding)
        if isinstance(binding, _Wrapped):
            entry = self.resolve(binding.inner, name, depth + 1)
            if isinstance(entry, str):
                return Entrypoint(name, "unresolved", note=entry, weights=binding.weights)
            return replace(entry, weights=binding.weights)
        scan = self.scan(binding.file)
        target = scan.bindings.get(binding.name)
        if target is None:
            where = self.rel(binding.file)
            if isinstance(binding, _ImportedName):
                note = f"{binding.name!r} not found in {where}"
            else:
                note = f"`{binding.name}` is not bound in {where} (a builtin, or bound at run time)"
            if scan.gaps:
                note += f"; {scan.gaps[0]}"
            return Entrypoint(name, "unresolved", note=note)
        return self.resolve(target, name, depth + 1)

    def _describe(self, name: str, d: _Def) -> Entrypoint:
        node = d.node
        self.current = d.file
        where = f"{self.rel(d.file)}:{node.lineno}"
        if isinstance(node, ast.Lambda):
            self.check_nesting(d.file, node.args)
            return Entrypoint(name, "function", f"({ast.unparse(node.args)})", None, where)
        self.check_nesting(d.file, *node.decorator_list)
        doc = ast.get_docstring(node)
        weights = d.weights
        if isinstance(node, ast.ClassDef):
            init = _init_args(node)
            self.check_nesting(d.file, *([init] if init else []))
            signature = _init_signature(init)
            return Entrypoint(name, "class", signature, doc, where, weights)
        self.check_nesting(d.file, node.args)
        return Entrypoint(name, "function", f"({ast.unparse(node.args)})", doc, where, weights)

    # -- @pretrained: what names refer to, read where they are used ----------------------------
    # Module-level code runs top to bottom, so a decorator or an assignment is read against the
    # module as bound so far (the scan being built), and imported modules as bound in full.
    def _scope(self, file: Path) -> _ModuleScan:
        """The scan of *file*: as bound so far while it is being read, else complete."""
        return self._partial.get(file) or self.scan(file)

    def _chain(self, file: Path, scan: _ModuleScan, name: str) -> Iterator[tuple[_ModuleScan, str]]:
        """*name* in *scan*, then what it re-exports, to the module that binds it."""
        for _ in range(_MAX_DEPTH):
            yield scan, name
            binding = scan.bindings.get(name)
            if not isinstance(binding, _ImportedName | _LocalAlias) or (
                binding.file == file and binding.name == name
            ):
                return
            file, name = binding.file, binding.name
            scan = self._scope(file)

    def ref(
        self,
        expr: ast.expr,
        file: Path,
        scan: _ModuleScan,
        local: Mapping[str, _Ref] | None = None,
    ) -> _Ref | None:
        """What *expr* (``name`` or ``name.attr...``) refers to in another package, its names
        looked up in *local* (a function's own imports), then in *scan* (of *file*)."""
        attrs_: list[str] = []
        while isinstance(expr, ast.Attribute) and len(attrs_) <= MAX_NESTING:
            attrs_.append(expr.attr)
            expr = expr.value
        if not isinstance(expr, ast.Name):
            return None
        base = local.get(expr.id) if local else None
        if base is None:
            base = next(
                (s.externals[n] for s, n in self._chain(file, scan, expr.id) if n in s.externals),
                None,
            )
        if base is None:
            return None
        return _canonical(base[0], base[1] + tuple(reversed(attrs_)))

    def _target(
        self, expr: ast.expr, file: Path, scan: _ModuleScan
    ) -> tuple[Path, _ModuleScan, str] | None:
        """Where the value of *expr* is bound: a name here, or ``module.name`` of one of the
        repository's modules (``import decos; decos.D``)."""
        if isinstance(expr, ast.Name):
            return file, scan, expr.id
        ref = self.ref(expr, file, scan) if isinstance(expr, ast.Attribute) else None
        if ref is None or not ref[1] or ref in _PRETRAINED or ref in _WEIGHTS:
            return None
        found = self.find_module(".".join((ref[0], *ref[1][:-1])), 0, file)
        if found.file is None:
            return None
        return found.file, self._scope(found.file), ref[1][-1]

    def _constant(self, file: Path, scan: _ModuleScan, name: str) -> object:
        for s, n in self._chain(file, scan, name):
            if s.doubtful(n):
                return _NOT_LITERAL
            if n in s.constants:
                return s.constants[n]
        return _NOT_LITERAL

    def _decorator_value(self, file: Path, scan: _ModuleScan, name: str) -> WeightsInfo | None:
        for s, n in self._chain(file, scan, name):
            if n in s.decorators or (n in s.weighty and s.doubtful(n)):
                return s.decorators[n] if not s.doubtful(n) else WeightsInfo({}, None, known=False)
        return None

    def _def_of(self, file: Path, scan: _ModuleScan, name: str) -> _Def | None:
        for s, n in self._chain(file, scan, name):
            binding = s.bindings.get(n)
            if isinstance(binding, _Def):
                return binding
        return None

    def value(self, node: ast.expr | None, file: Path, scan: _ModuleScan, depth: int = 0) -> object:
        """The value of *node* as far as it is literal: literals, constants of the module
        (and those it imports), items of them, and hubcore's ``Weights(...)`` of those;
        :data:`_NOT_LITERAL` otherwise. Runs nothing."""
        if node is None:
            return None
        if depth > MAX_NESTING:
            return _NOT_LITERAL
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name | ast.Attribute):
            target = self._target(node, file, scan)
            return _NOT_LITERAL if target is None else self._constant(*target)
        items = [self.value(n, file, scan, depth + 1) for n in _parts(node)]
        if any(item is _NOT_LITERAL for item in items):
            return _NOT_LITERAL
        try:
            if isinstance(node, ast.Dict):
                if None in node.keys:  # `{**other}`
                    return _NOT_LITERAL
                half = len(node.keys)
                return dict(zip(items[:half], items[half:], strict=True))
            if isinstance(node, ast.List | ast.Tuple):
                return items if isinstance(node, ast.List) else tuple(items)
            if isinstance(node, ast.Subscript):
                container, key = items
                if isinstance(container, dict | list | tuple):
                    return cast(Any, container)[key]
                return _NOT_LITERAL
        except (TypeError, KeyError, IndexError):  # unhashable keys, missing items
            return _NOT_LITERAL
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mult):
            return _joined(node.op, items)
        if isinstance(node, ast.Call) and self.ref(node.func, file, scan) in _WEIGHTS:
            return self._weights_value(node, file, scan, depth)
        return _literal(node) if not _deeper_than(node, MAX_NESTING) else _NOT_LITERAL

    def _weights_value(self, call: ast.Call, file: Path, scan: _ModuleScan, depth: int) -> object:
        from hubcore.repo.weights import Weights

        bound = _bind_call(call, "Weights")
        if bound is None or "url" not in bound:
            return _NOT_LITERAL
        values = {k: self.value(v, file, scan, depth + 1) for k, v in bound.items()}
        sha = values.get("sha256")
        if any(v is _NOT_LITERAL for v in values.values()) or not (
            sha is None or isinstance(sha, str)
        ):
            return _NOT_LITERAL
        return Weights(**values)  # type: ignore[arg-type]  # the grammar checks the types

    def _weights_from_call(
        self, call: ast.Call, kind: str, file: Path, scan: _ModuleScan
    ) -> WeightsInfo:
        """What a ``pretrained(...)`` call declares, read by the grammar the decorator runs
        (:func:`hubcore.repo.weights.declared_weights`) from the values discovery reads."""
        from hubcore.errors import UsageError
        from hubcore.repo.weights import declared_weights, default_variant

        unknown = WeightsInfo({}, None, known=False)
        bound = _bind_call(call, kind)
        first = _PARAMETERS[kind][0][0]
        if bound is None or first not in bound:
            return unknown
        values = {k: self.value(v, file, scan) for k, v in bound.items()}
        if any(v is _NOT_LITERAL for v in values.values()):
            return unknown
        weights = values.pop(first)
        try:
            variants, default = declared_weights(weights, **values)
        except UsageError:  # importing the hubconf fails; nothing can be known of its weights
            return unknown
        return WeightsInfo(variants, default_variant(variants, default))

    def _decorated(
        self, decorators: list[ast.expr], file: Path, scan: _ModuleScan
    ) -> WeightsInfo | None:
        """The weights *decorators* declare (the outermost that declares any wins, as its
        specification is the one the entrypoint carries), ``None`` when none does."""
        for deco in decorators:
            if _deeper_than(deco, MAX_NESTING):
                continue  # describing the entrypoint refuses it
            names = {n.id for n in ast.walk(deco) if isinstance(n, ast.Name)}
            if any(n in scan.weighty and scan.doubtful(n) for n in names):
                return WeightsInfo({}, None, known=False)  # hubcore's decorator, or not?
            if isinstance(deco, ast.Call):
                ref = self.ref(deco.func, file, scan)
                kind = _PRETRAINED.get(ref) if ref is not None else None
                if kind is not None:
                    return self._weights_from_call(deco, kind, file, scan)
            elif isinstance(deco, ast.Name | ast.Attribute):
                target = self._target(deco, file, scan)
                known = None if target is None else self._decorator_value(*target)
                if known is not None:
                    return known
            if self.mentions_pretrained(deco, file, scan):
                return WeightsInfo({}, None, known=False)
        return None

    def mentions_pretrained(
        self, node: ast.AST, file: Path, scan: _ModuleScan, depth: int = 0
    ) -> bool:
        """Whether evaluating *node* may use hubcore's (or megengine.hub's) decorator: it
        names it, a value made with it, or a function of the repository that does."""
        if depth > _MAX_DEPTH:
            return False
        local: dict[str, _Ref] = {}  # a function's own imports
        for sub in ast.walk(node):
            if isinstance(sub, ast.Import):
                for alias in sub.names:
                    top, *rest = alias.name.split(".")
                    local[alias.asname or top] = (top, tuple(rest) if alias.asname else ())
            elif isinstance(sub, ast.ImportFrom) and sub.module and not sub.level:
                for alias in sub.names:
                    if alias.name == "*" and any(r[0] == sub.module for r in _PRETRAINED):
                        return True
                    local[alias.asname or alias.name] = (sub.module, (alias.name,))
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name | ast.Attribute) and self._uses_pretrained(
                sub, file, scan, local, depth
            ):
                return True
        return False

    def _uses_pretrained(
        self,
        expr: ast.Name | ast.Attribute,
        file: Path,
        scan: _ModuleScan,
        local: Mapping[str, _Ref],
        depth: int,
    ) -> bool:
        ref = self.ref(expr, file, scan, local)
        if ref is not None and ref in _PRETRAINED:
            return True
        target = self._target(expr, file, scan)
        if target is None:
            return False
        if self._decorator_value(*target) is not None:
            return True
        found = self._def_of(*target)
        if found is None:
            return False
        known = self._mentions.get(found.node)
        if known is None:
            self._mentions[found.node] = False  # a recursive function
            known = self.mentions_pretrained(
                found.node, found.file, self._scope(found.file), depth + 1
            )
            self._mentions[found.node] = known
        return known


def discover_hubconf(root: Path) -> HubconfInfo:
    """Statically read ``root/hubconf.py`` (and what it re-exports) into a :class:`HubconfInfo`.

    Executes nothing: works when the repository's dependencies are not installed and when its
    modules would fail or misbehave if imported. Reads only files inside *root* and within the
    limits in the module's documentation; raises a :class:`~hubcore.errors.HubconfError` when
    ``hubconf.py`` itself cannot be read within them.
    """
    hubconf = root / HUBCONF
    if not hubconf.is_file():
        raise HubconfNotFoundError(
            f"{root} has no {HUBCONF}. A hub repository declares its entrypoints in a "
            f"{HUBCONF} at its root; check the path or reference."
        )
    scanner = _Scanner(root.resolve())
    real = scanner.inside(hubconf)
    if real is None:
        raise HubconfError(
            f"{hubconf} is a symbolic link to a file outside the repository; hubcore reads "
            f"only files inside it. Replace the link with the file; nothing was read or run."
        )
    try:
        scan = scanner.scan(real)
        entrypoints: dict[str, Entrypoint] = {}
        skipped: dict[str, str] = {}
        for name in sorted(scan.bindings):
            if name.startswith("_"):
                continue
            entry = scanner.resolve(scan.bindings[name], name)
            if isinstance(entry, Entrypoint):
                entrypoints[name] = entry
            else:
                skipped[name] = entry
        for name, reason in scan.never_run.items():
            if name not in scan.bindings and not name.startswith("_"):
                skipped[name] = reason
        skipped.update(scan.unread)
    except RecursionError:  # a last line of defence; nesting is checked before deep walks
        raise scanner.too_deep(scanner.current) from None
    return HubconfInfo(
        root=root,
        dependencies=tuple(scan.dependencies or ()),
        entrypoints=entrypoints,
        gaps=tuple(scan.gaps + scanner.gaps),
        skipped=dict(sorted(skipped.items())),
        unread=frozenset(scan.unread),
        notes=tuple(scan.warnings + scanner.warnings),
        declares_dependencies=scan.declares_dependencies,
    )


# -- helpers ------------------------------------------------------------------------------------

_Statement = tuple[ast.stmt, frozenset[str], str | None]


def _top_level_statements(body: list[ast.stmt]) -> Iterator[_Statement]:
    """Statements at module level, descending into if/try/with blocks (without recursion: a
    long ``elif`` chain nests deeply), each with the names it must not rebind (an ``except``
    handler's, which its ``try`` body binds) and, for a statement that never runs on import
    (under ``if __name__ == "__main__":`` or ``if TYPE_CHECKING:``), the reason. The
    expressions a block's header runs (an ``if`` test, a ``with`` item, an ``except`` type)
    come as expression statements where they run, so every rule reads them too."""
    pending: list[tuple[Iterator[ast.stmt], frozenset[str], str | None]] = [
        (iter(body), frozenset(), None)
    ]
    while pending:
        current, protected, never = pending[-1]
        stmt = next(current, None)
        if stmt is None:
            pending.pop()
        elif isinstance(stmt, ast.If):
            skip_body, skip_else = _never_runs(stmt.test)
            # pushed in reverse: the test runs first, then the body is read
            pending.append((iter(stmt.orelse), protected, never or skip_else))
            pending.append((iter(stmt.body), protected, never or skip_body))
            pending.append((iter([_header(stmt.test)]), protected, never))
        elif isinstance(stmt, ast.Try | getattr(ast, "TryStar", ast.Try)):
            handlers = [
                s
                for handler in stmt.handlers
                for s in ([_header(handler.type)] if handler.type else []) + handler.body
            ]
            in_body = protected | frozenset(_bound_names(stmt.body))
            pending.append((iter(stmt.finalbody), protected, never))
            pending.append((iter(stmt.orelse), protected, never))
            pending.append((iter(handlers), in_body, never))
            pending.append((iter(stmt.body), protected, never))
        elif isinstance(stmt, ast.With | ast.AsyncWith):
            pending.append((iter(stmt.body), protected, never))
            items = [_header(item.context_expr) for item in stmt.items]
            pending.append((iter(items), protected, never))
        else:
            yield stmt, protected, never


def _header(expr: ast.expr) -> ast.stmt:
    """A block header's expression as the statement it amounts to (where it runs)."""
    return ast.copy_location(ast.Expr(value=expr), expr)


def _never_runs(test: ast.expr) -> tuple[str | None, str | None]:
    """Why the body / the ``else`` of ``if <test>:`` never runs on import, if it does not."""
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        sides = {ast.unparse(n) for n in (test.left, test.comparators[0]) if _small(n)}
        if sides == {"__name__", "'__main__'"}:
            if isinstance(test.ops[0], ast.Eq):
                return MAIN_ONLY, None
            if isinstance(test.ops[0], ast.NotEq):
                return None, MAIN_ONLY
    if (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    ):
        return TYPE_CHECKING_ONLY, None
    return None, None


#: Methods that change a container in place.
_MUTATORS = frozenset(
    {
        "update", "setdefault", "pop", "popitem", "clear", "append", "extend", "insert",
        "remove", "sort", "reverse", "add", "discard", "__setitem__", "__delitem__", "__ior__",
        "__iadd__",
    }
)  # fmt: skip


def _unsure_names(body: list[ast.stmt]) -> set[str]:
    """Names of a module whose value where it is used may not be the one that reading its
    top-level statements in order gives: bound in a branch or loop body that may or may not
    run and bound elsewhere too, bound by a ``for`` target, ``with ... as``, ``except ... as``,
    a ``match`` capture, ``:=`` or a function's ``global`` statement (a function may run at
    import time), or changed in place (an item, an attribute, a mutating method)."""
    unsure: set[str] = set()
    counts: dict[str, int] = {}
    branched: set[str] = set()
    pending: list[tuple[list[ast.stmt], bool]] = [(body, False)]
    while pending:  # no recursion: a long `elif` chain nests deeply
        statements, conditional = pending.pop()
        for stmt in statements:
            if isinstance(stmt, ast.If):
                skip_body, skip_else = _never_runs(stmt.test)
                if skip_body is None:
                    pending.append((stmt.body, True))
                if skip_else is None:
                    pending.append((stmt.orelse, True))
            elif isinstance(stmt, ast.For | ast.AsyncFor | ast.While):
                if not isinstance(stmt, ast.While):
                    unsure.update(_stored(stmt.target))
                pending.append((stmt.body + stmt.orelse, True))
            elif isinstance(stmt, ast.Match):
                for case in stmt.cases:
                    unsure.update(_stored(case.pattern))
                    pending.append((case.body, True))
            elif isinstance(stmt, ast.Try | getattr(ast, "TryStar", ast.Try)):
                unsure.update(h.name for h in stmt.handlers if h.name)
                handlers = [s for handler in stmt.handlers for s in handler.body]
                pending.append((stmt.body + handlers + stmt.orelse + stmt.finalbody, conditional))
            elif isinstance(stmt, ast.With | ast.AsyncWith):
                for item in stmt.items:
                    if item.optional_vars is not None:
                        unsure.update(_stored(item.optional_vars))
                pending.append((stmt.body, conditional))
            else:
                for name in _bound_names([stmt]):
                    counts[name] = counts.get(name, 0) + 1
                    if conditional:
                        branched.add(name)
    unsure.update(name for name in branched if counts[name] > 1)
    for node in _walk(body):
        if isinstance(node, ast.Global):
            unsure.update(node.names)
        elif isinstance(node, ast.NamedExpr):
            unsure.update(_stored(node.target))
        elif isinstance(node, ast.Subscript | ast.Attribute) and isinstance(
            node.ctx, ast.Store | ast.Del
        ):
            if isinstance(node.value, ast.Name):
                unsure.add(node.value.id)
        elif isinstance(node, ast.AugAssign) and not isinstance(node.op, ast.Add):
            unsure.update(_stored(node.target))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.attr in _MUTATORS
        ):
            unsure.add(node.func.value.id)
    unsure.discard("__all__")  # read by its own rules (`_extend`, `_computed_all`)
    return unsure


#: Leaves that hold nothing a rule looks at (a name's load/store context, an operator).
_LEAVES = (ast.expr_context, ast.operator, ast.boolop, ast.unaryop, ast.cmpop)


def _children(node: ast.AST) -> list[ast.AST]:
    """The child nodes of *node* but its :data:`_LEAVES`: what ``ast.iter_child_nodes``
    gives, at half its cost (discovery walks every hubconf whole twice)."""
    found: list[ast.AST] = []
    for name in node._fields:
        value = getattr(node, name, None)
        if type(value) is list:
            found += [v for v in value if isinstance(v, ast.AST) and not isinstance(v, _LEAVES)]
        elif isinstance(value, ast.AST) and not isinstance(value, _LEAVES):
            found.append(value)
    return found


def _walk(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """Every node of *body* but the :data:`_LEAVES`, in no particular order (iterative: a
    deeply nested hubconf does not exhaust the stack)."""
    pending: list[ast.AST] = list(body)
    while pending:
        node = pending.pop()
        yield node
        pending += _children(node)


def _hidden_bindings(body: list[ast.stmt]) -> Iterator[tuple[int, str, str, bool]]:
    """``(line, name, how, defined)`` for each name a module binds where discovery does not
    read values: a loop's target or body, a ``with ... as`` target, a ``match`` statement, an
    assignment expression (``:=``); *defined* when a ``def`` or ``class`` binds it. Blocks that
    never run on import are not entered."""
    pending: list[Iterator[ast.stmt]] = [iter(body)]
    while pending:
        stmt = next(pending[-1], None)
        if stmt is None:
            pending.pop()
        elif isinstance(stmt, ast.If):
            yield from _walrus_bound(stmt.test)
            skip_body, skip_else = _never_runs(stmt.test)
            if skip_else is None:
                pending.append(iter(stmt.orelse))
            if skip_body is None:
                pending.append(iter(stmt.body))
        elif isinstance(stmt, ast.Try | getattr(ast, "TryStar", ast.Try)):
            handlers = [s for handler in stmt.handlers for s in handler.body]
            pending.append(iter(stmt.body + handlers + stmt.orelse + stmt.finalbody))
        elif isinstance(stmt, ast.With | ast.AsyncWith):
            for item in stmt.items:
                yield from _walrus_bound(item.context_expr)
                if item.optional_vars is not None:
                    for name in _stored(item.optional_vars):
                        yield item.optional_vars.lineno, name, "as a `with` target", False
            pending.append(iter(stmt.body))
        elif isinstance(stmt, ast.For | ast.AsyncFor | ast.While | ast.Match):
            how = {ast.While: "in a `while` loop", ast.Match: "in a `match` statement"}
            where = how.get(type(stmt), "in a `for` loop")
            for node in _module_scope(stmt):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    yield node.lineno, node.name, where, True
                for name in _names_stored_by(node):
                    yield getattr(node, "lineno", stmt.lineno), name, where, False
        else:
            yield from _walrus_bound(stmt)


def _module_scope(node: ast.AST) -> Iterator[ast.AST]:
    """*node* and what beneath it runs in the module's scope: not the bodies of functions,
    lambdas and classes, nor a comprehension's own target."""
    pending = [node]
    while pending:
        current = pending.pop()
        yield current
        if isinstance(current, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        if isinstance(current, ast.Lambda):
            continue
        if isinstance(current, ast.comprehension):
            pending += [current.iter, *current.ifs]
            continue
        pending += _children(current)


def _names_stored_by(node: ast.AST) -> Iterator[str]:
    """The module-level names *node* itself binds, when it is a statement or pattern inside a
    loop or ``match`` (functions' and classes' own bodies excepted by the caller's walk)."""
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
        yield node.id
    elif isinstance(node, ast.Import | ast.ImportFrom):
        for alias in node.names:
            if alias.name != "*":
                yield alias.asname or alias.name.split(".")[0]
    elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
        yield node.name
    elif isinstance(node, ast.MatchMapping) and node.rest:
        yield node.rest


def _walrus_bound(node: ast.AST) -> Iterator[tuple[int, str, str, bool]]:
    """The names ``:=`` binds in the module scope within *node*."""
    for current in _module_scope(node):
        if isinstance(current, ast.NamedExpr):
            for name in _stored(current.target):
                yield current.lineno, name, "by an assignment expression (`:=`)", False


def _stored(node: ast.AST) -> Iterator[str]:
    """The names a target or a ``match`` pattern binds."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            yield sub.id
        elif isinstance(sub, ast.MatchAs | ast.MatchStar) and sub.name:
            yield sub.name
        elif isinstance(sub, ast.MatchMapping) and sub.rest:
            yield sub.rest


def _bound_names(body: list[ast.stmt]) -> Iterator[str]:
    """The names statements in *body* bind at module level (when they run on import)."""
    for stmt, _protected, never in _top_level_statements(body):
        if never is not None:
            continue
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield stmt.name
        elif isinstance(stmt, ast.Import):
            for alias in stmt.names:
                yield alias.asname or alias.name.split(".")[0]
        elif isinstance(stmt, ast.ImportFrom):
            yield from (alias.asname or alias.name for alias in stmt.names if alias.name != "*")
        elif isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            pending = list(targets)
            while pending:
                target = pending.pop()
                if isinstance(target, ast.Name):
                    yield target.id
                elif isinstance(target, ast.Tuple | ast.List | ast.Starred):
                    pending += (
                        target.elts if not isinstance(target, ast.Starred) else [target.value]
                    )


#: Methods of a namespace dict that add names to it.
_DICT_WRITES = frozenset({"update", "setdefault", "__setitem__", "__ior__"})
_UNSEEN = "static reading cannot see"


def _dynamic_exports(stmt: ast.stmt, aliases: set[str]) -> Iterator[tuple[int, str]]:
    """Where *stmt* (a module-level statement, walked into its function bodies, which may run
    at import time) may bind module names that static reading cannot see: (line, reason)."""
    if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and stmt.name == "__getattr__":
        yield stmt.lineno, f"defines a module-level `__getattr__`, which serves names {_UNSEEN}"
    stack: list[tuple[ast.AST, bool]] = [(stmt, False)]  # (node, inside a function or class)
    while stack:
        node, nested = stack.pop()
        if isinstance(node, ast.Call):
            yield from _dynamic_call(node, nested, aliases)
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Subscript) and _namespace(target.value, nested, aliases):
                    shown = f"{_label(target.value)}[...]"
                    yield node.lineno, f"{shown} = ... adds names {_UNSEEN}"
                elif isinstance(target, ast.Attribute) and _is_this_module(target.value, aliases):
                    yield node.lineno, f"{_label(target)} = ... adds a name {_UNSEEN}"
        inner = nested or isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef
        )
        stack.extend((child, inner) for child in _children(node))


def _dynamic_call(call: ast.Call, nested: bool, aliases: set[str]) -> Iterator[tuple[int, str]]:
    func = call.func
    if (
        isinstance(func, ast.Attribute)
        and func.attr in _DICT_WRITES
        and _namespace(func.value, nested, aliases)
    ):
        yield call.lineno, f"{_label(func)}(...) adds names {_UNSEEN}"
    elif isinstance(func, ast.Name) and func.id == "setattr" and call.args:
        if _is_this_module(call.args[0], aliases):
            yield call.lineno, f"setattr({_label(call.args[0])}, ...) adds names {_UNSEEN}"
    elif (
        isinstance(func, ast.Name)
        and func.id == "exec"
        # exec in a function binds into the function's namespace unless given the module's
        and (not nested or any(_namespace(a, False, aliases) for a in call.args[1:]))
    ):
        yield call.lineno, f"exec(...) may bind names {_UNSEEN}"


def _namespace(node: ast.expr, nested: bool, aliases: set[str]) -> bool:
    """Whether *node* is the module's namespace: ``globals()``, ``vars()`` at module level,
    ``vars(<module>)`` or ``<module>.__dict__``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        if node.func.id == "globals" and not node.args:
            return True
        if node.func.id == "vars":
            if not node.args:
                return not nested  # in a function, vars() is its locals
            return len(node.args) == 1 and _is_this_module(node.args[0], aliases)
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "__dict__"
        and _is_this_module(node.value, aliases)
    )


def _is_this_module(node: ast.expr, aliases: set[str]) -> bool:
    """Whether *node* is the module itself: ``sys.modules[__name__]`` or a name bound to it."""
    if isinstance(node, ast.Name):
        return node.id in aliases
    return (
        isinstance(node, ast.Subscript)
        and isinstance(node.slice, ast.Name)
        and node.slice.id == "__name__"
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "modules"
        and isinstance(node.value.value, ast.Name)
        and node.value.value.id == "sys"
    )


def _parts(node: ast.expr) -> list[ast.expr]:
    """The parts :meth:`_Scanner.value` evaluates first: keys then values of a dict, elements
    of a list or tuple, container and index of a subscript."""
    if isinstance(node, ast.Dict):
        return [k for k in node.keys if k is not None] + node.values
    if isinstance(node, ast.List | ast.Tuple):
        return node.elts
    if isinstance(node, ast.Subscript):
        return [node.value, node.slice]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mult):
        return [node.left, node.right]
    return []


#: The longest string :func:`_joined` builds (``"ab" * 32``, ``BASE + "r18.pth"``).
_MAX_JOINED = 64 * 1024


def _joined(op: ast.operator, items: list[object]) -> object:
    """``a + b`` of strings or ``s * n`` of a string and a count, as Python computes them, if
    the result is short; :data:`_NOT_LITERAL` otherwise."""
    left, right = items
    if isinstance(op, ast.Add) and isinstance(left, str) and isinstance(right, str):
        return left + right if len(left) + len(right) <= _MAX_JOINED else _NOT_LITERAL
    text, count = (left, right) if isinstance(left, str) else (right, left)
    if isinstance(op, ast.Mult) and isinstance(text, str) and type(count) is int:
        return text * count if len(text) * max(count, 0) <= _MAX_JOINED else _NOT_LITERAL
    return _NOT_LITERAL


def _small(node: ast.AST) -> bool:
    return not _deeper_than(node, 8)


def _label(node: ast.AST) -> str:
    """*node* as short source text, for messages (never unparsing a deep tree)."""
    return _short(node) if _small(node) else "..."


def _string_list(node: ast.expr | None, constants: Mapping[str, object]) -> list[str] | None:
    """The value of a list of names built from literal lists and tuples: a literal, a constant
    bound to one, or ``+`` of those; ``None`` otherwise."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _string_list(node.left, constants), _string_list(node.right, constants)
        return None if left is None or right is None else left + right
    value = constants.get(node.id) if isinstance(node, ast.Name) else _literal(node)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


# The patterns of the chain scan, compiled on first use: only large files are scanned.
@functools.cache
def _strings_and_comments() -> re.Pattern[str]:
    return re.compile(
        r"#[^\r\n]*"
        r"|(?P<prefix>[rRbBuUfF]{0,2})(?:'''(?:[^\\']|\\.|'(?!''))*(?:'''|\Z)"
        r'|"""(?:[^\\"]|\\.|"(?!""))*(?:"""|\Z)'
        r"|'(?:[^\\'\r\n]|\\.)*'?"
        r'|"(?:[^\\"\r\n]|\\.)*"?)',
        re.DOTALL,
    )


@functools.cache
def _fstring_field() -> re.Pattern[str]:
    return re.compile(r"\{([^{}]*)")


@functools.cache
def _marks() -> re.Pattern[str]:
    """What links a chain (binary operators, ``.``, call and subscript brackets), what ends
    one (``,;:=``, a newline outside brackets), and line continuations."""
    return re.compile(r"\\\r?\n|\*\*|//|<<|>>|[-+*/%@&|^~.([{)\]},;:=\n]")


def _code_only(match: re.Match[str]) -> str:
    """A string literal or comment reduced to the code in it: the fields of an f-string."""
    if "f" in (match.group("prefix") or "").lower():
        return "," + ",".join(_fstring_field().findall(match.group())) + ","
    return "0"


def _longest_chain(source: bytes) -> int:
    """An upper bound of the nesting that left-recursive chains (``a+a+a``, ``a.b.c``,
    ``f()()``) give the syntax tree, from a scan of the text: deep trees of other shapes are
    refused by Python's parser itself."""
    code = _strings_and_comments().sub(_code_only, source.decode("utf-8", "replace"))
    levels = [0]  # links counted per open bracket
    total = longest = 0
    for mark in _marks().findall(code):
        if mark in ")]}":
            if len(levels) > 1:
                total -= levels.pop()
        elif mark in ",;:=" or (mark == "\n" and len(levels) == 1):
            total -= levels[-1]
            levels[-1] = 0
        elif mark != "\n" and not mark.startswith("\\"):
            levels[-1] += 1
            total += 1
            longest = max(longest, total)
            if mark in "([{":
                levels.append(0)
    return longest


def _deeper_than(node: ast.AST, limit: int) -> bool:
    """Whether *node* nests more than *limit* levels (an iterative walk)."""
    stack = [(node, 0)]
    while stack:
        current, depth = stack.pop()
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(current))
    return False


def _canonical(module: str, attrs_: tuple[str, ...]) -> _Ref:
    """Fold attributes that are submodules into the module: ``("megengine", ("hub",
    "pretrained"))`` is ``("megengine.hub", ("pretrained",))``."""
    while (
        attrs_ and f"{module}.{attrs_[0]}" in _SUBMODULES and (module, attrs_[0]) not in _SHADOWED
    ):
        module, attrs_ = f"{module}.{attrs_[0]}", attrs_[1:]
    return module, attrs_


def _literal_strings(node: ast.expr | None) -> list[str] | None:
    value = _literal(node)
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


def _init_args(node: ast.ClassDef) -> ast.arguments | None:
    for stmt in node.body:
        if isinstance(stmt, ast.FunctionDef) and stmt.name == "__init__":
            return stmt.args
    return None


def _init_signature(init: ast.arguments | None) -> str:
    if init is None:
        return "()"
    args = ast.unparse(init)
    head, _, rest = args.partition(",")
    return f"({rest.strip()})" if head.strip() == "self" else f"({args})"


def _bind_call(call: ast.Call, params: str) -> dict[str, ast.expr] | None:
    """The arguments of *call* by parameter name, as the callee *params* would bind them;
    ``None`` when the call would fail or its arguments cannot be known statically."""
    positional, names = _PARAMETERS[params]
    if len(call.args) > len(positional) or any(isinstance(a, ast.Starred) for a in call.args):
        return None
    bound = dict(zip(positional, call.args, strict=False))
    for keyword in call.keywords:
        if keyword.arg is None or keyword.arg not in names or keyword.arg in bound:
            return None
        bound[keyword.arg] = keyword.value
    return bound


#: Calls whose result is data, never an entrypoint (``here = os.path.dirname(__file__)``).
_DATA_CALLS = frozenset(
    {"str", "int", "float", "bool", "dict", "list", "tuple", "set", "frozenset", "Path"}
    | {"sorted", "len"}
    # a module is never an entrypoint (``utils = importlib.import_module("utils")``)
    | {"importlib.import_module", "import_module", "__import__"}
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


def _literal(node: ast.expr | None) -> object:
    """The value of literal *node*: ``None`` when absent, :data:`_NOT_LITERAL` when not literal."""
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NOT_LITERAL
