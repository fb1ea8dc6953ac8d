"""Shared test setup. ``HUBCORE_TEST_REQUIRE`` (set by the Makefile per environment) lists
modules that must import, so a broken environment fails loudly instead of skipping."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .fileserver import FileServer

# hubcore's fixtures are opt-in (no pytest11 entry point): this is how a project asks for them.
pytest_plugins = ["hubcore.testing.pytest_plugin"]

# The peer APIs (hubcore.compat.torch_hub / megengine_hub) live in the framework plugins, and
# each test environment installs one plugin. The core tests exercise both APIs everywhere
# (neither imports its framework), so a plugin that is not installed is imported from this
# checkout; its entry point (backend, redirects) stays unregistered, as without the plugin.
_ROOT = Path(__file__).resolve().parents[1]
for _package, _folder in (("hubcore_torch", "torch"), ("hubcore_megengine", "megengine")):
    if importlib.util.find_spec(_package) is None:
        sys.path.append(str(_ROOT / "plugins" / _folder))


def pytest_sessionstart(session: pytest.Session) -> None:
    for name in filter(None, os.environ.get("HUBCORE_TEST_REQUIRE", "").split(",")):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise pytest.UsageError(f"this environment must provide {name}: {exc}") from exc


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[FileServer]:
    """Overrides hubcore.testing's plain ``file_server`` for the core tests: the same server
    with ranges, ETags and injectable faults (``file_server.faults``), stopped after the test."""
    server = FileServer(tmp_path / "served-files").start()
    yield server
    server.stop()


@pytest.fixture
def cache_locks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """The keys of every cache lock taken while the test runs, in order."""
    from hubcore.store.cache import Cache

    taken: list[tuple[str, ...]] = []
    original = Cache.lock

    def spy(self: Cache, *key: str, timeout: float = -1) -> object:
        taken.append(key)
        return original(self, *key, timeout=timeout)

    monkeypatch.setattr(Cache, "lock", spy)
    return taken
