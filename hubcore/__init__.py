"""hubcore: a framework-agnostic, plugin-based model hub.

List, read and load the entrypoints a repository publishes in its ``hubconf.py``, from any
source a plugin provides and for any framework a backend plugin supports::

    import hubcore

    hubcore.list("./my-hub")                       # static: runs no repository code
    print(hubcore.help("./my-hub", "resnet18"))
    model = hubcore.load("./my-hub", "resnet18", pretrained=True)
"""

from hubcore._version import VERSION as __version__
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
from hubcore.config import get_dir, set_dir
from hubcore.errors import HubError, IntegrityError
from hubcore.packages import (
    from_pretrained,
    model_config,
    push,
    register_model_type,
    save_pretrained,
)
from hubcore.plugins.backends import Backend, WeightsFile
from hubcore.plugins.hookspecs import hookimpl
from hubcore.repo.pretrained import Weights, pretrained
from hubcore.sources import RepoRef, Snapshot, Source
from hubcore.store.transfer import file_sha256

download = download_file

__all__ = [
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
