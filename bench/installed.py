"""An interpreter laid out as a user's installation, for whole-process benchmarks.

The development environments install hubcore and its plugins in editable mode: setuptools then
adds an import finder per project that ``site`` loads at the start of every process (with
``pathlib``, ``fnmatch`` and ``importlib.util``: 13 to 15 ms here), which an installed wheel does
not have. :func:`installed_python` makes a virtual environment whose only ``.pth`` file lists
the measured checkout's code and this interpreter's site-packages: the same packages and the
same interpreter, imported as from an installation (a folder named in a ``.pth`` file is put on
``sys.path`` without reading the ``.pth`` files inside it). Every contender of a run uses it.
"""

from __future__ import annotations

import site
import sys
import sysconfig
import venv
from collections.abc import Sequence
from pathlib import Path


def installed_python(folder: Path, code: Sequence[str]) -> str:
    """Create the environment in *folder* with *code* (checkout folders) ahead of this
    interpreter's site-packages, and return the path of its ``python``."""
    venv.EnvBuilder(with_pip=False, symlinks=True, clear=True).create(folder)
    paths = {"base": str(folder), "platbase": str(folder)}
    purelib = Path(sysconfig.get_path("purelib", vars=paths))
    lines = [*code, *site.getsitepackages()]
    (purelib / "bench-installed.pth").write_text("\n".join(lines) + "\n")
    python = folder / "bin" / Path(sys.executable).name
    return str(python if python.exists() else folder / "bin" / "python")
