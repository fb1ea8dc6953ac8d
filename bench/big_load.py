"""Loading a 1 GiB pretrained PyTorch model, warm: hubcore against torch.hub and the limit.

Run ``.venv/torch/bin/python bench/big_load.py`` (``--repeats 5`` by default). Everything is
generated under a temporary folder, never in the repository: a model of four
``Linear(8192, 8192)`` layers (1 GiB of float32), its weights as one ``.safetensors`` file,
as four safetensors shards and as a ``.pth`` file, a hub folder for hubcore (``@pretrained``)
and one for ``torch.hub`` (``load_state_dict_from_url``, from a ``file://`` URL). Each cache
is filled by one run first, so every measured load is warm. Each load then runs in a fresh
process, timed whole (interpreter start-up and imports included, as a user sees them); its
peak memory is the process's peak resident set (``wait4``), mapped file pages included.
Contenders take turns, so drift hits them all alike; figures are medians.

Contenders:

* ``import torch`` alone (the floor);
* the limit: build on ``meta``, ``safetensors.torch.load_file`` (memory-mapped),
  ``load_state_dict(assign=True)``; and the same over the four shards;
* ``hubcore.load(hub, "big", pretrained=True)`` (the fast path), and with ``fast_load=False``
  (the plain path: initialised, then copied);
* ``hubcore.repo.pretrained.build_pretrained`` over the four shards (what model packages call);
* ``hubcore.load(package)`` of a model package of the same model saved by
  ``hubcore.save_pretrained`` in four shards, its class shipped as code (a local folder:
  manifest read, every file's size checked, the shipped code imported in isolation);
* ``torch.hub.load(hub, "big", source="local", pretrained=True)`` with a ``.pth`` file.

Prints the figures and the ratios the fast-load issue asks for: hubcore within 1.15x of the
limit's wall time and 1.3x of its peak memory, and at least 2x faster than torch.hub.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LAYERS, WIDTH = 4, 8192

BUILD = f"""
import torch
from torch import nn


def build():
    return nn.Sequential(*[nn.Linear({WIDTH}, {WIDTH}) for _ in range({LAYERS})])
"""

HUBCORE_HUBCONF = """
from hubcore import pretrained
from net import build

dependencies = ["torch"]


@pretrained("weights/big.safetensors", sha256={sha!r})
def big():
    '''Four Linear(8192, 8192) layers: 1 GiB of float32.'''
    return build()
"""

PACKAGE_MODEL = f"""
import attrs
import hubcore
from torch import nn


@hubcore.model_config("bench-big")
class BigConfig:
    layers: int = {LAYERS}
    width: int = {WIDTH}


class BigNet(nn.Sequential):
    def __init__(self, config):
        super().__init__(*[nn.Linear(config.width, config.width) for _ in range(config.layers)])
"""

TORCH_HUBCONF = """
import torch
from net import build

dependencies = ["torch"]


def big(pretrained=False):
    model = build()
    if pretrained:
        state = torch.hub.load_state_dict_from_url({url!r}, map_location="cpu", progress=False)
        model.load_state_dict(state)
    return model
"""

SCRIPTS = {
    "import torch": "import torch",
    "limit": """
import sys, torch
from safetensors.torch import load_file
sys.path.insert(0, {hub!r})
from net import build
with torch.device("meta"):
    model = build()
for path in {files!r}:
    model.load_state_dict(load_file(path), strict=False, assign=True)
assert not any(p.is_meta for p in model.parameters())
""",
    "hubcore": """
import hubcore
model = hubcore.load({hub!r}, "big", pretrained=True, fast_load={fast!r})
assert not any(p.is_meta for p in model.parameters())
""",
    "hubcore shards": """
