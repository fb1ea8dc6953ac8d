"""Model packages of a MegEngine model: saved, pushed to S3 (moto) and file://, loaded back
from a fresh cache with bit-identical outputs; the same from a git server pinned to a commit."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

mge = pytest.importorskip("megengine")

import hubcore  # noqa: E402

MODEL = """
import hubcore
import megengine.module as M


@hubcore.model_config("mge-tiny")
class TinyConfig:
    width: int = 8


class TinyNet(M.Module):
    def __init__(self, config):
        super().__init__()
        self.fc1 = M.Linear(4, config.width)
        self.fc2 = M.Linear(config.width, 2)

    def forward(self, x):
        return self.fc2(self.fc1(x))
"""


@pytest.fixture
def net(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    src = tmp_path / "src"
    src.mkdir()
    (src / "mge_tiny.py").write_text(textwrap.dedent(MODEL))
    monkeypatch.syspath_prepend(str(src))
    import mge_tiny

    model = mge_tiny.TinyNet(mge_tiny.TinyConfig())
    yield mge_tiny, model
    sys.modules.pop("mge_tiny", None)


def outputs(model) -> bytes:
    x = mge.tensor(np.random.default_rng(0).standard_normal((5, 4)).astype("float32"))
    model.eval()
    return model(x).numpy().tobytes()


@pytest.mark.parametrize("where", ["s3", "file"])
def test_push_and_load_from_a_fresh_cache(hub_home, net, tmp_path, request, where) -> None:
    module, model = net
    folder = hubcore.save_pretrained(model, tmp_path / "pkg", config=module.TinyConfig())
    if where == "s3":
        dest = f"s3://{request.getfixturevalue('s3_bucket')}/mge/tiny"
    else:
        dest = (tmp_path / "store" / "tiny").as_uri()
    pin = hubcore.push(folder, dest)
    sys.modules.pop("mge_tiny", None)
    loaded = hubcore.load(dest, revision=pin)
    assert outputs(loaded) == outputs(model)


def test_sharded_megengine_package(hub_home, net, tmp_path) -> None:
    module, model = net
    folder = hubcore.save_pretrained(
        model, tmp_path / "pkg", config=module.TinyConfig(), max_shard_size=100
    )
    assert len(list(folder.glob("model-*.safetensors"))) > 1
    assert outputs(hubcore.load(str(folder))) == outputs(model)


def test_git_server_pinned_commit(hub_home, net, tmp_path) -> None:
    sys.path.insert(0, str(Path(__file__).parents[3] / "tests"))
    try:
        from gitserver import BareRepo, GitHostServer
    finally:
        sys.path.pop(0)
    module, model = net
    repos = tmp_path / "repos"
    repos.mkdir()
    repo = BareRepo(repos, "lab/mge-tiny")
    hubcore.save_pretrained(model, repo.work, config=module.TinyConfig())
    first = repo.commit({}, "package")
    server = GitHostServer(repos).start()
    try:
        ref = f"git+{server.url}/lab/mge-tiny.git"
        assert outputs(hubcore.from_pretrained(ref, revision=first)) == outputs(model)
        server.reset_log()
        assert outputs(hubcore.load(ref, revision=first)) == outputs(model)
        assert server.paths() == []
    finally:
        server.stop()
