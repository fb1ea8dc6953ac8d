"""pytest fixtures for code that uses hubcore: an isolated hub home, throwaway repositories
and a loopback file server.

Not loaded on its own: a project that wants them says so in its ``conftest.py``::

    pytest_plugins = ["hubcore.testing.pytest_plugin"]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from hubcore import config
from hubcore.plugins import reset_plugins
from hubcore.testing.files import FileServer, write_repo


@pytest.fixture
def hub_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """An empty hub home for one test (``HUBCORE_HOME``), with plugins loaded afresh.

    Every repository is trusted (``HUBCORE_TRUST=*``), as tests load repositories they made
    themselves; tests of trust itself unset it.
    """
    yield from isolated_home(tmp_path_factory.mktemp("hub-home"), monkeypatch)


def isolated_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Make *home* the hub home for one test, as :func:`hub_home` does (for fixtures that
    need the home somewhere particular): ``yield from isolated_home(path, monkeypatch)``."""
    monkeypatch.setenv("HUBCORE_HOME", str(home))
    monkeypatch.setenv("HUBCORE_TRUST", "*")
    monkeypatch.delenv("HUBCORE_OFFLINE", raising=False)
    monkeypatch.setenv("HUBCORE_DISABLE_PROGRESS", "1")
    config.set_dir(None)
    reset_plugins()
    yield home
    reset_plugins()


@pytest.fixture
def make_hub_repo(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """A factory: ``make_hub_repo({"hubconf.py": "...", "utils.py": "..."})`` returns a folder."""

    def make(files: Mapping[str, str | bytes], name: str = "repo") -> Path:
        return write_repo(tmp_path_factory.mktemp(name), files)

    return make


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[FileServer]:
    """A loopback HTTP server for weight files (``file_server.add(name, data)`` -> URL) that
    logs every request (``file_server.requests()``); stopped after the test."""
    server = FileServer(tmp_path / "served-files").start()
    yield server
    server.stop()
