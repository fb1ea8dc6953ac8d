"""Requirements in ``dependencies`` may carry environment markers (PEP 508)."""

from __future__ import annotations

import pytest

import hubcore
from hubcore.errors import DependencyError
from hubcore.repo.dependencies import check_dependencies


def test_requirements_whose_marker_is_false_are_skipped() -> None:
    check_dependencies(
        ["Pillow; python_version<'2'", "surely-not-installed-xyz; os_name=='no'"], "r"
    )


def test_requirements_whose_marker_is_true_are_checked() -> None:
    with pytest.raises(DependencyError, match="surely-not-installed-xyz"):
        check_dependencies(["surely-not-installed-xyz; python_version>='3'"], "r")
    with pytest.raises(DependencyError, match=r"packaging>=999 \(installed"):
        check_dependencies(["packaging>=999; python_version>='3'"], "r")


def test_a_requirement_with_a_bad_marker_is_invalid() -> None:
    with pytest.raises(DependencyError, match="not a valid requirement"):
        check_dependencies(["packaging; python_version<<'3'"], "r")


def test_discovery_keeps_markers_and_load_skips_them(make_hub_repo, hub_home) -> None:
    repo = make_hub_repo(
        {
            "hubconf.py": """
            dependencies = ["surely-not-installed-xyz; python_version<'3'"]

            def f():
                '''F.'''
                return 42
            """
        }
    )
    info = hubcore.discover(str(repo))
    assert info.dependencies == ("surely-not-installed-xyz; python_version<'3'",)
    assert hubcore.load(str(repo), "f") == 42


def test_a_marker_that_cannot_be_evaluated_is_reported() -> None:
    with pytest.raises(DependencyError, match="marker cannot be evaluated"):
        check_dependencies(["packaging; python_version ~= 'foo'"], "r")
