"""Model packages under attack: hostile configs, manifests, weights, code, pins and pushes.

Each test names what it attacks; the package is the numpy example backend's, saved with the
code it needs (as ``tests/test_packages.py`` does), then damaged the way an attacker with
write access to a store (or a careless publisher) would.
"""

from __future__ import annotations

import enum
import json
import os
import struct
import sys
import textwrap
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pytest

import hubcore
from hubcore.errors import HubError, LockMismatchError, NoBackendError
from hubcore.packages.errors import ConfigValueError, PackageError, PackageIntegrityError
from hubcore.packages.manifest import MANIFEST, manifest_bytes
from hubcore.packages.save import package_files
from hubcore.packages.types import _registered
from hubcore.store.cache import file_sha256

pytest.importorskip("hubcore_numpy_example")

from .gitserver import BareRepo, GitHostServer

TINY = """
import attrs
import hubcore
from hubcore_numpy_example import NumpyModel


@hubcore.model_config("tiny-attack")
class TinyConfig:
    features: int = attrs.field(default=3, validator=attrs.validators.gt(0))
    inputs: int = 4


class Tiny(NumpyModel):
    def __init__(self, config):
        import os
        marker = os.environ.get("TINY_MARKER")
        if marker:
            open(marker, "a").write("ran\\n")
        super().__init__({"weight": (config.features, config.inputs), "bias": (config.features,)})
"""


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    src = tmp_path / "model-src"
    src.mkdir()
    (src / "tiny_attack.py").write_text(textwrap.dedent(TINY))
    monkeypatch.syspath_prepend(str(src))
    marker = tmp_path / "marker.txt"
    monkeypatch.setenv("TINY_MARKER", str(marker))
    import tiny_attack

    yield tiny_attack, marker
    sys.modules.pop("tiny_attack", None)
    _registered.clear()


def trained(tiny_attack: Any, seed: int = 7) -> Any:
    model = tiny_attack.Tiny(tiny_attack.TinyConfig())
    rng = np.random.default_rng(seed)
    model.params = {
        k: rng.standard_normal(v.shape).astype(np.float32) for k, v in model.params.items()
    }
    return model


def same(a: Any, b: Any) -> None:
    x = np.arange(4, dtype=np.float32)
    assert a(x).tobytes() == b(x).tobytes()


def saved(tiny: Any, folder: Path, **kwargs: Any) -> tuple[Any, Path]:
    tiny_attack, _ = tiny
    model = trained(tiny_attack)
    return model, hubcore.save_pretrained(model, folder, config=tiny_attack.TinyConfig(), **kwargs)


def remanifest(folder: Path) -> None:
    """Rewrite the manifest to vouch for whatever the folder holds now (an attacker can)."""
    files = {
        r: (file_sha256(folder / r), (folder / r).stat().st_size) for r in package_files(folder)
    }
    (folder / MANIFEST).write_bytes(manifest_bytes(files))


def edit_config(folder: Path, **section: Any) -> None:
    data = json.loads((folder / "config.json").read_text())
    data["hubcore"].update(section)
    (folder / "config.json").write_text(json.dumps(data))
    remanifest(folder)


def edit_manifest(folder: Path, files: dict[str, Any]) -> None:
    data = json.loads((folder / MANIFEST).read_text())
    data["files"].update(files)
    (folder / MANIFEST).write_text(json.dumps(data))


# -- hostile config.json ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "section",
    [
        {"code": 5},
        {"code": [5]},
        {"code": "tiny_attack.py"},
        {"code": ["../tiny_attack.py"]},
        {"build": 5},
        {"weights": ["model.safetensors"]},
        {"framework": {"x": 1}},
    ],
    ids=repr,
)
def test_wrong_types_in_the_hubcore_section(hub_home, tiny, tmp_path, section) -> None:
    _, folder = saved(tiny, tmp_path / "pkg")
    edit_config(folder, **section)
    with pytest.raises(PackageError):
        hubcore.load(str(folder))
    try:  # inspection describes it or says what is wrong; no bare exception
        hubcore.help(str(folder))
    except PackageError:
        pass


