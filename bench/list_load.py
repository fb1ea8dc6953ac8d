"""Listing and cold loading a small local repository: hubcore against torch.hub, whole processes.

Run ``.venv/torch/bin/python bench/list_load.py`` (or ``bench/run.py --only list``). A
generated repository holds a UNet-style model (``unet``, built with ``pretrained=False``, so no
weights are involved). In the same run, each contender is a fresh interpreter, timed as a whole
process (start-up and imports included, as a user sees it), taking turns:

* ``hubcore list REPO`` against ``torch.hub.list`` of the same files in torch.hub's cache
  (torch.hub lists only GitHub repositories: ``owner/repo:main`` already in ``TORCH_HOME``,
  which torch.hub reads without any request);
* ``hubcore.load(REPO, "unet")`` against ``torch.hub.load(REPO, "unet", source="local")``;
* the same loads followed by 100,000 allocations, the start of any work after a load: a load
  that leaves the cyclic collector work to do (hubcore's collector pause does) pays it there.

Targets (issue 12): the listing at least 10x faster than torch.hub's and under 0.1 s; the cold
load no slower than torch.hub's. Each ratio is the median over the turns of one turn's pair
(hubcore's process and the peer's, back to back, each going first in every other turn), so a
slow minute of the machine weighs on both sides of a ratio rather than on one contender's
median. hubcore's modules are
byte-compiled first, as an installation does (torch's are), and every contender runs in an
environment laid out as an installation (``bench/installed.py``: no editable-install finders).
hubcore remembers its scan of the installed plugins in the hub home: the first run in a fresh
home pays for that scan, and is reported on its own line.

``HUBCORE_BENCH_CODE=<another checkout>`` measures that checkout's hubcore (and plugins) instead,
for a before/after table in one sitting.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import statistics
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

from installed import installed_python

ROOT = Path(__file__).resolve().parents[1]
#: The checkout whose hubcore is measured (another commit's, for a before/after table).
CODE = Path(os.environ.get("HUBCORE_BENCH_CODE", ROOT)).resolve()
CODE_PATH = [str(CODE), str(CODE / "plugins" / "torch"), str(CODE / "plugins" / "megengine")]

HUBCONF = '''
"""A small UNet, as segmentation repositories publish it."""

dependencies = ["torch"]

import torch
from torch import nn


class DoubleConv(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    def __init__(self, channels=3, classes=2, width=16, depth=4):
        super().__init__()
        widths = [width * 2**i for i in range(depth + 1)]
        self.first = DoubleConv(channels, widths[0])
        self.down = nn.ModuleList(DoubleConv(a, b) for a, b in zip(widths, widths[1:]))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(b, a, 2, stride=2) for a, b in zip(widths, widths[1:])
        )
        self.merge = nn.ModuleList(DoubleConv(2 * a, a) for a in widths[:-1])
        self.last = nn.Conv2d(widths[0], classes, 1)

    def forward(self, x):
        skips = [self.first(x)]
        for block in self.down:
            skips.append(block(nn.functional.max_pool2d(skips[-1], 2)))
        x = skips.pop()
        for up, merge in zip(reversed(self.up), reversed(self.merge)):
            x = merge(torch.cat([skips.pop(), up(x)], dim=1))
        return self.last(x)


def unet(pretrained=False, **kwargs):
    """UNet for semantic segmentation (no pretrained weights in this benchmark)."""
    if pretrained:
        raise ValueError("this benchmark repository has no weights")
    return UNet(**kwargs)
'''

HUBCORE_LIST = "import sys; from hubcore.cli import main; sys.exit(main())"
TORCH_LIST = (
    "import sys, torch.hub; print(torch.hub.list(sys.argv[1], trust_repo=True, verbose=False))"
)
#: what torch.hub's cache calls the repository ``bench/unet-hub:main``
TORCH_CACHED = ("bench/unet-hub:main", "bench_unet-hub_main")
HUBCORE_LOAD = "import sys, hubcore; print(type(hubcore.load(sys.argv[1], 'unet')).__name__)"
TORCH_LOAD = (
    "import sys, torch; print(type(torch.hub.load(sys.argv[1], 'unet', source='local')).__name__)"
)
#: After the load, what any work does first: allocate. 100,000 kept objects run the collections
#: a load may leave due (Python's collector is process-wide), so their cost is counted too.
THEN_WORK = "; kept = [[n] for n in range(100_000)]"


def make_repo(folder: Path) -> Path:
    """The benchmark repository: a hubconf.py with one UNet entrypoint."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hubconf.py").write_text(textwrap.dedent(HUBCONF).lstrip())
    return folder


def byte_compile() -> None:
    """Write hubcore's .pyc files, as installing it would (an editable checkout has none)."""
    for folder in (CODE / "hubcore", CODE / "plugins", CODE / "docs" / "example-plugin"):
        compileall.compile_dir(folder, quiet=1)


