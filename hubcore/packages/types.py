"""Model types: ``model_type`` name -> (configuration class, build function).

Registered in one process with :func:`register_model_type`, or by an installed plugin through
the ``hubcore_register_model_types`` hook (:mod:`hubcore.plugins.hookspecs`). A package whose
``model_type`` is registered is built by the registered function and needs no shipped code.
A type registered in the process wins over one from a plugin of the same name.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import attrs

from hubcore.packages.config import is_model_config

__all__ = ["ModelType", "model_types", "register_model_type"]


@attrs.frozen
class ModelType:
    """A registered model type: its configuration class, build function and origin."""

    name: str
    config: type[Any]
    build: Callable[[Any], Any]
    origin: str = "process"


_registered: dict[str, ModelType] = {}
_from_plugins: dict[int, dict[str, ModelType]] = {}
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
    """Every registered model type by name: from plugins, then from this process."""
    from hubcore.plugins import get_plugins

    plugins = get_plugins()
    with _lock:
        found = _from_plugins.get(id(plugins.manager))
        if found is None:
            found = _from_plugins[id(plugins.manager)] = _collect(plugins)
        return {**found, **_registered}


def _collect(plugins: Any) -> dict[str, ModelType]:
    import logging

    found: dict[str, ModelType] = {}
    hook = plugins.manager.hook.hubcore_register_model_types
    for impl in hook.get_hookimpls():
        origin = f"plugin {impl.plugin_name}"

        def register(name: str, *, config: Any, build: Any, _origin: str = origin) -> None:
            found[name] = _checked(name, config, build, _origin)

        try:
            impl.function(register=register)
        except Exception as exc:  # one broken plugin does not hide the others' types
            logging.getLogger(__name__).warning(
                "%s failed to register model types: %s", origin, exc
            )
    return found
