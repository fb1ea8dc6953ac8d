"""The layers stay layered: what stores bytes never imports what loads plugins or runs
repositories, and the core never imports a framework.

An import inside a function counts like one at the top of the module: importing lazily keeps
start-up fast, but it is still a dependency, and a lower layer that needs something of an upper
one gets it passed down (a hook, a callable in the fetch context), not imported."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "hubcore"
#: Owners of one concern each, used by every layer; they import no layer above the store.
OWNERS = ("errors", "records", "settings", "config", "runcontext", "events", "patterns")
#: The top layer, the operations: the public API, the runner that applies trust, lock and
#: isolation when repository code runs, and the command line.
OPERATIONS = ("api", "runner", "cli")
#: The features built on the API (catalog site, registry, model packages).
FEATURES = ("site", "registry", "packages")
#: What each layer folder may not import, anywhere in a module (lower layers never import upper
#: ones).
FORBIDDEN = {
    "store": (*OPERATIONS, "plugins", "repo", "policy", "sources", "compat", *FEATURES),
    "plugins": (*OPERATIONS, "policy", "compat", *FEATURES),
    "repo": (*OPERATIONS, "policy", "compat", *FEATURES),
    "policy": (*OPERATIONS, "compat", *FEATURES),
    "sources": (*OPERATIONS, "policy", "repo", "compat", *FEATURES),
}
#: The lazy imports an owner makes by design: events reach the plugin manager only when one is
#: sent (the storage layer announces through events without importing it), and a bad mirror
#: in the configuration is shown through the one redactor.
OWNERS_LAZY = {
    "events": {"hubcore.plugins"},
    "config": {"hubcore.store.http", "hubcore.store.redaction"},
}
FORBIDDEN_FOR_OWNERS = (
    *OPERATIONS,
    "plugins",
    "repo",
    "policy",
    "sources",
    "compat",
    "store",
    *FEATURES,
)


def module_level_imports(path: Path) -> set[str]:
    """Modules imported at module level (outside functions and ``if TYPE_CHECKING:``)."""
    return _imported(ast.parse(path.read_text()).body)


def all_imports(path: Path) -> set[str]:
    """Modules imported anywhere in *path*: at module level, inside functions (lazily) and
    for type checking alike."""
    return _imported(ast.walk(ast.parse(path.read_text())))


def _imported(nodes: Iterable[ast.AST]) -> set[str]:
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _forbidden(imported: set[str], layers: tuple[str, ...]) -> set[str]:
    prefixes = tuple(f"hubcore.{layer}" for layer in layers)
    return {n for n in imported if n in prefixes or n.startswith(tuple(p + "." for p in prefixes))}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_each_layer_imports_no_layer_above_it(layer: str) -> None:
    files = sorted((CORE / layer).rglob("*.py"))
    assert files, f"hubcore/{layer}/ is missing"
    for path in files:
        bad = _forbidden(all_imports(path), FORBIDDEN[layer])
        assert not bad, f"{path.relative_to(CORE)} imports {sorted(bad)}"


@pytest.mark.parametrize("owner", OWNERS)
def test_owners_import_no_layer(owner: str) -> None:
    allowed_store = {"hubcore.store", "hubcore.store.files"}
    bad = _forbidden(module_level_imports(CORE / f"{owner}.py"), FORBIDDEN_FOR_OWNERS)
    assert not bad - allowed_store, f"{owner}.py imports {sorted(bad)}"
    lazy = _forbidden(all_imports(CORE / f"{owner}.py"), FORBIDDEN_FOR_OWNERS) - allowed_store
    allowed_lazy = OWNERS_LAZY.get(owner, set())
    beyond = {n for n in lazy if not any(n == a or n.startswith(a + ".") for a in allowed_lazy)}
    assert not beyond, f"{owner}.py imports {sorted(beyond)} inside a function"


def test_a_lazy_import_counts(tmp_path: Path) -> None:
    """The check sees an import inside a function, which module-level reading misses."""
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from hubcore.packages.manifest import check_pin\n")
    assert not _forbidden(module_level_imports(module), FEATURES)
    assert _forbidden(all_imports(module), FEATURES) == {
        "hubcore.packages.manifest",
        "hubcore.packages.manifest.check_pin",
    }


def test_the_runner_is_below_the_api() -> None:
    """The API is the public surface over the runner; the runner never reaches back up."""
    assert not _forbidden(all_imports(CORE / "runner.py"), ("api", "cli", "compat"))


def test_the_tree_shows_the_layers() -> None:
    top = {p.stem for p in CORE.glob("*.py")}
    assert top <= {
        "__init__",
        "_version",
        *OPERATIONS,
        "errors",
        "records",
        "settings",
        "config",
        "runcontext",
        "events",
        "patterns",
    }, top


def test_the_core_imports_no_framework() -> None:
    for path in CORE.rglob("*.py"):
        imported = module_level_imports(path)
        assert not {n for n in imported if n.split(".")[0] in ("torch", "megengine", "jax")}, path
