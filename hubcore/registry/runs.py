"""Runs and lineage: which run made which version from which inputs.

::

    with reg.run(job_type="train", config={"lr": 0.01}) as run:
        data = run.use("nature_100:latest")          # an input
        ...
        run.log("classifier", "./checkpoint", metadata={"acc": 0.91})   # an output

A run is one object, ``runs/<id>.json``, created with a create-only write and changed by
compare-and-swap: id, job type, name, config, status (``running``, ``finished``, ``failed``),
start and end, user (the registry's actor), host, hubcore version, the git commit of the
working directory (when it is a git checkout), inputs and outputs. Lineage is also indexed
where it is read from: a version logged by a run records the run's id, and a run's use of a
version is an object ``collections/<name>/used/<number>/<run id>.json``, so the graph is walked
with a few reads per node, whatever the number of runs.

A running run renews a lease in its record (a heartbeat from a background thread, every
``heartbeat`` seconds; the lease is :data:`LEASE_FACTOR` heartbeats). A run that raises is
marked failed with the error; a run whose process was killed stops renewing, and the next
read of it (:meth:`Registry.run_info`, :meth:`Registry.lineage`) finds the lease expired and
marks it failed. The lease compares the writer's clock with the reader's: hosts whose clocks
differ by more than a lease see runs fail early or late.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import subprocess
import threading
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from hubcore.registry.errors import RegistryError, VersionNotFoundError
from hubcore.registry.names import encode_name

if TYPE_CHECKING:
    from hubcore.registry.core import Registry, Version

__all__ = ["HEARTBEAT", "LEASE_FACTOR", "Run", "run_key", "used_key"]

#: Seconds between two renewals of a running run's lease.
HEARTBEAT = 30.0
#: A running run whose lease is older than this many heartbeats is taken as dead.
LEASE_FACTOR = 4.0
RUNNING, FINISHED, FAILED = "running", "finished", "failed"


def run_key(run_id: str) -> str:
    """Where run *run_id* is stored."""
    if not run_id or not all(c.isalnum() or c == "-" for c in run_id):
        raise RegistryError(f"{run_id!r} is not a run id")
    return f"runs/{run_id}.json"


def used_key(name: str, number: int, run_id: str) -> str:
    """The index entry saying run *run_id* used version *name* ``v<number>``."""
    return f"collections/{encode_name(name)}/used/{number:010d}/{run_id}.json"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds")


def git_commit(folder: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the git checkout at *folder* (default: the working
    directory), or ``None`` when it is none (or git is missing)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def new_record(
    job_type: str, config: Mapping[str, Any], name: str, heartbeat: float, who: str
) -> dict[str, Any]:
    """The record of a run starting now."""
    from hubcore._version import VERSION

    run_id = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:10]}"
    return {
        "format": 1,
        "id": run_id,
        "job_type": job_type,
        "name": name or run_id,
        "config": dict(config),
        "status": RUNNING,
        "started": _now(),
        "ended": None,
        "user": who,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "hubcore": VERSION,
        "git": git_commit(),
        "heartbeat": heartbeat,
        "lease_until": time.time() + heartbeat * LEASE_FACTOR,
        "inputs": [],
        "outputs": [],
        "error": None,
    }


def expired(record: Mapping[str, Any], now: float | None = None) -> bool:
    """Whether *record* says running but its lease ran out (its process is gone)."""
    now = time.time() if now is None else now
    return record.get("status") == RUNNING and float(record.get("lease_until") or 0) < now


@attrs.define
class Run:
    """A run in progress (see the module docstring); made by :meth:`Registry.run`."""

    registry: Registry
    record: dict[str, Any]
    _stop: threading.Event = attrs.field(factory=threading.Event)
    _beat: threading.Thread | None = None

    @property
    def id(self) -> str:
        """The run's id."""
        return str(self.record["id"])

    def _change(self, change: Any) -> None:
        result = self.registry._update(run_key(self.id), change, what=f"the run {self.id}")
        if result is not None:
            self.record = result[1]

    def use(self, spec: str) -> Version:
        """Record the version *spec* names as an input of this run, and return it."""
        version = self.registry.get(spec)
        entry = {"name": version.name, "version": version.number, "digest": version.digest}
        self.registry.store.create(used_key(version.name, version.number, self.id), b"{}")

        def add(current: dict[str, Any]) -> dict[str, Any] | None:
            if entry in current["inputs"]:
                return None
            return {**current, "inputs": [*current["inputs"], entry]}

        self._change(add)
        return version

    def log(self, name: str, path_or_files: Any = None, **kwargs: Any) -> Version:
        """Log a version as an output of this run (arguments of :meth:`Registry.log`)."""
        version = self.registry.log(name, path_or_files, run=self.id, **kwargs)
        entry = {"name": version.name, "version": version.number, "digest": version.digest}

        def add(current: dict[str, Any]) -> dict[str, Any] | None:
            if entry in current["outputs"]:
                return None
            return {**current, "outputs": [*current["outputs"], entry]}

        self._change(add)
        return version

    def _heartbeat(self) -> None:
        interval = float(self.record["heartbeat"])
        while not self._stop.wait(interval):
            with contextlib.suppress(Exception):  # a missed beat is retried next time

                def renew(current: dict[str, Any]) -> dict[str, Any] | None:
                    if current.get("status") != RUNNING:
                        return None
                    return {**current, "lease_until": time.time() + interval * LEASE_FACTOR}

                self._change(renew)

    def start(self) -> None:
        """Store the record and start renewing its lease."""
        if not self.registry.store.create(run_key(self.id), _dumps(self.record)):
            raise RegistryError(f"a run with id {self.id} exists already")
        self._beat = threading.Thread(target=self._heartbeat, name=f"run-{self.id}", daemon=True)
        self._beat.start()

    def finish(self, error: BaseException | None = None) -> None:
        """Stop the heartbeat and record the end: finished, or failed with *error*."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
        status = FINISHED if error is None else FAILED
        text = None
        if error is not None:
            text = "".join(traceback.format_exception_only(type(error), error)).strip()[:2000]

        def end(current: dict[str, Any]) -> dict[str, Any] | None:
            return {**current, "status": status, "ended": _now(), "error": text}

        self._change(end)


def _dumps(data: Mapping[str, Any]) -> bytes:
    from hubcore.registry.core import _dumps as dumps

    return dumps(data)


@contextlib.contextmanager
def running(
    registry: Registry,
    job_type: str,
    config: Mapping[str, Any] | None,
    name: str,
    heartbeat: float,
) -> Iterator[Run]:
    """The body of :meth:`Registry.run`."""
    from hubcore.registry.core import actor

    if heartbeat <= 0:
        raise RegistryError("a run's heartbeat must be a positive number of seconds")
    registry._mark()
    run = Run(registry, new_record(job_type, config or {}, name, heartbeat, actor()))
    run.start()
    try:
        yield run
    except BaseException as exc:  # KeyboardInterrupt too: the run did not finish
        run.finish(exc)
        raise
    run.finish()


def read(registry: Registry, run_id: str) -> dict[str, Any]:
    """The record of run *run_id*; a running run whose lease expired is marked failed."""
    found = registry._read_json(run_key(run_id))
    if found is None:
        raise VersionNotFoundError(f"no run {run_id} in {registry.store.url}")
    record = found[0]
    if not expired(record):
        return record

    def fail(current: dict[str, Any]) -> dict[str, Any] | None:
        if not expired(current):
            return None
        since = datetime.datetime.fromtimestamp(
            float(current.get("lease_until") or 0), datetime.timezone.utc
        ).isoformat(timespec="seconds")
        return {
            **current,
            "status": FAILED,
            "ended": _now(),
            "error": f"stale: no heartbeat since its lease ran out at {since} (killed or lost)",
        }

    result = registry._update(run_key(run_id), fail, what=f"the run {run_id}")
    if result is not None:
        return result[1]
    again = registry._read_json(run_key(run_id))
    return again[0] if again is not None else record


def users(registry: Registry, name: str, number: int) -> list[str]:
    """The ids of the runs that used version *name* ``v<number>``."""
    prefix = f"collections/{encode_name(name)}/used/{number:010d}"
    return [
        info.key.rpartition("/")[2].removesuffix(".json") for info in registry.store.objects(prefix)
    ]


def all_runs(registry: Registry) -> list[dict[str, Any]]:
    """Every run, oldest first (stale ones marked failed on the way)."""
    return [
        read(registry, info.key.rpartition("/")[2].removesuffix(".json"))
        for info in registry.store.objects("runs")
    ]
