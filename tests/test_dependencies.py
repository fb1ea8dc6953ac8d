"""Checking a hubconf's ``dependencies`` before anything is imported."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hubcore.errors import DependencyError
from hubcore.repo.dependencies import check_dependencies


@pytest.fixture
def fake_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An installed distribution whose name differs from its module's name."""
    site = tmp_path / "site"
    info = site / "Hubcore_Fake_Dist-2.5.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: Hubcore-Fake-Dist\nVersion: 2.5.0\n"
    )
    (info / "top_level.txt").write_text("zz_fake_module\n")
    (site / "zz_fake_module.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "zz_fake_module", raising=False)
    return "Hubcore-Fake-Dist"


def test_distribution_name_differing_from_module_name(fake_dist) -> None:
    check_dependencies([f"{fake_dist}>=2"], "repo")  # met by the distribution's name
    check_dependencies(["zz_fake_module>=2"], "repo")  # and by its module's name
    with pytest.raises(DependencyError, match=r"Hubcore-Fake-Dist>=3 \(installed: 2.5.0\)"):
        check_dependencies([f"{fake_dist}>=3"], "repo")
    with pytest.raises(DependencyError, match="zz-not-installed"):
        check_dependencies(["zz-not-installed"], "repo")


def test_environment_markers_are_honoured() -> None:
    check_dependencies(["zz-not-installed; python_version < '2'"], "repo")
    check_dependencies(["zz-not-installed; sys_platform == 'no-such-platform'"], "repo")
    with pytest.raises(DependencyError, match="zz-not-installed"):
        check_dependencies(["zz-not-installed; python_version >= '3'"], "repo")
