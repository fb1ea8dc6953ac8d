"""Framework backends: recognise a model object, read weight files, apply a state.

Backends come from plugins (see :func:`hubcore.plugins.hookspecs.hubcore_register_backends`); the
core never imports a framework. Weight files arrive as :class:`WeightsFile` objects: the blob
in the cache plus the original file name, so a backend can pick the format by suffix, and
:func:`sniff_format` for the formats that announce themselves in their first bytes.

Beyond the required :class:`Backend` members a backend may declare three capabilities:
``functional = True`` (its models keep parameters apart, so ``apply_weights`` returns a new
model), :class:`ModelFileOpener` (it opens files that *are* a model, such as ONNX),
:class:`WeightsExporter` (it hands out a model's tensors as raw bytes, so the core can save
them as safetensors: :func:`hubcore.save_pretrained`) and :class:`WeightAssigner` (it builds
a model without initialising what the weights overwrite, then assigns the weights from the
mapped files).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from hubcore.errors import BackendError, HubError, WeightsFormatError, WeightsMismatchError
from hubcore.records import Record, field

if TYPE_CHECKING:
    from hubcore.store.transfer import WeightsFile

__all__ = [
    "Backend",
    "ExportedTensor",
    "ModelFileOpener",
    "PlainPathNeeded",
    "WeightAssigner",
    "WeightsExporter",
    "WeightsFile",
    "assigns_weights",
    "call_backend",
    "check_state_fits",
    "export_array",
    "exporter_of",
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
    * ``export_weights``: see :class:`WeightsExporter` (needed to save model packages).
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


#: Bytes per element of each safetensors dtype code an exported tensor may name.
SAFETENSORS_DTYPES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2,
    "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip


class ExportedTensor(Record):
    """One tensor of a model, as :meth:`WeightsExporter.export_weights` hands it out.

    ``dtype`` is a safetensors dtype code (``F32``, ``BF16``, ``I64``: the keys of
    :data:`SAFETENSORS_DTYPES`), ``shape`` its shape, and ``read()`` returns its bytes in
    row-major (C) order, little-endian, as any object supporting the buffer protocol (a
    ``memoryview``, a contiguous numpy array, ``bytes``). ``read`` is called once, when the
    tensor is written, so a backend can copy a tensor off its device only then.
    """

    dtype: str
    shape: tuple[int, ...]
    read: Callable[[], Any] = field(eq=False)

    @property
    def nbytes(self) -> int:
        """The size of the tensor's bytes."""
        count = 1
        for dim in self.shape:
            count *= dim
        return count * SAFETENSORS_DTYPES[self.dtype]


@runtime_checkable
class WeightsExporter(Protocol):
    """The optional capability of a backend that can save a model's weights.

    The core writes the tensors as safetensors (sharded, hashed while written), so the
    backend only names them: no file format, no framework in the core.
    """

    def export_weights(self, model: Any) -> Mapping[str, ExportedTensor]:
        """The model's state as ``{name: ExportedTensor}``, named as :meth:`Backend.
        read_weights` and :meth:`Backend.apply_weights` name them (so a saved state applies
        back strictly). Tensors that share memory (tied weights) are listed once per name."""
        ...


def exporter_of(backend: Backend) -> WeightsExporter | None:
    """*backend* when it declares :class:`WeightsExporter`, else ``None``."""
    method = getattr(backend, "export_weights", None)
    return backend if callable(method) else None  # type: ignore[return-value]


#: numpy dtype names -> safetensors dtype codes, for :func:`export_array`.
_NUMPY_CODES = {
    "bool": "BOOL", "uint8": "U8", "int8": "I8", "int16": "I16", "uint16": "U16",
    "float16": "F16", "int32": "I32", "uint32": "U32", "float32": "F32", "int64": "I64",
    "uint64": "U64", "float64": "F64",
}  # fmt: skip


def export_array(array: Any, name: str = "tensor") -> ExportedTensor:
    """A numpy array (or anything with numpy's ``dtype``/``shape``) as an
    :class:`ExportedTensor`; backends whose state dicts hold numpy arrays use it. Raises
    :class:`~hubcore.errors.WeightsFormatError` for a dtype safetensors cannot store."""
    code = _NUMPY_CODES.get(str(getattr(array, "dtype", "")))
    if code is None:
        raise WeightsFormatError(
            f"{name}: an array of dtype {getattr(array, 'dtype', type(array).__name__)} cannot "
            f"be saved as safetensors (supported: {', '.join(_NUMPY_CODES)})"
        )

    def read() -> Any:
        import numpy as np

        return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))

    return ExportedTensor(code, tuple(int(d) for d in array.shape), read)


class PlainPathNeeded(Exception):
    """Raised by :meth:`WeightAssigner.assign_weights` when the model it was given cannot take
    the fast path; hubcore then builds the model again on the plain path. The message says
    why (it is logged, never shown as an error)."""


@runtime_checkable
class WeightAssigner(Protocol):
    """The optional capability "build without initialising, apply by assignment".

    When weights will be applied, hubcore enters :meth:`building_for_weights` of every
    backend that declares it around the entrypoint's call, then hands the model that the
    backend :meth:`~Backend.recognizes` to :meth:`assign_weights`. The plain path (build,
    :meth:`~Backend.read_weights`, :meth:`~Backend.apply_weights`) is taken instead when a
    backend raises :class:`PlainPathNeeded`, when the build raised while it ran differently,
    when another backend's build ran differently, and under ``HUBCORE_FAST_LOAD=0`` or the
    load option ``fast_load=False``.
    """

    def building_for_weights(self) -> AbstractContextManager[Any]:
        """A context the model is built in. It yields ``None`` when it changes nothing now
        (its framework is not imported: this must not import it), else a build record whose
        ``changed`` attribute says whether the build ran differently from the plain path.
        The record is passed back to :meth:`assign_weights`. A record may have a ``rewind()``
        method: hubcore calls it before it builds the model again plainly, to put back state
        the first build changed (PyTorch: the random generators), so the plain build starts
        from where the first one did."""
        ...

    def assign_weights(
        self, model: Any, files: Sequence[WeightsFile], build: Any, *, strict: bool, **options: Any
    ) -> object | None:
        """Assign the weights of *files* (shards, applied one by one) to *model*, built under
        *build*; return as :meth:`Backend.apply_weights` does. The model returned must equal,
        parameters, buffers and outputs, the one the plain path returns; raise
        :class:`PlainPathNeeded` for anything that cannot be guaranteed. *options* are the
        read options (``map_location``)."""
        ...


def assigns_weights(backend: Backend) -> bool:
    """Whether *backend* declares :class:`WeightAssigner` (both methods callable)."""
    return callable(getattr(backend, "building_for_weights", None)) and callable(
        getattr(backend, "assign_weights", None)
    )


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
        from hubcore.store.redaction import redact

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
