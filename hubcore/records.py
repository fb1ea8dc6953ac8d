"""Records for the modules every command imports: declared like attrs classes, built without
generating code.

``import attrs`` costs about 30 ms and each attrs (or dataclasses) class compiles its
``__init__``, ``__eq__`` and ``__repr__`` when its module is imported, about 0.4 to 0.7 ms a
class; the 23 record classes on the path of a cold ``hubcore.load`` paid about 35 ms of a
start-up budget of 100 ms (measured in docs/benchmarks.md). A :class:`Record` subclass reads
its fields from its annotations once, when the class is created, and shares one generic
``__init__``, ``__eq__``, ``__hash__`` and ``__repr__``: nothing is compiled at run time.
Type checkers see the generated ``__init__`` through :pep:`681`.

Modules off the start-up path (packages, registry, site) keep attrs, which also remains the way
users declare package configurations.

::

    class Weights(Record):
        url: str
        sha256: str | None = None
        tags: tuple[str, ...] = field(factory=tuple, eq=False)

    class Progress(Record, frozen=False):   # mutable: fields may be assigned, no hash
        done: list[str] = field(factory=list)

Rules, as attrs has them: fields are the annotated class attributes other than ``ClassVar``
ones, in order, a subclass's after its bases'; a field without a default may not follow one
with a default; ``__init__`` takes them positionally or by name (``alias=`` renames the
parameter of a private field); ``__post_init__`` runs after the fields are set (a frozen
record sets derived values with ``object.__setattr__``); frozen records are hashable, mutable
ones are not. A class that defines ``__eq__``, ``__hash__`` or ``__repr__`` itself keeps its own.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

__all__ = ["Field", "FrozenRecordError", "Record", "asdict", "field", "fields", "replace"]

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_: Any) -> Callable[[Any], Any]:
        """Only type checkers read it."""
        return lambda cls: cls


_MISSING: Any = type("_Missing", (), {"__repr__": lambda self: "MISSING"})()

R = TypeVar("R", bound="Record")


class FrozenRecordError(AttributeError):
    """A field of a frozen record was assigned or deleted."""


class Field:
    """One field of a record: its name, the parameter that sets it, its default, and whether
    it takes part in equality and ``repr``. ``metadata`` is free for the declaring module."""

    __slots__ = ("alias", "default", "eq", "factory", "metadata", "name", "repr")

    def __init__(
        self,
        *,
        default: Any = _MISSING,
        factory: Callable[[], Any] | None = None,
        eq: bool = True,
        repr: bool = True,
        alias: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if default is not _MISSING and factory is not None:
            raise TypeError("a field takes a default or a factory, not both")
        self.name = ""
        self.alias = alias or ""
        self.default = default
        self.factory = factory
        self.eq = eq
        self.repr = repr
        self.metadata: Mapping[str, Any] = metadata or {}

    @property
    def has_default(self) -> bool:
        """Whether ``__init__`` may leave this field out."""
        return self.default is not _MISSING or self.factory is not None

    def __repr__(self) -> str:
        return f"Field(name={self.name!r}, alias={self.alias!r}, default={self.default!r})"


def field(
    *,
    default: Any = _MISSING,
    factory: Callable[[], Any] | None = None,
    eq: bool = True,
    repr: bool = True,
    alias: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Any:
    """Declare a field with more than a plain default: ``factory`` builds a fresh default for
    each record, ``eq=False`` leaves it out of equality and hashing, ``repr=False`` out of
    ``repr``, ``alias`` names its ``__init__`` parameter."""
    return Field(default=default, factory=factory, eq=eq, repr=repr, alias=alias, metadata=metadata)


def _is_class_var(hint: object) -> bool:
    text = hint if isinstance(hint, str) else getattr(hint, "__origin__", hint)
    if isinstance(text, str):
        return text.startswith(("ClassVar", "typing.ClassVar"))
    return text is ClassVar


@dataclass_transform(frozen_default=True, field_specifiers=(field, Field))
class Record:
    """Base class of hubcore's plain records (see the module's docstring)."""

    __record_fields__: ClassVar[tuple[Field, ...]] = ()
    __record_frozen__: ClassVar[bool] = True
    # the fields compared (and hashed), and the ones shown by repr: worked out once per class
    __record_eq__: ClassVar[tuple[str, ...]] = ()
    __record_repr__: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, *, frozen: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__record_fields__ and frozen != cls.__record_frozen__:
            raise TypeError(f"{cls.__qualname__}: a record cannot change frozen from its base")
        found = {f.name: f for f in cls.__record_fields__}
        for name, hint in inspect.get_annotations(cls).items():
            if _is_class_var(hint):
                continue
            value = cls.__dict__.get(name, _MISSING)
            spec = value if isinstance(value, Field) else Field(default=value)
            spec.name = name
            spec.alias = spec.alias or name
            if isinstance(value, Field):  # the class attribute is the default, or nothing
                if spec.default is _MISSING:
                    delattr(cls, name)
                else:
                    setattr(cls, name, spec.default)
            found.pop(name, None)
            found[name] = spec
        specs = tuple(found.values())
        for before, after in itertools.pairwise(specs):
            if before.has_default and not after.has_default:
                raise TypeError(
                    f"{cls.__qualname__}: field {after.name!r} without a default follows "
                    f"{before.name!r}, which has one"
                )
        cls.__record_fields__ = specs
        cls.__record_frozen__ = frozen
        cls.__record_eq__ = tuple(f.name for f in specs if f.eq)
        cls.__record_repr__ = tuple(f.name for f in specs if f.repr)
        if not frozen:
            if "__hash__" not in cls.__dict__:
                cls.__hash__ = None  # type: ignore[assignment]  # mutable, compared by value
            if "__setattr__" not in cls.__dict__:  # no frozen check on every assignment
                cls.__setattr__ = object.__setattr__  # type: ignore[method-assign,assignment]
                cls.__delattr__ = object.__delattr__  # type: ignore[method-assign]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        specs = self.__record_fields__
        if len(args) > len(specs):
            raise TypeError(
                f"{type(self).__qualname__}() takes {len(specs)} arguments, {len(args)} given"
            )
        put = object.__setattr__
        for index, spec in enumerate(specs):
            if index < len(args):
                if spec.alias in kwargs:
                    raise TypeError(
                        f"{type(self).__qualname__}() got two values for {spec.alias!r}"
                    )
                value = args[index]
            elif spec.alias in kwargs:
                value = kwargs.pop(spec.alias)
            elif spec.factory is not None:
                value = spec.factory()
            elif spec.default is not _MISSING:
                value = spec.default
            else:
                raise TypeError(
                    f"{type(self).__qualname__}() is missing the argument {spec.alias!r}"
                )
            put(self, spec.name, value)
        if kwargs:
            raise TypeError(
                f"{type(self).__qualname__}() got unexpected arguments: {', '.join(kwargs)}"
            )
        post = getattr(self, "__post_init__", None)
        if post is not None:
            post()

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__record_frozen__:
            raise FrozenRecordError(f"{type(self).__qualname__} is frozen: cannot set {name!r}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if self.__record_frozen__:
            raise FrozenRecordError(f"{type(self).__qualname__} is frozen: cannot delete {name!r}")
        object.__delattr__(self, name)

    def _eq_values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__record_eq__)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._eq_values() == other._eq_values()

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash((self.__class__, self._eq_values()))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__record_repr__)
        return f"{type(self).__qualname__}({shown})"


def fields(record: Record | type[Record]) -> tuple[Field, ...]:
    """The fields of a record class (or of a record's class), in ``__init__`` order."""
    return record.__record_fields__


def replace(record: R, **changes: Any) -> R:
    """A copy of *record* with the named fields changed (by their ``__init__`` names), built
    through ``__init__`` so ``__post_init__`` runs again."""
    values = {spec.alias: getattr(record, spec.name) for spec in record.__record_fields__}
    unknown = set(changes) - set(values)
    if unknown:
        raise TypeError(f"{type(record).__qualname__} has no field {', '.join(sorted(unknown))}")
    return type(record)(**{**values, **changes})


def asdict(record: Record) -> dict[str, Any]:
    """The fields of *record* as a dictionary, records inside it (alone, in lists, tuples and
    dictionary values) turned into dictionaries too; tuples and sets become lists, as in JSON
    (and as ``attrs.asdict`` gives them)."""
    return {spec.name: _plain(getattr(record, spec.name)) for spec in record.__record_fields__}


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return asdict(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value
