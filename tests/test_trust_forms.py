"""Trust works for every reference form `load` accepts (the user guide's table of sources):
`hubcore trust add FORM`, `trust rm FORM` and `HUBCORE_TRUST=FORM` all name the same identity
that a load of FORM is checked against, and never store credentials."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

import hubcore
from hubcore.cli import main
from hubcore.errors import InvalidReferenceError, UntrustedRepoError

from .gitserver import BareRepo, GitDaemon, GitHostServer

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")


def hubconf(marker: Path) -> str:
    return (
        "import pathlib\n"
        f"def version():\n    pathlib.Path({str(marker)!r}).write_text('ran')\n    return 'ok'\n"
    )


@pytest.fixture
def untrusting(hub_home, monkeypatch) -> Path:
    monkeypatch.delenv("HUBCORE_TRUST")
    return hub_home


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "code-ran"


@pytest.fixture
def servers(tmp_path, marker):
    root = tmp_path / "srv" / "repos"
    for path in ("acme/hub", "grp/sub/hub", "lab/models"):
        BareRepo(root, path).commit({"hubconf.py": hubconf(marker)}, "one")
    http_server = GitHostServer(root).start()
    daemon = GitDaemon(root).start()
    files = root.parent / "files"
    files.mkdir()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("hub/hubconf.py", hubconf(marker))
    (files / "hub.zip").write_bytes(buffer.getvalue())
    yield http_server, daemon, files
    daemon.stop()
    http_server.stop()


@pytest.fixture
def memory_hub(marker):
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/hubs/acme/hubconf.py", hubconf(marker).encode())
    yield "memory://hubs/acme"
    fs.rm("/hubs", recursive=True)


# (reference, whether load and trust are given --host <the GitHub/GitLab stand-in>)
FORMS = [
    ("acme/hub", True),
    ("acme/hub:main", True),
    ("github:acme/hub@main", True),
    ("github:{http}/acme/hub", False),
    ("gitlab:grp/sub/hub@main", True),
    ("gitlab:{http}/grp/sub/hub", False),
    ("{git}/lab/models.git", False),
    ("{git}/lab/models.git@main", False),
    ("git:{git}/lab/models.git", False),
    ("git+{http}/lab/models.git", False),
    ("git+{http}/lab/models.git@main", False),
    ("{http}/lab/models.git@main", False),
    ("ssh://git@fake.invalid{repos}/lab/models.git", False),
    ("git+ssh://git@fake.invalid{repos}/lab/models.git@main", False),
    ("{http}/files/hub.zip", False),
    ("url:{http}/files/hub.zip", False),
    ("{http}/files/hub.zip#sha256={zip_sha}", False),
    ("file://{files}/hub.zip", False),
    ("{memory}", False),
]


def spell(form: str, servers, memory: str) -> str:
    http_server, daemon, files = servers
    zip_sha = hashlib.sha256((files / "hub.zip").read_bytes()).hexdigest()
    return form.format(
        http=http_server.url,
        git=daemon.url,
        files=files,
        zip_sha=zip_sha,
        memory=memory,
        repos=files.parent / "repos",
    )


@pytest.fixture
def local_ssh(tmp_path, monkeypatch) -> None:
    """An ssh command that serves `ssh://<any host>/<absolute path>` from this machine's
    folders, as sshd runs the remote command (git's way of testing SSH without a server)."""
    script = tmp_path / "local-ssh"
    script.write_text('#!/bin/sh\nfor last; do :; done\nexec sh -c "$last"\n')
    script.chmod(0o755)
    monkeypatch.setenv("GIT_SSH_COMMAND", str(script))


@pytest.mark.parametrize(("form", "with_host"), FORMS)
def test_every_form_can_be_trusted(
    untrusting, servers, memory_hub, local_ssh, marker, monkeypatch, form, with_host
) -> None:
    ref = spell(form, servers, memory_hub)
    host = ["--host", servers[0].url] if with_host else []
    load = ["load", ref, "version", *host]
    runner = CliRunner()
    refused = runner.invoke(main, load)
    assert refused.exit_code == 1, refused.output
    assert "not on your trust list" in refused.output
    assert not marker.exists()

    added = runner.invoke(main, ["trust", "add", ref, *host])
    if "main" in form:  # a branch moves: trust cannot pin it, and says what to write instead
        assert added.exit_code == 1
        assert "trust pins one snapshot by its immutable id, not 'main'" in added.output
        identity = added.output.split("; trust ", 1)[1].split(" for every snapshot")[0]
        ref = form.replace(":main", "").replace("@main", "")
        ref = spell(ref, servers, memory_hub)
        assert runner.invoke(main, ["trust", "add", ref, *host]).output == f"trusted {identity}\n"
    else:
        assert added.exit_code == 0, added.output
    loaded = runner.invoke(main, load)
    assert loaded.exit_code == 0, loaded.output
    assert marker.exists()
    marker.unlink()

    removed = runner.invoke(main, ["trust", "rm", ref, *host])
    assert removed.output.startswith("removed "), removed.output
    assert runner.invoke(main, load).exit_code == 1
    assert not marker.exists()

    identity = runner.invoke(main, ["trust", "add", ref, *host]).output.split()[-1]
    runner.invoke(main, ["trust", "rm", ref, *host])
    for entry in (identity, ref) if not with_host else (identity,):
        monkeypatch.setenv("HUBCORE_TRUST", entry)
        assert runner.invoke(main, load).exit_code == 0
        assert marker.exists()
        marker.unlink()


def test_a_pinned_commit_in_any_form(untrusting, servers, marker) -> None:
    http_server, daemon, _ = servers
    commit = hubcore.open_repo(f"{daemon.url}/lab/models.git").snapshot_id
    assert commit is not None
    runner = CliRunner()
    added = runner.invoke(main, ["trust", "add", f"git+{http_server.url}/lab/models.git@{commit}"])
    assert added.output == f"trusted git:{http_server.url}/lab/models.git@{commit}\n"
    assert hubcore.load(f"{http_server.url}/lab/models.git@main", "version") == "ok"
    with pytest.raises(UntrustedRepoError):  # the same path on another server is not trusted
        hubcore.load(f"{daemon.url}/lab/models.git", "version")
    assert (
        runner.invoke(main, ["trust", "add", f"{daemon.url}/lab/models.git@{commit}"]).exit_code
        == 0
    )
    assert hubcore.load(f"{daemon.url}/lab/models.git", "version") == "ok"


def test_credentials_are_never_stored(untrusting, servers, marker) -> None:
    http_server, _, _ = servers
    netloc = http_server.url.removeprefix("http://")
    ref = f"git+http://alice:s3cret@{netloc}/lab/models.git"
    added = CliRunner().invoke(main, ["trust", "add", ref])
    assert added.exit_code == 0, added.output
    assert added.output == f"trusted git:{http_server.url}/lab/models.git\n"
    stored = (untrusting / "trusted.json").read_text()
    assert "s3cret" not in stored
    assert "alice" not in stored
    assert hubcore.load(ref, "version") == "ok"  # the same repository, credentials or not
    assert hubcore.load(f"git+{http_server.url}/lab/models.git", "version") == "ok"


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("acme/hub@main", "immutable id"),
        ("acme/hub:v1", "immutable id"),
        ("acme/hub@abc1234", "immutable id"),
        ("https://h.example/hub.zip@" + "c" * 40, "pin one as <archive URL>#sha256="),
        ("s3://bucket/hub@" + "c" * 40, "pin one as <folder URL>@sha256:"),
        ("acme/hub@" + "c" * 40 + "@" + "d" * 40, "immutable id"),
        ("registry:det:prod", "immutable id, not 'prod'"),
        ("./somewhere", "always trusted"),
        ("nosuchproto://x/y", "no installed source handles nosuchproto://"),
        ("gitlab:", "not a valid gitlab reference"),
        ("*", "HUBCORE_TRUST=*"),
    ],
)
def test_forms_that_cannot_be_trusted_are_errors(untrusting, entry, problem) -> None:
    result = CliRunner().invoke(main, ["trust", "add", "acme/other", entry])
    assert result.exit_code == 1
    assert result.output.startswith("error: ")
    assert problem in result.output
    assert not (untrusting / "trusted.json").exists()  # nothing of the command was stored


