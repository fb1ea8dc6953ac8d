"""The pretrained protocol, end to end through the example numpy backend (no framework)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import hubcore
from hubcore.errors import (
    EntrypointError,
    IntegrityError,
    NoBackendError,
    NoWeightsError,
    OfflineError,
    VariantNotFoundError,
    WeightsMismatchError,
)

pytest.importorskip("hubcore_numpy_example")

SHAPES = {"weight": (3, 4), "bias": (3,)}


def write_weights(path: Path, seed: int, shapes=SHAPES) -> str:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}, str(path))
    return hubcore.file_sha256(path)


@pytest.fixture
def repo(make_hub_repo, tmp_path: Path) -> Path:
    root = tmp_path / "hub"
    a = write_weights(root / "weights" / "a.safetensors", 1)
    b = write_weights(root / "weights" / "b.safetensors", 2)
    wide = write_weights(
        tmp_path / "elsewhere" / "wide.safetensors", 3, {"weight": (5, 4), "bias": (5,)}
    )
    absolute = (tmp_path / "elsewhere" / "wide.safetensors").as_uri()
    from hubcore.testing import write_repo

    return write_repo(
        root,
        {
            "hubconf.py": f"""
                from hubcore import pretrained, Weights
                from hubcore_numpy_example import NumpyModel

                dependencies = ["numpy"]

                @pretrained("weights/a.safetensors", sha256={a!r})
                def linear(seed=0):
                    '''A linear layer.'''
                    return NumpyModel({SHAPES!r}, seed=seed)

                @pretrained({{"a": Weights("weights/a.safetensors", sha256={a!r}),
                              "b": Weights("weights/b.safetensors", sha256={b!r})}}, default="b")
                def variants():
                    return NumpyModel({SHAPES!r})

                @pretrained("weights/a.safetensors", sha256={"0" * 64!r})
                def tampered():
                    return NumpyModel({SHAPES!r})

                @pretrained({absolute!r}, sha256={wide!r})
                def wrong_architecture():
                    return NumpyModel({SHAPES!r})

                @pretrained("weights/a.safetensors")
                def with_transform():
                    return NumpyModel({SHAPES!r}), (lambda x: x * 2)

                @pretrained("weights/a.safetensors")
                def not_a_model():
                    return {{"just": "a dict"}}

                @pretrained("weights/a.safetensors")
                def positional(pretrained=False, seed=0):
                    return NumpyModel({SHAPES!r}, seed=seed), pretrained

                def plain():
                    return NumpyModel({SHAPES!r})
            """,
        },
    )


def expected(repo: Path, name: str) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(repo / "weights" / name))


def assert_params(model, ref: dict[str, np.ndarray]) -> None:
    for key, value in ref.items():
        np.testing.assert_array_equal(model.params[key], value)


def test_pretrained_true_applies_verified_weights(hub_home, repo) -> None:
    model = hubcore.load(str(repo), "linear", pretrained=True)
    assert_params(model, expected(repo, "a.safetensors"))
    fresh = hubcore.load(str(repo), "linear")
    assert not np.array_equal(fresh.params["bias"], model.params["bias"])


def test_weights_are_cached_by_content(hub_home, repo) -> None:
    hubcore.load(str(repo), "linear", pretrained=True)
    sha = hubcore.file_sha256(repo / "weights" / "a.safetensors")
    blob = hub_home / "blobs" / "sha256" / sha[:2] / sha
    assert blob.is_file()
    assert hubcore.file_sha256(blob) == sha
    assert not any((hub_home / "tmp").iterdir())


def test_named_variants(hub_home, repo) -> None:
    assert_params(
        hubcore.load(str(repo), "variants", pretrained=True), expected(repo, "b.safetensors")
    )
    assert_params(
        hubcore.load(str(repo), "variants", pretrained="a"), expected(repo, "a.safetensors")
    )
    with pytest.raises(VariantNotFoundError, match="available: a, b"):
        hubcore.load(str(repo), "variants", pretrained="c")


def test_wrong_hash_names_both_and_caches_nothing(hub_home, repo) -> None:
    actual = hubcore.file_sha256(repo / "weights" / "a.safetensors")
    with pytest.raises(IntegrityError) as info:
        hubcore.load(str(repo), "tampered", pretrained=True)
    assert info.value.expected == "0" * 64
    assert info.value.actual == actual
    assert "0" * 64 in str(info.value)
    assert actual in str(info.value)
    assert not (hub_home / "blobs").exists() or not any(
        p.is_file() for p in (hub_home / "blobs").rglob("*")
    )
    assert not (hub_home / "urls").exists()
    assert not any((hub_home / "tmp").iterdir())


def test_wrong_architecture_lists_keys(hub_home, repo) -> None:
    with pytest.raises(WeightsMismatchError) as info:
        hubcore.load(str(repo), "wrong_architecture", pretrained=True)
    assert "weight (model (3, 4), weights (5, 4))" in str(info.value)
    assert "weights_strict=False" in str(info.value)
    model = hubcore.load(str(repo), "wrong_architecture", pretrained=True, weights_strict=False)
    assert model.params["weight"].shape == (3, 4)


def test_tuple_result_gets_weights_on_its_model(hub_home, repo) -> None:
    model, transform = hubcore.load(str(repo), "with_transform", pretrained=True)
    assert_params(model, expected(repo, "a.safetensors"))
    assert transform(2) == 4


def test_no_backend_for_result(hub_home, repo) -> None:
    with pytest.raises(NoBackendError, match="no installed backend recognises dict"):
        hubcore.load(str(repo), "not_a_model", pretrained=True)


def test_pretrained_positional_when_declared(hub_home, repo) -> None:
    model, seen = hubcore.load(str(repo), "positional", True, 5)
    assert seen is True
    assert_params(model, expected(repo, "a.safetensors"))


def test_pretrained_on_entry_without_weights(hub_home, repo) -> None:
    with pytest.raises(NoWeightsError, match="declares no pretrained weights"):
        hubcore.load(str(repo), "plain", pretrained=True)


def test_offline_uses_cache_and_fails_clearly_otherwise(hub_home, repo, monkeypatch) -> None:
    hubcore.load(str(repo), "linear", pretrained=True)
    monkeypatch.setenv("HUBCORE_OFFLINE", "1")
    assert_params(
        hubcore.load(str(repo), "linear", pretrained=True), expected(repo, "a.safetensors")
    )
    with pytest.raises(OfflineError, match="not in the cache"):
        hubcore.load(str(repo), "variants", pretrained=True)


def test_edited_local_weights_are_refetched(hub_home, repo, tmp_path) -> None:
    path = tmp_path / "w.safetensors"
    write_weights(path, 1)
    first = hubcore.download(str(path))
    write_weights(path, 9)
    os.utime(path, ns=(1, 1))  # a different mtime even on coarse clocks
    second = hubcore.download(str(path))
    assert first != second
    assert hubcore.file_sha256(second) == hubcore.file_sha256(path)


def test_entrypoint_type_error_is_wrapped(hub_home, repo) -> None:
    with pytest.raises(EntrypointError, match="TypeError"):
        hubcore.load(str(repo), "linear", no_such_argument=1)


def test_decorator_validates_its_arguments() -> None:
    with pytest.raises(TypeError, match="default variant"):
        hubcore.pretrained({"a": "x"}, default="b")
    with pytest.raises(TypeError, match="single URL"):
        hubcore.pretrained({"a": "x"}, sha256="ab")
    with pytest.raises(TypeError, match="at least one"):
        hubcore.pretrained({})


def test_safetensors_preferred_when_both_formats_are_offered(hub_home, make_hub_repo) -> None:
    from safetensors.numpy import load_file

    from hubcore.testing import write_repo

    root = make_hub_repo({"weights/model.pth": b"a pickle we would rather not read"})
    write_weights(root / "weights" / "model.safetensors", 5)
    variants = {"pickle": "weights/model.pth", "safe": "weights/model.safetensors"}
    hubconf = (
        "from hubcore import pretrained\n"
        "from hubcore_numpy_example import NumpyModel\n\n"
        f"@pretrained({variants!r}, default='pickle')\n"
        "def model():\n"
        "    '''Offered in two formats.'''\n"
        f"    return NumpyModel({SHAPES!r})\n"
    )
    write_repo(root, {"hubconf.py": hubconf})
    chosen = hubcore.load(str(root), "model", pretrained=True)  # the safetensors twin
    assert_params(chosen, load_file(str(root / "weights" / "model.safetensors")))
    with pytest.raises(hubcore.HubError):  # asked for by name: taken as declared
        hubcore.load(str(root), "model", pretrained="pickle")
    # Discovery shows the file pretrained=True reads: one rule, not a second copy that drifts.
    listed = hubcore.discover(str(root)).entrypoints["model"].weights
    assert listed.default == "safe"
    from click.testing import CliRunner

    from hubcore.cli import main

    shown = CliRunner().invoke(main, ["help", str(root), "model"])
    assert shown.exit_code == 0, shown.output
    assert "* safe: weights/model.safetensors" in shown.output
    assert "  pickle: weights/model.pth" in shown.output


def test_default_variant_rule() -> None:
    from hubcore.repo.weights import Weights, default_variant

    def pick(declared: str, **urls: str) -> str:
        return default_variant({name: Weights(url) for name, url in urls.items()}, declared)

    assert pick("a", a="w/m.PTH", b="w/m.safetensors") == "b"  # suffix case does not matter
    assert pick("a", a="w/m.ckpt", b="w/other.safetensors") == "a"  # another file, not a twin
    assert pick("a", a="w/m.onnx", b="w/m.safetensors") == "a"  # not a pickle format
    assert pick("a", a="https://h/m", b="https://h/m.safetensors") == "a"  # no suffix
    assert pick("b", a="w/m.pth", b="w/m.safetensors") == "b"
