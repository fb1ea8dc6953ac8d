"""Static discovery stays inside the repository and within size, count and nesting limits.

Whatever a hubconf (or a module it re-exports from) contains, ``list``/``help``/``check``/
``load`` either read it or fail with a typed :class:`~hubcore.errors.HubconfError`; they never
read a file outside the repository and never end in ``RecursionError`` or ``MemoryError``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import hubcore
from hubcore.cli import main
from hubcore.errors import ConfigError, HubconfError, HubconfSyntaxError
from hubcore.repo.discovery import MAX_NAMES, discover_hubconf
from hubcore.testing.pytest_plugin import write_repo

SECRET = "def f():\n    '''SECRET from outside the repository.'''\n"

needs_symlinks = pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")


def assert_not_followed(repo: Path, name: str) -> None:
    entry = hubcore.discover(str(repo)).entrypoints[name]
    assert not entry.resolved
    assert "outside the repository" in (entry.note or "")
    text = hubcore.help(str(repo), name)
    assert "SECRET" not in text
    assert "cannot be read statically" in text


# -- the repository root ------------------------------------------------------------------------


def test_relative_import_above_the_root_is_not_followed(tmp_path: Path) -> None:
    write_repo(tmp_path, {"outside.py": SECRET})
    repo = write_repo(
        tmp_path / "repo",
        {
            "hubconf.py": "from ..outside import f\nfrom pkg.mod import g\n",
            "pkg/__init__.py": "",
            "pkg/mod.py": "from ...outside import f as g\n",
        },
    )
    assert_not_followed(repo, "f")
    assert_not_followed(repo, "g")


def test_star_import_above_the_root_is_not_followed(tmp_path: Path) -> None:
    write_repo(tmp_path, {"__init__.py": SECRET})
    repo = write_repo(tmp_path / "repo", {"hubconf.py": "from .. import *\ndef own():\n    pass\n"})
    info = hubcore.discover(str(repo))
    assert list(info.entrypoints) == ["own"]
    assert not info.complete
    assert "outside the repository" in info.warnings[0]


@needs_symlinks
def test_symlinked_hubconf_pointing_outside_is_refused(tmp_path: Path) -> None:
    write_repo(tmp_path / "elsewhere", {"hubconf.py": SECRET})
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "hubconf.py").symlink_to(tmp_path / "elsewhere" / "hubconf.py")
    for read in (hubcore.list, lambda r: hubcore.help(r, "f")):
        with pytest.raises(HubconfError, match="outside the repository"):
            read(str(repo))


@needs_symlinks
def test_symlinked_hubconf_inside_the_repository_is_read(tmp_path: Path) -> None:
    repo = write_repo(tmp_path / "repo", {"real/hubconf.py": SECRET})
    (repo / "hubconf.py").symlink_to(repo / "real" / "hubconf.py")
    assert hubcore.list(str(repo)) == ["f"]


@needs_symlinks
def test_symlinked_module_folder_pointing_outside_is_not_followed(tmp_path: Path) -> None:
    write_repo(tmp_path / "elsewhere", {"models/__init__.py": SECRET, "models/nets.py": SECRET})
    repo = write_repo(
        tmp_path / "repo",
        {
            "hubconf.py": """
                from models.nets import f
                from models import f as g
                from models import *
            """
        },
    )
    (repo / "models").symlink_to(tmp_path / "elsewhere" / "models", target_is_directory=True)
    assert_not_followed(repo, "f")
    assert_not_followed(repo, "g")
    assert any("outside the repository" in w for w in hubcore.discover(str(repo)).warnings)


@needs_symlinks
def test_symlinked_module_file_pointing_outside_is_not_followed(tmp_path: Path) -> None:
    write_repo(tmp_path / "elsewhere", {"nets.py": SECRET})
    repo = write_repo(tmp_path / "repo", {"hubconf.py": "from nets import f\n"})
    (repo / "nets.py").symlink_to(tmp_path / "elsewhere" / "nets.py")
    assert_not_followed(repo, "f")


@needs_symlinks
def test_sys_path_folders_outside_are_not_searched(tmp_path: Path) -> None:
    write_repo(tmp_path / "elsewhere", {"nets.py": SECRET})
    repo = write_repo(
        tmp_path / "repo",
        {
            "hubconf.py": f"""
                import sys
                sys.path.insert(0, {str(tmp_path / "elsewhere")!r})
                sys.path.append("linked")
                from nets import f
            """
        },
    )
    (repo / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert_not_followed(repo, "f")


# -- size and count -----------------------------------------------------------------------------


def test_oversized_hubconf_is_refused(make_hub_repo) -> None:
    repo = make_hub_repo({"hubconf.py": "def f():\n    pass\n" + "#" * (4 * 1024 * 1024) + "\n"})
    with pytest.raises(HubconfError, match="HUBCORE_MAX_HUBCONF_BYTES") as info:
        hubcore.list(str(repo))
    assert "hubconf.py" in str(info.value)


def test_size_limit_is_configurable_and_covers_followed_modules(make_hub_repo, monkeypatch) -> None:
    repo = make_hub_repo({"hubconf.py": "from big import f\n", "big.py": SECRET + "#" * 500})
    assert hubcore.list(str(repo)) == ["f"]
    monkeypatch.setenv("HUBCORE_MAX_HUBCONF_BYTES", "300")
    with pytest.raises(HubconfError, match=r"big\.py .*300"):
        hubcore.list(str(repo))
    monkeypatch.setenv("HUBCORE_MAX_HUBCONF_BYTES", "lots")
    with pytest.raises(ConfigError, match="HUBCORE_MAX_HUBCONF_BYTES"):
        hubcore.list(str(repo))


def test_too_many_entrypoints_are_refused(make_hub_repo) -> None:
    text = "".join(f"def f{i}(): pass\n" for i in range(MAX_NAMES + 1))
    repo = make_hub_repo({"hubconf.py": text})
    with pytest.raises(HubconfError, match=f"more than {MAX_NAMES}"):
        hubcore.list(str(repo))
    # As many as the limit are fine.
    repo = make_hub_repo({"hubconf.py": "".join(text.splitlines(True)[:MAX_NAMES])})
    assert len(hubcore.list(str(repo))) == MAX_NAMES


def test_star_imports_count_towards_the_limit(make_hub_repo) -> None:
    half = MAX_NAMES // 2 + 1
    repo = make_hub_repo(
        {
            "hubconf.py": "from a import *\nfrom b import *\n",
            "a.py": "".join(f"def a{i}(): pass\n" for i in range(half)),
            "b.py": "".join(f"def b{i}(): pass\n" for i in range(half)),
        }
    )
    with pytest.raises(HubconfError, match=f"more than {MAX_NAMES}"):
        hubcore.list(str(repo))


def test_each_file_is_parsed_once(make_hub_repo, monkeypatch) -> None:
    repo = make_hub_repo(
        {
            "hubconf.py": "from m import *\nfrom m import a as b\nfrom n import c\n",
            "m.py": "from n import *\ndef a():\n    '''A.'''\n",
            "n.py": "def c():\n    '''C.'''\n",
        }
    )
    import ast

    parsed: list[str] = []
    real_parse = ast.parse

    def counting_parse(source, filename="<unknown>", *args, **kwargs):
        parsed.append(Path(filename).name)
        return real_parse(source, filename, *args, **kwargs)

    monkeypatch.setattr(ast, "parse", counting_parse)
    info = discover_hubconf(repo)
    assert info.entrypoints["b"].doc == "A."
    assert sorted(parsed) == ["hubconf.py", "m.py", "n.py"]


# -- nesting ------------------------------------------------------------------------------------

DEEP = {
    "long_sum": "x = " + "+".join(["a"] * 200_000) + "\n",
    "unary": "x = " + "-" * 100_000 + "1\n",
    "parentheses": "x = " + "(" * 100_000 + "1" + ")" * 100_000 + "\n",
    "conditional": "x = " + "a if b else " * 3000 + "a\n",
    "attributes": "x = a" + ".b" * 3000 + "\n",
    "calls": "x = f" + "()" * 3000 + "\n",
    "elif_chain": "if a:\n    pass\n" + "elif a:\n    pass\n" * 3000,
    "default_argument": "def g(x=" + "+".join(["a"] * 3000) + "):\n    pass\n",
    "dependencies": "dependencies = [" + "'x' if a else " * 3000 + "'x']\n",
    "decorator": "from hubcore import pretrained\n@pretrained("
    + "'u' if a else " * 3000
    + "'u')\ndef g():\n    pass\n",
    "nested_lists": "dependencies = " + "[" * 190 + "]" * 190 + "\n",
    "nested_decorator_dict": "from hubcore import pretrained\n@pretrained("
    + "{'a': " * 190
    + "'u'"
    + "}" * 190
    + ")\ndef g():\n    pass\n",
    "null_byte": "def f():\n    pass\n\x00\n",
}


@pytest.mark.parametrize("case", sorted(DEEP))
def test_deep_nesting_is_a_clear_error(case: str, make_hub_repo) -> None:
    repo = make_hub_repo({"hubconf.py": DEEP[case] + "def f():\n    'F.'\n"})
    for read, expected in ((hubcore.list, "f"), (lambda r: hubcore.help(r, "f"), "F.")):
        try:
            result = read(str(repo))
        except HubconfSyntaxError as exc:
            message = str(exc)
        else:  # shallow enough to read: then it is read correctly
            message = "hubconf.py"
            assert expected in result
        assert "hubconf.py" in message


@pytest.mark.parametrize("case", ["long_sum", "conditional", "decorator"])
def test_deep_nesting_says_so(case: str, make_hub_repo) -> None:
    repo = make_hub_repo({"hubconf.py": DEEP[case] + "def f():\n    '''F.'''\n"})
    with pytest.raises(HubconfSyntaxError, match="too deeply nested"):
        hubcore.list(str(repo))


def test_long_elif_chains_are_read(make_hub_repo) -> None:
    chain = "if a:\n    pass\n" + "elif a:\n    pass\n" * 2500
    repo = make_hub_repo({"hubconf.py": chain + "else:\n    def f():\n        'F.'\n"})
    assert hubcore.help(str(repo), "f") == "F."


def test_deep_nesting_in_a_followed_module_names_it(make_hub_repo) -> None:
    repo = make_hub_repo({"hubconf.py": "from m import f\n", "m.py": DEEP["conditional"] + SECRET})
    with pytest.raises(HubconfSyntaxError, match=r"m\.py.*too deeply nested"):
        hubcore.help(str(repo), "f")


def test_deep_nesting_in_check_and_load(make_hub_repo, hub_home) -> None:
    repo = make_hub_repo({"hubconf.py": DEEP["conditional"] + "def f():\n    '''F.'''\n"})
    result = CliRunner().invoke(main, ["check", str(repo)])
    assert result.exit_code == 1
    assert "too deeply nested" in result.output
    assert not isinstance(result.exception, RecursionError | MemoryError)
    with pytest.raises(HubconfSyntaxError, match="too deeply nested"):
        hubcore.load(str(repo), "f")


def test_deep_import_chains_end(make_hub_repo) -> None:
    files = {f"m{i}.py": f"from m{i + 1} import *\ndef f{i}():\n    pass\n" for i in range(400)}
    files["hubconf.py"] = "from m0 import *\n"
    files["m400.py"] = "def last():\n    pass\n"
    repo = make_hub_repo(files)
    info = hubcore.discover(str(repo))
    assert "f0" in info.entrypoints
    assert not info.complete


def test_chains_in_strings_and_comments_are_not_code(make_hub_repo) -> None:
    chain = "+".join(["a"] * 20_000)
    repo = make_hub_repo(
        {"hubconf.py": f"TEXT = '{chain}'\n# {chain}\nDOC = '''{chain}\n'''\ndef f():\n    'F.'\n"}
    )
    assert hubcore.help(str(repo), "f") == "F."
    repo = make_hub_repo({"hubconf.py": f"x = f'{{{chain}}}'\ndef f():\n    'F.'\n"})
    with pytest.raises(HubconfSyntaxError, match="too deeply nested"):
        hubcore.list(str(repo))


def test_all_files_together_are_capped(tmp_path, monkeypatch) -> None:
    """Many files under the per-file limit add up to a refusal too."""
    import hubcore
    from hubcore.errors import HubconfError

    monkeypatch.setenv("HUBCORE_MAX_HUBCONF_BYTES", "20000")
    repo = tmp_path / "repo"
    repo.mkdir()
    names = [f"m{i}" for i in range(6)]
    for name in names:
        (repo / f"{name}.py").write_text(f"def {name}():\n    pass\n" + "# pad\n" * 3000)
    (repo / "hubconf.py").write_text("".join(f"from {n} import {n}\n" for n in names))
    with pytest.raises(HubconfError, match="together"):
        hubcore.list(str(repo))
