"""``megengine.hub``'s API on hubcore: switch by changing one import.

::

    from hubcore.compat import megengine_hub as hub     # was: from megengine import hub
    # (the same module as: from hubcore_megengine import hub)

    hub.list("megengine/models")
    model = hub.load("megengine/models", "resnet18", pretrained=True)

The functions keep megengine.hub's signatures and behaviour (``git_host``, ``use_cache``,
``commit``, ``protocol``), running on hubcore's sources, cache, downloads and trust. Where
hubcore deliberately differs (see the migration guide): ``list``/``help`` read ``hubconf.py``
statically; ``load`` and ``import_module`` run a repository only once it is trusted
(megengine.hub has no trust check); a reference without a branch means the repository's
default branch rather than ``master``; serialized objects are unpickled safely (arrays and
containers only); and downloads are cached by content.

``repo_info`` is ``owner/repo[:branch_or_tag]`` on ``git_host``, checked as megengine.hub
checks it; a local path is refused (megengine.hub refuses it too), never read as a remote
repository: load a local folder with :func:`hubcore.load`. ``git_host`` may be a host name
(``github.com``, ``gitlab.example.com``), ``host:port`` or a base URL
(``http://git.internal:8080``); GitHub is fetched as one archive, other hosts over git's own
protocol, so any git server works.

Importing this module does not import MegEngine; the framework-free parts it shares with the
other peer APIs live in :mod:`hubcore.compat.common`.
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import os
import re
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import SplitResult, urlparse, urlsplit

from hubcore import api
from hubcore.api import RunLock
from hubcore.compat.common import (
    docstring,
    fetch_like_peer,
    list_like_peer,
    open_like_peer,
    peer_errors,
)
from hubcore.errors import DependencyError, EntrypointNotFoundError, InvalidReferenceError
from hubcore.plugins import get_plugins
from hubcore.repo.pretrained import pretrained as hub_pretrained
from hubcore.repo.pretrained import read_state, weights_of
from hubcore.sources import Snapshot

__all__ = [
    "help",
    "import_module",
    "list",
    "load",
    "load_serialized_obj_from_url",
    "pretrained",
]

DEFAULT_GIT_HOST = "github.com"
DEFAULT_PROTOCOL = "HTTPS"
PROTOCOLS = ("HTTPS", "SSH")
#: megengine.hub raises RuntimeError for these; so do the errors hubcore raises here.
_PEER_ERRORS = {EntrypointNotFoundError: RuntimeError, DependencyError: RuntimeError}

F = TypeVar("F", bound=Callable[..., Any])


@peer_errors(_PEER_ERRORS)
def list(
    repo_info: str,
    git_host: str = DEFAULT_GIT_HOST,
    use_cache: bool = True,
    commit: str | None = None,
    protocol: str = DEFAULT_PROTOCOL,
) -> builtins.list[str]:
    """The entrypoints of ``hubconf.py`` in *repo_info* (``owner/repo[:branch_or_tag]``).

    Read statically: nothing from the repository runs, unless the hubconf binds names
    reading cannot see (then it is imported, after the trust check). Names starting with ``_`` are
    helpers and are not listed (megengine.hub lists those with a single underscore).
    """
    snapshot, _ = _open(repo_info, git_host, use_cache, commit, protocol)
    return list_like_peer(snapshot)


@peer_errors(_PEER_ERRORS)
def help(
    repo_info: str,
    entry: str,
    git_host: str = DEFAULT_GIT_HOST,
    use_cache: bool = True,
    commit: str | None = None,
    protocol: str = DEFAULT_PROTOCOL,
) -> str | None:
    """The docstring of *entry* (``None`` when it has none), cleaned of indentation."""
    snapshot, _ = _open(repo_info, git_host, use_cache, commit, protocol)
    return docstring(snapshot, entry)


@peer_errors(_PEER_ERRORS)
def load(
    repo_info: str,
    entry: str,
    *args: Any,
    git_host: str = DEFAULT_GIT_HOST,
    use_cache: bool = True,
    commit: str | None = None,
    protocol: str = DEFAULT_PROTOCOL,
    **kwargs: Any,
) -> Any:
    """Run *entry* of *repo_info* with ``*args, **kwargs`` and return what it returns.

    Every keyword not named here goes to the entrypoint. The repository must be trusted
    (``hubcore trust add``, ``HUBCORE_TRUST``, or a yes at the prompt); it is imported in
    isolation, and its calls to ``megengine.hub``'s ``pretrained`` and
    ``load_serialized_obj_from_url`` go through hubcore (with hubcore-megengine installed).
    """
    snapshot, locked = _open(repo_info, git_host, use_cache, commit, protocol)
    return api.call_entrypoint(snapshot, entry, args, kwargs, locked=locked)


@peer_errors(_PEER_ERRORS)
def import_module(
    repo_info: str,
    git_host: str = DEFAULT_GIT_HOST,
    use_cache: bool = True,
    commit: str | None = None,
    protocol: str = DEFAULT_PROTOCOL,
) -> types.ModuleType:
    """The repository's ``hubconf`` module, imported in isolation once it is trusted.

    Calling a function of the returned module runs it as :func:`load` would (the
    repository's imports, relative weight paths and redirected hub calls in place).
    """
    snapshot, locked = _open(repo_info, git_host, use_cache, commit, protocol)
    module = api.import_hubconf(snapshot)
    return _HubconfModule(module, snapshot, locked)


def load_serialized_obj_from_url(url: str, model_dir: str | os.PathLike[str] | None = None) -> Any:
    """Load the MegEngine file at *url* through hubcore's cache.

    The file is cached by content; with *model_dir* it is also kept there under
    megengine.hub's name (``<6 hex digits of the URL's sha256>_<file name>``), and a file
    already there is used when hubcore's cache does not hold the URL. It is unpickled by the
    megengine backend's restricted unpickler, which accepts state dicts (arrays, tensors and
    containers) and refuses other objects. Needs the hubcore-megengine plugin.
    """
    backend = get_plugins().backend_named("megengine")
    target = None
    if model_dir is not None:
        name = hashlib.sha256(url.encode()).hexdigest()[:6] + "_"
        name += os.path.basename(urlparse(url).path)
        target = Path(os.path.expanduser(os.fspath(model_dir))) / name
    file = fetch_like_peer(url, target)
    return read_state(backend, file, unwrap=False)


class pretrained:  # megengine.hub names its decorator class in lower case
    """``@pretrained(url)``: megengine.hub's decorator on hubcore's weights machinery.

    The decorated entrypoint takes ``pretrained`` (also positionally, as its first argument,
    as in megengine.hub) and passes every other keyword to the model builder. With
    ``pretrained=True`` the weights are fetched through hubcore's cache, read safely and
    applied strictly by the backend that recognises the model. ``hubcore list`` shows the URL.
    """

    def __init__(self, url: str):
        self.url = url

    def __call__(self, func: F) -> F:
        inner = hub_pretrained(self.url)(func)

        @functools.wraps(func)
        def pretrained_model_func(pretrained: bool = False, **kwargs: Any) -> Any:
            return inner(pretrained=pretrained, **kwargs)

        pretrained_model_func.__hubcore_pretrained__ = weights_of(inner)  # type: ignore[attr-defined]
        return pretrained_model_func  # type: ignore[return-value]


class _HubconfModule(types.ModuleType):
    """What :func:`import_module` returns: the hubconf module, whose functions run in the
    repository's setting when called."""

    def __init__(self, module: types.ModuleType, snapshot: Snapshot, locked: RunLock | None):
        super().__init__(module.__name__, module.__doc__)
        for attribute in ("__file__", "__spec__", "__loader__", "__package__"):
            setattr(self, attribute, getattr(module, attribute, None))
        self.__hubcore_module__ = module
        self.__hubcore_snapshot__ = snapshot
        self.__hubcore_locked__ = locked

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.__hubcore_module__, name)
        if not isinstance(value, types.FunctionType):
            return value
        snapshot, locked = self.__hubcore_snapshot__, self.__hubcore_locked__

        @functools.wraps(value)
        def run_in_repository(*args: Any, **kwargs: Any) -> Any:
            with api.running_repository_code(snapshot, locked):
                return value(*args, **kwargs)

        return run_in_repository

    def __dir__(self) -> builtins.list[str]:
        return dir(self.__hubcore_module__)


