"""One settings object owns every HUBCORE_* variable."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from hubcore import settings
from hubcore.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_the_user_guide_lists_every_variable() -> None:
    guide = (ROOT / "docs" / "user-guide.md").read_text()
    table = guide[guide.index("## Environment variables") :]
    documented = set(re.findall(r"^\| `(HUBCORE_[A-Z_]+)`", table, re.M))
    declared = {env.split(" ")[0] for env, _, _ in settings.table()}
    assert documented == declared


_READERS = ("os.environ.get", "os.getenv", "os.environ.pop")


def _environment_reads(tree: ast.AST) -> list[str]:
    """The keys of ``os.environ[...]``, ``os.environ.get(...)`` and ``os.getenv(...)``."""
    found = []
    for node in ast.walk(tree):
        key: ast.expr | None = None
        if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ":
            key = node.slice
        elif isinstance(node, ast.Call) and node.args and ast.unparse(node.func) in _READERS:
            key = node.args[0]
        if key is not None:
            found.append(key.value if isinstance(key, ast.Constant) else ast.unparse(key))
    return found


def test_no_other_module_reads_hubcore_variables() -> None:
    offenders = []
    for path in (ROOT / "hubcore").rglob("*.py"):
        if path.name == "settings.py" or "testing" in path.parts:
            continue
        for key in _environment_reads(ast.parse(path.read_text())):
            # boto's and git's own variables (AWS_*, GIT_CONFIG_*), read where they apply
            if not str(key).lstrip("f'\"").startswith(("AWS_", "GIT_")):  # f"GIT_..._{n}" too
                offenders.append(f"{path.relative_to(ROOT)}: {key}")
    assert offenders == [], "read HUBCORE_* through hubcore.settings"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HUBCORE_OFFLINE", "maybe"),
        ("HUBCORE_CONNECTIONS", "many"),
        ("HUBCORE_READ_TIMEOUT", "-3"),
        ("HUBCORE_MAX_HUBCONF_BYTES", "0"),
        ("HUBCORE_VERIFY", "sometimes"),
        ("HUBCORE_MAX_ARCHIVE_BYTES", "4GB"),
    ],
)
def test_a_bad_value_names_its_variable(monkeypatch, variable, value) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        settings.current()


def test_values_are_typed_and_follow_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("HUBCORE_CONNECTIONS", "3")
    monkeypatch.setenv("HUBCORE_TRUST", "acme, b/c ,")
    assert settings.current().connections == 3
    assert settings.current().trust == ("acme", "b/c")
    monkeypatch.setenv("HUBCORE_CONNECTIONS", "4")
    assert settings.current().connections == 4
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("HUBCORE_GITHUB_TOKEN", raising=False)
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    assert settings.current().github_token == "t"


def test_overrides_are_scoped(monkeypatch) -> None:
    monkeypatch.delenv("HUBCORE_OFFLINE", raising=False)
    with settings.overridden(offline=True):
        assert settings.current().offline
    assert not settings.current().offline
    with pytest.raises(TypeError, match="unknown settings"):
        settings.override_process(no_such_setting=1)


def test_the_cli_does_not_write_the_environment(monkeypatch, hub_home) -> None:
    import os

    from hubcore.cli import main

    monkeypatch.delenv("HUBCORE_OFFLINE", raising=False)
    monkeypatch.delenv("HUBCORE_DISABLE_PROGRESS", raising=False)
    result = CliRunner().invoke(main, ["--offline", "-q", "trust", "ls"])
    assert result.exit_code == 0, result.output
    assert "HUBCORE_OFFLINE" not in os.environ
    assert "HUBCORE_DISABLE_PROGRESS" not in os.environ
    assert not settings.current().offline  # the command's options ended with it
