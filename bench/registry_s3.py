"""Logging and downloading a large artifact to and from S3 on loopback: registry against s3fs.

Run ``.venv/torch/bin/python bench/registry_s3.py [--mib 1024] [--repeat 3] [--pairs 3]
[--server process|thread] [--dir DIR]`` (about 2 minutes per round for 1 GiB: moto is slow to
take uploads). A moto S3 server runs on 127.0.0.1, by default in a child process (``--server
process``): a real S3 server's CPU is not the client's, and moto's Python in the same process
would compete with the client for the GIL. ``--server thread`` runs it in this process, as the
first versions of this bench did. Both contenders always talk to the same server and write to
the same folder: ``--dir``, else ``/dev/shm`` when it has room (in memory, so that neither
depends on the disk's write-back, which moved single steps by seconds on a shared machine),
else the temporary folder. With the same random file, each registry step is paired with its
plain s3fs copy, the two taking turns going first, dirty pages flushed before each; a round
logs once and downloads ``--pairs`` times:

* ``registry.log`` of the file into a fresh registry (the file's hash not remembered: hashing
  included) against ``s3fs.put_file`` of it;
* ``Version.download`` into an empty cache (each blob hashed as it streams in, verified before
  it is stored) against ``s3fs.get_file`` of the plain copy.

Medians over the rounds give the ratios registry / s3fs (the issue's target: within 1.2x
each). Then, once:

* ``registry.log`` again with nothing changed: the sha256 is reused (size and mtime
  unchanged), and the S3 requests are counted: no upload may happen;
* ``registry.log`` again after ``touch`` (mtime changed, content not): hashed again, still no
  upload.

The machine's load average is printed with the figures: figures taken while other work runs
are not comparable. The download costs one sha256 of the file more than ``get_file`` (the
verification; about 0.75 CPU s per GiB with SHA extensions), run on a helper thread: its wall
time stays near ``get_file``'s only while a core is free for it. So the process CPU seconds of
each step are printed too (they hardly depend on the load), with the sha256 time of the file
alone: download CPU should be about get CPU + sha256. With ``--server process`` the server's
CPU seconds (read from ``/proc``) are printed apart; with ``--server thread`` they are part of
the process's. Raw figures: ``--json FILE``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: The issue's target for log and download against s3fs.
MAX_RATIO = 1.2
UPLOADS = frozenset({"put_object", "upload_part", "create_multipart_upload"})


#: The moto server of ``--server process``: a ThreadedMotoServer, as in this process, that
#: prints its port and serves until its standard input closes.
_CHILD = """
import logging, sys
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of process *pid* so far (every thread)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed(
    fn: Callable[[], Any],
    cpu: list[float] | None = None,
    server_cpu: list[float] | None = None,
    server_pid: int | None = None,
    system: list[float] | None = None,
) -> float:
    """Wall seconds of *fn*; its process CPU seconds (user + system, every thread, the moto
    server's included when it runs in this process) are appended to *cpu*, the server
    process's (if any) to *server_cpu*, the system (kernel) part of the process's to
    *system*."""
    os.sync()  # one contender does not pay for the other's dirty pages
    server_before = _process_cpu(server_pid) if server_pid else 0.0
    before = os.times()
    start = time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    after = os.times()
    if cpu is not None:
        cpu.append(after.user + after.system - before.user - before.system)
    if system is not None:
        system.append(after.system - before.system)
    if server_cpu is not None and server_pid:
        server_cpu.append(_process_cpu(server_pid) - server_before)
    return wall


def _default_dir(mib: int) -> str | None:
    """``/dev/shm`` when it can hold what the bench writes at once (the source, the copy,
    the cache: 4 times the file, with a margin), else the system's temporary folder. In
    memory, neither contender's time depends on the disk's write-back, which on a shared
    machine moved one step by seconds."""
    shm = "/dev/shm"
    try:
        free = shutil.disk_usage(shm).free
    except OSError:
        return None
    return shm if os.access(shm, os.W_OK) and free > 4 * (mib << 20) else None


