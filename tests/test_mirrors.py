"""Mirror rewriting parses URLs: scheme, host, port and whole path segments must match, dot
segments are resolved first, and a rewritten URL never leaves the mirror's origin or path."""

from __future__ import annotations

import pytest

import hubcore
from hubcore import config
from hubcore.errors import DownloadError

from .fileserver import FileServer


@pytest.fixture
def mirrors(hub_home, monkeypatch):
    """Set ``HUBCORE_MIRRORS`` from a dict."""

    def set_mirrors(table: dict[str, str]) -> None:
        monkeypatch.setenv("HUBCORE_MIRRORS", ";".join(f"{k}={v}" for k, v in table.items()))

    return set_mirrors


@pytest.mark.parametrize(
    ("prefix", "replacement", "url", "expected"),
    [
        # the usual cases
        (
            "https://github.com/",
            "https://git.corp/github/",
            "https://github.com/acme/hub/archive/main.zip",
            "https://git.corp/github/acme/hub/archive/main.zip",
        ),
        (
            "https://github.com",
            "https://git.corp/github",
            "https://github.com/acme/hub",
            "https://git.corp/github/acme/hub",
        ),
        (
            "https://example.org/weights/",
            "s3://weights-mirror/",
            "https://example.org/weights/a/b.pth",
            "s3://weights-mirror/a/b.pth",
        ),
        (
            "https://example.org/weights",
            "s3://weights-mirror/models",
            "https://example.org/weights/b.pth",
            "s3://weights-mirror/models/b.pth",
        ),
        (
            "https://example.org/",
            "https://mirror.corp/m/",
            "https://example.org/x.pth?sha=abc#frag",
            "https://mirror.corp/m/x.pth?sha=abc#frag",
        ),
        # host names are case-insensitive, default ports are implied
        (
            "https://Example.ORG:443/",
            "https://mirror.corp/",
            "https://example.org/x.pth",
            "https://mirror.corp/x.pth",
        ),
        # dot segments that stay inside the prefix are resolved, then rewritten
        (
            "https://example.org/models/",
            "https://mirror.corp/m/",
            "https://example.org/models/a/../b.pth",
            "https://mirror.corp/m/b.pth",
        ),
    ],
)
def test_rewrites(mirrors, prefix, replacement, url, expected) -> None:
    mirrors({prefix: replacement})
    assert config.rewrite_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com.evil.example/acme/hub",  # a longer host name
        "https://github.com:8443/acme/hub",  # another port
        "http://github.com/acme/hub",  # another scheme
        "https://github.community/x",
    ],
)
def test_prefix_matches_the_whole_host(mirrors, url) -> None:
    mirrors({"https://github.com": "https://git.corp/github"})
    assert config.rewrite_url(url) == url


def test_prefix_matches_whole_path_segments(mirrors) -> None:
    mirrors({"https://example.org/weights": "https://mirror.corp/w/"})
    assert config.rewrite_url("https://example.org/weightsX/a.pth") == (
        "https://example.org/weightsX/a.pth"
    )
    assert config.rewrite_url("https://example.org/weights") == "https://mirror.corp/w"


def test_longest_prefix_wins(mirrors) -> None:
    mirrors(
        {
            "https://example.org/": "https://general.corp/",
            "https://example.org/weights/": "https://weights.corp/",
        }
    )
    assert config.rewrite_url("https://example.org/weights/a") == "https://weights.corp/a"
    assert config.rewrite_url("https://example.org/code/a") == "https://general.corp/code/a"


def test_dot_segments_cannot_leave_the_prefix(mirrors) -> None:
    mirrors({"https://example.org/models/": "https://mirror.corp/m/"})
    for url in (
        "https://example.org/models/../zip/x.pth",
        "https://example.org/models/%2e%2e/zip/x.pth",
        "https://example.org/models/a/../../zip/x.pth",
    ):
        rewritten = config.rewrite_url(url)
        assert not rewritten.startswith("https://mirror.corp"), rewritten


def test_user_info_in_the_url_cannot_pick_the_host(mirrors) -> None:
    mirrors({"https://download.example.org/": "https://mirror.corp"})
    assert config.rewrite_url("https://download.example.org/@evil.example/x.pth") == (
        "https://mirror.corp/@evil.example/x.pth"
    )


def test_url_credentials_do_not_travel_to_another_origin(mirrors) -> None:
    mirrors({"https://example.org/": "https://mirror.corp/"})
    assert config.rewrite_url("https://u:p@example.org/x") == "https://mirror.corp/x"


# -- against loopback servers ---------------------------------------------------------------------


def test_mirror_never_receives_a_path_outside_its_prefix(mirrors, file_server) -> None:
    mirrors({"https://download.example.org/": f"{file_server.url}/mirror/weights/"})
    with pytest.raises(DownloadError):
        hubcore.download("https://download.example.org/../../zip/x.pth")
    paths = [path for path, _ in file_server.requests()]
    assert paths
    assert all(path.startswith("/mirror/weights/") for path in paths), paths


def test_replacement_without_slash_keeps_its_host(mirrors, file_server, tmp_path) -> None:
    other = FileServer(tmp_path / "other").start()
    try:
        other.add("x.pth", b"evil")
        mirrors({"https://download.example.org/": file_server.url})
        with pytest.raises(DownloadError):
            hubcore.download(f"https://download.example.org/@127.0.0.1:{other.port}/x.pth")
        assert not other.log, "the URL chose the host"
        assert [p for p, _ in file_server.requests()] == [f"/@127.0.0.1:{other.port}/x.pth"]
    finally:
        other.stop()


def test_encoded_separators_cannot_leave_a_file_mirror(mirrors, tmp_path) -> None:
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "key.txt").write_text("TOP SECRET")
    mirror = tmp_path / "srv" / "mirror"
    mirror.mkdir(parents=True)
    mirrors({"https://download.example.org/weights/": mirror.as_uri() + "/"})
    url = "https://download.example.org/weights/..%2f..%2fsecret%2fkey.txt"
    with pytest.raises(DownloadError, match="encoded"):
        config.rewrite_url(url)
