"""Model packages against plain s3fs, on a moto S3 server on loopback, in one run.

Run ``.venv/torch/bin/python bench/packages_s3.py`` (``--mib 1024`` by default; it takes a
minute or more, so it is not in ``bench/run.py``'s default set). A package of ``--mib`` MiB
of float32 weights (numpy example backend, shards of ``--shard-mib``) is generated in a
temporary folder (never shipped), then, each paired with its plain copy:

1. push: ``hubcore.push`` vs ``s3fs.put`` of the same files;
2. cold load: ``hubcore.load(dest, revision=pin)`` into an empty hub home (copy, verify every
   file, build, apply) vs ``s3fs.get`` of the same files;
3. warm load: ``hubcore.load`` again with the package cached, minus building the model and
   applying the same safetensors files directly; and the number of S3 requests it made.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "docs" / "example-plugin")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--shard-mib", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import boto3
    import botocore.endpoint
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
    os.environ["HUBCORE_HOME"] = str(work / "home-0")

    import hubcore
    from hubcore.packages.types import register_model_type
    from hubcore_numpy_example import NumpyBackend, NumpyModel

    @hubcore.model_config("bench-linear")
    class BenchConfig:
        rows: int = 0
        cols: int = 1

    def build(config: BenchConfig) -> NumpyModel:
        model = NumpyModel.__new__(NumpyModel)  # no random init: the weights replace it
        model.params = {
            f"layer{i}": np.zeros((config.rows, config.cols), np.float32) for i in range(4)
        }
        return model

    register_model_type("bench-linear", config=BenchConfig, build=build)
    cols = 8192
    rows = args.mib * (1 << 20) // 4 // 4 // cols
    config = BenchConfig(rows=rows, cols=cols)
    model = build(config)
    rng = np.random.default_rng(0)
    for key in model.params:
        model.params[key] = rng.standard_normal((rows, cols), dtype=np.float32)
    folder = hubcore.save_pretrained(
        model, work / "package", config=config, max_shard_size=args.shard_mib << 20
    )
    files = sorted(p for p in folder.iterdir() if p.is_file())
    total = sum(p.stat().st_size for p in files)
    print(f"package: {total / 2**30:.2f} GiB in {len(files)} files ({folder})")
    fs = fsspec.filesystem("s3")

    def timed(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    rows_out: list[tuple[str, float, float]] = []
    push_h, push_p, load_h, load_p = [], [], [], []
    for i in range(args.repeat):
        plain = f"{bucket}/plain-{i}"
        dest = f"s3://{bucket}/pkg-{i}"
        push_p.append(timed(lambda plain=plain: fs.put([str(p) for p in files], plain + "/")))
        pin_box: list[str] = []
        push_h.append(timed(lambda b=pin_box, d=dest: b.append(hubcore.push(folder, d))))
        target = work / f"plain-get-{i}"
        target.mkdir()
        fs.invalidate_cache()
        load_p.append(
            timed(lambda s=plain, t=target: fs.get([f"{s}/{p.name}" for p in files], f"{t}/"))
        )
        os.environ["HUBCORE_HOME"] = str(work / f"home-{i + 1}")
        loaded: list = []
        load_h.append(
            timed(lambda o=loaded, d=dest, b=pin_box: o.append(hubcore.load(d, revision=b[0])))
        )
        assert all(np.array_equal(loaded[0].params[k], model.params[k]) for k in model.params)
    rows_out.append(("push 1 package", statistics.median(push_h), statistics.median(push_p)))
    rows_out.append(("cold load", statistics.median(load_h), statistics.median(load_p)))

    # warm: the same pinned package from the cache, against building + applying directly
    backend = NumpyBackend()
    weights = [
        hubcore.WeightsFile(p, p.name, "", 0, "") for p in files if p.suffix == ".safetensors"
    ]

    def direct() -> None:
        m = build(config)
        for w in weights:
            backend.apply_weights(m, backend.read_weights(w), strict=False)

    requests: list[int] = []
    original = botocore.endpoint.Endpoint.make_request

    def counting(self, *a, **k):
        requests.append(1)
        return original(self, *a, **k)

    botocore.endpoint.Endpoint.make_request = counting
    warm_h, warm_d = [], []
    for _ in range(max(5, args.repeat)):
        warm_d.append(timed(direct))
        warm_h.append(timed(lambda: hubcore.load(dest, revision=pin_box[0])))
    botocore.endpoint.Endpoint.make_request = original
    server.stop()

    print(f"{'':24}{'hubcore':>10}{'plain s3fs':>12}{'ratio':>8}")
    for name, h, p in rows_out:
        print(f"{name:24}{h:>9.2f}s{p:>11.2f}s{h / p:>8.2f}")
    overhead = (statistics.median(warm_h) - statistics.median(warm_d)) * 1000
    print(
        f"warm load: {statistics.median(warm_h) * 1000:.1f} ms vs direct "
        f"{statistics.median(warm_d) * 1000:.1f} ms: overhead {overhead:.1f} ms, "
        f"{len(requests)} S3 requests"
    )


if __name__ == "__main__":
    main()