@pytest.mark.parametrize("name", ["config.json", MANIFEST, "model.safetensors.index.json"])
def test_deeply_nested_json_is_a_clear_error(hub_home, tiny, tmp_path, name) -> None:
    _, folder = saved(tiny, tmp_path / "pkg", max_shard_size=40)
    (folder / name).write_text("[" * 200_000 + "]" * 200_000)
    if name != MANIFEST:
        remanifest(folder)
    with pytest.raises(PackageError, match=name.replace(".", r"\.")):
        hubcore.load(str(folder))


def test_a_huge_config_is_refused_unread(hub_home, tiny, tmp_path) -> None:
    _, folder = saved(tiny, tmp_path / "pkg")
    data = json.loads((folder / "config.json").read_text())
    with (folder / "config.json").open("w") as fh:  # valid JSON, 20 MiB of it
        fh.write(json.dumps(data)[:-1] + ', "pad": "' + "x" * (20 << 20) + '"}')
    remanifest(folder)
    with pytest.raises(PackageError, match=r"config\.json.*bytes"):
        hubcore.load(str(folder))


def test_a_config_that_is_not_a_regular_file_is_refused(hub_home, tiny, tmp_path) -> None:
    _, folder = saved(tiny, tmp_path / "pkg")
    (folder / "config.json").unlink()
    os.symlink("/dev/zero", folder / "config.json")  # reading it would never end
    with pytest.raises(HubError, match="regular file"):
        hubcore.load(str(folder))
    with pytest.raises(HubError, match="regular file"):
        hubcore.help(str(folder))


@pytest.mark.parametrize("name", ["config.json", MANIFEST])
def test_duplicate_json_keys_are_refused(hub_home, tiny, tmp_path, name) -> None:
    # Two readers (a reviewer's tool, the loader) could see two different values.
    _, folder = saved(tiny, tmp_path / "pkg")
    raw = (folder / name).read_text()
    if name == "config.json":
        raw = raw.replace('"features": 3,', '"features": 3, "features": 1000,')
    else:
        raw = raw.replace(
            '"files": {', '"files": {"x.bin": {"sha256": "%s", "size": 1},' % ("0" * 64)
        )
        raw = raw.replace('"format": 1', '"format": 1, "files": {}, "format": 1', 1)
    (folder / name).write_text(raw)
    if name == "config.json":
        remanifest(folder)
    with pytest.raises(PackageError, match="more than once"):
        hubcore.load(str(folder))


# -- installed classes --------------------------------------------------------------------------
VICTIM = """
import sys
import attrs
import hubcore


@hubcore.model_config("victim")
class VictimConfig:
    size: int = 2


def helper(config):
    return config
"""


