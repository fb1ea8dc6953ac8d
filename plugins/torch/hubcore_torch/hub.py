"""``torch.hub``'s API on hubcore: switch by changing one import.

::

    from hubcore.compat import torch_hub as hub     # was: import torch.hub as hub
    # (the same module as: from hubcore_torch import hub)

    hub.list("pytorch/vision")
    model = hub.load("pytorch/vision:v0.20.0", "resnet18", weights="DEFAULT")
    state = hub.load_state_dict_from_url(url, map_location="cpu")

The functions keep torch.hub's signatures and behaviour, running on hubcore's sources, cache,
downloads and trust. Where hubcore deliberately differs (the migration guide has the table):
``list``/``help`` read ``hubconf.py`` statically instead of importing it; GitHub is reached
without its REST API (``skip_validation`` checks the ref against the branch and tag list
from git itself); nothing is trusted for being cached or for its owner;
``load_state_dict_from_url`` reads with ``weights_only=True`` unless told otherwise; and
downloads are cached by content in hubcore's cache rather than by file name.

Importing this module does not import torch: torch is imported when
``load_state_dict_from_url`` reads a file with this plugin's ``torch`` backend. What it shares
with the other peer APIs is framework-free and lives in :mod:`hubcore.compat.common`.
"""

from __future__ import annotations

import builtins
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from hubcore import api, config
from hubcore.api import RunLock
from hubcore.compat.common import (
    docstring,
    fetch_like_peer,
    list_like_peer,
    open_like_peer,
    peer_errors,
    place_copy,
    progress_option,
)
from hubcore.errors import (
    DependencyError,
    EntrypointNotFoundError,
    IntegrityError,
    InvalidReferenceError,
    RefNotFoundError,
)
from hubcore.plugins import get_plugins
from hubcore.policy import trust
from hubcore.policy.trust import TrustMode
from hubcore.repo.pretrained import read_state
from hubcore.sources import Snapshot, parse_reference
from hubcore.sources.git_hosts import FULL_SHA, SHORT_SHA, GitHostSource
from hubcore.store import transfer

__all__ = [
    "download_url_to_file",
    "get_dir",
    "help",
    "list",
    "load",
    "load_state_dict_from_url",
    "set_dir",
]

#: torch.hub raises RuntimeError for these; so do the errors hubcore raises here.
_PEER_ERRORS = {
    EntrypointNotFoundError: RuntimeError,
    DependencyError: RuntimeError,
    IntegrityError: RuntimeError,
}
_SOURCES = ("github", "local")


def get_dir() -> str:
    """The hub directory: hubcore's home (:func:`hubcore.get_dir`), as a string."""
    return str(config.get_dir())


def set_dir(d: str | os.PathLike[str]) -> None:
    """Use *d* as the hub directory (hubcore's home) from now on."""
    config.set_dir(Path(os.path.expanduser(os.fspath(d))))


@peer_errors(_PEER_ERRORS)
def list(
    github: str,
    force_reload: bool = False,
    skip_validation: bool = False,
    trust_repo: TrustMode = "check",
    verbose: bool = True,
    *,
    source: str = "github",
) -> builtins.list[str]:
    """The entrypoints of ``hubconf.py`` in *github* (``owner/repo[:ref]``).

    Read statically, so nothing runs and no trust is needed, unless the hubconf binds names
    reading cannot see (``globals().update``): then it is imported, after the trust check,
    as torch.hub always does. ``trust_repo=True`` still adds
    the repository to the allowlist, as torch.hub does. *source* (``"github"`` or
    ``"local"``) is an addition to torch.hub's signature.
    """
    snapshot, _ = _open(github, source, force_reload, skip_validation, verbose)
    if trust_repo is True:
        trust.ensure_trusted(snapshot, True)
    return list_like_peer(snapshot, trust_repo)


@peer_errors(_PEER_ERRORS)
def help(
    github: str,
    model: str,
    force_reload: bool = False,
    skip_validation: bool = False,
    trust_repo: TrustMode = "check",
    *,
    source: str = "github",
) -> str | None:
    """The docstring of entrypoint *model* (``None`` when it has none), cleaned of indentation.

    Read statically when possible; an entrypoint that cannot be followed without running the
    hubconf (built by a call, imported from an installed package) is read from the imported
    ``hubconf.py``, which needs trust like :func:`load`.
    """
    snapshot, _ = _open(github, source, force_reload, skip_validation, True)
    if trust_repo is True:
        trust.ensure_trusted(snapshot, True)
    return docstring(snapshot, model, trust_repo)


