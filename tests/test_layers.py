"""The layers stay layered: what stores bytes never imports what loads plugins or runs
repositories, and the core never imports a framework."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "hubcore"
#: The storage layer and the owners it builds on.
LOWER = (
    "errors",
    "settings",
    "config",
    "runcontext",
    "files",
    "addresses",
    "safetensors_header",
    "archives",
    "http",
    "downloader",
    "cache",
    "transfer",
    "events",
)
UPPER = ("hubcore.api", "hubcore.cli", "hubcore.plugins", "hubcore.trust", "hubcore.lock")


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


@pytest.mark.parametrize("module", LOWER)
def test_lower_layers_import_no_upper_layer(module) -> None:
    imported = module_level_imports(CORE / f"{module}.py")
    assert not {name for name in imported if name.startswith(UPPER)}


def test_the_core_imports_no_framework() -> None:
    for path in CORE.rglob("*.py"):
        imported = module_level_imports(path)
        assert not {n for n in imported if n.split(".")[0] in ("torch", "megengine", "jax")}, path
