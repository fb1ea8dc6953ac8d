"""The core of the fast pretrained path (:func:`hubcore.repo.pretrained.build_pretrained`), with the
docs' numpy example backend, which declares the WeightAssigner capability; and the cache's
part: a warm load hashes no weight file."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

np = pytest.importorskip("numpy")
example = pytest.importorskip("hubcore_numpy_example")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

import hubcore  # noqa: E402
from hubcore import WeightsFile  # noqa: E402
from hubcore.errors import WeightsMismatchError  # noqa: E402
from hubcore.plugins import get_plugins  # noqa: E402
from hubcore.repo.pretrained import build_pretrained  # noqa: E402
from hubcore.store import cache, transfer  # noqa: E402


@pytest.fixture(autouse=True)
def fast_path_for_small_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """These models are tiny: let the fast path take them as it takes big ones."""
    monkeypatch.setenv("HUBCORE_FAST_LOAD_MIN_BYTES", "0")


SHAPES = {"weight": (3, 4), "bias": (3,)}
HUBCONF = """
from pathlib import Path

import hubcore_numpy_example
from hubcore import pretrained
from hubcore_numpy_example import NumpyModel


def _count():
    with open(Path(__file__).parent / "calls", "a") as fh:
        fh.write("x")


@pretrained("w.safetensors")
def model(fail_on_fast_path: bool = False):
    _count()
    built = NumpyModel({"weight": (3, 4), "bias": (3,)}, seed=5)
    if fail_on_fast_path and hubcore_numpy_example._building.get() is not None:
        raise RuntimeError("the build fails on the fast path")
    return built


@pretrained("partial.safetensors")
def partial():
    _count()
    return NumpyModel({"weight": (3, 4), "bias": (3,)}, seed=5)
"""


def trained() -> dict[str, Any]:
    rng = np.random.default_rng(9)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in SHAPES.items()}


@pytest.fixture
def repo(make_hub_repo: Callable[..., Path], hub_home: Path) -> Path:
    root = make_hub_repo({"hubconf.py": HUBCONF})
    weights = trained()
    safetensors_numpy.save_file(weights, str(root / "w.safetensors"))
    safetensors_numpy.save_file({"weight": weights["weight"]}, str(root / "partial.safetensors"))
    return root


@pytest.fixture
def taken(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[], str]]:
    """The path the last load took, read from hubcore's log."""
    with caplog.at_level(logging.DEBUG, logger="hubcore.repo.pretrained"):

        def last() -> str:
            fast = "fast load by numpy-example" in caplog.text
            plain = "plain load" in caplog.text
            caplog.clear()
            return "plain" if plain else "fast" if fast else "plain (nothing changed)"

        yield last


def calls(repo: Path) -> int:
    """How many times the repository's entrypoints ran (and start counting again)."""
    path = repo / "calls"
    count = len(path.read_text()) if path.exists() else 0
    path.unlink(missing_ok=True)
    return count


def test_assigned_model_equals_the_plain_one(repo: Path, taken: Callable[[], str]) -> None:
    fast = hubcore.load(str(repo), "model", pretrained=True)
    assert taken() == "fast"
    assert calls(repo) == 1
    plain = hubcore.load(str(repo), "model", pretrained=True, fast_load=False)
    assert taken() == "plain (nothing changed)"
    for key, value in trained().items():
        np.testing.assert_array_equal(fast.params[key], value)
        np.testing.assert_array_equal(plain.params[key], value)


def test_missing_keys_fall_back_and_match_the_plain_path(
    repo: Path, taken: Callable[[], str]
) -> None:
    loaded = hubcore.load(str(repo), "partial", pretrained=True, weights_strict=False)
    assert taken() == "plain"
    assert calls(repo) == 2  # built on the fast path, then again plainly
    plain = hubcore.load(
        str(repo), "partial", pretrained=True, weights_strict=False, fast_load=False
    )
    for key in SHAPES:
        np.testing.assert_array_equal(loaded.params[key], plain.params[key])
    assert not any(isinstance(v, example.Unset) for v in loaded.params.values())


def test_strict_mismatch_is_the_plain_paths_error(repo: Path) -> None:
    with pytest.raises(WeightsMismatchError, match="bias"):
        hubcore.load(str(repo), "partial", pretrained=True)


