"""Reference parsing and the local source."""

from __future__ import annotations

from pathlib import Path

import pytest

import hubcore
from hubcore.errors import InvalidReferenceError, RepoNotFoundError, UnknownSourceError
from hubcore.plugins import get_plugins
from hubcore.sources import parse_reference


def parse(text: str, **kw):
    return parse_reference(text, get_plugins().sources, **kw)


@pytest.mark.parametrize("form", ["{p}", "local:{p}", "file://{p}"])
def test_local_forms(hub_home, tmp_path: Path, form: str) -> None:
    ref = parse(form.format(p=tmp_path))
    assert ref.source == "local"
    assert ref.repo == str(tmp_path)


@pytest.mark.parametrize("path", ["/ab/cd", "/ab/cd/", "//ab/cd", "/ab/cd@v1", "/ab/cd:main"])
def test_absolute_paths_of_two_parts_are_never_github(hub_home, path: str) -> None:
    """torch.hub's ``owner/repo`` form has no leading slash: ``/tmp/unet`` is a folder."""
    assert parse(path).source == "local"


def test_relative_and_home_paths(hub_home, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hub").mkdir()
    assert parse("./hub").repo == str(tmp_path / "hub")
    assert parse("hub").repo == str(tmp_path / "hub")  # an existing folder
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse("~/hub").repo == str(tmp_path / "hub")


def test_forced_source(hub_home) -> None:
    assert parse("owner/repo", source="local").source == "local"
    with pytest.raises(UnknownSourceError, match="no source named 'nope'"):
        parse("x", source="nope")


@pytest.mark.parametrize(
    "bad", ["", "   ", "no such thing!", "file://otherhost/x", "github:onlyowner", "gitlab:x"]
)
def test_malformed_references(hub_home, bad: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        parse(bad)
    message = str(info.value)
    if bad.startswith(("github:", "gitlab:")):
        assert "expected" in message  # the forms of the named source
    elif bad.strip() and "://" not in bad:
        assert "Accepted forms" in message


def test_file_is_not_a_repo(hub_home, tmp_path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(RepoNotFoundError, match="is a file"):
        hubcore.list(str(tmp_path / "f"))


def test_home_precedence(tmp_path, monkeypatch) -> None:
    from hubcore import config

    monkeypatch.delenv("HUBCORE_HOME", raising=False)
    assert "hubcore" in str(config.get_dir())
    monkeypatch.setenv("HUBCORE_HOME", str(tmp_path / "env"))
    assert config.get_dir() == tmp_path / "env"
    hubcore.set_dir(tmp_path / "api")
    try:
        assert hubcore.get_dir() == tmp_path / "api"
    finally:
        hubcore.set_dir(None)
    assert config.get_dir() == tmp_path / "env"


# -- identities and claims ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spellings", "options", "identity"),
    [
        (
            [
                "acme/models:main",
                "github:acme/models@main",
                "Acme/Models@main",
                "github:github.com/acme/models@main",
                "github:https://github.com/acme/models.git@main",
            ],
            {},
            "github:https://github.com/acme/models",
        ),
        (
            [
                "acme/models:main",
                "github:ghe.example/acme/models@main",
                "github:https://ghe.example:443/acme/models@main",
            ],
            {"host": "ghe.example"},
            "github:https://ghe.example/acme/models",
        ),
        (
            ["gitlab:group/sub/repo@main", "gitlab:https://gl.example:8443/group/sub/repo@main"],
            {"host": "https://gl.example:8443/"},
            "gitlab:https://gl.example:8443/group/sub/repo",
        ),
        (
            [
                "git+ssh://git@Host:2222/path/repo.git@main",
                "git:ssh://host:2222/path/repo.git@main",
            ],
            {},
            "git:ssh://host:2222/path/repo.git",
        ),
        (
            [
                "git+https://u:t0k@host/x/repo.git@main",
                "https://host:443/x/repo.git@main",
                "git:https://host/x/repo.git@main",
            ],
            {},
            "git:https://host/x/repo.git",
        ),
    ],
)
def test_one_identity_for_every_spelling(hub_home, spellings, options, identity) -> None:
    from hubcore.sources import identify

    for text in spellings:
        assert identify(text, **options) == (identity, "main"), text
        again = parse(identity, options=options)  # an identity is itself a reference
        assert again.identity == identity


def test_identities_hold_no_credentials_query_or_revision(hub_home) -> None:
    from hubcore.sources import identify

    pin = "a" * 64
    assert identify(f"https://u:s3cret@host/a.zip?token=s3cret#sha256={pin}") == (
        "url:https://host/a.zip",
        pin,
    )
    assert identify("github:https://x:s3cret@ghe.example/acme/models")[0] == (
        "github:https://ghe.example/acme/models"
    )
    ref = parse("github:https://x:s3cret@ghe.example/acme/models")
    assert ref.options["token"] == "s3cret"  # used as the token, not part of the identity


def test_an_archive_query_that_names_the_file_is_part_of_its_identity(hub_home) -> None:
    """`hub.zip?version=1` and `?version=2` are two archives: trusting one must not trust the
    other. Parameters that carry credentials (signatures, tokens) are still dropped, so the
    presigned URLs of one object share one identity."""
    from hubcore.sources import identify

    one = identify("https://host/hub.zip?version=1&X-Amz-Signature=abc&X-Amz-Credential=k")[0]
    assert one == "url:https://host/hub.zip?version=1"
    assert (
        identify("https://host/hub.zip?version=2&sig=zz")[0] == "url:https://host/hub.zip?version=2"
    )
    assert identify("https://host/hub.zip?token=s3cret")[0] == "url:https://host/hub.zip"
    assert identify("https://host/hub.zip?v=1;token=s3cret;jwt=x")[0] == (
        "url:https://host/hub.zip?v=1"
    )
    old_style = "https://host/hub.zip?AWSAccessKeyId=K&Expires=1700000000&Signature=S"
    assert identify(old_style)[0] == "url:https://host/hub.zip"


def test_hosts_and_endpoints_are_part_of_identities(hub_home) -> None:
    from hubcore.sources import identify

    assert identify("acme/models")[0] != identify("acme/models", host="ghe.other.example")[0]
    aws = identify("s3://bucket/hub/")[0]
    minio = identify("s3://bucket/hub", storage_options={"endpoint_url": "http://127.0.0.1:9"})
    assert aws == "fsspec:s3://bucket/hub"
    assert minio[0] == "fsspec:s3+http://127.0.0.1:9/bucket/hub"
    ref = parse(minio[0])  # the endpoint spelling is a reference too
    assert ref.repo == "s3://bucket/hub"
    assert ref.options["storage_options"] == {"endpoint_url": "http://127.0.0.1:9"}


def test_cache_folders_follow_the_identity(hub_home, tmp_path) -> None:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("hubconf.py", "def f():\n    return 1\n")
    archive = tmp_path / "hub.zip"
    archive.write_bytes(buffer.getvalue())
    snapshot = hubcore.open_repo(f"file://{archive}")
    assert snapshot.ref.identity == f"url:file://{archive}"
    repo_dir = snapshot.root.parent.parent
    assert repo_dir == hub_home / "repos" / "url" / "file%3A" / "%" / Path(*archive.parts[1:])


def test_archive_file_urls_go_to_the_archive_source(hub_home) -> None:
    assert parse("file:///x/hub.zip").source == "url"
    assert parse("file:///x/hub").source == "local"


def test_a_folder_does_not_shadow_a_github_reference(
    hub_home, tmp_path, monkeypatch, caplog
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "acme" / "models").mkdir(parents=True)
    assert parse("acme/models").source == "github"
    assert "./acme/models" in caplog.text or "local:acme/models" in caplog.text
    assert parse("./acme/models").source == "local"
    assert parse("local:acme/models").source == "local"
    assert parse("acme/models", source="local").source == "local"


class _Declared:
    """A third-party source without claim(): it claims what it parses."""

    name = "hf"
    forms = ("hf://owner/repo",)

    def parse(self, text, options):
        from hubcore.sources import RepoRef

        return RepoRef(self.name, text[5:], text=text) if text.startswith("hf://") else None

    def open(self, ref, ctx):
        raise NotImplementedError


def test_a_declared_protocol_beats_the_generic_folder_source(hub_home) -> None:
    sources = dict(get_plugins().sources)
    sources["hf"] = _Declared()  # registered last
    ref = parse_reference("hf://acme/models", sources)
    assert ref.source == "hf"
    assert ref.identity == "hf:acme/models"


def test_unknown_protocols_are_a_clear_error(hub_home, monkeypatch) -> None:
    import fsspec

    known = [p for p in fsspec.available_protocols() if p != "hf"]
    monkeypatch.setattr(fsspec, "available_protocols", lambda: known)
    with pytest.raises(InvalidReferenceError, match="no installed source handles hf://"):
        parse("hf://acme/models")
    with pytest.raises(InvalidReferenceError, match="knows no folder protocol 'hf'"):
        parse("fsspec:hf://acme/models")


def test_equally_specific_claims_are_ambiguous(hub_home) -> None:
    sources = dict(get_plugins().sources)
    other = _Declared()
    other.name = "hf2"
    sources["hf"], sources["hf2"] = _Declared(), other
    with pytest.raises(InvalidReferenceError, match=r"ambiguous.*hf:hf://x/y or hf2:hf://x/y"):
        parse_reference("hf://x/y", sources)


def test_every_fetching_source_shares_the_remote_flow(hub_home) -> None:
    """Offline, cache, publish and the recorded resolution have one owner: every source that
    fetches is a RemoteSource (only the local folder source opens in place)."""
    from hubcore.sources.remote import RemoteSource

    sources = get_plugins().sources
    for name in ("git", "github", "gitlab", "url", "fsspec"):
        assert isinstance(sources[name], RemoteSource), name
    assert not isinstance(sources["local"], RemoteSource)
