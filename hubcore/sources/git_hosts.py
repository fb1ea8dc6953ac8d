"""GitHub and GitLab sources: one small ref request, one archive download, no REST rate limits.

A reference is resolved to a commit with git's smart-HTTP ref advertisement
(``<repo>.git/info/refs?service=git-upload-pack``, what ``git ls-remote`` reads), which is not
the rate-limited REST API. The snapshot of that commit is then one zip archive, extracted
into the cache under the commit sha. A full commit sha that is already cached costs no request
at all; a branch costs the one ref request. Short shas are fetched as archives directly and
expanded with the commit id git records in the zip.

Archives go through the transfer engine (:func:`hubcore.store.transfer.fetched_once`), like
weights: resumed with ``Range`` after a cut, retried within ``HUBCORE_RETRIES`` and the stall
budget, with progress and the download events; the zip lands in the blob store atomically
and is removed once its tree is extracted.

Tokens (``token=``, ``HUBCORE_GITHUB_TOKEN``/``GITHUB_TOKEN``, ``HUBCORE_GITLAB_TOKEN``) are
sent only to the host they belong to, and never written to the cache, logs or errors.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from hubcore import settings
from hubcore.errors import (
    ArchiveError,
    DownloadError,
    InvalidReferenceError,
    OfflineError,
    RefNotFoundError,
)
from hubcore.patterns import later
from hubcore.plugins.hookspecs import hookimpl
from hubcore.sources import (
    Claim,
    FetchContext,
    RepoRef,
    Snapshot,
    Source,
    canonical_url,
    redact_url,
)
from hubcore.sources.remote import FULL_SHA, RemoteSource, Resolution
from hubcore.store.cache import Cache

# The HTTP client and the archive reader are imported when a repository is fetched, not at
# start-up: every command registers this source.
if TYPE_CHECKING:
    from hubcore.store import http, transfer

__all__ = [
    "FULL_SHA",
    "SHORT_SHA",
    "GitHostSource",
    "GitHubSource",
    "GitLabSource",
    "parse_ref_advertisement",
    "pick_commit",
]

logger = logging.getLogger(__name__)

SHORT_SHA = re.compile(r"^[0-9a-f]{7,39}$")
# GitHub owners are letters, digits and hyphens (no dots), so ``host/owner/repo`` is unambiguous.
_OWNER_REPO = later(r"^[A-Za-z0-9][A-Za-z0-9_-]*/[A-Za-z0-9_.][A-Za-z0-9_.-]*$")
_OWNER = later(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_HOST = later(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?$")
_GROUP_PATH = later(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")


def _never_called(tree: Path) -> None:
    raise AssertionError("the snapshot was cached: nothing to fill")


def _then_remove(fill: Callable[[Path], None], leftover: Path) -> Callable[[Path], None]:
    """*fill*, then *leftover* removed (``hubcore cache prune`` clears what a crash leaves)."""

    def run(tree: Path) -> None:
        try:
            fill(tree)
        finally:
            leftover.unlink(missing_ok=True)

    return run


def parse_ref_advertisement(data: bytes) -> tuple[dict[str, str], str | None]:
    """Parse a smart-HTTP ref advertisement into ``{ref: sha}`` and HEAD's branch.

    Annotated tags are reported by the commit they point to (the peeled ``^{}`` line).
    """
    refs: dict[str, str] = {}
    head_target = None
    pos = 0
    while pos + 4 <= len(data):
        try:
            length = int(data[pos : pos + 4], 16)
        except ValueError as exc:
            raise DownloadError("the server's ref list is not in git's pkt-line format") from exc
        if length == 0:
            pos += 4
            continue
        line = data[pos + 4 : pos + length].rstrip(b"\n")
        pos += length
        if line.startswith(b"#"):
            continue
        body, _, caps = line.partition(b"\0")
        sha, _, name = body.decode("utf-8", "replace").partition(" ")
        for cap in caps.decode("utf-8", "replace").split():
            if cap.startswith("symref=HEAD:"):
                head_target = cap[len("symref=HEAD:") :]
        if name.endswith("^{}"):
            refs[name[:-3]] = sha  # the peeled commit of an annotated tag wins
        elif name not in refs:
            refs[name] = sha
    return refs, head_target


def pick_commit(
    refs: Mapping[str, str], head: str | None, revision: str | None, label: str
) -> str | None:
    """The commit *revision* names in an advertised ref list, as git would pick it.

    ``None`` means HEAD (the default branch). Tags win over branches of the same name, as in
    ``git rev-parse``. Returns ``None`` for what looks like a short sha (the advertisement
    cannot expand it); raises :class:`RefNotFoundError` otherwise.
    """
    if revision is None:
        target = refs.get("HEAD") or (refs.get(head) if head else None)
        target = target or refs.get("refs/heads/main") or refs.get("refs/heads/master")
        if target is None:
            raise RefNotFoundError(f"{label} has no default branch (is it empty?)")
        return target
    for candidate in (revision, f"refs/tags/{revision}", f"refs/heads/{revision}"):
        if candidate in refs:
            return refs[candidate]
    if SHORT_SHA.match(revision.lower()):
        return None
    heads = "refs/heads/"
    branches = sorted(r.removeprefix(heads) for r in refs if r.startswith(heads))
    raise RefNotFoundError(
        f"{label} has no branch or tag {revision!r} "
        f"(branches: {', '.join(branches[:10]) or 'none'})"
    )


class GitHostSource(RemoteSource):
    """The shared flow of hosted-git sources; subclasses supply URLs and credentials."""

    name = ""
    forms: tuple[str, ...] = ()
    default_host = ""
    #: The :class:`~hubcore.settings.Settings` field holding the token, and its variables.
    token_setting = ""
    token_variables: tuple[str, ...] = ()

    # -- parsing -------------------------------------------------------------------------------
    def claim(self, text: str, options: Mapping[str, Any]) -> int:
        """Only ``name:`` references (routed by their prefix) are this source's."""
        return Claim.NONE

    def parse(self, text: str, options: Mapping[str, Any]) -> RepoRef | None:
        """A :class:`RepoRef` for ``name:path[@ref]``, ``name:https://host/path[@ref]`` or, with
        ``source=name``, a bare path."""
        prefix = f"{self.name}:"
        if text.startswith(prefix):
            body = text[len(prefix) :]
        elif options.get("source") == self.name:
            body = text
        else:
            return None
        host, body, token = self._split_host(body, text, options)
        repo, revision = self._split(body, text)
        if token and not options.get("token"):
            options = {**options, "token": token}
        return self._ref(repo, revision, text, {**options, "host": host} if host else options)

    def _split_host(
        self, body: str, text: str, options: Mapping[str, Any]
    ) -> tuple[str | None, str, str | None]:
        """``(base URL, path[@ref], password)`` of a host-qualified body, else
        ``(None, body, None)``. A host named both here and by ``host=`` must agree."""
        host = token = None
        if body.startswith(("https://", "http://")):
            try:
                parts = urlsplit(body)
            except ValueError as exc:  # an unclosed IPv6 "[": trust's owner entries come here
                raise InvalidReferenceError(
                    f"{redact_url(text)!r} is not a valid URL: {exc}"
                ) from None
            if not parts.hostname:
                raise InvalidReferenceError(f"{redact_url(text)!r} names no host")
            token = parts.password
            netloc = parts.netloc.rpartition("@")[2]
            host, body = f"{parts.scheme}://{netloc}", parts.path
        else:
            first, sep, rest = body.partition("/")
            if sep and _is_host(first) and self._host_prefix_allowed(rest):
                host, body = first, rest
        given = options.get("host") or options.get("git_host")
        if host and given and canonical_url(_base(str(given))) != canonical_url(_base(host)):
            raise InvalidReferenceError(
                f"{redact_url(text)!r} names the host {canonical_url(_base(host))} but "
                f"host={canonical_url(_base(str(given)))!r} was also given; name one"
            )
        return host, body, token

    def _host_prefix_allowed(self, rest: str) -> bool:
        """Whether ``host/<rest>`` may be read as host-qualified (see GitHubSource)."""
        return False

    def _split(self, body: str, text: str) -> tuple[str, str | None]:
        repo, sep, revision = body.partition("@")
        if not sep and ":" in body:
            repo, _, revision = body.partition(":")
        repo = repo.strip("/")
        if repo.endswith(".git"):
            repo = repo[:-4]
        if not self._valid_path(repo) or (sep and not revision):
            raise InvalidReferenceError(
                f"{redact_url(text)!r} is not a valid {self.name} reference; expected "
                + " or ".join(self.forms)
            )
        return repo, revision or None

    def _valid_path(self, repo: str) -> bool:
        return bool(_OWNER_REPO().match(repo))

    def _ref(
        self, repo: str, revision: str | None, text: str, options: Mapping[str, Any]
    ) -> RepoRef:
        commit = options.get("commit")
        if commit:
            revision = str(commit)
        host = options.get("host") or options.get("git_host") or self.default_host
        opts = {"host": str(host)}
        if options.get("token"):
            opts["token"] = str(options["token"])
        return RepoRef(
            source=self.name,
            repo=repo,
            revision=revision,
            text=text,
            options=opts,
            identity=self.identity(str(host), repo),
        )

    def identity(self, host: str, path: str) -> str:
        """The identity of repository (or owner/group) *path* on *host*:
        ``<name>:<canonical base URL>/<path>``."""
        return f"{self.name}:{canonical_url(_base(host))}/{self._canonical_path(path)}"

    def _canonical_path(self, path: str) -> str:
        return path.strip("/")

    def parse_prefix(self, text: str, options: Mapping[str, Any]) -> str | None:
        """The identity prefix an owner or group entry names (``github:acme``,
        ``gitlab:https://host/group``), for trust lists; ``None`` if *text* is not one."""
        prefix = f"{self.name}:"
        if text.startswith(prefix):
            body = text[len(prefix) :]
        elif self.bare_owners and "://" not in text and ":" not in text:
            body = text
        else:
            return None
        host, body, _ = self._split_host(body, text, options)
        path = body.strip("/") if host and "://" in host else body
        if not self._valid_prefix(path):
            return None
        given = options.get("host") or options.get("git_host")
        return self.identity(str(host or given or self.default_host), path)

    #: Whether a bare ``owner`` (no prefix) names an owner of this source.
    bare_owners = False

    def _valid_prefix(self, path: str) -> bool:
        return bool(_GROUP_PATH().match(path)) and ".." not in path.split("/")

    # -- hosts, URLs, credentials ------------------------------------------------------------------
    def base_url(self, ref: RepoRef) -> str:
        host = str(ref.options.get("host") or self.default_host)
        return _base(host)

    def refs_url(self, ref: RepoRef) -> str:
        return f"{self.base_url(ref)}/{ref.repo}.git/info/refs?service=git-upload-pack"

    def archive_url(self, ref: RepoRef, commit: str, authenticated: bool) -> str:
        raise NotImplementedError

    def credential_headers(self, ref: RepoRef, token: str) -> dict[str, dict[str, str]]:
        raise NotImplementedError

    def token(self, ref: RepoRef) -> str | None:
        explicit = ref.options.get("token")
        if explicit:
            return str(explicit)
        return getattr(settings.current(), self.token_setting) or None

    def credentials(self, ref: RepoRef) -> http.Credentials | None:
        from hubcore.store import http

        token = self.token(ref)
        return http.Credentials(self.credential_headers(ref, token)) if token else None

    def token_hint(self) -> str:
        names = " or ".join(self.token_variables)
        return f"For a private repository pass token=... or set {names}."

    # -- opening ---------------------------------------------------------------------------------
    def pinned(self, ref: RepoRef) -> str | None:
        """A full commit sha: cached, it costs no request."""
        revision = (ref.revision or "").lower()
        return revision if FULL_SHA.match(revision) else None

    def recorded(self, ref: RepoRef, ctx: FetchContext) -> str | None:
        """What the branch, tag or short sha last resolved to (a short sha may also match
        exactly one cached commit)."""
        revision = self.record_name(ref)
        commit = ctx.cache.read_refs(self.name, ref.location).get(revision)
        if commit is None and SHORT_SHA.match(revision.lower()):
            commit = _unique_prefix(ctx.cache, self.name, ref.location, revision.lower())
        return commit

    def resolve(self, ref: RepoRef, ctx: FetchContext) -> Resolution:
        """The commit from one ref request (none for a full sha); a short sha from the archive
        git records it in."""
        from hubcore.store.archives import archive_commit, extract_archive

        commit = self.pinned(ref) or self._resolve(ref)
        if commit is not None:

            def fill(tree: Path) -> None:  # runs under the snapshot's lock: one download
                with self._archive(ref, commit, ctx) as archive:
                    recorded = archive_commit(archive.path)
                    if recorded is not None and recorded != commit:
                        raise ArchiveError(
                            f"the archive served for {ref} at {commit} holds commit {recorded}"
                        )
                    extract_archive(archive.path, tree)

            return commit, fill
        return self._resolve_short_sha(ref, ctx)

    def _resolve_short_sha(self, ref: RepoRef, ctx: FetchContext) -> Resolution:
        from hubcore.store.archives import archive_commit, extract_archive

        short = str(ref.revision).lower()
        with self._archive(ref, short, ctx) as archive:
            commit = archive_commit(archive.path)
            if commit is None or not commit.startswith(short):
                raise ArchiveError(
                    f"the archive of {ref} does not record commit {short}; "
                    "use a branch, a tag or the full commit sha"
                )
            cached = ctx.cache.snapshot_dir(self.name, ref.location, commit).is_dir()
            if cached and not ctx.force_reload:
                return commit, _never_called  # the cache holds it: nothing to fill
            with ctx.cache.temp_file(".zip") as temp:
                kept = Path(str(temp) + ".kept")
            _keep_copy(archive.path, kept)  # outlives this block: the tree is filled from it next

        def fill(tree: Path) -> None:
            extract_archive(kept, tree)

        return commit, _then_remove(fill, kept)

    def _archive(
        self, ref: RepoRef, commit: str, ctx: FetchContext
    ) -> AbstractContextManager[transfer.WeightsFile]:
        """The archive of *commit* through the transfer engine (resumed, retried within the
        stall budget, with progress and events), in the blob store for the block's length."""
        from hubcore.store import transfer

        credentials = self.credentials(ref)
        return transfer.fetched_once(
            self.archive_url(ref, commit, authenticated=credentials is not None),
            credentials=credentials,
            label=f"the archive of {self.name}:{ref.repo} at {commit[:12]}",
            resource="repository",
            token_hint=self.token_hint(),
            name=f"{ref.repo}@{commit[:8]}",
            progress=ctx.progress,
            cache=ctx.cache,
        )

    def advertised_refs(self, ref: RepoRef) -> tuple[dict[str, str], str | None]:
        """The repository's branches and tags (``{ref: sha}``) and HEAD's branch, from one
        smart-HTTP request (see :func:`parse_ref_advertisement`)."""
        from hubcore.store import http

        response = http.get(
            self.refs_url(ref),
            credentials=self.credentials(ref),
            what=f"the refs of {self.name}:{ref.repo}",
            token_hint=self.token_hint(),
        )
        with response:
            return parse_ref_advertisement(response.content)

    def _resolve(self, ref: RepoRef) -> str | None:
        refs, head = self.advertised_refs(ref)
        return pick_commit(refs, head, ref.revision, f"{self.name}:{ref.repo}")

    def _offline_snapshot(self, ref: RepoRef, ctx: FetchContext, key: str) -> Snapshot:
        revision = ref.revision or "HEAD"
        commit = ctx.cache.read_refs(self.name, key).get(revision)
        if commit is None and SHORT_SHA.match(revision.lower()):
            commit = _unique_prefix(ctx.cache, self.name, key, revision.lower())
        if commit is None or not ctx.cache.snapshot_dir(self.name, key, commit).is_dir():
            raise OfflineError(
                f"offline mode is on and {ref} has not been fetched before. Run once online "
                "(unset HUBCORE_OFFLINE) to cache it."
            )
        return Snapshot(ref, ctx.cache.snapshot_dir(self.name, key, commit), commit)


