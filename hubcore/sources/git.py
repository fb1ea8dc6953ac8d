"""The ``git`` source: any git server (``git+https://``, ``git+ssh://``, ``git://``, and
``http(s)://`` or ``ssh://`` URLs whose path ends in ``.git``).

References resolve to a commit first (for http(s), one smart-HTTP ref request; otherwise git's
own ref listing), then exactly that commit is fetched with depth 1 by dulwich, a pure-Python
git client, and its tree is written into the cache under the commit sha. No ``git`` program is
needed except for ``ssh`` transport, which uses the system's ``ssh``.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hubcore import config, http
from hubcore.archives import TreeWriter, check_member_name
from hubcore.errors import (
    AuthenticationError,
    DownloadError,
    HubError,
    InvalidReferenceError,
    OfflineError,
    RefNotFoundError,
    RepoNotFoundError,
)
from hubcore.hookspecs import hookimpl
from hubcore.sources import Claim, FetchContext, RepoRef, Snapshot, Source, canonical_url
from hubcore.sources.git_hosts import FULL_SHA, parse_ref_advertisement, pick_commit

if TYPE_CHECKING:  # dulwich is imported when a git reference is fetched, not at start-up
    from dulwich.repo import MemoryRepo

__all__ = ["GitSource"]

logger = logging.getLogger(__name__)


class GitSource:
    """Any git server, fetched one commit deep."""

    name = "git"
    forms: tuple[str, ...] = (
        "git+https://host/path/repo.git[@ref]",
        "git+ssh://user@host/path/repo.git[@ref]",
        "git://host/path/repo.git[@ref]",
        "https://host/path/repo.git[@ref]",
        "git:<any git URL>[@ref]",
    )

    def claim(self, text: str, options: Mapping[str, Any]) -> int:
        """``git+...`` and ``git://`` are git's own; an http(s)/ssh URL ending in ``.git`` is
        one of its forms."""
        if text.startswith(("git+", "git://")):
            return Claim.SPECIFIC
        return Claim.FORM if _plain_git_url(text) else Claim.NONE

    def parse(self, text: str, options: Mapping[str, Any]) -> RepoRef | None:
        """A :class:`RepoRef` for a git URL, with an optional ``@ref``."""
        body = text[len("git:") :] if text.startswith("git:") and "://" not in text[:6] else text
        if body.startswith("git+"):
            url = body[len("git+") :]
        elif body.startswith("git://") or _plain_git_url(body) or body is not text:
            url = body
        else:
            return None
        revision: str | None = None
        at = url.rfind("@")
        if at > url.rfind("/"):
            url, revision = url[:at], url[at + 1 :]
            if not revision:
                raise InvalidReferenceError(f"{text!r} ends with '@' but names no revision")
        parts = urlsplit(url)
        if not parts.scheme or not (parts.netloc or parts.scheme == "file") or not parts.path:
            raise InvalidReferenceError(
                f"{text!r} is not a valid git reference; expected " + " or ".join(self.forms)
            )
        if options.get("commit"):
            revision = str(options["commit"])
        identity = f"{self.name}:{canonical_url(url)}"
        return RepoRef(source=self.name, repo=url, revision=revision, text=text, identity=identity)

    def open(self, ref: RepoRef, ctx: FetchContext) -> Snapshot:
        key = ref.location
        revision = ref.revision.lower() if ref.revision else None
        if revision and FULL_SHA.match(revision):
            commit: str | None = revision
        elif ctx.offline:
            commit = ctx.cache.read_refs(self.name, key).get(ref.revision or "HEAD")
            if commit is None:
                raise OfflineError(f"offline mode is on and {_label(ref)} was never fetched")
        else:
            commit = self._resolve(ref)
        label = _label(ref)
        if commit is None:  # a short sha: only the fetched history can expand it
            repo, commit = self._fetch(ref, str(ref.revision))
            fill: Callable[[Path], None] = lambda tree: _write_tree(repo, commit, tree, label)  # noqa: E731
        else:
            folder = ctx.cache.snapshot_dir(self.name, key, commit)
            if folder.is_dir() and not ctx.force_reload:
                return Snapshot(ref, folder, commit)
            if ctx.offline:
                raise OfflineError(f"offline mode is on and {label} is not in the cache")
            pinned = commit

            def fill(tree: Path) -> None:  # under the snapshot lock: one fetch
                fetched, _ = self._fetch(ref, pinned)
                _write_tree(fetched, pinned, tree, label)

        folder = ctx.cache.publish_tree(self.name, key, commit, fill, replace=ctx.force_reload)
        ctx.cache.write_ref(self.name, key, ref.revision or "HEAD", commit)
        return Snapshot(ref, folder, commit)

    # -- resolution ----------------------------------------------------------------------
    def _resolve(self, ref: RepoRef) -> str | None:
        url = ref.repo
        if url.startswith(("http://", "https://")):
            response = http.get(
                f"{url.rstrip('/')}/info/refs?service=git-upload-pack",
                what=f"the refs of {_label(ref)}",
                token_hint="Put credentials in the URL or in git's credential configuration.",
            )
            with response:
                refs, head = parse_ref_advertisement(response.content)
        else:
            result = self._call(ref, lambda client, path: client.get_refs(path))
            raw = getattr(result, "refs", result)
            refs = {k.decode(): v.decode() for k, v in raw.items() if v is not None}
            symrefs = getattr(result, "symrefs", {}) or {}
            head_target = symrefs.get(b"HEAD")
            head = head_target.decode() if head_target else None
            refs = {k.removesuffix("^{}"): v for k, v in sorted(refs.items(), key=_peeled_last)}
        return pick_commit(refs, head, ref.revision, _label(ref))

    # -- fetching ------------------------------------------------------------------------
    def _fetch(self, ref: RepoRef, wanted: str) -> tuple[MemoryRepo, str]:
        """Fetch commit *wanted* (full sha: one commit deep; short sha: the history of every
        ref, to expand it) into memory; return the repository and the full sha."""
        from dulwich.repo import MemoryRepo

        repo = MemoryRepo()
        if FULL_SHA.match(wanted):
            self._call(
                ref,
                lambda client, path: client.fetch(
                    path, repo, determine_wants=lambda refs, depth=None: [wanted.encode()], depth=1
                ),
            )
            return repo, wanted
        self._call(
            ref,
            lambda client, path: client.fetch(
                path,
                repo,
                determine_wants=lambda refs, depth=None: sorted(
                    {v for k, v in refs.items() if v and not k.endswith(b"^{}")}
                ),
            ),
        )
        prefix = wanted.lower()
        commits = [
            sha.decode()
            for sha in repo.object_store
            if sha.decode().startswith(prefix) and repo[sha].type_name == b"commit"
        ]
        if len(commits) != 1:
            problem = f"is ambiguous ({len(commits)} commits)" if commits else "was not found"
            raise RefNotFoundError(f"commit {wanted} {problem} in {_label(ref)}")
        return repo, commits[0]

    def _call(self, ref: RepoRef, action: Callable[[Any, str], Any]) -> Any:
        from dulwich.client import HTTPUnauthorized, get_transport_and_path
        from dulwich.errors import GitProtocolError, HangupException, NotGitRepository

        url = config.rewrite_url(ref.repo)
        try:
            client, path = get_transport_and_path(url)
            return action(client, path)
        except HubError:
            raise
        except HTTPUnauthorized:
            raise AuthenticationError(
                f"{_label(ref)} refused access; put credentials in the URL or git's "
                "credential configuration"
            ) from None
        except NotGitRepository:
            raise RepoNotFoundError(f"{_label(ref)} is not a git repository") from None
        except (GitProtocolError, HangupException, OSError) as exc:
            message = str(exc)
            if "not found" in message.lower() or "does not appear" in message.lower():
                raise RepoNotFoundError(f"{_label(ref)} not found: {message[:200]}") from None
            raise DownloadError(
                f"fetching {_label(ref)} failed: {type(exc).__name__}: {message[:200]}"
            ) from None


def _peeled_last(item: tuple[str, str]) -> tuple[bool, str]:
    return (item[0].endswith("^{}"), item[0])


def _plain_git_url(text: str) -> bool:
    """An http(s) or ssh URL whose path (before any ``@ref``) ends in ``.git``."""
    if not text.startswith(("https://", "http://", "ssh://")):
        return False
    url = text
    at = url.rfind("@")
    if at > url.rfind("/"):
        url = url[:at]
    return urlsplit(url).path.rstrip("/").endswith(".git")


def _label(ref: RepoRef) -> str:
    return http.redact(ref.repo) + (f"@{ref.revision}" if ref.revision else "")


def _write_tree(repo: MemoryRepo, commit: str, tree: Path, label: str) -> None:
    """Write the files of *commit* into *tree*: regular files, executables, and symlinks
    that stay inside the tree (:class:`~hubcore.archives.TreeWriter`)."""
    from dulwich.objects import Commit

    try:
        obj = repo[commit.encode()]
    except KeyError:
        raise RefNotFoundError(f"commit {commit} was not found in {label}") from None
    if not isinstance(obj, Commit):
        raise RefNotFoundError(f"{commit} is not a commit in {label}")
    writer = TreeWriter(tree)
    try:
        for entry in repo.object_store.iter_tree_contents(obj.tree):
            if stat.S_ISDIR(entry.mode) or entry.mode == 0o160000:  # submodules are not fetched
                continue
            name = entry.path.decode("utf-8", "surrogateescape")
            rel = check_member_name(name)
            data = repo[entry.sha].as_raw_string()
            if stat.S_ISLNK(entry.mode):
                writer.add_symlink(name, rel, data.decode("utf-8", "surrogateescape"))
            else:
                writer.add_bytes(name, rel, data, bool(entry.mode & 0o111))
    except KeyError as exc:  # the server's pack left out a tree or blob of the commit
        missing = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise DownloadError(
            f"the fetched commit {commit} of {label} lacks the git object {missing}; the server "
            "sent an incomplete pack: try again, or report it to the server's owner"
        ) from None
    writer.finish()


@hookimpl
def hubcore_register_sources(register: Callable[[Source], None]) -> None:
    """Register the generic git source."""
    register(GitSource())
