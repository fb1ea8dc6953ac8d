"""Model packages with the docs' numpy example backend: save, push, load from each source."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import hubcore
from hubcore.errors import LockMismatchError, NoBackendError, UntrustedRepoError
from hubcore.packages.errors import (
    ConfigValueError,
    IncompletePackageError,
    PackageIntegrityError,
    UnknownModelTypeError,
)
from hubcore.packages.manifest import MANIFEST
from hubcore.packages.types import _registered

example = pytest.importorskip("hubcore_numpy_example")

from .gitserver import BareRepo, GitHostServer  # noqa: E402

#: A model module outside any installed distribution: its code is shipped with the package.
TINY = """
import attrs
import hubcore
from hubcore_numpy_example import NumpyModel

import tiny_helpers


@hubcore.model_config("tiny-numpy")
class TinyConfig:
    features: int = attrs.field(default=3, validator=attrs.validators.gt(0))
    inputs: int = 4
    label: str = "tiny"


class Tiny(NumpyModel):
    def __init__(self, config):
        tiny_helpers.mark()
        super().__init__({"weight": (config.features, config.inputs), "bias": (config.features,)})
"""
HELPERS = """
import os


def mark():
    marker = os.environ.get("TINY_MARKER")
    if marker:
        open(marker, "a").write("ran\\n")
"""


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The module ``tiny_models`` (with its helper), importable from a folder of its own."""
    src = tmp_path / "model-src"
    src.mkdir()
    (src / "tiny_models.py").write_text(textwrap.dedent(TINY))
    (src / "tiny_helpers.py").write_text(textwrap.dedent(HELPERS))
    monkeypatch.syspath_prepend(str(src))
    marker = tmp_path / "marker.txt"
    monkeypatch.setenv("TINY_MARKER", str(marker))
    import tiny_models

    yield tiny_models, marker
    for name in ("tiny_models", "tiny_helpers"):
        sys.modules.pop(name, None)
    _registered.clear()


def trained(tiny_models, seed: int = 7):
    model = tiny_models.Tiny(tiny_models.TinyConfig())
    rng = np.random.default_rng(seed)
    model.params = {
        k: rng.standard_normal(v.shape).astype(np.float32) for k, v in model.params.items()
    }
    return model


def same(a, b) -> None:
    x = np.arange(4, dtype=np.float32)
    assert a(x).tobytes() == b(x).tobytes()
    assert a.params.keys() == b.params.keys()


def test_save_writes_config_weights_code_card_and_manifest(hub_home, tiny, tmp_path) -> None:
    tiny_models, _ = tiny
    model = trained(tiny_models)
    folder = hubcore.save_pretrained(model, tmp_path / "pkg", config=tiny_models.TinyConfig())
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(
        [
            "config.json",
            "model.safetensors",
            "README.md",
            MANIFEST,
            "tiny_models.py",
            "tiny_helpers.py",
        ]
    )
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "tiny-numpy"
    assert config["features"] == 3
    assert config["hubcore"]["framework"] == "numpy-example"
    assert config["hubcore"]["build"] == "tiny_models:Tiny"
    assert config["hubcore"]["code"] == ["tiny_helpers.py", "tiny_models.py"]
    card = (folder / "README.md").read_text()
    assert card.startswith("---\ntitle:")
    assert "hubcore.load(" in card
    manifest = json.loads((folder / MANIFEST).read_text())["files"]
    assert sorted(manifest) == sorted(n for n in names if n != MANIFEST)
    from safetensors.numpy import load_file  # the library reads what the core wrote

    stored = load_file(str(folder / "model.safetensors"))
    np.testing.assert_array_equal(stored["weight"], model.params["weight"])


