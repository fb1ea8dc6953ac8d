"""Start-up cost: what a command imports, the remembered entry-point scan, lazy exports,
lazy command groups and lazily collected backends. No timings: each test checks the mechanism
(which modules a process imported, which hooks ran), so a regression fails deterministically."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import click
import pluggy
import pytest
from click.testing import CliRunner

import hubcore
from hubcore import cli
from hubcore.plugins import _SCAN_FILE, load_plugins

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_HUB = ROOT / "examples" / "hub"

#: What listing a local folder must never import: the network and storage libraries, the
#: distribution-metadata scan (remembered after the first run), the file-lock library (a
#: listing takes no lock), attrs (hubcore.records says why), and the plugins' backend and
#: framework-API modules.
NOT_FOR_LISTING = (
    "attr",
    "attrs",
    "requests",
    "urllib3",
    "dulwich",
    "fsspec",
    "importlib.metadata",
    "filelock",
    "hubcore_torch.hub",
    "hubcore_torch.backend",
    "hubcore_megengine.hub",
    "hubcore_megengine.backend",
    "hubcore.compat.common",
    "hubcore.store.http",
    "hubcore.policy.trust",
    "hubcore.repo.isolation",
    # loaded on the branch that needs them: a registry reference, a redirect, a lock file
    "hubcore.registry.names",
    "hubcore.repo.redirects",
    "hubcore.policy.lock",
    "tomllib",
    # what only a fetch uses: its thread pool, token encoding
    "concurrent.futures",
    "base64",
)

_RUN_CLI = """
import json, sys
from hubcore.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    assert not exc.code, exc.code
chain_scan = sys.modules["hubcore.repo.discovery"]._marks.cache_info().misses
print(json.dumps(sorted(sys.modules) + (["<chain scan compiled>"] if chain_scan else [])))
"""


def run_cli(home: Path, *args: str) -> tuple[list[str], set[str]]:
    """Run ``hubcore ARGS`` in a fresh interpreter; its output lines and imported modules."""
    env = {**os.environ, "HUBCORE_HOME": str(home)}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *sys.path])
    done = subprocess.run(
        [sys.executable, "-c", _RUN_CLI, *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    *lines, modules = done.stdout.strip().splitlines()
    return lines, set(json.loads(modules))


def test_listing_a_local_folder_imports_only_what_listing_needs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first, _ = run_cli(home, "list", str(EXAMPLE_HUB))  # scans the entry points once
    lines, modules = run_cli(home, "list", str(EXAMPLE_HUB))
    assert lines == first
    assert "tinynet" in lines
    imported = sorted(m for m in NOT_FOR_LISTING if m in modules)
    assert imported == [], f"`hubcore list` of a local folder imported {imported}"
    # the chain scan's patterns are compiled only for a file large enough to need it
    assert "<chain scan compiled>" not in modules


def test_listing_a_repository_without_weights_does_not_import_weight_descriptions(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "hubconf.py").write_text('def net(pretrained=False):\n    """A net."""\n')
    lines, modules = run_cli(tmp_path / "home", "list", str(repo))
    assert lines == ["net"]
    assert "hubcore.repo.weights" not in modules


def test_plugin_modules_register_only_their_marked_functions(hub_home: Path) -> None:
    """Registering a module asks pluggy about its functions only, and finds every hook."""
    asked: list[str] = []
    original = pluggy.PluginManager.parse_hookimpl_opts

    def counting(self: pluggy.PluginManager, plugin: object, name: str) -> object:
        asked.append(name)
        return original(self, plugin, name)

    module = types.ModuleType("module_plugin_for_test")
    module.json = json  # a module, a class and a constant among its attributes
    module.Path = Path
    module.LIMIT = 3

    @hubcore.hookimpl
    def hubcore_register_sources(register: object) -> None:
        pass

    module.hubcore_register_sources = hubcore_register_sources
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pluggy.PluginManager, "parse_hookimpl_opts", counting)
        plugins = load_plugins(autoload=False, extra=[("module-plugin", module)])
    assert "hubcore_register_sources" in asked
    assert not {"json", "Path", "LIMIT", "__name__"} & set(asked)
    assert plugins.infos["module-plugin"].ok
    impls = plugins.manager.hook.hubcore_register_sources.get_hookimpls()
    assert module in [impl.plugin for impl in impls]


_LOAD = """
import json, sys
import hubcore
print(hubcore.load(sys.argv[1], "probe"))
print(json.dumps(sorted(sys.modules)))
"""


def test_a_load_without_a_lock_file_does_not_read_lock_files(tmp_path: Path) -> None:
    env = {**os.environ, "HUBCORE_HOME": str(tmp_path / "home"), "HUBCORE_TRUST": "*"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *sys.path])
    env.pop("HUBCORE_LOCK", None)
    repo = tmp_path / "repo"  # no framework: the test runs in every environment
    repo.mkdir()
    (repo / "hubconf.py").write_text("dependencies = []\n\n\ndef probe():\n    return 1\n")
    done = subprocess.run(
        [sys.executable, "-c", _LOAD, str(repo)],
        env=env,
        cwd=tmp_path,  # no hub.lock here
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    modules = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "hubcore.registry.names" not in modules
    assert "hubcore.policy.lock" not in modules
    assert "tomllib" not in modules
    # a load that makes no request and calls no framework hub function imports neither the
    # HTTP client nor the plugins' hub APIs (their redirects name them, hubcore.repo.redirects)
    for module in NOT_FOR_A_PLAIN_LOAD:
        assert module not in modules, f"a plain load imported {module}"


NOT_FOR_A_PLAIN_LOAD = (
    "requests",
    "hubcore.store.http",
    "hubcore.store.transfer",
    "hubcore.compat.common",
    "hubcore_torch.hub",
    "hubcore_megengine.hub",
)


def test_find_lock_reads_a_lock_only_when_one_applies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hubcore.policy import find_lock, lock_path

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HUBCORE_LOCK", raising=False)
    assert lock_path() is None
    assert find_lock() is None
    (tmp_path / "hub.lock").write_text("")
    assert lock_path() == tmp_path / "hub.lock"
    found = find_lock()
    assert found is not None
    assert found.repos == ()
    assert find_lock(False) is None
    from hubcore.policy import lock

    assert lock.find_lock is find_lock  # the old spelling still works


def test_the_entry_point_scan_is_remembered_and_redone_when_distributions_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hub_home: Path
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    load_plugins()
    scans = json.loads(hub_home.joinpath(*_SCAN_FILE).read_text())
    assert len(scans) == 1
    assert "zoo" not in load_plugins().sources

    # a distribution installed into a path entry: the next load scans again and finds it
    info = site / "hubcore_zoo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hubcore-zoo\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[hubcore]\nzoo = zoo_plugin\n")
    (site / "zoo_plugin.py").write_text(ZOO_PLUGIN)
    monkeypatch.delitem(sys.modules, "zoo_plugin", raising=False)
    plugins = load_plugins()
    assert "zoo" in plugins.sources
    assert plugins.infos["zoo"].distribution == "hubcore-zoo"
    assert len(json.loads(hub_home.joinpath(*_SCAN_FILE).read_text())) == 2

    # removed again: gone at once
    for path in sorted(info.iterdir()):
        path.unlink()
    info.rmdir()
    assert "zoo" not in load_plugins().sources


ZOO_PLUGIN = """
import hubcore
from hubcore.sources import RepoRef

