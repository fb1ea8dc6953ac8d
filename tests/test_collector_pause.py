"""What holds during hubcore's public calls: the cyclic garbage collector's full collections held
off (the collector given back as found), the environment read once."""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import hubcore
from hubcore.runcontext import public_call


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def _full_runs() -> bool:
    """Whether the collector makes full collections now (on, and its oldest generation's
    threshold not raised by a pause)."""
    return gc.isenabled() and gc.get_threshold()[2] < 1 << 30


@public_call
def _state() -> bool:
    return _full_runs()


def test_paused_during_the_call_and_on_again_after(collector_on: None) -> None:
    assert _state() is False
    assert _full_runs()


def test_young_collections_go_on_and_thresholds_come_back_as_they_were(
    collector_on: None,
) -> None:
    was = gc.get_threshold()
    gc.set_threshold(500, 7, 9)
    collected: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            collected.append(info["generation"])

    @public_call
    def allocate() -> tuple[int, int, int]:
        gc.callbacks.append(seen)
        try:
            kept = [[n] for n in range(20_000)]  # 40 young collections' worth
            del kept
        finally:
            gc.callbacks.remove(seen)
        return gc.get_threshold()

    try:
        inside = allocate()
        assert inside[:2] == (500, 7)
        assert inside[2] >= 1 << 30
        assert gc.get_threshold() == (500, 7, 9)
        assert 0 in collected  # young collections ran
        assert 2 not in collected  # no full one
    finally:
        gc.set_threshold(*was)


def test_what_a_call_made_is_handed_to_the_oldest_generation(collector_on: None) -> None:
    """The young collections after a call do not walk everything it made: its survivors are
    in the oldest generation, nothing is left frozen, and its cyclic garbage is still found
    by a full collection."""

    @public_call
    def make() -> list[list[object]]:
        kept = [[n] for n in range(50_000)]
        cycle: list[object] = []
        cycle.append(cycle)  # garbage in a cycle, once the call returns
        return kept

    gc.collect()
    kept = make()
    assert gc.get_count()[0] < 1_000  # young: only what was made after the call
    assert gc.get_freeze_count() == 0
    assert any(gc.is_tracked(k) for k in kept[:1])
    assert gc.collect() >= 1  # the cycle


def test_a_programs_own_frozen_objects_stay_frozen(collector_on: None) -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        _state()
        # not unfrozen by the hand-over (a few frozen objects may be freed meanwhile)
        assert gc.get_freeze_count() > frozen - 100
    finally:
        gc.unfreeze()


def test_nested_calls_turn_it_on_only_at_the_outermost_end(collector_on: None) -> None:
    @public_call
    def outer() -> tuple[bool, bool]:
        inner = _state()
        return inner, _full_runs()

    assert outer() == (False, False)
    assert _full_runs()


def test_on_again_after_a_failing_call(collector_on: None) -> None:
    @public_call
    def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError):
        fails()
    assert _full_runs()


def test_a_callers_own_disable_is_left_alone(collector_on: None) -> None:
    gc.disable()
    thresholds = gc.get_threshold()
    try:

        @public_call
        def inside() -> tuple[bool, tuple[int, int, int]]:
            return gc.isenabled(), gc.get_threshold()

        assert inside() == (False, thresholds)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_overlapping_calls_in_threads_turn_it_on_when_the_last_ends(collector_on: None) -> None:
    first_inside = threading.Event()
    release_first = threading.Event()
    seen: list[bool] = []

    @public_call
    def slow() -> None:
        first_inside.set()
        release_first.wait(10)

    @public_call
    def quick() -> None:
        seen.append(_full_runs())

    worker = threading.Thread(target=slow)
    worker.start()
    assert first_inside.wait(10)
    quick()
    assert seen == [False]
    assert not _full_runs()  # the slow call still runs
    release_first.set()
    worker.join(10)
    assert _full_runs()


def test_load_runs_with_the_public_call(collector_on: None, tmp_path: Path, hub_home: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "hubconf.py").write_text(
        "import gc\ndependencies = []\n\ndef probe():\n    return gc.get_threshold()[2]\n"
    )
    assert hubcore.load(str(repo), "probe") >= 1 << 30
    assert hubcore.list(str(repo)) == ["probe"]
    assert _full_runs()


def test_the_environment_is_read_once_per_public_call(
    tmp_path: Path, hub_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside one public call every settings read sees the environment as the call began;
    the next call sees a change."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "hubconf.py").write_text(
        "import os\n"
        "from hubcore import settings\n"
        "dependencies = []\n\n"
        "def probe():\n"
        "    before = settings.current().retries\n"
        "    os.environ['HUBCORE_RETRIES'] = '7'\n"
        "    return before, settings.current().retries\n"
    )
    monkeypatch.setenv("HUBCORE_RETRIES", "3")
    assert hubcore.load(str(repo), "probe") == (3, 3)
    assert hubcore.load(str(repo), "probe") == (7, 7)
    from hubcore import settings

    assert settings.current().retries == 7  # outside any call: read as it is


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_process_forked_during_a_call_starts_with_the_collector_as_it_was(
    collector_on: None,
) -> None:
    @public_call
    def fork_and_report() -> int:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: as a data-loader worker, it never returns through the call
            os.close(read)

            @public_call
            def inner() -> None:
                pass

            inner()  # its own calls keep working
            os.write(write, b"1" if _full_runs() else b"0")
            os._exit(0)
        os.close(write)
        seen = os.read(read, 1)
        os.close(read)
        os.waitpid(pid, 0)
        return int(seen)

    assert fork_and_report() == 1
    assert _full_runs()


def test_the_collector_runs_while_a_transfer_waits(collector_on: None) -> None:
    from hubcore.runcontext import collector_resumed

    @public_call
    def download() -> tuple[bool, bool, bool]:
        before = _full_runs()
        with collector_resumed():
            during = _full_runs()
        return before, during, _full_runs()

    assert download() == (False, True, False)
    assert _full_runs()
    with collector_resumed():  # outside any call: nothing to resume, nothing changed
        assert _full_runs()
    assert _full_runs()


def test_a_resumed_transfer_leaves_a_callers_own_disable_alone(collector_on: None) -> None:
    from hubcore.runcontext import collector_resumed

    gc.disable()
    try:

        @public_call
        def download() -> bool:
            with collector_resumed():
                return gc.isenabled()

        assert download() is False
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_public_call_runs_beneath_a_frame_with_stack_room(tmp_path: Path, hub_home: Path) -> None:
    """The work of a public call, a hubconf's import included, runs beneath the frame that
    reserves stack room (CPython 3.11+ would otherwise map and unmap frame chunks as a deep
    import crosses their edge: see runcontext._with_room)."""
    import sys

    from hubcore import runcontext

    def rooms() -> list[int]:
        frame, found = sys._getframe(), []
        while frame is not None:
            if frame.f_code.co_stacksize >= runcontext._ROOM:
                found.append(frame.f_code.co_stacksize)
            frame = frame.f_back
        return found

    assert rooms() == []
    assert public_call(rooms)() == [runcontext._ROOM]
    (tmp_path / "hubconf.py").write_text(
        "import sys\n"
        "def depth_room():\n"
        "    frame, found = sys._getframe(), 0\n"
        "    while frame is not None:\n"
        "        found += frame.f_code.co_stacksize >= 1 << 14\n"
        "        frame = frame.f_back\n"
        "    return found\n"
    )
    assert hubcore.load(str(tmp_path), "depth_room", trust_repo=True) == 1
