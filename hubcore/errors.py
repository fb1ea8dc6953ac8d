"""The one error hierarchy of hubcore.

Every error hubcore raises on purpose is a :class:`HubError`. Each subclass also derives from the
builtin exception it most resembles, so ``except FileNotFoundError`` or ``except ImportError`` in
existing code keeps working. Messages say what was wrong and what to do about it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

__all__ = [
    "ArchiveError",
    "AuthenticationError",
    "BackendError",
    "CacheError",
    "CacheTargetError",
    "ConfigError",
    "DependencyError",
    "DownloadError",
    "EntrypointError",
    "EntrypointNotFoundError",
    "HubError",
    "HubconfError",
    "HubconfNotFoundError",
    "HubconfSyntaxError",
    "IntegrityError",
    "InvalidArgumentError",
    "InvalidReferenceError",
    "LockMismatchError",
    "NoBackendError",
    "NoWeightsError",
    "OfflineError",
    "PluginError",
    "RefNotFoundError",
    "RepoNotFoundError",
    "UnknownSourceError",
    "UntrustedRepoError",
    "UsageError",
    "VariantNotFoundError",
    "WeightsFormatError",
    "WeightsMismatchError",
    "causes",
]


def causes(exc: BaseException, limit: int = 32) -> Iterator[BaseException]:
    """*exc* and the errors behind it, outermost first: the one walker of error chains.

    Libraries wrap errors each their own way, so each step takes the first of: the explicit
    cause (``raise ... from``), urllib3's ``reason`` when it is an error (on ssl errors it is
    a text), an error given as the first argument (requests wraps urllib3's so), and the
    context of an error raised while handling another (unless suppressed with ``from None``).
    A chain that loops or runs past *limit* ends there."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < limit:
        seen.add(id(current))
        yield current
        reason = getattr(current, "reason", None)
        first = current.args[0] if current.args else None
        context = None if current.__suppress_context__ else current.__context__
        current = next(
            (
                e
                for e in (current.__cause__, reason, first, context)
                if isinstance(e, BaseException)
            ),
            None,
        )


class HubError(Exception):
    """Base class of every error hubcore raises deliberately."""


class InvalidReferenceError(HubError, ValueError):
    """A repository reference could not be parsed."""


class UnknownSourceError(HubError, LookupError):
    """A reference names a source that no loaded plugin provides."""


class RepoNotFoundError(HubError, FileNotFoundError):
    """The repository (folder, remote repository or reference) does not exist."""


class CacheError(HubError, OSError):
    """A cache entry is damaged, or was removed while in use, and could not be fetched again."""


class CacheTargetError(HubError, LookupError):
    """``hubcore cache rm`` was given something that matches no (or more than one) entry."""


class ConfigError(HubError, ValueError):
    """The configuration file or a configuration variable is malformed."""


class InvalidArgumentError(HubError, ValueError):
    """An argument is malformed (a sha256 that is not 64 hex digits, say)."""


class RefNotFoundError(RepoNotFoundError):
    """The repository exists but has no such branch, tag or commit."""


class AuthenticationError(HubError, PermissionError):
    """The server refused access (401/403): a token is missing or lacks permission."""


class ArchiveError(HubError, ValueError):
    """An archive is not an archive, is truncated, or holds a member that is unsafe to extract."""


class HubconfError(HubError):
    """Base class for problems with a repository's ``hubconf.py``."""


class HubconfNotFoundError(HubconfError, FileNotFoundError):
    """The repository has no ``hubconf.py`` at its root."""


class HubconfSyntaxError(HubconfError, SyntaxError):
    """``hubconf.py`` (or a module it re-exports from) is not valid Python."""


class EntrypointError(HubconfError, RuntimeError):
    """Importing ``hubconf.py`` or running an entrypoint raised an exception."""


class EntrypointNotFoundError(HubconfError, LookupError):
    """The requested entrypoint is not defined by the repository."""

    def __init__(self, entry: str, repo: str, available: Sequence[str], suggestions: Sequence[str]):
        self.entry = entry
        self.repo = repo
        self.available = list(available)
        self.suggestions = list(suggestions)
        hint = (
            f" Did you mean {_quoted_list(self.suggestions)}?"
            if self.suggestions
            else f" Available entrypoints: {_quoted_list(self.available) or '(none)'}."
        )
        super().__init__(f"{repo} has no entrypoint {entry!r}.{hint}")


class DependencyError(HubError, ImportError):
    """Packages listed in ``dependencies`` are missing or at the wrong version."""

    def __init__(self, repo: str, problems: Sequence[str]):
        self.repo = repo
        self.problems = list(problems)
        super().__init__(
            f"{repo} needs packages that are not installed: {'; '.join(self.problems)}. "
            "Install them (for example with pip) and try again."
        )


class LockMismatchError(HubError, ValueError):
    """A repository no longer matches what the lock file recorded."""


class UntrustedRepoError(HubError, PermissionError):
    """A repository's code would run, but the repository is not trusted."""


class IntegrityError(HubError, ValueError):
    """Downloaded bytes do not match the expected sha256."""

    def __init__(self, url: str, expected: str, actual: str):
        self.url = url
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"sha256 mismatch for {url}: expected {expected}, got {actual}. "
            "The file is corrupt or was replaced; nothing was cached. If the new file is "
            "legitimate, update the sha256 in the hubconf (hubcore hash FILE prints it)."
        )


class DownloadError(HubError, OSError):
    """A file could not be fetched."""


class OfflineError(HubError, ConnectionError):
    """Offline mode is on and what was asked for is not in the cache."""


class WeightsFormatError(HubError, ValueError):
    """A weight file is in a format the backend cannot (or will not) read."""


class WeightsMismatchError(HubError, ValueError):
    """A state does not fit the model: missing, unexpected or differently shaped entries."""

    def __init__(
        self,
        missing: Iterable[str] = (),
        unexpected: Iterable[str] = (),
        mismatched: Iterable[str] = (),
        *,
        model: str = "the model",
    ):
        self.missing = sorted(missing)
        self.unexpected = sorted(unexpected)
        self.mismatched = sorted(mismatched)
        parts = []
        if self.missing:
            parts.append(f"missing keys: {_short_list(self.missing)}")
        if self.unexpected:
            parts.append(f"unexpected keys: {_short_list(self.unexpected)}")
        if self.mismatched:
            parts.append(f"shape mismatches: {_short_list(self.mismatched)}")
        super().__init__(
            f"weights do not fit {model} ({'; '.join(parts)}). Are these weights for another "
            "architecture or variant? To apply only the entries that match, pass "
            "weights_strict=False."
        )


class NoBackendError(HubError, TypeError):
    """No installed backend recognises an object, or no backend has the requested name."""


class BackendError(HubError, RuntimeError):
    """A backend failed while reading or applying weights."""


class NoWeightsError(HubError, LookupError):
    """Pretrained weights were requested from an entrypoint that declares none."""


class VariantNotFoundError(HubError, LookupError):
    """The requested pretrained variant does not exist."""


class PluginError(HubError, RuntimeError):
    """A plugin is broken or registered something invalid."""


def _quoted_list(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _short_list(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


class UsageError(HubError, TypeError):
    """A call that hubcore cannot make sense of as written: arguments that the operation does
    not take (positional arguments for a model package, say)."""
