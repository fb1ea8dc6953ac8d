"""The bundled example hub with PyTorch: pretrained loads, cache reuse, map_location, CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

import hubcore  # noqa: E402
from hubcore.cli import main  # noqa: E402
from hubcore.errors import WeightsFormatError, WeightsMismatchError  # noqa: E402
from hubcore_torch import load_weights  # noqa: E402

HUB = Path(__file__).resolve().parents[3] / "examples" / "hub"


def test_tinynet_pretrained(hub_home) -> None:
    model = hubcore.load(str(HUB), "tinynet", pretrained=True)
    expected = load_file(str(HUB / "weights" / "tinynet-c10.safetensors"))
    for key, value in model.state_dict().items():
        assert torch.equal(value, expected[key]), key
    assert model(torch.zeros(1, 3, 8, 8)).shape == (1, 10)


def test_variant_with_matching_architecture(hub_home) -> None:
    model = hubcore.load(str(HUB), "tinynet", num_classes=100, pretrained="c100")
    assert model.classifier.weight.shape == (100, 8)
    with pytest.raises(WeightsMismatchError, match=r"classifier\.weight"):
        hubcore.load(str(HUB), "tinynet", pretrained="c100")


def test_reexported_entrypoint(hub_home) -> None:
    model = hubcore.load(str(HUB), "mlp", pretrained=True)
    assert sum(p.numel() for p in model.parameters()) == 16 * 32 + 32 + 32 * 4 + 4


def test_map_location_is_forwarded(hub_home) -> None:
    seen = []
    backend = hubcore.plugins.get_plugins().backend_named("torch")
    original = backend.read_weights

    def spy(file, **options):
        seen.append(options)
        return original(file, **options)

    backend.read_weights = spy  # an instance attribute on the registered backend
    hubcore.load(str(HUB), "tinynet", pretrained=True, map_location="cpu")
    assert seen == [{"map_location": "cpu"}]


def test_load_weights_pth_with_weights_only(hub_home, tmp_path) -> None:
    state = {"w": torch.arange(4.0)}
    torch.save(state, tmp_path / "s.pth")
    sha = hubcore.file_sha256(tmp_path / "s.pth")
    loaded = load_weights(str(tmp_path / "s.pth"), sha256=sha, map_location="cpu")
    assert torch.equal(loaded["w"], state["w"])
    nested = {"epoch": 3, "state_dict": state}
    torch.save(nested, tmp_path / "ckpt.pt")
    assert torch.equal(load_weights(str(tmp_path / "ckpt.pt"))["w"], state["w"])


class Evil:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "ran"))


def test_pickle_with_code_is_refused(hub_home, tmp_path) -> None:
    marker = tmp_path / "marker"
    torch.save({"w": Evil(str(marker))}, tmp_path / "evil.pth")
    with pytest.raises(WeightsFormatError, match="not unpickled"):
        load_weights(str(tmp_path / "evil.pth"))
    assert not marker.exists()
    torch.load(tmp_path / "evil.pth", weights_only=False)  # what an unsafe load would do
    assert marker.exists()


def test_cli_load_twice_second_from_cache(hub_home) -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["load", str(HUB), "tinynet", "--pretrained"])
    second = runner.invoke(main, ["load", str(HUB), "tinynet", "--pretrained"])
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "parameters=330" in first.output
    assert "backend: torch" in first.output
    assert "transferred)" in first.output
    assert "cache)" in second.output


def test_two_repos_clashing_models_module_with_torch(hub_home, make_hub_repo) -> None:
    files = {
        "hubconf.py": "from models import build\n",
        "models.py": "import torch\n\ndef build():\n    return torch.nn.Linear({n}, 1)\n",
    }
    a = make_hub_repo({k: v.replace("{n}", "2") for k, v in files.items()})
    b = make_hub_repo({k: v.replace("{n}", "3") for k, v in files.items()})
    assert hubcore.load(str(a), "build").in_features == 2
    assert hubcore.load(str(b), "build").in_features == 3
