"""The ``git`` source: any git server (``git+https://``, ``git+ssh://``, ``git://``, and
``http(s)://`` or ``ssh://`` URLs whose path ends in ``.git``).

References resolve to a commit first with one ref listing filtered to the names the revision
can mean (protocol v2 ``ls-refs`` with ``ref-prefix``; v0 only where the server speaks
nothing else), then exactly that commit is fetched with depth 1 and its tree is written into
the cache under the commit sha. Over smart HTTP both steps are plain protocol-v2 requests
(:mod:`hubcore.sources.gitproto`); other transports use dulwich, a pure-Python git client.
Every transport has connect and read timeouts and the stall budget of downloads. No ``git``
program is needed; ``ssh`` transport runs the SSH client git would run (``GIT_SSH_COMMAND``,
``core.sshCommand``, ``GIT_SSH``, else ``ssh``).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import stat
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from hubcore import config
from hubcore.errors import (
    AuthenticationError,
    DownloadError,
    HubError,
    InvalidReferenceError,
    RefNotFoundError,
    RepoNotFoundError,
    causes,
)
from hubcore.plugins.hookspecs import hookimpl
from hubcore.sources import Claim, FetchContext, RepoRef, Source, canonical_url
from hubcore.sources.git_hosts import FULL_SHA, SHORT_SHA, pick_commit
from hubcore.sources.remote import RemoteSource, Resolution

# dulwich, the transports (gitproto), the HTTP client and the archive writer are imported when a
# git reference is fetched, not at start-up: every command registers this source.
if TYPE_CHECKING:
    from hubcore.sources import gitproto
    from hubcore.sources.gitproto import Listing

__all__ = ["GitSource"]

#: Fetched git objects: a dulwich object store in memory (indexed by sha, typed loosely
#: because dulwich's sha types differ between its versions).
Objects = Any

logger = logging.getLogger(__name__)


class GitSource(RemoteSource):
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

    def pinned(self, ref: RepoRef) -> str | None:
        """The full commit the reference names, if it names one."""
        revision = ref.revision.lower() if ref.revision else None
        return revision if revision and FULL_SHA.match(revision) else None

    def resolve(self, ref: RepoRef, ctx: FetchContext) -> Resolution:
        """The commit *ref* names (one ref listing; a short sha is expanded by fetching), and
        how to write its tree: one fetch, under the cache's snapshot lock."""
        label = _label(ref)
        revision = ref.revision
        named = revision is None or not SHORT_SHA.match(revision.lower())
        if not _is_http(ref.repo) and named and self.pinned(ref) is None:
            return self._resolve_on_one_connection(ref, ctx)
        commit = self.pinned(ref) or self._resolve(ref)
        if commit is None:  # a short sha: only the fetched history can expand it
            store, found = self._fetch(ref, str(ref.revision))
            return found, lambda tree: _write_tree(store, found, tree, label)
        pinned = commit

        def fill(tree: Path) -> None:
            fetched, _ = self._fetch(ref, pinned)
            _write_tree(fetched, pinned, tree, label)

        return pinned, fill

    def _resolve_on_one_connection(self, ref: RepoRef, ctx: FetchContext) -> Resolution:
        """``git://`` and SSH: the branch or tag picked from the refs the connection lists,
        and its commit fetched on that same connection unless the cache holds it (a v0 server
        sends its whole ref advertisement on every connection: a second one for the fetch
        would send it again)."""
        from dulwich.repo import MemoryRepo

        label = _label(ref)
        picked: list[str] = []
        listed: dict[str, str] = {}
        repo = MemoryRepo()

        def wants(refs: Mapping[bytes, bytes | None], depth: int | None = None) -> list[bytes]:
            items = {k.decode(): v.decode() for k, v in refs.items() if v is not None}
            # a tag's peeled commit (``^{}``) wins where the server lists it
            listed.update(
                {k.removesuffix("^{}"): v for k, v in sorted(items.items(), key=_peeled_last)}
            )
            commit = pick_commit(listed, None, ref.revision, label)
            assert commit is not None  # a name, not a short sha: found or RefNotFoundError
            picked.append(commit)
            cached = ctx.cache.snapshot_dir(self.name, ref.location, commit).is_dir()
            return [] if cached and not ctx.force_reload else [commit.encode()]

        prefixes = [p.encode() for p in _prefixes(ref.revision)]
        try:
            self._call(
                ref,
                lambda client, path: client.fetch(
                    path, repo, determine_wants=wants, depth=1, ref_prefix=prefixes
                ),
            )
        except RefNotFoundError:
            if not any(name.startswith("refs/heads/") for name in listed):
                self._resolve(ref)  # lists the branches too, for the message
            raise
        store: Any = repo.object_store
        commit = _peeled(store, picked[0])  # an annotated tag listed without its commit

        def fill(tree: Path) -> None:
            fetched = store
            if commit.encode() not in fetched:  # cached when listed, gone since: fetch it now
                fetched, _ = self._fetch(ref, commit)  # (outside a handler: no chained cause)
            _write_tree(fetched, commit, tree, label)

        return commit, fill

    # -- resolution ----------------------------------------------------------------------
    def _resolve(self, ref: RepoRef) -> str | None:
        """The commit *ref* names, from one ref listing filtered to the names it can mean."""
        revision = ref.revision
        prefixes = _prefixes(revision)
        listing = self._list(ref, prefixes)
        refs = listing.refs
        if revision and not SHORT_SHA.match(revision.lower()) and not _named(refs, revision):
            # not there: list the branches too, for the error message
            refs = {**self._list(ref, ["refs/heads/"]).refs, **refs}
        return pick_commit(refs, listing.head, revision, _label(ref))

    def _list(self, ref: RepoRef, prefixes: Sequence[str]) -> Listing:
        """The refs of *ref*'s repository under *prefixes* (protocol v2 ``ls-refs`` where the
        server speaks it); remembered briefly for the fetch that follows."""
        from hubcore.sources import gitproto

        if _is_http(ref.repo):
            client = gitproto.SmartHTTP(ref.repo, _shown(ref))
            with _importing_ahead(_AFTER_LISTING, client):
                listing = self._guard(ref, lambda: client.ls_refs(prefixes))
        else:
            wanted = [p.encode() for p in prefixes]
            result = self._call(ref, lambda client, path: client.get_refs(path, ref_prefix=wanted))
            raw = getattr(result, "refs", result)
            items = {k.decode(): v.decode() for k, v in raw.items() if v is not None}
            symrefs = getattr(result, "symrefs", {}) or {}
            head_target = symrefs.get(b"HEAD")
            refs = {k.removesuffix("^{}"): v for k, v in sorted(items.items(), key=_peeled_last)}
            listing = gitproto.Listing(refs, head_target.decode() if head_target else None)
        with _recent_lock:
            _recent[ref.repo] = (time.monotonic(), tuple(prefixes), listing)
        return listing

    # -- fetching ------------------------------------------------------------------------
    def _fetch(self, ref: RepoRef, wanted: str) -> tuple[Objects, str]:
        """Fetch commit *wanted* into memory; return the objects and the full sha.

        A full sha is fetched one commit deep. A short sha that starts a branch or tag tip is
        that tip, fetched one commit deep; otherwise the history of the branches and tags
        (never ``refs/pull/*`` and the like) is fetched to expand it."""
        if FULL_SHA.match(wanted):
            return self._fetch_pack(ref, [wanted], depth=1), wanted
        prefix = wanted.lower()
        listing = _recent_listing(ref.repo, _TIPS) or self._list(ref, _TIPS)
        tips = sorted({sha for name, sha in listing.refs.items() if _is_tip(name)})
        at_tip = [sha for sha in tips if sha.startswith(prefix)]
        if len(at_tip) == 1:
            return self._fetch_pack(ref, at_tip, depth=1), at_tip[0]
        store = self._fetch_pack(ref, tips, depth=None) if tips else _unpack(memoryview(b""))
        commits = [
            sha.decode()
            for sha in store
            if sha.decode().startswith(prefix) and store[sha].type_name == b"commit"
        ]
        if len(commits) != 1:
            problem = f"is ambiguous ({len(commits)} commits)" if commits else "was not found"
            raise RefNotFoundError(
                f"commit {wanted} {problem} in the branches and tags of {_shown(ref)}"
            )
        return store, commits[0]

    def _fetch_pack(self, ref: RepoRef, wants: list[str], depth: int | None) -> Objects:
        """Fetch *wants* into memory: over smart HTTP with hubcore's own requests, without
        listing refs again (v2, or v0 with the capabilities the listing offered; into a memory
        object store: dulwich's client and repository modules are slow to import), with
        dulwich for every other transport."""
        from hubcore.sources import gitproto

        if _is_http(ref.repo):
            client = gitproto.SmartHTTP(ref.repo, _shown(ref))
            pack = io.BytesIO()
            with _importing_ahead(_AFTER_FETCH, client):
                self._guard(ref, lambda: client.fetch(wants, depth, pack))
            try:
                return _unpack(pack.getbuffer())
            except Exception as exc:  # dulwich's checks of a pack raise assertions too
                raise _unreadable_pack(ref, exc) from None
        from dulwich.repo import MemoryRepo

        repo = MemoryRepo()
        encoded = [sha.encode() for sha in wants]
        self._call(
            ref,
            lambda client, path: client.fetch(
                path,
                repo,
                determine_wants=lambda refs, depth=None: encoded,
                depth=depth,
                ref_prefix=[b"HEAD"],  # the wants are known: list as little as possible
            ),
        )
        return repo.object_store

    def _call(self, ref: RepoRef, action: Callable[[Any, str], Any]) -> Any:
        """Run *action* with a dulwich client for *ref* (limits on every transport)."""
        from hubcore.sources import gitproto

        url = config.rewrite_url(ref.repo)
        return self._guard(ref, lambda: action(*gitproto.dulwich_client(url)))

    def _guard(self, ref: RepoRef, action: Callable[[], _T]) -> _T:
        """Run *action*; turn transport failures into hub errors that keep their cause."""
        from dulwich.errors import GitProtocolError, NotGitRepository

        from hubcore.sources import gitproto

        try:
            return action()
        except (HubError, gitproto.NotV2):
            raise
        except Exception as exc:
            if _is_unauthorized(exc):
                raise AuthenticationError(
                    f"{_shown(ref)} refused access. {gitproto.CREDENTIALS_HINT}"
                ) from None
            if isinstance(exc, NotGitRepository):
                raise RepoNotFoundError(f"{_shown(ref)} is not a git repository") from None
            if isinstance(exc, GitProtocolError | OSError | ValueError):
                raise _failure(ref, exc) from None
            if isinstance(exc, AssertionError | zlib.error):  # dulwich's checks of a pack
                raise _unreadable_pack(ref, exc) from None
            if type(exc).__module__.split(".")[0] in ("requests", "urllib3"):
                raise _failure(ref, exc) from None
            raise


