"""Model types: ``model_type`` name -> (configuration class, build function).

Registered in one process with :func:`register_model_type`, or by an installed plugin through
the ``hubcore_register_model_types`` hook (:mod:`hubcore.plugins.hookspecs`). A package whose
``model_type`` is registered is built by the registered function and needs no shipped code.
A type registered in the process wins over one from a plugin of the same name. Two plugins
registering one name is a conflict: neither is used, and a package of that type is refused
with an error naming both (:func:`conflicting_model_types`), since which plugin built it would
otherwise depend on the order plugins load.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import attrs

from hubcore.packages.config import is_model_config

__all__ = ["ModelType", "conflicting_model_types", "model_types", "register_model_type"]


@attrs.frozen
class ModelType:
    """A registered model type: its configuration class, build function and origin."""

    name: str
    config: type[Any]
    build: Callable[[Any], Any]
    origin: str = "process"


_registered: dict[str, ModelType] = {}
#: Per plugin manager: the types plugins registered, and the names several registered.
_from_plugins: dict[int, tuple[dict[str, ModelType], dict[str, list[str]]]] = {}
_lock = threading.Lock()


def _checked(name: str, config: Any, build: Any, origin: str) -> ModelType:
    if not isinstance(name, str) or not name:
        raise TypeError(f"{origin}: a model type needs a name")
    if not isinstance(config, type) or not is_model_config(config):
        raise TypeError(f"{origin}: config= of model type {name!r} must be a @model_config class")
    if getattr(config, "model_type", None) != name:
        raise TypeError(
            f"{origin}: model type {name!r} registered with {config.__name__}, whose "
            f"model_type is {getattr(config, 'model_type', None)!r}"
        )
    if not callable(build):
        raise TypeError(f"{origin}: build= of model type {name!r} must be callable")
    return ModelType(name, config, build, origin)


def register_model_type(name: str, *, config: type[Any], build: Callable[[Any], Any]) -> None:
    """Register model type *name*: packages of that type are built with ``build(config)``
    where *config* is an instance of the configuration class *config*."""
    entry = _checked(name, config, build, "register_model_type")
    with _lock:
        _registered[name] = entry


def model_types() -> dict[str, ModelType]:
    """Every registered model type by name: from plugins (but those two plugins register),
    then from this process."""
    return {**_plugin_types()[0], **_registered}


def conflicting_model_types() -> dict[str, list[str]]:
    """Names that several plugins register, with the plugins (and not registered in this
    process, which settles them)."""
    conflicts = _plugin_types()[1]
    with _lock:
        return {k: v for k, v in conflicts.items() if k not in _registered}


def _plugin_types() -> tuple[dict[str, ModelType], dict[str, list[str]]]:
    from hubcore.plugins import get_plugins

    plugins = get_plugins()
    with _lock:
        found = _from_plugins.get(id(plugins.manager))
        if found is None:
            found = _from_plugins[id(plugins.manager)] = _collect(plugins)
        return found


def _collect(plugins: Any) -> tuple[dict[str, ModelType], dict[str, list[str]]]:
    import logging

    found: dict[str, ModelType] = {}
    conflicts: dict[str, list[str]] = {}
    hook = plugins.manager.hook.hubcore_register_model_types
    for impl in hook.get_hookimpls():
        origin = f"plugin {impl.plugin_name}"

        def register(name: str, *, config: Any, build: Any, _origin: str = origin) -> None:
            entry = _checked(name, config, build, _origin)
            if name in conflicts:
                conflicts[name].append(_origin)
            elif name in found and found[name].origin != _origin:
                conflicts[name] = [found.pop(name).origin, _origin]
            else:
                found[name] = entry

        try:
            impl.function(register=register)
        except Exception as exc:  # one broken plugin does not hide the others' types
            logging.getLogger(__name__).warning(
                "%s failed to register model types: %s", origin, exc
            )
    return found, conflicts
