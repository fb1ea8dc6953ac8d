"""The registry through its API, its CLI and as a source, on a local folder and on S3 (moto)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import hubcore
import hubcore.registry as registry
from hubcore.cli import main
from hubcore.errors import IntegrityError, OfflineError
from hubcore.registry.core import blob_key, manifest_key
from hubcore.registry.names import parse_spec


@pytest.fixture(params=["local", "s3"])
def reg_url(request: pytest.FixtureRequest, hub_home: Path, tmp_path: Path) -> str:
    """A fresh registry URL on each backend (with a fresh hub home)."""
    if request.param == "s3":
        bucket = request.getfixturevalue("s3_bucket")
        return f"s3://{bucket}/registry"
    return str(tmp_path / "registry")


@pytest.fixture
def reg(reg_url: str) -> registry.Registry:
    return registry.open(reg_url)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every storage request the registry makes (S3 calls; reads and probes on folders)."""
    calls: list[str] = []
    from hubcore.registry import store

    for method in ("read", "info", "create", "swap", "delete", "download", "upload"):
        for cls in (store.LocalStore, store.S3Store):
            original = getattr(cls, method)

            def wrapper(
                self: Any, *args: Any, _o: Any = original, _m: str = method, **kw: Any
            ) -> Any:
                calls.append(f"{_m} {args[0] if args else ''}")
                return _o(self, *args, **kw)

            monkeypatch.setattr(cls, method, wrapper)
    for cls in (store.LocalStore, store.S3Store):
        original_list = cls.objects

        def listing(self: Any, prefix: str, *a: Any, _o: Any = original_list, **kw: Any) -> Any:
            calls.append(f"list {prefix}")
            return _o(self, prefix, *a, **kw)

        monkeypatch.setattr(cls, "objects", listing)
    return calls


def make_files(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


# -- names --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "",
        "a/../b",
        "a//b",
        "/a",
        "a/",
        ".hidden",
        "x" * 101,
        "a:b:c",
        "bad%name",
        "a@sha256:zz",
        "a:latest/x",
        "a: b",
    ],
)
def test_bad_names_are_refused_with_a_clear_error(text: str) -> None:
    with pytest.raises(registry.InvalidNameError):
        parse_spec(text)


def test_specs_parse() -> None:
    assert parse_spec("team/clf").alias == "latest"
    assert parse_spec("Image Classifier:production").alias == "production"
    assert parse_spec("clf:v12").number == 12
    assert parse_spec("clf@sha256:" + "a" * 64).digest == "a" * 64


def test_user_may_not_set_latest_or_a_version_like_alias(
    reg: registry.Registry, tmp_path: Path
) -> None:
    reg.log("clf", make_files(tmp_path / "a", {"w": "1"}))
    for alias in ("latest", "v3", "sha256x"):
        with pytest.raises(registry.InvalidNameError):
            reg.alias("clf:v0", alias)


