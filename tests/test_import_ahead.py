"""The git source imports what comes next while it waits for the server."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys, threading
    from hubcore.sources.git import _importing_ahead

    assert "wave" not in sys.modules
    main = threading.get_ident()
    with _importing_ahead(["wave", "no_such_module_for_hubcore_tests"]):
        pass  # the server's answer would be awaited here
    assert "wave" in sys.modules, "imported by the time the block ends"
    assert threading.active_count() == 1, "the importing thread is done"
    with _importing_ahead(["wave"]):  # already imported: no thread
        assert threading.active_count() == 1
    try:
        with _importing_ahead(["colorsys"]):
            raise KeyError("the fetch failed")
    except KeyError:
        pass
    assert "colorsys" in sys.modules and threading.active_count() == 1
    print("ok")
    """
)


def test_modules_are_imported_on_a_thread_that_ends_with_the_block(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=tmp_path, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