_T = TypeVar("_T")
#: Ref prefixes that hold the tips a short sha is looked for in (and where a revision may be).
_TIPS = ("HEAD", "refs/heads/", "refs/tags/")
#: Listings of the last moments, handed from resolution to the fetch that follows it.
_recent: dict[str, tuple[float, tuple[str, ...], Listing]] = {}
_recent_lock = threading.Lock()
_RECENT_SECONDS = 60.0


#: What a command imports once the refs are listed (the cache's lock), and once the pack has
#: arrived (the object store that unpacks it, the writer of the tree).
_AFTER_LISTING = ("filelock",)
_AFTER_FETCH = ("dulwich.object_store", "hubcore.store.archives")


@contextlib.contextmanager
def _importing_ahead(names: Sequence[str], client: gitproto.SmartHTTP) -> Iterator[None]:
    """Import *names* on a thread while this one waits for *client*'s server (a cold fetch
    spends tens of milliseconds on each: about as long as these imports take), and wait for
    them before going on, so that the two threads never import the same modules at once.

    The client's HTTP session is made first: importing its library beside the thread's
    modules would only share the processor, and the wait starts once the request is sent.
    A failure to make it is left for the first request, where it is mapped to a hub error."""
    missing = [name for name in names if name not in sys.modules]
    if not missing:
        yield
        return
    with contextlib.suppress(Exception):
        client.ready()
    worker = threading.Thread(target=_import_quietly, args=(missing,), daemon=True)
    worker.start()
    try:
        yield
    finally:
        worker.join()