@pytest.fixture
def victim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed distribution ``victimlib`` that has a model_config class."""
    site = tmp_path / "site"
    info = site / "victimlib-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: victimlib\nVersion: 1.0\n")
    (info / "top_level.txt").write_text("victimlib\n")
    (site / "victimlib").mkdir()
    (site / "victimlib" / "__init__.py").write_text(textwrap.dedent(VICTIM))
    monkeypatch.syspath_prepend(str(site))
    yield
    sys.modules.pop("victimlib", None)


@pytest.mark.parametrize(
    "build",
    [
        "victimlib:sys.exit",  # a module the installed one imported, reached by attribute
        "victimlib:attrs.define",  # another distribution's function, re-exported
        "victimlib:hubcore.load",
        "victimlib:print",
    ],
)
def test_installed_build_must_be_defined_where_it_is_named(
    hub_home, tiny, tmp_path, victim, build
) -> None:
    _, folder = saved(tiny, tmp_path / "pkg")
    data = json.loads((folder / "config.json").read_text())
    data["model_type"] = "victim"
    data = {"model_type": "victim", "size": 2, "hubcore": data["hubcore"]}
    data["hubcore"].update(config_class="victimlib:VictimConfig", build=build, code=[])
    (folder / "config.json").write_text(json.dumps(data))
    remanifest(folder)
    with pytest.raises(PackageError, match=r"installed|has no"):
        hubcore.load(str(folder), trust_repo=False)


def test_installed_class_named_exactly_still_loads(hub_home, tiny, tmp_path, victim) -> None:
    # What the rule above keeps: an installed build defined where the package names it.
    _, folder = saved(tiny, tmp_path / "pkg")
    data = json.loads((folder / "config.json").read_text())
    data = {"model_type": "victim", "size": 2, "hubcore": data["hubcore"]}
    data["hubcore"].update(config_class="victimlib:VictimConfig", build="victimlib:helper")
    del data["hubcore"]["code"]
    (folder / "config.json").write_text(json.dumps(data))
    remanifest(folder)
    with pytest.raises(NoBackendError):
        hubcore.load(str(folder), trust_repo=False)  # helper returns the config: no model


def test_no_shipped_code_no_local_import(hub_home, tiny, tmp_path, monkeypatch) -> None:
    """A package from a store that names its own module as an 'installed' class is refused
    (held: the module is not in an installed distribution), and no code runs."""
    _, marker = tiny
    _, folder = saved(tiny, tmp_path / "pkg")
    edit_config(folder, code=[])
    sys.modules.pop("tiny_attack", None)
    dest = (tmp_path / "store" / "p").as_uri()
    hubcore.push(folder, dest)
    monkeypatch.delenv("HUBCORE_TRUST")
    marker.unlink()
    with pytest.raises(PackageError, match="installed distribution"):
        hubcore.load(dest)
    assert not marker.exists()


# -- manifests ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    ["a\x00b", ".", "", "a//b", "./config.json", "sub", "x/", MANIFEST, "C:/x", "~/x"],
    ids=repr,
)
def test_manifest_names_that_are_not_files_of_the_package(hub_home, tiny, tmp_path, name) -> None:
    _, folder = saved(tiny, tmp_path / "pkg")
    (folder / "sub").mkdir()
    size = (folder / "sub").stat().st_size if name == "sub" else 1
    edit_manifest(folder, {name: {"sha256": "0" * 64, "size": size}})
    with pytest.raises(PackageError if name != "sub" else PackageIntegrityError):
        hubcore.load(str(folder))


@pytest.mark.parametrize(
    "extra",
    [
        "tiny_attack.cpython-311-x86_64-linux-gnu.so",  # found before tiny_attack.py
        "tiny_attack.abi3.so",
        "helper.pyc",  # sourceless bytecode, importable as `helper`
        "sub/__init__.py",
    ],
)
def test_unlisted_importable_files_are_refused(hub_home, tiny, tmp_path, extra) -> None:
    _, folder = saved(tiny, tmp_path / "pkg")
    (folder / extra).parent.mkdir(exist_ok=True)
    (folder / extra).write_bytes(b"\x7fELF")
    with pytest.raises(PackageIntegrityError, match=extra.replace(".", r"\.")):
        hubcore.load(str(folder))


def test_unchecked_bytecode_is_refused_but_our_own_is_kept(hub_home, tiny, tmp_path) -> None:
    # A pyc in __pycache__ that Python runs without looking at the listed source.
    import importlib.util

    model, folder = saved(tiny, tmp_path / "pkg")
    same(hubcore.load(str(folder)), model)  # writes our own (timestamp) bytecode: kept
    same(hubcore.load(str(folder)), model)
    code = compile("raise SystemExit('not the listed source')", "tiny_attack.py", "exec")
    import marshal

    flags = 0b01  # hash-based, unchecked
    source_hash = importlib.util.source_hash(b"")
    pyc = importlib.util.MAGIC_NUMBER + struct.pack("<I", flags) + source_hash
    cache = Path(importlib.util.cache_from_source(str(folder / "tiny_attack.py")))
    cache.parent.mkdir(exist_ok=True)
    cache.write_bytes(pyc + marshal.dumps(code))
    with pytest.raises(PackageIntegrityError, match="__pycache__"):
        hubcore.load(str(folder))


def test_links_out_of_a_fetched_package_are_refused_by_the_git_source(
    hub_home, tiny, tmp_path
) -> None:
    """Held: a git repository whose README.md links to a file of the loading machine is
    refused when fetched; neither help nor load shows the file."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    repos = tmp_path / "repos"
    repos.mkdir()
    repo = BareRepo(repos, "lab/tiny")
    saved(tiny, repo.work)
    (repo.work / "README.md").unlink()
    os.symlink(os.path.relpath(secret, repo.work), repo.work / "README.md")
    remanifest(repo.work)
    commit = repo.commit({}, "package")
    server = GitHostServer(repos).start()
    try:
        ref = f"git+{server.url}/lab/tiny.git"
        with pytest.raises(HubError, match=r"README\.md"):
            hubcore.load(ref, revision=commit)
        with pytest.raises(HubError, match=r"README\.md"):
            hubcore.help(ref, commit=commit)
    finally:
        server.stop()