# -- log, get, aliases, history --------------------------------------------------------------------
def test_log_get_alias_history_update_diff(reg: registry.Registry, tmp_path: Path) -> None:
    src = make_files(tmp_path / "a", {"weights.bin": "w0", "config.json": "{}", "sub/x": "x"})
    v0 = reg.log("team/clf", src, metadata={"acc": 0.5}, aliases=["staging"], description="first")
    assert (v0.number, v0.aliases) == (0, ["latest", "staging"])
    assert [f.path for f in v0.files] == ["config.json", "sub/x", "weights.bin"]

    (src / "weights.bin").write_text("w1")
    v1 = reg.log("team/clf", src, metadata={"acc": 0.7})
    assert v1.number == 1
    assert v1.digest != v0.digest
    assert reg.get("team/clf").number == 1
    assert reg.get("team/clf:staging").number == 0
    assert reg.get(f"team/clf@sha256:{v0.digest}").number == 0
    got = reg.get("team/clf:v1")
    assert (got.metadata, got.creator, got.type) == ({"acc": 0.7}, registry.actor(), "model")

    reg.alias("team/clf:v1", "production")
    reg.alias("team/clf:v0", "production")
    assert reg.aliases("team/clf") == {"latest": 1, "production": 0, "staging": 0}
    moves = [
        (e["alias"], e["from"], e["to"]) for e in reg.history("team/clf") if e["kind"] == "alias"
    ]
    assert moves == [("staging", None, 0), ("production", None, 1), ("production", 1, 0)]
    assert all(e["who"] == registry.actor() for e in reg.history("team/clf"))
    assert all(e["when"] for e in reg.history("team/clf"))

    reg.update("team/clf:v0", metadata={"acc": 0.6}, tags=["best"])
    assert reg.get("team/clf:v0").metadata == {"acc": 0.6}
    assert reg.get("team/clf:v0").digest == v0.digest  # content never changes
    update = next(e for e in reg.history("team/clf") if e["kind"] == "update")
    assert update["before"] == {"metadata": {"acc": 0.5}, "tags": []}

    diff = reg.diff("team/clf:v0", "team/clf:v1")
    assert (diff["changed"], diff["added"], diff["removed"]) == (["weights.bin"], [], [])
    assert diff["metadata"] == {"acc": [0.6, 0.7]}

    reg.unalias("team/clf", "production")
    assert "production" not in reg.aliases("team/clf")
    assert reg.history("team/clf")[-1]["kind"] == "unalias"
    assert reg.artifacts() == ["team/clf"]


def test_identical_content_is_the_same_version_and_uploads_nothing(
    reg: registry.Registry, tmp_path: Path, counted: list[str]
) -> None:
    src = make_files(tmp_path / "a", {"a": "1", "b": "2"})
    v0 = reg.log("clf", src)
    counted.clear()
    again = reg.log("clf", src, aliases=["prod"])
    assert again.number == v0.number == 0
    assert not [c for c in counted if c.startswith("upload")]
    assert reg.aliases("clf")["prod"] == 0
    # a new version that changes one file uploads one file
    (src / "b").write_text("22")
    counted.clear()
    reg.log("clf", src)
    assert len([c for c in counted if c.startswith("upload")]) == 1


def test_download_verifies_and_shares_blobs(reg: registry.Registry, tmp_path: Path) -> None:
    src = make_files(tmp_path / "a", {"big": "B" * 10000, "cfg": "1"})
    v0 = reg.log("clf", src)
    (src / "cfg").write_text("2")
    v1 = reg.log("clf", src)
    f0, f1 = v0.download(), v1.download()
    assert (f0 / "big").read_text() == "B" * 10000
    assert (f1 / "cfg").read_text() == "2"
    assert os.stat(f0 / "big").st_ino == os.stat(f1 / "big").st_ino  # stored once
    out = v1.download(tmp_path / "out")
    assert (out / "cfg").read_text() == "2"


def test_damaged_blob_is_an_integrity_error(reg_url: str, tmp_path: Path) -> None:
    reg = registry.open(reg_url)
    version = reg.log("clf", make_files(tmp_path / "a", {"w": "good"}))
    sha = version.files[0].sha256
    reg.store.delete(blob_key(sha))
    bad = tmp_path / "bad"
    bad.write_text("evil")
    reg.store.upload(bad, blob_key(sha))
    with pytest.raises(IntegrityError):
        version.download()


