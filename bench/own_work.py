"""hubcore's own work beneath a cold load: what a load costs beyond the peer's, in one process.

Run ``.venv/torch/bin/python bench/own_work.py``. Each turn starts two fresh interpreters (in
the installation layout of ``bench/installed.py``) that import torch first and then time one
call: ``hubcore.load(REPO, "unet")`` and ``torch.hub.load(REPO, "unet", source="local")`` of
``bench/list_load.py``'s UNet repository. With torch already imported, the two differ only in
the hubs' own work (imports of the hub's modules, plugins, reading and importing
``hubconf.py``); building the model is the same code. ``HUBCORE_BENCH_CODE=<checkout>``
measures another checkout; give several (``os.pathsep``-separated) to compare them in one
sitting, taking turns.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

from installed import installed_python
from list_load import ROOT, make_repo

TIMED = """
import sys, time
import torch
{setup}
began = time.perf_counter()
{call}
print(time.perf_counter() - began)
"""
HUBCORE = TIMED.format(setup="import hubcore", call="hubcore.load(sys.argv[1], 'unet')")
PEER = TIMED.format(setup="", call="torch.hub.load(sys.argv[1], 'unet', source='local')")


def checkouts() -> list[Path]:
    """The checkouts measured: ``HUBCORE_BENCH_CODE`` (one or more), else this one."""
    given = os.environ.get("HUBCORE_BENCH_CODE")
    return [Path(p).resolve() for p in given.split(os.pathsep)] if given else [ROOT]


def code_path(code: Path) -> list[str]:
    return [str(code), str(code / "plugins" / "torch"), str(code / "plugins" / "megengine")]


def timed(python: str, script: str, repo: str, env: dict[str, str]) -> float:
    done = subprocess.run(
        [python, "-c", script, repo],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
    )
    return float(done.stdout.strip().splitlines()[-1])


def run(turns: int) -> dict[str, list[float]]:
    """Milliseconds of the timed call, per contender, over *turns* turns."""
    import compileall

    with tempfile.TemporaryDirectory(prefix="hubcore-bench-own-") as tmp:
        base = Path(tmp)
        env = {
            **os.environ,
            "HUBCORE_HOME": str(base / "home"),
            "HUBCORE_TRUST": "*",
            "HUBCORE_DISABLE_PROGRESS": "1",
            "HUBCORE_BLOCK_PLUGINS": "numpy-example",
            "TORCH_HOME": str(base / "torch-home"),
        }
        env.pop("PYTHONPATH", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's Python caches bytecode
        # each contender its own copy of the repository: the hubs write the hubconf's
        # bytecode each its own way, so a shared folder would be recompiled every turn
        contenders: dict[str, tuple[str, str, str]] = {}
        for i, code in enumerate(checkouts()):
            for folder in (code / "hubcore", code / "plugins"):
                compileall.compile_dir(folder, quiet=1)
            python = installed_python(base / f"python-{i}", code_path(code))
            repo = str(make_repo(base / f"unet-hub-{i}"))
            contenders[f"hubcore.load ({code})"] = (python, HUBCORE, repo)
        contenders["torch.hub.load"] = (python, PEER, str(make_repo(base / "unet-hub-peer")))
        for python, script, repo in contenders.values():  # warm the page cache, the hub home
            timed(python, script, repo, env)
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for turn in range(turns):
            names = list(contenders)
            for name in names if turn % 2 == 0 else reversed(names):
                python, script, repo = contenders[name]
                times[name].append(timed(python, script, repo, env) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=10)
    args = parser.parse_args()
    times = run(args.turns)
    peer = statistics.median(times["torch.hub.load"])
    print(f"median of {args.turns} turns, torch imported first (ms of the call)")
    for name, values in times.items():
        median = statistics.median(values)
        extra = "" if name == "torch.hub.load" else f"   hubcore's own work {median - peer:5.1f}"
        print(f"   {name:<60} {median:6.1f}{extra}")


if __name__ == "__main__":
    main()
