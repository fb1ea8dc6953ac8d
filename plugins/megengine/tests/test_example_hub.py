"""The bundled example hub with MegEngine, and MegEngine's own pickle format read safely."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

mge = pytest.importorskip("megengine")

from safetensors.numpy import load_file  # noqa: E402

import hubcore  # noqa: E402
from hubcore.errors import WeightsFormatError  # noqa: E402
from hubcore_megengine import load_weights  # noqa: E402

HUB = Path(__file__).resolve().parents[3] / "examples" / "hub"


def test_mge_tinynet_pretrained(hub_home) -> None:
    model = hubcore.load(str(HUB), "mge_tinynet", pretrained=True)
    expected = load_file(str(HUB / "weights" / "mge-tinynet-c10.safetensors"))
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, expected[key], err_msg=key)
    out = model(mge.tensor(np.zeros((1, 3, 8, 8), dtype="float32")))
    assert out.shape == (1, 10)


def test_serialized_state_dict_with_tensors(hub_home, tmp_path) -> None:
    state = {"w": mge.tensor(np.arange(4, dtype="float32")), "b": np.ones(2, "float32")}
    mge.save(state, str(tmp_path / "s.pkl"))
    loaded = load_weights(str(tmp_path / "s.pkl"))
    np.testing.assert_array_equal(loaded["w"].numpy(), np.arange(4))
    np.testing.assert_array_equal(loaded["b"], np.ones(2))


class Evil:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "ran"))


def test_malicious_pickle_is_refused(hub_home, tmp_path) -> None:
    marker = tmp_path / "marker"
    with open(tmp_path / "evil.pkl", "wb") as fh:
        pickle.dump({"w": Evil(str(marker))}, fh)
    with pytest.raises(WeightsFormatError, match="refusing to unpickle"):
        load_weights(str(tmp_path / "evil.pkl"))
    assert not marker.exists()
    # the same file is what plain megengine.load would execute:
    mge.load(str(tmp_path / "evil.pkl"))
    assert marker.exists()
