"""The bundled example hub, served from every kind of source, through the API and the CLI."""

from __future__ import annotations

import importlib.util
import io
import shutil
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

import hubcore
from hubcore.cli import main

from .gitserver import BareRepo, GitDaemon, GitHostServer

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "hub"
ENTRYPOINTS = ["mge_tinynet", "mlp", "tinynet", "tokenizer"]
SOURCES = ["local", "github", "gitlab", "git-daemon", "git-http", "archive", "s3"]

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")


def example_files() -> dict[str, bytes]:
    if not (EXAMPLE / "weights").is_dir():
        pytest.fail("run examples/hub/make_weights.py first (make test does)")
    return {
        str(p.relative_to(EXAMPLE)): p.read_bytes()
        for p in EXAMPLE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Start every server once and publish the example hub on each; yield {source: (ref, opts)}."""
    root = tmp_path_factory.mktemp("servers")
    repos = root / "srv" / "repos"
    files_dir = root / "srv" / "files"
    files_dir.mkdir(parents=True)
    files = example_files()

    # git repositories hold the weights as binary files: write them byte for byte
    def push(path: str) -> None:
        repo = BareRepo(repos, path)
        for rel, data in files.items():
            target = repo.work / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        repo.commit({}, "example hub")

    push("acme/hub")
    push("group/sub/hub")
    http = GitHostServer(repos).start()
    daemon = GitDaemon(repos).start()

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for rel, data in files.items():
            zf.writestr(f"hub-1.0/{rel}", data)
    (files_dir / "hub-1.0.zip").write_bytes(buf.getvalue())

    refs = {
        "local": (str(EXAMPLE), {}),
        "github": ("acme/hub:main", {"host": http.url}),
        "gitlab": ("gitlab:group/sub/hub@main", {"host": http.url}),
        "git-daemon": (f"{daemon.url}/acme/hub.git@main", {}),
        "git-http": (f"git+{http.url}/acme/hub.git@main", {}),
        "archive": (f"{http.url}/files/hub-1.0.zip", {}),
    }
    moto = None
    if importlib.util.find_spec("s3fs") and importlib.util.find_spec("moto"):
        import boto3
        from moto.server import ThreadedMotoServer

        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
        moto.start()
        host, port = moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_bucket(Bucket="example-hubs")
        for rel, data in files.items():
            client.put_object(Bucket="example-hubs", Key=f"hub/{rel}", Body=data)
        refs["s3"] = (
            "s3://example-hubs/hub",
            {
                "storage_options": {
                    "key": "testing",
                    "secret": "testing",
                    "client_kwargs": {"endpoint_url": endpoint},
                }
            },
        )
    yield refs
    http.stop()
    daemon.stop()
    if moto is not None:
        moto.stop()


@pytest.mark.parametrize("source", SOURCES)
def test_list_help_load_from_every_source(hub_home, served, source) -> None:
    if source not in served:
        pytest.skip("s3fs/moto not installed")
    ref, options = served[source]
    assert hubcore.list(ref, **options) == ENTRYPOINTS
    assert hubcore.help(ref, "mlp", **options).startswith("A two-layer perceptron")
    tokenizer = hubcore.load(ref, "tokenizer", **options)
    assert tokenizer("the hub loads weights") == [0, 2, 3, 4]
    if importlib.util.find_spec("torch") and importlib.util.find_spec("hubcore_torch"):
        model = hubcore.load(ref, "tinynet", pretrained=True, **options)
        assert sum(p.numel() for p in model.parameters()) == 330
    if importlib.util.find_spec("megengine") and importlib.util.find_spec("hubcore_megengine"):
        model = hubcore.load(ref, "mge_tinynet", pretrained=True, **options)
        assert model.fc.weight.shape == (10, 8)


@pytest.mark.parametrize("source", ["github", "gitlab", "git-http", "archive"])
def test_cli_from_remote_sources(hub_home, served, source) -> None:
    ref, options = served[source]
    extra = ["--host", options["host"]] if "host" in options else []
    runner = CliRunner()
    listed = runner.invoke(main, ["list", ref, *extra])
    assert listed.exit_code == 0, listed.output
    assert listed.output.split() == ENTRYPOINTS
    helped = runner.invoke(main, ["help", ref, "tinynet", *extra])
    assert "c100: weights/tinynet-c100.safetensors" in helped.output
    loaded = runner.invoke(main, ["load", ref, "tokenizer", *extra])
    assert "loaded: tokenizer.WhitespaceTokenizer" in loaded.output