def test_local_folder_round_trip_and_help_runs_nothing(hub_home, tiny, tmp_path) -> None:
    tiny_models, marker = tiny
    model = trained(tiny_models)
    folder = hubcore.save_pretrained(model, tmp_path / "pkg", config=tiny_models.TinyConfig())
    marker.unlink(missing_ok=True)
    text = hubcore.help(str(folder))
    assert "model type: tiny-numpy" in text
    assert "model.safetensors" in text
    assert "features = 3" in text
    assert "title:" in text
    assert not marker.exists()
    same(hubcore.load(str(folder)), model)


def test_sharded_package_has_an_index_and_loads(hub_home, tiny, tmp_path) -> None:
    tiny_models, _ = tiny
    model = trained(tiny_models)
    folder = hubcore.save_pretrained(
        model, tmp_path / "pkg", config=tiny_models.TinyConfig(), max_shard_size=40
    )
    shards = sorted(p.name for p in folder.glob("model-*.safetensors"))
    assert shards == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == set(shards)
    assert not (folder / "model.safetensors").exists()
    same(hubcore.from_pretrained(str(folder)), model)


def test_registered_type_needs_no_code(hub_home, tiny, tmp_path) -> None:
    tiny_models, _ = tiny
    hubcore.register_model_type("tiny-numpy", config=tiny_models.TinyConfig, build=tiny_models.Tiny)
    model = trained(tiny_models)
    folder = hubcore.save_pretrained(model, tmp_path / "pkg", config=tiny_models.TinyConfig())
    assert not list(folder.glob("*.py"))
    assert json.loads((folder / "config.json").read_text())["hubcore"]["build"] is None
    same(hubcore.load(str(folder)), model)


def test_unknown_model_type_is_named(hub_home, tiny, tmp_path) -> None:
    tiny_models, _ = tiny
    hubcore.register_model_type("tiny-numpy", config=tiny_models.TinyConfig, build=tiny_models.Tiny)
    folder = hubcore.save_pretrained(
        trained(tiny_models), tmp_path / "pkg", config=tiny_models.TinyConfig()
    )
    _registered.clear()
    with pytest.raises(UnknownModelTypeError, match="tiny-numpy"):
        hubcore.load(str(folder))


def test_bad_config_values_and_keys_name_the_field(hub_home, tiny, tmp_path) -> None:
    tiny_models, _ = tiny
    cls = tiny_models.TinyConfig
    with pytest.raises(ConfigValueError, match="features"):
        cls.from_dict({"features": 0})
    with pytest.raises(ConfigValueError, match=r"inputs: expected int"):
        cls.from_dict({"inputs": "four"})
    with pytest.raises(ConfigValueError, match=r"'featurez'.*did you mean 'features'"):
        cls.from_dict({"featurez": 3})
    folder = hubcore.save_pretrained(trained(tiny_models), tmp_path / "pkg", config=cls())
    data = json.loads((folder / "config.json").read_text())
    data["features"] = -1
    (folder / "config.json").write_text(json.dumps(data))
    with pytest.raises(PackageIntegrityError, match=r"config\.json"):  # the manifest comes first
        hubcore.load(str(folder))
    config = cls(features=5)
    config.save(tmp_path / "cfg")
    assert cls.load(tmp_path / "cfg") == config
    data = json.loads((tmp_path / "cfg" / "config.json").read_text())
    data["hubcore"]["format"] = 99
    (tmp_path / "cfg" / "config.json").write_text(json.dumps(data))
    with pytest.raises(hubcore.HubError, match="newer than this hubcore"):
        cls.load(tmp_path / "cfg")


@pytest.mark.parametrize("damage", ["tampered", "truncated", "missing", "extra code"])
def test_damaged_files_are_named(hub_home, tiny, tmp_path, damage) -> None:
    tiny_models, marker = tiny
    folder = hubcore.save_pretrained(
        trained(tiny_models), tmp_path / "pkg", config=tiny_models.TinyConfig()
    )
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    name = "model.safetensors"
    if damage == "tampered":
        weights.write_bytes(data[:-4] + b"\0\0\0\0")
    elif damage == "truncated":
        weights.write_bytes(data[:-4])
    elif damage == "missing":
        weights.unlink()
    else:
        (folder / "evil.py").write_text("raise SystemExit")
        name = "evil.py"
    marker.unlink(missing_ok=True)
    with pytest.raises(PackageIntegrityError, match=name.replace(".", r"\.")):
        hubcore.load(str(folder))
    assert not marker.exists()


