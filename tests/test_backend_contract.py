"""The backend contract's optional parts, in the core: what apply_weights may return, and
model files opened through the backend that declares their suffix."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hubcore
from hubcore.errors import BackendError, NoBackendError, WeightsFormatError
from hubcore.plugins import get_plugins
from hubcore.plugins.backends import model_formats
from hubcore.plugins.model_files import open_model_file
from hubcore.repo.pretrained import Weights, apply_pretrained

example = pytest.importorskip("hubcore_numpy_example")
functional = pytest.importorskip("hubcore_numpy_example.functional")

SHAPES = {"weight": (3, 4), "bias": (3,)}
SECRET_URL = "https://user:s3cret@example.invalid/w.npz?sig=t0ken"


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    rng = np.random.default_rng(9)
    path = tmp_path / "w.npz"
    np.savez(path, **{k: rng.standard_normal(s).astype(np.float32) for k, s in SHAPES.items()})
    return path


def add_backend(backend: Any) -> None:
    get_plugins().backends[backend.name] = backend


class Returning(example.NumpyBackend):
    """An in-place backend that returns what ``torch``'s load_state_dict returns."""

    def apply_weights(self, model: Any, state: Any, *, strict: bool = True) -> Any:
        super().apply_weights(model, state, strict=strict)
        return namedtuple("IncompatibleKeys", "missing unexpected")([], [])


def test_unrecognised_return_of_apply_weights_is_an_error(hub_home, weights) -> None:
    add_backend(Returning())  # replaces numpy-example, so it receives NumpyModel
    with pytest.raises(BackendError, match="IncompatibleKeys, which it does not recognise"):
        apply_pretrained(example.NumpyModel(SHAPES), Weights(str(weights)))


def test_in_place_backend_returns_the_same_result(hub_home, weights) -> None:
    result = (example.NumpyModel(SHAPES), "transform")
    assert apply_pretrained(result, Weights(str(weights))) is result
    model = example.NumpyModel(SHAPES)
    assert apply_pretrained(model, Weights(str(weights))) is model


def test_functional_model_replaces_the_result_and_list_entries(hub_home, weights) -> None:
    module = functional.Linear(3, 4)
    old = module.bind(module.init(0))
    new = apply_pretrained(old, Weights(str(weights)))
    assert isinstance(new, functional.Bound)
    assert new is not old
    np.testing.assert_array_equal(new.params["bias"], np.load(weights)["bias"])
    listed = ["head", old]
    assert apply_pretrained(listed, Weights(str(weights))) is listed
    assert listed[1] is not old
    assert isinstance(listed[1], functional.Bound)


def test_tuple_subclass_that_cannot_be_rebuilt_is_an_error(hub_home, weights) -> None:
    class Pair(tuple):
        def __new__(cls, a: Any, b: Any) -> Pair:
            return super().__new__(cls, (a, b))

    module = functional.Linear(3, 4)
    with pytest.raises(BackendError, match="cannot put the model with weights back into"):
        apply_pretrained(Pair(module.bind(module.init(0)), "x"), Weights(str(weights)))


def test_apply_failure_is_wrapped_and_redacted(hub_home, weights) -> None:
    class Failing(example.NumpyBackend):
        def apply_weights(self, model: Any, state: Any, *, strict: bool = True) -> None:
            raise RuntimeError(f"cannot reach {SECRET_URL}")

    add_backend(Failing())  # replaces numpy-example, so it receives NumpyModel
    with pytest.raises(BackendError, match=r"numpy-example could not apply w\.npz") as info:
        apply_pretrained(example.NumpyModel(SHAPES), Weights(str(weights)))
    assert "s3cret" not in str(info.value)
    assert "t0ken" not in str(info.value)


# -- model files ------------------------------------------------------------------------------
def test_model_formats_are_normalised() -> None:
    class Opener(example.NumpyBackend):
        model_formats = ".ONNX"  # type: ignore[assignment]

    assert model_formats(Opener()) == (".onnx",)
    assert model_formats(functional.FunctionalBackend()) == ()

    class NoOpener(functional.FunctionalBackend):
        model_formats = (".onnx",)  # declared, but nothing opens them

    assert model_formats(NoOpener()) == ()


def test_whole_model_file_opens(hub_home, weights, tmp_path: Path) -> None:
    arrays = dict(np.load(weights))
    path = tmp_path / "model.npz"
    np.savez(path, __architecture__=np.array("linear"), **arrays)
    model = open_model_file(str(path))
    assert isinstance(model, example.NumpyModel)
    x = np.ones((1, 4), np.float32)
    np.testing.assert_allclose(model(x), x @ arrays["weight"].T + arrays["bias"], rtol=1e-6)


def test_weights_file_is_not_a_model_file(hub_home, weights) -> None:
    with pytest.raises(WeightsFormatError, match="names no architecture"):
        open_model_file(str(weights))


def test_no_backend_opens_the_suffix(hub_home, tmp_path: Path) -> None:
    path = tmp_path / "net.onnx"
    path.write_bytes(b"onnx?")
    with pytest.raises(NoBackendError, match=r"no installed backend opens \.onnx files") as info:
        open_model_file(str(path))
    assert "numpy-example: .npz" in str(info.value)


def test_named_backend_without_open_model(hub_home, weights) -> None:
    with pytest.raises(NoBackendError, match="'numpy-functional' cannot open model files"):
        open_model_file(str(weights), backend="numpy-functional")
    with pytest.raises(NoBackendError, match="no backend named 'nope'"):
        open_model_file(str(weights), backend="nope")


def test_two_backends_claiming_a_suffix_need_a_name(hub_home, weights, tmp_path: Path) -> None:
    class Other(example.NumpyBackend):
        name = "other"

        def open_model(self, file: hubcore.WeightsFile, **options: Any) -> str:
            return f"opened {file.name} with {options}"

    add_backend(Other())
    with pytest.raises(NoBackendError, match=r"more than one backend opens \.npz .*numpy-"):
        open_model_file(str(weights))
    assert open_model_file(str(weights), backend="other", x=1) == "opened w.npz with {'x': 1}"


def test_file_without_suffix_opens_with_a_named_backend(hub_home, tmp_path: Path) -> None:
    class Other(example.NumpyBackend):
        name = "other"

        def open_model(self, file: hubcore.WeightsFile, **options: Any) -> str:
            return file.name

    add_backend(Other())
    path = tmp_path / "model"
    path.write_bytes(b"whatever")
    with pytest.raises(NoBackendError, match=r"model \(it has no suffix\)"):
        open_model_file(str(path))
    assert open_model_file(str(path), backend="other") == "model"


def test_open_model_failure_is_a_backend_error(hub_home, weights) -> None:
    class Broken(example.NumpyBackend):
        def open_model(self, file: hubcore.WeightsFile, **options: Any) -> object:
            raise KeyError("boom")

    add_backend(Broken())
    with pytest.raises(BackendError, match=r"numpy-example could not open w\.npz .* as a model"):
        open_model_file(str(weights))
