"""Regular expressions compiled when first used.

Compiling a pattern costs 50 to 400 µs. The modules every command imports (the sources, the
cache, the redactor) hold dozens of them, most of which a given command never matches (a load
of a local folder matches no host, commit or URL pattern), so they are compiled on first use.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

__all__ = ["later"]


def later(regex: str, flags: int = 0) -> Callable[[], re.Pattern[str]]:
    """A function that returns *regex* compiled with *flags*, compiling it on its first call."""
    return functools.cache(functools.partial(re.compile, regex, flags))
