"""Deletions racing a log, and a ``latest`` pointer left on a deleted version (folder and S3):
a log never returns a deleted version, and ``latest`` never names one."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import hubcore.registry as registry
from hubcore.registry.core import alias_key, digest_key

from . import test_registry as base

make_files = base.make_files
reg_url = base.reg_url  # the fixture: a folder and an S3 bucket


class Interrupted:
    """A store that runs *then* once, right after the first *operation* on a key containing
    *marker* (another writer acting at that moment), and counts uploads."""

    def __init__(self, inner: Any, operation: str, marker: str, then: Callable[[], None]):
        self.inner, self.operation, self.marker, self.then = inner, operation, marker, then
        self.fired = False
        self.uploads: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not callable(attribute) or name not in (self.operation, "upload"):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            if name == "upload":
                self.uploads.append(str(args[1]))
            key = str(args[0])
            if name == self.operation and self.marker in key and not self.fired:
                self.fired = True
                self.then()
            return result

        return call


def _deleter(reg_url: str, spec: str, collect: bool) -> Callable[[], None]:
    """Another writer deleting *spec* (and, when *collect*, removing its files at once, as a
    gc with no grace period would)."""

    def act() -> None:
        other = registry.open(reg_url)
        other.delete(spec)
        if collect:
            report = other.gc(grace=0)
            assert report["blobs"] == 1
            assert report["manifests"] == 1

    return act


def _assert_live_and_kept(reg: registry.Registry, version: registry.Version, text: str) -> None:
    """*version* is live, is ``latest``, holds *text*, and logging *text* again returns it."""
    assert reg.get(f"clf:v{version.number}").digest == version.digest  # raises if deleted
    assert reg.get("clf").number == version.number
    assert reg.aliases("clf")["latest"] == version.number
    folder = reg.get("clf").download()
    assert (folder / "w").read_text() == text


@pytest.mark.parametrize("collect", [False, True], ids=["files-kept", "files-collected-alias"])
@pytest.mark.parametrize(
    ("operation", "step"),
    [("create", "versions/"), ("create", "digests/"), ("swap", "aliases/latest")],
    ids=["after-number", "after-digest-claim", "after-latest"],
)
def test_a_new_version_deleted_while_it_is_logged_is_logged_again(
    reg_url: str, tmp_path: Path, operation: str, step: str, collect: bool
) -> None:
    """Another writer deletes the version a log is making, after its number is taken: the log
    makes the content a new version (uploading its files again only if they were removed)
    and returns that, never the deleted one; logging the content again returns it too."""
    reg = registry.open(reg_url)
    reg.log("clf", make_files(tmp_path / "s0", {"w": "0"}))
    store = Interrupted(reg.store, operation, step, _deleter(reg_url, "clf:v1", collect))
    reg.store = store
    aliases = ["staging"] if collect else []
    version = reg.log("clf", make_files(tmp_path / "s1", {"w": "1"}), aliases=aliases)
    assert store.fired
    assert version.number == 2
    assert [v.number for v in reg.versions("clf")] == [0, 2]
    if aliases:
        assert reg.get("clf:staging").number == 2
    # the files went up once; again only when gc removed them meanwhile
    assert len(store.uploads) == (2 if collect else 1)
    _assert_live_and_kept(reg, version, "1")
    store.uploads.clear()
    assert reg.log("clf", make_files(tmp_path / "again", {"w": "1"})).number == 2
    assert store.uploads == []


@pytest.mark.parametrize("collect", [False, True], ids=["files-kept", "files-collected"])
@pytest.mark.parametrize("aliases", [[], ["staging"]], ids=["no-alias", "alias"])
def test_an_existing_version_deleted_while_its_content_is_logged_again(
    reg_url: str, tmp_path: Path, aliases: list[str], collect: bool
) -> None:
    """Logging content an existing version holds returns that version; if another writer
    deletes it meanwhile, the log makes the content a new version instead of returning the
    deleted one (or failing to set the alias on it)."""
    reg = registry.open(reg_url)
    reg.log("clf", make_files(tmp_path / "s0", {"w": "0"}))
    # the last step of finding an existing version: its log event is checked
    store = Interrupted(reg.store, "info", "/events/", _deleter(reg_url, "clf:v0", collect))
    reg.store = store
    version = reg.log("clf", make_files(tmp_path / "again", {"w": "0"}), aliases=aliases)
    assert store.fired
    assert version.number == 1
    assert len(store.uploads) == (1 if collect else 0)
    _assert_live_and_kept(reg, version, "0")
    if aliases:
        assert reg.get("clf:staging").number == 1


def test_a_log_keeps_losing_to_deleters_and_says_so(
    reg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log whose version is deleted every time it is made gives up with a typed error that
    says what happened and to retry."""
    reg = registry.open(reg_url)
    deleter = registry.open(reg_url)
    original = registry.Registry._advance_latest

    def advance(self: registry.Registry, name: str, number: int, digest: str) -> None:
        original(self, name, number, digest)
        if self is reg:
            deleter.delete(f"{name}:v{number}")

    monkeypatch.setattr(registry.Registry, "_advance_latest", advance)
    with pytest.raises(registry.DeletedConcurrentlyError, match="deleted by another writer") as e:
        reg.log("clf", make_files(tmp_path / "s0", {"w": "0"}))
    assert isinstance(e.value, registry.ConflictError)  # what callers retry on
    assert "log it again" in str(e.value)


