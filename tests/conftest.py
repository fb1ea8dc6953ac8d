"""Shared test setup. ``HUBCORE_TEST_REQUIRE`` (set by the Makefile per environment) lists
modules that must import, so a broken environment fails loudly instead of skipping."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import uuid
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


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A moto S3 server on loopback for the whole session (it honours conditional writes);
    yields its endpoint URL."""
    pytest.importorskip("s3fs")
    server_mod = pytest.importorskip("moto.server")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty bucket on the session's moto server; credentials and endpoint are set in
    the environment (``AWS_ENDPOINT_URL``), so s3fs and boto3 reach it with no options."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    name = f"bucket-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=name)
    return name