def test_bad_environment_entries_are_errors(untrusting, monkeypatch) -> None:
    monkeypatch.setenv("HUBCORE_TRUST", "acme/hub@main")
    result = CliRunner().invoke(main, ["trust", "ls"])
    assert result.exit_code == 1
    assert "HUBCORE_TRUST" in result.output


def test_stored_entries_are_identities(untrusting, servers) -> None:
    _, daemon, _ = servers
    runner = CliRunner()
    for entry in (
        "acme",
        "github.com/acme/hub",
        f"{daemon.url.upper().replace('GIT:', 'git:')}/x.git",
    ):
        assert runner.invoke(main, ["trust", "add", entry]).exit_code == 0
    stored = json.loads((untrusting / "trusted.json").read_text())
    assert stored == {
        "version": 2,
        "trusted": [
            "github:https://github.com/acme/",
            "github:https://github.com/acme/hub",
            f"git:{daemon.url}/x.git",
        ],
    }


def test_registry_versions_in_every_spelling(untrusting, marker, tmp_path, monkeypatch) -> None:
    """A hubconf repository logged to the registry is trusted by name (every version), by
    digest (one version), or in the spelling the refusal suggests; an alias moves, so it
    cannot be trusted, and the error says what to write instead."""
    from hubcore import registry

    where = tmp_path / "reg"
    monkeypatch.setenv("HUBCORE_REGISTRY", str(where))
    folder = tmp_path / "hub"
    folder.mkdir()
    (folder / "hubconf.py").write_text(hubconf(marker))
    digest = registry.open(str(where)).log("team/det", folder, aliases=["prod"]).digest
    runner = CliRunner()
    load = ["load", "registry:team/det:prod", "version"]

    refused = runner.invoke(main, load)
    assert refused.exit_code == 1, refused.output
    suggested = refused.output.split("hubcore trust add ", 1)[1].split("`")[0]
    assert suggested == f"registry:{where.as_uri()}/team%2Fdet"
    for entry, pin in (
        (suggested, ""),
        ("registry:team/det", ""),
        (f"registry:team/det@sha256:{digest}", f"@{digest}"),
        (f"{suggested}@{digest}", f"@{digest}"),
    ):
        added = runner.invoke(main, ["trust", "add", entry])
        assert added.output == f"trusted {suggested}{pin}\n", (entry, added.output)
        loaded = runner.invoke(main, load)
        assert loaded.exit_code == 0, (entry, loaded.output)
        assert marker.exists()
        marker.unlink()
        assert runner.invoke(main, ["trust", "rm", entry]).output.startswith("removed ")
        assert runner.invoke(main, load).exit_code == 1
        monkeypatch.setenv("HUBCORE_TRUST", entry)
        assert runner.invoke(main, load).exit_code == 0, entry
        monkeypatch.delenv("HUBCORE_TRUST")
        marker.unlink()

    moving = runner.invoke(main, ["trust", "add", "registry:team/det:prod"])
    assert moving.exit_code == 1
    assert f"trust {suggested} for every snapshot" in moving.output
    assert "@sha256:<64 hex digits>" in moving.output


