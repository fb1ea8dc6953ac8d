"""Framework backends: recognise a model object, read weight files, apply a state.

Backends come from plugins (see :func:`hubcore.plugins.hookspecs.hubcore_register_backends`); the
core never imports a framework. Weight files arrive as :class:`WeightsFile` objects: the blob
in the cache plus the original file name, so a backend can pick the format by suffix, and
:func:`sniff_format` for the formats that announce themselves in their first bytes.

Beyond the required :class:`Backend` members a backend may declare two capabilities:
``functional = True`` (its models keep parameters apart, so ``apply_weights`` returns a new
model) and :class:`ModelFileOpener` (it opens files that *are* a model, such as ONNX).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from hubcore.errors import BackendError, HubError, WeightsFormatError, WeightsMismatchError

if TYPE_CHECKING:
    from hubcore.store.transfer import WeightsFile

__all__ = [
    "Backend",
    "ModelFileOpener",
    "WeightsFile",
    "call_backend",
    "check_state_fits",
    "fit_state",
    "is_functional",
    "model_formats",
    "sniff_format",
    "unwrap_checkpoint",
]

T = TypeVar("T")


@runtime_checkable
class Backend(Protocol):
    """The protocol every framework backend implements.

    Optional members, looked up with ``getattr`` (a backend without them still registers):

    * ``functional: bool``: true when the framework keeps parameters apart from the model
      (JAX/flax style), so :meth:`apply_weights` returns a new model instead of changing the
      one it is given (:func:`is_functional`). The conformance suite then checks that.
    * ``model_formats`` and ``open_model``: see :class:`ModelFileOpener`.
    """

    #: Unique short name (``torch``, ``megengine``).
    name: str

    def recognizes(self, obj: object) -> bool:
        """Whether *obj* is a model of this framework that weights can be applied to.

        Must be cheap and must not import the framework: if the framework module is not in
        ``sys.modules`` yet, *obj* cannot be one of its models.
        """
        ...

    def read_weights(self, file: WeightsFile, **options: Any) -> Any:
        """Read *file* into a state (for most frameworks, a mapping of names to arrays).

        *options* come from the caller (``map_location`` for a device, for example). Every
        backend accepts ``unwrap``: true (the default) returns the state nested in a training
        checkpoint (:func:`unwrap_checkpoint`), false returns the stored object as it is (the
        compatibility layers need that). Raise :class:`hubcore.errors.WeightsFormatError`
        for a format the backend cannot read safely.
        """
        ...

    def apply_weights(self, model: Any, state: Any, *, strict: bool = True) -> object | None:
        """Apply *state* to *model*; return ``None``, or the model that carries the weights.

        A backend whose models hold their parameters loads *state* into *model* in place and
        returns ``None`` (or *model*). A functional backend leaves *model* as it is and returns
        a new model bound to the weights; hubcore puts that object where *model* was in the
        entrypoint's result (the result itself, or the same position of a tuple or list). The
        object returned must be one this backend :meth:`recognizes`.

        With ``strict=True`` every key must match in name and shape, or
        :class:`hubcore.errors.WeightsMismatchError` is raised listing the differences.
        """
        ...

    def summarize(self, model: Any) -> Mapping[str, Any]:
        """A few facts for display, such as ``{"parameters": 11_689_512}``."""
        ...


@runtime_checkable
class ModelFileOpener(Protocol):
    """The optional capability of a backend that opens files which *are* a model.

    ONNX graphs, TorchScript archives, a whole-model file of a toy framework: the file holds
    the architecture and the weights, so no entrypoint builds anything. ``hubcore`` fetches
    the file into the cache (verified like weights) and hands it to a backend that declares
    its suffix (:func:`hubcore.plugins.model_files.open_model_file`).
    """

    #: Lower-case suffixes (``.onnx``) of the model files :meth:`open_model` opens.
    model_formats: tuple[str, ...]

    def open_model(self, file: WeightsFile, **options: Any) -> object:
        """Open the model stored in *file* and return it.

        Check the content, not only the suffix: raise
        :class:`hubcore.errors.WeightsFormatError` for a file that is not such a model or
        cannot be opened safely (never unpickle arbitrary objects unless an option the caller
        passes says the file is trusted). *options* come from the caller.
        """
        ...


def is_functional(backend: Backend) -> bool:
    """Whether *backend* declares ``functional = True`` (apply_weights returns a new model)."""
    return getattr(backend, "functional", False) is True


def model_formats(backend: Backend) -> tuple[str, ...]:
    """The model-file suffixes *backend* opens (lower case); empty without the capability."""
    if not isinstance(backend, ModelFileOpener) or not callable(backend.open_model):
        return ()
    declared = backend.model_formats
    if isinstance(declared, str):  # a lone ".onnx" would otherwise iterate as characters
        declared = (declared,)
    return tuple(f".{s.lower().lstrip('.')}" for s in declared if isinstance(s, str) and s)


def call_backend(backend: Backend, doing: str, call: Callable[[], T]) -> T:
    """Run ``call()``, a call into *backend*, and return what it returns.

    A :class:`~hubcore.errors.HubError` passes through; any other exception becomes a
    :class:`~hubcore.errors.BackendError` saying that *backend* could not *doing*
    (``"read model.pth (https://...)"``), with credentials redacted.
    """
    try:
        return call()
    except HubError:
        raise
    except Exception as exc:
        from hubcore.store.http import redact

        raise BackendError(f"{backend.name} could not {redact(doing)}: {redact(str(exc))}") from exc


def sniff_format(path: Path) -> str | None:
    """Guess a weight file's container from its first bytes.

    Returns ``"safetensors"``, ``"zip"`` (torch's default format, also ``.npz``), ``"pickle"`` or
    ``None`` when unknown. Reads at most a few kilobytes.
    """
    with path.open("rb") as fh:
        head = fh.read(8)
        if head[:4] == b"PK\x03\x04":
            return "zip"
        if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
            return "pickle"
        if len(head) == 8:
            (header_len,) = struct.unpack("<Q", head)
            if 2 <= header_len <= 100_000_000:
                first = fh.read(1)
                if first == b"{":
                    try:
                        json.loads(first + fh.read(header_len - 1))
                    except ValueError:
                        return None
                    return "safetensors"
    return None


def check_state_fits(
    expected: Mapping[str, tuple[int, ...]],
    given: Mapping[str, tuple[int, ...]],
    *,
    model: str = "the model",
    ignore: Iterable[str] = (),
) -> None:
    """Raise :class:`WeightsMismatchError` unless *given* matches *expected* key for key.

    Both map parameter names to shapes. Backends call this before applying a state strictly,
    so every framework reports a mismatch the same way.
    """
    skip = set(ignore)
    missing = [k for k in expected if k not in given and k not in skip]
    unexpected = [k for k in given if k not in expected and k not in skip]
    mismatched = [
        f"{k} (model {tuple(expected[k])}, weights {tuple(given[k])})"
        for k in expected
        if k in given and tuple(expected[k]) != tuple(given[k])
    ]
    if missing or unexpected or mismatched:
        raise WeightsMismatchError(missing, unexpected, mismatched, model=model)


def fit_state(
    model_state: Mapping[str, Any],
    state: Any,
    *,
    strict: bool,
    model: str = "the model",
) -> dict[str, Any]:
    """Check *state* against *model_state* (both map names to arrays with ``.shape``).

    Strict: raise :class:`WeightsMismatchError` on any difference and return *state*.
    Not strict: return only the entries whose name and shape match the model. A *state* that
    is not a mapping raises :class:`~hubcore.errors.WeightsFormatError`.
    """
    if not isinstance(state, Mapping):
        raise WeightsFormatError(
            f"expected a state dict (names to arrays), got {type(state).__name__}"
        )
    expected = {k: tuple(getattr(v, "shape", ())) for k, v in model_state.items()}
    given = {k: tuple(getattr(v, "shape", ())) for k, v in state.items()}
    if strict:
        check_state_fits(expected, given, model=model)
        return dict(state)
    return {k: v for k, v in state.items() if expected.get(k) == given[k]}


#: Keys under which training checkpoints commonly nest the model's state.
CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model", "module")


def unwrap_checkpoint(obj: Any, is_array: Callable[[Any], bool]) -> Any:
    """Return the state nested in a training checkpoint, or *obj* itself.

    A checkpoint is a mapping whose values are not all arrays but which holds one of
    :data:`CHECKPOINT_KEYS` mapping to arrays (``{"epoch": 3, "state_dict": {...}}``).
    """
    if not isinstance(obj, Mapping) or all(is_array(v) for v in obj.values()):
        return obj
    for key in CHECKPOINT_KEYS:
        inner = obj.get(key)
        if isinstance(inner, Mapping) and inner and all(is_array(v) for v in inner.values()):
            return inner
    return obj


def __getattr__(name: str) -> Any:
    # WeightsFile lives in the store (re-exported here); importing the store's transfer
    # machinery waits for its first use, since every plugin imports this module
    if name == "WeightsFile":
        from hubcore.store.transfer import WeightsFile

        return WeightsFile
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