def _write(reg: registry.Registry, key: str, data: dict[str, Any]) -> None:
    """Write *key* directly into the layout, as an older build or outside writer would."""
    body = json.dumps(data).encode()
    try:
        _, tag = reg.store.read(key)
    except FileNotFoundError:
        assert reg.store.create(key, body)
        return
    assert reg.store.swap(key, body, tag)


@pytest.mark.parametrize("entry", ["absent", "kept"])
def test_a_deleted_versions_digest_claim_never_makes_a_log_return_it(
    reg_url: str, tmp_path: Path, entry: str
) -> None:
    """A deleted version left holding its content's digest index entry (its deleter died
    before freeing it), or left unindexed (its writer died before claiming it) with a stale
    ``latest`` on it: logging the same content again makes a new, live version."""
    reg = registry.open(reg_url)
    first = reg.log("clf", make_files(tmp_path / "s0", {"w": "0"}))
    reg.delete("clf:v0")
    if entry == "absent":
        reg.store.delete(digest_key("clf", first.digest))
    else:
        _write(reg, digest_key("clf", first.digest), {"version": 0})
    _write(reg, alias_key("clf", "latest"), {"alias": "latest", "version": 0})
    version = reg.log("clf", make_files(tmp_path / "again", {"w": "0"}))
    assert version.number == 1
    _assert_live_and_kept(reg, version, "0")
    assert reg.get(f"clf@sha256:{first.digest}").number == 1


@pytest.mark.parametrize("digest", [True, False], ids=["pointer", "older-pointer"])
def test_a_stale_latest_on_a_deleted_version_is_resolved_and_repaired(
    reg_url: str, tmp_path: Path, digest: bool
) -> None:
    """``latest`` written by an older build or a crashed writer onto a deleted version: reads
    resolve the newest live version (never the deleted one), and the pointer is repaired by
    compare-and-swap."""
    reg = registry.open(reg_url)
    for n in range(3):
        reg.log("clf", make_files(tmp_path / f"s{n}", {"w": str(n)}))
    dead = reg.get("clf:v2")
    reg.delete("clf:v2")
    stale: dict[str, Any] = {"alias": "latest", "version": 2}
    if digest:
        stale["digest"] = dead.digest
    _write(reg, alias_key("clf", "latest"), stale)
    assert reg.get("clf:latest").number == 1
    assert reg.get("clf").number == 1
    assert reg.resolve("clf:latest")[0] == 1
    assert reg.aliases("clf")["latest"] == 1
    assert "latest" in reg.get("clf:v1").aliases
    pointer = json.loads(reg.store.read(alias_key("clf", "latest"))[0])
    assert (pointer["version"], pointer["digest"]) == (1, reg.get("clf:v1").digest)
    # the next log takes the next number, and latest follows it
    assert reg.log("clf", make_files(tmp_path / "s3", {"w": "3"})).number == 3
    assert reg.get("clf").number == 3


def test_a_stale_latest_with_no_live_version_left_is_a_clear_error(
    reg_url: str, tmp_path: Path
) -> None:
    """Every version deleted and ``latest`` left on one: no version is returned, and the error
    says none is live."""
    reg = registry.open(reg_url)
    reg.log("clf", make_files(tmp_path / "s0", {"w": "0"}))
    reg.log("clf", make_files(tmp_path / "s1", {"w": "1"}))
    reg.delete("clf:v0")
    reg.delete("clf:v1")
    _write(reg, alias_key("clf", "latest"), {"alias": "latest", "version": 1})
    for spec in ("clf", "clf:latest"):
        with pytest.raises(registry.VersionNotFoundError, match="no live version"):
            reg.get(spec)
    assert "latest" not in reg.aliases("clf")
    pointer = json.loads(reg.store.read(alias_key("clf", "latest"))[0])
    assert pointer["version"] is None
    assert reg.log("clf", make_files(tmp_path / "s2", {"w": "2"})).number == 2