@pytest.mark.parametrize("name", ["README.md", "model.safetensors", "config.json"])
def test_links_out_of_a_snapshot_are_refused(hub_home, tiny, tmp_path, name) -> None:
    """Whatever a source lets through (a plugin's source may keep links), a snapshot's file
    that links outside it is neither read, hashed nor shown; a live local folder may link
    (a download tool's cache does)."""
    from hubcore.packages.load import load_package
    from hubcore.sources import RepoRef, Snapshot

    _, folder = saved(tiny, tmp_path / "pkg")
    outside = tmp_path / "outside"
    outside.mkdir()
    (folder / name).rename(outside / name)
    with (outside / name).open("ab") as fh:
        fh.write(b"" if name != "README.md" else b"TOP-SECRET-CONTENT")
    os.symlink(os.path.relpath(outside / name, folder), folder / name)
    remanifest(folder)
    snapshot = Snapshot(RepoRef(source="x", repo="r", text="r"), folder, "fetched")
    with pytest.raises(HubError, match="outside the package"):
        load_package(snapshot)
    assert "TOP-SECRET" not in _help_or_error(snapshot)
    hubcore.load(str(folder))  # the live folder


def _help_or_error(snapshot: Any) -> str:
    from hubcore.packages.load import package_help

    try:
        return package_help(snapshot)
    except HubError as exc:
        return str(exc)


def test_the_pin_is_checked_on_the_manifest_that_is_used(
    hub_home, tiny, tmp_path, monkeypatch
) -> None:
    """The manifest is read once: the bytes whose digest matches the pin are the bytes
    whose files are then checked. Simulated race: any second read of the manifest file
    sees the pinned package's manifest, as if a writer had just put it back."""
    import hubcore.packages.manifest as manifest_module

    tiny_attack, _ = tiny
    _, good = saved(tiny, tmp_path / "good")
    pinned = file_sha256(good / MANIFEST)
    other = hubcore.save_pretrained(
        trained(tiny_attack, seed=99), tmp_path / "other", config=tiny_attack.TinyConfig()
    )
    real = manifest_module.file_sha256

    def racing(path: Path) -> str:
        return pinned if Path(path).name == MANIFEST else real(path)

    monkeypatch.setattr(manifest_module, "file_sha256", racing)
    with pytest.raises(LockMismatchError):
        hubcore.from_pretrained(str(other), revision=f"sha256:{pinned}")


# -- weights ------------------------------------------------------------------------------------
def test_the_index_must_be_listed(hub_home, tiny, tmp_path) -> None:
    _, folder = saved(tiny, tmp_path / "pkg", max_shard_size=40)
    data = json.loads((folder / MANIFEST).read_text())
    del data["files"]["model.safetensors.index.json"]
    (folder / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(PackageError, match=r"model\.safetensors\.index\.json"):
        hubcore.load(str(folder))


def _rewrite_header(path: Path, change: Any) -> None:
    raw = path.read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])
    change(header)
    new = json.dumps(header).encode()
    new += b" " * (-len(new) % 8)
    path.write_bytes(struct.pack("<Q", len(new)) + new + raw[8 + length :])


def test_a_tensor_in_two_shards_is_refused(hub_home, tiny, tmp_path) -> None:
    # Shard 2 also carries a well-formed "weight" of its own: the last shard applied would
    # win, silently, even in a strict load (names and shapes all fit). The index says where
    # each tensor is.
    _, folder = saved(tiny, tmp_path / "pkg", max_shard_size=40)
    index = json.loads((folder / "model.safetensors.index.json").read_text())["weight_map"]
    second = folder / index["bias"]

    def add(header: dict[str, Any]) -> None:
        end = header["bias"]["data_offsets"][1]
        header["weight"] = {"dtype": "F32", "shape": [3, 4], "data_offsets": [end, end + 48]}

    _rewrite_header(second, add)
    with second.open("ab") as fh:
        fh.write(np.full((3, 4), 7, dtype=np.float32).tobytes())
    remanifest(folder)
    with pytest.raises(PackageError, match="weight"):
        hubcore.load(str(folder))


