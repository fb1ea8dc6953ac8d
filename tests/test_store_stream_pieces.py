"""A streamed S3 download copies every byte as few times as it can: the stream is read in
bounded reads (aiohttp buffers twice what a read asks for and joins what it holds), and the
registry's writer hashes and writes the stream's own pieces, never a join of them. Plain
``copy`` callers still get one piece per range. moto on loopback."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from hubcore import registry
from hubcore.registry import store as registry_store
from hubcore.registry.core import blob_key
from hubcore.store import stores
from hubcore.store.cache import Cache


def test_a_stream_is_read_in_bounded_reads(s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails before the change: each read asked for what was left of a 4 MiB piece, so
    aiohttp held up to 8 MiB and joined it into one object per read."""
    import s3fs
    from s3fs.core import S3AsyncStreamedFile

    data = os.urandom(2 * stores.RANGE + 12345)
    s3fs.S3FileSystem().pipe_file(f"{s3_bucket}/big.bin", data)
    opened = stores.open_store(f"s3://{s3_bucket}")
    asked: list[int] = []
    original = S3AsyncStreamedFile.read

    async def read(self: Any, length: int = -1) -> bytes:
        asked.append(length)
        return await original(self, length)

    monkeypatch.setattr(S3AsyncStreamedFile, "read", read)
    got: list[bytes] = []
    assert stores.copy(opened, f"{s3_bucket}/big.bin", None, got.append, "r") == len(data)
    assert b"".join(got) == data
    assert asked
    assert 0 < max(asked) <= 1 << 20


def test_plain_copy_still_writes_one_piece_per_range(s3_bucket: str) -> None:
    """Without ``writelines`` a caller's *write* gets whole ranges (the last one short), as
    callers that charge a cost per call (a slow disk) expect."""
    import s3fs

    data = os.urandom(2 * stores.RANGE + 7)
    s3fs.S3FileSystem().pipe_file(f"{s3_bucket}/big.bin", data)
    opened = stores.open_store(f"s3://{s3_bucket}")
    got: list[bytes] = []
    assert stores.copy(opened, f"{s3_bucket}/big.bin", None, got.append, "r") == len(data)
    assert [len(p) for p in got] == [stores.RANGE, stores.RANGE, 7]
    assert b"".join(got) == data


def test_a_registry_download_hashes_the_streams_own_pieces(
    s3_bucket: str, hub_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fails before the change: each 4 MiB piece was joined from the stream's reads (a copy
    of every byte) before it was hashed and written. Now every object the hash receives is
    one the stream returned, and the blob is still verified and intact."""
    from s3fs.core import S3AsyncStreamedFile

    data = os.urandom(2 * stores.RANGE + 777)
    (tmp_path / "w.bin").write_bytes(data)
    reg = registry.open(f"s3://{s3_bucket}/registry")
    version = reg.log("clf", {"w.bin": tmp_path / "w.bin"})
    returned: list[bytes] = []
    original_read = S3AsyncStreamedFile.read

    async def read(self: Any, length: int = -1) -> bytes:
        out = await original_read(self, length)
        returned.append(out)  # kept alive: ids stay unique
        return out

    hashed: list[bytes] = []
    original_update = registry_store.OverlappedHash.update

    def update(self: Any, item: bytes | list[bytes]) -> None:
        hashed.extend(item if isinstance(item, list) else [item])
        original_update(self, item)

    monkeypatch.setattr(S3AsyncStreamedFile, "read", read)
    monkeypatch.setattr(registry_store.OverlappedHash, "update", update)
    local = tmp_path / "blob"
    digest = reg.store.download(blob_key(hashlib.sha256(data).hexdigest()), local)
    assert digest == hashlib.sha256(data).hexdigest()
    assert local.read_bytes() == data
    ids = {id(piece) for piece in returned}
    assert hashed
    assert all(id(piece) in ids for piece in hashed)
    folder = version.download(cache=Cache(tmp_path / "cache"))
    assert (folder / "w.bin").read_bytes() == data
