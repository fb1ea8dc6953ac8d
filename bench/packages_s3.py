"""Model packages against plain s3fs, on a moto S3 server on loopback, in one run.

Run ``.venv/torch/bin/python bench/packages_s3.py`` (``--mib 1024`` by default; it takes a
minute or more, so it is not in ``bench/run.py``'s default set). A package of ``--mib`` MiB
of float32 weights (numpy example backend, or ``--framework torch``: four bias-free
``nn.Linear``; shards of ``--shard-mib``) is generated in a
temporary folder (never shipped; it and every copy, about ``(2 + 2 * repeat) * mib`` MiB,
are removed at exit), then, each paired with its plain copy, contenders taking turns going
first and dirty pages flushed before each:

1. push: ``hubcore.push`` vs ``s3fs.put`` of the same files;
2. cold load: ``hubcore.load(dest, revision=pin)`` into an empty hub home (copy, verify every
   file, build, apply) vs ``s3fs.get`` of the same files;
3. warm load: ``hubcore.load`` again with the package cached, minus building the model and
   applying the same safetensors files directly (``backend.read_weights`` and
   ``apply_weights``; for torch, a ``meta`` build, ``load_file`` and
   ``load_state_dict(assign=True)``); and the number of S3 requests it made. Measured in
   this process (the issue's figure; also hubcore's own share, the load outside
   ``build_pretrained``, which is not blurred by the noise of reading 1 GiB) and in a fresh
   process (the first load of a new interpreter, after ``import hubcore``, with the
   ``import fsspec`` it triggers timed apart).

The issue's targets are printed with each figure: push and cold load each within 1.2x of
the plain copy, warm load overhead under 5 ms with zero requests. ``--profile DIR`` writes a
cProfile of each hubcore step (``push.prof``, ``cold.prof``, ``warm.prof``) and prints the
top of each. The machine's load average is printed with the results: figures taken while
other work runs are not comparable.
"""

from __future__ import annotations

import argparse
import atexit
import cProfile
import json
import logging
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "docs" / "example-plugin")]

#: The issue's targets.
MAX_RATIO = 1.2
MAX_WARM_MS = 5.0


def _model_type(framework: str = "numpy") -> tuple[Any, Callable[[Any], Any]]:
    """The bench's config class and build function, registered as ``bench-<framework>``:
    four ``rows x cols`` float32 matrices (numpy example backend) or bias-free
    ``nn.Linear`` layers (PyTorch)."""
    import hubcore
    from hubcore.packages.types import model_types, register_model_type

    name = f"bench-{framework}"
    if name in model_types():
        found = model_types()[name]
        return found.config, found.build

    @hubcore.model_config(name)
    class BenchConfig:
        rows: int = 0
        cols: int = 1

    def build_numpy(config: Any) -> Any:
        import numpy as np

        from hubcore_numpy_example import NumpyModel

        model = NumpyModel.__new__(NumpyModel)  # no random init: the weights replace it
        model.params = {
            f"layer{i}": np.zeros((config.rows, config.cols), np.float32) for i in range(4)
        }
        return model

    def build_torch(config: Any) -> Any:
        from torch import nn

        return nn.Sequential(*(nn.Linear(config.cols, config.rows, bias=False) for _ in range(4)))

    build = build_torch if framework == "torch" else build_numpy
    register_model_type(name, config=BenchConfig, build=build)
    return BenchConfig, build


def _state(model: Any) -> dict[str, Any]:
    """The model's weights by name, as numpy arrays."""
    if hasattr(model, "state_dict") and not hasattr(model, "params"):
        return {k: v.detach().numpy() for k, v in model.state_dict().items()}
    return dict(model.params)


class _Requests:
    """Counts botocore requests while active."""

    def __init__(self) -> None:
        import botocore.endpoint

        self.count = 0
        self._endpoint = botocore.endpoint.Endpoint
        self._original = self._endpoint.make_request

    def __enter__(self) -> _Requests:
        original = self._original

        def counting(endpoint: Any, *a: Any, **k: Any) -> Any:
            self.count += 1
            return original(endpoint, *a, **k)

        self._endpoint.make_request = counting
        return self

    def __exit__(self, *exc: object) -> None:
        self._endpoint.make_request = self._original


def _direct(
    folder: Path, config: Any, build: Callable[[Any], Any], framework: str = "numpy"
) -> Callable[[], Any]:
    """Building the model and applying the package's safetensors files, without hubcore:
    the backend's ``read_weights`` and ``apply_weights`` (numpy example), or what a PyTorch
    user does at best (build on ``meta``, ``safetensors.torch.load_file``,
    ``load_state_dict(assign=True)``)."""
    files = [p for p in sorted(folder.iterdir()) if p.suffix == ".safetensors"]
    if framework == "torch":
        import torch
        from safetensors.torch import load_file

        def direct_torch() -> Any:
            with torch.device("meta"):
                model = build(config)
            state: dict[str, Any] = {}
            for path in files:
                state.update(load_file(path))
            model.load_state_dict(state, assign=True)
            return model

        return direct_torch
    import hubcore
    from hubcore_numpy_example import NumpyBackend

    backend = NumpyBackend()
    weights = [hubcore.WeightsFile(p, p.name, "", 0, "") for p in files]

    def direct() -> Any:
        model = build(config)
        for w in weights:
            backend.apply_weights(model, backend.read_weights(w), strict=False)
        return model

    return direct