@pytest.mark.parametrize(
    "lie",
    ["past the end", "overlapping", "huge header", "dtype", "shape"],
)
def test_safetensors_headers_that_lie(hub_home, tiny, tmp_path, lie) -> None:
    _, folder = saved(tiny, tmp_path / "pkg")
    path = folder / "model.safetensors"

    def change(header: dict[str, Any]) -> None:
        if lie == "past the end":
            header["bias"]["data_offsets"][1] += 1000
        elif lie == "overlapping":
            header["bias"]["data_offsets"] = [0, 12]
        elif lie == "dtype":
            header["bias"]["dtype"] = "F64"
        elif lie == "shape":
            header["bias"]["shape"] = [2]

    if lie == "huge header":
        raw = path.read_bytes()
        path.write_bytes(struct.pack("<Q", 1 << 60) + raw[8:])
    else:
        _rewrite_header(path, change)
    remanifest(folder)
    with pytest.raises(HubError):
        hubcore.load(str(folder))


# -- pushes -------------------------------------------------------------------------------------
def test_push_over_a_different_package_leaves_no_stale_files(hub_home, tiny, tmp_path) -> None:
    tiny_attack, _ = tiny
    old = hubcore.save_pretrained(
        trained(tiny_attack), tmp_path / "old", config=tiny_attack.TinyConfig(), max_shard_size=40
    )
    (old / "old_helper.py").write_text("X = 1\n")  # shipped code of the old version
    remanifest(old)
    dest = (tmp_path / "store" / "p").as_uri()
    hubcore.push(old, dest)
    model, new = saved(tiny, tmp_path / "new")
    pin = hubcore.push(new, dest)
    store = tmp_path / "store" / "p"
    assert sorted(p.name for p in store.iterdir()) == sorted(p.name for p in new.iterdir())
    same(hubcore.load(dest, revision=pin), model)


def test_push_keeps_files_it_did_not_write(hub_home, tiny, tmp_path) -> None:
    # Held: a push removes only files an earlier push recorded, never others of the folder.
    _, folder = saved(tiny, tmp_path / "pkg")
    store = tmp_path / "store" / "p"
    store.mkdir(parents=True)
    (store / "notes.txt").write_text("mine")
    hubcore.push(folder, store.as_uri())
    assert (store / "notes.txt").read_text() == "mine"


def test_push_cli_does_not_print_credentials(hub_home, tiny, tmp_path, s3_bucket) -> None:
    from click.testing import CliRunner

    from hubcore.cli import main

    _, folder = saved(tiny, tmp_path / "pkg")
    dest = (tmp_path / "store" / "p").as_uri() + "?token=SECRET123"
    result = CliRunner().invoke(main, ["push", str(folder), dest])
    assert "revision: sha256:" in result.output
    assert "SECRET123" not in result.output
    dest = f"s3://testing:SECRET456@{s3_bucket}/p"  # moto takes any key
    result = CliRunner().invoke(main, ["push", str(folder), dest])
    assert "SECRET456" not in result.output


def test_two_pushes_at_once_never_give_a_wrong_model(hub_home, tiny, tmp_path) -> None:
    """Held: pushes of two packages to one folder, interleaved file by file, leave a folder
    that loads as one of them or fails with a clear error; never a mix."""
    import threading

    tiny_attack, _ = tiny
    models = [trained(tiny_attack, seed=s) for s in (1, 2)]
    folders = [
        hubcore.save_pretrained(m, tmp_path / f"p{i}", config=tiny_attack.TinyConfig())
        for i, m in enumerate(models)
    ]
    dest = (tmp_path / "store" / "p").as_uri()
    for _ in range(3):
        threads = [threading.Thread(target=hubcore.push, args=(f, dest)) for f in folders]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        try:
            got = hubcore.load(dest, force_reload=True)
        except HubError:
            continue
        x = np.arange(4, dtype=np.float32)
        assert any(got(x).tobytes() == m(x).tobytes() for m in models)


def test_a_tampered_file_on_a_store_leaves_nothing_in_the_cache(hub_home, tiny, tmp_path) -> None:
    _, folder = saved(tiny, tmp_path / "pkg")
    store = tmp_path / "store" / "p"
    pin = hubcore.push(folder, store.as_uri())
    weights = store / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\1\2\3\4")
    for revision in (None, pin):
        with pytest.raises(PackageIntegrityError, match=r"model\.safetensors"):
            hubcore.load(store.as_uri(), revision=revision)
    assert not list((hub_home / "repos").rglob("model.safetensors"))


