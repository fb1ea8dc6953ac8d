"""Model packages of a PyTorch model: saved, pushed to S3 (moto) and file://, loaded back
from a fresh cache with bit-identical outputs; the same from a git server pinned to a commit."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import hubcore  # noqa: E402

MODEL = """
import attrs
import hubcore
from torch import nn


@hubcore.model_config("torch-tiny")
class TinyConfig:
    width: int = attrs.field(default=8, validator=attrs.validators.gt(0))


class TinyNet(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, config.width), nn.BatchNorm1d(config.width))
        self.head = nn.Linear(config.width, 2)

    def forward(self, x):
        return self.head(self.body(x))
"""


@pytest.fixture
def net(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    src = tmp_path / "src"
    src.mkdir()
    (src / "torch_tiny.py").write_text(textwrap.dedent(MODEL))
    monkeypatch.syspath_prepend(str(src))
    import torch_tiny

    torch.manual_seed(3)
    model = torch_tiny.TinyNet(torch_tiny.TinyConfig()).eval()
    with torch.no_grad():
        model.body[1].running_mean.uniform_()
    yield torch_tiny, model
    sys.modules.pop("torch_tiny", None)


def outputs(model):
    torch.manual_seed(0)
    x = torch.randn(5, 4)
    with torch.no_grad():
        return model.eval()(x).numpy().tobytes()


@pytest.mark.parametrize("where", ["s3", "file"])
def test_push_and_load_from_a_fresh_cache(hub_home, net, tmp_path, request, where) -> None:
    module, model = net
    folder = hubcore.save_pretrained(model, tmp_path / "pkg", config=module.TinyConfig())
    if where == "s3":
        dest = f"s3://{request.getfixturevalue('s3_bucket')}/torch/tiny"
    else:
        dest = (tmp_path / "store" / "tiny").as_uri()
    pin = hubcore.push(folder, dest)
    sys.modules.pop("torch_tiny", None)  # the shipped code is what loads
    loaded = hubcore.load(dest, revision=pin)
    assert type(loaded).__module__ != "torch_tiny"
    assert outputs(loaded) == outputs(model)


def test_sharded_torch_package(hub_home, net, tmp_path) -> None:
    module, model = net
    folder = hubcore.save_pretrained(
        model, tmp_path / "pkg", config=module.TinyConfig(), max_shard_size=100
    )
    assert len(list(folder.glob("model-*.safetensors"))) > 1
    assert outputs(hubcore.load(str(folder))) == outputs(model)


def test_sharded_package_takes_the_fast_path_and_equals_the_plain_one(
    hub_home, net, tmp_path, monkeypatch, caplog
) -> None:
    import logging

    module, model = net
    folder = hubcore.save_pretrained(
        model, tmp_path / "pkg", config=module.TinyConfig(), max_shard_size=100
    )
    monkeypatch.setenv("HUBCORE_FAST_LOAD_MIN_BYTES", "0")  # a tiny model, taken as a big one
    with caplog.at_level(logging.DEBUG, logger="hubcore.repo.pretrained"):
        fast = hubcore.load(str(folder))
    assert "fast load by torch" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="hubcore.repo.pretrained"):
        plain = hubcore.load(str(folder), fast_load=False)
    assert "fast load" not in caplog.text
    for (name, a), (_, b) in zip(
        fast.state_dict(keep_vars=True).items(),
        plain.state_dict(keep_vars=True).items(),
        strict=True,
    ):
        assert not a.is_meta, name
        assert torch.equal(a, b), name
    assert outputs(fast) == outputs(plain) == outputs(model)


def test_a_package_load_names_an_option_it_does_not_take(hub_home, net, tmp_path) -> None:
    module, model = net
    folder = hubcore.save_pretrained(model, tmp_path / "pkg", config=module.TinyConfig())
    with pytest.raises(hubcore.errors.UsageError, match="no option 'pretrained'"):
        hubcore.load(str(folder), pretrained=True)


def test_git_server_pinned_commit(hub_home, net, tmp_path) -> None:
    sys.path.insert(0, str(Path(__file__).parents[3] / "tests"))
    try:
        from gitserver import BareRepo, GitHostServer
    finally:
        sys.path.pop(0)
    module, model = net
    repos = tmp_path / "repos"
    repos.mkdir()
    repo = BareRepo(repos, "lab/torch-tiny")
    hubcore.save_pretrained(model, repo.work, config=module.TinyConfig())
    first = repo.commit({}, "package")
    server = GitHostServer(repos).start()
    try:
        ref = f"git+{server.url}/lab/torch-tiny.git"
        assert outputs(hubcore.from_pretrained(ref, revision=first)) == outputs(model)
        server.reset_log()
        assert outputs(hubcore.load(ref, revision=first)) == outputs(model)
        assert server.paths() == []
    finally:
        server.stop()


def test_hubconf_entrypoint_returns_a_package(hub_home, net, tmp_path) -> None:
    module, model = net
    folder = hubcore.save_pretrained(model, tmp_path / "pkg", config=module.TinyConfig())
    hub = tmp_path / "hub"
    hub.mkdir()
    (hub / "hubconf.py").write_text(
        "import hubcore\n\ndependencies = ['torch']\n\n\n"
        'def tiny():\n    """The packaged model."""\n'
        f"    return hubcore.from_pretrained({str(folder)!r})\n"
    )
    assert outputs(hubcore.load(str(hub), "tiny")) == outputs(model)
