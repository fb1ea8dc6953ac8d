"""Repositories whose hubconf binds names static reading cannot see: the listing says it is
incomplete, ``--import`` completes it (behind trust), and ``load`` takes such a name from the
imported hubconf, as torch.hub does."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

import hubcore
from hubcore.cli import main
from hubcore.compat import torch_hub
from hubcore.errors import EntrypointNotFoundError, UntrustedRepoError

from .gitserver import BareRepo, GitHostServer

DYNAMIC = {
    "hubconf.py": """dependencies = []
import zoo
globals().update(zoo.registry)
""",
    "zoo/__init__.py": """
registry = {}


def register(fn):
    registry[fn.__name__] = fn
    return fn


@register
def small(scale=1):
    '''A small model.'''
    return ("small", scale)


@register
def _hidden():
    return "hidden"
""",
}

MAIN_BLOCK = {
    "hubconf.py": """import pathlib
dependencies = []


def net():
    '''The model.'''
    return "net"


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser()
""",
}


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), catch_exceptions=False, input=input)


def test_list_says_the_listing_is_incomplete(make_hub_repo, hub_home) -> None:
    repo = make_hub_repo(DYNAMIC)
    result = run("list", str(repo))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "listing incomplete: hubconf.py:3 globals().update(...) adds names static reading "
        "cannot see; `hubcore list --import` runs the hubconf to list them"
    )
    assert not hubcore.discover(str(repo)).complete


def test_list_and_help_can_import_the_hubconf(make_hub_repo, hub_home) -> None:
    repo = str(make_hub_repo(DYNAMIC))
    assert hubcore.list(repo) == []
    assert hubcore.list(repo, imported=True) == ["small"]
    assert hubcore.help(repo, "small", imported=True) == "A small model."
    result = run("list", repo, "--import")
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == ["small"]
    assert "incomplete" not in result.stderr
    result = run("help", repo, "small", "--import")
    assert result.exit_code == 0, result.output
    assert "A small model." in result.stdout


def test_help_without_import_says_how_to_complete(make_hub_repo, hub_home) -> None:
    repo = str(make_hub_repo(DYNAMIC))
    text = hubcore.help(repo, "small")
    assert "globals().update" in text
    assert "--import" in text


def test_a_dynamically_exported_name_loads(make_hub_repo, hub_home) -> None:
    repo = str(make_hub_repo(DYNAMIC))
    assert hubcore.load(repo, "small", scale=2) == ("small", 2)
    assert torch_hub.load(repo, "small", 3, source="local") == ("small", 3)
    result = run("load", repo, "small", "--kw", "scale=4")
    assert result.exit_code == 0, result.output
    with pytest.raises(EntrypointNotFoundError):
        hubcore.load(repo, "_hidden")  # not public: torch.hub would not list it either


def test_names_under_main_neither_list_nor_load(make_hub_repo, hub_home, tmp_path) -> None:
    marker = tmp_path / "ran"
    files = dict(MAIN_BLOCK)
    files["hubconf.py"] += f"pathlib.Path({str(marker)!r}).write_text('ran')\n"
    repo = str(make_hub_repo(files))
    assert hubcore.list(repo) == ["net"]
    with pytest.raises(EntrypointNotFoundError, match="parser"):
        hubcore.load(repo, "parser")
    assert not marker.exists()  # refused before anything ran
    verbose = run("list", repo, "--verbose")
    assert 'parser: bound only under `if __name__ == "__main__":`' in verbose.stdout
    assert "argparse" in verbose.stdout  # a module: skipped, and said so


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")
def test_importing_a_remote_hubconf_needs_trust(hub_home, monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("HUBCORE_TRUST")
    marker = tmp_path / "ran"
    server = GitHostServer(tmp_path / "srv" / "repos").start()
    try:
        files = dict(DYNAMIC)
        files["hubconf.py"] += f"import pathlib\npathlib.Path({str(marker)!r}).write_text('x')\n"
        BareRepo(server.root, "acme/dyn").commit(files, "one")
        assert hubcore.list("acme/dyn", host=server.url) == []  # static: runs nothing
        with pytest.raises(UntrustedRepoError):
            hubcore.list("acme/dyn", host=server.url, imported=True)
        with pytest.raises(UntrustedRepoError):
            hubcore.help("acme/dyn", "small", host=server.url, imported=True)
        result = run("list", "acme/dyn", "--host", server.url, "--import")
        assert result.exit_code == 1
        assert "refusing to run code" in result.stderr
        assert not marker.exists()
        result = run("list", "acme/dyn", "--host", server.url, "--import", "--trust")
        assert result.stdout.split() == ["small"]
        assert marker.exists()
        assert hubcore.load("acme/dyn", "small", host=server.url) == ("small", 1)
    finally:
        server.stop()
