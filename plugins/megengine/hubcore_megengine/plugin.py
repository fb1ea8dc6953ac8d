"""The hubcore plugin module of hubcore-megengine (the ``hubcore`` entry point)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from hubcore import hookimpl

if TYPE_CHECKING:
    from hubcore import Backend
    from hubcore.repo.redirects import Redirect

# The backend and the hub API are imported by the hooks, which hubcore calls when a backend or
# a redirect is first needed: loading the plugin (every command does) stays cheap.


@hookimpl
def hubcore_register_backends(register: Callable[[Backend], None]) -> None:
    """Register the MegEngine backend."""
    from hubcore_megengine.backend import MegEngineBackend

    register(MegEngineBackend())


@hookimpl
def hubcore_register_redirects(register: Callable[[Redirect], None]) -> None:
    """Route a repository's use of megengine.hub's ``pretrained`` decorator,
    ``load_serialized_obj_from_url`` and nested ``load``/``list``/``help``/``import_module``
    of other repositories through hubcore (both the package and the module
    that defines them, as repositories import either)."""
    from hubcore.repo.redirects import Redirect

    names = ("pretrained", "load_serialized_obj_from_url", "load", "list", "help", "import_module")
    for module in ("megengine.hub", "megengine.hub.hub"):
        for name in names:  # named, not imported: see hubcore_torch's plugin
            register(Redirect(module, name, f"hubcore_megengine.hub:{name}"))
