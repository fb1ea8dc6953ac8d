"""Loading a model package: ``hubcore.from_pretrained(ref)`` and ``hubcore.load(ref)``.

From any source a hubconf repository loads from. The order of checks, none of which runs
package code: ``config.json`` (format), the manifest (an absent one is an incomplete
package), the pin (``revision="sha256:<digest>"``: the manifest's own hash), every file
against the manifest. Then the builder: a registered ``model_type`` first, then installed
classes, then shipped code, which is imported only after the trust check and in the
isolation of hubconf repositories. The weights are applied by
:func:`hubcore.repo.pretrained.build_pretrained` (the fast path where the backend offers it).

A snapshot in the cache that fails a check is removed from the cache before the error is
raised, so nothing damaged or incomplete stays there.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hubcore.errors import EntrypointError, HubError, UsageError
from hubcore.events import notify
from hubcore.packages.code import resolve_in, resolve_installed
from hubcore.packages.config import (
    CONFIG_NAME,
    config_from_dict,
    is_model_config,
    read_config_json,
)
from hubcore.packages.errors import PackageError, PackageIntegrityError, UnknownModelTypeError
from hubcore.packages.files import checked_stat, read_json_file
from hubcore.packages.manifest import (
    check_digest,
    found_files,
    read_manifest_digest,
    verify_files,
)
from hubcore.packages.save import CARD_NAME
from hubcore.packages.types import conflicting_model_types, model_types
from hubcore.packages.weights import weight_files
from hubcore.plugins.backends import WeightsFile
from hubcore.policy import trust
from hubcore.policy.trust import TrustMode
from hubcore.runcontext import public_call
from hubcore.sources import Snapshot
from hubcore.store.cache import get_cache

__all__ = ["from_pretrained", "is_package", "load_package", "package_help", "parse_pin"]

_PIN = re.compile(r"^sha256:([0-9a-f]{64})$")


def parse_pin(revision: str | None) -> str | None:
    """The manifest digest a ``revision="sha256:<64 hex>"`` pins, else ``None``."""
    match = _PIN.match(revision or "")
    return match.group(1) if match else None


def is_package(root: Path) -> bool:
    """Whether *root* holds a model package (a ``config.json`` with a ``hubcore`` section
    naming a framework); reads one small file, runs nothing."""
    try:
        data = read_json_file(root, CONFIG_NAME, str(root), remote=False)
    except (OSError, HubError):
        return False
    section = data.get("hubcore") if isinstance(data, dict) else None
    return isinstance(section, dict) and "framework" in section


#: The options of :func:`hubcore.open_repo` a package load passes on.
_OPEN_OPTIONS = frozenset(
    {"source", "host", "token", "storage_options", "offline", "force_reload", "progress"}
)


@public_call
def from_pretrained(
    repo: str,
    *,
    revision: str | None = None,
    trust_repo: TrustMode = "check",
    strict: bool = True,
    map_location: Any = None,
    fast_load: bool | None = None,
    **options: Any,
) -> Any:
    """Load the model package at *repo* (any reference :func:`hubcore.load` takes).

    *revision* pins a commit on git sources, or the package digest (``"sha256:<hex>"``, see
    :mod:`hubcore.packages.manifest`) on any source; *trust_repo* as for
    :func:`hubcore.load` (it matters only for packages that ship code). *strict* and
    *map_location* go to the backend; *fast_load* ``False`` forces the plain path (``True``
    the fast one; see :func:`hubcore.repo.pretrained.build_pretrained`); *options* are
    :func:`hubcore.open_repo`'s.
    """
    from hubcore.api import open_repo, parse_repo

    unknown = sorted(set(options) - _OPEN_OPTIONS)
    if unknown:
        raise UsageError(
            f"a model package load takes no option {', '.join(map(repr, unknown))}; it takes "
            f"strict, map_location, fast_load, revision, trust_repo and "
            f"{', '.join(sorted(_OPEN_OPTIONS))} (name an entrypoint to pass arguments to one)"
        )
    pin = parse_pin(revision)
    if revision and revision.startswith("sha256:") and pin is None:
        raise PackageError(f"revision={revision!r} is not sha256: and 64 lowercase hex digits")
    commit = revision
    if pin is not None:  # only a store without commits takes the digest as its revision
        source_options = {
            k: options[k] for k in ("source", "host", "storage_options") if k in options
        }
        commit = revision if parse_repo(repo, **source_options).source == "fsspec" else None
    snapshot = open_repo(repo, commit=commit, **options)
    return load_package(
        snapshot,
        pin=pin,
        trust_repo=trust_repo,
        strict=strict,
        map_location=map_location,
        fast_load=fast_load,
    )


def load_package(
    snapshot: Snapshot,
    *,
    pin: str | None = None,
    trust_repo: TrustMode = "check",
    strict: bool = True,
    map_location: Any = None,
    fast_load: bool | None = None,
) -> Any:
    """Build the model of the package in an opened *snapshot* (see the module docstring)."""
    from hubcore.repo.pretrained import build_pretrained

    label = str(snapshot.ref)
    root = snapshot.root
    remote = snapshot.snapshot_id is not None
    with _dropped_if_bad(snapshot):
        data, manifest = _checked(snapshot, pin)
        section = data["hubcore"]
        entry = str(section.get("weights") or "")
        code = section.get("code") or []
        missing = [n for n in [CONFIG_NAME, entry, *code] if n not in manifest]
        if missing:
            raise PackageError(f"{label}: its manifest does not list {', '.join(missing)}")
        names = weight_files(root, entry, label, remote=remote)
        missing = [n for n in names if n not in manifest]
        if missing:
            raise PackageError(f"{label}: its manifest does not list {', '.join(missing)}")
    config_cls, build, shipped = _builder(snapshot, data, trust_repo)
    config = config_from_dict(config_cls, data)
    files = [
        WeightsFile(root / n, n, manifest[n][0], manifest[n][1], f"{label}/{n}") for n in names
    ]
    options = {} if map_location is None else {"map_location": map_location}
    with _running(snapshot, shipped):
        try:
            result = build_pretrained(
                lambda: build(config), files, strict=strict, read_options=options, fast=fast_load
            )
        except HubError:
            raise
        except Exception as exc:
            raise EntrypointError(
                f"building the {data['model_type']} model of {label} raised "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    notify(
        "hubcore_entrypoint_loaded",
        repo=label,
        entrypoint=data["model_type"],
        result=result,
        weights=files[0].url if files else None,
    )
    return result


def _checked(
    snapshot: Snapshot, pin: str | None
) -> tuple[dict[str, Any], dict[str, tuple[str, int]]]:
    """config.json, the manifest, the pin and every file, checked; nothing run."""
    label, root = str(snapshot.ref), snapshot.root
    remote = snapshot.snapshot_id is not None
    data = read_config_json(root, label, remote=remote)
    if not isinstance(data.get("hubcore"), dict) or "framework" not in data["hubcore"]:
        raise PackageError(
            f"{label}: its {CONFIG_NAME} has no 'hubcore' section, so it is not a model package "
            "saved by hubcore.save_pretrained; name an entrypoint to load a hubconf repository"
        )
    manifest, digest = read_manifest_digest(root, label, remote=remote)
    if pin is not None:
        check_digest(digest, pin, label)
    verify_files(root, manifest, label, get_cache(), extra=found_files(root), remote=remote)
    return data, manifest


@contextlib.contextmanager
def _dropped_if_bad(snapshot: Snapshot) -> Iterator[None]:
    """Remove a cached snapshot that is not a whole, intact package, then re-raise."""
    try:
        yield
    except (PackageError, PackageIntegrityError):
        cache = get_cache()
        if snapshot.snapshot_id is not None and snapshot.root.is_relative_to(cache.root):
            cache.discard_tree(snapshot.root)
        raise


def _builder(
    snapshot: Snapshot, data: Mapping[str, Any], trust_repo: TrustMode
) -> tuple[type[Any], Any, bool]:
    """(configuration class, build function, whether it is shipped code)."""
    label = str(snapshot.ref)
    model_type, section = data["model_type"], data["hubcore"]
    registered = model_types().get(model_type)
    if registered is not None:
        return registered.config, registered.build, False
    rivals = conflicting_model_types().get(model_type)
    if rivals:
        raise PackageError(
            f"{label} is a {model_type!r} model, a type that {' and '.join(rivals)} both "
            "register, so which one builds it is not clear; block one of them "
            f"(HUBCORE_BLOCK_PLUGINS) or call hubcore.register_model_type({model_type!r}, ...)"
        )
    code, build_ref, config_ref = (
        section.get("code"),
        section.get("build"),
        section.get("config_class"),
    )
    if not isinstance(build_ref, str) or not isinstance(config_ref, str):
        raise UnknownModelTypeError(
            f"{label} is a {model_type!r} model, a type nobody registered, and it names no "
            "class to build it; install the plugin that registers it, or call "
            f"hubcore.register_model_type({model_type!r}, config=..., build=...)"
        )
    if code:
        config_cls, build = _shipped(snapshot, config_ref, build_ref, trust_repo)
    else:
        config_cls, build = (
            resolve_installed(config_ref, label),
            resolve_installed(build_ref, label),
        )
    if not isinstance(config_cls, type) or not is_model_config(config_cls):
        raise PackageError(f"{label}: {config_ref} is not a @hubcore.model_config class")
    if getattr(config_cls, "model_type", None) != model_type:
        raise PackageError(
            f"{label}: {config_ref} is of model type {getattr(config_cls, 'model_type', None)!r}, "
            f"the package "
            f"says {model_type!r}"
        )
    if not callable(build):
        raise PackageError(f"{label}: {build_ref} is not callable")
    return config_cls, build, bool(code)


def _shipped(
    snapshot: Snapshot, config_ref: str, build_ref: str, trust_repo: TrustMode
) -> tuple[Any, Any]:
    """The classes of shipped code, imported after the trust check, in isolation."""
    from hubcore.runner import _importer_for, _redirects_held

    trust.ensure_trusted(snapshot, trust_repo)
    importer = _importer_for(snapshot)
    found = []
    for text in (config_ref, build_ref):
        module_name, _, qualname = text.partition(":")
        try:
            with _redirects_held():
                module = importer.import_module(module_name, fresh=snapshot.snapshot_id is None)
        except HubError:
            raise
        except Exception as exc:
            raise EntrypointError(
                f"importing {module_name} shipped with {snapshot.ref} failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        found.append(resolve_in(module, qualname))
    return found[0], found[1]


@contextlib.contextmanager
def _running(snapshot: Snapshot, shipped: bool) -> Iterator[None]:
    if not shipped:
        yield
        return
    from hubcore.runner import running_repository_code

    with running_repository_code(snapshot):
        yield


def package_help(snapshot: Snapshot) -> str:
    """A description of the package in *snapshot*: model type, how it is built, its
    configuration, files and model card. Reads files only; runs no code."""
    label, root = str(snapshot.ref), snapshot.root
    remote = snapshot.snapshot_id is not None
    data = read_config_json(root, label, remote=remote)
    section = data.get("hubcore", {})
    lines = [f"model package {label}", f"model type: {data['model_type']}"]
    if data["model_type"] in model_types():
        how = f"registered type {data['model_type']!r}"
    elif section.get("code"):
        shipped = ", ".join(section["code"])
        how = f"{section.get('build')} (shipped code: {shipped}; runs only if trusted)"
    else:
        how = f"{section.get('build')} (installed)"
    lines += [f"framework: {section.get('framework')}", f"built by: {how}"]
    fields = {k: v for k, v in data.items() if k not in ("model_type", "hubcore")}
    lines += ["config:", *(f"  {k} = {json.dumps(v)}" for k, v in fields.items())]
    try:
        manifest, digest = read_manifest_digest(root, label, remote=remote)
        lines += [f"digest: sha256:{digest}", "files:"]
        lines += [
            f"  {name}  {size} bytes  sha256 {sha[:12]}..."
            for name, (sha, size) in manifest.items()
        ]
    except PackageError as exc:
        lines.append(f"files: {exc}")
    card = card_text(root, label, remote)
    if card:
        lines += ["", card]
    return "\n".join(lines)


#: The most of a model card ``help`` shows.
MAX_CARD_BYTES = 1 << 20


def card_text(root: Path, label: str, remote: bool) -> str:
    """The model card, if it is a regular file of the package (its first megabyte; no
    links out of a fetched snapshot), else ``""`` or why it is not shown."""
    try:
        checked_stat(root, CARD_NAME, label, remote=remote)
        with open(root / CARD_NAME, "rb") as fh:
            raw = fh.read(MAX_CARD_BYTES)
    except FileNotFoundError:
        return ""
    except PackageIntegrityError as exc:
        return f"(model card not shown: {exc})"
    return raw.decode("utf-8", errors="replace").rstrip()
