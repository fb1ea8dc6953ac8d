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
    from hubcore_megengine import hub as megengine_hub

    for module in ("megengine.hub", "megengine.hub.hub"):
        register(Redirect(module, "pretrained", megengine_hub.pretrained))
        register(
            Redirect(
                module, "load_serialized_obj_from_url", megengine_hub.load_serialized_obj_from_url
            )
        )
        # nested hub loads: another repository, through hubcore's sources, cache and trust
        for name in ("load", "list", "help", "import_module"):
            register(Redirect(module, name, getattr(megengine_hub, name)))
