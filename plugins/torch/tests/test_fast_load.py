"""The fast path of pretrained loads (build on ``meta``, assign mapped weights) against the
plain path: parameters, buffers, ties and outputs identical, and a fall back wherever the
fast path cannot guarantee that.

Each fall-back case is checked twice: as users get it (the plain path is taken, the model
is identical) and with the fast path forced (``hubcore_torch.assign.refuse`` disabled), where
the same comparison must fail, so that the test proves the fall back is needed.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

import hubcore
from hubcore import WeightsFile
from hubcore.repo.pretrained import build_pretrained
from hubcore.store.cache import file_sha256
from hubcore_torch import assign as fast


@pytest.fixture(autouse=True)
def fast_path_for_small_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """These models are tiny: let the fast path take them as it takes big ones."""
    monkeypatch.setenv("HUBCORE_FAST_LOAD_MIN_BYTES", "0")


NET = '''
import torch
from torch import nn


class NonPersistent(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.register_buffer("scale", torch.arange(3.0) + 1, persistent=False)

    def forward(self, x):
        return self.fc(x) * self.scale


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(6, 4)
        self.head = nn.Linear(4, 6, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, x):
        return self.head(self.embed(torch.arange(6)) + x.sum())


class Norm(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.bn = nn.BatchNorm1d(3)

    def forward(self, x):
        return self.bn(self.fc(x))


class CustomInit(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        nn.init.orthogonal_(self.fc.weight)
        self.fc.weight.data.mul_(0.5)
        self.fc.bias.data.fill_(0.1)
        self.gate = nn.Parameter(torch.ones(4))
        with torch.no_grad():
            self.gate[:2] = 2.0

    def forward(self, x):
        return self.fc(x) * self.gate


class Derived(nn.Module):
    """A buffer computed from a parameter while building."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.register_buffer("row_norm", self.fc.weight.detach().abs().sum(1), persistent=False)

    def forward(self, x):
        return self.fc(x) / self.row_norm


class ValueInit(nn.Module):
    """Custom initialisation that depends on the initial values (rows scaled to unit norm,
    a gain taken from the result)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        with torch.no_grad():
            self.fc.weight.div_(self.fc.weight.norm(dim=1, keepdim=True))
        self.register_buffer("gain", self.fc.weight.detach().max(), persistent=False)

    def forward(self, x):
        return self.fc(x) * self.gain


class RandomBuffer(nn.Module):
    """A random non-persistent buffer drawn after a parameter was made."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.register_buffer("proj", torch.randn(4), persistent=False)

    def forward(self, x):
        return self.fc(x) * self.proj


class DrawnScalar(nn.Module):
    """A random number kept as a Python float after a parameter was made."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.scale = float(torch.rand(()))

    def forward(self, x):
        return self.fc(x) * self.scale


class HiddenDraw(nn.Module):
    """A random buffer drawn where no torch function mode can see it."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        with torch._C.DisableTorchFunction():
            proj = torch.randn(4)
        self.register_buffer("proj", proj, persistent=False)

    def forward(self, x):
        return self.fc(x) * self.proj


class DrawnParameter(nn.Module):
    """Numbers drawn after a parameter only to become what the weights replace: a position
    embedding as vision transformers make it, and a persistent random buffer."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.pos = nn.Parameter(torch.randn(4) * 0.02)
        self.register_buffer("noise", torch.rand(4))

    def forward(self, x):
        return self.fc(x) + self.pos + self.noise


class Rewrapped(nn.Module):
    """A decoder tied to the encoder's transposed weight (a parameter made from another)."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(4, 3, bias=False)
        self.dec = nn.Linear(3, 4, bias=False)
        self.dec.weight = nn.Parameter(self.enc.weight.t())

    def forward(self, x):
        return self.dec(self.enc(x))


class BufferAlias(nn.Module):
    """A persistent buffer that is a view of a parameter (one memory)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.register_buffer("alias", self.fc.weight.data)

    def forward(self, x):
        return self.fc(x) + self.alias.sum()


class NestedMeta(nn.Module):
    """A frozen copy of a parameter kept in a container attribute."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.cfg = {"frozen": [nn.Parameter(self.fc.weight, requires_grad=False)]}

    def forward(self, x):
        return self.fc(x) + self.cfg["frozen"][0].sum()


