"""Trust: remote code runs only when trusted; prompts on a terminal, fails fast without one."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import hubcore
from hubcore import trust
from hubcore.cli import main
from hubcore.errors import UntrustedRepoError

from .gitserver import BareRepo, GitHostServer

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")


def hubconf(marker: Path, version: str) -> dict[str, str]:
    return {
        "hubconf.py": (
            "import pathlib\n"
            f"pathlib.Path({str(marker)!r}).write_text('ran')\n"
            f"def version():\n    return {version!r}\n"
        )
    }


@pytest.fixture
def untrusting(hub_home, monkeypatch) -> Path:
    monkeypatch.delenv("HUBCORE_TRUST")
    return hub_home


@pytest.fixture
def server(tmp_path):
    srv = GitHostServer(tmp_path / "srv" / "repos").start()
    yield srv
    srv.stop()


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "code-ran"


@pytest.fixture
def acme(server, marker) -> BareRepo:
    repo = BareRepo(server.root, "acme/hub")
    repo.commit(hubconf(marker, "v1"), "one")
    return repo


def test_untrusted_fails_fast_without_a_terminal(untrusting, server, acme, marker) -> None:
    with pytest.raises(UntrustedRepoError) as info:
        hubcore.load("acme/hub", "version", host=server.url)
    message = str(info.value)
    assert "hubcore trust add github:acme/hub" in message
    assert "HUBCORE_TRUST=github:acme/hub" in message
    assert not marker.exists()
    assert hubcore.list("acme/hub", host=server.url) == ["version"]  # discovery needs no trust
    assert not marker.exists()


@pytest.mark.parametrize("entry", ["acme", "acme/hub", "github:acme/hub", "github:acme"])
def test_allowlist_entries(untrusting, server, acme, marker, entry) -> None:
    trust.add(entry)
    assert hubcore.load("acme/hub", "version", host=server.url) == "v1"
    assert marker.exists()
    trust.remove(entry)
    with pytest.raises(UntrustedRepoError):
        hubcore.load("acme/hub", "version", host=server.url)


def test_environment_variable(untrusting, server, acme, monkeypatch) -> None:
    monkeypatch.setenv("HUBCORE_TRUST", "other/repo, acme/hub")
    assert hubcore.load("acme/hub", "version", host=server.url) == "v1"


def test_trust_repo_true_remembers_and_cache_is_not_trust(untrusting, server, acme) -> None:
    assert hubcore.load("acme/hub", "version", host=server.url, trust_repo=True) == "v1"
    assert "github:acme/hub" in trust.entries()
    assert hubcore.load("acme/hub", "version", host=server.url) == "v1"
    trust.remove("github:acme/hub")
    with pytest.raises(UntrustedRepoError):  # still cached, no longer trusted
        hubcore.load("acme/hub", "version", host=server.url)


def test_pinned_trust_does_not_extend_to_a_new_commit(untrusting, server, acme, marker) -> None:
    first = hubcore.open_repo("acme/hub", host=server.url).snapshot_id
    trust.add(f"acme/hub@{first}")
    assert hubcore.load("acme/hub", "version", host=server.url) == "v1"
    marker.unlink()
    second = acme.commit(hubconf(marker, "v2"), "two")
    with pytest.raises(UntrustedRepoError) as info:
        hubcore.load("acme/hub", "version", host=server.url)
    assert f"at {first[:12]}" in str(info.value)
    assert f"now at commit {second[:12]}" in str(info.value)
    assert not marker.exists()
    assert hubcore.load(f"acme/hub:{first}", "version", host=server.url) == "v1"


def test_local_folders_need_no_trust(untrusting, make_hub_repo, marker) -> None:
    repo = make_hub_repo(hubconf(marker, "local"))
    assert hubcore.load(str(repo), "version") == "local"


def test_trust_false_asks_every_time_and_remembers_nothing(untrusting, server, acme) -> None:
    snapshot = hubcore.open_repo("acme/hub", host=server.url)
    trust.add("acme/hub")
    asked = []

    def ask(prompt: str) -> str:
        asked.append(prompt)
        return "y"

    trust.ensure_trusted(snapshot, False, ask=ask, interactive=True)
    trust.ensure_trusted(snapshot, False, ask=ask, interactive=True)
    assert len(asked) == 2
    trust.remove("acme/hub")
    trust.ensure_trusted(snapshot, False, ask=ask, interactive=True)
    assert "github:acme/hub" not in trust.entries()
    with pytest.raises(UntrustedRepoError):
        trust.ensure_trusted(snapshot, False, ask=lambda _: "n", interactive=True)


def test_cli_trust_commands(untrusting, server, acme) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["trust", "add", "acme/hub"]).output == "trusted github:acme/hub\n"
    assert runner.invoke(main, ["trust", "ls"]).output == "github:acme/hub\n"
    loaded = runner.invoke(main, ["load", "acme/hub", "version", "--host", server.url])
    assert loaded.exit_code == 0, loaded.output
    assert "removed github:acme/hub" in runner.invoke(main, ["trust", "rm", "acme/hub"]).output
    refused = runner.invoke(main, ["load", "acme/hub", "version", "--host", server.url])
    assert refused.exit_code == 1
    assert "hubcore trust add github:acme/hub" in refused.output
    trusted = runner.invoke(main, ["load", "acme/hub", "version", "--host", server.url, "--trust"])
    assert trusted.exit_code == 0, trusted.output


# -- a real terminal -----------------------------------------------------------------------------


def spawn_load(home: Path, url: str):
    pexpect = pytest.importorskip("pexpect")
    code = (
        f"import hubcore, sys\nprint('RESULT', hubcore.load('acme/hub', 'version', host={url!r}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "HUBCORE_TRUST"}
    env.update(HUBCORE_HOME=str(home), HUBCORE_DISABLE_PROGRESS="1")
    return pexpect.spawn(sys.executable, ["-c", code], env=env, encoding="utf-8", timeout=60)


def test_prompt_yes_remembers(untrusting, server, acme, marker) -> None:
    child = spawn_load(untrusting, server.url)
    child.expect(r"Trust github:acme/hub\? \[y/N\] ")
    assert not marker.exists()  # nothing ran while waiting for the answer
    child.sendline("y")
    child.expect("RESULT v1")
    child.wait()
    stored = json.loads((untrusting / "trusted.json").read_text())
    assert stored == {"trusted": ["github:acme/hub"]}


def test_prompt_no_refuses(untrusting, server, acme, marker) -> None:
    child = spawn_load(untrusting, server.url)
    child.expect(r"\[y/N\] ")
    child.sendline("n")
    child.expect("was not trusted")
    child.wait()
    assert child.exitstatus != 0
    assert not marker.exists()


def test_prompt_for_a_moved_pin_shows_both_commits(untrusting, server, acme, marker) -> None:
    first = hubcore.open_repo("acme/hub", host=server.url).snapshot_id
    trust.add(f"acme/hub@{first}")
    second = acme.commit(hubconf(marker, "v2"), "two")
    child = spawn_load(untrusting, server.url)
    child.expect(f"at {first[:12]}; it is now at commit {second[:12]}")
    child.sendline("y")
    child.expect("RESULT v2")
    child.wait()
    assert f"github:acme/hub@{second}" in trust.entries()


def test_bad_trust_entries_are_typed_errors(untrusting) -> None:
    result = CliRunner().invoke(main, ["trust", "add", "  "])
    assert result.exit_code == 1
    assert result.output.startswith("error: ")
    assert "not a trust entry" in result.output