def reference(repo_info: str, git_host: str, protocol: str) -> tuple[str, str | None]:
    """The hubcore reference for megengine.hub's arguments, and the branch or tag named.

    Parsed as megengine.hub parses them: *repo_info* is ``owner/repo[:branch_or_tag]`` on
    *git_host*, never a local path (megengine.hub refuses paths too; load a local folder with
    :func:`hubcore.load`). Beyond megengine.hub, *protocol* may be in lower case, *git_host*
    may carry a port or be an ``http(s)://`` base URL, and hosts other than GitHub may nest
    groups (``group/subgroup/repo``).
    """
    if not isinstance(protocol, str) or protocol.upper() not in PROTOCOLS:
        raise InvalidReferenceError(
            f"invalid protocol {protocol!r}: the value should be one of {', '.join(PROTOCOLS)}"
        )
    protocol = protocol.upper()
    if not isinstance(repo_info, str):
        raise InvalidReferenceError(f"repo_info must be a string, not {type(repo_info).__name__}")
    if _looks_like_path(repo_info):
        raise InvalidReferenceError(
            f"repo_info {repo_info!r} is a local path, not owner/repo[:branch_or_tag] on a git "
            "host; megengine.hub does not load local folders. To use a local folder, call "
            f"hubcore.load({repo_info!r}, entry, ...) (or hubcore.list / hubcore.help)"
        )
    host = _host_base(git_host, protocol)
    repo, colon, branch = repo_info.partition(":")
    segments = repo.split("/")
    github = host == f"https://{DEFAULT_GIT_HOST}"
    if (
        (colon and not branch)
        or ":" in branch
        or len(segments) < 2
        or (github and len(segments) != 2)
        or not all(_SEGMENT.match(part) and part.strip(".") for part in segments)
    ):
        raise InvalidReferenceError(
            f"repo_info {repo_info!r} is invalid: expected owner/repo[:branch_or_tag] "
            "(letters, digits, '.', '-' and '_' in owner and repo)"
        )
    if github:
        return f"github:{repo}", branch or None
    if protocol == "SSH":
        return f"git+ssh://git@{host}/{repo}.git", branch or None
    return f"git+{host}/{repo}.git", branch or None


