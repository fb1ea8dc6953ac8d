"""What pushing and loading a model package costs: requests made and files hashed.

Counted, never timed: a file of a store comes down in one request, a push right after a save
hashes nothing, and the records that spare the hashing never hide a change.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hubcore
from hubcore.errors import DownloadError
from hubcore.packages import manifest as manifest_module
from hubcore.packages.errors import PackageIntegrityError
from hubcore.packages.files import checked_stat
from hubcore.packages.manifest import MANIFEST
from hubcore.packages.types import _registered, register_model_type
from hubcore.store.stores import RANGE

example = pytest.importorskip("hubcore_numpy_example")


@hubcore.model_config("costs-linear")
class CostsConfig:
    rows: int = 4
    cols: int = 4


def _build(config: CostsConfig) -> Any:
    return example.NumpyModel({"weight": (config.rows, config.cols), "bias": (config.rows,)})


@pytest.fixture
def big(tmp_path: Path):
    """A registered model type and a saved package whose weights span several ranges."""
    register_model_type("costs-linear", config=CostsConfig, build=_build)
    config = CostsConfig(rows=(2 * RANGE + RANGE // 2) // (4 * 256), cols=256)
    model = _build(config)
    folder = hubcore.save_pretrained(model, tmp_path / "pkg", config=config)
    assert (folder / "model.safetensors").stat().st_size > 2 * RANGE
    yield model, folder
    _registered.clear()


def _same(a: Any, b: Any) -> None:
    assert a.params.keys() == b.params.keys()
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)


class _S3Calls:
    """The S3 operations botocore sends while active, by name."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import botocore.endpoint

        self.names: list[str] = []
        original = botocore.endpoint.Endpoint.make_request

        def counting(endpoint: Any, operation: Any, request: Any) -> Any:
            self.names.append(operation.name)
            return original(endpoint, operation, request)

        monkeypatch.setattr(botocore.endpoint.Endpoint, "make_request", counting)


