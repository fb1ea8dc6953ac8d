"""A backend for a functional framework (JAX/flax style): parameters live apart from the model.

``Linear`` is the architecture, a pure function of parameters and input that holds no
parameters; ``Linear.bind(params)`` returns a ``Bound`` model, which entrypoints return. A
``Bound`` never changes, so ``apply_weights`` returns a new one and hubcore puts it where the
old one was in the entrypoint's result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import hubcore
from hubcore.plugins.backends import ExportedTensor, export_array, fit_state
from hubcore_numpy_example import read_arrays

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Linear:
    """The architecture of a linear layer: shapes and a pure forward function."""

    features: int
    inputs: int

    def init(self, seed: int = 0) -> dict[str, np.ndarray]:
        import numpy as np

        rng = np.random.default_rng(seed)
        shapes = {"weight": (self.features, self.inputs), "bias": (self.features,)}
        return {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}

    def apply(self, params: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        return x @ params["weight"].T + params["bias"]

    def bind(self, params: Mapping[str, np.ndarray]) -> Bound:
        return Bound(self, MappingProxyType(dict(params)))


@dataclass(frozen=True)
class Bound:
    """An architecture bound to parameters (read-only): the model users call."""

    module: Linear
    params: Mapping[str, np.ndarray]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.module.apply(self.params, x)


class FunctionalBackend:
    """Recognises Bound models; apply_weights returns a new Bound."""

    name = "numpy-functional"
    functional = True  # apply_weights returns the model that carries the weights

    def recognizes(self, obj: object) -> bool:
        return isinstance(obj, Bound)

    def read_weights(self, file: hubcore.WeightsFile, **options: Any) -> dict[str, np.ndarray]:
        return read_arrays(file)

    def apply_weights(self, model: Bound, state: Any, *, strict: bool = True) -> Bound:
        import numpy as np

        fitted = fit_state(model.params, state, strict=strict, model="Linear")
        new = {k: np.asarray(v, dtype=np.float32) for k, v in fitted.items()}
        return model.module.bind({**model.params, **new})

    def export_weights(self, model: Bound) -> Mapping[str, ExportedTensor]:
        return {k: export_array(v, k) for k, v in model.params.items()}

    def summarize(self, model: Bound) -> Mapping[str, Any]:
        return {"parameters": sum(int(v.size) for v in model.params.values())}
