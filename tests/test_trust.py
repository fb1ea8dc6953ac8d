"""Trust: remote code runs only when trusted; prompts on a terminal, fails fast without one."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import hubcore
from hubcore.cli import main
from hubcore.errors import UntrustedRepoError
from hubcore.policy import trust

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


def key(server: GitHostServer, path: str = "acme/hub") -> str:
    """The identity of a repository of the GitHub stand-in."""
    return f"github:{server.url}/{path}"


def test_untrusted_fails_fast_without_a_terminal(untrusting, server, acme, marker) -> None:
    with pytest.raises(UntrustedRepoError) as info:
        hubcore.load("acme/hub", "version", host=server.url)
    message = str(info.value)
    assert f"hubcore trust add {key(server)}" in message  # names the host the code is from
    assert f"HUBCORE_TRUST={key(server)}" in message
    assert not marker.exists()
    assert hubcore.list("acme/hub", host=server.url) == ["version"]  # discovery needs no trust
    assert not marker.exists()


@pytest.mark.parametrize(
    ("entry", "host"),
    [
        ("acme", True),
        ("acme/hub", True),
        ("github:acme/hub", True),
        ("github:acme", True),
        ("github:{url}/acme/hub", False),
        ("github:{url}/acme", False),
        ("github:{url}/acme/hub.git", False),
        ("Acme/Hub", True),  # GitHub names ignore case
    ],
)
def test_allowlist_entries(untrusting, server, acme, marker, entry, host) -> None:
    entry = entry.format(url=server.url)
    trust.add(entry, host=server.url if host else None)
    assert hubcore.load("acme/hub", "version", host=server.url) == "v1"
    assert marker.exists()
    trust.remove(entry, host=server.url if host else None)
    with pytest.raises(UntrustedRepoError):
        hubcore.load("acme/hub", "version", host=server.url)


@pytest.mark.parametrize("entry", ["acme", "acme/hub", "github:acme/hub", "github:acme"])
def test_trust_is_bound_to_the_host(untrusting, server, acme, marker, entry) -> None:
    assert trust.add(entry).startswith("github:https://github.com/acme")
    with pytest.raises(UntrustedRepoError) as info:
        hubcore.load("acme/hub", "version", host=server.url)
    assert key(server) in str(info.value)
    assert not marker.exists()
    trust.add(entry, host="ghe.other.example")
    with pytest.raises(UntrustedRepoError):
        hubcore.load("acme/hub", "version", host=server.url)
    assert not marker.exists()


def test_trust_files_of_old_spelling_mean_github_com(untrusting, server, acme, marker) -> None:
    (untrusting / "trusted.json").write_text(
        json.dumps({"trusted": ["github:acme/hub", "github:acme", "gitlab:grp/sub"]})
    )
    assert trust.entries() == [
        "github:https://github.com/acme/hub",
        "github:https://github.com/acme/",
        "gitlab:https://gitlab.com/grp/sub",
    ]
    with pytest.raises(UntrustedRepoError):
        hubcore.load("acme/hub", "version", host=server.url)
    assert not marker.exists()
    trust.add("acme/hub", host=server.url)  # rewrites the file in the new spelling
    stored = json.loads((untrusting / "trusted.json").read_text())
    assert stored["trusted"][0] == "github:https://github.com/acme/hub"
    assert stored["trusted"][-1] == key(server)
    assert hubcore.load("acme/hub", "version", host=server.url) == "v1"


def test_environment_variable(untrusting, server, acme, monkeypatch) -> None:
    monkeypatch.setenv("HUBCORE_TRUST", "acme/hub")  # github.com: not this server
    with pytest.raises(UntrustedRepoError):
        hubcore.load("acme/hub", "version", host=server.url)
    monkeypatch.setenv("HUBCORE_TRUST", f"other/repo, {key(server)}")
    assert hubcore.load("acme/hub", "version", host=server.url) == "v1"


def test_trust_repo_true_remembers_and_cache_is_not_trust(untrusting, server, acme) -> None:
    assert hubcore.load("acme/hub", "version", host=server.url, trust_repo=True) == "v1"
    assert key(server) in trust.entries()
    assert hubcore.load("acme/hub", "version", host=server.url) == "v1"
    trust.remove(key(server))
    with pytest.raises(UntrustedRepoError):  # still cached, no longer trusted
        hubcore.load("acme/hub", "version", host=server.url)


def test_pinned_trust_does_not_extend_to_a_new_commit(untrusting, server, acme, marker) -> None:
    first = hubcore.open_repo("acme/hub", host=server.url).snapshot_id
    trust.add(f"acme/hub@{first}", host=server.url)
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
    trust.add("acme/hub", host=server.url)
    asked = []

    def ask(prompt: str) -> str:
        asked.append(prompt)
        return "y"

    trust.ensure_trusted(snapshot, False, ask=ask, interactive=True)
    trust.ensure_trusted(snapshot, False, ask=ask, interactive=True)
    assert len(asked) == 2
    trust.remove("acme/hub", host=server.url)
    trust.ensure_trusted(snapshot, False, ask=ask, interactive=True)
    assert key(server) not in trust.entries()
    with pytest.raises(UntrustedRepoError):
        trust.ensure_trusted(snapshot, False, ask=lambda _: "n", interactive=True)


def test_cli_trust_commands(untrusting, server, acme) -> None:
    runner = CliRunner()
    added = runner.invoke(main, ["trust", "add", "acme/hub"])
    assert added.output == "trusted github:https://github.com/acme/hub\n"
    refused = runner.invoke(main, ["load", "acme/hub", "version", "--host", server.url])
    assert refused.exit_code == 1  # trusted on github.com, not on this server
    added = runner.invoke(main, ["trust", "add", "acme/hub", "--host", server.url])
    assert added.output == f"trusted {key(server)}\n"
    listed = runner.invoke(main, ["trust", "ls"]).output
    assert listed == f"github:https://github.com/acme/hub\n{key(server)}\n"
    loaded = runner.invoke(main, ["load", "acme/hub", "version", "--host", server.url])
    assert loaded.exit_code == 0, loaded.output
    removed = runner.invoke(main, ["trust", "rm", "acme/hub", "--host", server.url]).output
    assert f"removed {key(server)}" in removed
    refused = runner.invoke(main, ["load", "acme/hub", "version", "--host", server.url])
    assert refused.exit_code == 1
    assert f"hubcore trust add {key(server)}" in refused.output
    again = runner.invoke(main, ["trust", "add", key(server)])  # the printed spelling works
    assert again.output == f"trusted {key(server)}\n"
    assert runner.invoke(main, ["trust", "rm", key(server)]).output == f"removed {key(server)}\n"
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
    child.expect(rf"Trust {re.escape(key(server))}\? \[y/N\] ")
    assert not marker.exists()  # nothing ran while waiting for the answer
    child.sendline("y")
    child.expect("RESULT v1")
    child.wait()
    stored = json.loads((untrusting / "trusted.json").read_text())
    assert stored == {"version": 2, "trusted": [key(server)]}


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
    trust.add(f"acme/hub@{first}", host=server.url)
    second = acme.commit(hubconf(marker, "v2"), "two")
    child = spawn_load(untrusting, server.url)
    child.expect(f"at {first[:12]}; it is now at commit {second[:12]}")
    child.sendline("y")
    child.expect("RESULT v2")
    child.wait()
    assert f"{key(server)}@{second}" in trust.entries()


def test_bad_trust_entries_are_typed_errors(untrusting) -> None:
    result = CliRunner().invoke(main, ["trust", "add", "  "])
    assert result.exit_code == 1
    assert result.output.startswith("error: ")
    assert "not a trust entry" in result.output


def test_a_folder_never_shadows_a_remote_reference(
    untrusting, server, acme, marker, tmp_path, monkeypatch
) -> None:
    folder_ran = tmp_path / "folder-code-ran"
    shadow = tmp_path / "cwd" / "acme" / "hub"
    shadow.mkdir(parents=True)
    (shadow / "hubconf.py").write_text(hubconf(folder_ran, "folder")["hubconf.py"])
    monkeypatch.chdir(tmp_path / "cwd")
    refused = CliRunner().invoke(main, ["load", "acme/hub", "version", "--host", server.url])
    assert refused.exit_code == 1
    assert key(server) in refused.output
    assert not folder_ran.exists()
    assert not marker.exists()
    trust.add("acme/hub", host=server.url)
    assert hubcore.load("acme/hub", "version", host=server.url) == "v1"  # the remote one
    assert not folder_ran.exists()
    assert hubcore.load("./acme/hub", "version") == "folder"  # spelled as a path
    assert hubcore.load("acme/hub", "version", source="local") == "folder"


def test_dot_segments_cannot_reach_past_a_trusted_repository(hub_home, monkeypatch) -> None:
    """`trusted/../..` is another repository to the server, so it is no reference at all."""
    from hubcore.errors import InvalidReferenceError

    monkeypatch.setenv("HUBCORE_TRUST", "github:https://git.example/acme/hub")
    for text, options in [
        ("evil/x", {"host": "https://git.example/acme/hub/../.."}),
        ("evil/x", {"host": "https://git.example/acme/hub/%2e%2e/%2E%2E"}),
        ("https://files.example/hub.zip/../evil.zip", {}),
        ("git+https://git.example/lab/models.git/../../evil/x.git", {}),
    ]:
        with pytest.raises(InvalidReferenceError, match=r"'\.' or '\.\.'"):
            hubcore.api.parse_repo(text, **options)


def test_a_repository_entry_trusts_nothing_below_it(hub_home, monkeypatch) -> None:
    monkeypatch.setenv("HUBCORE_TRUST", "https://files.example/hub.zip,github:acme")
    assert trust._matches(
        "github:https://github.com/acme/models", "0" * 40, trust.entries()
    )  # an owner entry covers the owner's repositories
    assert not trust._matches("url:https://files.example/hub.zip/b.zip", "0" * 40, trust.entries())
    assert trust._matches("url:https://files.example/hub.zip", "0" * 40, trust.entries())
