"""hubcore check: the publisher's static review."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from hubcore.cli import main
from hubcore.testing.fileserver import FileServer

EXAMPLE = str(Path(__file__).resolve().parents[1] / "examples" / "hub")


def run(*args: str):
    return CliRunner().invoke(main, ["check", *args])


def test_example_hub_is_clean(hub_home) -> None:
    result = run(EXAMPLE)
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("0 error(s), 0 warning(s)")


def test_problems_are_reported(hub_home, make_hub_repo, tmp_path) -> None:
    marker = tmp_path / "ran"
    repo = make_hub_repo(
        {
            "hubconf.py": f"""
                import pathlib
                pathlib.Path({str(marker)!r}).write_text("ran")
                from torch.hub import load_state_dict_from_url
                from hubcore import pretrained

                dependencies = ["numpy", "not a requirement!!"]

                @pretrained("weights/missing.pth")
                def undocumented():
                    pass

                @pretrained("https:///no-host.pth", sha256="abc")
                def bad_url():
                    '''Has a docstring.'''

                @pretrained("weights/ok.bin", sha256="XYZ")
                def bad_hash():
                    '''Has a docstring.'''
            """,
            "weights/ok.bin": b"data",
        }
    )
    result = run(str(repo))
    out = result.output
    assert result.exit_code == 1
    assert "error: hubconf.py: dependency 'not a requirement!!' is not a valid requirement" in out
    assert "entrypoint 'undocumented' has no docstring" in out
    assert "undocumented[default] weights/missing.pth: no such file in the repository" in out
    assert "bad_url[default] https:///no-host.pth: the URL has no host" in out
    assert "bad_hash[default] weights/ok.bin: sha256 is not 64 hex digits" in out
    assert "'load_state_dict_from_url' is an entrypoint only by being exported" in out
    assert "warning: repository: no README or model card" in out
    assert not marker.exists()  # nothing ran


def test_missing_dependencies_list(hub_home, make_hub_repo) -> None:
    repo = make_hub_repo({"hubconf.py": "def f():\n    '''Doc.'''\n", "README.md": "x"})
    result = run(str(repo))
    assert result.exit_code == 1
    assert "no `dependencies = [...]` list" in result.output


def test_online_and_verify(hub_home, make_hub_repo, tmp_path) -> None:
    server = FileServer(tmp_path / "files").start()
    try:
        good = server.add("good.bin", b"hello")
        sha = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        repo = make_hub_repo(
            {
                "hubconf.py": f"""
                    from hubcore import pretrained
                    dependencies = []

                    @pretrained({good!r}, sha256={sha!r})
                    def good():
                        '''Fine.'''

                    @pretrained({server.url + "/missing.bin"!r}, sha256={"0" * 64!r})
                    def gone():
                        '''Its weights are gone.'''

                    @pretrained({good!r}, sha256={"1" * 64!r})
                    def wrong():
                        '''Its hash is wrong.'''
                """,
                "README.md": "hub",
            }
        )
        assert run(str(repo)).exit_code == 0  # offline: nothing to object to
        online = run(str(repo), "--online")
        assert online.exit_code == 1
        assert "gone[default]" in online.output
        assert "HTTP 404" in online.output
        assert "wrong[default]" not in online.output
        verified = run(str(repo), "--verify")
        assert verified.exit_code == 1
        assert "wrong[default]" in verified.output
        assert "sha256 mismatch" in verified.output
        assert "good[default]" not in verified.output
    finally:
        server.stop()
