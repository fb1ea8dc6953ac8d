"""The ``dependencies`` list of a hubconf, checked against what is installed before its code runs.

A requirement is met by an importable module of its name or by an installed distribution of
its name (``Pillow`` provides ``PIL``), at an allowed version when one is given; environment
markers are honoured as pip honours them.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence

from hubcore.errors import DependencyError

__all__ = ["check_dependencies"]

#: A requirement that is only a project name (PEP 508): no version, extras or marker.
_BARE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


def check_dependencies(dependencies: Sequence[str], repo: str) -> None:
    """Raise :class:`~hubcore.errors.DependencyError` naming every unmet requirement.

    Each entry is a requirement (``"torch>=2"``, ``"Pillow"``). It is met when a module of
    that name can be imported or a distribution of that name is installed (so ``Pillow``
    counts although its module is ``PIL``), at an allowed version when one is given. A
    requirement whose environment marker does not hold here (``"x; python_version<'3'"``)
    is skipped, as pip skips it.
    """
    problems = []
    for text in dependencies:
        if _BARE_NAME.fullmatch(text.strip()) and _importable(text.strip()):
            continue  # met (the usual "torch"): no parsing, no distribution metadata read
        from packaging.requirements import InvalidRequirement, Requirement

        try:
            req = Requirement(text)
        except InvalidRequirement:
            problems.append(f"{text!r} (not a valid requirement)")
            continue
        try:
            needed = req.marker is None or req.marker.evaluate({"extra": ""})
        except ValueError:  # packaging's UndefinedComparison / UndefinedEnvironmentName
            problems.append(f"{text!r} (its environment marker cannot be evaluated)")
            continue
        if not needed:
            continue  # for another Python or platform, as pip would skip it
        version = _installed_version(req.name)
        importable = _importable(req.name)
        if version is None and not importable:
            problems.append(req.name)
        elif (
            req.specifier
            and version is not None
            and not req.specifier.contains(version, prereleases=True)
        ):
            problems.append(f"{req.name}{req.specifier} (installed: {version})")
    if problems:
        raise DependencyError(repo, problems)


def _installed_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        pass
    for dist in metadata.packages_distributions().get(name, []):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def _importable(name: str) -> bool:
    if not name.isidentifier():
        return False
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
