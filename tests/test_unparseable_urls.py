"""URLs urllib cannot parse (an unclosed IPv6 ``[``), malformed hashes and fsspec URLs whose
filesystem cannot be made end in a HubError naming the input, never urllib's ValueError."""

from __future__ import annotations

import pytest

import hubcore
from hubcore import config
from hubcore.errors import (
    ConfigError,
    DownloadError,
    IntegrityError,
    InvalidArgumentError,
    InvalidReferenceError,
)
from hubcore.sources import canonical_url, identify
from hubcore.store import transfer
from hubcore.store.redaction import redact


def test_the_redactor_survives_what_urllib_cannot_parse() -> None:
    shown = redact("failed: http://user:tok3n@[::1/x?sig=s3cret#frag and more")
    assert shown == "failed: http://[::1/x and more"


@pytest.mark.parametrize(
    ("reference", "options"),
    [
        ("http://[::1/x.git", {}),
        ("github:https://[::1/acme/x", {}),
        ("gitlab:https://[::1/group/x", {}),
        ("acme/x", {"host": "http://[::1"}),
        ("https://[::1/a.zip", {}),
    ],
)
def test_unparseable_reference_is_an_invalid_reference(hub_home, reference, options) -> None:
    with pytest.raises(InvalidReferenceError, match="not a valid"):
        identify(reference, **options)


def test_canonical_url_of_an_unparseable_url() -> None:
    with pytest.raises(InvalidReferenceError, match=r"Invalid IPv6 URL"):
        canonical_url("https://[::1/x")


def test_trust_entry_with_an_unparseable_url(hub_home) -> None:
    from hubcore.policy import trust  # imported where used, as hubcore itself does

    with pytest.raises(InvalidReferenceError, match="not a valid URL"):
        trust.add("github:https://[::1/x")


@pytest.mark.parametrize(
    "mirrors",
    [
        "http://[::1=http://x",
        "http://a/=http://[::1/",
        "http://a/=http://b:port/",
        "https:///w/=http://b/",  # no host: every fetch would be refused, not only this one's
        "http://a/=https:///mirror/",
    ],
)
def test_unparseable_mirror_in_the_environment(hub_home, monkeypatch, mirrors) -> None:
    monkeypatch.setenv("HUBCORE_MIRRORS", mirrors)
    with pytest.raises(ConfigError, match="HUBCORE_MIRRORS"):
        config.mirrors()
    with pytest.raises(ConfigError, match="HUBCORE_MIRRORS"):
        hubcore.download("http://127.0.0.1:9/w.bin")


def test_unparseable_mirror_in_the_config_file(hub_home, tmp_path, monkeypatch) -> None:
    path = tmp_path / "unparseable-mirror.toml"
    path.write_text('[mirrors]\n"https://[::1/" = "https://mirror.example/"\n')
    monkeypatch.setenv("HUBCORE_CONFIG", str(path))
    with pytest.raises(ConfigError, match=r"unparseable-mirror\.toml"):
        config.mirrors()


def test_unparseable_download_url(hub_home) -> None:
    with pytest.raises(DownloadError, match=r"http://\[::1/w\.bin.*not a valid URL"):
        hubcore.download("http://[::1/w.bin")


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"sha256": "zz"}, "sha256"),
        ({"sha256": "a" * 63}, "sha256"),
        ({"sha256": "a" * 64 + "\n"}, "sha256"),
        ({"sha256_prefix": "xyz"}, "sha256_prefix"),
        ({"sha256_prefix": "a" * 65}, "sha256_prefix"),
    ],
)
def test_malformed_hash_arguments(hub_home, tmp_path, options, argument) -> None:
    src = tmp_path / "w.bin"
    src.write_bytes(b"weights")
    with pytest.raises(InvalidArgumentError, match=f"^{argument}="):
        transfer.fetch(str(src), **options)
    assert not [p for p in hub_home.glob("blobs/**/*") if p.is_file()]


def test_uppercase_hashes_are_hex_too(hub_home, tmp_path) -> None:
    src = tmp_path / "w.bin"
    src.write_bytes(b"weights")
    digest = hubcore.file_sha256(src)
    assert transfer.fetch(str(src), sha256=digest.upper()).sha256 == digest
    other = tmp_path / "other.bin"
    other.write_bytes(b"other weights")
    upper = hubcore.file_sha256(other)[:8].upper()
    if upper.isdigit():
        pytest.skip("the prefix has no letters")
    with pytest.raises(IntegrityError):  # torch.hub compares prefixes case-sensitively
        transfer.fetch(str(other), sha256_prefix=upper)


def test_fsspec_filesystems_that_cannot_be_made(hub_home, tmp_path) -> None:
    plain = tmp_path / "not-a-tar.txt"
    plain.write_text("plain text, not a tar archive\n" * 100)
    # tarfile's ReadError, and a TypeError for a filesystem that needs more arguments
    for url in (f"tar://a::{plain.as_uri()}", "reference://x"):
        with pytest.raises(DownloadError, match="cannot open"):
            hubcore.download(url)


def test_chained_fsspec_urls_still_work(hub_home, tmp_path) -> None:
    import tarfile

    weights = tmp_path / "w.bin"
    weights.write_bytes(b"inside a tar")
    archive = tmp_path / "w.tar"
    with tarfile.open(archive, "w") as tf:
        tf.add(weights, "w.bin")
    assert hubcore.download(f"tar://w.bin::{archive.as_uri()}").read_bytes() == b"inside a tar"
