"""Loading: dependency checks, isolation between repositories, errors from repository code."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import hubcore
from hubcore.errors import DependencyError, EntrypointError, EntrypointNotFoundError

CLASHING = {
    "hubconf.py": """
        import utils
        from models import net

        dependencies = []

        def which():
            '''Return which repository's modules this hubconf sees.'''
            return utils.NAME, net(), which_later()

        def which_later():
            import utils as late  # imported while the entrypoint runs
            from models.sub import deep
            return late.NAME, deep()
    """,
    "utils.py": "NAME = {name!r}\n",
    "models/__init__.py": "def net():\n    from utils import NAME\n    return 'net-' + NAME\n",
    "models/sub.py": "from ..utils import NAME as _n\n\ndef deep():\n    return 'deep-' + _n\n",
}


def clashing_repo(make_hub_repo, name: str) -> Path:
    files = {k: v.replace("{name!r}", repr(name)) for k, v in CLASHING.items()}
    return make_hub_repo(files, name=name)


def test_two_repos_with_same_module_names(hub_home, make_hub_repo) -> None:
    first = clashing_repo(make_hub_repo, "first")
    second = clashing_repo(make_hub_repo, "second")
    assert hubcore.load(str(first), "which") == ("first", "net-first", ("first", "deep-first"))
    assert hubcore.load(str(second), "which") == (
        "second",
        "net-second",
        ("second", "deep-second"),
    )
    assert hubcore.load(str(first), "which")[0] == "first"


def test_users_modules_and_path_are_untouched(hub_home, make_hub_repo, monkeypatch) -> None:
    users_utils = type(sys)("utils")
    users_utils.NAME = "user"
    monkeypatch.setitem(sys.modules, "utils", users_utils)
    repo = clashing_repo(make_hub_repo, "repo")
    path_before = list(sys.path)
    modules_before = set(sys.modules)
    assert hubcore.load(str(repo), "which")[0] == "repo"
    assert sys.path == path_before
    added = set(sys.modules) - modules_before
    assert all(name.startswith("_hubcore_repo_") for name in added), added
    assert sys.modules["utils"] is users_utils


def test_sys_path_manipulating_hubconf_is_contained(hub_home, make_hub_repo) -> None:
    repo = make_hub_repo(
        {
            "hubconf.py": """
                import os, sys
                sys.path.insert(0, os.path.join(os.path.dirname(__file__), "src"))
                from srcmod import value

                def get():
                    import srcmod
                    return srcmod.value()
            """,
            "src/srcmod.py": "def value():\n    return 42\n",
        }
    )
    path_before = list(sys.path)
    assert hubcore.load(str(repo), "get") == 42
    assert hubcore.load(str(repo), "value") == 42
    assert sys.path == path_before
    assert "srcmod" not in sys.modules


def test_packages_of_a_virtual_environment_inside_the_project_stay_imported(
    hub_home, make_hub_repo, monkeypatch
) -> None:
    """A project loading itself with its own ``.venv`` inside the folder (uv's default): what
    the repository imports from the user's site-packages is the user's, not a stray module."""
    repo = make_hub_repo(
        {
            "hubconf.py": """
                import venvpkg_for_test

                def get():
                    import venvpkg_for_test as again
                    return venvpkg_for_test.VALUE, again is venvpkg_for_test
            """,
            ".venv/lib/site-packages/venvpkg_for_test.py": "VALUE = 7\n",
        }
    )
    monkeypatch.syspath_prepend(str(repo / ".venv" / "lib" / "site-packages"))
    monkeypatch.delitem(sys.modules, "venvpkg_for_test", raising=False)
    assert hubcore.load(str(repo), "get") == (7, True)
    installed = sys.modules["venvpkg_for_test"]
    assert hubcore.load(str(repo), "get") == (7, True)
    assert sys.modules["venvpkg_for_test"] is installed


def test_a_project_venv_package_runs_with_the_users_imports(
    hub_home, make_hub_repo, monkeypatch, tmp_path
) -> None:
    """A package of the project's ``.venv`` that the repository imports is loaded as any
    installed package: its own later imports reach the user's modules, never the
    repository's top-level modules of the same name."""
    import builtins

    repo = make_hub_repo(
        {
            "hubconf.py": "import venvpkg_lazy\n\ndef get():\n    return venvpkg_lazy\n",
            "datasets_for_test.py": "WHO = 'the repository'\n",
            ".venv/site/venvpkg_lazy/__init__.py": (
                "def lazy():\n    import datasets_for_test\n    return datasets_for_test.WHO\n"
            ),
        }
    )
    installed = tmp_path / "installed"
    installed.mkdir()
    (installed / "datasets_for_test.py").write_text("WHO = 'installed'\n")
    monkeypatch.syspath_prepend(str(installed))
    monkeypatch.syspath_prepend(str(repo / ".venv" / "site"))
    for name in ("venvpkg_lazy", "datasets_for_test"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    package = hubcore.load(str(repo), "get")
    assert package.__builtins__ is builtins.__dict__ or package.__builtins__ is builtins
    assert type(package.__loader__).__name__ == "SourceFileLoader"
    assert package.lazy() == "installed"
    sys.modules.pop("datasets_for_test", None)


@pytest.mark.parametrize("links", ["files", "entry"])
def test_a_project_venv_made_of_links_stays_the_users(
    hub_home, make_hub_repo, monkeypatch, tmp_path, links
) -> None:
    """A `.venv` whose files link into a shared store (uv's symlink mode), or whose
    site-packages is reached through a linked folder, is still the user's."""
    import os

    repo = make_hub_repo({"hubconf.py": "import linkedpkg_for_test\n\ndef get():\n    return 1\n"})
    store = tmp_path / "store"
    store.mkdir()
    (store / "linkedpkg_for_test.py").write_text("VALUE = 3\n")
    site = repo / ".venv" / "lib" / "site-packages"
    site.mkdir(parents=True)
    if links == "files":
        os.symlink(store / "linkedpkg_for_test.py", site / "linkedpkg_for_test.py")
        entry = site
    else:
        (site / "linkedpkg_for_test.py").write_text("VALUE = 3\n")
        entry = repo / ".venv" / "site"
        os.symlink(site, entry)
    monkeypatch.syspath_prepend(str(entry))
    monkeypatch.delitem(sys.modules, "linkedpkg_for_test", raising=False)
    assert hubcore.load(str(repo), "get") == 1
    assert sys.modules["linkedpkg_for_test"].VALUE == 3
    sys.modules.pop("linkedpkg_for_test", None)


def test_a_nested_load_of_the_same_repository_keeps_its_path_additions(
    hub_home, make_hub_repo
) -> None:
    """The folders a repository added before loading itself again stay its own there: their
    modules keep importing the repository's modules."""
    repo = make_hub_repo(
        {
            "hubconf.py": """
                import os, sys
                import hubcore

                HERE = os.path.dirname(__file__)

                def outer():
                    sys.path.insert(0, os.path.join(HERE, "plugins"))
                    return hubcore.load(HERE, "inner")

                def inner():
                    import plug_for_test
                    return plug_for_test.which()
            """,
            "utils.py": "WHO = 'the repository'\n",
            "plugins/plug_for_test.py": "def which():\n    import utils\n    return utils.WHO\n",
        }
    )
    assert hubcore.load(str(repo), "outer") == "the repository"
    assert "plug_for_test" not in sys.modules


def test_a_repository_that_changes_folder_keeps_its_modules(
    hub_home, make_hub_repo, monkeypatch, tmp_path
) -> None:
    """The user's ``''`` entry means the working folder; a repository that moves into one of
    its own folders and imports from there still has its modules moved aside."""
    repo = make_hub_repo(
        {
            "hubconf.py": (
                "import os\nos.chdir(os.path.join(os.path.dirname(__file__), 'lib'))\n"
                "import helper_in_lib\n\ndef get():\n    return helper_in_lib.VALUE\n"
            ),
            "lib/helper_in_lib.py": "VALUE = 5\n",
        }
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", ["", *sys.path])
    assert hubcore.load(str(repo), "get") == 5
    assert "helper_in_lib" not in sys.modules


def test_local_repo_edits_are_picked_up(hub_home, make_hub_repo) -> None:
    repo = make_hub_repo(
        {"hubconf.py": "from helper import v\n", "helper.py": "def v():\n    return 1\n"}
    )
    assert hubcore.load(str(repo), "v") == 1
    (repo / "helper.py").write_text("def v():\n    return 2\n")
    assert hubcore.load(str(repo), "v") == 2


def test_an_edit_within_the_same_second_is_picked_up(hub_home, make_hub_repo, monkeypatch) -> None:
    """Bytecode is written and the edit keeps the size and the whole second of the file's
    modification time: Python's own check (seconds and size) would run the old code."""
    import os

    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    repo = make_hub_repo(
        {"hubconf.py": "from helper import v\n", "helper.py": "def v():\n    return 1\n"}
    )
    helper = repo / "helper.py"
    second = helper.stat().st_mtime_ns // 10**9 * 10**9
    os.utime(helper, ns=(second, second + 1000))
    assert hubcore.load(str(repo), "v") == 1
    assert list((repo / "__pycache__").glob("helper*.pyc")), "no bytecode was written"
    helper.write_text("def v():\n    return 2\n")
    os.utime(helper, ns=(second, second + 2000))  # the same second, the same size
    assert hubcore.load(str(repo), "v") == 2


def test_missing_dependencies_are_all_named_before_import(
    hub_home, make_hub_repo, tmp_path
) -> None:
    marker = tmp_path / "imported"
    repo = make_hub_repo(
        {
            "hubconf.py": f"""
                import pathlib
                pathlib.Path({str(marker)!r}).write_text("x")
                dependencies = ["numpy", "surely_missing_pkg", "other-missing-dist", "pytest>=999"]
                def m():
                    return 1
            """
        }
    )
    with pytest.raises(DependencyError) as info:
        hubcore.load(str(repo), "m")
    message = str(info.value)
    for name in ("surely_missing_pkg", "other-missing-dist", "pytest>=999"):
        assert name in message
    assert "numpy" not in info.value.problems
    assert info.value.problems[0] == "surely_missing_pkg"
    assert len(info.value.problems) == 3
    assert not marker.exists()
    assert isinstance(info.value, ImportError)


def test_hubconf_import_error_is_wrapped(hub_home, make_hub_repo) -> None:
    repo = make_hub_repo({"hubconf.py": "raise ValueError('boom')\ndef m():\n    pass\n"})
    with pytest.raises(EntrypointError, match=r"importing hubconf\.py .* ValueError: boom"):
        hubcore.load(str(repo), "m")


def test_entrypoint_exception_is_wrapped_with_cause(hub_home, make_hub_repo) -> None:
    repo = make_hub_repo({"hubconf.py": "def m(x):\n    return 1 / x\n"})
    with pytest.raises(EntrypointError, match="ZeroDivisionError") as info:
        hubcore.load(str(repo), "m", 0)
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_unknown_entrypoint(hub_home, make_hub_repo) -> None:
    repo = make_hub_repo({"hubconf.py": "def resnet50():\n    pass\n"})
    with pytest.raises(EntrypointNotFoundError, match="resnet50"):
        hubcore.load(str(repo), "resnet05")


def test_entrypoints_return_any_object(hub_home, make_hub_repo) -> None:
    repo = make_hub_repo({"hubconf.py": "def pair(a, b=2, **kw):\n    return (a, b, kw)\n"})
    assert hubcore.load(str(repo), "pair", 1, extra="x") == (1, 2, {"extra": "x"})


def test_entrypoint_loaded_event(hub_home, make_hub_repo) -> None:
    from hubcore.plugins import get_plugins

    seen = []

    class Listener:
        @hubcore.hookimpl
        def hubcore_entrypoint_loaded(self, repo, entrypoint, result, weights):
            seen.append((entrypoint, result, weights))

    get_plugins().manager.register(Listener())
    repo = make_hub_repo({"hubconf.py": "def m():\n    return 5\n"})
    hubcore.load(str(repo), "m")
    assert seen == [("m", 5, None)]


# -- importlib from repository code -------------------------------------------------------------

REGISTRY = {
    "hubconf.py": """
        import importlib
        from importlib import import_module
        import importlib.util as iu

        utils = importlib.import_module("utils")
        direct = __import__("utils")
        found = iu.find_spec("utils")

        def build(name):
            '''The registry pattern: a model module chosen by name.'''
            module = import_module(f"models.{name}")
            return module.make(), utils.NAME, direct.NAME, found.name.endswith(".utils")

        def relative(name):
            return importlib.import_module("." + name, package="models").make()

        def later():
            '''A function that imports when called, after load returned.'''
            return lambda: importlib.import_module("utils").NAME

        def probe(call):
            '''Runs the caller's function while the repository's code runs.'''
            return call()

        def other():
            return importlib.import_module("json"), importlib.machinery.ModuleSpec
    """,
    "utils.py": "NAME = {name!r}\n",
    "models/__init__.py": "",
    "models/resnet.py": "from utils import NAME\n\ndef make():\n    return 'resnet-' + NAME\n",
}


def registry_repo(make_hub_repo, name: str) -> Path:
    files = {k: v.replace("{name!r}", repr(name)) for k, v in REGISTRY.items()}
    return make_hub_repo(files, name=name)


@pytest.fixture
def users_modules(monkeypatch) -> dict[str, object]:
    """The program's own ``utils`` and ``models``, which repositories must never see."""
    mine = {}
    for name in ("utils", "models", "models.resnet"):
        module = type(sys)(name)
        module.NAME = "user"
        mine[name] = module
        monkeypatch.setitem(sys.modules, name, module)
    return mine


def test_import_module_finds_the_repositorys_own_modules(
    hub_home, make_hub_repo, users_modules
) -> None:
    first = registry_repo(make_hub_repo, "first")
    second = registry_repo(make_hub_repo, "second")
    path_before, modules_before = list(sys.path), dict(sys.modules)
    assert hubcore.load(str(first), "build", "resnet") == ("resnet-first", "first", "first", True)
    assert hubcore.load(str(second), "build", "resnet") == (
        "resnet-second",
        "second",
        "second",
        True,
    )
    assert hubcore.load(str(first), "relative", "resnet") == "resnet-first"
    assert hubcore.load(str(second), "relative", "resnet") == "resnet-second"
    assert hubcore.load(str(first), "later")() == "first"  # runs outside the repository's call
    assert hubcore.load(str(second), "later")() == "second"
    assert sys.path == path_before
    for name, module in modules_before.items():
        assert sys.modules[name] is module, name
    added = set(sys.modules) - set(modules_before)
    assert all(name.startswith("_hubcore_repo_") for name in added), added


def test_import_module_of_other_names_is_the_real_one(hub_home, make_hub_repo) -> None:
    import importlib
    import json

    repo = registry_repo(make_hub_repo, "repo")
    module, spec_class = hubcore.load(str(repo), "other")
    assert module is json
    assert spec_class is importlib.machinery.ModuleSpec


def test_users_code_and_other_threads_keep_the_real_import_module(
    hub_home, make_hub_repo, users_modules
) -> None:
    import importlib
    import threading

    repo = registry_repo(make_hub_repo, "repo")
    import_module = importlib.import_module
    seen: dict[str, object] = {}

    def users_code() -> str:
        # Called by the repository while its code runs, here and from another thread.
        worker = threading.Thread(
            target=lambda: seen.update(thread=importlib.import_module("utils"))
        )
        worker.start()
        worker.join()
        seen["here"] = importlib.import_module("utils")
        seen["same_function"] = importlib.import_module is import_module
        return "done"

    assert hubcore.load(str(repo), "probe", users_code) == "done"
    assert seen == {
        "thread": users_modules["utils"],
        "here": users_modules["utils"],
        "same_function": True,
    }


# -- namespace packages ---------------------------------------------------------------------------

NAMESPACED = {
    "hubconf.py": """
        from official.vision.classification.resnet.model import resnet18

        dependencies = []

        def which():
            import official.vision.classification.resnet.model as m
            return m.NAME
    """,
    "official/vision/classification/resnet/__init__.py": "",
    "official/vision/classification/resnet/model.py": (
        "NAME = {name!r}\n\ndef resnet18():\n    return 'resnet18-' + NAME\n"
    ),
    "official/README.md": "no python directly in here\n",
}


def test_implicit_namespace_packages_of_the_repository(hub_home, make_hub_repo) -> None:
    repos = {}
    for name in ("first", "second"):
        files = {k: v.replace("{name!r}", repr(name)) for k, v in NAMESPACED.items()}
        repos[name] = make_hub_repo(files, name=name)
    for name, repo in repos.items():
        assert hubcore.load(str(repo), "resnet18") == f"resnet18-{name}"
        assert hubcore.load(str(repo), "which") == name
    assert "official" not in sys.modules


def test_namespace_folder_does_not_shadow_an_installed_module(hub_home, make_hub_repo) -> None:
    # As in Python: a folder without __init__.py is only a namespace portion, and a regular
    # module of the same name found elsewhere wins (a `json/` folder of scripts, say).
    repo = make_hub_repo(
        {
            "hubconf.py": "import json\n\ndef dump():\n    return json.dumps([1])\n",
            "json/convert.py": "X = 1\n",
        }
    )
    assert hubcore.load(str(repo), "dump") == "[1]"


def test_a_load_of_a_live_folder_reads_hubconf_once(
    hub_home, make_hub_repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local folder is discovered afresh on every load (it may change), but one load reads
    it once: finding the entrypoint and importing share that reading."""
    from hubcore import runner

    repo = make_hub_repo({"hubconf.py": "def m():\n    return 1\n"})
    readings: list[Path] = []
    discover = runner.discover_hubconf

    def counted(root: Path) -> object:
        readings.append(root)
        return discover(root)

    monkeypatch.setattr(runner, "discover_hubconf", counted)
    assert hubcore.load(str(repo), "m", trust_repo=True) == 1
    assert len(readings) == 1
    assert hubcore.load(str(repo), "m", trust_repo=True) == 1
    assert len(readings) == 2  # the next load reads the folder again


def test_modules_of_a_repository_reached_through_links_stay_out_of_sys_modules(
    hub_home, make_hub_repo, tmp_path: Path
) -> None:
    """A repository opened through a linked folder puts ``src/`` on ``sys.path`` and imports
    from it by plain name, one module file being a link to a file elsewhere: both modules are
    the repository's (where the import system found them), so neither is left in the user's
    ``sys.modules`` under its plain name."""
    repo = make_hub_repo(
        {
            "hubconf.py": (
                "import os, sys\n"
                "sys.path.insert(0, os.path.join(os.path.dirname(__file__), 'src'))\n"
                "from linkedmod import v\n"
                "from plainmod import w\n"
            ),
            "src/plainmod.py": "def w():\n    return 2\n",
        }
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "linkedmod.py").write_text("def v():\n    return 1\n")
    (repo / "src" / "linkedmod.py").symlink_to(elsewhere / "linkedmod.py")
    linked = tmp_path / "linked-repo"
    linked.symlink_to(repo, target_is_directory=True)
    assert hubcore.load(str(linked), "v", trust_repo=True) == 1
    assert hubcore.load(str(linked), "w", trust_repo=True) == 2
    assert "plainmod" not in sys.modules
    assert "linkedmod" not in sys.modules
