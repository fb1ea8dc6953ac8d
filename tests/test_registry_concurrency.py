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
from typing import Any

import pytest

import hubcore.registry as registry
from hubcore.registry.core import alias_key, collection_key, version_key

from . import test_registry as base

counted = base.counted  # the fixture
make_files = base.make_files
reg_url = base.reg_url  # the fixture: a folder and an S3 bucket


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


BARRIER = """
import os, sys, time
def barrier(folder, me, count, round=0):
    # every process starts the race together (imports done): a file each, then wait for all
    open(os.path.join(folder, f"{round}-{me}"), "w").close()
    deadline = time.time() + 60
    while sum(n.startswith(f"{round}-") for n in os.listdir(folder)) < count:
        if time.time() > deadline:
            sys.exit("the others never came")
        time.sleep(0.002)
"""

SAME = (
    BARRIER
    + """
import hubcore.registry as r
reg = r.open(sys.argv[1])
barrier(sys.argv[3], sys.argv[4], 8)
print(reg.log("clf", {"w.bin": sys.argv[2]}, aliases=[f"by-{sys.argv[4]}"]).number)
"""
)


def test_eight_concurrent_loggers_of_one_content_end_with_one_version(
    reg_url: str, tmp_path: Path
) -> None:
    """Identical content logged by 8 processes at once is one version: each process gets
    it back (its aliases applied to it), and the history records one log."""
    registry.open(reg_url).log("other", make_files(tmp_path / "o", {"x": "1"}))  # marker written
    gate = tmp_path / "gate"
    gate.mkdir()
    files, content = [], os.urandom(4 << 20)  # big enough for the logs to overlap
    for i in range(8):  # separate files, one content: no process reuses another's hash
        path = tmp_path / f"w{i}.bin"
        path.write_bytes(content)
        files.append(path)
    procs = [spawn(SAME, reg_url, str(f), str(gate), str(i)) for i, f in enumerate(files)]
    numbers = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        numbers.append(int(out))
    reg = registry.open(reg_url)
    live = reg.versions("clf")
    assert len(live) == 1, [
        (v.number, v.record.get("deleted")) for v in reg.versions("clf", deleted=True)
    ]
    assert set(numbers) == {live[0].number}
    assert reg.get("clf:latest").number == live[0].number
    assert reg.get(f"clf@sha256:{live[0].digest}").number == live[0].number
    aliases = reg.aliases("clf")
    assert {aliases[f"by-{i}"] for i in range(8)} == {live[0].number}
    assert len([e for e in reg.history("clf") if e["kind"] == "log"]) == 1
    for version in reg.versions("clf", deleted=True):  # numbers taken by the others
        if version.number != live[0].number:
            assert version.record["deleted"]["duplicate_of"] == live[0].number


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


def _assert_aliases_on_live_versions(reg: registry.Registry, name: str) -> None:
    for alias, number in reg.aliases(name).items():
        version = reg.get(f"{name}:v{number}")  # raises if the alias is on a deleted version
        assert reg.get(f"{name}:{alias}").number == version.number