def test_no_backend_for_an_unknown_model(hub_home, tiny, tmp_path) -> None:
    tiny_models, _ = tiny
    with pytest.raises(NoBackendError):
        hubcore.save_pretrained(object(), tmp_path / "pkg", config=tiny_models.TinyConfig())


# -- object stores ---------------------------------------------------------------------------------
def test_s3_push_pinned_load_and_zero_request_warm_load(
    hub_home, tiny, tmp_path, s3_bucket
) -> None:
    import boto3

    tiny_models, _ = tiny
    model = trained(tiny_models)
    folder = hubcore.save_pretrained(model, tmp_path / "pkg", config=tiny_models.TinyConfig())
    dest = f"s3://{s3_bucket}/models/tiny"
    pin = hubcore.push(folder, dest)
    assert pin.startswith("sha256:")
    s3 = boto3.client("s3")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert f"models/tiny/{MANIFEST}" in keys
    assert "models/tiny/.hubcore-push.json" not in keys
    same(hubcore.load(dest), model)  # unpinned: one listing, then the cache
    same(hubcore.from_pretrained(dest, revision=pin), model)
    calls: list[str] = []
    import botocore.endpoint

    original = botocore.endpoint.Endpoint.make_request

    def counting(self, *args, **kwargs):
        calls.append("request")
        return original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(botocore.endpoint.Endpoint, "make_request", counting)
        same(hubcore.load(dest, revision=pin), model)
    assert calls == []


def test_s3_shipped_code_needs_trust(hub_home, tiny, tmp_path, s3_bucket, monkeypatch) -> None:
    tiny_models, marker = tiny
    model = trained(tiny_models)
    folder = hubcore.save_pretrained(model, tmp_path / "pkg", config=tiny_models.TinyConfig())
    dest = f"s3://{s3_bucket}/models/tiny"
    hubcore.push(folder, dest)
    sys.modules.pop("tiny_models", None)
    sys.modules.pop("tiny_helpers", None)
    monkeypatch.delenv("HUBCORE_TRUST")
    marker.unlink(missing_ok=True)
    with pytest.raises(UntrustedRepoError):
        hubcore.load(dest)
    assert not marker.exists()
    assert "tiny-numpy" in hubcore.help(dest)  # inspection runs nothing
    assert not marker.exists()
    same(hubcore.load(dest, trust_repo=True), model)
    assert marker.read_text() == "ran\n"


def test_interrupted_push_is_incomplete_then_resumes(
    hub_home, tiny, tmp_path, s3_bucket, monkeypatch
) -> None:
    import fsspec

    tiny_models, _ = tiny
    model = trained(tiny_models)
    folder = hubcore.save_pretrained(model, tmp_path / "pkg", config=tiny_models.TinyConfig())
    dest = f"s3://{s3_bucket}/models/tiny"
    cls = type(fsspec.filesystem("s3"))
    original = cls._pipe_file
    uploaded: list[str] = []

    async def failing_manifest(self, path, *args, **kwargs):
        if path.endswith(MANIFEST):
            raise OSError("connection reset")
        return await original(self, path, *args, **kwargs)

    monkeypatch.setattr(cls, "_pipe_file", failing_manifest)
    cls.clear_instance_cache()  # instances bind their sync methods when made
    with pytest.raises(hubcore.HubError, match="resume"):
        hubcore.push(folder, dest)
    monkeypatch.setattr(cls, "_pipe_file", original)
    cls.clear_instance_cache()
    with pytest.raises(IncompletePackageError, match="incomplete package"):
        hubcore.load(dest)
    cache = hub_home / "repos" / "fsspec"
    assert not list(cache.rglob("model.safetensors"))  # nothing incomplete stays cached
    real_put = cls._put_file

    async def recording(self, lpath, rpath, *args, **kwargs):
        uploaded.append(Path(lpath).name)
        return await real_put(self, lpath, rpath, *args, **kwargs)

    monkeypatch.setattr(cls, "_put_file", recording)
    cls.clear_instance_cache()
    pin = hubcore.push(folder, dest)
    assert uploaded == []  # everything was there, checked by hash
    same(hubcore.load(dest, revision=pin), model)