def test_a_build_that_raises_on_the_fast_path_is_run_again_plainly(
    repo: Path, taken: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = hubcore.load(str(repo), "model", pretrained=True, fail_on_fast_path=True)
    assert taken() == "plain"
    assert calls(repo) == 2
    np.testing.assert_array_equal(loaded.params["bias"], trained()["bias"])
    # With no backend changing the build, its error is the user's: raised at once.
    monkeypatch.setattr(example.Build, "changed", property(lambda self: False))
    with pytest.raises(hubcore.errors.EntrypointError, match="fails on the fast path"):
        hubcore.load(str(repo), "model", pretrained=True, fail_on_fast_path=True)
    assert calls(repo) == 1


def test_the_setting_and_the_option_turn_it_off(
    repo: Path, taken: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    entered = []
    backend = get_plugins().backend_named("numpy-example")
    original = backend.building_for_weights

    def spy() -> Any:
        entered.append(1)
        return original()

    monkeypatch.setattr(backend, "building_for_weights", spy)
    hubcore.load(str(repo), "model", pretrained=True, fast_load=False)
    monkeypatch.setenv("HUBCORE_FAST_LOAD", "0")
    hubcore.load(str(repo), "model", pretrained=True)
    assert entered == []
    monkeypatch.setenv("HUBCORE_FAST_LOAD", "yes")
    hubcore.load(str(repo), "model", pretrained=True)
    assert entered == [1]
    monkeypatch.setenv("HUBCORE_FAST_LOAD", "maybe")
    with pytest.raises(hubcore.errors.ConfigError, match="HUBCORE_FAST_LOAD"):
        hubcore.load(str(repo), "model", pretrained=True)


def test_an_unexpected_assignment_failure_falls_back_with_a_warning(
    repo: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise ValueError("a bug in the backend")

    monkeypatch.setattr(example.NumpyBackend, "assign_weights", broken)
    with caplog.at_level(logging.WARNING, logger="hubcore.repo.pretrained"):
        loaded = hubcore.load(str(repo), "model", pretrained=True)
    assert "a bug in the backend" in caplog.text
    np.testing.assert_array_equal(loaded.params["weight"], trained()["weight"])


def shards(folder: Path) -> list[WeightsFile]:
    weights = trained()
    files = []
    for name in weights:
        path = folder / f"{name}.safetensors"
        safetensors_numpy.save_file({name: weights[name]}, str(path))
        sha = hubcore.file_sha256(path)
        files.append(WeightsFile(path, path.name, sha, path.stat().st_size, path.as_uri()))
    return files


@pytest.mark.parametrize("fast", [True, False])
def test_build_pretrained_applies_shards(hub_home: Path, tmp_path: Path, fast: bool) -> None:
    files = shards(tmp_path)
    built = []

    def build() -> Any:
        built.append(1)
        return ("transform", example.NumpyModel(SHAPES, seed=1))

    result = build_pretrained(build, files, fast=fast)
    assert result[0] == "transform"
    for key, value in trained().items():
        np.testing.assert_array_equal(result[1].params[key], value)
    assert built == [1]
    with pytest.raises(WeightsMismatchError, match="bias"):
        build_pretrained(build, files[:1], fast=fast)
    twice = [files[0], files[0]]
    with pytest.raises((WeightsMismatchError, hubcore.errors.WeightsFormatError)):
        build_pretrained(build, [*twice, files[1]], fast=False)


def test_a_backend_without_the_capability_keeps_the_plain_path(
    hub_home: Path, tmp_path: Path
) -> None:
    from hubcore_numpy_example.functional import Linear

    files = shards(tmp_path)
    module = Linear(features=3, inputs=4)
    bound = build_pretrained(lambda: module.bind(module.init(0)), files)
    np.testing.assert_array_equal(bound.params["weight"], trained()["weight"])


def test_deciding_imports_no_framework(repo: Path, hub_home: Path) -> None:
    """A load whose model is not a torch model never imports torch, fast path or not."""
    script = textwrap.dedent(
        f"""
        import sys
        import hubcore
        hubcore.load({str(repo)!r}, "model", pretrained=True)
        print(sorted(m for m in ("torch", "megengine") if m in sys.modules))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_a_warm_pinned_load_hashes_nothing_and_asks_nothing(
    make_hub_repo: Callable[..., Path],
    hub_home: Path,
    file_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Item 5 of the fast-load issue: a 1 GiB file must not be re-hashed on every load."""
    path = tmp_path / "w.safetensors"
    safetensors_numpy.save_file(trained(), str(path))
    url = file_server.add("w.safetensors", path.read_bytes())
    sha = hubcore.file_sha256(path)
    hubconf = HUBCONF.replace('"w.safetensors"', f"{url!r}, sha256={sha!r}")
    root = make_hub_repo({"hubconf.py": hubconf})
    hubcore.load(str(root), "model", pretrained=True)  # fetched and hashed once
    asked = len(file_server.requests())
    hashed: list[Path] = []
    original = cache.file_sha256

    def counting(path: Any) -> str:
        hashed.append(Path(path))
        return original(path)

    monkeypatch.setattr(cache, "file_sha256", counting)
    monkeypatch.setattr(transfer, "file_sha256", counting)
    monkeypatch.setattr(cache, "_VERIFIED", {})  # as in a new process
    loaded = hubcore.load(str(root), "model", pretrained=True)
    np.testing.assert_array_equal(loaded.params["bias"], trained()["bias"])
    assert hashed == []
    assert len(file_server.requests()) == asked
