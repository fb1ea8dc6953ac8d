"""The errors of model packages, each a :class:`~hubcore.errors.HubError` subclass."""

from __future__ import annotations

from hubcore.errors import ConfigError, HubError, IntegrityError

__all__ = [
    "ConfigValueError",
    "IncompletePackageError",
    "PackageError",
    "PackageIntegrityError",
    "UnknownModelTypeError",
]


class PackageError(HubError, ValueError):
    """A folder is not a usable model package (what is wrong is in the message)."""


class IncompletePackageError(PackageError):
    """A package has no manifest yet (a push that has not finished, or was interrupted)."""


class ConfigValueError(ConfigError):
    """A model configuration has a bad value or an unknown key; the message names the field."""


class UnknownModelTypeError(PackageError, LookupError):
    """A package names a ``model_type`` nobody registered and carries no class to build it."""


class PackageIntegrityError(IntegrityError):
    """A package file does not match its manifest (missing, truncated, replaced or extra)."""

    def __init__(self, file: str, package: str, problem: str):
        HubError.__init__(
            self,
            f"{file} of the package {package} {problem}. The package is damaged, was "
            "tampered with, or is being pushed right now; nothing from it was used or cached. "
            "Push it again, or load another revision.",
        )
        self.url = file
        self.expected = ""
        self.actual = problem
