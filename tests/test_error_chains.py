"""One walker of error chains (hubcore.errors.causes) for every transport's messages: the HTTP
client's, git's and the smart-HTTP client's read-timeout check all see the same chain."""

from __future__ import annotations

import ssl

from hubcore.errors import causes


class Wrapped(Exception):
    """Like urllib3's errors: the wrapped error in ``reason``."""

    def __init__(self, message: str, reason: object):
        super().__init__(message)
        self.reason = reason


def test_every_way_libraries_wrap_errors_is_followed() -> None:
    root = ConnectionRefusedError(111, "Connection refused")
    by_reason = Wrapped("pool", root)
    by_argument = OSError(by_reason)  # requests wraps urllib3's error as its argument
    try:
        try:
            raise by_argument
        except OSError as inner:
            raise RuntimeError("while handling") from inner
    except RuntimeError as outer:
        chain = list(causes(outer))
    assert chain[1:] == [by_argument, by_reason, root]


def _raised(suppress: bool) -> ValueError:
    try:
        try:
            raise KeyError("first")
        except KeyError:
            if suppress:
                raise ValueError("second") from None
            raise ValueError("second")  # noqa: B904 (the context is what is tested)
    except ValueError as exc:
        return exc
    raise AssertionError("unreachable")


def test_context_counts_unless_suppressed() -> None:
    assert [type(e) for e in causes(_raised(False))] == [ValueError, KeyError]
    assert [type(e) for e in causes(_raised(True))] == [ValueError]


def test_a_text_reason_is_not_an_error() -> None:
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.reason = "CERTIFICATE_VERIFY_FAILED"  # ssl errors carry a text here
    assert list(causes(error)) == [error]


def test_a_loop_ends() -> None:
    first, second = ValueError("a"), ValueError("b")
    first.__cause__, second.__cause__ = second, first
    assert list(causes(first)) == [first, second]
    deep = ValueError("0")
    for n in range(100):
        outer = ValueError(str(n + 1))
        outer.__cause__ = deep
        deep = outer
    assert len(list(causes(deep))) == 32
    assert [str(e) for e in causes(deep, limit=3)] == ["100", "99", "98"]
