"""The plugin manager: entry points, broken plugins, autoload switch, blocking, events."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hubcore.events import notify
from hubcore.plugins import get_plugins, load_plugins


def install_fake_distribution(
    root: Path, name: str, entry_points: dict[str, str], modules: dict[str, str]
) -> None:
    """A real (unpacked) distribution on sys.path: dist-info with entry_points.txt + modules."""
    info = root / f"{name.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[hubcore]\n{lines}\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source)


@pytest.fixture
def fake_dists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hub_home) -> Path:
    root = tmp_path / "site"
    install_fake_distribution(
        root,
        "hubcore-broken",
        {"broken": "broken_plugin"},
        {"broken_plugin": "raise ImportError('needs a library that is not installed')\n"},
    )
    install_fake_distribution(
        root,
        "hubcore-extra-source",
        {"extra": "extra_plugin"},
        {
            "extra_plugin": """
import hubcore
from hubcore.sources import RepoRef, Snapshot

class ZooSource:
    name = "zoo"
    forms = ("zoo:NAME",)
    def parse(self, text, options):
        if text.startswith("zoo:"):
            return RepoRef(source="zoo", repo=text[4:], text=text)
        return None
    def open(self, ref, ctx):
        raise NotImplementedError

@hubcore.hookimpl
def hubcore_register_sources(register):
    register(ZooSource())
"""
        },
    )
    monkeypatch.syspath_prepend(str(root))
    for mod in ("broken_plugin", "extra_plugin"):
        monkeypatch.delitem(sys.modules, mod, raising=False)
    return root


def test_broken_plugin_is_reported_and_others_load(fake_dists) -> None:
    plugins = load_plugins()
    broken = plugins.infos["broken"]
    assert broken.error
    assert "needs a library" in broken.error
    assert broken.distribution == "hubcore-broken"
    assert broken.version == "1.2.3"
    assert "zoo" in plugins.sources
    assert "local" in plugins.sources
    assert plugins.infos["extra"].sources == ["zoo"]


def test_autoload_can_be_disabled(fake_dists, monkeypatch) -> None:
    monkeypatch.setenv("HUBCORE_DISABLE_PLUGIN_AUTOLOAD", "1")
    plugins = load_plugins()
    assert "zoo" not in plugins.sources
    assert "broken" not in plugins.infos
    assert "local" in plugins.sources  # built-ins stay


def test_named_plugins_can_be_blocked(fake_dists, monkeypatch) -> None:
    monkeypatch.setenv("HUBCORE_BLOCK_PLUGINS", "broken, extra")
    plugins = load_plugins()
    assert plugins.infos["broken"].blocked
    assert plugins.infos["broken"].error is None
    assert "zoo" not in plugins.sources


def test_builtin_plugins_can_be_blocked(hub_home) -> None:
    plugins = load_plugins(blocked=["local"])
    assert "local" not in plugins.sources


def test_invalid_registration_is_reported(hub_home) -> None:
    import hubcore

    class Bad:
        @hubcore.hookimpl
        def hubcore_register_backends(self, register):
            register(object())

    plugins = load_plugins(autoload=False, extra=[("bad", Bad())])
    assert "does not implement" in (plugins.infos["bad"].error or "")


def test_failing_event_listener_does_not_break_callers(hub_home, caplog) -> None:
    import hubcore

    class Noisy:
        @hubcore.hookimpl
        def hubcore_download_started(self, url, total):
            raise RuntimeError("listener bug")

    heard = []

    class Quiet:
        @hubcore.hookimpl
        def hubcore_download_started(self, url, total):
            heard.append(url)

    manager = get_plugins().manager
    quiet, noisy = Quiet(), Noisy()
    manager.register(quiet)
    manager.register(noisy)  # called first: the most recent registration goes first
    try:
        notify("hubcore_download_started", url="x", total=None)
    finally:
        manager.unregister(noisy)
        manager.unregister(quiet)
    assert "listener of plugin" in caplog.text
    assert heard == ["x"]  # one listener's failure silences no other


def test_misspelled_hook_is_an_error_naming_the_plugin(hub_home) -> None:
    import hubcore
    from hubcore.errors import PluginError

    class Misspelled:
        @hubcore.hookimpl
        def hubcore_register_backend(self, register):  # no such hook: missing "s"
            pass

    with pytest.raises(PluginError, match=r"'typo'.*hubcore_register_backend"):
        load_plugins(autoload=False, extra=[("typo", Misspelled())])

    class Unmarked:
        def hubcore_register_sources(self, register):  # forgot @hookimpl
            pass

    with pytest.raises(PluginError, match="not marked with @hookimpl"):
        load_plugins(autoload=False, extra=[("unmarked", Unmarked())])


def test_misspelled_hook_in_an_installed_plugin_is_reported(fake_dists, tmp_path) -> None:
    install_fake_distribution(
        fake_dists,
        "hubcore-typo",
        {"typo": "typo_plugin"},
        {
            "typo_plugin": "import hubcore\n\n@hubcore.hookimpl\n"
            "def hubcore_entrypoint_load(repo, entrypoint, result, weights):\n    pass\n"
        },
    )
    plugins = load_plugins()
    assert "hubcore_entrypoint_load" in (plugins.infos["typo"].error or "")
    assert not plugins.infos["typo"].ok
    assert "zoo" in plugins.sources  # the others still load


def test_sources_parse_through_registered_plugins(fake_dists) -> None:
    import hubcore
    from hubcore.errors import InvalidReferenceError

    ref = hubcore.sources.parse_reference("zoo:resnet", load_plugins().sources)
    assert ref.source == "zoo"
    assert ref.repo == "resnet"
    with pytest.raises(InvalidReferenceError, match=r"zoo:NAME \(zoo\)"):
        hubcore.sources.parse_reference("??", load_plugins().sources)