class GitHubSource(GitHostSource):
    """GitHub and GitHub Enterprise (``host=``)."""

    name = "github"
    forms: tuple[str, ...] = (
        "owner/repo[:ref]",
        "github:[host/]owner/repo[@ref]",
        "github:https://host/owner/repo[@ref]",
    )
    default_host = "github.com"
    token_setting = "github_token"
    token_variables = ("HUBCORE_GITHUB_TOKEN", "GITHUB_TOKEN")

    bare_owners = True

    def claim(self, text: str, options: Mapping[str, Any]) -> int:
        """torch.hub's bare form, ``owner/repo[:ref]`` (or ``@ref``), is GitHub's."""
        return Claim.FORM if _bare_github(text) else Claim.NONE

    def parse(self, text: str, options: Mapping[str, Any]) -> RepoRef | None:
        """A :class:`RepoRef` for ``owner/repo[:ref]``, ``github:[host/]owner/repo[@ref]`` or
        ``github:https://host/owner/repo[@ref]``."""
        claimed = super().parse(text, options)
        if claimed is not None:
            return claimed
        if not _bare_github(text):
            return None
        repo, revision = self._split(text, text)
        return self._ref(repo, revision, text, options)

    def _host_prefix_allowed(self, rest: str) -> bool:
        return True  # owners have no dots, so a dotted first segment can only be a host

    def _canonical_path(self, path: str) -> str:
        return path.strip("/").lower()  # GitHub owner and repository names ignore case

    def _valid_prefix(self, path: str) -> bool:
        return bool(_OWNER().match(path) or _OWNER_REPO().match(path))

    def _is_public_github(self, ref: RepoRef) -> bool:
        return urlsplit(self.base_url(ref)).netloc == "github.com"

    def archive_url(self, ref: RepoRef, commit: str, authenticated: bool) -> str:
        owner, repo = ref.repo.split("/")
        if self._is_public_github(ref):
            if authenticated:
                return f"https://api.github.com/repos/{owner}/{repo}/zipball/{commit}"
            return f"https://codeload.github.com/{owner}/{repo}/zip/{commit}"
        base = self.base_url(ref)
        if authenticated:
            return f"{base}/api/v3/repos/{owner}/{repo}/zipball/{commit}"
        return f"{base}/{owner}/{repo}/archive/{commit}.zip"

    def credential_headers(self, ref: RepoRef, token: str) -> dict[str, dict[str, str]]:
        import base64  # only a fetch with a token needs it

        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        base = self.base_url(ref)  # an origin: scheme, host and port all bind the token
        headers = {base: {"Authorization": f"Basic {basic}"}}
        if self._is_public_github(ref):
            headers["https://api.github.com"] = {"Authorization": f"Bearer {token}"}
        return headers


