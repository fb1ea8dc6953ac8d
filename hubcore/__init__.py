"""hubcore: a framework-agnostic, plugin-based model hub.

List, read and load the entrypoints a repository publishes in its ``hubconf.py``, from any
source a plugin provides and for any framework a backend plugin supports::

    import hubcore

    hubcore.list("./my-hub")                       # static: runs no repository code
    print(hubcore.help("./my-hub", "resnet18"))
    model = hubcore.load("./my-hub", "resnet18", pretrained=True)
"""

from __future__ import annotations

import builtins
import importlib
from typing import TYPE_CHECKING, Any

from hubcore._version import VERSION as __version__

# The public names, each imported from its module on first use, so that `import hubcore` and
# every command stay fast whatever the package grows (`python -X importtime -c "import
# hubcore"` shows the cost). To export a name, add ONE line here ("name": "module") and the
# same import under TYPE_CHECKING below (for type checkers); never import eagerly at the top.
_EXPORTS: dict[str, str] = {
    "Backend": "hubcore.plugins.backends",
    "HubError": "hubcore.errors",
    "IntegrityError": "hubcore.errors",
    "RepoRef": "hubcore.sources",
    "Snapshot": "hubcore.sources",
    "Source": "hubcore.sources",
    "Weights": "hubcore.repo.pretrained",
    "WeightsFile": "hubcore.plugins.backends",
    "discover": "hubcore.api",
    "download_file": "hubcore.api",
    "file_sha256": "hubcore.store.transfer",
    "from_pretrained": "hubcore.packages",
    "get_dir": "hubcore.config",
    "help": "hubcore.api",
    "hookimpl": "hubcore.plugins.hookspecs",
    "list": "hubcore.api",
    "load": "hubcore.api",
    "load_model_file": "hubcore.api",
    "load_weights": "hubcore.api",
    "model_config": "hubcore.packages",
    "open_repo": "hubcore.api",
    "pretrained": "hubcore.repo.pretrained",
    "push": "hubcore.packages",
    "register_model_type": "hubcore.packages",
    "save_pretrained": "hubcore.packages",
    "set_dir": "hubcore.config",
}
#: Other names for exports.
_ALIASES = {"download": "download_file"}

if TYPE_CHECKING:
    from hubcore.api import (
        discover,
        download_file,
        help,
        list,
        load,
        load_model_file,
        load_weights,
        open_repo,
    )
    from hubcore.api import download_file as download
    from hubcore.config import get_dir, set_dir
    from hubcore.errors import HubError, IntegrityError
    from hubcore.packages import (
        from_pretrained,
        model_config,
        register_model_type,
        save_pretrained,
    )
    from hubcore.packages.push import push
    from hubcore.plugins.backends import Backend, WeightsFile
    from hubcore.plugins.hookspecs import hookimpl
    from hubcore.repo.pretrained import Weights, pretrained
    from hubcore.sources import RepoRef, Snapshot, Source
    from hubcore.store.transfer import file_sha256

__all__ = [  # the same names as _EXPORTS and _ALIASES (a test checks), literal for type checkers
    "Backend",
    "HubError",
    "IntegrityError",
    "RepoRef",
    "Snapshot",
    "Source",
    "Weights",
    "WeightsFile",
    "__version__",
    "discover",
    "download",
    "download_file",
    "file_sha256",
    "from_pretrained",
    "get_dir",
    "help",
    "hookimpl",
    "list",
    "load",
    "load_model_file",
    "load_weights",
    "model_config",
    "open_repo",
    "pretrained",
    "push",
    "register_model_type",
    "save_pretrained",
    "set_dir",
]


def __getattr__(name: str) -> Any:
    """An export, imported from its module on first access (then kept as an attribute);
    a submodule (``hubcore.api``) is imported like ``import hubcore.api`` would."""
    target = _ALIASES.get(name, name)
    module = _EXPORTS.get(target)
    if module is not None:
        value = getattr(importlib.import_module(module), target)
    elif not name.startswith("_"):
        try:
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> builtins.list[str]:
    return sorted({*globals(), *__all__})