def test_a_push_the_server_failed_with_http_500_is_made_again(
    hub_home, tiny, tmp_path, s3_bucket, monkeypatch
) -> None:
    """S3 asks clients to retry "InternalError" and s3fs retries only "SlowDown": each file's
    upload fails once with HTTP 500 (s3fs's EREMOTEIO), and the push still completes."""
    import errno

    import fsspec

    tiny_models, _ = tiny
    model = trained(tiny_models)
    folder = hubcore.save_pretrained(model, tmp_path / "pkg", config=tiny_models.TinyConfig())
    cls = type(fsspec.filesystem("s3"))
    real_put = cls._put_file
    failed: list[str] = []

    async def failing_once(self, lpath, rpath, *args, **kwargs):
        if rpath not in failed:
            failed.append(rpath)
            raise OSError(errno.EREMOTEIO, "Internal Server Error")
        return await real_put(self, lpath, rpath, *args, **kwargs)

    monkeypatch.setattr(cls, "_put_file", failing_once)
    cls.clear_instance_cache()
    dest = f"s3://{s3_bucket}/models/retried"
    pin = hubcore.push(folder, dest)
    assert failed  # every file failed once
    same(hubcore.load(dest, revision=pin), model)


def test_pin_mismatch_is_refused(hub_home, tiny, tmp_path, s3_bucket) -> None:
    tiny_models, _ = tiny
    folder = hubcore.save_pretrained(
        trained(tiny_models), tmp_path / "pkg", config=tiny_models.TinyConfig()
    )
    dest = f"s3://{s3_bucket}/models/tiny"
    hubcore.push(folder, dest)
    with pytest.raises(LockMismatchError, match="pinned"):
        hubcore.load(dest, revision="sha256:" + "0" * 64)


def test_file_url_push_and_load(hub_home, tiny, tmp_path) -> None:
    tiny_models, _ = tiny
    model = trained(tiny_models)
    folder = hubcore.save_pretrained(model, tmp_path / "pkg", config=tiny_models.TinyConfig())
    dest = (tmp_path / "store" / "tiny").as_uri()
    pin = hubcore.push(folder, dest)
    same(hubcore.load(dest), model)
    same(hubcore.load(dest, revision=pin), model)
    with pytest.raises(LockMismatchError):
        hubcore.load(dest, revision="sha256:" + "1" * 64)


def test_git_server_pinned_to_a_commit(hub_home, tiny, tmp_path) -> None:
    tiny_models, _ = tiny
    model = trained(tiny_models)
    repos = tmp_path / "repos"
    repos.mkdir()
    repo = BareRepo(repos, "lab/tiny")
    hubcore.save_pretrained(model, repo.work, config=tiny_models.TinyConfig())
    first = repo.commit({}, "package")
    hubcore.save_pretrained(
        trained(tiny_models, seed=9), repo.work, config=tiny_models.TinyConfig()
    )
    repo.commit({}, "retrained")
    server = GitHostServer(repos).start()
    try:
        ref = f"git+{server.url}/lab/tiny.git"
        same(hubcore.load(ref, revision=first), model)
        server.reset_log()
        same(hubcore.from_pretrained(ref, revision=first), model)
        assert server.paths() == []  # pinned and cached: no request
        with pytest.raises(AssertionError):
            same(hubcore.load(f"{ref}@main"), model)
    finally:
        server.stop()
