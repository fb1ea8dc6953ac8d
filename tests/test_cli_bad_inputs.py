"""Every bad input a user can give the CLI ends in one ``error:`` line and a non-zero exit,
never a Python traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HUB = Path(__file__).resolve().parents[1] / "examples" / "hub"


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _deep_hub(tmp: Path) -> Path:
    repo = tmp / "deep"
    repo.mkdir()
    (repo / "hubconf.py").write_text("x = " + "(" * 100_000 + "1" + ")" * 100_000 + "\n")
    return repo


def _file_home(tmp: Path) -> dict[str, str]:
    (tmp / "home-file").write_text("")
    return {"HUBCORE_HOME": str(tmp / "home-file")}


# (id, arguments, extra environment, words the error line must contain)
ROWS = [
    ("unknown user folder", ["list", "~nonexistentuser0/x"], {}, "nonexistentuser0"),
    ("deep --kw", ["load", str(HUB), "tokenizer", "--kw", "n=" + "-" * 100_000 + "1"], {}, "--kw"),
    ("malformed HUBCORE_TRUST", ["trust", "ls"], {"HUBCORE_TRUST": "@@"}, "@@"),
    (
        "download to a missing folder",
        ["download", "-o", "/missing/dir/f", str(HUB / "hubconf.py")],
        {},
        "/missing/dir",
    ),
    (
        "download to a missing folder/",
        ["download", "-o", "/missing-dir/", str(HUB / "hubconf.py")],
        {},
        "/missing-dir",
    ),
    (
        "ftp to a closed port",
        ["download", f"ftp://127.0.0.1:{_closed_port()}/x.bin"],
        {},
        "127.0.0.1",
    ),
    ("empty reference", ["list", " "], {}, "empty"),
    ("unknown source", ["list", "nosuch:x/y"], {}, "nosuch"),
    (
        "bad mirror",
        ["download", f"http://127.0.0.1:{_closed_port()}/w.bin"],
        {"HUBCORE_MIRRORS": "no-equals-sign"},
        "HUBCORE_MIRRORS",
    ),
    (
        "not a whole number",
        ["download", str(HUB / "hubconf.py")],
        {"HUBCORE_MAX_ARCHIVE_BYTES": "x"},
        None,
    ),
]


def run_cli(args: list[str], env: dict[str, str], home: Path) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "HUBCORE_HOME": str(home), **env}
    return subprocess.run(
        [sys.executable, "-c", "from hubcore.cli import main; main()", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "env", "expected"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS]
)
def test_bad_input_gives_one_error_line(tmp_path, args, env, expected) -> None:
    done = run_cli(args, env, tmp_path / "home")
    assert "Traceback" not in done.stderr, done.stderr
    if expected is None and done.returncode == 0:
        return  # accepted: the input is not used by this command
    assert done.returncode != 0, done.stdout + done.stderr
    # hubcore's own errors say "error:", click's usage errors "Error:"
    errors = [line for line in done.stderr.splitlines() if line.lower().startswith("error:")]
    assert len(errors) == 1, done.stderr
    if expected:
        assert expected in errors[0], errors[0]


def test_deeply_nested_hubconf_is_an_error_line(tmp_path) -> None:
    repo = _deep_hub(tmp_path)
    for args in (["list", str(repo)], ["help", str(repo), "x"], ["check", str(repo)]):
        done = run_cli(args, {}, tmp_path / "home")
        assert "Traceback" not in done.stderr, done.stderr
        assert done.returncode != 0
        assert done.stderr.startswith("error:"), done.stderr


def test_unusable_hub_home_is_named(tmp_path) -> None:
    env = _file_home(tmp_path)
    for args in (["trust", "add", "acme/models"], ["download", str(HUB / "hubconf.py")]):
        done = run_cli(args, env, tmp_path / "unused")
        assert "Traceback" not in done.stderr, done.stderr
        assert done.returncode != 0
        assert "home-file" in done.stderr, done.stderr


def test_an_unwritable_hub_home_is_named_not_blamed_on_the_entrypoint(tmp_path) -> None:
    from importlib import metadata

    try:  # the example entrypoint of the framework installed here
        entry = "tinynet" if metadata.version("torch") else "mge_tinynet"
    except metadata.PackageNotFoundError:
        entry = "mge_tinynet"
    # /proc refuses new folders even to root: a stand-in for a read-only file system
    done = run_cli(["load", str(HUB), entry, "--pretrained"], {}, Path("/proc/hubcore-home"))
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1
    assert "hub home must be a writable folder" in done.stderr, done.stderr
    assert "entrypoint" not in done.stderr
