"""Trust: nothing from a remote repository runs until the user has said it may.

``list``, ``help`` and discovery never execute repository code, so they need no trust.
``load`` imports ``hubconf.py`` and runs an entrypoint, so it checks first. A live local
folder (a snapshot without an immutable id: the user's own files) is trusted; everything
fetched from elsewhere must be on the allowlist, or be accepted at a prompt.

Allowlist entries (``hubcore trust add``, ``<home>/trusted.json``, or ``HUBCORE_TRUST`` with
comma-separated entries, ``*`` for everything, for CI):

* ``github:acme`` trusts every repository of that owner or group;
* ``github:acme/models`` trusts the repository at any commit;
* ``github:acme/models@<sha>`` trusts that commit only: a later commit of the branch asks
  again, and the prompt shows the old and the new commit.

Entries without a ``source:`` prefix mean GitHub, as in ``torch.hub``. Unlike torch.hub, a
repository being in the cache does not make it trusted.

``trust_repo`` follows torch.hub: ``"check"`` (default) trusts allowlisted repositories and
otherwise asks on a terminal, remembering a yes; ``True`` trusts and remembers without asking;
``False`` asks every time and remembers nothing. Without a terminal nothing waits for an
answer: the load fails at once, naming the command and the variable that trust the repository.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

from hubcore.cache import Cache, get_cache
from hubcore.errors import InvalidReferenceError, UntrustedRepoError
from hubcore.sources import Snapshot, redact_url

__all__ = [
    "TrustMode",
    "add",
    "ensure_trusted",
    "entries",
    "is_trusted",
    "normalize_entry",
    "remove",
]

TrustMode = bool | Literal["check"]
TRUST_FILE = "trusted.json"


def normalize_entry(text: str) -> str:
    """``owner/repo`` -> ``github:owner/repo``; other forms are kept (credentials removed)."""
    text = redact_url(text.strip())
    if not text or text.startswith("@"):
        raise InvalidReferenceError(
            f"{text!r} is not a trust entry; write owner, owner/repo, owner/repo@<commit>, "
            "or source:repo"
        )
    head = text.split("/", 1)[0]
    if ":" not in head and "://" not in text:
        return f"github:{text}"
    return text


def identity(snapshot: Snapshot) -> tuple[str, str] | None:
    """``(repository key, commit)`` a snapshot is trusted under; ``None`` for a live folder."""
    if snapshot.snapshot_id is None:
        return None
    return f"{snapshot.ref.source}:{redact_url(snapshot.ref.repo)}", snapshot.snapshot_id


def entries(cache: Cache | None = None) -> list[str]:
    """The allowlist: the file's entries, then ``HUBCORE_TRUST``'s."""
    stored = _read(_path(cache))
    from_env = [e for e in os.environ.get("HUBCORE_TRUST", "").split(",") if e.strip()]
    return stored + [e.strip() if e.strip() == "*" else normalize_entry(e) for e in from_env]


def add(entry: str, cache: Cache | None = None) -> str:
    """Add *entry* to the allowlist file; return it as stored."""
    normalized = normalize_entry(entry)
    path = _path(cache)
    with _cache(cache).lock("trust"):
        current = _read(path)
        if normalized not in current:
            _write(_cache(cache), path, [*current, normalized])
    return normalized


def remove(entry: str, cache: Cache | None = None) -> bool:
    """Remove *entry* (and, for a repository, its pinned commits); whether anything went."""
    normalized = normalize_entry(entry)
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
    if mode is True:
        add(key)
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
            f"refusing to run code from {key}: {why}, and there is no terminal to ask. "
            f"Trust it with `hubcore trust add {key}` (or `{key}@{commit}` for this commit "
            f"only), set HUBCORE_TRUST={key}, or pass trust_repo=True."
        )
    prompt = f"{why}.\nLoading it runs its code with your permissions. Trust {key}? [y/N] "
    answer = (ask or input)(prompt).strip().lower()
    if answer not in ("y", "yes"):
        raise UntrustedRepoError(f"{key} was not trusted; nothing from it was run")
    if mode == "check":
        add(f"{key}@{commit}" if pinned else key)


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
        if "@" not in entry and key.startswith(entry.rstrip("/") + "/"):
            return True  # an owner or group entry
    return False


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
    return [str(e) for e in found if isinstance(e, str)]


def _write(cache: Cache, path: Path, items: list[str]) -> None:
    cache.atomic_write_json(path, {"trusted": items})