def _load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="artifact size in MiB")
    parser.add_argument("--repeat", type=int, default=3, help="paired rounds (medians)")
    parser.add_argument(
        "--pairs", type=int, default=3, help="download/get pairs per round (medians over all)"
    )
    parser.add_argument(
        "--dir",
        type=Path,
        help="where both contenders write (default: /dev/shm when it has room, else a "
        "temporary folder)",
    )
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    parser.add_argument(
        "--server",
        choices=("process", "thread"),
        default="process",
        help="run moto in a child process (default) or in this process",
    )
    args = parser.parse_args()
    import boto3

    child: subprocess.Popen[str] | None = None
    server: Any = None
    if args.server == "process":
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None
        endpoint = f"http://127.0.0.1:{int(child.stdout.readline())}"
    else:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
    server_pid = child.pid if child is not None else None
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
        HUBCORE_DISABLE_PROGRESS="1",
    )
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
    import s3fs

    import hubcore.registry as registry
    from hubcore.store.cache import Cache

    where = args.dir or _default_dir(args.mib)
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        work = Path(tmp)
        source = work / "model.bin"
        with open(source, "wb") as fh:
            for _ in range(args.mib):
                fh.write(os.urandom(1 << 20))
        os.utime(source, (time.time() - 10, time.time() - 10))
        # moto takes over a minute to complete a 1 GiB multipart upload; botocore's default
        # 60 s read timeout then retries, and the retry finds moto's parts closed. Both sides
        # use the same patient client (and one connection: moto's threaded server mixes up
        # concurrent parts); the options give one shared s3fs instance.
        options: dict[str, Any] = {
            "max_concurrency": 1,
            "config_kwargs": {"read_timeout": 900, "retries": {"max_attempts": 1}},
        }
        fs = s3fs.S3FileSystem(**options)
        calls: Counter[str] = Counter()
        original = s3fs.S3FileSystem._call_s3

        async def counting(self: Any, method: str, *a: Any, **kw: Any) -> Any:
            calls[method] = calls[method] + 1
            return await original(self, method, *a, **kw)

        s3fs.S3FileSystem._call_s3 = counting  # type: ignore[method-assign]

        runs: dict[str, list[float]] = {"put": [], "log": [], "get": [], "download": []}
        cpus: dict[str, list[float]] = {k: [] for k in runs}
        server_cpus: dict[str, list[float]] = {k: [] for k in runs}
        system_cpus: dict[str, list[float]] = {k: [] for k in runs}
        loads = []
        reg: Any = None
        for i in range(args.repeat):
            loads.append(_load_avg())
            home = work / f"home-{i}"  # nothing remembered: the log hashes, the cache is empty
            os.environ["HUBCORE_HOME"] = str(home)
            plain = f"bench/plain-{i}/model.bin"
            reg = registry.open(f"s3://bench/registry-{i}", **options)
            box: list[Any] = []
            steps = {
                "put": lambda plain=plain: fs.put_file(str(source), plain),
                "log": lambda reg=reg, box=box: box.append(reg.log("big", {"model.bin": source})),
            }
            for step in ("put", "log") if i % 2 == 0 else ("log", "put"):
                runs[step].append(
                    _timed(
                        steps[step], cpus[step], server_cpus[step], server_pid, system_cpus[step]
                    )
                )
            got = work / "got"
            cached = work / "cached"  # an empty cache for each download
            steps = {
                "get": lambda plain=plain, got=got: fs.get_file(plain, str(got)),
                "download": lambda box=box, cached=cached: box[0].download(cache=Cache(cached)),
            }
            size = source.stat().st_size
            for pair in range(args.pairs):
                order = ("get", "download") if (i + pair) % 2 == 0 else ("download", "get")
                for step in order:
                    runs[step].append(
                        _timed(
                            steps[step],
                            cpus[step],
                            server_cpus[step],
                            server_pid,
                            system_cpus[step],
                        )
                    )
                    # each step's copy goes before the next step: both start with as much
                    # free memory (the second of a pair otherwise paid for the first's pages)
                    if step == "get":
                        assert got.stat().st_size == size
                        got.unlink()
                    else:
                        folder = box[0].download(cache=Cache(cached))  # cached: no request
                        assert (folder / "model.bin").stat().st_size == size
                        shutil.rmtree(cached)
            fs.rm_file(plain)  # moto keeps every object: one copy at a time
            if i < args.repeat - 1:
                for info in reg.store.objects("blobs"):
                    reg.store.delete(info.key)
                shutil.rmtree(home)

        digest = hashlib.sha256()

        def hash_file() -> None:
            with open(source, "rb") as fh:
                while data := fh.read(8 << 20):
                    digest.update(data)

        sha256_s = _timed(hash_file)  # the verification the download adds, alone
        # the last round's registry, file-hash record and cache stay for the re-logs
        calls.clear()
        relog_unchanged = _timed(lambda: reg.log("big", {"model.bin": source}))
        unchanged_requests = dict(calls)
        os.utime(source)  # content unchanged, mtime changed: hashed again, nothing uploaded
        calls.clear()
        relog_touched = _timed(lambda: reg.log("big", {"model.bin": source}))
        touched_requests = dict(calls)
    if child is not None:
        child.communicate("")  # its standard input closes: it stops
    else:
        server.stop()

    medians = {k: statistics.median(v) for k, v in runs.items()}
    cpu_medians = {k: statistics.median(v) for k, v in cpus.items()}
    server_medians = {k: statistics.median(v) for k, v in server_cpus.items() if v}
    log_ratio = medians["log"] / medians["put"]
    download_ratio = medians["download"] / medians["get"]
    uploads = sum(
        n for r in (unchanged_requests, touched_requests) for m, n in r.items() if m in UPLOADS
    )
    print(
        f"{args.mib} MiB, {args.repeat} rounds ({args.pairs} download/get pairs each), medians; "
        f"moto server in a {args.server}; files in {where or tempfile.gettempdir()}"
    )
    print(f"load average (1/5/15 min) before each round: {'; '.join(loads)}; now {_load_avg()}")
    for label, mine, theirs, ratio in (
        ("log / s3fs put", "log", "put", log_ratio),
        ("download / s3fs get", "download", "get", download_ratio),
    ):
        met = "yes" if ratio <= MAX_RATIO else "NO"
        print(
            f"{label}: {ratio:.2f}x ({medians[mine]:.2f} s / {medians[theirs]:.2f} s; runs "
            f"{[round(x, 2) for x in runs[mine]]} / {[round(x, 2) for x in runs[theirs]]}); "
            f"target at most {MAX_RATIO}x: {met}"
        )
    print(
        f"process CPU s (medians): put {cpu_medians['put']:.2f}, log {cpu_medians['log']:.2f}, "
        f"get {cpu_medians['get']:.2f}, download {cpu_medians['download']:.2f} "
        f"({cpu_medians['download'] / cpu_medians['get']:.2f}x get); sha256 of the file alone "
        f"{sha256_s:.2f} s (download CPU - get CPU: "
        f"{cpu_medians['download'] - cpu_medians['get']:.2f} s)"
    )
    print(
        "process CPU s per step, get / download (system part): "
        + "; ".join(
            f"{g:.2f} ({gs:.2f}) / {d:.2f} ({ds:.2f})"
            for g, gs, d, ds in zip(
                cpus["get"],
                system_cpus["get"],
                cpus["download"],
                system_cpus["download"],
                strict=True,
            )
        )
    )
    if server_medians:
        both = {k: cpu_medians[k] + server_medians[k] for k in ("get", "download")}
        print(
            f"server process CPU s (medians): put {server_medians['put']:.2f}, log "
            f"{server_medians['log']:.2f}, get {server_medians['get']:.2f}, download "
            f"{server_medians['download']:.2f}; client + server: get {both['get']:.2f}, "
            f"download {both['download']:.2f} ({both['download'] / both['get']:.2f}x)"
        )
    print(f"re-log, unchanged: {relog_unchanged:.3f} s, requests {unchanged_requests}")
    print(f"re-log, touched (hashed again): {relog_touched:.3f} s, requests {touched_requests}")
    print(f"uploads by the re-logs: {uploads} (target 0: {'yes' if uploads == 0 else 'NO'})")
    if args.json:
        results = {
            "mib": args.mib,
            "runs": runs,
            "medians": medians,
            "cpu": cpus,
            "cpu_medians": cpu_medians,
            "server": args.server,
            "server_cpu": server_cpus,
            "system_cpu": system_cpus,
            "sha256_s": sha256_s,
            "log_ratio": log_ratio,
            "download_ratio": download_ratio,
            "relog_unchanged_s": relog_unchanged,
            "relog_unchanged_requests": unchanged_requests,
            "relog_touched_s": relog_touched,
            "relog_touched_requests": touched_requests,
            "relog_uploads": uploads,
            "load_average": loads,
        }
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