import sys
import torch  # the model's module imports it; a hubconf would too
import hubcore
from hubcore.repo.pretrained import build_pretrained
sys.path.insert(0, {hub!r})
from net import build
files = [hubcore.store.transfer.fetch(url, sha256=sha) for url, sha in {shards!r}]
model = build_pretrained(build, files)
assert not any(p.is_meta for p in model.parameters())
""",
    "hubcore package": """
import hubcore
model = hubcore.load({package!r}, trust_repo=True)
assert not any(p.is_meta for p in model.parameters())
""",
    "torch.hub": """
import torch
model = torch.hub.load({hub!r}, "big", source="local", pretrained=True)
""",
}


def run(code: str, env: dict[str, str]) -> tuple[float, int, float]:
    """Run *code* in a fresh Python; its wall seconds, peak RSS in bytes and CPU seconds
    (user and system: less sensitive than wall time to other work on the machine)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"a contender failed ({proc.returncode}):\n{code}")
    return seconds, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime


def prepare(root: Path, env: dict[str, str]) -> dict[str, str]:
    """Generate the model's files and both hubs under *root*; fill the caches."""
    import torch
    from safetensors.torch import save_file

    from hubcore.store.cache import file_sha256

    sys.path.insert(0, str(root / "hubcore-hub"))
    (root / "hubcore-hub" / "weights").mkdir(parents=True)
    (root / "torch-hub").mkdir()
    (root / "shards").mkdir()
    for hub in ("hubcore-hub", "torch-hub"):
        (root / hub / "net.py").write_text(BUILD)
    namespace: dict[str, object] = {}
    exec(BUILD, namespace)
    torch.manual_seed(0)
    state = namespace["build"]().state_dict()  # type: ignore[operator]
    single = root / "hubcore-hub" / "weights" / "big.safetensors"
    save_file(state, str(single))
    torch.save(state, root / "big.pth")
    shards = []
    for n in range(LAYERS):
        path = root / "shards" / f"model-{n + 1:05d}-of-{LAYERS:05d}.safetensors"
        save_file({k: v for k, v in state.items() if k.startswith(f"{n}.")}, str(path))
        shards.append((path.as_uri(), file_sha256(path)))
    (root / "package-src").mkdir()
    (root / "package-src" / "bench_big_net.py").write_text(PACKAGE_MODEL)
    sys.path.insert(0, str(root / "package-src"))
    from bench_big_net import BigConfig, BigNet  # type: ignore[import-not-found]

    import hubcore

    with torch.device("meta"):
        net = BigNet(BigConfig())
    net.load_state_dict(state, assign=True)
    shard_bytes = (WIDTH * WIDTH + WIDTH) * 4 + 1024  # one layer per shard
    hubcore.save_pretrained(net, root / "package", config=BigConfig(), max_shard_size=shard_bytes)
    del state, net
    sha = file_sha256(single)
    hubconf = HUBCORE_HUBCONF.format(sha=sha)
    (root / "hubcore-hub" / "hubconf.py").write_text(textwrap.dedent(hubconf))
    url = (root / "big.pth").as_uri()
    (root / "torch-hub" / "hubconf.py").write_text(TORCH_HUBCONF.format(url=url))
    values = {
        "hub": str(root / "hubcore-hub"),
        "torch_hub": str(root / "torch-hub"),
        "single": str(single),
        "shards": json.dumps(shards),
        "shard_files": json.dumps([str(p) for p in sorted((root / "shards").iterdir())]),
        "package": str(root / "package"),
    }
    return values


