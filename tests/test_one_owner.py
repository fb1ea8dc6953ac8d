"""One owner per concern (issue 11): the API is the public surface over the runner, a source
checks a package pin without importing the packages feature, and a bad call is a HubError."""

from __future__ import annotations

from pathlib import Path

import pytest

import hubcore
import hubcore.api
import hubcore.runner
from hubcore.errors import HubError, LockMismatchError, UsageError
from hubcore.sources import FetchContext
from hubcore.sources.folder import FolderSource
from hubcore.store.cache import get_cache

PIN = "sha256:" + "ab" * 32


def test_positional_arguments_to_a_model_package_are_a_typed_error(hub_home) -> None:
    with pytest.raises(UsageError, match="positional arguments") as caught:
        hubcore.load("./no-such-package", None, 1, 2)
    assert isinstance(caught.value, HubError)
    assert isinstance(caught.value, TypeError)  # what callers caught before


def test_the_runner_names_stay_importable_from_the_api() -> None:
    """Plugins, compat layers and tests use these through ``hubcore.api``."""
    for name in hubcore.runner.__all__:
        assert getattr(hubcore.api, name) is getattr(hubcore.runner, name), name


def _folder(tmp_path: Path) -> tuple[str, Path]:
    folder = tmp_path / "store" / "pkg"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    return folder.as_uri(), folder


def test_a_pinned_folder_is_checked_by_the_context_before_it_is_published(
    hub_home, tmp_path
) -> None:
    url, _ = _folder(tmp_path)
    source = FolderSource()
    ref = source.parse(url, {"commit": PIN})
    assert ref is not None
    seen: list[tuple[list[str], str, str]] = []

    def refuse(root: Path, pin: str, label: str) -> None:
        seen.append((sorted(p.name for p in root.iterdir()), pin, label))
        raise LockMismatchError(f"{label} is not {pin}")

    cache = get_cache()
    with pytest.raises(LockMismatchError, match="is not"):
        source.open(ref, FetchContext(cache=cache, check_pin=refuse))
    assert seen == [(["config.json"], PIN, str(ref))]  # the filled tree, before publishing
    assert not cache.snapshot_dir(source.name, ref.location, PIN).exists()

    def accept(root: Path, pin: str, label: str) -> None:
        seen.append((sorted(p.name for p in root.iterdir()), pin, label))

    snapshot = source.open(ref, FetchContext(cache=cache, check_pin=accept))
    assert snapshot.snapshot_id == PIN
    assert (snapshot.root / "config.json").is_file()


def test_a_pinned_folder_without_a_pin_check_is_refused(hub_home, tmp_path) -> None:
    """Fail closed: a context that cannot check a package digest publishes nothing pinned."""
    url, _ = _folder(tmp_path)
    source = FolderSource()
    ref = source.parse(url, {"commit": PIN})
    assert ref is not None
    cache = get_cache()
    with pytest.raises(LockMismatchError, match="check a package digest"):
        source.open(ref, FetchContext(cache=cache))
    assert not cache.snapshot_dir(source.name, ref.location, PIN).exists()
    unpinned = source.parse(url, {})
    assert unpinned is not None
    assert source.open(unpinned, FetchContext(cache=cache)).snapshot_id  # no pin, no check


def test_the_api_checks_package_pins_through_the_context(hub_home, tmp_path) -> None:
    """The runner supplies the packages feature's pin check: a wrong digest is refused."""
    url, _ = _folder(tmp_path)
    with pytest.raises(LockMismatchError, match="not the pinned"):
        hubcore.api.open_repo(url, source="fsspec", commit=PIN)
