"""The command line: output of each command and one-line errors with exit status 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hubcore.cli import main

EXAMPLE = str(Path(__file__).resolve().parents[1] / "examples" / "hub")


@pytest.fixture
def run(hub_home):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_list_and_verbose(run) -> None:
    result = run("list", EXAMPLE)
    assert result.exit_code == 0
    assert result.output.split() == ["mge_tinynet", "mlp", "tinynet", "tokenizer"]
    verbose = run("list", EXAMPLE, "--verbose").output
    assert "tinynet(num_classes: int=10)" in verbose
    assert "* c10: weights/tinynet-c10.safetensors sha256=755edc7016a0" in verbose
    assert "[models/registry.py:" in verbose


def test_help(run) -> None:
    out = run("help", EXAMPLE, "mlp").output
    assert "A two-layer perceptron (PyTorch)" in out
    assert "dependencies: numpy" in out


def test_load_plain_object(run) -> None:
    out = run("load", EXAMPLE, "tokenizer", "--kw", "vocab=['a','b']").output
    assert "loaded: tokenizer.WhitespaceTokenizer" in out
    assert "weights: none applied" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("list", "/definitely/not/here"), "does not exist"),
        (("help", EXAMPLE, "tinynt"), "Did you mean 'tinynet'"),
        (("load", EXAMPLE, "nope"), "has no entrypoint 'nope'"),
        (("list", "not a reference!"), "Accepted forms"),
    ],
)
def test_errors_are_one_line(run, args, message) -> None:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 1
    lines = (
        result.stderr.strip().splitlines() if result.stderr else result.output.strip().splitlines()
    )
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    assert message in lines[0]


def test_bad_kw_is_a_usage_error(run) -> None:
    result = CliRunner().invoke(main, ["load", EXAMPLE, "tokenizer", "--kw", "novalue"])
    assert result.exit_code == 2


def test_plugins_lists_builtin_and_installed(run) -> None:
    out = run("plugins").output
    assert "local  [hubcore" in out
    assert "sources: local" in out
    assert (
        "numpy-example  [hubcore-numpy-example 0.1.0]  sources: hubfile; backends: numpy-example"
        in out
    )


def test_hash_and_download(run, tmp_path) -> None:
    f = tmp_path / "w.bin"
    f.write_bytes(b"hello")
    sha = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert run("hash", str(f)).output == f"{sha}  {f}\n  suggested name: w-{sha[:10]}.bin\n"
    out_path = tmp_path / "copy.bin"
    result = run("download", str(f), "--sha256", sha, "-o", str(out_path))
    assert result.exit_code == 0
    assert out_path.read_bytes() == b"hello"
    bad = CliRunner().invoke(main, ["download", str(f), "--sha256", "0" * 64])
    assert bad.exit_code == 1
    assert "sha256 mismatch" in bad.output


def test_load_names_the_weights_applied_not_the_last_download(run, file_server, make_hub_repo):
    """An entrypoint that applies weights and then downloads another file (a vocabulary): the
    weights line names the weights, not the last thing fetched."""
    pytest.importorskip("hubcore_numpy_example")
    from tests.test_lock import weights_bytes

    weights = file_server.add("linear.safetensors", weights_bytes(1))
    vocab = file_server.add("vocab.txt", b"hello world\n")
    repo = make_hub_repo(
        {
            "hubconf.py": f"""
import hubcore
from hubcore import pretrained
from hubcore_numpy_example import NumpyModel

dependencies = []


@pretrained({weights!r})
def base():
    '''The model with its weights.'''
    return NumpyModel({{"weight": (3, 4), "bias": (3,)}})


def with_vocab():
    '''Weights first, then a vocabulary file.'''
    model = base(pretrained=True)
    hubcore.download({vocab!r})
    return model
"""
        }
    )
    out = run("load", str(repo), "with_vocab").output
    (line,) = [line for line in out.splitlines() if line.startswith("weights: ")]
    assert "linear.safetensors" in line
    assert "vocab" not in line