def _timed(fn: Callable[[], Any], profile: cProfile.Profile | None = None) -> float:
    """Seconds *fn* takes; what it returns is freed after the clock stops (freeing a
    1 GiB model is not part of loading it)."""
    start = time.perf_counter()
    result = fn() if profile is None else profile.runcall(fn)
    seconds = time.perf_counter() - start
    del result
    return seconds


def _settled() -> None:
    """Flush dirty pages, so that one contender does not pay for the last one's writes."""
    os.sync()


def _load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def warm_child(
    dest: str, pin: str, folder: str, rounds: int, profile: str | None, framework: str
) -> None:
    """In a fresh process: the first warm load (and later ones) against the direct path;
    the first load's cProfile into *profile* when given. ``import fsspec``, which the first
    load of an ``s3://`` reference makes, is timed on its own."""
    import safetensors.numpy  # noqa: F401  (both paths read with it: imported before timing)

    import hubcore

    config_cls, build = _model_type(framework)
    meta = json.loads((Path(folder) / "config.json").read_text())
    config = config_cls(rows=meta["rows"], cols=meta["cols"])
    direct = _direct(Path(folder), config, build, framework)
    with _Requests() as requests:
        first_d = _timed(direct)
        fsspec_import = _timed(lambda: __import__("fsspec"))
        first = cProfile.Profile() if profile else None
        first_h = _timed(lambda: hubcore.load(dest, revision=pin), first)
        if first is not None and profile:
            first.dump_stats(profile)
        later_d, later_h = [], []
        for _ in range(rounds):
            later_d.append(_timed(direct))
            later_h.append(_timed(lambda: hubcore.load(dest, revision=pin)))
    print(
        json.dumps(
            {
                "first_hubcore": first_h,
                "first_direct": first_d,
                "fsspec_import": fsspec_import,
                "hubcore": statistics.median(later_h),
                "direct": statistics.median(later_d),
                "requests": requests.count,
            }
        )
    )


