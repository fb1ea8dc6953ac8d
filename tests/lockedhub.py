"""A locked hub for tests: a repository on a loopback git host whose hubconf names one weight
file served on loopback, locked with ``hubcore lock`` into ``./hub.lock``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from click.testing import CliRunner

import hubcore
from hubcore.cli import main
from tests.fileserver import FileServer
from tests.gitserver import BareRepo, GitHostServer


@contextlib.contextmanager
def locked_hub(
    folder: Path, weights_name: str, weights: bytes, hubconf: Callable[[str], str]
) -> Iterator[tuple[GitHostServer, FileServer]]:
    """Serve ``acme/hub`` (its hubconf made by *hubconf* from the weights' URL) and the weight
    file from *folder*, and lock it into ``./hub.lock`` (the caller chooses the working
    folder); the lock must record the file's sha256."""
    git = GitHostServer(folder / "srv" / "repos").start()
    files = FileServer(folder / "weights").start()
    try:
        url = files.add(weights_name, weights)
        BareRepo(git.root, "acme/hub").commit({"hubconf.py": hubconf(url)}, "one")
        result = CliRunner().invoke(main, ["lock", "acme/hub:main", "--host", git.url])
        assert result.exit_code == 0, result.output
        sha = hubcore.file_sha256(folder / "weights" / weights_name)
        assert sha in Path("hub.lock").read_text()
        yield git, files
    finally:
        git.stop()
        files.stop()
