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
written by a newer version of a model's code must be read by that code. A value of the
wrong simple type (``int``, ``float``, ``str``, ``bool``, or ``X | None`` of them) or one
the class's own validators refuse is a :class:`ConfigValueError` naming the field.
"""

from __future__ import annotations

import difflib
import json
import os
import types
import typing
from collections.abc import Callable, Mapping
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
    """``{"model_type": ..., field: value, ...}`` of a model configuration (JSON-ready)."""
    if not is_model_config(config):
        raise TypeError(f"{type(config).__name__} is not a @hubcore.model_config class")
    values = attrs.asdict(config, recurse=True)
    return {"model_type": config.model_type, **values}


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
    fields = {f.name: f for f in attrs.fields(cls)}
    for key in values:
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigValueError(
                f"{cls.__name__} has no field {key!r}{hint}; its fields are "
                f"{', '.join(fields) or '(none)'}"
            )
    hints = _hints(cls)
    for key, value in values.items():
        problem = _type_problem(hints.get(key), value)
        if problem:
            raise ConfigValueError(f"{cls.__name__}.{key}: {problem}, got {value!r}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigValueError(
            f"{cls.__name__}: {_blamed_field(cls, values) or 'a value'} is refused: {exc}"
        ) from exc


def _hints(cls: type[Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # unresolvable annotations: no type checks, validators still run
        return {}


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


def read_config_json(root: Path, label: str) -> dict[str, Any]:
    """The ``config.json`` of *root* as a dict, its format checked."""
    try:
        data = json.loads((root / CONFIG_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PackageError(f"{label} has no {CONFIG_NAME}: it is not a model package") from None
    except (OSError, ValueError) as exc:
        raise PackageError(f"{label}: its {CONFIG_NAME} is not readable JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("model_type"), str):
        raise PackageError(f"{label}: its {CONFIG_NAME} names no model_type")
    section = data.get("hubcore", {})
    if not isinstance(section, dict):
        raise PackageError(f"{label}: the 'hubcore' section of its {CONFIG_NAME} is malformed")
    version = section.get("format", 1)
    if not isinstance(version, int) or version > CONFIG_FORMAT:
        raise PackageError(
            f"{label}: its {CONFIG_NAME} has format {version!r}, newer than this hubcore "
            f"reads ({CONFIG_FORMAT}); upgrade hubcore"
        )
    return data


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
