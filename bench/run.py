"""hubcore download and load benchmarks, against the peers, measured in one run.

Run ``make bench`` (or ``.venv/torch/bin/python bench/run.py``). Everything is served from a
loopback HTTP server (tests/fileserver.py: sendfile, Range, optional per-connection
rate cap). Each contender runs in its own process; Python contenders report the time of the
download call itself, curl is timed as a whole process. Results are printed as a table of
ratios and written to bench/results.json.

1. verified download: hubcore vs curl -o, torch.hub.download_url_to_file (hash prefix) and
   MegEngine's download_from_url (megfile copy + md5), when their environments exist;
2. rate-capped server: hubcore's parallel download vs one stream;
3. N processes loading the same cold file: bytes served and wall time, hubcore vs torch.hub's
   load_state_dict_from_url pattern;
4. warm load of a cached, pinned model: overhead over building the model and loading the same
   state dict directly, and the number of requests it made;
5. listing and cold loading a small local repository, whole processes: hubcore against
   torch.hub (bench/list_load.py);
6. a cold git fetch over smart HTTP, whole processes: hubcore against ``git clone --depth 1``
   (bench/git_fetch.py).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the loopback file server lives with hubcore's tests
from tests.fileserver import FileServer  # noqa: E402

MGE_PYTHON = Path(
    os.environ.get(
        "HUBCORE_BENCH_MEGENGINE_PYTHON", ROOT / ".venv" / "megengine" / "bin" / "python"
    )
)
MiB = 1 << 20
SECTIONS = ["verified", "capped", "processes", "warm", "list", "git"]

# Each contender imports what its call needs before the clock starts (torch.hub likewise).
HUBCORE_DOWNLOAD = """
import json, os, sys, time
import hubcore, hubcore.store.downloader, hubcore.plugins
hubcore.plugins.get_plugins()
url, sha = sys.argv[1], sys.argv[2]
t = time.perf_counter()
path = hubcore.download(url, sha256=sha or None, progress=False)
print(json.dumps({"seconds": time.perf_counter() - t, "path": str(path)}))
"""

TORCH_DOWNLOAD = """
import json, os, sys, time
import torch.hub
url, sha, dst = sys.argv[1], sys.argv[2], sys.argv[3]
t = time.perf_counter()
if not os.path.exists(dst):  # what load_state_dict_from_url does before downloading
    torch.hub.download_url_to_file(url, dst, hash_prefix=sha[:8], progress=False)
print(json.dumps({"seconds": time.perf_counter() - t, "path": dst}))
"""

MEGENGINE_DOWNLOAD = """
import json, sys, time, os, contextlib
with contextlib.redirect_stderr(open(os.devnull, "w")):
    from megengine.utils.http_download import download_from_url
url, dst = sys.argv[1], sys.argv[2]
t = time.perf_counter()
with contextlib.redirect_stderr(open(os.devnull, "w")):
    download_from_url(url, dst)
print(json.dumps({"seconds": time.perf_counter() - t, "path": dst}))
"""


def run_python(python: Path | str, code: str, *args: str, env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run(
        [str(python), "-c", code, *args], env=env, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        left = size
        while left:
            block = os.urandom(min(64 * MiB, left))
            digest.update(block)
            fh.write(block)
            left -= len(block)
    return digest.hexdigest()


def fresh_env(home: Path, **extra: str) -> dict[str, str]:
    # the hubs the benchmark makes are its own: trusted, so warm loads can run them
    env = {
        **os.environ,
        "HUBCORE_HOME": str(home),
        "HUBCORE_DISABLE_PROGRESS": "1",
        "HUBCORE_TRUST": "*",
    }
    env.update(extra)
    return env


def drop(path: Path) -> None:
    """Empty *path* and flush dirty pages, so one measurement does not pay for the last."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.sync()


def bench_verified(work: Path, url: str, sha: str, peers: bool, repeats: int) -> dict[str, float]:
    """Median seconds per contender; the contenders take turns, so drift hits all alike."""
    out = work / "out"
    contenders: dict[str, Callable[[], float]] = {}

    def curl() -> float:
        began = time.perf_counter()
        subprocess.run(["curl", "-s", "-o", str(out / "curl.bin"), url], check=True)
        return time.perf_counter() - began

    def hub() -> float:
        env = fresh_env(out / "home")
        return run_python(sys.executable, HUBCORE_DOWNLOAD, url, sha, env=env)["seconds"]

    contenders["curl -o"] = curl
    contenders["hubcore"] = hub
    if peers:
        try:
            import torch  # noqa: F401

            def torch_hub() -> float:
                args = (url, sha, str(out / "t.bin"))
                return run_python(sys.executable, TORCH_DOWNLOAD, *args, env=dict(os.environ))[
                    "seconds"
                ]

            contenders["torch.hub"] = torch_hub
        except ImportError:
            pass
        if MGE_PYTHON.exists():

            def megengine_hub() -> float:
                args = (url, str(out / "m.bin"))
                return run_python(MGE_PYTHON, MEGENGINE_DOWNLOAD, *args, env=dict(os.environ))[
                    "seconds"
                ]

            contenders["megengine.hub"] = megengine_hub
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, measure in contenders.items():
            drop(out)
            times[name].append(measure())
    drop(out)
    return {name: statistics.median(values) for name, values in times.items()}