class GitLabSource(GitHostSource):
    """GitLab and self-hosted GitLab (``host=``), with nested groups."""

    name = "gitlab"
    forms: tuple[str, ...] = (
        "gitlab:group[/subgroup...]/repo[@ref]",
        "gitlab:https://host/group[/subgroup...]/repo[@ref]",
    )
    default_host = "gitlab.com"
    token_setting = "gitlab_token"
    token_variables = ("HUBCORE_GITLAB_TOKEN",)

    def _valid_path(self, repo: str) -> bool:
        parts = repo.split("/")
        return len(parts) >= 2 and all(re.match(r"^[A-Za-z0-9_.-]+$", p) for p in parts)

    def archive_url(self, ref: RepoRef, commit: str, authenticated: bool) -> str:
        project = quote(ref.repo, safe="")
        return f"{self.base_url(ref)}/api/v4/projects/{project}/repository/archive.zip?sha={commit}"

    def credential_headers(self, ref: RepoRef, token: str) -> dict[str, dict[str, str]]:
        import base64

        basic = base64.b64encode(f"oauth2:{token}".encode()).decode()
        base = self.base_url(ref)  # an origin: scheme, host and port all bind the token
        return {base: {"Authorization": f"Basic {basic}", "PRIVATE-TOKEN": token}}