@pytest.mark.parametrize("first", [True, False], ids=["new-alias", "moved-alias"])
@pytest.mark.parametrize("pause", ["after-get", "before-swap"])
def test_a_delete_racing_an_alias_move_never_leaves_the_alias_on_a_deleted_version(
    reg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pause: str, first: bool
) -> None:
    """The mover is stopped where the race bites (after it found the version live, or just
    before its compare-and-swap of the pointer) while another writer deletes the version:
    the move then fails with VersionNotFoundError, and the alias stays where it was."""
    import threading

    reg = registry.open(reg_url)
    for i in range(2):
        reg.log("clf", make_files(tmp_path / f"s{i}", {"w": str(i)}))
    if not first:
        reg.alias("clf:v0", "production")
    mover, deleter = registry.open(reg_url), registry.open(reg_url)
    reached, go = threading.Event(), threading.Event()

    def wait_once() -> None:
        if not reached.is_set():
            reached.set()
            assert go.wait(60)

    if pause == "after-get":
        original = registry.Registry._move_alias

        def paused(self: registry.Registry, *args: Any, **kwargs: Any) -> bool:
            if self is mover:
                wait_once()
            return original(self, *args, **kwargs)

        monkeypatch.setattr(registry.Registry, "_move_alias", paused)
    else:
        key = alias_key("clf", "production")
        for method in ("create", "swap"):
            write = getattr(mover.store, method)

            def paused_write(k: str, *args: Any, _write: Any = write) -> bool:
                if k == key:
                    wait_once()
                return bool(_write(k, *args))

            monkeypatch.setattr(mover.store, method, paused_write)
    outcome: list[BaseException | None] = []

    def move() -> None:
        try:
            mover.alias("clf:v1", "production")
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)
            reached.set()

    thread = threading.Thread(target=move)
    thread.start()
    assert reached.wait(60)
    deleter.delete("clf:v1")
    go.set()
    thread.join(60)
    assert len(outcome) == 1
    assert isinstance(outcome[0], registry.VersionNotFoundError), outcome
    assert reg.aliases("clf").get("production") == (None if first else 0)
    _assert_aliases_on_live_versions(reg, "clf")
    assert not [e for e in reg.history("clf") if e["kind"] == "alias" and e["to"] == 1]


@pytest.mark.parametrize("first", [True, False], ids=["new-alias", "moved-alias"])
def test_a_fenced_move_that_retries_makes_the_delete_look_again(
    reg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: bool
) -> None:
    """The mover pins the version and stops before its pointer swap; the deleter reads the
    record, fences the move, and stops before its tombstone swap while the mover retries
    (its swap failed) and lands. The retry must change the version record, so that the
    tombstone swap fails and the deleter finds the alias: never both done."""
    import threading

    reg = registry.open(reg_url)
    for i in range(2):
        reg.log("clf", make_files(tmp_path / f"s{i}", {"w": str(i)}))
    if not first:
        reg.alias("clf:v0", "production")
    mover, deleter = registry.open(reg_url), registry.open(reg_url)
    pinned, go = threading.Event(), threading.Event()
    pointer, record = alias_key("clf", "production"), version_key("clf", 1)
    for method in ("create", "swap"):
        write = getattr(mover.store, method)

        def paused_write(k: str, *args: Any, _write: Any = write) -> bool:
            if k == pointer and not pinned.is_set():  # pinned, before the pointer swap
                pinned.set()
                assert go.wait(60)
            return bool(_write(k, *args))

        monkeypatch.setattr(mover.store, method, paused_write)
    outcome: dict[str, BaseException | None] = {}

    def move() -> None:
        try:
            mover.alias("clf:v1", "production")
            outcome["move"] = None
        except BaseException as exc:
            outcome["move"] = exc
            pinned.set()

    thread = threading.Thread(target=move)
    real_swap = deleter.store.swap

    def tombstone_swap(k: str, *args: Any) -> bool:
        if k == record and not go.is_set():  # fenced, before the tombstone swap
            go.set()
            thread.join(60)
        return bool(real_swap(k, *args))

    monkeypatch.setattr(deleter.store, "swap", tombstone_swap)
    thread.start()
    assert pinned.wait(60)
    try:
        deleter.delete("clf:v1")
        outcome["delete"] = None
    except BaseException as exc:
        outcome["delete"] = exc
    thread.join(60)
    assert outcome["move"] is None, outcome  # the retry landed ...
    assert isinstance(outcome["delete"], registry.AliasInUseError), outcome  # ... so no delete
    assert reg.aliases("clf")["production"] == 1
    assert reg.get("clf:production").number == 1
    _assert_aliases_on_live_versions(reg, "clf")