#: One owner, group or repository name on a git host.
_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]+$")
#: A host name or IPv4 address (or a bracketed IPv6 one), with an optional port.
_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}"
    r"[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?$"
)


def _looks_like_path(text: str) -> bool:
    """Whether *text* names a folder on this machine rather than ``owner/repo``."""
    return (
        text in (".", "..")
        or text.startswith(("/", "~", "./", "../"))
        or "\\" in text
        or os.path.isabs(text)
        or bool(re.match(r"^[A-Za-z]:[\\/]", text))
    )


def _host_base(git_host: str, protocol: str) -> str:
    """*git_host* checked: ``host[:port]`` for SSH; for HTTPS the base URL it stands for
    (``https://github.com`` for GitHub), from ``host[:port]`` or an ``http(s)://`` URL."""
    if not isinstance(git_host, str):
        raise InvalidReferenceError(f"git_host must be a string, not {type(git_host).__name__}")
    host = git_host.strip().rstrip("/")
    if "://" in host:
        if protocol == "SSH":
            raise InvalidReferenceError(f"git_host {git_host!r}: give a host name for SSH")
        parts = urlsplit(host)
        hostname = parts.hostname or ""
        if (
            parts.scheme.lower() not in ("http", "https")
            or not _valid_host(f"[{hostname}]" if ":" in hostname else hostname)
            or not _valid_port(parts)
            or parts.query
            or parts.fragment
            or not _SAFE_PATH.match(parts.path)
        ):
            raise InvalidReferenceError(
                f"git_host {git_host!r} is invalid: expected a host name, host:port or an "
                "http(s):// base URL without query or fragment"
            )
        base = f"{parts.scheme.lower()}://{parts.netloc}{parts.path}"
    elif _valid_host(host):
        if protocol == "SSH":
            return host.lower()
        base = f"https://{host.lower()}"
    else:
        raise InvalidReferenceError(
            f"git_host {git_host!r} is invalid: expected a host name such as github.com, "
            "host:port or an http(s):// base URL"
        )
    return base


#: The path of a base URL: plain segments only.
_SAFE_PATH = re.compile(r"^(?:/[A-Za-z0-9_.~-]+)*$")


def _valid_host(netloc: str) -> bool:
    match = _HOST.match(netloc)
    if match is None or int(match.group("port") or 0) > 65535:
        return False
    labels = netloc.partition(":")[0].split(".")
    # All digits: an IPv4 address, each part below 256 (as megengine.hub checks).
    return not all(label.isdigit() for label in labels) or (
        len(labels) == 4 and all(int(label) < 256 for label in labels)
    )


def _valid_port(parts: SplitResult) -> bool:
    try:
        parts.port  # noqa: B018 -- urllib checks the port when it is read
    except ValueError:
        return False
    return True


def _open(
    repo_info: str, git_host: str, use_cache: bool, commit: str | None, protocol: str
) -> tuple[Snapshot, RunLock | None]:
    ref, branch = reference(repo_info, git_host, protocol)
    revision = commit or branch
    options: dict[str, Any] = {"commit": revision} if revision else {}
    return open_like_peer(ref, use_cache=use_cache, **options)