def test_download_hashes_each_blob_while_it_streams(
    reg: registry.Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each blob is read from the store once, hashed as it is written: nothing reads a
    downloaded file back to hash it. A blob whose bytes do not match is still refused and
    leaves nothing in the cache."""
    from hubcore.store.cache import Cache

    big = os.urandom(3 << 20)
    version = reg.log(
        "clf", {"big.bin": _write(tmp_path / "big.bin", big), "cfg": _write(tmp_path / "cfg", b"1")}
    )

    def hashed_again(path: Any) -> str:
        raise AssertionError(f"{path} was read back to be hashed")

    monkeypatch.setattr("hubcore.registry.core.file_sha256", hashed_again, raising=False)
    monkeypatch.setattr("hubcore.store.cache.file_sha256", hashed_again)
    cache = Cache(tmp_path / "cache")
    folder = version.download(cache=cache)
    assert (folder / "big.bin").read_bytes() == big
    assert (folder / "cfg").read_bytes() == b"1"

    sha = next(f.sha256 for f in version.files if f.path == "big.bin")
    reg.store.delete(blob_key(sha))
    reg.store.upload(_write(tmp_path / "evil", b"evil" + big[4:]), blob_key(sha))
    other = Cache(tmp_path / "other")
    with pytest.raises(IntegrityError):
        version.download(cache=other)
    assert not other.has_blob(sha)
    assert [p for p in (other.root / "tmp").rglob("*") if p.is_file()] == []


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_references_are_recorded_and_verified(
    reg: registry.Registry, tmp_path: Path, file_server: Any
) -> None:
    url = file_server.add("w.bin", b"remote weights")
    version = reg.log("clf", make_files(tmp_path / "a", {"cfg": "1"}), references={"w.bin": url})
    ref = next(f for f in version.files if f.path == "w.bin")
    assert ref.url == url
    assert ref.size == len(b"remote weights")
    assert (reg.get("clf:v0").download() / "w.bin").read_bytes() == b"remote weights"
    wrong = registry.Reference(file_server.add("x.bin", b"changed"), sha256="0" * 64, size=7)
    bad = reg.log("clf", tmp_path / "a", references={"x.bin": wrong})
    with pytest.raises(IntegrityError):
        bad.download()


def test_delete_guard_and_gc(reg: registry.Registry, tmp_path: Path) -> None:
    src = make_files(tmp_path / "a", {"shared": "s", "only0": "0"})
    v0 = reg.log("clf", src, aliases=["production"])
    (src / "only0").unlink()
    reg.log("clf", src)
    with pytest.raises(registry.AliasInUseError):
        reg.delete("clf:v0")
    reg.delete("clf:v0", force=True)
    assert "production" not in reg.aliases("clf")
    with pytest.raises(registry.VersionNotFoundError):
        reg.get("clf:v0")
    only0 = next(f.sha256 for f in v0.files if f.path == "only0")
    assert reg.gc(grace=3600) == {
        "manifests": 0,
        "blobs": 0,
        "bytes": 0,
        "temporary": 0,
        "notifications": 0,
    }
    report = reg.gc(grace=0)
    assert (report["manifests"], report["blobs"]) == (1, 1)
    assert reg.store.info(blob_key(only0)) is None
    assert (reg.get("clf").download() / "shared").read_text() == "s"
    # numbers are never reused; deleting the newest moves latest back
    reg.log("clf", make_files(tmp_path / "b", {"n": "new"}))
    assert reg.get("clf").number == 2
    reg.delete("clf:v2")
    assert reg.get("clf:latest").number == 1


def test_errors_name_what_is_missing(reg: registry.Registry, tmp_path: Path) -> None:
    with pytest.raises(registry.ArtifactNotFoundError):
        reg.get("nothing:production")
    reg.log("clf", make_files(tmp_path / "a", {"w": "1"}))
    with pytest.raises(registry.VersionNotFoundError):
        reg.get("clf:v7")
    with pytest.raises(registry.VersionNotFoundError):
        reg.get("clf:production")
    with pytest.raises(registry.RegistryError, match="type"):
        reg.log("clf", tmp_path / "a", type="dataset")


def test_unsupported_filesystem_is_named() -> None:
    with pytest.raises(registry.UnsupportedStorageError, match="MemoryFileSystem"):
        registry.open("memory://somewhere/registry")


@pytest.mark.parametrize(
    "url",
    [
        "memory://user:secretpw@somewhere/registry?token=secretq",
        "nosuchfs://user:secretpw@somewhere/registry?token=secretq",
    ],
)
def test_a_refused_registry_url_is_named_without_its_credentials(url: str) -> None:
    with pytest.raises(registry.RegistryError) as caught:
        registry.open(url)
    assert "somewhere/registry" in str(caught.value)
    assert "secret" not in str(caught.value)


def test_hash_reuse_when_size_and_mtime_unchanged(
    hub_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hubcore.registry import content

    src = make_files(tmp_path / "a", {"w": "1"})
    os.utime(src / "w", ns=(10**18, 10**18))
    hashed: list[Path] = []
    real = content.file_sha256
    monkeypatch.setattr(content, "file_sha256", lambda p: hashed.append(Path(p)) or real(p))
    reg = registry.open(tmp_path / "registry")
    reg.log("clf", src)
    reg.log("clf", src)
    assert len(hashed) == 1
    (src / "w").write_text("2")
    reg.log("clf", src)
    assert len(hashed) == 2


# -- CLI --------------------------------------------------------------------------------
def run_cli(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_cli_every_command(reg_url: str, tmp_path: Path) -> None:
    src = make_files(tmp_path / "a", {"w": "1", "cfg": "c"})
    (tmp_path / "desc.md").write_text("a model")
    out = run_cli(
        "registry",
        "log",
        str(src),
        "clf",
        "--registry",
        reg_url,
        "--alias",
        "staging",
        "--metadata",
        "acc=0.5",
        "--metadata",
        "note=hi",
        "--description",
        str(tmp_path / "desc.md"),
        "--json",
    )
    assert json.loads(out)["version"] == "v0"
    (src / "w").write_text("2")
    run_cli("registry", "log", str(src), "clf", "--registry", reg_url, "--metadata", "acc=0.7")
    assert json.loads(run_cli("registry", "ls", "--registry", reg_url, "--json")) == ["clf"]
    listed = json.loads(run_cli("registry", "ls", "clf", "--registry", reg_url, "--json"))
    assert [v["version"] for v in listed] == ["v0", "v1"]
    assert "more: --after 0" in run_cli(
        "registry", "ls", "clf", "--limit", "1", "--registry", reg_url
    )
    shown = json.loads(run_cli("registry", "show", "clf:staging", "--registry", reg_url, "--json"))
    assert shown["metadata"] == {"acc": 0.5, "note": "hi"}
    assert shown["description"] == "a model"
    assert "cfg" in run_cli("registry", "show", "clf", "--registry", reg_url)
    run_cli("registry", "alias", "clf:v1", "production", "--registry", reg_url)
    history = json.loads(run_cli("registry", "history", "clf", "--registry", reg_url, "--json"))
    assert [e["kind"] for e in history] == ["log", "alias", "log", "alias"]
    assert "production: - -> v1" in run_cli("registry", "history", "clf", "--registry", reg_url)
    diff = json.loads(
        run_cli("registry", "diff", "clf:v0", "clf:v1", "--registry", reg_url, "--json")
    )
    assert diff["changed"] == ["w"]
    assert diff["metadata"]["acc"] == [0.5, 0.7]
    assert "~ w" in run_cli("registry", "diff", "clf:v0", "clf:v1", "--registry", reg_url)
    out = run_cli(
        "registry", "download", "clf:production", "-o", str(tmp_path / "o"), "--registry", reg_url
    )
    assert (tmp_path / "o" / "w").read_text() == "2"
    run_cli("registry", "unalias", "clf", "production", "--registry", reg_url)
    refused = CliRunner().invoke(main, ["registry", "rm", "clf:v0", "--registry", reg_url])
    assert refused.exit_code == 1
    assert "staging" in refused.output
    run_cli("registry", "rm", "clf:v0", "--force", "--registry", reg_url)
    gc = json.loads(run_cli("registry", "gc", "--grace", "0", "--registry", reg_url, "--json"))
    assert gc["blobs"] == 1
    bad = CliRunner().invoke(main, ["registry", "show", "clf:../x", "--registry", reg_url])
    assert bad.exit_code == 1
    assert "error:" in bad.output
    assert "Traceback" not in bad.output


# -- as a source ----------------------------------------------------------------------
HUBCONF = '''
dependencies = []

def entry(scale=1):
    """Returns the weights file's text times scale."""
    import os
    with open(os.path.join(os.path.dirname(__file__), "w.txt")) as fh:
        return fh.read() * scale
'''


def test_load_through_the_registry_source(
    reg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    counted: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("HUBCORE_REGISTRY", reg_url)
    src = make_files(tmp_path / "repo", {"hubconf.py": HUBCONF, "w.txt": "ab"})
    reg = registry.open()
    reg.log("hub", src, type="code", aliases=["production"])
    assert hubcore.load("registry:hub:production", "entry", scale=2) == "abab"
    assert hubcore.list("registry:hub:v0") == ["entry"]
    digest = reg.get("hub:v0").digest
    counted.clear()
    assert hubcore.load("registry:hub:v0", "entry") == "ab"  # pinned, cached: no request
    assert hubcore.load(f"registry:hub@sha256:{digest}", "entry") == "ab"
    assert counted == []
    hubcore.load("registry:hub:production", "entry")  # an alias: one small read
    assert counted == ["read collections/hub/aliases/production.json"]
    # offline: the alias as last resolved, with a warning; never fetched before: an error
    monkeypatch.setenv("HUBCORE_OFFLINE", "1")
    counted.clear()
    with caplog.at_level(logging.WARNING, logger="hubcore"):
        assert hubcore.load("registry:hub:production", "entry") == "ab"
    assert counted == []
    assert "offline: registry:hub:production is taken as sha256:" in caplog.text
    assert "when last online" in caplog.text
    with pytest.raises(OfflineError):
        hubcore.load("registry:hub:staging", "entry")


def test_load_in_a_fresh_process_with_a_fresh_cache(reg_url: str, tmp_path: Path) -> None:
    src = make_files(tmp_path / "repo", {"hubconf.py": HUBCONF, "w.txt": "xy"})
    registry.open(reg_url).log("hub", src, aliases=["production"])
    code = textwrap.dedent(
        """
        import hubcore, sys
        from hubcore.registry import store
        calls = []
        for cls in (store.LocalStore, store.S3Store):
            for m in ("read", "info", "objects", "download"):
                orig = getattr(cls, m)
                def wrapped(self, *a, _o=orig, _m=m, **k):
                    calls.append(_m)
                    return _o(self, *a, **k)
                setattr(cls, m, wrapped)
        print(hubcore.load(sys.argv[1], "entry"))
        calls.clear()
        print(hubcore.load("registry:hub:v0", "entry"), len(calls))
        """
    )
    env = {**os.environ, "HUBCORE_REGISTRY": reg_url, "HUBCORE_HOME": str(tmp_path / "fresh")}
    out = subprocess.run(
        [sys.executable, "-c", code, "registry:hub:production"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[0] == "xy"
    # v0 was never resolved in this process: one read of its record, then cached
    assert out[1] == "xy"
    again = subprocess.run(
        [sys.executable, "-c", code.replace("sys.argv[1]", '"registry:hub:v0"'), "x"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert again == ["xy", "xy", "0"]


def test_gc_keeps_what_a_log_reuses_after_the_listing(
    reg: registry.Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gc lists old, unheld blobs; a log then reuses one of them (re-logging a deleted
    version's content touches it) before gc's turn comes: gc must not delete it."""
    src = make_files(tmp_path / "a", {"w": "weights-A"})
    reg.log("clf", src)
    (src / "w").write_text("weights-B")
    reg.log("clf", src)
    reg.delete("clf:v0", force=True)
    listed = type(reg.store).objects
    relogged: list[registry.Version] = []

    def objects(store: Any, prefix: str, *args: Any, **kwargs: Any) -> Iterator[Any]:
        found = list(listed(store, prefix, *args, **kwargs))
        if prefix == "blobs" and not relogged:
            time.sleep(1.1)  # S3 keeps whole seconds: the touch must be a second after gc began
            (src / "w").write_text("weights-A")
            relogged.append(reg.log("clf", src))  # touches the old blob of v0's content
        return iter(found)

    monkeypatch.setattr(type(reg.store), "objects", objects)
    # a grace of 0 stands for one a day long with blobs days old: a log then touches them
    monkeypatch.setattr(registry.core, "TOUCH_AGE", -1.0)
    time.sleep(0.05)  # the blobs' times are before gc begins
    reg.gc(grace=0)
    monkeypatch.undo()
    assert relogged
    version = relogged[0]
    assert reg.store.info(manifest_key(version.digest)) is not None
    assert all(reg.store.info(blob_key(f.sha256)) is not None for f in version.files)
    assert (reg.get("clf").download() / "w").read_text() == "weights-A"


def test_a_lone_alias_string_is_one_alias(reg: registry.Registry, tmp_path: Path) -> None:
    """``aliases="staging"`` names one alias, never the aliases s, t, a, g, i, n."""
    version = reg.log("clf", make_files(tmp_path / "a", {"w": "1"}), aliases="staging")
    assert sorted(reg.get("clf:staging").aliases) == ["latest", "staging"]
    assert version.number == 0
    assert sorted(reg.aliases("clf")) == ["latest", "staging"]


def test_a_cached_file_changed_in_place_is_fetched_again(
    reg: registry.Registry, tmp_path: Path
) -> None:
    """A downloaded file damaged in the cache with its size kept passes a check of sizes;
    the blob behind it is checked as any cached weight file is, and fetched again."""
    version = reg.log("clf", make_files(tmp_path / "a", {"w": "good-weights"}))
    folder = version.download()
    with open(folder / "w", "r+b") as fh:  # in place: same inode, same size
        fh.write(b"evil")
    assert (reg.get("clf:v0").download() / "w").read_text() == "good-weights"


def test_bad_arguments_are_registry_errors(reg: registry.Registry, tmp_path: Path) -> None:
    """What cannot be a reference, metadata JSON cannot hold, a negative grace period: each a
    RegistryError that says what to give, never a bare Python error."""
    src = make_files(tmp_path / "a", {"w": "1"})
    for spec in (None, 3):
        with pytest.raises(registry.RegistryError, match="reference"):
            reg.get(spec)  # type: ignore[arg-type]
    with pytest.raises(registry.RegistryError, match="must be JSON"):
        reg.log("clf", src, metadata={"x": {1, 2}})
    reg.log("clf", src)
    with pytest.raises(registry.RegistryError, match="must be JSON"):
        reg.update("clf:v0", metadata={"x": object()})
    with pytest.raises(registry.RegistryError, match="grace"):
        reg.gc(grace=-5)


def test_aliases_that_read_as_versions_or_differ_only_in_case_are_refused(
    reg: registry.Registry, tmp_path: Path
) -> None:
    """``v01`` and ``V3`` read as version numbers; ``Prod`` next to ``prod`` (or ``LATEST``)
    would be one file on a case-insensitive folder: each refused, saying why."""
    reg.log("clf", make_files(tmp_path / "a", {"w": "1"}), aliases=["prod"])
    for alias in ("v01", "V3", "SHA256abc", "LATEST", "Latest"):
        with pytest.raises(registry.InvalidNameError, match=r"version or digest|latest"):
            reg.alias("clf:v0", alias)
    with pytest.raises(registry.InvalidNameError, match="only in case"):
        reg.alias("clf:v0", "Prod")
    with pytest.raises(registry.InvalidNameError, match="only in case"):
        reg.log("clf", make_files(tmp_path / "b", {"w": "2"}), aliases=["PROD"])
    with pytest.raises(registry.VersionNotFoundError, match="in lower case"):
        reg.get("clf:LATEST")  # not set: read as a misspelt latest
    assert sorted(reg.aliases("clf")) == ["latest", "prod"]
    reg.alias("clf:v0", "staging")  # a new alias of another spelling is fine
    assert reg.get("clf:prod").number == 0
    # one an older hubcore let be set can still be removed
    from hubcore.registry.core import alias_key

    legacy = {"alias": "V2", "version": 0, "digest": reg.get("clf:v0").digest, "seq": 0}
    assert reg.store.create(alias_key("clf", "V2"), json.dumps(legacy).encode())
    assert reg.aliases("clf")["V2"] == 0
    reg.unalias("clf", "V2")
    assert "V2" not in reg.aliases("clf")
    with pytest.raises(registry.InvalidNameError, match="latest"):
        reg.unalias("clf", "latest")


def test_removing_needs_a_version_not_a_bare_name(reg_url: str, tmp_path: Path) -> None:
    """``rm clf`` reads like the whole artifact; it used to delete the newest version."""
    reg = registry.open(reg_url)
    reg.log("clf", make_files(tmp_path / "a", {"w": "1"}))
    reg.log("clf", make_files(tmp_path / "b", {"w": "2"}))
    with pytest.raises(registry.RegistryError, match="clf:v<N>"):
        reg.delete("clf")
    refused = CliRunner().invoke(main, ["registry", "rm", "clf", "--registry", reg_url])
    assert refused.exit_code != 0
    assert "clf:latest" in refused.output
    assert reg.get("clf").number == 1
    reg.delete("clf:latest")
    assert reg.get("clf").number == 0


@pytest.mark.parametrize(
    ("folder", "record"),
    [
        ("versions", {"name": "clf", "number": "zero", "digest": "x"}),
        ("versions", {"name": "clf", "digest": "x"}),
        ("versions", {"name": "clf", "number": True, "digest": "x"}),
        ("aliases", {"alias": "prod", "version": "v0"}),
        ("aliases", {"alias": "prod", "version": 0, "seq": "1"}),
    ],
)
def test_a_record_edited_into_another_shape_is_a_registry_error(
    reg: registry.Registry, tmp_path: Path, folder: str, record: dict[str, Any]
) -> None:
    """Version records and alias pointers edited by hand into the wrong shape are named as
    damaged, not a KeyError or ValueError from inside."""
    from hubcore.registry.core import alias_key, version_key

    reg.log("clf", make_files(tmp_path / "a", {"w": "1"}), aliases=["prod"])
    key = version_key("clf", 0) if folder == "versions" else alias_key("clf", "prod")
    reg.store.delete(key)
    assert reg.store.create(key, json.dumps(record).encode())
    named_like_a_folder = reg.log(folder, make_files(tmp_path / "b", {"w": "2"}))
    assert reg.get(folder).number == named_like_a_folder.number == 0
    spec = "clf:v0" if folder == "versions" else "clf:prod"
    with pytest.raises(registry.RegistryError, match="damaged"):
        reg.get(spec)
    with pytest.raises(registry.RegistryError, match="damaged"):
        reg.alias("clf:v0", "prod")


def test_a_description_edit_is_kept_and_recorded(reg: registry.Registry, tmp_path: Path) -> None:
    """The description of a version is editable (its content is not) and the edit is in the
    history with the text before and after; an edit that changes nothing records nothing."""
    reg.log("clf", make_files(tmp_path / "a", {"w": "1"}), description="first draft")
    edited = reg.update("clf:v0", description="Tells cats from dogs.")
    assert edited.description == reg.get("clf:v0").description == "Tells cats from dogs."
    reg.update("clf:v0", description="Tells cats from dogs.")
    updates = [e for e in reg.history("clf") if e["kind"] == "update"]
    assert len(updates) == 1
    assert updates[0]["before"] == {"description": "first draft"}
    assert updates[0]["after"] == {"description": "Tells cats from dogs."}
    shown = CliRunner().invoke(main, ["registry", "show", "clf:v0", "--registry", reg.store.url])
    assert "Tells cats from dogs." in shown.output


def test_an_s3_reference_is_recorded_and_verified(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file left at an ``s3://`` URL: its sha256 is taken when logged and checked when
    downloaded, so an object replaced after the log is an integrity error, never served."""
    import s3fs

    fs = s3fs.S3FileSystem()
    url = f"s3://{s3_bucket}/outside/w.bin"
    fs.pipe(url, b"weights kept in their own bucket")
    reg = registry.open(f"s3://{s3_bucket}/registry")
    version = reg.log("clf", make_files(tmp_path / "a", {"cfg": "1"}), references={"w.bin": url})
    entry = next(f for f in version.files if f.path == "w.bin")
    assert (entry.url, entry.size) == (url, len(b"weights kept in their own bucket"))
    assert (version.download() / "w.bin").read_bytes() == b"weights kept in their own bucket"
    fs.pipe(url, b"weights replaced afterwards!!!!!")  # same size, other bytes
    monkeypatch.setenv("HUBCORE_HOME", str(tmp_path / "fresh-home"))
    with pytest.raises(IntegrityError):
        reg.get("clf:v0").download()


def _plant_pointer(reg: registry.Registry, name: str, alias: str, pointer: dict[str, Any]) -> None:
    """Write an alias pointer as an older hubcore (or a hand edit) left it."""
    from hubcore.registry.core import alias_key

    key = alias_key(name, alias)
    reg.store.delete(key)
    assert reg.store.create(key, json.dumps(pointer).encode())


def test_aliases_an_older_hubcore_set_are_still_read_and_removed(
    reg: registry.Registry, tmp_path: Path
) -> None:
    """Only setting a version-like alias is refused: one that exists is read and removed, and
    one that does not exist is missing with a hint at how versions are written."""
    version = reg.log("clf", make_files(tmp_path / "a", {"w": "1"}))
    for legacy in ("V2", "v01", "LATEST"):
        _plant_pointer(
            reg, "clf", legacy, {"alias": legacy, "version": 0, "digest": version.digest, "seq": 0}
        )
        assert reg.get(f"clf:{legacy}").number == 0
        reg.unalias("clf", legacy)
        assert legacy not in reg.aliases("clf")
    with pytest.raises(registry.VersionNotFoundError, match="lower case and without leading"):
        reg.get("clf:V7")
    with pytest.raises(registry.VersionNotFoundError, match="'latest', in lower case"):
        reg.get("clf:Latest")


def test_removing_an_alias_is_never_refused_for_its_case(
    reg: registry.Registry, tmp_path: Path
) -> None:
    """A pointer holding another spelling of the same alias (a case-insensitive folder where an
    older hubcore set prod, then Prod) is removed, by unalias and by a forced delete alike; a
    removed alias still holds its spelling, and says so when another case is set."""
    version = reg.log("clf", make_files(tmp_path / "a", {"w": "1"}), aliases=["prod"])
    pointer = {"alias": "Prod", "version": 0, "digest": version.digest, "seq": 0}
    _plant_pointer(reg, "clf", "prod", pointer)
    reg.delete("clf:v0", force=True)
    assert "prod" not in reg.aliases("clf")
    reg.log("clf", make_files(tmp_path / "b", {"w": "2"}), aliases=["stage"])
    reg.unalias("clf", "stage")
    with pytest.raises(registry.InvalidNameError, match="or had"):
        reg.alias("clf:v1", "Stage")


@pytest.mark.parametrize(
    ("folder", "edit"),
    [
        ("aliases", {"version": 0}),  # a version without its digest
        ("aliases", {"version": 0, "digest": None}),
        ("aliases", {"event": "boom"}),
        ("versions", {"pins": {"prod": "x"}}),
        ("versions", {"pins": ["prod"]}),
        ("versions", {"link": "other:v1"}),
        ("versions", {"metadata": [1, 2]}),
        ("versions", {"tags": 5}),
    ],
)
def test_nested_fields_edited_into_another_shape_are_named(
    reg: registry.Registry, tmp_path: Path, folder: str, edit: dict[str, Any]
) -> None:
    from hubcore.registry.core import alias_key, version_key

    reg.log("clf", make_files(tmp_path / "a", {"w": "1"}), aliases=["prod"])
    key = version_key("clf", 0) if folder == "versions" else alias_key("clf", "prod")
    record = {**json.loads(reg.store.read(key)[0]), **edit}
    if edit == {"version": 0}:
        del record["digest"]
    reg.store.delete(key)
    assert reg.store.create(key, json.dumps(record).encode())
    with pytest.raises(registry.RegistryError, match="damaged"):
        reg.get("clf:prod")


def test_a_pointer_naming_another_alias_is_damaged_not_a_case_clash(
    reg: registry.Registry, tmp_path: Path
) -> None:
    version = reg.log("clf", make_files(tmp_path / "a", {"w": "1"}), aliases=["prod"])
    _plant_pointer(
        reg, "clf", "prod", {"alias": "staging", "version": 0, "digest": version.digest, "seq": 0}
    )
    with pytest.raises(registry.RegistryError, match="damaged"):
        reg.alias("clf:v0", "prod")
