"""The layers stay layered: what stores bytes never imports what loads plugins or runs
repositories, and the core never imports a framework."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "hubcore"
#: Owners of one concern each, used by every layer; they import no layer above the store.
OWNERS = ("errors", "settings", "config", "runcontext", "events")
#: What each layer folder may not import at module level (lower layers never import upper ones).
#: The features built on the API (catalog site, registry, model packages).
FEATURES = ("site", "registry", "packages")
FORBIDDEN = {
    "store": ("api", "cli", "plugins", "repo", "policy", "sources", "compat", *FEATURES),
    "plugins": ("api", "cli", "policy", "compat", *FEATURES),
    "repo": ("api", "cli", "policy", "compat", *FEATURES),
    "policy": ("api", "cli", "compat", *FEATURES),
    "sources": ("api", "cli", "policy", "repo", "compat", *FEATURES),
}
FORBIDDEN_FOR_OWNERS = (
    "api",
    "cli",
    "plugins",
    "repo",
    "policy",
    "sources",
    "compat",
    "store",
    *FEATURES,
)


def module_level_imports(path: Path) -> set[str]:
    """Modules imported at module level (imports inside functions are deliberate and lazy)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
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
        bad = _forbidden(module_level_imports(path), FORBIDDEN[layer])
        assert not bad, f"{path.relative_to(CORE)} imports {sorted(bad)}"


@pytest.mark.parametrize("owner", OWNERS)
def test_owners_import_no_layer(owner: str) -> None:
    imported = module_level_imports(CORE / f"{owner}.py")
    allowed_store = {"hubcore.store", "hubcore.store.files"}
    bad = _forbidden(imported, FORBIDDEN_FOR_OWNERS) - allowed_store
    assert not bad, f"{owner}.py imports {sorted(bad)}"


def test_the_tree_shows_the_layers() -> None:
    top = {p.stem for p in CORE.glob("*.py")}
    assert top <= {
        "__init__",
        "_version",
        "api",
        "cli",
        "errors",
        "settings",
        "config",
        "runcontext",
        "events",
    }, top


def test_the_core_imports_no_framework() -> None:
    for path in CORE.rglob("*.py"):
        imported = module_level_imports(path)
        assert not {n for n in imported if n.split(".")[0] in ("torch", "megengine", "jax")}, path
