"""Reference parsing and the local source."""

from __future__ import annotations

from pathlib import Path

import pytest

import hubcore
from hubcore.errors import InvalidReferenceError, RepoNotFoundError, UnknownSourceError
from hubcore.plugins import get_plugins
from hubcore.sources import parse_reference


def parse(text: str, **kw):
    return parse_reference(text, get_plugins().sources, **kw)


@pytest.mark.parametrize("form", ["{p}", "local:{p}", "file://{p}"])
def test_local_forms(hub_home, tmp_path: Path, form: str) -> None:
    ref = parse(form.format(p=tmp_path))
    assert ref.source == "local"
    assert ref.repo == str(tmp_path)


def test_relative_and_home_paths(hub_home, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hub").mkdir()
    assert parse("./hub").repo == str(tmp_path / "hub")
    assert parse("hub").repo == str(tmp_path / "hub")  # an existing folder
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse("~/hub").repo == str(tmp_path / "hub")


def test_forced_source(hub_home) -> None:
    assert parse("owner/repo", source="local").source == "local"
    with pytest.raises(UnknownSourceError, match="no source named 'nope'"):
        parse("x", source="nope")


@pytest.mark.parametrize(
    "bad", ["", "   ", "no such thing!", "file://otherhost/x", "github:onlyowner", "gitlab:x"]
)
def test_malformed_references(hub_home, bad: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        parse(bad)
    message = str(info.value)
    if bad.startswith(("github:", "gitlab:")):
        assert "expected" in message  # the forms of the named source
    elif bad.strip() and "://" not in bad:
        assert "Accepted forms" in message


def test_file_is_not_a_repo(hub_home, tmp_path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(RepoNotFoundError, match="is a file"):
        hubcore.list(str(tmp_path / "f"))


def test_home_precedence(tmp_path, monkeypatch) -> None:
    from hubcore import config

    monkeypatch.delenv("HUBCORE_HOME", raising=False)
    assert "hubcore" in str(config.get_dir())
    monkeypatch.setenv("HUBCORE_HOME", str(tmp_path / "env"))
    assert config.get_dir() == tmp_path / "env"
    hubcore.set_dir(tmp_path / "api")
    try:
        assert hubcore.get_dir() == tmp_path / "api"
    finally:
        hubcore.set_dir(None)
    assert config.get_dir() == tmp_path / "env"