class ZooSource:
    name = "zoo"
    forms = ("zoo:NAME",)
    def parse(self, text, options):
        return RepoRef(source="zoo", repo=text[4:], text=text) if text.startswith("zoo:") else None
    def open(self, ref, ctx):
        raise NotImplementedError

@hubcore.hookimpl
def hubcore_register_sources(register):
    register(ZooSource())
"""


def test_a_remembered_scan_is_used_without_scanning(
    hub_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load_plugins()

    def no_scan() -> None:
        raise AssertionError("the distributions were scanned again")

    monkeypatch.setattr("hubcore.plugins._scan", no_scan)
    again = load_plugins()
    assert sorted(again.infos) == sorted(first.infos)


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"k": [["x"]]}',
        '{"k": [["x", "no such syntax!", null, null]]}',
        '{"k": [[1, "mod", null, null]]}',
    ],
)
def test_a_damaged_scan_file_is_ignored_and_rewritten(hub_home: Path, content: str) -> None:
    expected = sorted(load_plugins().infos)
    path = hub_home.joinpath(*_SCAN_FILE)
    path.write_text(content)
    assert sorted(load_plugins().infos) == expected
    assert json.loads(path.read_text())  # rewritten, well formed


def test_a_home_that_cannot_be_written_still_loads_plugins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hub_home: Path
) -> None:
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    monkeypatch.setenv("HUBCORE_HOME", str(blocked))  # its plugins/ folder cannot be made
    assert "local" in load_plugins().sources


def test_a_remembered_scan_still_honours_blocking(
    hub_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "numpy-example" in load_plugins().infos  # scanned and remembered
    monkeypatch.setenv("HUBCORE_BLOCK_PLUGINS", "numpy-example")
    plugins = load_plugins()
    assert plugins.infos["numpy-example"].blocked
    assert "numpy-example" not in plugins.backends


def test_backends_and_redirects_are_collected_on_first_use(hub_home: Path) -> None:
    calls: list[str] = []

    class Counting:
        @hubcore.hookimpl
        def hubcore_register_backends(self, register: object) -> None:
            calls.append("backends")

        @hubcore.hookimpl
        def hubcore_register_redirects(self, register: object) -> None:
            calls.append("redirects")

    plugins = load_plugins(autoload=False, extra=[("counting", Counting())])
    assert "local" in plugins.sources
    assert calls == []
    assert plugins.backends == {}
    assert calls == ["backends"]
    assert plugins.redirects == []
    assert plugins.infos["counting"].ok
    assert calls == ["backends", "redirects"]  # each collected once


def test_every_export_is_listed_and_resolves() -> None:
    assert sorted(hubcore.__all__) == sorted([*hubcore._EXPORTS, *hubcore._ALIASES, "__version__"])
    for name in hubcore.__all__:
        assert getattr(hubcore, name) is not None, name
    assert hubcore.download is hubcore.download_file
    assert set(hubcore.__all__) <= set(dir(hubcore))
    namespace: dict[str, object] = {}
    exec("from hubcore import *", namespace)
    assert namespace["load"] is hubcore.api.load


def test_a_missing_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = hubcore.no_such_thing
    with pytest.raises(AttributeError):
        _ = hubcore._private


def test_a_lazy_command_is_listed_and_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lazy_commands_for_test.py").write_text(
        textwrap.dedent(
            '''
            import click

            @click.group("zoo")
            def zoo_group():
                """Animals, loaded late."""

            @zoo_group.command("count")
            def count():
                click.echo("3 animals")

            not_a_command = 42
            '''
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli._LAZY_COMMANDS, "zoo", "lazy_commands_for_test:zoo_group")
    runner = CliRunner()
    shown = runner.invoke(cli.main, ["--help"])
    assert shown.exit_code == 0
    assert "zoo" in shown.output
    assert "Animals, loaded late." in shown.output
    ran = runner.invoke(cli.main, ["zoo", "count"])
    assert ran.exit_code == 0, ran.output
    assert ran.output == "3 animals\n"

    monkeypatch.setitem(cli._LAZY_COMMANDS, "broken", "lazy_commands_for_test:not_a_command")
    with pytest.raises(TypeError, match="not a click command"):
        cli.main.get_command(click.Context(cli.main), "broken")


_CHECK_BARE = """
import json, sys
from hubcore.repo.dependencies import check_dependencies
check_dependencies(["json"], "repo")  # a bare name, as hubconfs write "torch"
print(json.dumps(sorted(sys.modules)))
"""


def test_a_bare_dependency_that_imports_is_met_without_reading_metadata() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", _CHECK_BARE],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    modules = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "packaging.requirements" not in modules
    assert "importlib.metadata" not in modules


def test_settings_with_overrides_are_built_once_until_they_change(
    hub_home: Path, tmp_path: Path
) -> None:
    from hubcore import config, settings

    config.set_dir(tmp_path / "a")
    try:
        first = settings.current()
        assert settings.current() is first  # a load reads them many times
        config.set_dir(tmp_path / "b")
        assert settings.current().home == tmp_path / "b"
        with settings.overridden(offline=True):
            assert settings.current().offline
        assert not settings.current().offline
    finally:
        config.set_dir(None)


def test_a_warm_import_of_a_hubconf_does_not_reenter_isolation(
    hub_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hubcore.repo.isolation import RepoImporter

    snapshot = hubcore.open_repo(str(EXAMPLE_HUB))
    importer = RepoImporter(snapshot.root, "warm-test")
    first = importer.import_hubconf()
    entered: list[bool] = []
    original = RepoImporter.active

    def counting(self: RepoImporter) -> object:
        entered.append(True)
        return original(self)

    monkeypatch.setattr(RepoImporter, "active", counting)
    assert importer.import_hubconf() is first
    assert entered == []
    importer.forget()