def contenders(v: dict[str, str]) -> dict[str, str]:
    shards = [tuple(s) for s in json.loads(v["shards"])]
    shard_files = json.loads(v["shard_files"])
    return {
        "import torch": SCRIPTS["import torch"],
        "limit": SCRIPTS["limit"].format(hub=v["hub"], files=[v["single"]]),
        "hubcore": SCRIPTS["hubcore"].format(hub=v["hub"], fast=True),
        "hubcore plain path": SCRIPTS["hubcore"].format(hub=v["hub"], fast=False),
        "torch.hub": SCRIPTS["torch.hub"].format(hub=v["torch_hub"]),
        "limit, 4 shards": SCRIPTS["limit"].format(hub=v["hub"], files=shard_files),
        "hubcore, 4 shards": SCRIPTS["hubcore shards"].format(hub=v["hub"], shards=shards),
        "hubcore package, 4 shards": SCRIPTS["hubcore package"].format(package=v["package"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)  # the child's job
    args = parser.parse_args()
    if args.prepare:
        print(json.dumps(prepare(args.prepare, dict(os.environ))))
        return
    with tempfile.TemporaryDirectory(prefix="hubcore-big-load-") as tmp:
        root = Path(tmp)
        paths = [ROOT, *(ROOT / p for p in ("plugins/torch", "plugins/megengine"))]
        paths.append(ROOT / "docs" / "example-plugin")
        env = {
            **os.environ,
            "HUBCORE_HOME": str(root / "hub-home"),
            "HUBCORE_DISABLE_PROGRESS": "1",
            "HUBCORE_BLOCK_PLUGINS": "numpy-example",  # the docs' example: not a user's
            "TORCH_HOME": str(root / "torch-home"),
            "PYTHONPATH": os.pathsep.join([*map(str, paths), os.environ.get("PYTHONPATH", "")]),
        }
        # Generated in a child: a forked contender inherits its parent's peak memory.
        made = subprocess.run(
            [sys.executable, __file__, "--prepare", str(root)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        values = json.loads(made.stdout.strip().splitlines()[-1])
        scripts = contenders(values)
        for code in scripts.values():  # fill every cache once
            run(code, env)
        figures: dict[str, list[tuple[float, int, float]]] = {name: [] for name in scripts}
        for _ in range(args.repeats):
            for name, code in scripts.items():
                figures[name].append(run(code, env))
    medians = {
        name: tuple(statistics.median(run[i] for run in runs) for i in range(3))
        for name, runs in figures.items()
    }
    print(f"| load (warm, whole process, median of {args.repeats}) | wall | peak memory | CPU |")
    print("|---|---|---|---|")
    for name, (seconds, peak, cpu) in medians.items():
        print(f"| {name} | {seconds:.2f} s | {peak / 1e9:.2f} GB | {cpu:.2f} s |")
    ratios = {
        "hubcore / limit, wall": medians["hubcore"][0] / medians["limit"][0],
        "hubcore / limit, peak memory": medians["hubcore"][1] / medians["limit"][1],
        "torch.hub / hubcore, wall": medians["torch.hub"][0] / medians["hubcore"][0],
        "shards: hubcore / limit, wall": medians["hubcore, 4 shards"][0]
        / medians["limit, 4 shards"][0],
        "shards: hubcore / limit, peak memory": medians["hubcore, 4 shards"][1]
        / medians["limit, 4 shards"][1],
        "torch.hub / hubcore 4 shards, wall": medians["torch.hub"][0]
        / medians["hubcore, 4 shards"][0],
        "package: hubcore / limit, wall": medians["hubcore package, 4 shards"][0]
        / medians["limit, 4 shards"][0],
        "package: hubcore / limit, peak memory": medians["hubcore package, 4 shards"][1]
        / medians["limit, 4 shards"][1],
        "torch.hub / hubcore package, wall": medians["torch.hub"][0]
        / medians["hubcore package, 4 shards"][0],
        "hubcore / limit, CPU": medians["hubcore"][2] / medians["limit"][2],
        "torch.hub / hubcore, CPU": medians["torch.hub"][2] / medians["hubcore"][2],
        "shards: hubcore / limit, CPU": medians["hubcore, 4 shards"][2]
        / medians["limit, 4 shards"][2],
    }
    print()
    for name, ratio in ratios.items():
        print(f"{name}: {ratio:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"medians": medians, "ratios": ratios}, indent=2))


if __name__ == "__main__":
    main()
