"""Running a call that might hang, in tests of time limits: on a helper thread, with a bound."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import attrs


@attrs.frozen
class Finished:
    """How a bounded call ended: what it raised (``None``: it returned), what it returned,
    and the seconds it took."""

    error: BaseException | None
    value: Any
    seconds: float


def run_bounded(action: Callable[[], Any], seconds: float, why: str = "") -> Finished:
    """Run *action* on a daemon thread; fail the test if it is still running after *seconds*
    (*why* is added to that failure: which limit should have ended it)."""
    outcome: list[tuple[BaseException | None, Any]] = []

    def run() -> None:
        try:
            outcome.append((None, action()))
        except BaseException as exc:
            outcome.append((exc, None))

    began = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    took = time.monotonic() - began
    assert outcome, f"still running after {took:.1f} s{': ' + why if why else ''}"
    error, value = outcome[0]
    return Finished(error, value, took)
