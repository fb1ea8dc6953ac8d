"""hubcore.testing for plugin authors: fixtures loaded only when a project asks for them, and a
plain loopback file server in the package (the fault-injecting one stays with these tests)."""

from __future__ import annotations

import http.client
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import requests

from hubcore.testing import FileServer

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]

PLUGIN_TEST = """
import hubcore


def test_fixtures(hub_home, make_hub_repo, file_server):
    assert hubcore.get_dir() == hub_home
    assert (make_hub_repo({"hubconf.py": "x = 1"}) / "hubconf.py").is_file()
    url = file_server.add("w.bin", b"weights")
    assert hubcore.download(url, progress=False).read_bytes() == b"weights"
    file_server.reset_counters()
    assert hubcore.download(url, progress=False).read_bytes() == b"weights"
    assert file_server.requests() == []
"""


def run_pytest(project: Path) -> subprocess.CompletedProcess[str]:
    # -p no:hubcore: an environment installed from an older hubcore may still auto-load it.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, sys.path))}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:hubcore", "-p", "no:cacheprovider"]
    return subprocess.run(
        [*command, str(project)], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_fixtures_are_not_registered_for_every_project() -> None:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        project = tomllib.load(fh)["project"]
    assert "pytest11" not in project.get("entry-points", {})


def test_a_project_that_opts_in_gets_the_fixtures(tmp_path) -> None:
    (tmp_path / "test_plugin.py").write_text(PLUGIN_TEST)
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["hubcore.testing.pytest_plugin"]\n')
    done = run_pytest(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    (tmp_path / "conftest.py").unlink()
    done = run_pytest(tmp_path)
    assert done.returncode != 0
    assert "fixture 'hub_home' not found" in done.stdout


def test_the_fault_injecting_server_is_not_in_the_package() -> None:
    assert importlib.util.find_spec("hubcore.testing.fileserver") is None


def test_the_plain_file_server_serves_its_folder_only(tmp_path) -> None:
    (tmp_path / "secret.txt").write_text("outside")
    with FileServer(tmp_path / "served") as server:
        url = server.add("sub/w.bin", b"abc")
        assert requests.get(url, timeout=10).content == b"abc"
        head = requests.head(url, timeout=10)
        assert head.status_code == 200
        assert head.headers["Content-Length"] == "3"
        for path in ("/missing.bin", "/../secret.txt", "/sub/../../secret.txt", "/"):
            # http.client sends the path as written, dot segments included.
            connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
            try:
                connection.request("GET", path)
                assert connection.getresponse().status == 404, path
            finally:
                connection.close()
        assert [p for p, _ in server.requests("HEAD")] == ["/sub/w.bin"]
        assert len(server.requests()) == 5
        server.reset_counters()
        assert server.requests() == []