def test_a_version_deleted_while_it_is_logged_does_not_become_latest(
    reg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version deleted after its logger took the number and before it moved ``latest``:
    ``latest`` never lands on the tombstone, and the log, which must not return a deleted
    version, logs the content again as the next version."""
    reg = registry.open(reg_url)
    reg.log("clf", make_files(tmp_path / "s0", {"w": "0"}))
    logger, deleter = registry.open(reg_url), registry.open(reg_url)
    original = registry.Registry._advance_latest
    seen: list[int] = []

    def advance(self: registry.Registry, name: str, number: int, digest: str) -> None:
        if self is logger and not seen:
            seen.append(number)
            deleter.delete(f"{name}:v{number}")  # after the number is taken, before latest
            assert reg.aliases("clf")["latest"] == 0
        original(self, name, number, digest)
        if number == 1:  # latest moved onto v1 and straight back, never left there
            assert reg.get("clf:latest").number == 0

    monkeypatch.setattr(registry.Registry, "_advance_latest", advance)
    assert logger.log("clf", make_files(tmp_path / "s1", {"w": "1"})).number == 2
    assert seen == [1]
    assert reg.aliases("clf")["latest"] == 2
    assert reg.get("clf").number == 2
    assert [v.number for v in reg.versions("clf")] == [0, 2]
    assert reg.log("clf", make_files(tmp_path / "s2", {"w": "2"})).number == 3
    assert reg.get("clf").number == 3


RACE = (
    BARRIER
    + """
import hubcore.registry as r
reg = r.open(sys.argv[1])
for i in range(1, int(sys.argv[4]) + 1):
    barrier(sys.argv[2], sys.argv[3], 2, i)
    try:
        if sys.argv[3] == "mover":
            reg.alias(f"clf:v{i}", "production")
        else:
            reg.delete(f"clf:v{i}")
        print(i, "done", flush=True)
    except (r.VersionNotFoundError, r.AliasInUseError) as exc:
        print(i, type(exc).__name__, flush=True)
"""
)


def test_processes_deleting_and_moving_an_alias_at_once(reg_url: str, tmp_path: Path) -> None:
    """Two processes, round after round, one moving ``production`` onto ``v<i>`` and the
    other deleting ``v<i>`` at the same moment: never both (the alias on a deleted version),
    and the alias always on a live version."""
    rounds = 6
    reg = registry.open(reg_url)
    for i in range(rounds + 1):
        reg.log("clf", make_files(tmp_path / f"s{i}", {"w": str(i)}))
    reg.alias("clf:v0", "production")
    gate = tmp_path / "gate"
    gate.mkdir()
    procs = {who: spawn(RACE, reg_url, str(gate), who, str(rounds)) for who in ("mover", "deleter")}
    results = {}
    for who, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        results[who] = dict(line.split() for line in out.splitlines())
    for i in range(1, rounds + 1):
        both = results["mover"][str(i)] == "done" and results["deleter"][str(i)] == "done"
        assert not both, (i, results)
    _assert_aliases_on_live_versions(reg, "clf")


def test_a_duplicate_left_by_a_dead_writer_is_resolved_and_its_alias_kept(
    reg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that took a number for content already logged, and died before claiming the
    digest, left a second live version of it, which someone aliased. The next writer that
    meets it tombstones it as a duplicate and moves the alias to the version kept."""
    reg = registry.open(reg_url)
    weights = make_files(tmp_path / "a", {"w": "same"})
    kept = reg.log("clf", weights)

    class Died(Exception):
        pass

    def die(self: registry.Registry, version: Any, *, repair: bool) -> Any:
        raise Died

    with monkeypatch.context() as patch:  # it checked before v0 existed, then died
        patch.setattr(registry.Registry, "_by_digest", lambda self, name, digest: None)
        patch.setattr(registry.Registry, "_complete", die)
        with pytest.raises(Died):
            registry.open(reg_url).log("clf", weights)
    assert reg.get("clf:v1").digest == kept.digest  # visible meanwhile
    reg.alias("clf:v1", "staging")
    other = reg.log("clf", make_files(tmp_path / "b", {"w": "other"}))
    assert other.number == 2
    duplicate = reg.versions("clf", deleted=True)[1]
    assert duplicate.record["deleted"]["duplicate_of"] == kept.number
    assert reg.aliases("clf") == {"latest": 2, "staging": 0}
    assert [v.number for v in reg.versions("clf")] == [0, 2]
    assert reg.log("clf", weights).number == 0
    _assert_aliases_on_live_versions(reg, "clf")
