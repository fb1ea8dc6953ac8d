"""The hubcore plugin module of hubcore-torch (the ``hubcore`` entry point)."""

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
    """Register the PyTorch backend."""
    from hubcore_torch.backend import TorchBackend

    register(TorchBackend())


@hookimpl
def hubcore_register_redirects(register: Callable[[Redirect], None]) -> None:
    """Route a repository's calls to torch.hub's download functions, and its nested
    ``torch.hub.load``/``list``/``help`` of other repositories, through hubcore.

    ``torch.utils.model_zoo.load_url`` is torch.hub's ``load_state_dict_from_url`` under its
    old name, which older repositories still call.
    """
    from hubcore.repo.redirects import Redirect

    # named, not imported: hubcore_torch.hub (and the download engine beneath it) is imported
    # by the first redirected call, so a load that makes none never pays for it
    for name in ("load_state_dict_from_url", "download_url_to_file", "load", "list", "help"):
        register(Redirect("torch.hub", name, f"hubcore_torch.hub:{name}"))
    register(
        Redirect("torch.utils.model_zoo", "load_url", "hubcore_torch.hub:load_state_dict_from_url")
    )