# -- configs ------------------------------------------------------------------------------------
class Act(enum.Enum):
    RELU = "relu"
    GELU = "gelu"


@attrs.define
class Block:
    width: int = 8
    act: Act = Act.RELU


@hubcore.model_config("round-trip")
class RoundTrip:
    blocks: list[Block] = attrs.Factory(lambda: [Block(), Block(16, Act.GELU)])
    head: Block | None = None
    sizes: tuple[int, ...] = (1, 2, 3)
    pair: tuple[int, str] = (1, "a")
    names: dict[str, float] = attrs.Factory(dict)
    act: Act = Act.GELU
    dropout: float | None = 0.1
    tags: frozenset[str] = frozenset()


def test_config_round_trip_keeps_every_attrs_type(tmp_path) -> None:
    config = RoundTrip(head=Block(4), names={"a": 1.5}, tags=frozenset({"x"}))
    config.save(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["act"] == "gelu"
    assert data["blocks"][1] == {"width": 16, "act": "gelu"}
    loaded = RoundTrip.load(tmp_path)
    assert loaded == config
    assert isinstance(loaded.blocks[0], Block)
    assert isinstance(loaded.sizes, tuple)
    assert RoundTrip.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("act", "tanh", "act"),
        ("blocks", [{"width": "wide"}], "blocks"),
        ("blocks", [{"widht": 3}], "widht"),
        ("head", 5, "head"),
        ("sizes", [1, "two"], "sizes"),
        ("pair", [1, 2, 3], "pair"),
        ("names", {"a": "b"}, "names"),
        ("names", [], "names"),
        ("dropout", "x", "dropout"),
    ],
)
def test_config_values_of_the_wrong_nested_type_name_the_field(key, value, named) -> None:
    with pytest.raises(ConfigValueError, match=named):
        RoundTrip.from_dict({key: value})


@hubcore.model_config("unsaveable")
class Unsaveable:
    where: Path = Path("/tmp")


def test_a_config_field_json_cannot_hold_is_named_on_save(tmp_path) -> None:
    with pytest.raises((ConfigValueError, TypeError), match="where"):
        Unsaveable().save(tmp_path)


# -- model types --------------------------------------------------------------------------------
def test_two_plugins_registering_one_type_is_an_error(
    hub_home, tiny, tmp_path, monkeypatch
) -> None:
    import hubcore.plugins as plugins_module
    from hubcore.plugins import load_plugins

    tiny_attack, _ = tiny
    _, folder = saved(tiny, tmp_path / "pkg")

    def plugin(build: Any) -> Any:
        class Registers:
            @hubcore.hookimpl
            def hubcore_register_model_types(self, register: Any) -> None:
                register("tiny-attack", config=tiny_attack.TinyConfig, build=build)

        return Registers()

    loaded = load_plugins(
        autoload=False,
        extra=[("first", plugin(tiny_attack.Tiny)), ("second", plugin(lambda c: None))],
    )
    monkeypatch.setattr(plugins_module, "_plugins", loaded)
    with pytest.raises(PackageError, match=r"first.*second|second.*first"):
        hubcore.load(str(folder))


# -- torch --------------------------------------------------------------------------------------
def test_torch_tied_and_non_contiguous_weights(hub_home, tmp_path, monkeypatch) -> None:
    torch = pytest.importorskip("torch")
    src = tmp_path / "src"
    src.mkdir()
    (src / "tied_net.py").write_text(
        textwrap.dedent(
            """
            import hubcore
            import torch
            from torch import nn


            @hubcore.model_config("tied-net")
            class TiedConfig:
                vocab: int = 5
                dim: int = 3


            class TiedNet(nn.Module):
                def __init__(self, config):
                    super().__init__()
                    self.embed = nn.Embedding(config.vocab, config.dim)
                    self.out = nn.Linear(config.dim, config.vocab, bias=False)
                    self.out.weight = self.embed.weight  # tied
                    self.register_buffer("t", torch.zeros(config.dim, 2))
                    self.register_buffer("scalar", torch.tensor(0.0))
                    self.register_buffer("empty", torch.zeros(0, 4))
                    self.bf = nn.Parameter(torch.zeros(2, 2, dtype=torch.bfloat16))

                def forward(self, x):
                    return self.out(self.embed(x)) + self.scalar
            """
        )
    )
    monkeypatch.syspath_prepend(str(src))
    import tied_net

    try:
        torch.manual_seed(0)
        net = tied_net.TiedNet(tied_net.TiedConfig())
        with torch.no_grad():
            net.t = torch.arange(6, dtype=torch.float32).reshape(2, 3).t()  # non-contiguous
            net.scalar.fill_(0.5)
            net.bf.copy_(torch.randn(2, 2).to(torch.bfloat16))
        folder = hubcore.save_pretrained(net, tmp_path / "pkg", config=tied_net.TiedConfig())
        back = hubcore.load(str(folder))
        x = torch.tensor([0, 3, 4])
        assert torch.equal(back(x), net(x))
        assert torch.equal(back.t, net.t)
        assert torch.equal(back.bf, net.bf)
        assert back.out.weight.data_ptr() == back.embed.weight.data_ptr()  # still tied
    finally:
        sys.modules.pop("tied_net", None)


