"""pytest fixtures for code that uses hubcore: an isolated hub home, throwaway repositories,
a loopback file server and a loopback S3 server (moto).

Not loaded on its own: a project that wants them says so in its ``conftest.py``::

    pytest_plugins = ["hubcore.testing.pytest_plugin"]
"""

from __future__ import annotations

import uuid
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


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A moto S3 server on loopback for the whole session (it honours conditional writes);
    yields its endpoint URL. Skips when moto or s3fs is not installed."""
    pytest.importorskip("s3fs")
    server_mod = pytest.importorskip("moto.server")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh, empty bucket on the session's moto server. Credentials and the endpoint are
    set in the environment (``AWS_ENDPOINT_URL``), so s3fs and boto3 reach it with no options."""
    import boto3
    import s3fs

    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", s3_server),
    ):
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()  # instances remember the endpoint they met
    name = f"bucket-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=name)
    return name
