"""Logging and downloading a large artifact to and from S3 on loopback: registry against s3fs.

Run ``.venv/torch/bin/python bench/registry_s3.py [--mib 1024]``. A moto S3 server runs on
127.0.0.1 in this process. In the same run, with the same random file, it times:

* ``s3fs.put_file`` of the file, and ``s3fs.get_file`` back (the baseline);
* ``registry.log`` of the file (hashing included) and ``Version.download`` into an empty hub
  home (verification included);
* ``registry.log`` again with nothing changed: the sha256 is reused (size and mtime unchanged),
  and the requests are counted: no upload may happen;
* ``registry.log`` again after ``touch`` (mtime changed, content not): hashed again, still no
  upload.

Prints the ratios registry / s3fs (the target: within 1.2x each) and the request counts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="artifact size in MiB")
    args = parser.parse_args()
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
        HUBCORE_DISABLE_PROGRESS="1",
    )
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
    import s3fs

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["HUBCORE_HOME"] = str(work / "home")
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

        def timed(fn: Any) -> float:
            start = time.perf_counter()
            fn()
            return time.perf_counter() - start

        results: dict[str, Any] = {"mib": args.mib}
        results["s3fs_put_s"] = timed(lambda: fs.put_file(str(source), "bench/plain/model.bin"))
        results["s3fs_get_s"] = timed(lambda: fs.get_file("bench/plain/model.bin", str(work / "g")))
        (work / "g").unlink()
        fs.rm_file("bench/plain/model.bin")

        import hubcore.registry as registry

        reg = registry.open("s3://bench/registry", **options)
        results["registry_log_s"] = timed(lambda: reg.log("big", {"model.bin": source}))
        version = reg.get("big")
        results["registry_download_s"] = timed(lambda: version.download())
        calls.clear()
        results["relog_unchanged_s"] = timed(lambda: reg.log("big", {"model.bin": source}))
        results["relog_unchanged_requests"] = dict(calls)
        os.utime(source)  # content unchanged, mtime changed: hashed again, nothing uploaded
        calls.clear()
        results["relog_touched_s"] = timed(lambda: reg.log("big", {"model.bin": source}))
        results["relog_touched_requests"] = dict(calls)
        results["log_ratio"] = results["registry_log_s"] / results["s3fs_put_s"]
        results["download_ratio"] = results["registry_download_s"] / results["s3fs_get_s"]
        uploads = {"put_object", "upload_part", "create_multipart_upload"}
        results["relog_uploads"] = sum(
            n
            for r in (results["relog_unchanged_requests"], results["relog_touched_requests"])
            for m, n in r.items()
            if m in uploads
        )
    server.stop()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
