"""megengine.hub's ``repo_info``, ``git_host`` and ``protocol`` as the compat layer reads them:
never a local path taken for a remote repository, never a malformed host pasted into a URL."""

from __future__ import annotations

import pytest

import hubcore
from hubcore.errors import InvalidReferenceError
from hubcore_megengine import hub as megengine_hub

PATHS = [
    "/tmp/x",
    "/tmp/x/",
    "/x",
    "~/models/hub",
    "./hub",
    "../hub",
    ".",
    "..",
    "C:\\models\\hub",
    "C:/models/hub",
    "models\\hub",
]


@pytest.mark.parametrize("path", PATHS)
def test_a_local_path_is_refused_not_fetched(path, hub_home, monkeypatch) -> None:
    def no_network(*args, **kwargs):
        raise AssertionError("a local path must never reach a source")

    monkeypatch.setattr(hubcore.api, "open_locked", no_network)
    for call in (
        lambda: megengine_hub.list(path),
        lambda: megengine_hub.help(path, "entry"),
        lambda: megengine_hub.load(path, "entry"),
        lambda: megengine_hub.import_module(path),
    ):
        with pytest.raises(InvalidReferenceError, match=r"hubcore\.load") as info:
            call()
        assert repr(path) in str(info.value)


def test_a_real_local_repository_is_refused_with_the_way_to_load_it(
    hub_home, make_hub_repo
) -> None:
    repo = make_hub_repo({"hubconf.py": "def m():\n    return 1\n"})
    with pytest.raises(InvalidReferenceError, match="local folder") as info:
        megengine_hub.list(str(repo))
    assert "hubcore.load" in str(info.value)
    assert hubcore.load(str(repo), "m") == 1  # the way the message points to


@pytest.mark.parametrize(
    "repo_info",
    [
        "a/b:c:d",  # megengine.hub: one ':' at most
        "a/b/",  # megengine.hub: exactly owner/repo
        "/b",
        "a//b",
        "a/b:",  # an empty branch
        "a/./b",
        "a/b c",
        "a/b?x=1",
        "a/b#frag",
        "a@b/c",
        "a/b/c",  # GitHub has no subgroups (other hosts may, see test_compat)
        "",
    ],
)
def test_malformed_repo_info_is_refused(repo_info) -> None:
    with pytest.raises(InvalidReferenceError, match="owner/repo"):
        megengine_hub.reference(repo_info, "github.com", "HTTPS")


@pytest.mark.parametrize(
    ("git_host", "protocol"),
    [
        ("github.com/evil", "HTTPS"),  # a path smuggled into a host name
        ("user@github.com", "HTTPS"),
        ("git hub.com", "HTTPS"),
        ("file:///srv/git", "HTTPS"),  # a local folder as a host
        ("ftp://git.example.com", "HTTPS"),
        ("https://git.example.com/base?x=1", "HTTPS"),
        ("https://", "HTTPS"),
        ("git.example.com:99999", "HTTPS"),
        ("999.1.1.1", "HTTPS"),
        ("10.0.0", "HTTPS"),
        ("https://git.example.com", "SSH"),
        ("git.example.com/base", "SSH"),
        ("-oProxyCommand=evil", "SSH"),
        ("  ", "HTTPS"),
    ],
)
def test_malformed_git_host_is_refused(git_host, protocol) -> None:
    with pytest.raises(InvalidReferenceError, match="git_host"):
        megengine_hub.reference("a/b", git_host, protocol)


def test_wrong_types_are_refused_with_typed_errors() -> None:
    for args in [(None, "github.com", "HTTPS"), ("a/b", None, "HTTPS"), ("a/b", "x.com", None)]:
        with pytest.raises(InvalidReferenceError):
            megengine_hub.reference(*args)  # type: ignore[arg-type]


def test_well_formed_references() -> None:
    ref = megengine_hub.reference
    assert ref("a/b", "github.com", "HTTPS") == ("github:a/b", None)
    assert ref("Owner-1/repo_2.x:feature/y", "GitHub.com", "HTTPS") == (
        "github:Owner-1/repo_2.x",
        "feature/y",
    )
    assert ref("a/b", "git.example.com:8443", "HTTPS") == (
        "git+https://git.example.com:8443/a/b.git",
        None,
    )
    assert ref("a/b", "10.0.0.1", "SSH") == ("git+ssh://git@10.0.0.1/a/b.git", None)
    assert ref("a/b", "git.example.com:2222", "SSH") == (
        "git+ssh://git@git.example.com:2222/a/b.git",
        None,
    )
    assert ref("a/b", "https://git.example.com/base/", "HTTPS") == (
        "git+https://git.example.com/base/a/b.git",
        None,
    )
