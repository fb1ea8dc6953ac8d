"""Redirects: a module's function reaches a plugin's replacement only from repository code."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

import hubcore
from hubcore import hookimpl, plugins
from hubcore.cli import main
from hubcore.repo.redirects import Redirect, in_repository_code

FAKEHUB = '''
def fetch(url):
    """The framework's own download function."""
    return ("framework", url)
'''


class FakeFramework:
    """A plugin redirecting ``fakehub.fetch``, as hubcore-torch does for torch.hub."""

    calls: list[str]

    def __init__(self) -> None:
        self.calls = []

    @hookimpl
    def hubcore_register_redirects(self, register):
        def fetch(url):
            assert in_repository_code()
            self.calls.append(url)
            return ("hubcore", url)

        register(Redirect("fakehub", "fetch", fetch))
        register(Redirect("fakehub", "missing_in_this_version", fetch))


@pytest.fixture
def fake(hub_home, tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    (site / "fakehub.py").write_text(FAKEHUB)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "fakehub", raising=False)
    framework = FakeFramework()
    loaded = plugins.load_plugins(extra=[("fake-framework", framework)])
    monkeypatch.setattr(plugins, "_plugins", loaded)
    yield framework
    sys.modules.pop("fakehub", None)


HUBCONF_BINDS_AT_IMPORT = """
from fakehub import fetch

def weights(url="w.bin"):
    return fetch(url)

def bound():
    return fetch
"""

HUBCONF_LOOKS_UP_AT_CALL = """
def weights(url="w.bin"):
    import fakehub
    return fakehub.fetch(url)
"""


def test_module_imported_by_the_hubconf_is_patched_on_import(fake, make_hub_repo) -> None:
    assert "fakehub" not in sys.modules
    repo = make_hub_repo({"hubconf.py": HUBCONF_BINDS_AT_IMPORT})
    assert hubcore.load(str(repo), "weights", url="a") == ("hubcore", "a")
    assert fake.calls == ["a"]
    import fakehub

    assert fakehub.fetch("b") == ("framework", "b")  # restored
    assert not hasattr(fakehub.fetch, "__hubcore_original__")
    # The name the hubconf bound at import time stays harmless outside hubcore's runs.
    bound = hubcore.load(str(repo), "bound")
    assert bound("c") == ("framework", "c")
    assert fake.calls == ["a"]
    assert all("PatchOnImport" not in type(f).__name__ for f in sys.meta_path)


def test_module_imported_before_is_patched_for_the_run(fake, make_hub_repo) -> None:
    import fakehub

    original = fakehub.fetch
    repo = make_hub_repo({"hubconf.py": HUBCONF_LOOKS_UP_AT_CALL})
    assert hubcore.load(str(repo), "weights", url="x") == ("hubcore", "x")
    assert fakehub.fetch is original
    assert fakehub.fetch("y") == ("framework", "y")


def test_originals_restored_when_the_entrypoint_fails(fake, make_hub_repo) -> None:
    import fakehub

    original = fakehub.fetch
    hubconf = "import fakehub\n\ndef boom():\n    fakehub.fetch('z')\n    raise KeyError(1)\n"
    repo = make_hub_repo({"hubconf.py": hubconf})
    with pytest.raises(hubcore.HubError, match="KeyError"):
        hubcore.load(str(repo), "boom")
    assert fakehub.fetch is original
    assert fake.calls == ["z"]


def test_other_threads_keep_the_original_during_a_run(fake, make_hub_repo) -> None:
    import fakehub

    inside = threading.Event()
    release = threading.Event()
    seen = {}

    def other_thread() -> None:
        inside.wait(10)
        seen["other"] = fakehub.fetch("from another thread")  # patched, but not repo code
        release.set()

    repo = make_hub_repo(
        {
            "hubconf.py": """
            import fakehub

            def slow(inside, release):
                inside.set()
                release.wait(10)
                return fakehub.fetch("from the entrypoint")
            """
        }
    )
    worker = threading.Thread(target=other_thread)
    worker.start()
    assert hubcore.load(str(repo), "slow", inside, release) == ("hubcore", "from the entrypoint")
    worker.join(10)
    assert seen["other"] == ("framework", "from another thread")


def test_nested_loads_restore_once_outermost_finishes(fake, make_hub_repo) -> None:
    import fakehub

    original = fakehub.fetch
    inner = make_hub_repo({"hubconf.py": HUBCONF_LOOKS_UP_AT_CALL}, name="inner")
    outer = make_hub_repo(
        {
            "hubconf.py": f"""
            import hubcore, fakehub

            def both():
                first = hubcore.load({str(inner)!r}, "weights", url="inner")
                return first, fakehub.fetch("outer")
            """
        },
        name="outer",
    )
    assert hubcore.load(str(outer), "both") == (("hubcore", "inner"), ("hubcore", "outer"))
    assert fakehub.fetch is original


def test_plugins_command_lists_redirects(fake, tmp_path: Path) -> None:
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["plugins"])
    assert result.exit_code == 0
    assert "redirects: fakehub.fetch, fakehub.missing_in_this_version" in result.output


def test_invalid_redirect_registration_is_reported(hub_home) -> None:
    class Broken:
        @hookimpl
        def hubcore_register_redirects(self, register):
            register(("torch.hub", "load_state_dict_from_url"))

    loaded = plugins.load_plugins(extra=[("broken", Broken())])
    assert "not a hubcore.repo.redirects.Redirect" in (loaded.infos["broken"].error or "")
    assert all(isinstance(r, Redirect) for r in loaded.redirects)


NAMED_REPLACEMENT = """
CALLS = []

def fetch(url):
    CALLS.append(url)
    return ("named", url)
"""


def redirect_by_name(tmp_path, monkeypatch, target: str, modules: dict[str, str]):
    """Plugins where ``fakehub.fetch`` is redirected to *target* (``"module:function"``, not
    imported), with *modules* (name: source) importable beside ``fakehub``."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "fakehub.py").write_text(FAKEHUB)
    for name, source in modules.items():
        (site / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(site))
    for module in ("fakehub", *modules):
        monkeypatch.delitem(sys.modules, module, raising=False)

    class Named:
        @hookimpl
        def hubcore_register_redirects(self, register):
            register(Redirect("fakehub", "fetch", target))

    loaded = plugins.load_plugins(extra=[("named", Named())])
    monkeypatch.setattr(plugins, "_plugins", loaded)
    return loaded


@pytest.fixture
def named(hub_home, tmp_path, monkeypatch):
    """fakehub.fetch redirected to ``fakehub_replacement:fetch``, named, not imported."""
    modules = {"fakehub_replacement": NAMED_REPLACEMENT}
    yield redirect_by_name(tmp_path, monkeypatch, "fakehub_replacement:fetch", modules)
    for module in ("fakehub", "fakehub_replacement"):
        sys.modules.pop(module, None)


def test_a_named_replacement_is_imported_by_its_first_call(named, make_hub_repo) -> None:
    quiet = make_hub_repo({"hubconf.py": "import fakehub\n\ndef net():\n    return 1\n"})
    assert hubcore.load(str(quiet), "net") == 1
    assert named.infos["named"].ok
    assert "fakehub_replacement" not in sys.modules  # patched in, never called: not imported
    repo = make_hub_repo({"hubconf.py": HUBCONF_LOOKS_UP_AT_CALL}, name="calls")
    assert hubcore.load(str(repo), "weights", url="a") == ("named", "a")
    import fakehub
    import fakehub_replacement

    assert fakehub_replacement.CALLS == ["a"]
    assert fakehub.fetch("b") == ("framework", "b")  # outside repository code: the original


@pytest.mark.parametrize(
    "replacement",
    ["no_such_module_anywhere:fetch", "fakehub", "fakehub:", ":fetch", "fake hub:fetch", 42],
)
def test_a_replacement_that_names_nothing_is_refused_at_registration(
    hub_home, tmp_path, monkeypatch, replacement
) -> None:
    (tmp_path / "fakehub.py").write_text(FAKEHUB)
    monkeypatch.syspath_prepend(str(tmp_path))

    class Misspelled:
        @hookimpl
        def hubcore_register_redirects(self, register):
            register(Redirect("fakehub", "fetch", replacement))

    loaded = plugins.load_plugins(extra=[("misspelled", Misspelled())])
    error = loaded.infos["misspelled"].error or ""
    assert "the redirect of fakehub.fetch names" in error
    assert "package.module:function" in error
    assert not [r for r in loaded.redirects if r.module == "fakehub"]


def test_a_named_replacement_gone_after_registration_is_a_plugin_error(
    named, make_hub_repo, tmp_path
) -> None:
    (tmp_path / "site" / "fakehub_replacement.py").write_text("def other():\n    pass\n")
    repo = make_hub_repo({"hubconf.py": HUBCONF_LOOKS_UP_AT_CALL})
    with pytest.raises(hubcore.errors.PluginError, match="fakehub_replacement:fetch"):
        hubcore.load(str(repo), "weights", url="a")


def test_a_broken_replacement_module_is_the_plugins_error_and_runs_once(
    hub_home, tmp_path, monkeypatch, make_hub_repo
) -> None:
    broken = (
        "import builtins\nbuiltins.BROKEN_RUNS = getattr(builtins, 'BROKEN_RUNS', 0) + 1\n"
        "raise RuntimeError('the plugin module is broken')\n"
    )
    redirect_by_name(
        tmp_path, monkeypatch, "broken_replacement:fetch", {"broken_replacement": broken}
    )
    repo = make_hub_repo({"hubconf.py": HUBCONF_LOOKS_UP_AT_CALL})
    import builtins

    for _ in range(2):
        with pytest.raises(hubcore.errors.PluginError, match="RuntimeError: the plugin module"):
            hubcore.load(str(repo), "weights", url="a")
    assert builtins.BROKEN_RUNS == 1
    del builtins.BROKEN_RUNS
    sys.modules.pop("fakehub", None)


def test_checking_a_named_replacement_imports_nothing(hub_home, tmp_path, monkeypatch) -> None:
    package = tmp_path / "heavy_framework_for_test"
    package.mkdir()
    (package / "__init__.py").write_text("raise RuntimeError('imported at registration')\n")
    (package / "hub.py").write_text("def fetch(url):\n    return url\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    Redirect("fakehub", "fetch", "heavy_framework_for_test.hub:fetch").check()
    assert "heavy_framework_for_test" not in sys.modules


def test_another_plugin_set_gets_its_own_replacement(
    hub_home, tmp_path, monkeypatch, make_hub_repo
):
    """After the plugins are loaded again with another replacement for the same function, a
    run uses the new one, not the first one's (nor its remembered failure)."""
    repo = make_hub_repo({"hubconf.py": HUBCONF_LOOKS_UP_AT_CALL})
    first = {"first_replacement": "raise RuntimeError('broken first')\n"}
    redirect_by_name(tmp_path, monkeypatch, "first_replacement:fetch", first)
    with pytest.raises(hubcore.errors.PluginError, match="broken first"):
        hubcore.load(str(repo), "weights", url="a")
    second = {"second_replacement": "def fetch(url):\n    return ('second', url)\n"}
    redirect_by_name(tmp_path, monkeypatch, "second_replacement:fetch", second)
    assert hubcore.load(str(repo), "weights", url="b") == ("second", "b")
    sys.modules.pop("fakehub", None)
