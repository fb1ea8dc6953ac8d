"""A model package logged in the registry, aliased, and loaded back through ``registry:``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import hubcore
from hubcore import registry

from .test_packages import tiny, trained  # noqa: F401  (tiny is a fixture)
from .test_registry import reg_url  # noqa: F401  (a fixture: a folder and moto S3)

#: Loads a registry reference in a fresh process and prints the model's output on a fixed input
#: and how many storage reads the load made.
LOAD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import hubcore
    from hubcore.registry import store
    calls = []
    for cls in (store.LocalStore, store.S3Store):
        for m in ("read", "info", "objects", "download"):
            orig = getattr(cls, m)
            def wrapped(self, *a, _o=orig, _m=m, **k):
                calls.append(_m)
                return _o(self, *a, **k)
            setattr(cls, m, wrapped)
    model = hubcore.load(sys.argv[1], trust_repo=True)
    print(model(np.arange(4, dtype=np.float32)).tobytes().hex(), len(calls))
    """
)


def load_in_fresh_process(ref: str, home: Path, reg: str, src: Path) -> tuple[str, int]:
    env = {**os.environ, "HUBCORE_REGISTRY": reg, "HUBCORE_HOME": str(home)}
    env.pop("TINY_MARKER", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and Path(p) != src)
    done = subprocess.run(
        [sys.executable, "-c", LOAD, ref], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    output, reads = done.stdout.split()
    return output, int(reads)


def test_logged_package_loads_by_alias_then_pinned_with_no_request(
    reg_url: str,  # noqa: F811
    tiny,  # noqa: F811
    tmp_path: Path,
) -> None:
    tiny_models, _ = tiny
    model = trained(tiny_models)
    folder = hubcore.save_pretrained(model, tmp_path / "pkg", config=tiny_models.TinyConfig())
    reg = registry.open(reg_url)
    version = reg.log("classifier", folder, type="model", aliases=["production"])
    expected = model(np.arange(4, dtype=np.float32)).tobytes().hex()
    src = Path(tiny_models.__file__).parent
    home = tmp_path / "fresh-home"

    output, _ = load_in_fresh_process("registry:classifier:production", home, reg_url, src)
    assert output == expected  # the code shipped in the package, not the test's module
    output, reads = load_in_fresh_process(
        f"registry:classifier:v{version.number}", home, reg_url, src
    )
    assert (output, reads) == (expected, 0)


def test_untrusted_package_from_the_registry_runs_no_code(
    reg_url: str,  # noqa: F811
    tiny,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hubcore.errors import UntrustedRepoError

    monkeypatch.setenv("HUBCORE_REGISTRY", reg_url)
    tiny_models, marker = tiny
    folder = hubcore.save_pretrained(
        trained(tiny_models), tmp_path / "pkg", config=tiny_models.TinyConfig()
    )
    marker.unlink(missing_ok=True)
    registry.open(reg_url).log("classifier", folder, aliases=["staging"])
    with pytest.raises(UntrustedRepoError):
        hubcore.load("registry:classifier:staging", trust_repo=False)
    assert not marker.exists()
