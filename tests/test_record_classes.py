"""The records of the modules every command imports are hubcore.records classes (no attrs at
start-up: hubcore/records.py says why), and they behave as their attrs versions did: frozen or
mutable, hashable or not, secrets and tokens out of repr, aliases, defaults computed from other
fields, and the exact JSON the cache writes."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pluggy
import pytest

from hubcore import runcontext, settings
from hubcore.plugins import PluginInfo, Plugins
from hubcore.records import FrozenRecordError, Record, asdict, fields, replace
from hubcore.store.cache import Cache, CachedBlob, CachedSnapshot, UrlRecord
from hubcore.store.downloader import DownloadSettings, _Meta
from hubcore.store.stores import Store
from hubcore.store.transfer import WeightsFile

#: Every record class on the start-up path, and whether it is frozen.
RECORDS = {
    "hubcore.settings": {"Settings": True},
    "hubcore.runcontext": {"AppliedWeights": True, "RunContext": False},
    "hubcore.runner": {"RunLock": True},
    "hubcore.plugins": {"PluginInfo": False, "Plugins": False},
    "hubcore.plugins.backends": {"ExportedTensor": True},
    "hubcore.repo.redirects": {"Redirect": True},
    "hubcore.repo.nested": {"NestedLoad": True, "Gap": True},
    "hubcore.repo.discovery": {
        "WeightsInfo": True,
        "Entrypoint": True,
        "Gap": True,
        "HubconfInfo": True,
    },
    "hubcore.repo.weights": {"Weights": True},
    "hubcore.repo.pretrained": {"PretrainedSpec": True},
    "hubcore.sources": {"RepoRef": True, "Snapshot": True, "FetchContext": True},
    "hubcore.sources.gitproto": {"Limits": True, "Listing": True},
    "hubcore.policy.lock": {"LockedWeight": True, "LockedRepo": True, "LockFile": True},
    "hubcore.policy.check": {"Finding": True},
    "hubcore.store.cache": {
        "UrlRecord": True,
        "CachedSnapshot": True,
        "CachedBlob": True,
        "Cache": True,
    },
    "hubcore.store.stores": {"Store": True},
    "hubcore.store.transfer": {"WeightsFile": True},
    "hubcore.store.downloader": {"DownloadSettings": True, "_Meta": False},
}


@pytest.mark.parametrize(
    ("module", "name"), [(m, n) for m, names in RECORDS.items() for n in names]
)
def test_the_start_up_classes_are_records(module: str, name: str) -> None:
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, Record)
    assert cls.__record_frozen__ is RECORDS[module][name]


def test_the_start_up_modules_and_the_git_path_import_no_attrs() -> None:
    modules = [*RECORDS, "hubcore.api", "hubcore.cli", "hubcore.sources.git"]
    code = (
        f"import sys, {', '.join(modules)}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('attr', 'attrs')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    )
    assert done.stdout.strip() == "[]"


def test_repo_ref_identity_defaults_from_the_reference_and_survives_replace() -> None:
    from hubcore.sources import RepoRef

    ref = RepoRef("git", "https://user:secret@Example.org/a/b.git", "main")
    assert ref.identity == "git:https://example.org/a/b.git"
    assert RepoRef("local", "/x", identity="local:/y").identity == "local:/y"
    moved = replace(ref, revision="dev")
    assert (moved.revision, moved.identity) == ("dev", ref.identity)
    assert replace(ref, repo="https://example.org/c/d.git").identity == ref.identity  # as evolve


def test_repo_ref_options_are_left_out_of_equality_hash_and_repr() -> None:
    from hubcore.sources import RepoRef

    plain = RepoRef("git", "https://example.org/a.git")
    secret = RepoRef("git", "https://example.org/a.git", options={"token": "s3cr3t"})
    assert plain == secret
    assert hash(plain) == hash(secret)
    assert "s3cr3t" not in repr(secret)
    assert repr(plain) == (
        "RepoRef(source='git', repo='https://example.org/a.git', revision=None, text='', "
        "identity='git:https://example.org/a.git')"
    )
    assert plain.options is not RepoRef("git", "x").options  # a fresh dict each
    with pytest.raises(FrozenRecordError):
        plain.repo = "other"  # type: ignore[misc]


def test_weights_sha256_is_lower_cased_also_through_replace() -> None:
    from hubcore.repo.weights import Weights

    w = Weights("https://example.invalid/w.pth", "AB" * 32, 3)
    assert w.sha256 == "ab" * 32
    assert Weights("u").sha256 is None
    assert replace(w, sha256="CD" * 32).sha256 == "cd" * 32
    assert w == Weights("https://example.invalid/w.pth", sha256="ab" * 32, size=3)
    assert hash(w) == hash(replace(w))
    assert repr(Weights("u")) == "Weights(url='u', sha256=None, size=None)"
    assert [f.name for f in fields(Weights)] == ["url", "sha256", "size"]


def test_lock_file_writes_weights_as_tables(tmp_path: Path) -> None:
    from hubcore.policy.lock import LockedRepo, LockedWeight, LockFile, write_lock

    weight = LockedWeight("net", "default", "https://example.invalid/w.pth", "ab" * 32)
    assert asdict(weight) == {
        "entrypoint": "net",
        "variant": "default",
        "url": "https://example.invalid/w.pth",
        "sha256": "ab" * 32,
    }
    repo = LockedRepo("acme/models:main", "c" * 40, (weight,), "github:acme/models", "main")
    write_lock(tmp_path / "hub.lock", [repo])
    assert LockFile.read(tmp_path / "hub.lock").repos == (repo,)


def test_entrypoint_replace_keeps_the_other_fields() -> None:
    from hubcore.repo.discovery import Entrypoint, WeightsInfo
    from hubcore.repo.weights import Weights

    entry = Entrypoint("net", "function", "(x)", "doc", "hubconf.py:3")
    info = WeightsInfo({"default": Weights("u")}, "default")
    assert replace(entry, weights=info) == Entrypoint(
        "net", "function", "(x)", "doc", "hubconf.py:3", info
    )


def test_settings_stay_frozen_and_keep_secrets_out_of_repr(monkeypatch) -> None:
    monkeypatch.setenv("HUBCORE_REGISTRY_WEBHOOK", "https://hooks.example/s3cr3t")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_alias")
    current = settings.current()
    assert current.registry_webhook == "https://hooks.example/s3cr3t"
    assert current.github_token == "ghp_alias"  # read through the field's alias variable
    assert "s3cr3t" not in repr(current)
    with pytest.raises(FrozenRecordError):
        current.offline = True  # type: ignore[misc]
    assert hash(current) == hash(replace(current))
    with settings.overridden(offline=True) as changed:
        assert changed.offline
        assert changed.registry_webhook == current.registry_webhook
    every = fields(settings.Settings)
    assert all({"env", "parse", "doc", "alias"} <= set(f.metadata) for f in every)
    assert len(settings.table()) == len(every)


def test_mutable_records_compare_by_value_and_are_unhashable() -> None:
    context = runcontext.RunContext(Path("/r"), "repo", True)
    context.lock_path = "hub.lock"
    assert context == runcontext.RunContext(Path("/r"), "repo", True, lock_path="hub.lock")
    info = PluginInfo("p")
    info.error = "broken"
    assert not info.ok
    for record in (context, info, Plugins(pluggy.PluginManager("t"))):
        with pytest.raises(TypeError):
            hash(record)


def test_private_plugin_fields_are_set_by_their_alias() -> None:
    info = PluginInfo("p")
    plugins = Plugins(
        pluggy.PluginManager("t"), infos={"p": info}, backends={}, redirects=[], pending=[]
    )
    assert plugins._infos == {"p": info}
    assert plugins.infos == {"p": info}  # nothing pending: the property adds nothing
    assert [f.alias for f in fields(Plugins)] == [
        "manager",
        "infos",
        "sources",
        "backends",
        "redirects",
        "pending",
    ]


def _samples(tmp_path: Path) -> list[Record]:
    return [
        UrlRecord("https://h/w.bin", "a" * 64, 12, "w.bin"),
        CachedSnapshot("git", "o/r", "s1", tmp_path, 3, 1.5, ("main",)),
        CachedBlob("a" * 64, tmp_path, 3, 1.5, ("https://h/w.bin",)),
        Cache(tmp_path),
        Store(object(), "bucket/dir", "127.0.0.1:9", "s3 (s3fs)"),
        WeightsFile(tmp_path / "w.pth", "w.pth", "a" * 64, 3, "https://h/w.pth"),
        DownloadSettings(),
    ]


def test_frozen_store_records_compare_hash_and_refuse_assignment(tmp_path: Path) -> None:
    for record in _samples(tmp_path):
        assert isinstance(record, Record)
        twin = replace(record)
        assert twin == record
        assert hash(twin) == hash(record)
        with pytest.raises(FrozenRecordError):
            setattr(record, fields(record)[0].name, None)


def test_replace_changes_one_field_of_the_settings() -> None:
    quick = replace(DownloadSettings(), attempts=2, backoff=0.0)
    assert (quick.attempts, quick.backoff, quick.connections) == (2, 0.0, 8)
    assert repr(quick).startswith("DownloadSettings(connections=8, chunk_size=16777216,")
    with pytest.raises(TypeError, match="no field"):
        replace(DownloadSettings(), attempt=2)


def test_url_record_json_keeps_its_keys(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    record = UrlRecord("https://h/v.bin", "b" * 64, 3, "v.bin", '"etag"')
    cache.write_url_record(record)
    (written,) = (tmp_path / "urls").glob("*.json")
    assert written.read_bytes() == (
        b'{\n "name": "v.bin",\n "sha256": "' + b"b" * 64 + b'",\n "size": 3,\n'
        b' "url": "https://h/v.bin",\n "validator": "\\"etag\\""\n}'
    )
    assert cache.read_url_record(record.url) == record


def test_partial_download_record_keeps_its_shape_and_stays_mutable(tmp_path: Path) -> None:
    meta = _Meta("https://h/w.bin", 100, '"e"', 16, {3, 1, 2})
    meta.done.add(0)
    meta.size = 101
    with pytest.raises(TypeError):
        hash(meta)
    meta.save(tmp_path / "w.meta")
    assert (tmp_path / "w.meta").read_bytes() == (
        b'{"url": "https://h/w.bin", "size": 101, "validator": "\\"e\\"", "chunk_size": 16,'
        b' "done": [0, 1, 2, 3]}'
    )
    assert _Meta.load(tmp_path / "w.meta", "https://h/w.bin") == meta
    assert json.loads((tmp_path / "w.meta").read_text()) == {**asdict(meta), "done": [0, 1, 2, 3]}
    assert _Meta("u", 1, None, 1).done == set()