class RandomShape(nn.Module):
    """A size drawn at random after a parameter was made."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.k = int(torch.nonzero(torch.rand(8) > 0.5).shape[0])

    def forward(self, x):
        return self.fc(x) * self.k


class ChannelsLast(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.to(memory_format=torch.channels_last)

    def forward(self, x):
        return self.conv(x.reshape(-1, 2, 2, 1)).flatten(1)


class Sparse(nn.Module):
    """A sparse parameter, which has no meta form, before the first ordinary one."""

    def __init__(self):
        super().__init__()
        self.s = nn.Parameter(torch.eye(4).to_sparse(), requires_grad=False)
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x) + self.s.to_dense().sum()


class OtherRandom(nn.Module):
    """Python's and NumPy's random numbers, and a buffer computed from a weight."""

    def __init__(self):
        super().__init__()
        import random

        import numpy

        self.order = random.sample(range(4), 4)
        self.jitter = float(numpy.random.rand())
        self.fc = nn.Linear(4, 4)
        self.register_buffer("norm", self.fc.weight.detach().norm(), persistent=False)

    def forward(self, x):
        return self.fc(x[:, self.order]) * self.jitter / self.norm


class SharedPair(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4, bias=False)
        self.b = nn.Linear(4, 4, bias=False)

    def forward(self, x):
        return self.b(self.a(x))


class DeviceReads(nn.Module):
    """Tensors made on a parameter's device while building (a common way to place them)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.device = self.fc.weight.device
        mask = torch.ones(4, device=self.fc.weight.data.device)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x):
        return self.fc(x.to(self.device)) * self.mask


class TwoLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 5)
        self.fc2 = nn.Linear(5, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))
'''

HUBCONF = '''
import torch
from hubcore import pretrained

import net

dependencies = ["torch"]


def _seeded(cls):
    torch.manual_seed(0)
    return cls()


@pretrained("weights/non_persistent.safetensors")
def non_persistent():
    return _seeded(net.NonPersistent)


@pretrained("weights/tied.safetensors")
def tied():
    return _seeded(net.Tied)


@pretrained("weights/norm.safetensors")
def norm():
    return _seeded(net.Norm)


@pretrained("weights/custom_init.safetensors")
def custom_init():
    return _seeded(net.CustomInit)


@pretrained("weights/derived.safetensors")
def derived():
    return _seeded(net.Derived)


@pretrained("weights/value_init.safetensors")
def value_init():
    return _seeded(net.ValueInit)


@pretrained("weights/random_buffer.safetensors")
def random_buffer():
    return _seeded(net.RandomBuffer)


@pretrained("weights/random_buffer.safetensors")
def random_buffer_unseeded():
    """The caller seeds (or not): a fall back must start from the generators' state."""
    return net.RandomBuffer()


@pretrained("weights/random_buffer.safetensors")
def drawn_scalar():
    return _seeded(net.DrawnScalar)


@pretrained("weights/random_buffer.safetensors")
def hidden_draw():
    return _seeded(net.HiddenDraw)


@pretrained("weights/drawn_parameter.safetensors")
def drawn_parameter():
    return _seeded(net.DrawnParameter)


@pretrained("weights/rewrapped.safetensors")
def rewrapped():
    return _seeded(net.Rewrapped)


@pretrained("weights/buffer_alias.safetensors")
def buffer_alias():
    return _seeded(net.BufferAlias)


@pretrained("weights/nested_meta.safetensors")
def nested_meta():
    return _seeded(net.NestedMeta)


@pretrained("weights/random_buffer.safetensors")
def random_shape():
    return _seeded(net.RandomShape)


@pretrained("weights/channels_last.safetensors")
def channels_last():
    return _seeded(net.ChannelsLast)


@pretrained("weights/sparse.safetensors")
def sparse():
    return _seeded(net.Sparse)


@pretrained("weights/other_random.safetensors")
def other_random():
    """The caller seeds Python's and NumPy's generators."""
    return net.OtherRandom()


@pretrained("weights/shared_pair.pth")
def shared_pair():
    return _seeded(net.SharedPair)


@pretrained("weights/device_reads.safetensors")
def device_reads():
    """Also returns a tensor made on the model's device, beside it."""
    model = _seeded(net.DeviceReads)
    return model, torch.zeros(2, device=model.fc.weight.device)


@pretrained("weights/edited.safetensors")
def edited():
    """Edits the fast path follows: a dtype change, a frozen parameter, an in-place scale."""
    model = _seeded(net.TwoLayers)
    model.half()
    model.fc1.bias.requires_grad_(False)
    model.fc2.weight.data.mul_(3)
    return model


