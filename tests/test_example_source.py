"""The plugin guide's example remote source, written against RemoteSource, works like the
built-in ones: cached, offline, force_reload, pinned by content."""

from __future__ import annotations

import pytest

import hubcore
from hubcore.errors import InvalidReferenceError, OfflineError

pytest.importorskip("hubcore_numpy_example")

HUBCONF = "dependencies = []\n\n\ndef hello():\n    '''Says hello.'''\n    return 'hello'\n"


def test_a_source_in_a_few_lines(hub_home, file_server, monkeypatch) -> None:
    url = file_server.add("hubconf.py", HUBCONF.encode())
    ref = f"hubfile:{url}"
    assert hubcore.list(ref) == ["hello"]
    assert hubcore.load(ref, "hello") == "hello"  # HUBCORE_TRUST=* in hub_home
    snapshot = hubcore.open_repo(ref)
    assert snapshot.ref.identity == f"hubfile:{url}"
    assert snapshot.snapshot_id == hubcore.file_sha256(file_server.folder / "hubconf.py")

    file_server.add("hubconf.py", HUBCONF.replace("hello", "bonjour").encode())
    assert hubcore.list(ref) == ["bonjour"]  # revalidated: the new content is a new snapshot
    file_server.reset_counters()
    monkeypatch.setenv("HUBCORE_OFFLINE", "1")
    assert hubcore.list(ref) == ["bonjour"]  # offline: the last resolution, no request
    assert not file_server.requests()
    with pytest.raises(OfflineError):
        hubcore.list(f"hubfile:{file_server.url}/other/hubconf.py")
    with pytest.raises(InvalidReferenceError, match="expected hubfile:"):
        hubcore.list("hubfile:not-a-url")
