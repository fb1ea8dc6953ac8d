"""The configuration files have one owner: the user's ``config.toml`` and the project's
``hubcore.toml`` are read by :mod:`hubcore.settings` only, with one error shape, and what they
say belongs to the settings snapshot (an edited file is seen by the next one)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hubcore import config, settings
from hubcore.errors import ConfigError
from hubcore.policy.lock import read_repo_list
from hubcore.registry import notify
from hubcore.site.config import load_site_config

#: Broken on line 3: a table header that is never closed.
BROKEN = '# a project file\nrepos = ["acme/models:main"]\n[site\ntitle = "x"\n'


def _write(path: Path, text: str) -> None:
    """Write *text* and move the modification time on (an edit within one clock tick)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 10_000_000, before + 10_000_000))


def test_an_edited_config_file_is_seen_by_the_next_snapshot(hub_home: Path) -> None:
    path = hub_home / "config.toml"
    _write(path, '[mirrors]\n"https://a.example/" = "https://m1.example/"\n')
    assert config.mirrors() == {"https://a.example/": "https://m1.example/"}
    assert config.rewrite_url("https://a.example/x") == "https://m1.example/x"
    # the same size, only the contents differ: a cache keyed by path alone misses this
    _write(path, '[mirrors]\n"https://a.example/" = "https://m2.example/"\n')
    assert config.mirrors() == {"https://a.example/": "https://m2.example/"}
    assert config.rewrite_url("https://a.example/x") == "https://m2.example/x"
    path.unlink()
    assert config.mirrors() == {}


def test_an_edited_config_file_changes_the_webhooks(hub_home: Path, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HUBCORE_REGISTRY_WEBHOOK", raising=False)
    path = hub_home / "config.toml"
    _write(path, '[registry.webhooks.one]\nurl = "https://hooks.example/a"\n')
    assert [h.name for h in notify.webhooks()] == ["one"]
    _write(path, '[registry.webhooks.two]\nurl = "https://hooks.example/b"\n')
    assert [h.name for h in notify.webhooks()] == ["two"]


def test_mirrors_are_parsed_once_per_snapshot(hub_home: Path, monkeypatch) -> None:
    """Every download asks for the mirrors; they are parsed when the settings change, not
    on every request."""
    calls: list[str] = []
    real = config.urlsplit

    def counting(url: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(url)
        return real(url, *args, **kwargs)

    monkeypatch.setattr(config, "urlsplit", counting)
    monkeypatch.setenv("HUBCORE_MIRRORS", "https://a.example/=https://m.example/")
    _write(hub_home / "config.toml", '[mirrors]\n"https://b.example/" = "https://n.example/"\n')
    snapshot = settings.current()
    table = snapshot.mirror_table()
    assert dict(table) == {
        "https://b.example/": "https://n.example/",
        "https://a.example/": "https://m.example/",
    }
    parsed = len(calls)
    assert parsed > 0
    for _ in range(5):
        assert config.rewrite_url("https://a.example/w.pth") == "https://m.example/w.pth"
        assert settings.current().mirror_table() is table
    assert len(calls) == parsed
    with pytest.raises(TypeError):
        table["https://c.example/"] = "x"  # type: ignore[index]  # shared: read-only
    # a new snapshot (the environment changed) parses again, once
    monkeypatch.setenv("HUBCORE_MIRRORS", "https://a.example/=https://o.example/")
    assert config.rewrite_url("https://a.example/w.pth") == "https://o.example/w.pth"
    again = len(calls)
    assert again > parsed
    config.rewrite_url("https://a.example/w.pth")
    assert len(calls) == again


def test_the_snapshot_and_the_config_module_agree(hub_home: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.toml"
    _write(other, '[mirrors]\n"https://a.example/" = "https://x.example/"\n')
    with settings.overridden(config_file=other):
        snapshot = settings.current()
        assert snapshot.config_path() == other == config.config_path()
        assert dict(snapshot.mirror_table()) == config.mirrors()
        assert snapshot.user_config().data == config.load_config()
    assert settings.current().config_path() == hub_home / "config.toml"


def _errors(project: Path) -> list[str]:
    """The error each reader of the project file gives for *project*."""
    found = []
    for read in (
        notify.webhooks,
        load_site_config,
        lambda: load_site_config(Path("hubcore.toml")),
        lambda: load_site_config(project),
        lambda: read_repo_list(Path("hubcore.toml")),
        lambda: read_repo_list(project),
    ):
        with pytest.raises(ConfigError) as caught:
            read()
        found.append(str(caught.value))
    return found


def test_a_broken_project_file_is_one_error_everywhere(hub_home: Path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    project = tmp_path / "hubcore.toml"
    project.write_text(BROKEN, encoding="utf-8")
    messages = _errors(project)
    assert len(set(messages)) == 1, messages
    message = messages[0]
    assert str(project) in message  # the whole path, wherever the command runs
    assert "line 3" in message
    assert "fix" in message.lower()


def test_a_project_file_that_is_not_text_is_a_config_error(hub_home, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    project = tmp_path / "hubcore.toml"
    project.write_bytes(b'[site]\ntitle = "\xff\xfe"\n')
    messages = _errors(project)
    assert len(set(messages)) == 1, messages
    assert str(project) in messages[0]
    assert "UTF-8" in messages[0]


def test_the_config_file_has_the_same_error_shape(hub_home: Path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    user = hub_home / "config.toml"
    user.write_text(BROKEN, encoding="utf-8")
    with pytest.raises(ConfigError) as from_user:
        config.mirrors()
    (tmp_path / "hubcore.toml").write_text(BROKEN, encoding="utf-8")
    with pytest.raises(ConfigError) as from_project:
        read_repo_list(tmp_path / "hubcore.toml")
    shown = str(from_user.value).replace(str(user), "FILE")
    assert shown == str(from_project.value).replace(str(tmp_path / "hubcore.toml"), "FILE")


def test_a_fixed_project_file_is_read_again(hub_home: Path, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    project = tmp_path / "hubcore.toml"
    _write(project, '[site]\ntitle = "One"\n')
    assert load_site_config().title == "One"
    _write(project, BROKEN)
    with pytest.raises(ConfigError, match="line 3"):
        load_site_config()
    _write(project, '[site]\ntitle = "Two"\n')
    assert load_site_config().title == "Two"


def test_a_missing_named_project_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_site_config(tmp_path / "nowhere.toml")
    with pytest.raises(ConfigError, match="does not exist"):
        read_repo_list(tmp_path / "nowhere.toml")


def test_only_the_settings_module_parses_toml() -> None:
    """One reader: no other module of the core opens a TOML document."""
    core = Path(settings.__file__).parent
    readers = sorted(
        str(p.relative_to(core))
        for p in core.rglob("*.py")
        if "tomllib.load" in p.read_text(encoding="utf-8")
    )
    assert readers == ["settings.py"], readers


def test_a_broken_lock_file_is_the_same_error(tmp_path) -> None:
    from hubcore.policy.lock import LockFile

    lock = tmp_path / "hub.lock"
    lock.write_text('[[repo]]\nref = "acme/models"\nsnapshot = \n')
    with pytest.raises(ConfigError, match=rf"{lock} is not valid TOML at line 3.*fix that line"):
        LockFile.read(lock)