@pretrained("weights/edited.safetensors")
def kept_copy():
    """An edit it cannot follow: a copy of a parameter kept beside the model."""
    model = _seeded(net.TwoLayers)
    model.readout = model.fc2.weight.detach().clone()
    return model


@pretrained("weights/partial.safetensors")
def partial():
    return _seeded(net.TwoLayers)


@pretrained("weights/edited.pth")
def from_pth():
    return _seeded(net.TwoLayers)


@pretrained("weights/legacy.pth")
def from_legacy_pth():
    return _seeded(net.TwoLayers)


@pretrained("weights/tied.safetensors")
def with_transform():
    """A model and a transform holding one of its parameters."""
    model = _seeded(net.Tied)
    return model, {"table": model.embed.weight}
'''

INPUT = torch.linspace(-1, 1, 8).reshape(2, 4)


def _trained(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Weights unlike any initialisation (and running statistics for batch norm)."""
    with torch.no_grad():
        for param in model.parameters():
            if param.layout == torch.strided:
                param.add_(torch.rand_like(param))
    model.train()
    dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())
    for _ in range(3):
        model(torch.randn(5, 4).to(dtype))
    state = model.state_dict()
    return {
        k: v.detach().clone().contiguous() for k, v in state.items() if v.layout == torch.strided
    }


@pytest.fixture
def repo(make_hub_repo: Callable[..., Path], hub_home: Path) -> Path:
    root = make_hub_repo({"hubconf.py": textwrap.dedent(HUBCONF), "net.py": NET})
    (root / "weights").mkdir()
    for entry in (
        "non_persistent",
        "tied",
        "norm",
        "custom_init",
        "derived",
        "value_init",
        "random_buffer",
        "drawn_parameter",
        "rewrapped",
        "nested_meta",
        "channels_last",
        "other_random",
        "device_reads",
    ):
        built = hubcore.load(str(root), entry)
        state = _trained(built[0] if isinstance(built, tuple) else built)
        save_file(state, str(root / "weights" / f"{entry}.safetensors"))
    state = _trained(hubcore.load(str(root), "buffer_alias"))
    state["alias"] = state["fc.weight"] + 1  # the plain path copies it last: the weight takes it
    save_file(state, str(root / "weights" / "buffer_alias.safetensors"))
    state = _trained(hubcore.load(str(root), "sparse"))
    save_file(state, str(root / "weights" / "sparse.safetensors"))  # "s" is left out
    one = torch.rand(4, 4)
    torch.save({"a.weight": one.t(), "b.weight": one.t()}, root / "weights" / "shared_pair.pth")
    state = _trained(hubcore.load(str(root), "partial"))
    save_file(state, str(root / "weights" / "edited.safetensors"))
    torch.save(state, root / "weights" / "edited.pth")
    torch.save(state, root / "weights" / "legacy.pth", _use_new_zipfile_serialization=False)
    del state["fc2.bias"]
    save_file(state, str(root / "weights" / "partial.safetensors"))
    return root


@pytest.fixture
def forced(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path with every reason to fall back ignored."""
    monkeypatch.setattr(fast, "refuse", lambda reason: None)


def load_both(
    repo: Path, entry: str, caplog: pytest.LogCaptureFixture, **kwargs: Any
) -> tuple[Any, Any, str]:
    """The entry loaded as users get it, then on the plain path, and the path first taken."""
    with caplog.at_level(logging.DEBUG, logger="hubcore.repo.pretrained"):
        caplog.clear()
        loaded = hubcore.load(str(repo), entry, pretrained=True, **kwargs)
        taken = "fast" if "fast load by torch" in caplog.text else "plain"
    plain = hubcore.load(str(repo), entry, pretrained=True, fast_load=False, **kwargs)
    return loaded, plain, taken


def assert_same(loaded: Any, plain: Any) -> None:
    """Parameters (with dtype, device, requires_grad and type), buffers (non-persistent ones
    too), ties, module tensor and device attributes, outputs and what is returned beside the
    model are identical."""
    if isinstance(loaded, tuple):
        for got, want in zip(loaded[1:], plain[1:], strict=True):
            if isinstance(want, torch.Tensor):
                assert got.device == want.device
                assert torch.equal(got, want)
    model, expected = (loaded[0], plain[0]) if isinstance(loaded, tuple) else (loaded, plain)
    for listing in ("named_parameters", "named_buffers"):
        got = dict(getattr(model, listing)(remove_duplicate=False))
        want = dict(getattr(expected, listing)(remove_duplicate=False))
        assert got.keys() == want.keys()
        for name, tensor in got.items():
            other = want[name]
            assert type(tensor) is type(other), name
            assert (tensor.dtype, tensor.device, tensor.requires_grad) == (
                other.dtype,
                other.device,
                other.requires_grad,
            ), name
            if tensor.layout != torch.strided:
                tensor, other = tensor.to_dense(), other.to_dense()
            assert torch.equal(tensor, other), name
            if tensor.layout == torch.strided:
                assert tensor.stride() == other.stride(), name

    def ties(m: torch.nn.Module) -> list[list[str]]:
        groups: dict[int, list[str]] = {}
        for name, p in m.named_parameters(remove_duplicate=False):
            groups.setdefault(id(p), []).append(name)
        return sorted(groups.values())

    def memory(m: torch.nn.Module) -> list[list[str]]:
        """Names whose tensors share memory (a tie, a view kept as a buffer)."""
        groups: dict[int, list[str]] = {}
        named = [*m.named_parameters(remove_duplicate=False), *m.named_buffers()]
        for name, t in named:
            if t.layout == torch.strided and t.numel():
                groups.setdefault(t.untyped_storage().data_ptr(), []).append(name)
        return sorted(groups.values())

    assert ties(model) == ties(expected)
    assert memory(model) == memory(expected)
    for (name, sub), other in zip(model.named_modules(), expected.modules(), strict=True):
        for attr, value in vars(sub).items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(value, vars(other)[attr]), f"{name}.{attr}"
            if isinstance(value, torch.device):
                assert value == vars(other)[attr], f"{name}.{attr}"
    model.eval()
    expected.eval()
    with torch.no_grad():
        x = INPUT.to(next(p.dtype for p in expected.parameters() if p.is_floating_point()))
        assert torch.equal(model(x), expected(x))


@pytest.mark.parametrize(
    "entry",
    [
        "non_persistent",
        "tied",
        "norm",
        "custom_init",
        "edited",
        "drawn_parameter",
        "channels_last",
        "shared_pair",
        "device_reads",
    ],
)
def test_fast_path_equals_the_plain_path(
    repo: Path, entry: str, caplog: pytest.LogCaptureFixture
) -> None:
    loaded, plain, taken = load_both(repo, entry, caplog)
    assert taken == "fast"
    assert_same(loaded, plain)


def test_fast_path_never_initialises_and_maps_the_cached_file(
    repo: Path, hub_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    initialised = []
    original = torch.nn.Linear.reset_parameters

    def spy(self: torch.nn.Linear) -> None:
        original(self)
        initialised.append(self.weight.is_meta)

    monkeypatch.setattr(torch.nn.Linear, "reset_parameters", spy)
    model = hubcore.load(str(repo), "from_pth", pretrained=True)
    assert initialised == [True, True]  # the init ran, on meta: nothing was computed
    assert not any(p.is_meta for p in model.parameters())
    maps = Path("/proc/self/maps")
    if maps.exists():  # the parameters are the cached file's pages (copy-on-write)
        blobs = {str(p) for p in (hub_home / "blobs").rglob("*") if p.is_file()}
        assert any(line.split()[-1] in blobs for line in maps.read_text().splitlines())


def test_tied_weights_stay_tied(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = hubcore.load(str(repo), "tied", pretrained=True)
    assert model.head.weight is model.embed.weight
    assert len(list(model.parameters())) == 1
    monkeypatch.setattr(fast, "_retie", lambda model, ties: None)  # without re-tying
    untied = hubcore.load(str(repo), "tied", pretrained=True)
    assert untied.head.weight is not untied.embed.weight


FALLBACKS = {
    "derived": {},  # a non-persistent buffer computed from a parameter
    "value_init": {},  # custom initialisation that depends on the initial values
    "random_buffer": {},  # a random buffer drawn after a deferred parameter
    "drawn_scalar": {},  # a random number kept as a Python value
    "hidden_draw": {},  # a draw the build could not see: the generator moved
    "rewrapped": {},  # nn.Parameter(p.t()): one memory, which assignment cannot keep
    "buffer_alias": {},  # a persistent buffer that is a view of a parameter
    "nested_meta": {},  # nn.Parameter(p) in a container: would be left on meta
    "random_shape": {},  # a size drawn at random
    "kept_copy": {},  # the entrypoint keeps a copy of a parameter after building
    "partial": {"weights_strict": False},  # missing keys: initial values from the RNG
    "with_transform": {},  # a parameter held outside the model
}


@pytest.mark.parametrize("entry", sorted(FALLBACKS))
def test_cases_the_fast_path_cannot_follow_fall_back(
    repo: Path, entry: str, caplog: pytest.LogCaptureFixture
) -> None:
    loaded, plain, taken = load_both(repo, entry, caplog, **FALLBACKS[entry])
    assert taken == "plain"
    assert_same_case(entry, loaded, plain)


def assert_same_case(entry: str, loaded: Any, plain: Any) -> None:
    """:func:`assert_same`, and for the transform, that it holds the model's parameter."""
    assert_same(loaded, plain)
    if entry == "with_transform":
        assert not loaded[1]["table"].is_meta
        assert loaded[1]["table"] is loaded[0].embed.weight


@pytest.mark.parametrize("entry", sorted(FALLBACKS))
def test_forcing_the_fast_path_on_them_breaks_the_model(
    repo: Path, entry: str, caplog: pytest.LogCaptureFixture, forced: None
) -> None:
    loaded, plain, taken = load_both(repo, entry, caplog, **FALLBACKS[entry])
    assert taken == "fast"
    with pytest.raises((AssertionError, RuntimeError, NotImplementedError)):
        assert_same_case(entry, loaded, plain)


def _seeded_load(repo: Path, entry: str, **kwargs: Any) -> Any:
    torch.manual_seed(3)
    return hubcore.load(str(repo), entry, pretrained=True, **kwargs)


def test_a_fall_back_rewinds_the_random_generators(
    repo: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    with caplog.at_level(logging.INFO, logger="hubcore.repo.pretrained"):
        loaded = _seeded_load(repo, "random_buffer_unseeded")
    assert "plain load" in caplog.text
    after_fall_back = torch.get_rng_state()
    plain = _seeded_load(repo, "random_buffer_unseeded", fast_load=False)
    assert_same(loaded, plain)
    assert torch.equal(after_fall_back, torch.get_rng_state())  # the same draws, once
    monkeypatch.setattr(fast.Build, "rewind", lambda self: None)
    unwound = _seeded_load(repo, "random_buffer_unseeded")
    assert not torch.equal(unwound.proj, plain.proj)


def test_a_parameter_without_a_meta_form_falls_back(
    repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    loaded, plain, taken = load_both(repo, "sparse", caplog, weights_strict=False)
    assert taken == "plain"
    assert "sparse" in caplog.text
    assert_same(loaded, plain)


def test_a_fall_back_rewinds_python_and_numpy_random_numbers(
    repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import random

    numpy = pytest.importorskip("numpy")

    def seeded(**kwargs: Any) -> Any:
        random.seed(1)
        numpy.random.seed(1)
        return _seeded_load(repo, "other_random", **kwargs)

    with caplog.at_level(logging.INFO, logger="hubcore.repo.pretrained"):
        loaded = seeded()
    assert "plain load" in caplog.text
    after = (random.random(), float(numpy.random.rand()))
    plain = seeded(fast_load=False)
    assert (loaded.order, loaded.jitter) == (plain.order, plain.jitter)
    assert after == (random.random(), float(numpy.random.rand()))


def test_map_location_takes_the_fast_path(repo: Path, caplog: pytest.LogCaptureFixture) -> None:
    for where in ("cpu", torch.device("cpu"), {"cpu": "cpu"}):
        for entry in ("norm", "from_pth"):
            loaded, plain, taken = load_both(repo, entry, caplog, map_location=where)
            assert taken == "fast", (entry, where)
            assert_same(loaded, plain)


def test_strict_mismatch_is_reported_as_on_the_plain_path(repo: Path) -> None:
    with pytest.raises(hubcore.errors.WeightsMismatchError, match=r"fc2\.bias"):
        hubcore.load(str(repo), "partial", pretrained=True)


def test_pth_files_are_mapped_and_legacy_ones_fall_back(
    repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    loaded, plain, taken = load_both(repo, "from_pth", caplog)
    assert taken == "fast"
    assert_same(loaded, plain)
    loaded, plain, taken = load_both(repo, "from_legacy_pth", caplog)
    assert taken == "plain"
    assert "legacy" in caplog.text
    assert_same(loaded, plain)


def test_the_setting_and_the_option_force_the_plain_path(
    repo: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    initialised = []
    building = fast.building
    monkeypatch.setattr(fast, "building", lambda: initialised.append(1) or building())
    hubcore.load(str(repo), "norm", pretrained=True, fast_load=False)
    monkeypatch.setenv("HUBCORE_FAST_LOAD", "0")
    hubcore.load(str(repo), "norm", pretrained=True)
    assert initialised == []
    monkeypatch.setenv("HUBCORE_FAST_LOAD", "1")
    hubcore.load(str(repo), "norm", pretrained=True)
    assert initialised == [1]


def _shards(state: dict[str, torch.Tensor], folder: Path) -> list[WeightsFile]:
    keys = sorted(state)
    files = []
    for i, part in enumerate((keys[: len(keys) // 2], keys[len(keys) // 2 :])):
        path = folder / f"model-{i + 1:05d}-of-00002.safetensors"
        save_file({k: state[k] for k in part}, str(path))
        files.append(
            WeightsFile(path, path.name, file_sha256(path), path.stat().st_size, path.as_uri())
        )
    return files


@pytest.mark.parametrize("fast_load", [True, False])
def test_shards_are_applied_one_by_one(
    tmp_path: Path, hub_home: Path, caplog: pytest.LogCaptureFixture, fast_load: bool
) -> None:
    def build() -> torch.nn.Module:
        torch.manual_seed(1)
        return torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))

    state = _trained(build())
    files = _shards(state, tmp_path)
    with caplog.at_level(logging.DEBUG, logger="hubcore.repo.pretrained"):
        model = build_pretrained(build, files, fast=fast_load)
    assert ("fast load by torch" in caplog.text) is fast_load
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    with pytest.raises(hubcore.errors.WeightsMismatchError, match=r"0\.bias"):
        build_pretrained(build, files[1:], fast=fast_load)


def test_an_entrypoint_runs_twice_only_when_it_falls_back(
    make_hub_repo: Callable[..., Path], hub_home: Path, tmp_path: Path
) -> None:
    counter = tmp_path / "calls"
    hubconf = f"""
        import torch
        from hubcore import pretrained

        dependencies = ["torch"]

        @pretrained("w.safetensors")
        def model(derive: bool = False):
            with open({str(counter)!r}, "a") as fh:
                fh.write("x")
            torch.manual_seed(0)
            m = torch.nn.Linear(2, 2)
            if derive:
                m.register_buffer("twice", m.weight * 2, persistent=False)
            return m
    """
    root = make_hub_repo({"hubconf.py": textwrap.dedent(hubconf)})
    save_file({"weight": torch.ones(2, 2), "bias": torch.zeros(2)}, str(root / "w.safetensors"))
    hubcore.load(str(root), "model", pretrained=True)
    assert counter.read_text() == "x"
    model = hubcore.load(str(root), "model", pretrained=True, derive=True)
    assert counter.read_text() == "xxx"
    plain = hubcore.load(str(root), "model", pretrained=True, derive=True, fast_load=False)
    assert torch.equal(model.twice, plain.twice)


def test_a_model_of_another_framework_is_built_once(
    make_hub_repo: Callable[..., Path], hub_home: Path, tmp_path: Path
) -> None:
    pytest.importorskip("hubcore_numpy_example")
    numpy = pytest.importorskip("numpy")
    from safetensors.numpy import save_file as save_numpy

    counter = tmp_path / "calls"
    hubconf = f"""
        import torch  # imported, so the torch backend's build context is active
        from hubcore import pretrained
        from hubcore_numpy_example import NumpyModel

        @pretrained("w.safetensors")
        def model():
            with open({str(counter)!r}, "a") as fh:
                fh.write("x")
            return NumpyModel({{"weight": (2, 2), "bias": (2,)}})
    """
    root = make_hub_repo({"hubconf.py": textwrap.dedent(hubconf)})
    weights = {"weight": numpy.ones((2, 2), "float32"), "bias": numpy.zeros(2, "float32")}
    save_numpy(weights, str(root / "w.safetensors"))
    model = hubcore.load(str(root), "model", pretrained=True)
    assert counter.read_text() == "x"
    numpy.testing.assert_array_equal(model.params["weight"], weights["weight"])
