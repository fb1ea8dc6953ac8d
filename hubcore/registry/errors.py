"""The registry's errors: each a :class:`~hubcore.errors.HubError` and the builtin it resembles."""

from __future__ import annotations

from hubcore.errors import HubError

__all__ = [
    "AliasInUseError",
    "ArtifactNotFoundError",
    "ConflictError",
    "DeletedConcurrentlyError",
    "InvalidNameError",
    "RegistryError",
    "UnsupportedStorageError",
    "VersionNotFoundError",
]


class RegistryError(HubError):
    """Base class of the registry's errors."""


class InvalidNameError(RegistryError, ValueError):
    """An artifact name, alias, version or file path is not valid."""


class ArtifactNotFoundError(RegistryError, LookupError):
    """No artifact of that name exists in the registry."""


class VersionNotFoundError(RegistryError, LookupError):
    """The artifact exists, but not the version, alias or digest asked for."""


class AliasInUseError(RegistryError, PermissionError):
    """A version cannot be deleted while aliases point at it (pass ``force``)."""


class ConflictError(RegistryError, RuntimeError):
    """A conditional write kept losing to other writers (retry later)."""


class DeletedConcurrentlyError(ConflictError):
    """Another writer kept deleting the version a log (or link) made or found before it could
    be returned (log again once the deletions stop)."""


class UnsupportedStorageError(RegistryError, OSError):
    """The storage offers no create-only write or compare-and-swap the registry can use."""
