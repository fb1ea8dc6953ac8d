"""Hook specifications: everything a plugin can add to or observe in hubcore.

A plugin is a module (or object) with functions marked ``@hubcore.hookimpl`` whose names match
the specs below. Third-party plugins are found through the ``hubcore`` entry-point group::

    [project.entry-points.hubcore]
    myplugin = "my_package.hub_plugin"

The built-in sources register through these same hooks as default plugins. Registration hooks
receive a ``register`` callback (the core owns the collection); event hooks are notifications,
and an exception raised by one is logged and otherwise ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from hubcore.plugins.backends import Backend
    from hubcore.repo.redirects import Redirect
    from hubcore.sources import Source

__all__ = [
    "hookimpl",
    "hookspec",
    "hubcore_download_finished",
    "hubcore_download_progress",
    "hubcore_download_started",
    "hubcore_entrypoint_loaded",
    "hubcore_register_backends",
    "hubcore_register_model_types",
    "hubcore_register_redirects",
    "hubcore_register_sources",
    "hubcore_registry_event",
]

PROJECT_NAME = "hubcore"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def hubcore_register_sources(register: Callable[[Source], None]) -> None:
    """Register repository sources by calling ``register(source)`` once per source.

    A source turns a reference string (``./dir``, ``owner/repo:ref``, ``s3://...``) into a
    :class:`hubcore.sources.RepoRef` and makes an immutable snapshot of that repository
    available as a local folder. See :class:`hubcore.sources.Source` for the protocol. A source
    whose ``name`` is already taken replaces the earlier one (the replacement is logged).
    """


@hookspec
def hubcore_register_backends(register: Callable[[Backend], None]) -> None:
    """Register framework backends by calling ``register(backend)`` once per backend.

    A backend recognises its framework's model objects, reads weight files into a state and
    applies a state to a model. See :class:`hubcore.plugins.backends.Backend` for the protocol.
    Backends should import their framework lazily, so that listing plugins stays fast.

    Two capabilities are optional, declared on the backend: ``functional = True`` when
    ``apply_weights`` returns a new model instead of changing the one it is given (parameters
    kept apart, JAX/flax style), and ``model_formats`` with ``open_model`` when it opens files
    that are a whole model (:class:`hubcore.plugins.backends.ModelFileOpener`).
    """


@hookspec
def hubcore_register_model_types(register: Callable[..., None]) -> None:
    """Register model types of model packages: ``register(name, config=cls, build=fn)``.

    *config* is a :func:`hubcore.model_config` class whose ``model_type`` is *name*; *build*
    takes an instance of it and returns a new model (its weights are then applied). A
    package whose ``config.json`` names a registered ``model_type`` is built this way, with
    no code shipped in the package, as transformers' auto classes build known types. See
    :func:`hubcore.register_model_type` for the same in one process.
    """


@hookspec
def hubcore_register_redirects(register: Callable[[Redirect], None]) -> None:
    """Register framework hub functions that repository code should reach hubcore through.

    Call ``register(Redirect(module, attribute, replacement))`` for each, for example
    ``Redirect("torch.hub", "load_state_dict_from_url", ...)``. While hubcore imports a
    ``hubconf.py`` or runs an entrypoint, ``module.attribute`` is swapped for a shim that calls
    *replacement* (which must keep the original's signature and return value; a function, or
    ``"package.module:function"`` naming one, imported by the first redirected call) from
    repository code and the original from anywhere else; the original is restored afterwards.
    The module is not imported by hubcore: if it is not imported yet, it is patched when the
    repository imports it. See :mod:`hubcore.repo.redirects`.
    """


@hookspec
def hubcore_download_started(url: str, total: int | None) -> None:
    """A download of *url* started; *total* is its size in bytes when known."""


@hookspec
def hubcore_download_progress(url: str, done: int, total: int | None) -> None:
    """*done* bytes of *url* have arrived so far (called about once per chunk)."""


@hookspec
def hubcore_download_finished(url: str, path: str, sha256: str, size: int, cached: bool) -> None:
    """*url* is available at *path*; *cached* is true when no transfer was needed."""


@hookspec
def hubcore_entrypoint_loaded(
    repo: str, entrypoint: str, result: object, weights: str | None
) -> None:
    """An entrypoint returned *result*; *weights* is the URL of applied weights, if any."""


@hookspec
def hubcore_registry_event(event: Mapping[str, Any]) -> None:
    """Something changed in a registry (:mod:`hubcore.registry`); called in the writer's
    process right after the change is stored, before this call returns to the writer.

    *event* is the history entry: ``id`` (unique, time-ordered; also the idempotency key of
    webhook deliveries), ``kind`` (``log``, ``link``, ``unlink``, ``alias``, ``unalias``,
    ``update``, ``describe``, ``card``, ``delete``), ``name`` (the artifact or registered
    model), ``when`` (ISO 8601, UTC), ``who`` (the actor), ``before`` and ``after`` (the
    changed state, ``None`` for none), kind-specific fields (``version``, ``alias``, ``from``,
    ``to``, ``digest``) and ``registry`` (its URL). Each listener runs on its own: one that
    raises is logged and the change, and the other listeners, are unaffected. Webhooks do not
    need a plugin: see :mod:`hubcore.registry.notify`.
    """
