"""A whole-file upload the S3 server failed with HTTP 500 is made again
(hubcore.store.stores.put_file): uploading a whole file again is safe, and S3 asks clients to
retry "InternalError" (s3fs itself retries only "SlowDown"). Other failures are not retried.
Registry blobs and model-package pushes both upload through it."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from hubcore import settings
from hubcore.registry.store import S3Store
from hubcore.store.stores import Store, put_file


class FlakyFS:
    """put_file fails with the given errors first, then succeeds."""

    def __init__(self, *failures: OSError) -> None:
        self.failures = list(failures)
        self.calls: list[tuple[str, str]] = []

    def put_file(self, local: str, remote: str, **options: object) -> None:
        self.calls.append((local, remote))
        if self.failures:
            raise self.failures.pop(0)


def store(fs: FlakyFS) -> S3Store:
    opened = Store(fs, "bucket/reg", "127.0.0.1:9", "s3 (s3fs)")
    return S3Store(opened, "bucket/reg", url="s3://bucket/reg", identity="s3:bucket/reg")


def server_error() -> OSError:
    return OSError(errno.EREMOTEIO, "Internal Server Error")


def test_an_upload_the_server_failed_is_made_again(tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(b"x")
    fs = FlakyFS(server_error(), server_error())
    store(fs).upload(blob, "blobs/ab/cd")
    assert fs.calls == [(str(blob), "bucket/reg/blobs/ab/cd")] * 3


def test_a_server_that_keeps_failing_fails_after_the_configured_attempts() -> None:
    fs = FlakyFS(*(server_error() for _ in range(10)))
    with settings.overridden(retries=3), pytest.raises(OSError, match="Internal Server Error"):
        put_file(fs, "blob", "bucket/key")
    assert len(fs.calls) == 3


def test_other_failures_are_not_retried() -> None:
    fs = FlakyFS(PermissionError(errno.EACCES, "Access Denied"))
    with pytest.raises(PermissionError):
        put_file(fs, "blob", "bucket/key")
    assert len(fs.calls) == 1
