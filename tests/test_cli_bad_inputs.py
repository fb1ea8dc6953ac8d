"""Every bad input a user can give the CLI ends in one ``error:`` line and a non-zero exit,
never a Python traceback."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from collections.abc import Callable
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


def _hub_zip(tmp: Path) -> str:
    """A zip of the example hub, as a ``file://`` URL: listing it extracts it."""
    import zipfile

    archive = tmp / "hub.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(HUB / "hubconf.py", "hub/hubconf.py")
    return archive.as_uri()


def _fifo(tmp: Path, name: str = "fifo") -> Path:
    path = tmp / name
    os.mkfifo(path)
    return path


def _link_to_fifo(tmp: Path) -> Path:
    link = tmp / "link-to-fifo"
    link.symlink_to(_fifo(tmp, "linked-fifo"))
    return link


Args = list[str] | Callable[[Path], list[str]]

# (id, arguments (or a function of a scratch folder giving them), extra environment, words the
# error line must contain)
ROWS: list[tuple[str, Args, dict[str, str], str]] = [
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
        lambda tmp: ["list", _hub_zip(tmp)],
        {"HUBCORE_MAX_ARCHIVE_BYTES": "x"},
        "HUBCORE_MAX_ARCHIVE_BYTES",
    ),
    ("unclosed IPv6 download URL", ["download", "http://[::1/x"], {}, "http://[::1/x"),
    ("unclosed IPv6 --host", ["list", "acme/x", "--host", "http://[::1"], {}, "http://[::1"),
    ("unclosed IPv6 reference", ["trust", "add", "github:https://[::1/x"], {}, "https://[::1/x"),
    (
        "unclosed IPv6 mirror",
        ["download", f"http://127.0.0.1:{_closed_port()}/w.bin"],
        {"HUBCORE_MIRRORS": "http://[::1=http://x"},
        "HUBCORE_MIRRORS",
    ),
    ("--sha256 not hex", ["download", "--sha256", "zz", str(HUB / "hubconf.py")], {}, "sha256"),
    (
        "--sha256 too short",
        ["download", "--sha256", "ab" * 31, str(HUB / "hubconf.py")],
        {},
        "64 hex digits",
    ),
    (
        "download -o a FIFO",
        lambda tmp: ["download", "-o", str(_fifo(tmp)), str(HUB / "hubconf.py")],
        {},
        "fifo",
    ),
    (
        "download -o a link to a FIFO",
        lambda tmp: ["download", "-o", str(_link_to_fifo(tmp)), str(HUB / "hubconf.py")],
        {},
        "link-to-fifo",
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
    done = run_cli(args(tmp_path) if callable(args) else args, env, tmp_path / "home")
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode != 0, done.stdout + done.stderr
    assert "internal error" not in done.stderr, done.stderr  # the one-line form of a bug
    # hubcore's own errors say "error:", click's usage errors "Error:"
    errors = [line for line in done.stderr.splitlines() if line.lower().startswith("error:")]
    assert len(errors) == 1, done.stderr
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


def test_download_leaves_a_special_output_in_place(tmp_path) -> None:
    """``-o`` naming a FIFO (as ``/dev/null`` names a device) must not replace it with a file,
    as an atomic rename over the target would; neither may a file of that name in ``-o DIR/``."""
    fifo = _fifo(tmp_path)
    folder = tmp_path / "out"
    folder.mkdir()
    # a download into a folder is named as in the cache: by its sha256
    inner = _fifo(folder, hashlib.sha256((HUB / "hubconf.py").read_bytes()).hexdigest())
    for output in (str(fifo), str(_link_to_fifo(tmp_path)), f"{folder}/"):
        done = run_cli(["download", "-o", output, str(HUB / "hubconf.py")], {}, tmp_path / "h")
        assert done.returncode != 0, done.stdout + done.stderr
        assert "Traceback" not in done.stderr, done.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert stat.S_ISFIFO(inner.lstat().st_mode)
    assert stat.S_ISFIFO((tmp_path / "linked-fifo").lstat().st_mode)
    plain = tmp_path / "plain.py"
    plain.write_text("old")
    done = run_cli(["download", "-o", str(plain), str(HUB / "hubconf.py")], {}, tmp_path / "h")
    assert done.returncode == 0, done.stderr
    assert plain.read_bytes() == (HUB / "hubconf.py").read_bytes()
