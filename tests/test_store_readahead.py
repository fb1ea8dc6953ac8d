"""A streamed copy from S3 reads the next piece while it writes the one before, and stays clean
when either side fails: a stream that breaks mid-way resumes with ranges from the last byte
written, a write that fails stops the read ahead and closes the stream. moto on loopback."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from hubcore import registry
from hubcore.errors import IntegrityError
from hubcore.registry.core import blob_key
from hubcore.store import stores
from hubcore.store.cache import Cache
from hubcore.store.stores import RANGE


@pytest.fixture
def blob(s3_bucket: str) -> tuple[stores.Store, str, bytes]:
    """An object of two and a half pieces on moto, and the store it is read through."""
    import s3fs

    data = os.urandom(2 * RANGE + RANGE // 2)
    s3fs.S3FileSystem().pipe_file(f"{s3_bucket}/big.bin", data)
    opened = stores.open_store(f"s3://{s3_bucket}")
    return opened, f"{s3_bucket}/big.bin", data


def test_the_next_piece_is_read_while_one_is_written(
    blob: tuple[stores.Store, str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fails before the change: the second piece was asked for only once the first was
    written, so reading and writing took turns."""
    from s3fs.core import S3AsyncStreamedFile

    opened, path, data = blob
    second_asked = threading.Event()
    original = S3AsyncStreamedFile.read

    async def read(self: Any, length: int = -1) -> bytes:
        if self.loc >= RANGE:
            second_asked.set()
        return await original(self, length)

    monkeypatch.setattr(S3AsyncStreamedFile, "read", read)
    pieces: list[bytes] = []
    asked_during_write: list[bool] = []

    def write(piece: bytes) -> None:
        if not pieces:  # waits for the read ahead, which comes at once or never
            asked_during_write.append(second_asked.wait(10))
        pieces.append(piece)

    assert stores.copy(opened, path, None, write, "reading big.bin") == len(data)
    assert b"".join(pieces) == data
    assert asked_during_write == [True]


def test_a_failed_write_stops_the_read_ahead_and_closes_the_stream(
    blob: tuple[stores.Store, str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    from s3fs.core import S3AsyncStreamedFile

    opened, path, _ = blob
    closed: list[int] = []
    reads: list[int] = []
    original_read, original_close = S3AsyncStreamedFile.read, S3AsyncStreamedFile.close

    async def read(self: Any, length: int = -1) -> bytes:
        reads.append(self.loc)
        return await original_read(self, length)

    async def close(self: Any) -> None:
        closed.append(self.loc)
        await original_close(self)

    monkeypatch.setattr(S3AsyncStreamedFile, "read", read)
    monkeypatch.setattr(S3AsyncStreamedFile, "close", close)

    def write(piece: bytes) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        stores.copy(opened, path, None, write, "reading big.bin")
    assert len(closed) == 1
    count = len(reads)
    threading.Event().wait(0.5)  # a read ahead left running would go on reading
    assert len(reads) == count
    assert max(reads) <= 2 * RANGE  # at most the piece after the one that failed was asked for


def test_a_registry_blob_whose_stream_breaks_resumes_intact(
    s3_bucket: str, hub_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream breaks while the read ahead gets the third piece: the rest comes in
    ranges from the last byte written, and the blob is verified and stored intact. Fails
    before the fix: a blob of a whole number of pieces asked for one range past its end,
    and the server's 416 failed the download."""
    from s3fs.core import S3AsyncStreamedFile

    data = os.urandom(3 * RANGE)
    (tmp_path / "w.bin").write_bytes(data)
    reg = registry.open(f"s3://{s3_bucket}/registry")
    version = reg.log("clf", {"w.bin": tmp_path / "w.bin"})
    original = S3AsyncStreamedFile.read
    broken: list[int] = []

    async def breaking(self: Any, length: int = -1) -> bytes:
        if self.loc >= 2 * RANGE and not broken:
            broken.append(self.loc)
            raise ConnectionResetError("the connection dropped")
        return await original(self, length)

    monkeypatch.setattr(S3AsyncStreamedFile, "read", breaking)
    cache = Cache(tmp_path / "cache")
    folder = version.download(cache=cache)
    assert broken
    assert (folder / "w.bin").read_bytes() == data
    assert cache.has_blob(hashlib.sha256(data).hexdigest())


def test_a_blob_changed_on_the_server_is_refused_after_a_broken_stream(
    s3_bucket: str, hub_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream that breaks, then ranges that bring other bytes: the typed integrity error,
    and nothing of the blob in the cache (not even its temporary file)."""
    import boto3
    from s3fs.core import S3AsyncStreamedFile

    data = os.urandom(3 * RANGE)
    (tmp_path / "w.bin").write_bytes(data)
    reg = registry.open(f"s3://{s3_bucket}/registry")
    version = reg.log("clf", {"w.bin": tmp_path / "w.bin"})
    sha = version.files[0].sha256
    original = S3AsyncStreamedFile.read
    client = boto3.client("s3")
    changed: list[int] = []

    async def breaking(self: Any, length: int = -1) -> bytes:
        if self.loc >= RANGE and not changed:
            changed.append(self.loc)  # the ranges read the changed object (plain boto3: the
            # registry's own client runs on the loop this coroutine holds)
            client.put_object(
                Bucket=s3_bucket,
                Key=f"registry/{blob_key(sha)}",
                Body=data[: 2 * RANGE] + b"x" * RANGE,
            )
            raise ConnectionResetError("the connection dropped")
        return await original(self, length)

    monkeypatch.setattr(S3AsyncStreamedFile, "read", breaking)
    cache = Cache(tmp_path / "cache")
    with pytest.raises(IntegrityError):
        version.download(cache=cache)
    assert changed
    assert not cache.has_blob(sha)
    assert [p for p in (cache.root / "tmp").rglob("*") if p.is_file()] == []