def _is_host(segment: str) -> bool:
    """Whether a path segment names a host (``ghe.example``, ``localhost:8080``)."""
    match = _HOST().match(segment)
    return bool(match) and ("." in segment or ":" in segment or segment == "localhost")


def _base(host: str) -> str:
    """A ``host=`` value (a host name or a base URL) as a base URL; https is assumed."""
    host = host.strip().rstrip("/")
    return host if "://" in host else f"https://{host}"


def _bare_github(text: str) -> bool:
    if "://" in text or text.startswith("/"):  # an absolute path is a folder, never owner/repo
        return False
    repo = re.split(r"[@:]", text, maxsplit=1)[0]
    return bool(_OWNER_REPO().match(repo.strip("/").removesuffix(".git")))


def _keep_copy(source: Path, target: Path) -> None:
    """*target* as a second name of *source* (a hard link: same folder tree), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        import shutil  # only a copy needs it

        shutil.copyfile(source, target)


def _unique_prefix(cache: Cache, source: str, key: str, prefix: str) -> str | None:
    folder = cache.repo_dir(source, key) / "snapshots"
    matches = [p.name for p in folder.glob(f"{prefix}*")] if folder.is_dir() else []
    return matches[0] if len(matches) == 1 else None


@hookimpl
def hubcore_register_sources(register: Callable[[Source], None]) -> None:
    """Register the GitHub and GitLab sources."""
    register(GitHubSource())
    register(GitLabSource())