@pytest.mark.parametrize(
    "entry", ["git://h.example/x.git", "https://h.example/x.git", "https://h.example/hub.zip"]
)
def test_host_is_refused_where_the_entry_names_its_own(untrusting, entry) -> None:
    """--host names the server of GitHub/GitLab references; an entry that names its own host
    would silently ignore it, so the command is refused and nothing is stored."""
    result = CliRunner().invoke(main, ["trust", "add", "--host", "ghe.example", entry])
    assert result.exit_code == 1
    assert "--host ghe.example has no effect" in result.output
    assert not (untrusting / "trusted.json").exists()
    used = CliRunner().invoke(main, ["trust", "add", "--host", "ghe.example", "acme/models"])
    assert used.output == "trusted github:https://ghe.example/acme/models\n"


def test_a_pinned_entry_never_reads_as_another_urls_identity(untrusting, servers, marker) -> None:
    """`<identity>@<pin>` is how a pin is stored; an identity never holds a raw '@', so the
    pin of `hub.zip?v=1` cannot trust the URL `hub.zip?v=1@<that pin>`."""
    http_server, _, files = servers
    zip_sha = hashlib.sha256((files / "hub.zip").read_bytes()).hexdigest()
    base = f"{http_server.url}/files/hub.zip?v=1"
    stored = CliRunner().invoke(main, ["trust", "add", f"{base}#sha256={zip_sha}"]).output
    assert stored == f"trusted url:{base}@{zip_sha}\n"
    other = f"url:{base}@{zip_sha}"
    with pytest.raises(UntrustedRepoError, match="%40"):
        hubcore.load(other, "version")
    assert not marker.exists()


def test_the_cli_stores_what_the_entry_names(untrusting, marker, tmp_path, monkeypatch) -> None:
    """Each entry is normalized once: a registry in a folder whose name needs escaping in a
    URI, or a GitLab group under a path, is stored as `load` checks it."""
    from hubcore import registry

    where = tmp_path / "my reg@x"
    monkeypatch.setenv("HUBCORE_REGISTRY", str(where))
    folder = tmp_path / "hub"
    folder.mkdir()
    (folder / "hubconf.py").write_text(hubconf(marker))
    registry.open(str(where)).log("model", folder)
    runner = CliRunner()
    added = runner.invoke(main, ["trust", "add", "registry:model"])
    assert added.output == f"trusted registry:{where.as_uri()}/model\n"
    assert runner.invoke(main, ["load", "registry:model", "version"]).exit_code == 0
    again = runner.invoke(main, ["trust", "add", added.output.split()[-1]])
    assert again.output == added.output  # an identity reads back as itself
    group = ["trust", "add", "--host", "https://ex.example/gitlab", "gitlab:grp"]
    assert runner.invoke(main, group).output == "trusted gitlab:https://ex.example/gitlab/grp/\n"


def test_a_registry_url_with_credentials_names_every_version(untrusting) -> None:
    """The registry's URL may carry credentials (`s3://KEY:SECRET@bucket/...`): the name
    alone still means every version, and nothing secret is stored."""
    from hubcore.policy import trust

    assert trust.normalize_entry("registry:s3://KEY:S3CRET@bkt/reg/model") == (
        "registry:s3://bkt/reg/model"
    )
    with pytest.raises(InvalidReferenceError, match="not 'prod'"):
        trust.normalize_entry("registry:s3://KEY:S3CRET@bkt/reg/model:prod")
