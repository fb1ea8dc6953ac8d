"""The ``local`` source: a repository that is a folder on this machine, used in place.

A path is spelled as one (``./dir``, ``../dir``, ``/abs/dir``, ``~/dir``, ``file:///abs/dir``,
``local:dir``) or the source is forced (``source="local"``, as torch.hub's). A bare name that
is an existing folder is only a guess (:attr:`~hubcore.sources.Claim.GUESS`): it is used when
no other source understands the name, so a folder ``acme/models`` in the working directory
never shadows the GitHub repository ``acme/models``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from hubcore.errors import InvalidReferenceError, RepoNotFoundError
from hubcore.plugins.hookspecs import hookimpl
from hubcore.sources import Claim, FetchContext, RepoRef, Snapshot, Source

__all__ = ["LocalSource"]


class LocalSource:
    """A folder on disk. It is read live (no copy), so edits show up on the next load."""

    name = "local"
    forms: tuple[str, ...] = ("./dir, ../dir, /abs/dir, ~/dir, file:///abs/dir, local:dir",)

    def claim(self, text: str, options: Mapping[str, Any]) -> int:
        """A spelled path or ``file:`` URL is a form; an existing folder's bare name a guess."""
        if text.startswith("file:") or _is_spelled_path(text):
            return Claim.FORM
        return Claim.GUESS if os.path.isdir(text) else Claim.NONE

    def parse(self, text: str, options: Mapping[str, Any]) -> RepoRef | None:
        """A :class:`RepoRef` for the folder *text* names (see the module docstring)."""
        path: str | None = None
        if text.startswith("local:"):
            path = text[len("local:") :]
        elif text.startswith("file:"):
            parts = urlsplit(text)
            if parts.netloc not in ("", "localhost"):
                raise InvalidReferenceError(
                    f"{text!r} names a file on another host; use file:///absolute/path"
                )
            path = unquote(parts.path)
        elif options.get("source") == "local" or _looks_like_path(text):
            path = text
        if path is None:
            return None
        if not path:
            raise InvalidReferenceError(f"{text!r} names no folder; write local:./path")
        try:
            resolved = Path(path).expanduser().absolute()
        except RuntimeError:  # ~user of an unknown user
            raise RepoNotFoundError(
                f"{text!r}: {path.split('/', 1)[0]} is not a user's home folder"
            ) from None
        return RepoRef(
            source=self.name, repo=str(resolved), text=text, identity=f"{self.name}:{resolved}"
        )

    def open(self, ref: RepoRef, ctx: FetchContext) -> Snapshot:
        root = Path(ref.repo)
        if not root.exists():
            raise RepoNotFoundError(f"the folder {root} does not exist (from {ref.text!r})")
        if not root.is_dir():
            raise RepoNotFoundError(f"{root} is a file, not a repository folder")
        return Snapshot(ref=ref, root=root, snapshot_id=None)


def _looks_like_path(text: str) -> bool:
    return _is_spelled_path(text) or os.path.isdir(text)


def _is_spelled_path(text: str) -> bool:
    """Whether *text* is written as a path, whatever exists on disk."""
    if text in (".", "..") or text.startswith(("/", "./", "../", "~")):
        return True
    return os.sep != "/" and (text.startswith((".\\", "..\\")) or os.path.isabs(text))


@hookimpl
def hubcore_register_sources(register: Callable[[Source], None]) -> None:
    """Register the built-in local folder source."""
    register(LocalSource())
