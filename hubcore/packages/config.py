"""Model configurations: ``@hubcore.model_config("tinynet")`` on an attrs class.

::

    @hubcore.model_config("tinynet")
    class TinyNetConfig:
        hidden: int = attrs.field(default=16, validator=attrs.validators.gt(0))
        activation: str = "relu"

    config = TinyNetConfig(hidden=32)
    config.save("out/")                        # out/config.json
    TinyNetConfig.load("out/")                 # or any reference a package loads from

The decorated class (made an attrs class if it is not one) gains ``model_type``,
``to_dict()``, ``from_dict(data)``, ``save(folder)`` and ``load(folder_or_ref)``.
``config.json`` holds ``model_type``, the fields, and a ``hubcore`` section with the format
version (:data:`CONFIG_FORMAT`), so a later hubcore still reads today's files and today's
hubcore refuses a newer format with a clear message.

Policy for keys: an unknown key is refused (:class:`ConfigValueError` naming it and the
closest field), unlike transformers, which keeps unknown keys as attributes; a package
written by a newer version of a model's code must be read by that code. Fields may hold
``int``, ``float``, ``str``, ``bool``, ``None``, enums (saved as their values), nested attrs
classes (saved as objects, read back as instances), ``list``/``tuple``/``set``/
``frozenset`` (saved as lists, read back as the annotated container), ``dict`` with string
keys, ``Literal`` and unions of these (``X | None``). A value that does not fit its
annotation, at any depth, or one the class's own validators refuse is a
:class:`ConfigValueError` naming the field's path (``Config.blocks[1].width``); saving a
value JSON cannot hold (a ``Path``, an array) is one too. Fields with ``init=False`` are
neither saved nor read.
"""

from __future__ import annotations

import difflib
import enum
import json
import os
import types
import typing
import weakref
from collections.abc import Callable, Mapping, MutableSequence, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any, TypeVar

import attrs

from hubcore.packages.errors import ConfigValueError, PackageError
from hubcore.store.files import atomic_write

__all__ = [
    "CONFIG_FORMAT",
    "CONFIG_NAME",
    "config_from_dict",
    "config_to_dict",
    "is_model_config",
    "model_config",
    "read_config_json",
    "write_config_json",
]

CONFIG_NAME = "config.json"
#: The version of the ``config.json`` layout this hubcore writes and reads (and below).
CONFIG_FORMAT = 1
_MARK = "__hubcore_model_config__"
_RESERVED = frozenset({"model_type", "hubcore"})

C = TypeVar("C", bound=type)


def model_config(model_type: str) -> Callable[[C], C]:
    """Make a class a model configuration of type *model_type* (see the module docstring)."""
    if not isinstance(model_type, str) or not model_type.strip():
        raise TypeError("model_config needs a model type name, such as 'tinynet'")

    def decorate(cls: C) -> C:
        made: Any = cls if attrs.has(cls) else attrs.define(cls)
        clash = _RESERVED & {f.name for f in attrs.fields(made)}
        if clash:
            raise TypeError(f"{made.__name__}: a config field may not be named {sorted(clash)}")
        made.model_type = model_type
        setattr(made, _MARK, True)
        made.to_dict = config_to_dict
        made.from_dict = classmethod(config_from_dict)
        made.save = _save
        made.load = classmethod(_load)
        return typing.cast(C, made)

    return decorate


def is_model_config(obj: object) -> bool:
    """Whether *obj* is an instance (or class) made by :func:`model_config`."""
    cls = obj if isinstance(obj, type) else type(obj)
    return getattr(cls, _MARK, False) is True


def config_to_dict(config: Any) -> dict[str, Any]:
    """``{"model_type": ..., field: value, ...}`` of a model configuration (JSON-ready: see
    the module docstring for the types a field may hold)."""
    if not is_model_config(config):
        raise TypeError(f"{type(config).__name__} is not a @hubcore.model_config class")
    return {"model_type": config.model_type, **_unstructure(config, type(config).__name__)}


def config_from_dict(cls: type[Any], data: Mapping[str, Any]) -> Any:
    """An instance of the configuration class *cls* from *data* (see the module docstring
    for what is refused); ``model_type`` and the ``hubcore`` section are checked, not
    passed on."""
    values = {k: v for k, v in data.items() if k not in _RESERVED}
    given_type = data.get("model_type", cls.model_type)
    if given_type != cls.model_type:
        raise ConfigValueError(
            f"the configuration is of model type {given_type!r}, but {cls.__name__} is "
            f"{cls.model_type!r}"
        )
    return _structure_attrs(cls, values, cls.__name__)


class _Mismatch(Exception):
    """A value that does not fit its annotation; the message says where and why."""


