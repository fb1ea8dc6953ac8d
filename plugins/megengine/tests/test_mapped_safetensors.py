"""MegEngine reads safetensors memory-mapped: ``load_state_dict`` copies each array into its
own tensor, so the file is read once, from the page cache, instead of into memory first."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

mge = pytest.importorskip("megengine")
from safetensors.numpy import load_file, save_file  # noqa: E402

import hubcore  # noqa: E402
from hubcore.errors import WeightsFormatError  # noqa: E402


def test_safetensors_arrays_are_mapped_copy_on_write(hub_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    arrays = {
        "weight": np.arange(12, dtype=np.float32).reshape(3, 4),
        "steps": np.array([7], dtype=np.int64),
        "empty": np.zeros((0, 4), dtype=np.float16),
    }
    save_file(arrays, str(path))
    before = hubcore.file_sha256(path)
    state = hubcore.load_weights(str(path), backend="megengine")
    assert isinstance(state["weight"], np.memmap)
    for key, value in load_file(str(path)).items():
        assert state[key].dtype == value.dtype
        np.testing.assert_array_equal(state[key], value)
    state["weight"][0, 0] = 100.0  # a private mapping: the cached file is never written
    assert hubcore.file_sha256(path) == before
    model = mge.module.Linear(4, 3)
    model.load_state_dict({"weight": state["weight"], "bias": np.ones(3, np.float32)})
    assert float(model.weight.numpy()[0, 0]) == 100.0


def test_a_tensor_whose_bytes_do_not_fit_its_shape_is_refused(
    hub_home: Path, tmp_path: Path
) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}).encode()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)
    with pytest.raises(WeightsFormatError, match="byte size"):
        hubcore.load_weights(str(path), backend="megengine")
