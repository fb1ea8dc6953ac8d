"""Weight files and the rule for which one ``pretrained=True`` takes.

Static discovery and ``@pretrained`` at run time both use this module: the decorator's arguments
are read by one function (:func:`declared_weights`), which discovery calls on the values it reads
without running anything, so what ``hubcore list``, ``help`` and ``hubcore lock`` see is what a
load reads.
"""

from __future__ import annotations

from collections.abc import Mapping

from hubcore.errors import UsageError
from hubcore.records import Record

__all__ = ["PICKLE_SUFFIXES", "Weights", "declared_weights", "default_variant"]

#: Suffixes of weight files read with pickle, which can carry code.
PICKLE_SUFFIXES = (".pth", ".pt", ".pkl", ".bin", ".mge", ".ckpt")


def _lower(value: str | None) -> str | None:
    return value.lower() if value is not None else None


class Weights(Record):
    """One weight file: its URL, and optionally its sha256 and size in bytes."""

    url: str
    sha256: str | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        # what attrs ran as a converter: hex digests are kept (and compared) lower-cased
        object.__setattr__(self, "sha256", _lower(self.sha256))


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


def declared_weights(
    weights: object, sha256: object = None, size: object = None, default: object = None
) -> tuple[dict[str, Weights], str]:
    """The variants (by name) and the declared default of ``@pretrained(weights, sha256,
    size=..., default=...)``: the one grammar of the decorator's arguments.

    *weights* is one URL (the variant ``"default"``, described by *sha256* and *size*), a
    :class:`Weights`, or a non-empty mapping of variant names to URLs or :class:`Weights`.
    *default* names a variant (the first one otherwise). Anything else is a
    :class:`~hubcore.errors.UsageError` (a ``TypeError``) saying what is wrong. The decorator
    calls this at run time and static discovery on the literal values it reads, so the two
    cannot disagree.
    """
    if sha256 is not None and not isinstance(sha256, str):
        raise UsageError(f"sha256= must be a string of hex digits, not {_kind(sha256)}")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int)):
        raise UsageError(f"size= must be a whole number of bytes, not {_kind(size)}")
    if default is not None and not isinstance(default, str):
        raise UsageError(f"default= must name a variant (a string), not {_kind(default)}")
    variants: dict[str, Weights] = {}
    if isinstance(weights, str):
        variants["default"] = Weights(weights, sha256, size)
    elif isinstance(weights, Weights):
        if sha256 is not None or size is not None:
            raise UsageError("give sha256 and size inside Weights(...), not beside it")
        variants["default"] = weights
    elif isinstance(weights, Mapping):
        if sha256 is not None or size is not None:
            raise UsageError(
                "sha256= and size= describe a single URL; use Weights(...) per variant"
            )
        for name, value in weights.items():
            if not isinstance(name, str):
                raise UsageError(f"variant names must be strings, not {_kind(name)}")
            if not isinstance(value, str | Weights):
                raise UsageError(
                    f"variant {name!r}: a weight file is a URL or a Weights, not {_kind(value)}"
                )
            variants[name] = value if isinstance(value, Weights) else Weights(value)
        if not variants:
            raise UsageError("@pretrained needs at least one weight URL")
    else:
        raise UsageError(
            "@pretrained takes a URL, a Weights or a mapping of variant names to those, "
            f"not {_kind(weights)}"
        )
    for name, spec in variants.items():
        _check(name, spec)
    chosen = default if isinstance(default, str) else next(iter(variants))
    if chosen not in variants:
        raise UsageError(f"default variant {chosen!r} is not one of {sorted(variants)}")
    return variants, chosen


def _check(name: str, spec: Weights) -> None:
    """Refuse a :class:`Weights` built with values of the wrong types (Weights does not check)."""
    if not isinstance(spec.url, str) or not spec.url:
        raise UsageError(f"variant {name!r}: the weight URL must be a non-empty string")
    if spec.sha256 is not None and not isinstance(spec.sha256, str):
        raise UsageError(f"variant {name!r}: sha256 must be a string of hex digits")
    if spec.size is not None and not _is_int(spec.size):
        raise UsageError(f"variant {name!r}: size must be a whole number of bytes")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: object) -> str:
    return f"{type(value).__name__} {value!r}"[:80]
