"""The description of one weight file, shared by static discovery and ``@pretrained``."""

from __future__ import annotations

import attrs

__all__ = ["Weights"]


def _lower(value: str | None) -> str | None:
    return value.lower() if value is not None else None


@attrs.frozen
class Weights:
    """One weight file: its URL, and optionally its sha256 and size in bytes."""

    url: str
    sha256: str | None = attrs.field(default=None, converter=_lower)
    size: int | None = None