def test_a_push_interrupted_at_any_step_never_serves_a_wrong_model(
    hub_home, tiny, tmp_path, monkeypatch
) -> None:
    """Held: over an older package, a push that fails at its n-th write (each file, the
    journal, the stale-file removal, the manifest) leaves a folder that is an incomplete
    package (never the old manifest over new files), and a rerun completes it."""
    from fsspec.implementations.local import LocalFileSystem

    from hubcore.packages.errors import IncompletePackageError

    tiny_attack, _ = tiny
    old_model = trained(tiny_attack, seed=1)
    old = hubcore.save_pretrained(old_model, tmp_path / "old", config=tiny_attack.TinyConfig())
    model, new = saved(tiny, tmp_path / "new", max_shard_size=40)
    writes = ("put_file", "pipe_file", "rm_file")
    real = {name: getattr(LocalFileSystem, name) for name in writes}
    step = 0
    while True:
        dest = tmp_path / f"store{step}"
        hubcore.push(old, dest.as_uri())
        calls = 0

        def failing(name: str) -> Any:
            def write(self: Any, *args: Any, **kwargs: Any) -> Any:
                nonlocal calls
                calls += 1
                if calls == step + 1:  # noqa: B023 (read while this step runs)
                    raise OSError(f"connection lost at write {calls}")
                return real[name](self, *args, **kwargs)

            return write

        for name in writes:
            monkeypatch.setattr(LocalFileSystem, name, failing(name))
        try:
            pin = hubcore.push(new, dest.as_uri())
        except HubError:
            pin = None
        for name in writes:
            monkeypatch.setattr(LocalFileSystem, name, real[name])
        if pin is not None:  # the push got past every write: all steps were tried
            assert step > 5
            break
        if (dest / MANIFEST).exists():  # before the first change or after the last
            expected = {
                (old / MANIFEST).read_bytes(): old_model,
                (new / MANIFEST).read_bytes(): model,
            }
            same(hubcore.load(dest.as_uri()), expected[(dest / MANIFEST).read_bytes()])
        else:
            with pytest.raises(IncompletePackageError):
                hubcore.load(dest.as_uri())
        same(hubcore.load(dest.as_uri(), revision=hubcore.push(new, dest.as_uri())), model)
        step += 1


@pytest.mark.parametrize("shards", [1, 2])
def test_a_deeply_nested_safetensors_header_is_a_clear_error(
    hub_home, tiny, tmp_path, shards
) -> None:
    _, folder = saved(tiny, tmp_path / "pkg", max_shard_size=40 if shards > 1 else "2GB")
    header = b'{"bias": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    target = sorted(folder.glob("model*.safetensors"))[-1]
    target.write_bytes(struct.pack("<Q", len(header)) + header)
    remanifest(folder)
    with pytest.raises(HubError, match=r"model.*\.safetensors"):
        hubcore.load(str(folder))


def test_a_build_that_is_not_a_class_or_function_is_refused_on_save(
    hub_home, tiny, tmp_path
) -> None:
    import functools

    tiny_attack, _ = tiny
    with pytest.raises(PackageError, match="classes and functions"):
        hubcore.save_pretrained(
            trained(tiny_attack),
            tmp_path / "pkg",
            config=tiny_attack.TinyConfig(),
            build=functools.partial(tiny_attack.Tiny),
        )
