"""Names in the registry: artifact names, aliases, version specs and file paths.

One place validates what users type and turns it into storage keys:

* an artifact name is 1 to 100 ASCII characters: letters, digits, space, ``. _ - +`` and
  ``/`` between non-empty parts; no part is ``.`` or ``..`` or starts with a dot or a space;
  it is stored as one key component with ``/`` written ``%2F`` (no ``%`` is allowed, so the
  encoding is reversible and never reaches into another artifact's folder);
* an alias is 1 to 64 of ``A-Z a-z 0-9 . _ -``, starting with a letter or digit; ``v<digits>``
  (a version number, in either case, leading zeros included) and ``sha256`` forms are
  reserved; ``latest`` is automatic (and ``LATEST`` refused); two aliases of one artifact may
  not differ only in case (checked when an alias is first set), since a case-insensitive
  folder holds them in one file;
* a spec is ``NAME``, ``NAME:ALIAS``, ``NAME:v<N>`` or ``NAME@sha256:<64 hex>``;
* a file path inside a version is relative, ``/``-separated, without empty, ``.`` or ``..``
  parts, NUL or backslash.
"""

from __future__ import annotations

import re

import attrs

from hubcore.registry.errors import InvalidNameError

__all__ = [
    "LATEST",
    "Spec",
    "check_alias",
    "check_name",
    "check_path",
    "decode_name",
    "encode_name",
    "misread_alias",
    "parse_spec",
]

LATEST = "latest"
MAX_NAME = 100
MAX_PATH = 1024
_NAME_PART = re.compile(r"^[A-Za-z0-9_+\-][A-Za-z0-9 ._+\-]*$")
_ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_VERSION = re.compile(r"^v(0|[1-9][0-9]{0,9})$")
#: ``v01``, ``V3``: read as version numbers by people, so no alias may look like one.
_VERSION_LIKE = re.compile(r"^v[0-9]+$")
_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")


@attrs.frozen
class Spec:
    """A parsed ``NAME[:ALIAS|:vN|@sha256:...]``: exactly one of alias, number, digest is set
    (a bare name means ``latest``)."""

    name: str
    alias: str | None = None
    number: int | None = None
    digest: str | None = None

    @property
    def pinned(self) -> bool:
        """Whether the spec names immutable content (a version number or a digest)."""
        return self.number is not None or self.digest is not None

    def __str__(self) -> str:
        if self.digest is not None:
            return f"{self.name}@sha256:{self.digest}"
        if self.number is not None:
            return f"{self.name}:v{self.number}"
        return f"{self.name}:{self.alias or LATEST}"


def check_name(name: str) -> str:
    """*name* if it is a valid artifact name, else :class:`InvalidNameError` saying why."""
    if not isinstance(name, str) or not name:
        raise InvalidNameError("an artifact name must be a non-empty string")
    if len(name) > MAX_NAME:
        raise InvalidNameError(f"the artifact name {name[:40]!r}... is longer than {MAX_NAME}")
    if name != name.strip():
        raise InvalidNameError(f"the artifact name {name!r} starts or ends with white space")
    for part in name.split("/"):
        if part in ("", ".", ".."):
            raise InvalidNameError(
                f"the artifact name {name!r} has an empty, '.' or '..' part between '/'"
            )
        if not _NAME_PART.match(part) or part != part.strip():
            raise InvalidNameError(
                f"the artifact name {name!r} may use only letters, digits, space and . _ - + "
                "(and / between parts); a part may not start with a dot or a space"
            )
    return name


def check_alias(alias: str, *, user: bool = True, existing: bool = False) -> str:
    """*alias* if valid (*user*: one a user may set, so not ``latest``; *existing*: one to read
    or remove, which an older hubcore may have set before the version-like forms and other
    spellings of ``latest`` were refused)."""
    if not isinstance(alias, str) or not _ALIAS.match(alias):
        raise InvalidNameError(
            f"the alias {alias!r} is not valid: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    folded = alias.lower()
    if existing:
        if user and alias == LATEST:
            raise InvalidNameError("'latest' follows the newest version by itself")
        return alias
    if _VERSION_LIKE.match(folded) or folded.startswith("sha256"):
        raise InvalidNameError(f"the alias {alias!r} looks like a version or digest; pick another")
    if folded == LATEST and (user or alias != LATEST):
        raise InvalidNameError(
            f"{alias!r}: 'latest' follows the newest version by itself; it cannot be set, and "
            "is written in lower case"
        )
    return alias


def check_path(path: str) -> str:
    """*path* if it is a valid relative file path inside a version."""
    if not path or len(path) > MAX_PATH or "\0" in path or "\\" in path or path.startswith("/"):
        raise InvalidNameError(f"the file path {path[:80]!r} is not a relative '/'-separated path")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise InvalidNameError(f"the file path {path[:80]!r} has an empty, '.' or '..' part")
    return path


def encode_name(name: str) -> str:
    """The one storage key component of a (valid) artifact name."""
    return check_name(name).replace("/", "%2F")


def decode_name(component: str) -> str:
    """The artifact name stored under *component* (see :func:`encode_name`)."""
    return component.replace("%2F", "/")


def parse_spec(text: str) -> Spec:
    """Parse ``NAME``, ``NAME:ALIAS``, ``NAME:v<N>`` or ``NAME@sha256:<hex>``."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidNameError("empty artifact reference; write NAME[:ALIAS|:vN|@sha256:HEX]")
    if "@" in text:
        name, _, digest = text.rpartition("@")
        match = _DIGEST.match(digest)
        if not match:
            raise InvalidNameError(
                f"{text!r}: after '@' write sha256: and the 64 hex digits of a version's digest"
            )
        return Spec(check_name(name), digest=match.group(1))
    name, sep, tag = text.rpartition(":")
    if not sep:
        return Spec(check_name(text), alias=LATEST)
    if version := _VERSION.match(tag):
        return Spec(check_name(name), number=int(version.group(1)))
    return Spec(check_name(name), alias=check_alias(tag, user=False, existing=True))


def misread_alias(alias: str) -> str:
    """A hint for an alias that is not set but reads like a version or like ``latest``."""
    folded = alias.lower()
    if _VERSION_LIKE.match(folded):
        return "; versions are written v<N>, in lower case and without leading zeros"
    if folded == LATEST:
        return "; the newest version is 'latest', in lower case"
    return ""