def bench_capped(work: Path, folder: Path, sha: str, cap: int) -> dict[str, float]:
    server = FileServer(folder, rate_limit=cap).start()
    try:
        url = f"{server.url}/big.bin"
        single = run_python(
            sys.executable,
            HUBCORE_DOWNLOAD,
            url,
            sha,
            env=fresh_env(work / "home-single", HUBCORE_CONNECTIONS="1"),
        )["seconds"]
        parallel = run_python(
            sys.executable, HUBCORE_DOWNLOAD, url, sha, env=fresh_env(work / "home-parallel")
        )["seconds"]
    finally:
        server.stop()
    return {"one stream": single, "parallel (default 8)": parallel}


def bench_processes(
    work: Path, server: FileServer, url: str, sha: str, count: int, repeats: int
) -> dict[str, tuple[float, int]]:
    """Median wall time (and bytes served) of 1 and of *count* processes on a cold file."""
    results: dict[str, tuple[float, int]] = {}

    def timed(
        code: str, python: str, args: list[str], env: dict[str, str], n: int
    ) -> tuple[float, int]:
        server.reset_counters()
        began = time.perf_counter()
        procs = [
            subprocess.Popen([python, "-c", code, *args], env=env, stdout=subprocess.DEVNULL)
            for _ in range(n)
        ]
        for proc in procs:
            if proc.wait() != 0:
                raise RuntimeError("a benchmark process failed")
        return time.perf_counter() - began, server.bytes_sent

    def median_of(make: Callable[[], tuple[float, int]]) -> tuple[float, int]:
        runs = [make() for _ in range(repeats)]
        return statistics.median(r[0] for r in runs), max(r[1] for r in runs)

    def hubcore_run(n: int) -> tuple[float, int]:
        drop(work / "home-procs")
        return timed(
            HUBCORE_DOWNLOAD, sys.executable, [url, sha], fresh_env(work / "home-procs"), n
        )

    results["hubcore, 1 process"] = median_of(lambda: hubcore_run(1))
    results[f"hubcore, {count} processes"] = median_of(lambda: hubcore_run(count))
    try:
        import torch  # noqa: F401
    except ImportError:
        return results

    def torch_run(n: int) -> tuple[float, int]:
        out = work / "torch-cache"
        drop(out)
        args = [url, sha, str(out / "shared.bin")]
        return timed(TORCH_DOWNLOAD, sys.executable, args, dict(os.environ), n)

    results["torch.hub, 1 process"] = median_of(lambda: torch_run(1))
    results[f"torch.hub, {count} processes"] = median_of(lambda: torch_run(count))
    return results