def _structure_attrs(cls: type[Any], values: Any, where: str) -> Any:
    """An instance of the attrs class *cls* from the JSON object *values*."""
    if not isinstance(values, Mapping):
        raise ConfigValueError(f"{where}: expected an object of {cls.__name__}'s fields")
    fields = {f.name: f for f in attrs.fields(cls) if f.init}
    for key in values:
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigValueError(
                f"{where} has no field {key!r}{hint}; its fields are "
                f"{', '.join(fields) or '(none)'}"
            )
    hints = _hints(cls)
    converted = {}
    for key, value in values.items():
        try:
            converted[key] = _structure(hints.get(key, Any), value, f"{where}.{key}")
        except _Mismatch as exc:
            raise ConfigValueError(str(exc)) from None
    try:
        return cls(**converted)
    except (TypeError, ValueError) as exc:
        raise ConfigValueError(
            f"{where}: {_blamed_field(cls, converted) or 'a value'} is refused: {exc}"
        ) from exc


def _structure(hint: Any, value: Any, where: str) -> Any:
    """*value* (parsed JSON) as the annotation *hint* wants it; raises :class:`_Mismatch`
    or :class:`ConfigValueError`. Annotations it does not know pass the value through."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is object:
        return value
    if hint is type(None) or hint is None:
        if value is None:
            return None
        raise _Mismatch(f"{where}: expected None, got {value!r}")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in args:
            try:
                return _structure(option, value, where)
            except (_Mismatch, ConfigValueError):
                continue
        raise _Mismatch(f"{where}: expected {_name(hint)}, got {value!r}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise _Mismatch(f"{where}: expected one of {list(args)}, got {value!r}")
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError:
            choices = [m.value for m in hint]
            raise _Mismatch(f"{where}: expected one of {choices}, got {value!r}") from None
    if hint in _SIMPLE:
        problem = _type_problem(hint, value)
        if problem:
            raise _Mismatch(f"{where}: {problem}, got {value!r}")
        return float(value) if hint is float else value
    if isinstance(hint, type) and attrs.has(hint):
        return _structure_attrs(hint, value, where)
    container = origin or hint
    if not isinstance(container, type):
        return value  # an annotation this reader does not know: validators still run
    if issubclass(container, Mapping):
        if not isinstance(value, Mapping):
            raise _Mismatch(f"{where}: expected an object, got {value!r}")
        item = args[1] if len(args) == 2 else Any
        return {k: _structure(item, v, f"{where}[{k!r}]") for k, v in value.items()}
    if issubclass(container, (list, tuple, set, frozenset)) or container in (
        Sequence,
        MutableSequence,
        AbstractSet,
    ):
        if not isinstance(value, list):
            raise _Mismatch(f"{where}: expected a list, got {value!r}")
        if container is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise _Mismatch(f"{where}: expected {len(args)} items, got {value!r}")
            pairs = enumerate(zip(args, value, strict=True))
            items = [_structure(a, v, f"{where}[{i}]") for i, (a, v) in pairs]
        else:
            item = args[0] if args else Any
            items = [_structure(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        if container in (Sequence, MutableSequence):
            return items
        if container is AbstractSet:
            return frozenset(items)
        made: Any = container
        return made(items)
    return value


def _name(hint: Any) -> str:
    if hint is type(None):
        return "None"
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_name(a) for a in typing.get_args(hint))
    return getattr(hint, "__name__", None) or str(hint)


def _unstructure(value: Any, where: str) -> Any:
    """*value* as JSON can hold it: attrs instances as objects of their init fields, enums
    as their values, tuples and sets as lists; anything else JSON cannot hold is a
    :class:`ConfigValueError` naming *where*."""
    if attrs.has(type(value)):
        return {
            f.name: _unstructure(getattr(value, f.name), f"{where}.{f.name}")
            for f in attrs.fields(type(value))
            if f.init
        }
    if isinstance(value, enum.Enum):
        return _unstructure(value.value, where)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_unstructure(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        items = [_unstructure(v, f"{where}[]") for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise ConfigValueError(f"{where}: config.json keeps only string keys")
        return {k: _unstructure(v, f"{where}[{k!r}]") for k, v in value.items()}
    raise ConfigValueError(
        f"{where}: a {type(value).__name__} cannot be saved in config.json; use a number, "
        "string, bool, None, enum, list, tuple, dict or attrs class (a path as a str)"
    )


#: Each class's resolved annotations: resolving them evaluates strings (every load).
_HINTS: weakref.WeakKeyDictionary[type[Any], dict[str, Any]] = weakref.WeakKeyDictionary()


def _hints(cls: type[Any]) -> dict[str, Any]:
    found = _HINTS.get(cls)
    if found is None:
        try:
            found = _HINTS[cls] = typing.get_type_hints(cls)
        except Exception:  # unresolvable annotations: no type checks, validators still run
            return {}
    return found


_SIMPLE = (int, float, str, bool)


def _type_problem(hint: Any, value: Any) -> str | None:
    """Why *value* does not fit a simple annotation *hint*; ``None`` when it fits or the
    annotation is not a simple one."""
    allowed: tuple[Any, ...]
    if hint in _SIMPLE:
        allowed = (hint,)
    elif typing.get_origin(hint) in (typing.Union, types.UnionType):
        allowed = typing.get_args(hint)
        if not all(a in _SIMPLE or a is type(None) for a in allowed):
            return None
    else:
        return None
    for kind in allowed:
        if kind is type(None) and value is None:
            return None
        if kind is bool and isinstance(value, bool):
            return None
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return None
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            return None
        if kind is str and isinstance(value, str):
            return None
    names = " or ".join("None" if a is type(None) else a.__name__ for a in allowed)
    return f"expected {names}"


def _blamed_field(cls: type[Any], values: Mapping[str, Any]) -> str | None:
    """The field whose value alone makes *cls* refuse (validators say which only in words)."""
    for key, value in values.items():
        try:
            cls(**{key: value})
        except (TypeError, ValueError):
            return f"field {key!r} = {value!r}"
    return None


def write_config_json(folder: Path, data: Mapping[str, Any]) -> tuple[str, int]:
    """Write ``config.json`` into *folder* atomically; return its ``(sha256, size)``."""
    import hashlib

    raw = (json.dumps(data, indent=2, sort_keys=False) + "\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / CONFIG_NAME, lambda handle: handle.write(raw))
    return hashlib.sha256(raw).hexdigest(), len(raw)


def read_config_json(root: Path, label: str, *, remote: bool = True) -> dict[str, Any]:
    """The ``config.json`` of *root* as a dict, its format and ``hubcore`` section checked
    (read as :mod:`hubcore.packages.files` reads package files; *remote*: *root* is a
    fetched snapshot, whose links may not leave it)."""
    from hubcore.packages.files import read_json_file

    try:
        data = read_json_file(root, CONFIG_NAME, label, remote=remote)
    except FileNotFoundError:
        raise PackageError(f"{label} has no {CONFIG_NAME}: it is not a model package") from None
    if not isinstance(data, dict) or not isinstance(data.get("model_type"), str):
        raise PackageError(f"{label}: its {CONFIG_NAME} names no model_type")
    section = data.get("hubcore", {})
    if not isinstance(section, dict):
        raise PackageError(f"{label}: the 'hubcore' section of its {CONFIG_NAME} is malformed")
    version = section.get("format", 1)
    if type(version) is not int or version > CONFIG_FORMAT:
        raise PackageError(
            f"{label}: its {CONFIG_NAME} has format {version!r}, newer than this hubcore "
            f"reads ({CONFIG_FORMAT}); upgrade hubcore"
        )
    for key, kinds in _SECTION_TYPES.items():
        value = section.get(key)
        if value is not None and not isinstance(value, kinds):
            raise PackageError(f"{label}: {CONFIG_NAME} has a malformed hubcore.{key}: {value!r}")
    code = section.get("code") or []
    if not all(isinstance(name, str) for name in code):
        raise PackageError(f"{label}: {CONFIG_NAME} has a malformed hubcore.code: {code!r}")
    return data


#: The keys of the ``hubcore`` section and the JSON types they may have (or null).
_SECTION_TYPES: dict[str, type | tuple[type, ...]] = {
    "framework": str,
    "hubcore_version": str,
    "config_class": str,
    "build": str,
    "weights": str,
    "code": list,
    "distributions": list,
}


def _save(self: Any, folder: str | os.PathLike[str]) -> Path:
    """Write this configuration to ``folder/config.json``; return that path."""
    target = Path(folder)
    write_config_json(target, {**config_to_dict(self), "hubcore": {"format": CONFIG_FORMAT}})
    return target / CONFIG_NAME


def _load(cls: type[Any], /, folder_or_ref: str | os.PathLike[str], **options: Any) -> Any:
    """Read a configuration from a folder's ``config.json`` or from any reference a package
    loads from (*options* as for :func:`hubcore.open_repo`); runs no code of the package."""
    path = Path(folder_or_ref)
    if path.is_dir():
        root, label = path, str(path)
    else:
        from hubcore.api import open_repo

        snapshot = open_repo(str(folder_or_ref), **options)
        root, label = snapshot.root, str(snapshot.ref)
    return config_from_dict(cls, read_config_json(root, label))
