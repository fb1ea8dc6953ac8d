"""The run context: what holds while one repository's code runs.

:func:`hubcore.load` imports a ``hubconf.py`` and calls an entrypoint; whatever that code does
(apply ``@pretrained`` weights, call ``hubcore.download``, or a framework's own hub functions,
redirected to hubcore) happens inside one :class:`RunContext`. It is the single owner of:

* the repository's root (relative weight paths resolve against it);
* whether its code came from elsewhere (a fetched snapshot) or is the user's own folder;
* the weight hashes of the lock file in force, which :func:`expected_sha256` merges with any
  hash the caller declares, so that every download path honours the lock by construction;
* the weights actually applied, reported by ``hubcore load`` and the loaded event.

It also says whether fetches made now are for a repository you have not trusted
(:func:`fetching_for`), which the HTTP client enforces on every hop, and whether repository
code runs now at all (:func:`repository_code`, read by the framework redirects). All of this
follows repository code into the threads it starts (:func:`carry_into_threads`). And it says
what holds during every public call (:func:`public_call`: the collector's full collections
held off, the environment read once). This module
imports only hubcore's errors and settings, so any layer may read the context.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import gc
import os
import threading
import types
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from hubcore import settings
from hubcore.errors import LockMismatchError
from hubcore.records import Record, field

if TYPE_CHECKING:
    import concurrent.futures

_T = TypeVar("_T")

__all__ = [
    "AppliedWeights",
    "RunContext",
    "carry_into_threads",
    "collector_resumed",
    "current",
    "entered",
    "expected_sha256",
    "fetching_for",
    "in_repository_code",
    "public_addresses_only",
    "public_call",
    "repository_code",
]


class AppliedWeights(Record):
    """One weight file applied to a model: where it came from and what it was."""

    url: str
    sha256: str
    size: int


class RunContext(Record, frozen=False):
    """The facts about the repository whose code is running (see the module docstring)."""

    #: The repository's folder (a cached snapshot or the user's own folder).
    root: Path
    #: How the repository is named in messages (credential-free).
    label: str
    #: True for a fetched snapshot; False for a live local folder (the user's own files).
    remote: bool
    #: Weight URL (as fetched: absolute, credential-free) -> sha256 recorded in the lock file.
    locked: Mapping[str, str] = field(factory=dict)
    #: The lock file those hashes come from, for messages.
    lock_path: str | None = None
    #: Weights applied so far, in order.
    applied: list[AppliedWeights] = field(factory=list)


_current: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar(
    "hubcore_run_context", default=None
)


def current() -> RunContext | None:
    """The context of the repository code running now, or ``None`` outside any."""
    return _current.get()


@contextlib.contextmanager
def entered(context: RunContext) -> Iterator[RunContext]:
    """Make *context* current for the block (nesting restores the outer one)."""
    with _held(_current, context):
        yield context


@contextlib.contextmanager
def _held(variable: contextvars.ContextVar[_T], value: _T) -> Iterator[None]:
    """Set *variable* for the block, restoring it after; threads the block starts keep it."""
    carry_into_threads()
    token = variable.set(value)
    try:
        yield
    finally:
        variable.reset(token)


def expected_sha256(url: str, declared: str | None) -> tuple[str | None, str | None]:
    """The sha256 *url* must have, and the lock file it comes from (``None`` if declared only).

    A hash the caller declares (a hubconf's ``sha256=``, ``--sha256``) and the hash the lock in
    force records must both hold: if they disagree, nothing is fetched and
    :class:`~hubcore.errors.LockMismatchError` names both.
    """
    declared = declared.lower() if declared else None
    context = _current.get()
    locked = context.locked.get(url) if context is not None else None
    if locked is None:
        return declared, None
    lock_path = (context.lock_path if context is not None else None) or "(unnamed)"
    if declared is not None and declared != locked.lower():
        raise LockMismatchError(
            f"conflicting sha256 for {url}: the repository declares {declared} but the lock file "
            f"{lock_path} "
            f"records {locked.lower()}. Both must hold; regenerate the lock with `hubcore lock` "
            "if the publisher's new hash is intended."
        )
    return locked.lower(), lock_path


_public_only: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "hubcore_public_only", default=False
)


@contextlib.contextmanager
def fetching_for(trusted: bool) -> Iterator[None]:
    """Fetch, in this block, on behalf of a repository (``hubcore lock`` and
    ``check --online/--verify`` read its weights without running it). For one you have not
    *trusted*, every HTTP hop, redirects included, must go to a public address
    (:func:`public_addresses_only`), unless ``HUBCORE_ALLOW_PRIVATE_URLS`` is set."""
    with _held(_public_only, not trusted and not settings.current().allow_private_urls):
        yield


def public_addresses_only() -> bool:
    """Whether HTTP requests made now must avoid loopback, private and link-local hosts."""
    return _public_only.get()


_in_repo_code: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "hubcore_in_repository_code", default=False
)


@contextlib.contextmanager
def repository_code() -> Iterator[None]:
    """Mark the block as running repository code (importing a ``hubconf.py``, running an
    entrypoint): the framework redirects send its hub calls to hubcore."""
    with _held(_in_repo_code, True):
        yield


def in_repository_code() -> bool:
    """Whether repository code runs now under hubcore, in this thread or in one it started."""
    return _in_repo_code.get()


# -- threads started by repository code -------------------------------------------------------
#
# The facts above are context variables, and a new thread starts with an empty context, so a
# repository that downloads from a worker thread would escape the lock, the public-address rule
# and the redirects. While one of them is set, a thread started (``threading.Thread.start``) or
# a callable submitted (``ThreadPoolExecutor.submit``) runs in a copy of the starter's context,
# as Python 3.14 does with ``-X thread_inherit_context``. The copy is the starter's facts: two
# loads in two threads each keep their own, a nested load's threads carry the nested context,
# and a thread that outlives its load still carries them (its downloads stay checked against
# the lock). Outside those blocks nothing changes: user threads start as Python starts them.

_hooks_lock = threading.Lock()
_hooks_installed = False


def _carried() -> bool:
    """Whether the caller's context holds anything a thread it starts must keep."""
    return _current.get() is not None or _in_repo_code.get() or _public_only.get()


def carry_into_threads() -> None:
    """Install (once per process) the hooks that make threads started, and callables
    submitted to thread pools, while repository code runs carry its run context."""
    global _hooks_installed
    if _hooks_installed:
        return
    import concurrent.futures.thread as pool_module  # not every command needs it loaded

    with _hooks_lock:
        if _hooks_installed:
            return
        _hook_thread_start(pool_module)
        _hook_pool_submit(pool_module.ThreadPoolExecutor)
        _hooks_installed = True


def _carried_context() -> contextvars.Context:
    """A copy of the caller's context for a thread or a pooled call, which may run after the
    public call that made it has ended: the environment is read afresh there."""
    context = contextvars.copy_context()
    context.run(settings.release_environment)
    return context


def _hook_thread_start(pool_module: types.ModuleType) -> None:
    original: Callable[[threading.Thread], None] = threading.Thread.start
    pool_worker = getattr(pool_module, "_worker", None)

    @functools.wraps(original)
    def start(self: threading.Thread) -> None:
        # A pool's worker serves whoever submits later: its calls carry their own context.
        if _carried() and getattr(self, "_target", None) is not pool_worker:
            run = self.run
            self.run = functools.partial(_carried_context().run, run)  # type: ignore[method-assign]
        original(self)

    threading.Thread.start = start  # type: ignore[method-assign]


def _hook_pool_submit(executor: type[concurrent.futures.Executor]) -> None:
    original: Callable[..., concurrent.futures.Future[Any]] = executor.submit

    @functools.wraps(original)
    def submit(
        self: concurrent.futures.Executor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        if _carried():
            fn = functools.partial(_carried_context().run, fn)
        return original(self, fn, *args, **kwargs)

    executor.submit = submit  # type: ignore[method-assign]


_P = ParamSpec("_P")
_R = TypeVar("_R")
_pause_lock = threading.Lock()
#: Public calls running in this process, transfers among them that let the collector run,
#: and whether the collector was on when the first call began (else it is the caller's).
_pauses = 0
_resumes = 0
_owned = False
#: The collector's thresholds when the pause began (restored when it ends), while it holds.
_thresholds: tuple[int, int, int] | None = None
#: Young collections between two full ones while paused: never, in practice.
_NO_FULL = 1 << 30


def _apply_pause() -> None:
    """Hold off or allow the full collections, from the counts (under the lock)."""
    global _thresholds
    if not _owned:
        return  # the caller's own gc.disable(): left alone
    if _pauses and not _resumes:
        if _thresholds is None:
            _thresholds = gc.get_threshold()
            gc.set_threshold(_thresholds[0], _thresholds[1], _NO_FULL)
    elif _thresholds is not None:
        gc.set_threshold(*_thresholds)
        _thresholds = None


def _age_survivors() -> None:
    """Hand every object the paused calls left in the young generations to the oldest one
    (``gc.freeze()``, then ``gc.unfreeze()``: list splices), where the next full collection
    finds them as it would have: else the first collections after the call walk them all at
    once (docs/benchmarks.md). What a call makes lives on (modules, the model); cyclic garbage
    the young collections did not catch waits for the next full collection (none after a
    cold load of the benchmark's repository, 41 objects after a warm one). A program that
    freezes objects itself (``gc.get_freeze_count()``) keeps its permanent generation as it
    set it: then nothing is handed over."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()


def _after_fork_in_child() -> None:
    """A child forked during a call (a data-loader worker, a pool the entrypoint starts)
    never returns through that call here: it starts with the collector as it was before."""
    global _pause_lock, _pauses, _resumes, _owned, _thresholds
    _pause_lock = threading.Lock()  # another thread may have held it at the fork
    if _thresholds is not None:
        gc.set_threshold(*_thresholds)
    _pauses = _resumes = 0
    _owned = False
    _thresholds = None


os.register_at_fork(after_in_child=_after_fork_in_child)


def _call(call: Callable[[], _R]) -> _R:
    return call()


#: Slots of frame stack :func:`_with_room` reserves: 128 KiB, several times what importing
#: torch reaches beneath a load (pages never touched cost nothing).
_ROOM = 1 << 14


def _with_room(call: Callable[[], _R]) -> _R:
    """Run *call* beneath a frame that takes a stack chunk of its own with as much room again.

    CPython (3.11 and later) keeps Python frames in chunks of 16 KiB, allocated with ``mmap``
    when a call needs more and unmapped as soon as the stack returns below the chunk. An
    import as deep as torch's, run below the frames of a load, crosses such an edge back and
    forth: 700 to 5,000 ``mmap``/``munmap`` pairs and their page faults depending on the depth
    it starts at (4 % of a cold load of a small torch model). This frame's value stack is
    declared large (a bound, never used), so the frame gets a fresh chunk of twice its size,
    and everything beneath it runs in the room left, far from any edge. Earlier Pythons
    allocate each frame on its own: there it only costs one larger allocation per call.
    """
    result: _R = _roomy_call(call)
    return result


_roomy_call: Callable[[Callable[[], Any]], Any] = types.FunctionType(
    _call.__code__.replace(co_stacksize=_ROOM), globals(), "_roomy_call"
)


def public_call(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorate a public call (a load, a listing): what holds for all of its work.

    * Python's cyclic garbage collector makes no full collection during it, except while a
      transfer waits on the network (:func:`collector_resumed`); its young collections go
      on (they are cheap, collect young cycles, and stop tracking the tuples and dicts that
      can hold no cycle while they are still in the processor's caches). After ``import
      torch`` a process holds a few hundred thousand objects, and a full collection walks all
      of them: the allocations of one cold ``hubcore.load`` (imports, parsing ``hubconf.py``)
      triggered full collections costing more than the load itself (90 ms of 180 ms for a
      small model). At the end of the last paused call, what the calls left in the young
      generations is handed to the oldest one (:func:`_age_survivors`), else the first
      collections after the call would walk it all at once and the pause would only defer
      its cost (docs/benchmarks.md, "The collector pause only moves its cost"). The pause
      raises the oldest generation's threshold and then restores the thresholds as they
      were. It is process-wide: calls nest and may run in several threads, and it ends when
      the last of them ends. A collector the caller turned off (``gc.disable()``) is left
      alone; a process forked meanwhile starts with the collector as it was.
    * The environment is read once (:func:`hubcore.settings.environment_held`).
    * It runs with room on the interpreter's frame stack (:func:`_with_room`).
    """

    @functools.wraps(fn)
    def paused(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        global _pauses, _owned
        pid = os.getpid()
        counted = False
        try:
            with _pause_lock:
                if _pauses == 0:
                    _owned = gc.isenabled()
                _pauses += 1
                counted = True
                _apply_pause()
            with settings.environment_held():
                return _with_room(functools.partial(fn, *args, **kwargs))
        finally:
            if counted and os.getpid() == pid:  # a forked child was reset at the fork
                with _pause_lock:
                    _pauses -= 1
                    if _pauses == 0 and _owned:
                        _age_survivors()
                    _apply_pause()
                    if _pauses == 0:
                        _owned = False

    return paused


@contextlib.contextmanager
def collector_resumed() -> Iterator[None]:
    """Let the collector make full collections in this block although a public call holds
    them off: a download or
    fetch that waits on the network for seconds allocates little of its own, and other
    threads of the process (a server, a training loop) keep collecting their cycles."""
    global _resumes
    pid = os.getpid()
    with _pause_lock:
        _resumes += 1
        _apply_pause()
    try:
        yield
    finally:
        if os.getpid() == pid:
            with _pause_lock:
                _resumes -= 1
                _apply_pause()