def bench_warm_load(work: Path, repeats: int) -> dict[str, float]:
    """Warm loads of the example hub's tinynet from a pinned archive URL."""
    os.environ["HUBCORE_TRUST"] = "*"  # the benchmark's own hub
    import torch
    from safetensors.torch import load_file

    import hubcore

    hub = ROOT / "examples" / "hub"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in hub.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, f"hub/{path.relative_to(hub)}")
    folder = work / "warm-files"
    drop(folder)
    server = FileServer(folder).start()
    try:
        data = buf.getvalue()
        url = server.add("hub.zip", data)
        ref = f"{url}#sha256={hashlib.sha256(data).hexdigest()}"
        hubcore.set_dir(work / "home-warm")
        model = hubcore.load(ref, "tinynet", pretrained=True, progress=False)  # cold
        server.reset_counters()
        hub_times = []
        for _ in range(repeats):
            t = time.perf_counter()
            hubcore.load(ref, "tinynet", pretrained=True, progress=False)
            hub_times.append(time.perf_counter() - t)
        requests = len(server.log)
        weights = hub / "weights" / "tinynet-c10.safetensors"
        direct_times = []
        for _ in range(repeats):
            t = time.perf_counter()
            direct = type(model)(10)
            direct.load_state_dict(load_file(str(weights)))
            direct_times.append(time.perf_counter() - t)
        assert torch.equal(direct.classifier.weight, model.classifier.weight)
    finally:
        server.stop()
        hubcore.set_dir(None)
    return {
        "hubcore.load (median)": statistics.median(hub_times),
        "direct construct + load_state_dict (median)": statistics.median(direct_times),
        "requests during warm loads": float(requests),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="test file size")
    parser.add_argument("--cap-mb", type=float, default=64, help="per-connection cap (MiB/s)")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--warm-repeats", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    parser.add_argument(
        "--only",
        choices=SECTIONS,
        action="append",
        help="run only these benchmarks (repeatable)",
    )
    parser.add_argument("--no-peers", action="store_true", help="skip torch.hub/MegEngine")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="hubcore-bench-"))
    files = work / "files"
    drop(files)
    size = args.size_mb * MiB
    report: dict[str, object] = {"size_mib": args.size_mb}
    chosen = set(args.only or SECTIONS)
    verified: dict[str, float] = {}
    capped: dict[str, float] = {}
    processes: dict[str, tuple[float, int]] = {}
    warm: dict[str, float] = {}
    listing: dict[str, float] = {}
    fetch: dict[str, Any] = {}
    sha, url, server = "", "", None
    if chosen & {"verified", "capped", "processes"}:
        print(f"creating a {args.size_mb} MiB test file in {work} ...", flush=True)
        sha = make_file(files / "big.bin", size)
        server = FileServer(files).start()
        url = f"{server.url}/big.bin"
    try:
        if "verified" in chosen:
            verified = bench_verified(work, url, sha, not args.no_peers, args.repeats)
            report["verified"] = verified
        if "capped" in chosen:
            capped = report["capped"] = bench_capped(work, files, sha, int(args.cap_mb * MiB))
        if "processes" in chosen and server is not None:
            processes = bench_processes(work, server, url, sha, args.processes, args.repeats)
            report["processes"] = {k: list(v) for k, v in processes.items()}
    finally:
        if server is not None:
            server.stop()
    if "warm" in chosen:
        try:
            warm = report["warm"] = bench_warm_load(work, args.warm_repeats)
        except ImportError:
            pass
    if "list" in chosen and not args.no_peers:
        from bench import list_load

        try:
            import torch  # noqa: F401  (the peer)
        except ImportError:
            pass
        else:
            listing = report["list"] = list_load.run(max(args.repeats, 5))
    if "git" in chosen:
        from bench import git_fetch

        fetch = report["git"] = git_fetch.run(runs=max(args.repeats, 5))

    if verified:
        print(
            f"\n1. verified download of {args.size_mb} MiB (median of {args.repeats}, "
            "ratio to curl)"
        )
    for name, seconds in verified.items():
        rate = size / seconds / MiB
        ratio = seconds / verified["curl -o"]
        print(f"   {name:<16} {seconds:7.2f} s  {rate:7.0f} MiB/s  x{ratio:.2f}")
    if capped:
        print(f"\n2. server capped at {args.cap_mb:g} MiB/s per connection")
        for name, seconds in capped.items():
            print(f"   {name:<22} {seconds:7.2f} s")
        print(f"   speed-up: x{capped['one stream'] / capped['parallel (default 8)']:.2f}")
    if processes:
        print(
            f"\n3. {args.processes} processes, one cold file (median wall time of "
            f"{args.repeats}, bytes served / file size)"
        )
        for name, (seconds, sent) in processes.items():
            print(f"   {name:<26} {seconds:7.2f} s  {sent / size:5.2f}x the file")
        one = processes["hubcore, 1 process"][0]
        many = processes[f"hubcore, {args.processes} processes"][0]
        print(f"   hubcore: {args.processes} processes take x{many / one:.2f} the time of one")
    if warm:
        overhead = (
            warm["hubcore.load (median)"] - warm["direct construct + load_state_dict (median)"]
        )
        print("\n4. warm load of a cached, pinned model")
        for name, value in warm.items():
            shown = f"{value * 1000:.2f} ms" if "requests" not in name else f"{value:.0f}"
            print(f"   {name:<46} {shown}")
        print(f"   overhead: {overhead * 1000:.2f} ms")
        report["warm_overhead_ms"] = overhead * 1000
    if listing:
        from bench import list_load

        print("\n5. listing and cold loading a small local repository (UNet), against torch.hub")
        print("\n".join(list_load.report(listing, max(args.repeats, 5))))
    if fetch:
        from bench import git_fetch

        print("\n6. cold git fetch over smart HTTP, against git clone --depth 1")
        lines = git_fetch.report(fetch, 3176, max(args.repeats, 5))
        print("\n".join("   " + line for line in lines))
    out = ROOT / "bench" / "results.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nresults written to {out.relative_to(ROOT)}")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