def whole_process(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds one process takes from start to exit (it must succeed), and the CPU
    seconds it used (user + system): on a machine shared with other work, CPU time is what
    the process costs, and close to its wall time on an idle machine."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    # in a neutral folder: ``python -c`` puts the working folder first on sys.path
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - began
    now = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (now.ru_utime - used.ru_utime) + (now.ru_stime - used.ru_stime)


#: The ratios the targets are about: hubcore's contender, the peer's.
PAIRS = (
    ("hubcore list", "torch.hub.list"),
    ("hubcore.load (cold)", "torch.hub.load (cold)"),
    ("hubcore.load, then work", "torch.hub.load, then work"),
)


def run(runs: int = 7) -> dict[str, float]:
    """Median wall and CPU seconds of each contender over *runs* turns (``NAME`` and
    ``NAME, cpu``), plus the first hubcore listing in a fresh hub home."""
    byte_compile()
    with tempfile.TemporaryDirectory(prefix="hubcore-bench-list-") as tmp:
        base = Path(tmp)
        repo = str(make_repo(base / "unet-hub"))
        # the peer's own copy: each hub writes the hubconf's bytecode its own way (hubcore
        # with the source's nanosecond time), so one folder would be recompiled every turn
        peer_repo = str(make_repo(base / "unet-hub-peer"))
        make_repo(base / "torch-home" / "hub" / TORCH_CACHED[1])
        env = {
            **os.environ,
            "HUBCORE_HOME": str(base / "home"),
            "HUBCORE_TRUST": "*",
            "HUBCORE_DISABLE_PROGRESS": "1",
            "HUBCORE_BLOCK_PLUGINS": "numpy-example",  # the docs' example: not a user's
            "TORCH_HOME": str(base / "torch-home"),
        }
        env.pop("PYTHONPATH", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's Python caches bytecode
        py = installed_python(base / "python", CODE_PATH)
        contenders = {
            "hubcore list": [py, "-c", HUBCORE_LIST, "list", repo],
            "torch.hub.list": [py, "-c", TORCH_LIST, TORCH_CACHED[0]],
            "hubcore.load (cold)": [py, "-c", HUBCORE_LOAD, repo],
            "torch.hub.load (cold)": [py, "-c", TORCH_LOAD, peer_repo],
            "hubcore.load, then work": [py, "-c", HUBCORE_LOAD + THEN_WORK, repo],
            "torch.hub.load, then work": [py, "-c", TORCH_LOAD + THEN_WORK, peer_repo],
        }
        first, first_cpu = whole_process(contenders["hubcore list"], env)  # scans plugins
        for argv in contenders.values():  # warm the page cache for every contender alike
            whole_process(argv, env)
        times: dict[str, list[float]] = {}
        for turn in range(runs):
            for pair in PAIRS:  # back to back; who goes first alternates between turns
                for name in pair if turn % 2 == 0 else reversed(pair):
                    wall, cpu = whole_process(contenders[name], env)
                    times.setdefault(name, []).append(wall)
                    times.setdefault(f"{name}, cpu", []).append(cpu)
    result = {name: statistics.median(values) for name, values in times.items()}
    for ours, peer in PAIRS:  # each turn's pair ran back to back: drift hits both alike
        for suffix in ("", ", cpu"):
            ratios = [
                a / b for a, b in zip(times[ours + suffix], times[peer + suffix], strict=True)
            ]
            result[f"{ours} / {peer}, paired{suffix}"] = statistics.median(ratios)
    result["hubcore list, first run in a fresh hub home"] = first
    result["hubcore list, first run in a fresh hub home, cpu"] = first_cpu
    return result


def report(result: dict[str, float], runs: int) -> list[str]:
    """The printed lines: wall and CPU seconds, and the ratios the targets are about."""
    lines = [f"median of {runs} runs, whole processes{'':14}wall s     cpu s"]
    for name, wall in result.items():
        if not name.endswith((", cpu", ", paired")):
            lines.append(f"   {name:<46} {wall:7.3f}   {result[name + ', cpu']:7.3f}")
    for kind, suffix in (("wall", ""), ("cpu", ", cpu")):
        listing, loading, working = (
            result[f"{ours} / {peer}, paired{suffix}"] for ours, peer in PAIRS
        )
        hub_list = result["hubcore list" + suffix]
        lines.append(
            f"   {kind}: list torch.hub / hubcore x{1 / listing:.1f} (target >= 10), hubcore "
            f"list {hub_list * 1000:.0f} ms (target < 100 ms); cold load hubcore / torch.hub "
            f"x{loading:.3f}, then work x{working:.3f} (target <= 1.00)"
        )
    return lines


def main() -> None:
    """Run the benchmark and print (and optionally write) the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    print(f"hubcore measured: {CODE}")
    result = run(args.runs)
    print("\n".join(report(result, args.runs)))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
