"""A complete hubcore backend in one file: models whose parameters are numpy arrays.

The plugin-author guide (docs/plugin-guide.md) walks through this file, and through
``functional.py``, a backend for a functional framework that keeps parameters apart.
"""

from __future__ import annotations

import contextlib
import contextvars
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import hubcore
from hubcore.errors import WeightsFormatError
from hubcore.plugins.backends import (
    ExportedTensor,
    PlainPathNeeded,
    check_state_fits,
    export_array,
    fit_state,
)
from hubcore.store.safetensors_header import read_safetensors

if TYPE_CHECKING:  # a backend imports its framework when it is used, not when it is loaded
    import numpy as np

#: The key under which a whole-model ``.npz`` file names its architecture.
ARCHITECTURE = "__architecture__"


class Unset:
    """A parameter left uninitialised by a build for weights: only its shape."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = tuple(shape)


class Build:
    """The build record of :meth:`NumpyBackend.building_for_weights`."""

    def __init__(self) -> None:
        self.models = 0

    @property
    def changed(self) -> bool:
        """Whether a model skipped its initialisation."""
        return self.models > 0


_building: contextvars.ContextVar[Build | None] = contextvars.ContextVar(
    "numpy_example_build", default=None
)


class NumpyModel:
    """A 'model' of this toy framework: named float32 arrays and a linear forward pass."""

    def __init__(self, shapes: Mapping[str, tuple[int, ...]], seed: int = 0):
        import numpy as np

        build = _building.get()
        if build is not None:  # weights will be assigned: draw no random values
            build.models += 1
            self.params: dict[str, Any] = {k: Unset(s) for k, s in shapes.items()}
            return
        rng = np.random.default_rng(seed)
        self.params = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}

    def state_dict(self) -> dict[str, np.ndarray]:
        return dict(self.params)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """A linear layer: x @ weight.T + bias."""
        return x @ self.params["weight"].T + self.params["bias"]


def read_arrays(file: hubcore.WeightsFile) -> dict[str, np.ndarray]:
    """Read ``.safetensors`` or ``.npz`` (without pickle) into named arrays."""
    import numpy as np

    if file.suffix == ".safetensors":
        from safetensors.numpy import load_file

        return read_safetensors(file.path, load_file, file.name)  # refuses malformed files
    if file.suffix == ".npz":
        try:
            with np.load(file.path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise WeightsFormatError(f"{file.name} is not a readable .npz file: {exc}") from exc
    raise WeightsFormatError(f"{file.name}: the numpy example backends read .npz or .safetensors")


class NumpyBackend:
    """Recognises NumpyModel; reads .npz and .safetensors; opens whole-model .npz files."""

    name = "numpy-example"
    #: Files that are a whole model: an .npz holding ARCHITECTURE = "linear" and the weights.
    model_formats = (".npz",)

    def recognizes(self, obj: object) -> bool:
        return isinstance(obj, NumpyModel)

    def read_weights(self, file: hubcore.WeightsFile, **options: Any) -> dict[str, np.ndarray]:
        return read_arrays(file)

    def apply_weights(self, model: NumpyModel, state: Any, *, strict: bool = True) -> None:
        import numpy as np

        fitted = fit_state(model.state_dict(), state, strict=strict, model="NumpyModel")
        model.params.update({k: np.asarray(v, dtype=np.float32) for k, v in fitted.items()})

    def export_weights(self, model: NumpyModel) -> Mapping[str, ExportedTensor]:
        """For saving model packages: each array, as the core writes it to safetensors."""
        return {k: export_array(v, k) for k, v in model.params.items()}

    def summarize(self, model: NumpyModel) -> Mapping[str, Any]:
        return {"parameters": sum(int(v.size) for v in model.params.values())}

    # The optional WeightAssigner capability: build without initialising, assign the weights.
    @contextlib.contextmanager
    def building_for_weights(self) -> Iterator[Build]:
        build = Build()
        token = _building.set(build)
        try:
            yield build
        finally:
            _building.reset(token)

    def assign_weights(
        self,
        model: NumpyModel,
        files: Sequence[hubcore.WeightsFile],
        build: Build,
        *,
        strict: bool,
        **options: Any,
    ) -> None:
        import numpy as np

        expected = {k: tuple(v.shape) for k, v in model.params.items()}
        given: dict[str, tuple[int, ...]] = {}
        for file in files:  # one shard at a time
            arrays = read_arrays(file)
            given.update({k: tuple(v.shape) for k, v in arrays.items()})
            fitted = fit_state(model.params, arrays, strict=False, model="NumpyModel")
            model.params.update({k: np.asarray(v, dtype=np.float32) for k, v in fitted.items()})
        if strict:
            check_state_fits(expected, given, model="NumpyModel")
        unset = [k for k, v in model.params.items() if isinstance(v, Unset)]
        if unset:  # their values would come from the random initialisation
            raise PlainPathNeeded(f"the weights give no value for {', '.join(unset)}")

    def open_model(self, file: hubcore.WeightsFile, **options: Any) -> NumpyModel:
        arrays = read_arrays(file)
        architecture = arrays.pop(ARCHITECTURE, None)
        if architecture is None or str(architecture) != "linear":
            raise WeightsFormatError(
                f"{file.name} is not a whole-model file: it names no architecture "
                f"({ARCHITECTURE} = 'linear'); read plain weights with load_weights"
            )
        weight, bias = arrays.get("weight"), arrays.get("bias")
        if weight is None or bias is None or weight.ndim != 2 or bias.shape != weight.shape[:1]:
            raise WeightsFormatError(f"{file.name}: a linear model needs weight (m, n), bias (m)")
        model = NumpyModel({k: v.shape for k, v in arrays.items()})
        self.apply_weights(model, arrays)
        return model


@hubcore.hookimpl
def hubcore_register_backends(register: Callable[[hubcore.Backend], None]) -> None:
    from hubcore_numpy_example.functional import FunctionalBackend

    register(NumpyBackend())
    register(FunctionalBackend())


@hubcore.hookimpl
def hubcore_register_sources(register: Callable[[hubcore.Source], None]) -> None:
    from hubcore_numpy_example.source import HubfileSource

    register(HubfileSource())
