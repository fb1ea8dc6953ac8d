"""Weight files and the rule for which one ``pretrained=True`` takes.

Static discovery and ``@pretrained`` at run time both use this module, so what ``hubcore list``
and ``help`` show as the default weights is the file a load reads.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

__all__ = ["PICKLE_SUFFIXES", "Weights", "default_variant"]

#: Suffixes of weight files read with pickle, which can carry code.
PICKLE_SUFFIXES = (".pth", ".pt", ".pkl", ".bin", ".mge", ".ckpt")


def _lower(value: str | None) -> str | None:
    return value.lower() if value is not None else None


@attrs.frozen
class Weights:
    """One weight file: its URL, and optionally its sha256 and size in bytes."""

    url: str
    sha256: str | None = attrs.field(default=None, converter=_lower)
    size: int | None = None


def default_variant(variants: Mapping[str, Weights], declared: str) -> str:
    """The name of the variant ``pretrained=True`` takes, given the *declared* default.

    That is the declared default, unless it is a pickle-based file (see :data:`PICKLE_SUFFIXES`)
    and another variant offers the same file as ``.safetensors`` (the same URL with that suffix):
    then the safetensors twin is taken, since it cannot carry code.
    """
    stem, dot, suffix = variants[declared].url.rpartition(".")
    if not dot or f".{suffix.lower()}" not in PICKLE_SUFFIXES:
        return declared
    twin = f"{stem}.safetensors"
    return next((name for name, w in variants.items() if w.url == twin), declared)
