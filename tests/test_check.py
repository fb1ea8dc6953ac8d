"""hubcore check: the publisher's static review."""

from __future__ import annotations

import io
import textwrap
import zipfile
from pathlib import Path
from unittest.mock import ANY

import pytest
from click.testing import CliRunner

import hubcore
from hubcore.cli import main
from hubcore.policy import trust

from .fileserver import FileServer

HELLO_SHA = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
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


def weights_repo(make_hub_repo, url: str, sha: str | None = None):
    sha_arg = f", sha256={sha!r}" if sha else ""
    return make_hub_repo(
        {
            "hubconf.py": f"""
                from hubcore import pretrained
                dependencies = []

                @pretrained({url!r}{sha_arg})
                def net():
                    '''A net.'''
            """,
            "README.md": "hub",
        }
    )


@pytest.mark.parametrize("mode", ["--online", "--verify"])
def test_network_checks_refuse_offline_mode(
    hub_home, make_hub_repo, file_server, monkeypatch, mode
) -> None:
    url = file_server.add("w.bin", b"hello")
    repo = weights_repo(make_hub_repo, url, HELLO_SHA)
    monkeypatch.setenv("HUBCORE_OFFLINE", "1")  # restored after the test; --offline sets it
    result = CliRunner().invoke(main, ["--offline", "check", str(repo), mode])
    assert result.exit_code == 1
    assert "offline" in result.output
    assert mode in result.output
    assert file_server.log == []


@pytest.mark.parametrize("mode", ["--online", "--verify"])
def test_network_checks_go_through_the_mirror(
    hub_home, make_hub_repo, file_server, tmp_path, monkeypatch, mode
) -> None:
    mirror = FileServer(tmp_path / "mirror").start()
    try:
        mirror.add("w.bin", b"hello")  # only the mirror has it
        url = f"{file_server.url}/w.bin"
        monkeypatch.setenv("HUBCORE_MIRRORS", f"{file_server.url}/={mirror.url}/")
        result = run(str(weights_repo(make_hub_repo, url, HELLO_SHA)), mode)
        assert result.exit_code == 0, result.output
        assert file_server.log == []
        assert mirror.log
    finally:
        mirror.stop()


def zip_bytes(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(f"hub-1.0/{name}", textwrap.dedent(text))
    return buf.getvalue()


def test_untrusted_remote_repository_cannot_reach_local_files_or_addresses(
    hub_home, file_server, tmp_path, monkeypatch
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"private")
    climb = "../" * 40 + str(secret).lstrip("/")
    internal = file_server.add("internal.bin", b"hello")
    localhost = internal.replace("127.0.0.1", "localhost")
    hubconf = f"""
        from hubcore import pretrained
        dependencies = []

        @pretrained({secret.as_uri()!r})
        def by_file_url():
            '''Reads a local file.'''

        @pretrained({climb!r})
        def by_climbing():
            '''Climbs out of the repository.'''

        @pretrained({internal!r}, sha256={HELLO_SHA!r})
        def by_loopback():
            '''Asks a loopback server.'''

        @pretrained({localhost!r}, sha256={HELLO_SHA!r})
        def by_name():
            '''Asks a loopback server by name.'''
    """
    repo_url = file_server.add("hub.zip", zip_bytes({"hubconf.py": hubconf, "README.md": "x"}))
    monkeypatch.delenv("HUBCORE_TRUST")
    for mode in ("--verify", "--online"):
        file_server.reset_counters()
        result = run(repo_url, mode)
        assert result.exit_code == 1
        out = result.output
        for name in ("by_file_url", "by_loopback", "by_name"):
            assert f"{name}[default]" in out
        assert out.count("repository you have not trusted") == 3
        assert "by_climbing[default]" in out
        assert "points outside the repository" in out
        assert [path for path, _ in file_server.requests("GET")] in ([], ["/hub.zip"])
        assert file_server.requests("HEAD") in ([], [("/hub.zip", ANY)])
        blobs = [p.read_bytes() for p in (hub_home / "blobs").rglob("*") if p.is_file()]
        assert b"private" not in blobs
        assert b"hello" not in blobs
    # Trusted, or allowed by the flag, the repository may reach them (the climb never).
    key, _ = trust.identity(hubcore.open_repo(repo_url))
    for allowance in ({"HUBCORE_TRUST": key}, {"HUBCORE_ALLOW_PRIVATE_URLS": "1"}):
        with monkeypatch.context() as patch:
            for key, value in allowance.items():
                patch.setenv(key, value)
            out = run(repo_url, "--verify").output
        assert "repository you have not trusted" not in out
        assert "by_climbing[default]" in out
        assert out.strip().endswith("1 error(s), 1 warning(s)")  # the climb; no sha256


def test_online_check_of_object_store_weights(hub_home, make_hub_repo, s3_bucket) -> None:
    """Weights on an object store are checked through the one store opener: present is
    fine, missing is a finding naming the file."""
    import fsspec

    fs = fsspec.filesystem("s3")
    fs.pipe(f"{s3_bucket}/w/present.safetensors", b"weights")
    present = weights_repo(make_hub_repo, f"s3://{s3_bucket}/w/present.safetensors")
    assert run(str(present), "--online").exit_code == 0
    missing = weights_repo(make_hub_repo, f"s3://{s3_bucket}/w/missing.safetensors")
    found = run(str(missing), "--online")
    assert found.exit_code == 1
    assert "net[default]" in found.output
    assert "unreachable" in found.output