def _hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the package files the manifest checks hash from now on."""
    names: list[str] = []
    original = manifest_module.file_sha256

    def counting(path: Path) -> str:
        if Path(path).name != MANIFEST:
            names.append(Path(path).name)
        return original(path)

    monkeypatch.setattr(manifest_module, "file_sha256", counting)
    return names


# -- requests --------------------------------------------------------------------------------
def test_a_cold_load_from_s3_gets_each_file_in_one_request(
    hub_home, big, s3_bucket, monkeypatch
) -> None:
    """Fails before the fix: each 4 MiB range of a file was a request of its own (and a
    store such as moto reads the whole object for each)."""
    model, folder = big
    dest = f"s3://{s3_bucket}/models/big"
    pin = hubcore.push(folder, dest)
    calls = _S3Calls(monkeypatch)
    _same(hubcore.load(dest, revision=pin), model)
    files = [p for p in folder.iterdir() if p.is_file()]
    assert calls.names.count("GetObject") == len(files)


def test_a_broken_stream_goes_on_with_ranges(hub_home, big, s3_bucket, monkeypatch) -> None:
    """A stream that breaks after its first piece: the rest comes in ranges, intact."""
    from s3fs.core import S3AsyncStreamedFile

    model, folder = big
    dest = f"s3://{s3_bucket}/models/big"
    pin = hubcore.push(folder, dest)
    original = S3AsyncStreamedFile.read
    broken: list[str] = []

    async def breaking(self: Any, length: int = -1) -> bytes:
        if self.path.endswith("model.safetensors") and self.loc >= RANGE:
            broken.append(self.path)
            raise ConnectionResetError("the stream broke")
        return await original(self, length)

    monkeypatch.setattr(S3AsyncStreamedFile, "read", breaking)
    calls = _S3Calls(monkeypatch)
    _same(hubcore.load(dest, revision=pin), model)
    assert broken
    assert calls.names.count("GetObject") > len([p for p in folder.iterdir() if p.is_file()])


def test_a_stalled_stream_is_an_error_naming_the_budget(
    hub_home, big, s3_bucket, monkeypatch
) -> None:
    from s3fs.core import S3AsyncStreamedFile

    _, folder = big
    dest = f"s3://{s3_bucket}/models/big"
    pin = hubcore.push(folder, dest)
    original = S3AsyncStreamedFile.read

    async def stalling(self: Any, length: int = -1) -> bytes:
        if self.path.endswith("model.safetensors"):
            await asyncio.sleep(60)
        return await original(self, length)

    monkeypatch.setattr(S3AsyncStreamedFile, "read", stalling)
    monkeypatch.setenv("HUBCORE_STALL_BUDGET", "1")
    with pytest.raises(DownloadError, match="HUBCORE_STALL_BUDGET"):
        hubcore.load(dest, revision=pin)
    assert not list((hub_home / "repos").rglob("model.safetensors"))


# -- hashing ---------------------------------------------------------------------------------
def test_a_push_right_after_a_save_hashes_nothing(hub_home, big, tmp_path, monkeypatch) -> None:
    """Fails before the fix: push hashed every file save_pretrained had just hashed."""
    _, folder = big
    hashed = _hashed(monkeypatch)
    hubcore.push(folder, (tmp_path / "store").as_uri())
    assert hashed == []
    manifest_module._verified.clear()  # a new process: the record in the cache is enough
    hubcore.push(folder, (tmp_path / "store2").as_uri())
    assert hashed == []


def test_a_file_changed_after_a_save_is_hashed_and_refused(
    hub_home, big, tmp_path, monkeypatch
) -> None:
    _, folder = big
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))  # same size, new stat
    hashed = _hashed(monkeypatch)
    with pytest.raises(PackageIntegrityError, match=r"model\.safetensors"):
        hubcore.push(folder, (tmp_path / "store").as_uri())
    assert hashed == ["model.safetensors"]


def test_an_unchanged_file_is_hashed_again_when_the_manifest_names_another_sha256(
    hub_home, big, tmp_path
) -> None:
    """Fails before the fix: the record of a check kept the stat only, so a manifest edited
    to name another sha256 for an unchanged file was taken without hashing it."""
    _, folder = big
    hubcore.push(folder, (tmp_path / "store").as_uri())
    data = json.loads((folder / MANIFEST).read_text())
    data["files"]["README.md"]["sha256"] = "0" * 64
    (folder / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(PackageIntegrityError, match=r"README\.md"):
        hubcore.push(folder, (tmp_path / "store2").as_uri())


def test_a_warm_load_hashes_nothing_and_a_cold_one_hashes_every_file(
    hub_home, big, tmp_path, monkeypatch
) -> None:
    model, folder = big
    dest = (tmp_path / "store").as_uri()
    pin = hubcore.push(folder, dest)
    hashed = _hashed(monkeypatch)
    _same(hubcore.load(dest, revision=pin), model)
    assert sorted(hashed) == sorted(p.name for p in folder.iterdir() if p.name != MANIFEST)
    hashed.clear()
    _same(hubcore.load(dest, revision=pin), model)
    assert hashed == []


# -- links -----------------------------------------------------------------------------------
@pytest.mark.skipif(os.name == "nt", reason="symbolic links")
def test_a_file_reached_through_a_linked_folder_outside_is_refused(tmp_path) -> None:
    """The shortcut that resolves paths only when a link is on the way still finds a link
    in the middle of the path, and a plain path is taken as it is."""
    root, outside = tmp_path / "pkg", tmp_path / "outside"
    (root / "inner").mkdir(parents=True)
    outside.mkdir()
    (outside / "code.py").write_text("x = 1\n")
    (root / "inner" / "mod.py").write_text("y = 2\n")
    (root / "sub").symlink_to(outside, target_is_directory=True)
    (root / "inner" / "ok.py").symlink_to(root / "inner" / "mod.py")
    with pytest.raises(PackageIntegrityError, match="outside the package"):
        checked_stat(root, "sub/code.py", "pkg", remote=True)
    assert checked_stat(root, "sub/code.py", "pkg", remote=False).st_size == 6
    assert checked_stat(root, "inner/mod.py", "pkg", remote=True).st_size == 6
    assert checked_stat(root, "inner/ok.py", "pkg", remote=True).st_size == 6
    with pytest.raises(PackageIntegrityError, match="outside the package"):
        checked_stat(root / "inner", "../sub/code.py", "pkg", remote=True)