def _profiled(name: str, profile: cProfile.Profile | None, folder: Path | None) -> None:
    if profile is None or folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    profile.dump_stats(str(folder / f"{name}.prof"))
    print(f"--- {name}: top of the cProfile (cumulative), {folder / name}.prof")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--shard-mib", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warm-rounds", type=int, default=9)
    parser.add_argument("--profile", type=Path, help="write cProfile stats into this folder")
    parser.add_argument("--framework", choices=("numpy", "torch"), default="numpy")
    parser.add_argument("--warm-child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    if args.warm_child:
        dest, pin, folder, rounds, profile, framework = args.warm_child
        warm_child(dest, pin, folder, int(rounds), profile or None, framework)
        return

    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    import boto3
    import fsspec
    import numpy as np
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
        HUBCORE_DISABLE_PROGRESS="1",
        HUBCORE_TRUST="*",
    )
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    work = Path(tempfile.mkdtemp(prefix="hubcore-bench-packages-"))
    atexit.register(shutil.rmtree, work, True)  # several GiB: never left behind
    os.environ["HUBCORE_HOME"] = str(work / "home-0")

    import hubcore

    config_cls, build = _model_type(args.framework)
    cols = 8192
    rows = args.mib * (1 << 20) // 4 // 4 // cols
    config = config_cls(rows=rows, cols=cols)
    model = build(config)
    if args.framework == "numpy":
        rng = np.random.default_rng(0)
        for key in model.params:
            model.params[key] = rng.standard_normal((rows, cols), dtype=np.float32)
    expected = _state(model)
    started = time.perf_counter()
    folder = hubcore.save_pretrained(
        model, work / "package", config=config, max_shard_size=args.shard_mib << 20
    )
    saved = time.perf_counter() - started
    files = sorted(p for p in folder.iterdir() if p.is_file())
    total = sum(p.stat().st_size for p in files)
    print(
        f"{args.framework} package: {total / 2**30:.2f} GiB in {len(files)} files, saved in "
        f"{saved:.2f}s"
    )
    fs = fsspec.filesystem("s3")
    profiles = {n: cProfile.Profile() if args.profile else None for n in ("push", "cold", "warm")}

    push_h, push_p, load_h, load_p = [], [], [], []
    pin = ""
    loads = []
    for i in range(args.repeat):  # contenders take turns going first
        loads.append(_load_avg())
        plain = f"{bucket}/plain-{i}"
        dest = f"s3://{bucket}/pkg-{i}"
        box: list[str] = []

        def put(plain: str = plain) -> None:
            _settled()
            push_p.append(_timed(lambda: fs.put([str(p) for p in files], plain + "/")))

        def push(box: list[str] = box, dest: str = dest) -> None:
            _settled()
            push_h.append(_timed(lambda: box.append(hubcore.push(folder, dest)), profiles["push"]))

        for step in (put, push) if i % 2 == 0 else (push, put):
            step()
        pin = box[0]
        target = work / f"plain-get-{i}"
        target.mkdir()
        os.environ["HUBCORE_HOME"] = str(work / f"home-{i + 1}")
        loaded: list[Any] = []

        def get(plain: str = plain, target: Path = target) -> None:
            fs.invalidate_cache()
            _settled()
            load_p.append(
                _timed(lambda: fs.get([f"{plain}/{p.name}" for p in files], f"{target}/"))
            )

        def load(loaded: list[Any] = loaded, dest: str = dest, pin: str = pin) -> None:
            _settled()
            load_h.append(
                _timed(lambda: loaded.append(hubcore.load(dest, revision=pin)), profiles["cold"])
            )

        for step in (get, load) if i % 2 == 0 else (load, get):
            step()
        got = _state(loaded[0])
        assert got.keys() == expected.keys()
        assert all(np.array_equal(got[k], expected[k]) for k in expected)
        del loaded

    # warm: the same pinned package from the cache, against building + applying directly
    direct = _direct(folder, config, build, args.framework)
    warm_h, warm_d, applying = [], [], []
    import hubcore.repo.pretrained as pretrained

    build_pretrained = pretrained.build_pretrained

    def timed_apply(*a: Any, **k: Any) -> Any:  # the building and applying inside a load
        start = time.perf_counter()
        try:
            return build_pretrained(*a, **k)
        finally:
            applying.append(time.perf_counter() - start)

    pretrained.build_pretrained = timed_apply  # type: ignore[assignment]
    with _Requests() as requests:
        for i in range(args.warm_rounds):  # alternating which goes first
            pair = [
                lambda: warm_d.append(_timed(direct)),
                lambda: warm_h.append(
                    _timed(lambda: hubcore.load(dest, revision=pin), profiles["warm"])
                ),
            ]
            for step in pair if i % 2 else reversed(pair):
                step()
    pretrained.build_pretrained = build_pretrained  # type: ignore[assignment]
    own = statistics.median(h - a for h, a in zip(warm_h, applying, strict=True)) * 1000
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--warm-child",
            dest,
            pin,
            str(folder),
            str(args.warm_rounds),
            str(args.profile / "fresh.prof") if args.profile else "",
            args.framework,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    server.stop()
    fresh = json.loads(child.stdout.strip().splitlines()[-1]) if child.returncode == 0 else None
    if fresh is None:
        print(f"fresh-process warm load failed:\n{child.stderr[-2000:]}")

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    push_ratio = statistics.median(push_h) / statistics.median(push_p)
    load_ratio = statistics.median(load_h) / statistics.median(load_p)
    overhead = (statistics.median(warm_h) - statistics.median(warm_d)) * 1000
    print(f"load average during the runs (1/5/15 min): {'; '.join(loads)}; now {_load_avg()}")
    print(f"{'':16}{'hubcore':>10}{'plain s3fs':>12}{'ratio':>8}   target")
    for name, h, p, ratio in (
        ("push", push_h, push_p, push_ratio),
        ("cold load", load_h, load_p, load_ratio),
    ):
        hm, pm = statistics.median(h), statistics.median(p)
        print(
            f"{name:16}{hm:>9.2f}s{pm:>11.2f}s{ratio:>8.2f}   <= {MAX_RATIO}x: "
            f"{verdict(ratio <= MAX_RATIO)}   (runs: hubcore "
            f"{', '.join(f'{x:.2f}' for x in h)}; plain {', '.join(f'{x:.2f}' for x in p)})"
        )
    print(
        f"warm load (same process): {statistics.median(warm_h) * 1000:.1f} ms vs direct "
        f"{statistics.median(warm_d) * 1000:.1f} ms: overhead {overhead:.1f} ms, "
        f"{requests.count} S3 requests   < {MAX_WARM_MS} ms, 0 requests: "
        f"{verdict(overhead < MAX_WARM_MS and requests.count == 0)}"
    )
    print(
        f"  of which hubcore's own work (the load outside building the model and applying "
        f"the files): {own:.2f} ms (median of {args.warm_rounds})"
    )
    if fresh is not None:
        print(
            f"warm load (fresh process): first load {fresh['first_hubcore'] * 1000:.1f} ms vs "
            f"direct {fresh['first_direct'] * 1000:.1f} ms (overhead "
            f"{(fresh['first_hubcore'] - fresh['first_direct']) * 1000:.1f} ms, after "
            f"import fsspec {fresh['fsspec_import'] * 1000:.1f} ms); then "
            f"{(fresh['hubcore'] - fresh['direct']) * 1000:.1f} ms overhead; "
            f"{fresh['requests']} S3 requests"
        )
    for name in profiles:
        _profiled(name, profiles[name], args.profile)
    if args.profile and (args.profile / "fresh.prof").exists():
        print(f"--- fresh-process first warm load: {args.profile / 'fresh.prof'}")
        pstats.Stats(str(args.profile / "fresh.prof")).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
