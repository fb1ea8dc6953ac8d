"""Trust: nothing from a remote repository runs until the user has said it may.

``list``, ``help`` and discovery never execute repository code, so they need no trust.
``load`` imports ``hubconf.py`` and runs an entrypoint, so it checks first. A live local
folder (a snapshot without an immutable id: the user's own files) is trusted; everything
fetched from elsewhere must be on the allowlist, or be accepted at a prompt.

Allowlist entries (``hubcore trust add``, ``<home>/trusted.json``, or ``HUBCORE_TRUST`` with
comma-separated entries, ``*`` for everything, for CI) are written in any form ``load``
accepts, and are parsed by the same sources into the repository's identity
(:attr:`hubcore.sources.RepoRef.identity`), which names its host:

* ``acme`` or ``github:acme`` (``--host`` or ``github:ghe.example/acme`` for another host)
  trusts every repository of that owner or group on that host;
* ``acme/models``, ``gitlab:group/sub/repo``, ``git://host/x.git``, ``https://host/a.zip``
  trusts the repository at any commit (on github.com unless a host is named);
* ``acme/models@<sha>`` (``...#sha256=<hex>`` for an archive, ``registry:NAME@sha256:<hex>``
  for a registry version) trusts that snapshot only: a later commit of the branch asks again,
  and the prompt shows the old and the new commit. A pin must be written as its source's
  snapshot ids are (``RemoteSource.is_snapshot_id``), so that it can match.

Entries are stored as identities (``github:https://github.com/acme/models``), so they never
hold credentials; an identity is itself a valid entry. Trust files written before identities
named hosts (``github:acme/models``) are read as meaning github.com / gitlab.com. Unlike
torch.hub, a repository being in the cache does not make it trusted.

``trust_repo`` follows torch.hub: ``"check"`` (default) trusts allowlisted repositories and
otherwise asks on a terminal, remembering a yes; ``True`` trusts and remembers without asking;
``False`` asks every time and remembers nothing. Without a terminal nothing waits for an
answer: the load fails at once, naming the command and the variable that trust the repository.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from hubcore import runcontext, settings
from hubcore.errors import HubError, InvalidReferenceError, UntrustedRepoError
from hubcore.patterns import later
from hubcore.sources import RepoRef, Snapshot, Source, parse_reference, redact_url
from hubcore.store.cache import Cache, get_cache

__all__ = [
    "TrustMode",
    "add",
    "ensure_trusted",
    "entries",
    "is_trusted",
    "normalize_entry",
    "remove",
]

logger = logging.getLogger(__name__)

TrustMode = bool | Literal["check"]
TRUST_FILE = "trusted.json"
#: Version 2: entries are identities that name their host.
TRUST_FORMAT = 2
#: An entry pinned as stored: ``<identity>@<snapshot id>`` (hex, or a source's own prefix).
_PIN = later(r"^(?P<repo>.+)@(?P<pin>(?:[a-z0-9]+[:-])?[0-9a-f]{32,})$")
#: How each built-in source's references pin one snapshot (what `trust add` takes).
_PIN_FORMS = {
    "url": "<archive URL>#sha256=<64 hex digits>",
    "fsspec": "<folder URL>@sha256:<package digest>",
    "registry": "registry:NAME, then @sha256:<64 hex digits>",
}
_FORMS = (
    "write an owner (acme), a repository in any form `load` accepts (acme/models, "
    "gitlab:group/repo, git://host/repo.git, https://host/hub.zip), or one commit of it "
    "(acme/models@<full sha>); --host names another GitHub/GitLab host"
)


def normalize_entry(text: str, *, host: str | None = None) -> str:
    """The identity an allowlist entry names (``acme/models`` ->
    ``github:https://github.com/acme/models``), parsed as ``load`` parses references.

    *host* is the GitHub/GitLab host for entries that name none. Raises
    :class:`InvalidReferenceError` for anything that cannot be trusted (a malformed entry, a
    local folder, a branch instead of a commit).
    """
    text = text.strip()
    if not text or text.startswith("@"):
        raise InvalidReferenceError(f"{redact_url(text)!r} is not a trust entry; {_FORMS}")
    if text == "*":
        raise InvalidReferenceError(
            "'*' would trust every repository for good; set HUBCORE_TRUST=* for one run instead"
        )
    entry = _normalized(text, host)
    if host and _normalized(text, _PROBE_HOST) == entry:
        raise InvalidReferenceError(
            f"--host {host} has no effect on {redact_url(text)!r}, which names its own host; "
            "--host names the server of GitHub/GitLab references such as acme/models"
        )
    return entry


#: A host no reference names: an entry that reads the same with it ignores --host.
_PROBE_HOST = "host-probe.invalid"


def _normalized(text: str, host: str | None) -> str:
    sources = _sources()
    options: dict[str, Any] = {"host": host, "git_host": host} if host else {}
    pinned = _PIN().match(text)
    if pinned and "#" not in text:  # `<reference or identity>@<snapshot id>`, as stored
        found = _pinned_entry(pinned["repo"], pinned["pin"], sources, options)
        if found is not None:
            return found
    try:  # a source's own pin syntax (`#sha256=`, `registry:NAME@sha256:`) or none
        ref = parse_reference(text, sources, options=options)
    except InvalidReferenceError as exc:
        prefix = _owner_prefix(text, sources, options)
        if prefix is None:
            raise InvalidReferenceError(f"{exc} ({_FORMS})") from None
        return prefix
    if ref.source == "local":
        prefix = _owner_prefix(text, sources, options)  # `acme` with a folder acme here
        if prefix is not None:
            return prefix
        raise InvalidReferenceError(
            f"{redact_url(text)!r} is a local folder: your own folders are always trusted, so "
            "there is nothing to add"
        )
    source = sources[ref.source]
    named = _pin_of(source, ref)
    if named:
        return f"{ref.identity}@{named}"
    if _names_default(source, ref):
        return ref.identity
    raise InvalidReferenceError(
        f"{redact_url(text)!r}: trust pins one snapshot by its immutable id, not "
        f"{ref.revision!r} (a branch, tag, alias or short sha moves or is ambiguous); trust "
        f"{ref.identity} for every snapshot, or pin one as {_pin_form(ref.source)}"
    )


def _pinned_entry(
    base: str, pin: str, sources: Mapping[str, Source], options: Mapping[str, Any]
) -> str | None:
    """``<identity>@<pin>`` when *base* names a repository without a revision and *pin* is
    written as its source's snapshot ids are; ``None`` to read the whole text as a reference."""
    try:
        ref = parse_reference(base, sources, options=options)
    except InvalidReferenceError:
        return None
    source = sources.get(ref.source)
    is_snapshot_id = getattr(source, "is_snapshot_id", None)
    if ref.source == "local" or not _names_default(source, ref):
        return None
    if not (callable(is_snapshot_id) and is_snapshot_id(pin)):
        if _own_pin(sources, f"{base}@{pin}", options):
            return None  # the source's own syntax: `registry:NAME@sha256:<hex>`
        raise InvalidReferenceError(
            f"{redact_url(base)}@{pin}: {pin!r} is not how {ref.source} names a snapshot, so "
            f"the entry could never match; trust {ref.identity} for every snapshot, or pin "
            f"one as {_pin_form(ref.source)}"
        )
    return f"{ref.identity}@{pin}"


def _pin_of(source: Source | None, ref: RepoRef) -> str | None:
    """The snapshot id *ref* itself names (a full commit, a content hash), if any."""
    pinned = getattr(source, "pinned", None)
    named = pinned(ref) if callable(pinned) else None
    return str(named).lower() if named else None


def _own_pin(sources: Mapping[str, Source], text: str, options: Mapping[str, Any]) -> bool:
    """Whether *text*, read whole, is a reference that pins a snapshot in its source's syntax."""
    try:
        ref = parse_reference(text, sources, options=options)
    except InvalidReferenceError:
        return False
    return _pin_of(sources.get(ref.source), ref) is not None


def _names_default(source: Source | None, ref: RepoRef) -> bool:
    """Whether *ref* chooses no revision (a source may imply one, as the registry's latest)."""
    names_default = getattr(source, "names_default", None)
    return bool(names_default(ref)) if callable(names_default) else ref.revision is None


def _pin_form(source: str) -> str:
    """How a reference of *source* pins one snapshot, for messages."""
    return _PIN_FORMS.get(source, "<reference>@<full commit sha>")


def identity(snapshot: Snapshot) -> tuple[str, str] | None:
    """``(repository identity, commit)`` a snapshot is trusted under; ``None`` for a live
    folder."""
    if snapshot.snapshot_id is None:
        return None
    return snapshot.ref.identity, snapshot.snapshot_id


def entries(cache: Cache | None = None) -> list[str]:
    """The allowlist: the file's entries, then ``HUBCORE_TRUST``'s (as identities)."""
    stored = _read(_path(cache))
    from_env = []
    for entry in settings.current().trust:
        if entry == "*":
            from_env.append(entry)
        elif entry:
            try:
                from_env.append(normalize_entry(entry))
            except InvalidReferenceError as exc:
                raise InvalidReferenceError(f"HUBCORE_TRUST: {exc}") from None
    return stored + from_env


def add(entry: str, cache: Cache | None = None, *, host: str | None = None) -> str:
    """Add *entry* (see :func:`normalize_entry`) to the allowlist file; return it as stored."""
    return _store(normalize_entry(entry, host=host), cache)


def remove(entry: str, cache: Cache | None = None, *, host: str | None = None) -> bool:
    """Remove *entry* (and, for a repository, its pinned commits); whether anything went."""
    normalized = normalize_entry(entry, host=host)
    path = _path(cache)
    with _cache(cache).lock("trust"):
        current = _read(path)
        kept = [e for e in current if e != normalized and e.split("@", 1)[0] != normalized]
        if kept != current:
            _write(_cache(cache), path, kept)
    return len(kept) != len(current)


def ensure_trusted(
    snapshot: Snapshot,
    mode: TrustMode = "check",
    *,
    ask: Callable[[str], str] | None = None,
    interactive: bool | None = None,
) -> None:
    """Return if *snapshot* may run, else ask (on a terminal) or raise UntrustedRepoError."""
    who = identity(snapshot)
    if who is None:
        return
    key, commit = who
    outer = runcontext.current()
    if outer is not None and mode is not False:
        mode = "check"  # repository code cannot grant trust to what it loads
    asked_by = f" (loaded by the code of {outer.label})" if outer is not None else ""
    if mode is True:
        _store(key)
        return
    allowed = entries()
    if mode == "check" and _matches(key, commit, allowed):
        return
    pinned = [e.split("@", 1)[1] for e in allowed if e.split("@", 1)[0] == key and "@" in e]
    why = (
        f"you trusted {key} at {', '.join(c[:12] for c in pinned)}; it is now at commit "
        f"{commit[:12]}"
        if pinned
        else f"{key} (at {commit[:12]}) is not on your trust list"
    )
    if interactive is None:
        interactive = sys.stdin is not None and sys.stdin.isatty()
    if not interactive:
        raise UntrustedRepoError(
            f"refusing to run code from {key}{asked_by}: {why}, and there is no terminal to ask. "
            f"Trust it with `hubcore trust add {key}` (or `{key}@{commit}` for this commit "
            f"only), set HUBCORE_TRUST={key}, or pass trust_repo=True."
        )
    prompt = (
        f"{why}{asked_by}.\nLoading it runs its code with your permissions. Trust {key}? [y/N] "
    )
    answer = (ask or input)(prompt).strip().lower()
    if answer not in ("y", "yes"):
        raise UntrustedRepoError(f"{key} was not trusted; nothing from it was run")
    if mode == "check":
        _store(f"{key}@{commit}" if pinned else key)


def is_trusted(snapshot: Snapshot) -> bool:
    """Whether *snapshot*'s code may run without asking (a live folder, or on the trust
    list); never prompts."""
    try:
        ensure_trusted(snapshot, "check", interactive=False)
    except UntrustedRepoError:
        return False
    return True


def _matches(key: str, commit: str, allowed: Iterable[str]) -> bool:
    for entry in allowed:
        if entry == "*" or entry == key or entry == f"{key}@{commit}":
            return True
        # an owner or group entry (stored with a trailing slash); a repository entry never
        # covers what lies "below" it: `a.zip` does not trust `a.zip/b.zip`
        if entry.endswith("/") and "@" not in entry and key.startswith(entry):
            return True
    return False


def _owner_prefix(
    text: str, sources: Mapping[str, Source], options: Mapping[str, Any]
) -> str | None:
    """The identity prefix of an owner or group entry, read by the one source with owners
    (``parse_prefix``) that understands it; ``None`` when none (or several) do."""
    found: list[tuple[str, str]] = []
    for name, source in sources.items():
        parse_prefix = getattr(source, "parse_prefix", None)
        if callable(parse_prefix):
            prefix = parse_prefix(text, options)
            if prefix:
                found.append((name, str(prefix)))
    if len(found) != 1:
        return None
    name, prefix = found[0]
    try:  # `github.com/acme/models` names a repository: written with its prefix, it is one
        ref = parse_reference(f"{name}:{text.removeprefix(f'{name}:')}", sources, options=options)
    except InvalidReferenceError:
        return prefix.rstrip("/") + "/"
    return ref.identity if ref.revision is None else prefix.rstrip("/") + "/"


def _sources() -> Mapping[str, Source]:
    from hubcore.plugins import get_plugins  # the plugin registry imports the sources

    return get_plugins().sources


def _store(entry: str, cache: Cache | None = None) -> str:
    path = _path(cache)
    with _cache(cache).lock("trust"):
        current = _read(path)
        if entry not in current:
            _write(_cache(cache), path, [*current, entry])
    return entry


def _cache(cache: Cache | None) -> Cache:
    return cache or get_cache()


def _path(cache: Cache | None) -> Path:
    return _cache(cache).root / TRUST_FILE


def _read(path: Path) -> list[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    found = data.get("trusted", []) if isinstance(data, dict) else []
    items = [str(e) for e in found if isinstance(e, str)]
    if isinstance(data, dict) and data.get("version") == TRUST_FORMAT:
        return items
    return [m for m in (_migrate(e) for e in items) if m is not None]


def _migrate(entry: str) -> str | None:
    """An entry of a trust file from before identities named hosts, as an identity:
    ``github:acme/models`` and ``gitlab:group`` meant github.com and gitlab.com."""
    if entry == "*":
        return entry
    try:
        return normalize_entry(entry)
    except HubError as exc:
        logger.warning("ignoring the trust entry %r of an older trust file: %s", entry, exc)
        return None


def _write(cache: Cache, path: Path, items: list[str]) -> None:
    cache.atomic_write_json(path, {"version": TRUST_FORMAT, "trusted": items})
