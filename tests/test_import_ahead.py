"""The git source imports what comes next while it waits for the server."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys, threading
    from hubcore.sources.git import _importing_ahead
    from hubcore.sources.gitproto import SmartHTTP

    class Client:
        # records when the HTTP session is made: before the thread starts
        readied = 0
        def ready(self):
            assert threading.active_count() == 1, "the session comes before the thread"
            self.readied += 1

    client = Client()
    assert "wave" not in sys.modules
    with _importing_ahead(["wave", "no_such_module_for_hubcore_tests"], client):
        pass  # the server's answer would be awaited here
    assert client.readied == 1
    assert "wave" in sys.modules, "imported by the time the block ends"
    assert threading.active_count() == 1, "the importing thread is done"
    with _importing_ahead(["wave"], client):  # already imported: no thread
        assert threading.active_count() == 1
    assert client.readied == 1
    try:
        with _importing_ahead(["colorsys"], client):
            raise KeyError("the fetch failed")
    except KeyError:
        pass
    assert "colorsys" in sys.modules and threading.active_count() == 1

    # a real client's session imports the HTTP library, not the first request
    assert "requests" not in sys.modules
    SmartHTTP("http://127.0.0.1:9/x.git", "x").ready()
    assert "requests" in sys.modules
    print("ok")
    """
)


def test_modules_are_imported_on_a_thread_that_ends_with_the_block(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_session_that_cannot_be_made_fails_as_a_hub_error(monkeypatch) -> None:
    """The session is made before the import-ahead thread starts, outside the source's error
    mapping: a failure there is left for the first request, which maps it."""
    import urllib3.exceptions

    from hubcore.errors import DownloadError
    from hubcore.sources import git
    from hubcore.sources.git import GitSource
    from hubcore.store import http

    def broken() -> None:
        raise urllib3.exceptions.NotOpenSSLWarning("urllib3 v2 only supports OpenSSL 1.1.1+")

    monkeypatch.setattr(http, "session", broken)
    monkeypatch.setattr(git, "_AFTER_LISTING", ("no_such_module_for_hubcore_tests",))
    source = GitSource()
    ref = source.parse("git+http://127.0.0.1:9/x.git@main", {})
    with pytest.raises(DownloadError, match="OpenSSL"):
        source._list(ref, ["refs/heads/main"])