@peer_errors(_PEER_ERRORS)
def load(
    repo_or_dir: str,
    model: str,
    *args: Any,
    source: str = "github",
    trust_repo: TrustMode = "check",
    force_reload: bool = False,
    verbose: bool = True,
    skip_validation: bool = False,
    **kwargs: Any,
) -> Any:
    """Run entrypoint *model* of *repo_or_dir* with ``*args, **kwargs``, as torch.hub does.

    *source* is ``"github"`` (``owner/repo[:ref]``) or ``"local"`` (a folder). Every keyword
    not named here goes to the entrypoint. The repository is imported in isolation, its
    dependencies checked by distribution or module name, and calls it makes to
    ``torch.hub.load_state_dict_from_url`` and ``download_url_to_file`` go through hubcore
    (with hubcore-torch installed).
    """
    snapshot, locked = _open(repo_or_dir, source, force_reload, skip_validation, verbose)
    return api.call_entrypoint(snapshot, model, args, kwargs, trust_repo=trust_repo, locked=locked)


@peer_errors(_PEER_ERRORS)
def download_url_to_file(
    url: str,
    dst: str | os.PathLike[str],
    hash_prefix: str | None = None,
    progress: bool = True,
) -> None:
    """Download *url* to the file *dst*, checking that its sha256 starts with *hash_prefix*.

    The transfer goes through hubcore (resumable, mirrored, one download for concurrent
    callers) and into its cache; a URL cached before is checked with the server by ETag or
    Last-Modified and copied from the cache when unchanged. *dst* is replaced atomically.
    A file whose sha256 does not start with *hash_prefix* is neither cached nor written.
    """
    file = transfer.fetch(
        url, progress=progress_option(progress), revalidate=True, sha256_prefix=hash_prefix
    )
    if hash_prefix and not file.sha256.startswith(hash_prefix):
        raise IntegrityError(url, f"{hash_prefix}... (hash_prefix)", file.sha256)
    place_copy(file.path, Path(os.path.expanduser(os.fspath(dst))))


@peer_errors(_PEER_ERRORS)
def load_state_dict_from_url(
    url: str,
    model_dir: str | os.PathLike[str] | None = None,
    map_location: Any = None,
    progress: bool = True,
    check_hash: bool = False,
    file_name: str | None = None,
    weights_only: bool = True,
) -> Any:
    """Load the torch file at *url* through hubcore's cache (``torch.load`` semantics).

    The file is cached by content; with *model_dir* it is also kept there under *file_name*
    (or the URL's file name), and a file already there is used when hubcore's cache does not
    hold the URL. *check_hash* verifies the ``name-<sha256 prefix>.ext`` convention.
    *weights_only* defaults to ``True`` (torch.hub: ``False``): pass ``False`` only for files
    you trust. Needs the hubcore-torch plugin.
    """
    backend = get_plugins().backend_named("torch")
    name = file_name or os.path.basename(urlparse(url).path)
    target = None
    if model_dir is not None:
        target = Path(os.path.expanduser(os.fspath(model_dir))) / name
    prefix = transfer.hash_prefix(name, strict=True) if check_hash else None
    file = fetch_like_peer(url, target, hash_prefix=prefix, progress=progress)
    return read_state(
        backend, file, map_location=map_location, weights_only=weights_only, unwrap=False
    )


def _open(
    repo: str, source: str, force_reload: bool, skip_validation: bool, verbose: bool
) -> tuple[Snapshot, RunLock | None]:
    source = source.lower()
    if source not in _SOURCES:
        raise InvalidReferenceError(
            f'Unknown source: "{source}". Allowed values: "github" | "local".'
        )
    validate = source == "github" and not skip_validation
    return open_like_peer(
        repo,
        use_cache=not force_reload,
        verbose=verbose,
        before_fetch=(lambda: _validate_not_a_fork(repo)) if validate else None,
        source=source,
    )


def _validate_not_a_fork(repo: str) -> None:
    """Refuse a commit that is not the head of one of the repository's branches or tags.

    GitHub serves any commit of any fork through the parent repository's URL, so a sha alone
    does not prove the commit belongs to the repository. torch.hub asks the REST API; the
    same list comes from git's ref advertisement, without rate limits.
    """
    sources = get_plugins().sources
    ref = parse_reference(repo, sources, source="github")
    revision = (ref.revision or "").lower()
    if not (SHORT_SHA.match(revision) or FULL_SHA.match(revision)):
        return  # a branch or tag name is resolved within the repository itself
    github = sources["github"]
    assert isinstance(github, GitHostSource)
    refs, _ = github.advertised_refs(ref)
    names = {n.removeprefix("refs/heads/").removeprefix("refs/tags/") for n in refs}
    if ref.revision in names or any(sha.startswith(revision) for sha in refs.values()):
        return
    raise RefNotFoundError(
        f"cannot find {ref.revision} in github:{ref.repo}: it is neither a branch or tag nor "
        "the commit at the head of one. If it is a commit of a fork, load the fork itself; "
        "to load an older commit of this repository, pass skip_validation=True."
    )
