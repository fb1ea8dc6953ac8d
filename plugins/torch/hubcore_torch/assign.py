"""The torch backend's fast path: build on ``meta``, assign the weights from the mapped files.

While an entrypoint builds a model whose weights will be applied, every ``nn.Parameter``
registered on a module is replaced by an empty one on PyTorch's ``meta`` device, so the
model's own initialisation (``reset_parameters``, ``nn.init``) costs nothing. Buffers stay
real: non-persistent ones are not in a state dict. The weights are then read memory-mapped
(safetensors, and torch's zip format with ``torch.load(mmap=True)``) and assigned to the
parameters, converted once to the dtype and device each parameter would have had.

What the fast path cannot reproduce makes :func:`assign` raise
:class:`~hubcore.plugins.backends.PlainPathNeeded`, and hubcore builds the model again plainly:

* the build used a parameter's value (any operation on it but reading its shape, dtype or
  device, taking a view or ``.data`` of it, or changing it in place: its value is overwritten
  by the weights anyway);
* a parameter was kept elsewhere before it was registered, or a deferred (meta) parameter
  or a view of it is still referenced after the assignment (a transform, a plain attribute);
* the weights do not give a value to every deferred parameter (``strict=False`` with missing
  keys: their value would come from the model's own random initialisation), or, strictly,
  do not match the model exactly (the plain path reports the mismatch);
* a parameter is made from a deferred one (``nn.Parameter(p.t())``, ``nn.Parameter(p.data)``:
  they share memory, which assignment cannot reproduce), a view of one is kept as a buffer,
  or a parameter has no ``meta`` form (sparse, quantized);
* a ``meta`` tensor is left in the model's parameters, buffers or module attributes (also
  inside containers and plain objects held there);
* a file cannot be mapped (torch's legacy, non-zip format);
* the build drew from a random generator after its first deferred parameter (the plain path
  would have drawn the deferred initialisation first, so the numbers differ) and a tensor made
  from those numbers is still alive once the weights are assigned (a random non-persistent
  buffer, say), or a number left them as a Python value (``item()``, ``float()``, ``bool()``),
  or the generator moved by an operation not known to draw. Numbers drawn only to become a
  parameter the weights replace (``nn.Parameter(torch.randn(n) * 0.02)``) are fine, and so
  are persistent buffers the weights overwrite.

Assigned tensors keep the strides the build gave each parameter (``channels_last``) and never
share memory with another parameter (torch's format may save two tensors on one storage):
either is copied once when the file's tensor differs.

Random generators: a fast build that falls back is rewound (:meth:`Build.rewind`: torch's
default generators, Python's ``random`` and NumPy's global state) to the state it started
from, so the plain build draws the numbers it draws today. A draw hidden from torch function
modes (``torch._C.DisableTorchFunction``) inside ``torch.random.fork_rng`` is not seen.
After a fast load the default generators are where the build left them, which is not where
the plain path leaves them (it drew the initial values of every parameter): code that draws
random numbers after a load and must match a plain load turns the fast path off.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import gc
import itertools
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from hubcore.plugins.backends import PlainPathNeeded, WeightsFile, sniff_format
from hubcore.store.safetensors_header import read_header

#: Functions that only read a tensor's metadata.
_METADATA = frozenset(
    {
        "size",
        "dim",
        "ndimension",
        "numel",
        "nelement",
        "element_size",
        "stride",
        "is_floating_point",
        "is_complex",
        "is_contiguous",
        "get_device",
        "data_ptr",
        "storage_offset",
        "__len__",
        "__hash__",
        "_has_compatible_shallow_copy_type",
        "__get__:shape",
        "__get__:dtype",
        "__get__:device",
        "__get__:requires_grad",
        "__get__:is_leaf",
        "__get__:ndim",
        "__get__:layout",
        "__get__:is_meta",
        "__get__:is_cuda",
        "__get__:is_sparse",
        "__get__:is_quantized",
        "__get__:grad",
        "__get__:grad_fn",
        "__get__:_base",
        "__get__:names",
    }
)
#: Functions returning a view or a conversion of their first argument: tracked like the
#: parameter itself (``Module.half()`` converts, then sets ``.data``).
_VIEWS = frozenset(
    {
        "to",
        "half",
        "float",
        "double",
        "bfloat16",
        "type",
        "__get__:data",
        "__get__:T",
        "detach",
        "__getitem__",
        "view",
        "view_as",
        "narrow",
        "select",
        "t",
        "transpose",
        "chunk",
        "split",
        "unbind",
    }
)
#: Reads of a tensor's device, answered for a deferred parameter with its real device.
_DEVICE_READS: dict[str, Callable[[Any], Any]] = {
    "__get__:device": lambda device: device,
    "__get__:is_cuda": lambda device: device.type == "cuda",
    "__get__:is_cpu": lambda device: device.type == "cpu",
    "get_device": lambda device: (
        -1 if device.index is None or device.type == "cpu" else device.index
    ),
}
#: Operations that draw from a random generator (in place or into a new tensor).
_DRAWS = frozenset(
    {
        "rand",
        "randn",
        "randint",
        "randperm",
        "rand_like",
        "randn_like",
        "randint_like",
        "normal",
        "bernoulli",
        "multinomial",
        "poisson",
        "binomial",
        "uniform_",
        "normal_",
        "random_",
        "bernoulli_",
        "exponential_",
        "geometric_",
        "cauchy_",
        "log_normal_",
        "dropout",
        "dropout_",
        "feature_dropout",
        "alpha_dropout",
        "feature_alpha_dropout",
        "native_dropout",
        "rrelu",
        "rrelu_",
        "rrelu_with_noise",
    }
)
#: Operations whose result's shape depends on the values of their inputs.
_VALUE_SHAPED = frozenset(
    {
        "nonzero",
        "argwhere",
        "unique",
        "unique_consecutive",
        "_unique",
        "_unique2",
        "masked_select",
        "bincount",
        "repeat_interleave",
    }
)
#: In-place operators beyond the ``name_`` methods.
_IN_PLACE = frozenset(
    {
        "__setitem__",
        "__iadd__",
        "__isub__",
        "__imul__",
        "__itruediv__",
        "__set__:data",
        "__set__:requires_grad",
    }
)


_UNKNOWN_DRAW = "an operation not known to draw moved a random generator after a deferred parameter"


class Build:
    """What happened while one model was built for weights (the build record)."""

    def __init__(self) -> None:
        #: id -> (meta parameter, the device it was created on).
        self.deferred: dict[int, tuple[weakref.ref[Any], Any]] = {}
        #: id -> views of deferred parameters (``.data``, slices).
        self.views: dict[int, weakref.ref[Any]] = {}
        #: id of a view -> the device its parameter was created on.
        self.view_devices: dict[int, Any] = {}
        #: id -> other meta tensors the build's operations made (``torch.zeros(device=...)``
        #: of a meta device, results of reading a deferred parameter).
        self.strays: dict[int, weakref.ref[Any]] = {}
        #: id of a replaced parameter -> (it, its meta replacement).
        self.replaced: dict[int, tuple[weakref.ref[Any], weakref.ref[Any]]] = {}
        #: Why the build's use of parameters rules the fast path out.
        self.reads: list[str] = []
        #: Why its use of random numbers does.
        self.random: list[str] = []
        #: The random generators' states when the build started (see :meth:`rewind`).
        self.started = _generator_states()
        #: Python's and NumPy's global random states then (the plain build draws them too).
        self.started_elsewhere = _other_random_states()
        #: Their states after the last draw noted since the first deferral (``None``: none yet).
        self.drawn: list[Any] | None = None
        #: id -> tensors made from numbers drawn after the first deferral.
        self.tainted: dict[int, weakref.ref[Any]] = {}
        #: ids of those among them whose shape, too, comes from those numbers.
        self.random_shapes: set[int] = set()
        #: Their memory (``nn.Parameter(t)`` shares it with ``t`` out of torch's sight).
        self.tainted_memory: set[int] = set()

    @property
    def changed(self) -> bool:
        """Whether the build ran differently from the plain path."""
        return bool(self.deferred or self.reads or self.random)

    def tracks(self, tensor: Any) -> bool:
        """Whether *tensor* is a deferred parameter or a view of one."""
        entry = self.deferred.get(id(tensor))
        if entry is not None and entry[0]() is tensor:
            return True
        view = self.views.get(id(tensor))
        return view is not None and view() is tensor

    def is_tainted(self, tensor: Any) -> bool:
        """Whether *tensor* was made from numbers drawn after the first deferral."""
        ref = self.tainted.get(id(tensor))
        return ref is not None and ref() is tensor

    def taint(self, out: Any, random_shape: bool = False) -> None:
        """Note the real tensors of *out* as made from numbers drawn after the first deferral
        (*random_shape*: their shape too)."""
        for tensor in _tensors(out):
            if not self.tracks(tensor):
                self.tainted[id(tensor)] = weakref.ref(tensor)
                if random_shape:
                    self.random_shapes.add(id(tensor))
                if tensor.layout == _strided() and tensor.numel():
                    self.tainted_memory.add(tensor.data_ptr())

    def untaint(self, tensor: Any) -> None:
        """*tensor* was overwritten by the weights: its drawn value no longer matters."""
        self.tainted.pop(id(tensor), None)

    def draw(self, name: str, func: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        """Run the random operation *func* (*name*) after the first deferral, tainting what it
        makes or fills."""
        if self.drawn is not None and not _same_states(self.drawn, _generator_states()):
            self.random.append(_UNKNOWN_DRAW)
        out = func(*args, **kwargs)
        self.drawn = _generator_states()
        self.taint(out)
        if _in_place(name) and args:
            self.taint(args[0])  # drawn in place
        return out

    def finish(self) -> None:
        """The build is over: any draw since the last one noted came from an unknown operation."""
        if self.drawn is not None and not _same_states(self.drawn, _generator_states()):
            self.random.append(_UNKNOWN_DRAW)

    def rewind(self) -> None:
        """Put the random generators (torch's, Python's, NumPy's) back to where they were when
        the build started, so the plain build that follows a fall back draws the numbers it
        draws today."""
        _set_generator_states(self.started)
        _set_other_random_states(self.started_elsewhere)

    def device_of(self, tensor: Any) -> Any:
        """The device a deferred parameter was created on (``None``: not deferred here)."""
        entry = self.deferred.get(id(tensor))
        return entry[1] if entry is not None and entry[0]() is tensor else None

    def real_device(self, tensor: Any) -> Any:
        """The device a tracked tensor (a deferred parameter or a view of one) has on the
        plain path: what the build is told when it asks (``p.device``)."""
        device = self.device_of(tensor)
        return device if device is not None else self.view_devices.get(id(tensor))

    def note_strays(self, out: Any) -> None:
        """Note the meta tensors in *out* that the build did not defer or view."""
        for tensor in _tensors(out):
            if tensor.is_meta and not self.tracks(tensor):
                self.strays[id(tensor)] = weakref.ref(tensor)

    def on_register(self, module: Any, name: str, param: Any) -> Any:
        """The parameter registration hook: a meta parameter in place of *param*."""
        if _active.get() is not self or param is None:
            return None
        import torch

        try:
            with torch._C.DisableTorchFunction():  # hubcore's own look at it: not the build's
                return self._defer(param)
        except Exception as exc:  # the plain path decides what this parameter does
            self.reads.append(f"a parameter it cannot defer ({type(exc).__name__})")
            return None

    def _defer(self, param: Any) -> Any:
        import torch
        from torch.nn.parameter import is_lazy

        if is_lazy(param):
            return None  # the plan refuses lazy modules
        if param.is_meta:
            if not self.tracks(param):  # made outside this build's sight (nn.Parameter(meta))
                self.reads.append("a meta parameter the build did not make")
            return None
        if type(param) is not torch.nn.Parameter:  # kept real; its numbers may be drawn ones
            strided = param.layout == torch.strided and param.numel()
            if strided and param.data_ptr() in self.tainted_memory:
                self.taint(param)
            return None
        if param.layout != torch.strided or param.is_quantized:
            self.reads.append("a sparse or quantized parameter")
            return None
        earlier = self.replaced.get(id(param))
        if earlier is not None and earlier[0]() is param:  # one parameter registered twice
            return earlier[1]()
        if self.drawn is None:  # from here on the build runs differently: watch the draws
            self.drawn = _generator_states()
        meta = torch.nn.Parameter(
            torch.empty_like(param, device="meta"), requires_grad=param.requires_grad
        )
        self.deferred[id(meta)] = (weakref.ref(meta), param.device)
        self.replaced[id(param)] = (weakref.ref(param), weakref.ref(meta))
        return meta

    def rewrapped(self, data: Any, made: Any) -> None:
        """``nn.Parameter(data)`` made *made*: when *data* is deferred (or a view of one), the
        two share memory, which assigning the weights cannot reproduce."""
        if self.tracks(data):
            self.views[id(made)] = weakref.ref(made)
            self.reads.append("nn.Parameter of a deferred parameter (shared memory)")
        elif self.is_tainted(data):
            self.taint(made, data is not None and id(data) in self.random_shapes)

    def judge(self, name: str, args: Sequence[Any], kwargs: Mapping[str, Any], out: Any) -> None:
        """Note an operation *name* that took a deferred parameter (or a view of one)."""
        import torch

        if name in _METADATA:
            return
        if name in _VIEWS:
            source = next((t for t in _tensors((args, kwargs)) if self.tracks(t)), None)
            device = self.real_device(source) if source is not None else None
            outs = out if isinstance(out, tuple | list) else (out,)
            for tensor in outs:
                if isinstance(tensor, torch.Tensor):
                    self.views[id(tensor)] = weakref.ref(tensor)
                    self.view_devices[id(tensor)] = device
            return
        target = args[0] if args else next(iter(kwargs.values()), None)
        if _in_place(name) and self.tracks(target):
            return  # it changes the parameter itself, whose value the weights replace
        self.reads.append(name)

    def escape(self, name: str, args: Sequence[Any], kwargs: Mapping[str, Any], out: Any) -> None:
        """Note an operation *name* that took a tainted tensor: what it makes or changes is
        tainted, and a result that is not a tensor takes the drawn numbers out of sight (so
        does a shape that depends on them: ``nonzero``, a mask)."""
        inputs = list(_tensors((args, kwargs)))
        random_shape = _value_shaped(name, args) or any(id(t) in self.random_shapes for t in inputs)
        if name in _METADATA:
            if any(id(t) in self.random_shapes for t in inputs):
                self.random.append(
                    f"{name} read a shape made from random numbers drawn after a deferred parameter"
                )
            return
        if _in_place(name):
            self.taint(args[0] if args else next(iter(kwargs.values()), None), random_shape)
        elif isinstance(out, _tensor_type()) or (
            isinstance(out, tuple | list) and all(isinstance(t, _tensor_type()) for t in out)
        ):
            self.taint(out, random_shape)
        else:
            self.random.append(
                f"{name} took random numbers drawn after a deferred parameter out of sight"
            )

    def leftovers(self) -> list[str]:
        """Why the built objects cannot be kept: meta tensors or early parameters alive."""
        alive = [ref() for ref, _ in self.deferred.values()] + [r() for r in self.views.values()]
        why = []
        if any(t is not None and t.is_meta for t in alive):
            why.append("a parameter (or a view of one) is still referenced outside the model")
        if any(ref() is not None for ref, _ in self.replaced.values()):
            why.append("a parameter was kept elsewhere before it was registered")
        if any(ref() is not None for ref in self.strays.values()):
            why.append(
                "a meta tensor made while building is still in use (made from a deferred "
                "parameter's device or values)"
            )
        if any(ref() is not None for ref in self.tainted.values()):
            why.append(
                "a tensor made from random numbers drawn after a deferred parameter is still "
                "in use (the plain path draws other numbers for it)"
            )
        return why


_active: contextvars.ContextVar[Build | None] = contextvars.ContextVar(
    "hubcore_torch_build", default=None
)


def _tensors(tree: Any, depth: int = 0) -> Iterator[Any]:
    """The tensors in *tree*: arguments, and lists, tuples and dicts of them (this runs for
    every operation of a build: a plain walk, not torch's pytree)."""
    tensor = _tensor_type()
    if isinstance(tree, tensor):
        yield tree
    elif isinstance(tree, list | tuple) and depth < 4:
        for item in tree:
            yield from _tensors(item, depth + 1)
    elif isinstance(tree, dict) and depth < 4:
        for item in tree.values():
            yield from _tensors(item, depth + 1)


def _value_shaped(name: str, args: Sequence[Any]) -> bool:
    """Whether the shape of what operation *name* makes depends on its inputs' values."""
    if name == "__getitem__":  # indexing with a mask or index tensor
        return any(True for _ in _tensors(tuple(args[1:])))
    if name == "where":
        return len(args) == 1  # torch.where(cond) is nonzero
    return name in _VALUE_SHAPED


def _in_place(name: str) -> bool:
    return name in _IN_PLACE or (name.endswith("_") and not name.startswith("__"))


@functools.cache
def _tensor_type() -> type:
    import torch

    return torch.Tensor


@functools.cache
def _strided() -> Any:
    import torch

    return torch.strided


def _other_random_states() -> tuple[Any, Any]:
    """Python's global random state, and NumPy's when NumPy is imported."""
    import random
    import sys

    numpy = sys.modules.get("numpy")
    return random.getstate(), (numpy.random.get_state() if numpy is not None else None)


def _set_other_random_states(states: tuple[Any, Any]) -> None:
    import random
    import sys

    random.setstate(states[0])
    numpy = sys.modules.get("numpy")
    if states[1] is not None and numpy is not None:
        numpy.random.set_state(states[1])


def _generator_states() -> list[Any]:
    """The states of torch's default generators: the CPU one, and CUDA's once initialised."""
    import torch

    states = [torch.default_generator.get_state()]
    if torch.cuda.is_initialized():
        states.extend(g.get_state() for g in torch.cuda.default_generators)
    return states


def _same_states(before: list[Any], after: list[Any]) -> bool:
    import torch

    return len(before) == len(after) and all(map(torch.equal, before, after))


def _set_generator_states(states: list[Any]) -> None:
    import torch

    torch.default_generator.set_state(states[0])
    if len(states) > 1:
        for generator, state in zip(torch.cuda.default_generators, states[1:], strict=False):
            generator.set_state(state)


def _name_of(func: Any) -> str:
    name = getattr(func, "__name__", "") or repr(func)
    if name in ("__get__", "__set__"):
        name += ":" + str(getattr(getattr(func, "__self__", None), "__name__", "?"))
    return name


@functools.cache
def _watch_class() -> type:
    from torch.overrides import TorchFunctionMode

    class Watch(TorchFunctionMode):
        """Sees every torch operation of the build, to judge those on deferred parameters."""

        def __init__(self, build: Build) -> None:
            super().__init__()
            self.build = build

        def __torch_function__(
            self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: Any = None
        ) -> Any:
            kwargs = kwargs or {}
            build = self.build
            if build.drawn is None:  # nothing deferred yet: the build runs as the plain one
                return func(*args, **kwargs)
            name = _name_of(func)
            if name in _DEVICE_READS and args and build.tracks(args[0]):
                # the device the parameter has on the plain path, never "meta": what the build
                # makes on it (a buffer, a mask) is then what the plain build makes
                device = build.real_device(args[0])
                if device is not None:
                    return _DEVICE_READS[name](device)
            out = build.draw(name, func, args, kwargs) if name in _DRAWS else func(*args, **kwargs)
            inputs = list(_tensors((args, kwargs)))
            if any(build.tracks(t) for t in inputs):
                build.judge(name, args, kwargs, out)
            build.note_strays(out)
            if build.tainted and any(build.is_tainted(t) for t in inputs):
                build.escape(name, args, kwargs, out)
            return out

    return Watch


@functools.cache
def _watch_parameter_making() -> None:
    """Let the active build see ``nn.Parameter(tensor)``, which torch functions do not (it
    shares the tensor's memory). Outside a build the wrapper only passes the call on."""
    import torch

    original = torch.nn.Parameter.__new__

    def __new__(cls: Any, data: Any = None, requires_grad: bool = True) -> Any:
        made = original(cls, data, requires_grad)
        build = _active.get()
        if build is not None and data is not None:
            with torch._C.DisableTorchFunction():  # hubcore's own look: not the build's
                build.rewrapped(data, made)
        return made

    torch.nn.Parameter.__new__ = staticmethod(__new__)  # type: ignore[assignment]


@contextlib.contextmanager
def building() -> Iterator[Build | None]:
    """The build context of the torch backend (see the module docstring)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None:  # no torch model can be built without torch imported first
        yield None
        return
    _watch_parameter_making()
    build = Build()
    token = _active.set(build)
    handle = torch.nn.modules.module.register_module_parameter_registration_hook(build.on_register)
    try:
        with _watch_class()(build):
            yield build
    finally:
        handle.remove()
        _active.reset(token)
        build.finish()


@contextlib.contextmanager
def _suspended() -> Iterator[None]:
    """No deferring while weights are assigned (an outer build may be running)."""
    token = _active.set(None)
    try:
        yield
    finally:
        _active.reset(token)


def refuse(reason: str) -> None:
    """Rule the fast path out for *reason* (the tests replace this to force the fast path)."""
    raise PlainPathNeeded(reason)


def read_mapped(file: WeightsFile, read: Any, map_location: Any) -> Mapping[str, Any]:
    """The state of *file*, memory-mapped, through the backend's reader *read*."""
    kind = "safetensors" if file.suffix == ".safetensors" else sniff_format(file.path)
    if kind not in ("safetensors", "zip"):  # safetensors and torch.load(mmap=True) map it
        refuse(f"{file.name} is in torch's legacy format, which cannot be memory-mapped")
    state = read(file, **({} if map_location is None else {"map_location": map_location}))
    if not isinstance(state, Mapping):
        refuse(f"{file.name} holds no state dict")
    return state


def _shapes(file: WeightsFile, read: Any, map_location: Any) -> dict[str, tuple[int, ...]]:
    if file.suffix == ".safetensors" or sniff_format(file.path) == "safetensors":
        header = read_header(file.path, file.name)
        return {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}
    state = read_mapped(file, read, map_location)
    return {k: tuple(getattr(v, "shape", ())) for k, v in state.items()}


def assign(
    model: Any,
    files: Sequence[WeightsFile],
    build: Build,
    *,
    strict: bool,
    read: Any,
    map_location: Any = None,
) -> None:
    """Assign *files* to *model*, built under *build*; see the module docstring."""
    with _suspended():
        _assign(model, files, build, strict, read, map_location)


def _assign(
    model: Any,
    files: Sequence[WeightsFile],
    build: Build,
    strict: bool,
    read: Any,
    map_location: Any,
) -> None:
    if build.reads:
        refuse(f"the build used parameter values ({', '.join(sorted(set(build.reads))[:5])})")
    if build.random:
        refuse(f"{build.random[0]} (the plain path draws other numbers)")
    given: dict[str, tuple[int, ...]] = {}
    for file in files:
        for key, shape in _shapes(file, read, map_location).items():
            if key in given:
                refuse(f"{key} is in more than one weight file")
            given[key] = shape
    plan = _plan(model, build, given, strict)
    for file in files:  # one shard at a time: its tensors are mapped, assigned, let go
        state = read_mapped(file, read, map_location)
        assigned, copied, spans = {}, {}, []
        for key, value in state.items():
            if key in plan.copy:
                copied[key] = value
            elif key in plan.winners:
                converted = _own_memory(value.to(**plan.targets[key]), plan.strides[key], spans)
                for alias in plan.winners[key]:
                    assigned[alias] = converted
        model.load_state_dict(assigned, strict=False, assign=True)
        model.load_state_dict(copied, strict=False)  # real buffers: copied, as plainly
        for key in copied:
            build.untaint(plan.copy[key])  # overwritten: a drawn value is gone
        del state, assigned, copied
    _retie(model, plan.ties)
    del plan
    why = _meta_left(model) + build.leftovers()
    for generation in (0, 2):
        if not why:
            break
        # A reference cycle left by the build may still hold a meta tensor: hubcore pauses the
        # collector during loads, so collect (the young generation first: cheap) and look again.
        gc.collect(generation)
        why = _meta_left(model) + build.leftovers()
    if why:
        refuse("; ".join(why))


def _own_memory(tensor: Any, strides: tuple[int, ...], spans: list[tuple[int, int]]) -> Any:
    """*tensor* as the parameter takes it: with the parameter's strides (the plain path copies
    into the parameter, keeping its memory format), and not sharing memory with another
    parameter of this file (torch's format can save two tensors on one storage); else a copy.
    *spans* are the memory ranges given out so far."""
    import torch

    start = tensor.data_ptr()
    reach = sum((n - 1) * abs(step) for n, step in zip(tensor.shape, tensor.stride(), strict=True))
    end = start + (reach + 1) * tensor.element_size() if tensor.numel() else start
    shared = tensor.numel() and any(start < e and s < end for s, e in spans)
    if tuple(tensor.stride()) != strides or shared:
        fresh = torch.empty_strided(
            tuple(tensor.shape), strides, dtype=tensor.dtype, device=tensor.device
        )
        fresh.copy_(tensor)
        return fresh
    if tensor.numel():
        spans.append((start, end))
    return tensor


class _Plan:
    def __init__(self) -> None:
        #: The key whose value a tied group takes -> every name of the group.
        self.winners: dict[str, list[str]] = {}
        #: Winner key -> the dtype and device the value is converted to.
        self.targets: dict[str, dict[str, Any]] = {}
        #: Keys of real (not deferred) entries, copied as the plain path copies them -> the
        #: model's tensor.
        self.copy: dict[str, Any] = {}
        #: Names that share one tensor, in state dict order.
        self.ties: list[list[str]] = []
        #: Winner key -> the strides its parameter has (a memory format the build chose).
        self.strides: dict[str, tuple[int, ...]] = {}


def _plan(model: Any, build: Build, given: Mapping[str, tuple[int, ...]], strict: bool) -> _Plan:
    """Which file entry each model entry takes, checked against what the plain path does."""
    from torch.nn.parameter import is_lazy

    entries = model.state_dict(keep_vars=True)  # tied tensors appear under every name
    if any(is_lazy(v) for v in entries.values()):
        refuse("the model has lazy (uninitialised) parameters")
    if strict and (
        set(entries) != set(given) or any(tuple(v.shape) != given[k] for k, v in entries.items())
    ):
        refuse("the weights do not match the model exactly (the plain path reports how)")
    groups: dict[int, list[str]] = {}
    for key, value in entries.items():
        groups.setdefault(id(value), []).append(key)
    plan = _Plan()
    for names in groups.values():
        tensor = entries[names[0]]
        fits = [n for n in names if given.get(n) == tuple(tensor.shape)]
        if len(names) > 1:
            plan.ties.append(names)
        if not tensor.is_meta:
            plan.copy.update(dict.fromkeys(fits, tensor))
            continue
        if not fits:
            refuse(
                f"the weights give no value for {names[0]}, so its value would come from the "
                "model's own random initialisation"
            )
            continue
        device = build.device_of(tensor)
        if device is None:
            refuse(f"{names[0]} is a meta tensor the build did not make (a view of a parameter)")
            continue
        winner = fits[-1]  # the plain path copies every name in turn: the last one stays
        plan.winners[winner] = names
        plan.targets[winner] = {"dtype": tensor.dtype, "device": device}
        plan.strides[winner] = tuple(tensor.stride())
    return plan


def _retie(model: Any, ties: list[list[str]]) -> None:
    """Make tied names one tensor again (assignment gave each name its own)."""
    for names in ties:
        first = model.get_parameter(names[0]) if _is_param(model, names[0]) else None
        if first is None:
            first = model.get_buffer(names[0])
        for name in names[1:]:
            owner, _, attr = name.rpartition(".")
            module = model.get_submodule(owner)
            table = module._parameters if attr in module._parameters else module._buffers
            table[attr] = first


def _is_param(model: Any, name: str) -> bool:
    owner, _, attr = name.rpartition(".")
    return attr in model.get_submodule(owner)._parameters


def _meta_left(model: Any) -> list[str]:
    """Meta tensors left in *model*: parameters, buffers, tensors held as attributes (or in a
    list, tuple or dict held so). Meta tensors held deeper are the build's strays
    (:meth:`Build.leftovers`)."""
    import torch

    named = itertools.chain(
        model.named_parameters(remove_duplicate=False), model.named_buffers(remove_duplicate=False)
    )
    left = [name for name, tensor in named if tensor.is_meta]
    for prefix, module in model.named_modules(remove_duplicate=False):
        for attr, value in vars(module).items():
            if attr in ("_parameters", "_buffers", "_modules"):
                continue
            if isinstance(value, dict):
                items = list(value.values())
            else:
                items = list(value) if isinstance(value, list | tuple) else [value]
            if any(isinstance(v, torch.Tensor) and v.is_meta for v in items):
                left.append(f"{prefix}.{attr}" if prefix else attr)
    return [f"meta tensors are left in the model: {', '.join(left[:5])}"] if left else []