def _import_quietly(names: Sequence[str]) -> None:
    """Import *names*; a failure is left for the import that needs the module to report."""
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # reported where the module is used
            continue


def _recent_listing(repo: str, prefixes: Sequence[str]) -> Listing | None:
    with _recent_lock:
        found = _recent.get(repo)
    if found is None:
        return None
    at, listed, listing = found
    covered = all(any(p.startswith(q) for q in listed) for p in prefixes)
    return listing if covered and time.monotonic() - at < _RECENT_SECONDS else None


def _is_unauthorized(exc: BaseException) -> bool:
    """Whether *exc* is dulwich's HTTP 401. Its client module is slow to import, and only a
    fetch that went through it (not the protocol-v2 requests) can have raised it."""
    client = sys.modules.get("dulwich.client")
    return client is not None and isinstance(exc, client.HTTPUnauthorized)


def _prefixes(revision: str | None) -> list[str]:
    """The ``ref-prefix`` arguments that find *revision* as :func:`pick_commit` reads it."""
    if revision is None:
        return ["HEAD"]
    if SHORT_SHA.match(revision.lower()):  # maybe a name, maybe the start of a tip's sha
        return [revision, *_TIPS]
    return [revision, f"refs/tags/{revision}", f"refs/heads/{revision}"]


