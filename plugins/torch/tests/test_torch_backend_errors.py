"""The torch backend names what is wrong with a file it cannot read, and caches nothing that a
hash check rejected."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import hubcore  # noqa: E402
from hubcore.compat import torch_hub  # noqa: E402
from hubcore.errors import IntegrityError, WeightsFormatError  # noqa: E402


def read(path: Path, **options):
    return hubcore.load_weights(str(path), backend="torch", **options)


@pytest.mark.parametrize("weights_only", [True, False])
def test_garbage_is_not_called_unsafe(hub_home, tmp_path, weights_only) -> None:
    path = tmp_path / "model.pth"
    path.write_bytes(b"<html>404 Not Found</html>" * 4)
    with pytest.raises(WeightsFormatError, match="is not a torch file") as info:
        read(path, weights_only=weights_only)
    assert "arbitrary code" not in str(info.value)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(WeightsFormatError, match="is not a torch file"):
        read(empty, weights_only=weights_only)


def test_damaged_files_are_called_damaged(hub_home, tmp_path) -> None:
    legacy = tmp_path / "legacy.pth"
    torch.save({"w": torch.zeros(3)}, legacy, _use_new_zipfile_serialization=False)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(legacy.read_bytes()[:20])
    with pytest.raises(WeightsFormatError, match="not a readable torch file") as info:
        read(cut)
    assert "arbitrary code" not in str(info.value)
    zipped = tmp_path / "zipped.pth"
    torch.save({"w": torch.zeros(3)}, zipped)
    half = tmp_path / "half.pth"
    half.write_bytes(zipped.read_bytes()[: zipped.stat().st_size // 2])
    with pytest.raises(WeightsFormatError, match="not a readable torch file"):
        read(half)


def test_objects_beyond_tensors_are_called_unsafe(hub_home, tmp_path) -> None:
    path = tmp_path / "obj.pth"
    torch.save({"fn": Path("/x")}, path)
    with pytest.raises(WeightsFormatError, match="beyond tensors") as info:
        read(path)
    assert "pathlib" in str(info.value)  # the unpickler's own words: which global


def test_rejected_check_hash_caches_nothing(hub_home, file_server) -> None:
    path = file_server.folder / "net.pth"
    torch.save({"w": torch.ones(2)}, path)
    url = f"{file_server.url}/net.pth"
    with pytest.raises(RuntimeError) as bad:
        torch_hub.load_state_dict_from_url(url, check_hash=True, file_name="net-12345678.pth")
    assert isinstance(bad.value, IntegrityError)
    assert not [p for p in (hub_home / "blobs").rglob("*") if p.is_file()]
    file_server.reset_counters()
    # Without check_hash the file is fetched again, not served from a rejected copy.
    assert torch.equal(torch_hub.load_state_dict_from_url(url)["w"], torch.ones(2))
    assert len(file_server.requests()) == 1


def test_every_truncation_of_a_legacy_pickle_is_a_format_error(hub_home, tmp_path) -> None:
    legacy = tmp_path / "legacy.pth"
    torch.save(
        {"w": torch.zeros(3), "b": torch.ones(2)}, legacy, _use_new_zipfile_serialization=False
    )
    data = legacy.read_bytes()
    for cut in range(1, len(data), max(1, len(data) // 40)):
        damaged = tmp_path / f"cut{cut}.pth"
        damaged.write_bytes(data[:cut])
        with pytest.raises(WeightsFormatError):
            read(damaged)


def test_an_upper_case_hash_prefix_caches_nothing(hub_home, file_server, tmp_path) -> None:
    url = file_server.add("w.bin", b"some bytes")
    digest = hubcore.file_sha256(file_server.folder / "w.bin")
    with pytest.raises(IntegrityError):
        torch_hub.download_url_to_file(url, str(tmp_path / "w.bin"), hash_prefix=digest[:8].upper())
    assert not (tmp_path / "w.bin").exists()
    assert not list((hub_home / "blobs").rglob("*")) or not any(
        p.is_file() for p in (hub_home / "blobs").rglob("*")
    )
