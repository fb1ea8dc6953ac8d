"""The registry under concurrent writers, killed writers and 10,000 versions (folder and S3)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import hubcore.registry as registry
from hubcore.registry.core import alias_key, collection_key, version_key

from . import test_registry as base

counted = base.counted  # the fixture
make_files = base.make_files


@pytest.fixture(params=["local", "s3"])
def reg_url(request: pytest.FixtureRequest, hub_home: Path, tmp_path: Path) -> str:
    if request.param == "s3":
        return f"s3://{request.getfixturevalue('s3_bucket')}/registry"
    return str(tmp_path / "registry")


def spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


LOGGER = """
import sys, hubcore.registry as r
reg = r.open(sys.argv[1])
print(reg.log("clf", {"w.bin": sys.argv[2]}).number)
"""

MOVER = """
import sys, hubcore.registry as r
reg = r.open(sys.argv[1])
reg.alias(sys.argv[2], "production")
"""


def test_eight_concurrent_loggers_get_eight_distinct_versions(reg_url: str, tmp_path: Path) -> None:
    files = []
    for i in range(8):
        path = tmp_path / f"w{i}"
        path.write_text(f"weights {i}")
        files.append(path)
    procs = [spawn(LOGGER, reg_url, str(f)) for f in files]
    numbers = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        numbers.append(int(out))
    assert sorted(numbers) == list(range(8))
    reg = registry.open(reg_url)
    assert len({v.digest for v in reg.versions("clf")}) == 8
    assert reg.get("clf:latest").number == 7
    assert len([e for e in reg.history("clf") if e["kind"] == "log"]) == 8


def test_eight_concurrent_alias_moves_all_land_in_the_history(reg_url: str, tmp_path: Path) -> None:
    reg = registry.open(reg_url)
    for i in range(8):
        reg.log("clf", {"w": make_files(tmp_path / f"s{i}", {"w": str(i)}) / "w"})
    procs = [spawn(MOVER, reg_url, f"clf:v{i}") for i in range(8)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    moves = [e for e in reg.history("clf") if e["kind"] == "alias"]
    assert len(moves) == 8
    # one chain: each move starts where the one before ended, and the alias is on the last
    ordered = sorted(moves, key=lambda e: e["seq"])
    assert [e["seq"] for e in ordered] == list(range(8))
    assert ordered[0]["from"] is None
    assert all(a["to"] == b["from"] for a, b in itertools.pairwise(ordered))
    assert reg.get("clf:production").number == ordered[-1]["to"]
    assert sorted(e["to"] for e in moves) == list(range(8))


KILLED = """
import os, signal, sys, hubcore.registry as r
from hubcore.registry import core
point = sys.argv[3]
if point == "upload":
    original = core.Registry._store_manifest
    def die(self, manifest):
        os.kill(os.getpid(), signal.SIGKILL)
    core.Registry._store_manifest = die
else:
    def die(self, name, record):
        os.kill(os.getpid(), signal.SIGKILL)
    core.Registry._take_number = die
reg = r.open(sys.argv[1])
reg.log("clf", {"w.bin": sys.argv[2]})
"""


@pytest.mark.parametrize("point", ["upload", "number"])
def test_a_writer_killed_mid_log_leaves_no_version_and_blocks_nobody(
    reg_url: str, tmp_path: Path, point: str
) -> None:
    weights = tmp_path / "w"
    weights.write_bytes(os.urandom(1 << 20))
    proc = spawn(KILLED, reg_url, str(weights), point)
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    reg = registry.open(reg_url)
    assert reg.versions("clf") == []
    with pytest.raises(registry.VersionNotFoundError):
        reg.get("clf:latest")
    version = reg.log("clf", {"w.bin": weights})  # the next writer goes straight through
    assert version.number == 0
    assert (version.download() / "w.bin").read_bytes() == weights.read_bytes()


def test_killed_mover_event_is_repaired_by_the_next(reg_url: str, tmp_path: Path) -> None:
    reg = registry.open(reg_url)
    for i in range(2):
        reg.log("clf", {"w": make_files(tmp_path / f"s{i}", {"w": str(i)}) / "w"})
    # as if the mover died after its compare-and-swap, before writing the event file
    original = registry.Registry._append_event
    registry.Registry._append_event = lambda self, name, event: None  # type: ignore[method-assign]
    try:
        reg.alias("clf:v0", "production")
    finally:
        registry.Registry._append_event = original  # type: ignore[method-assign]
    assert [e["to"] for e in reg.history("clf") if e["kind"] == "alias"] == [0]
    reg.alias("clf:v1", "production")
    events = list(reg.store.objects(f"{collection_key('clf')}/events"))
    stored = [json.loads(reg.store.read(e.key)[0]) for e in events]
    assert [(e["from"], e["to"]) for e in stored if e["kind"] == "alias"] == [(None, 0), (0, 1)]


def _create_versions(reg: registry.Registry, name: str, count: int) -> None:
    """The metadata objects of *count* versions, written directly (logging 10,000 times would
    take minutes): every record points at the one manifest of a logged version."""
    template = json.loads(reg.store.read(version_key(name, 0))[0])
    records = [
        (version_key(name, n), json.dumps({**template, "number": n}).encode())
        for n in range(1, count)
    ]
    from hubcore.registry.store import LocalStore

    if isinstance(reg.store, LocalStore):
        for key, data in records:
            path = reg.store.root / key
            path.write_bytes(data)
    else:
        from moto.backends import get_backend

        backend = get_backend("s3")["123456789012"]["aws"]
        bucket = reg.store.bucket
        for key, data in records:  # straight into moto's store: 10,000 PUTs would take minutes
            backend.put_object(bucket, reg.store._key(key), data)
    last = {"alias": "latest", "version": count - 1, "digest": template["digest"]}
    _, tag = reg.store.read(alias_key(name, "latest"))
    assert reg.store.swap(alias_key(name, "latest"), json.dumps(last).encode(), tag)


def test_ten_thousand_versions_read_a_constant_number_of_objects(
    reg_url: str, tmp_path: Path, counted: list[str]
) -> None:
    reg = registry.open(reg_url)
    reg.log("clf", make_files(tmp_path / "a", {"w": "1"}), aliases=["production"])
    _create_versions(reg, "clf", 10_000)
    for spec, most in (("clf:v9999", 2), ("clf:production", 3), ("clf:latest", 4), ("clf", 4)):
        counted.clear()
        version = reg.get(spec)
        version.files  # noqa: B018  (reads the manifest)
        assert len(counted) <= most, (spec, counted)
        assert not [c for c in counted if c.startswith("list")]
    assert reg.get("clf").number == 9999
    counted.clear()
    page = reg.versions("clf", start_after=5000, limit=50)
    assert [v.number for v in page] == list(range(5001, 5051))
    assert len([c for c in counted if c.startswith("list")]) == 1
    assert len(counted) == 51  # one listing page, one read per version shown