def _peeled(store: Objects, sha: str) -> str:
    """The commit *sha* names in *store*: itself, or what the tags it names point to (a sha
    the store does not hold is taken as it is: a commit the cache holds)."""
    for _ in range(16):  # a tag of a tag ...
        try:
            found = store[sha.encode()]
        except KeyError:
            return sha
        if found.type_name != b"tag":
            return sha
        sha = found.object[1].decode()
    return sha


def _named(refs: Mapping[str, str], revision: str) -> bool:
    return any(n in refs for n in (revision, f"refs/tags/{revision}", f"refs/heads/{revision}"))


def _is_tip(name: str) -> bool:
    return name == "HEAD" or name.startswith(("refs/heads/", "refs/tags/"))


def _is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def _failure(ref: RepoRef, exc: BaseException) -> HubError:
    """A hub error for a failed transport: the root cause's own words, in full."""
    from hubcore.sources import gitproto

    cause = _root_cause(exc)
    if isinstance(cause, gitproto.RemoteError):
        text = str(cause)
        if "not our ref" in text:
            return RefNotFoundError(f"{_shown(ref)} has no such commit; {text}")
    timed = gitproto.timeout_error(config.rewrite_url(ref.repo), cause)
    if timed is not None:
        return DownloadError(f"fetching {_shown(ref)} failed: {timed}")
    text = _words(cause)
    lowered = text.lower()
    if "not found" in lowered or "does not appear" in lowered or "does not exist" in lowered:
        return RepoNotFoundError(f"{_shown(ref)} not found: {text}")
    return DownloadError(f"fetching {_shown(ref)} failed: {text}")


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost error behind *exc* (:func:`hubcore.errors.causes`). On the way, a
    :class:`~hubcore.sources.gitproto.TransportTimeout` (it names the limit that fired) or a
    hang-up carrying the remote side's stderr wins."""
    from hubcore.sources import gitproto

    current = exc
    for current in causes(exc):
        if isinstance(current, gitproto.TransportTimeout) or getattr(current, "stderr_lines", None):
            return current  # the limit that fired / what the remote side wrote to stderr
    return current


def _unreadable_pack(ref: RepoRef, exc: BaseException) -> DownloadError:
    """The error for a pack the server sent that cannot be read (either transport)."""
    return DownloadError(
        f"fetching {_shown(ref)} failed: the server sent a pack that cannot be read "
        f"({type(exc).__name__}: {_words(exc)})"
    )


def _words(exc: BaseException) -> str:
    """*exc*'s own message on one line (what a remote wrote, such as an SSH client's stderr,
    made safe to show: :func:`hubcore.store.http.remote_text`); its type if it has none."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    from hubcore.store import http

    return http.remote_text(text) or type(exc).__name__


def _shown(ref: RepoRef) -> str:
    """:func:`_label`, a very long URL cut in its middle
    (:func:`hubcore.store.redaction.shown_url`)."""
    from hubcore.store.redaction import shown_url

    return shown_url(_label(ref))


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
    from hubcore.store.redaction import redact

    return redact(ref.repo) + (f"@{ref.revision}" if ref.revision else "")


def _unpack(pack: memoryview) -> Objects:
    """The objects of a whole pack, deltas resolved, in a memory object store (each sha
    computed from the object's bytes, so no object can stand in for another)."""
    from dulwich.object_store import MemoryObjectStore

    store = MemoryObjectStore()
    if len(pack):
        sink, commit, abort = store.add_pack()
        try:
            sink.write(pack)
            commit()
        except BaseException:
            abort()
            raise
    return store


def _write_tree(store: Objects, commit: str, tree: Path, label: str) -> None:
    """Write the files of *commit* (in *store*, an object store or a repository) into *tree*:
    regular files, executables, and symlinks that stay inside the tree
    (:class:`~hubcore.store.archives.TreeWriter`)."""
    from dulwich.objects import Commit

    store = getattr(store, "object_store", store)

    from hubcore.store.archives import TreeWriter, check_member_name

    try:
        obj = store[commit.encode()]
    except KeyError:
        raise RefNotFoundError(f"commit {commit} was not found in {label}") from None
    if not isinstance(obj, Commit):
        raise RefNotFoundError(f"{commit} is not a commit in {label}")
    writer = TreeWriter(tree)
    try:
        for entry in store.iter_tree_contents(obj.tree):
            if stat.S_ISDIR(entry.mode) or entry.mode == 0o160000:  # submodules are not fetched
                continue
            name = entry.path.decode("utf-8", "surrogateescape")
            rel = check_member_name(name)
            data = store[entry.sha].as_raw_string()
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
