"""The one rule for a repository's weight URLs: paths stay inside it, and a repository nobody
trusted reaches neither this machine's files nor its network's addresses."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from hubcore.errors import HubconfError, UntrustedRepoError
from hubcore.repo.pretrained import resolve_repo_weight_url
from hubcore.store.addresses import is_internal_host


@pytest.fixture
def root(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "weights").mkdir(parents=True)
    (repo / "weights" / "w.bin").write_bytes(b"w")
    (tmp_path / "outside.bin").write_bytes(b"secret")
    (repo / "weights" / "link.bin").symlink_to(tmp_path / "outside.bin")
    return repo


@pytest.fixture(autouse=True)
def no_allowance(monkeypatch) -> None:
    monkeypatch.delenv("HUBCORE_ALLOW_PRIVATE_URLS", raising=False)


def untrusted(url: str, root: Path) -> str:
    return resolve_repo_weight_url(url, root, remote=True, allow_local=False)


@pytest.mark.parametrize("remote", [False, True])
@pytest.mark.parametrize("allow_local", [False, True])
def test_relative_paths_resolve_inside_and_never_climb_out(root, remote, allow_local) -> None:
    inside = resolve_repo_weight_url("weights/w.bin", root, remote=remote, allow_local=allow_local)
    assert inside == (root / "weights" / "w.bin").as_uri()
    for climb in ("../outside.bin", "weights/../../outside.bin", "../" * 30 + "etc/hostname"):
        with pytest.raises(HubconfError, match="outside the repository"):
            resolve_repo_weight_url(climb, root, remote=remote, allow_local=allow_local)


def test_a_symlink_out_of_a_remote_repository_is_refused(root) -> None:
    with pytest.raises(HubconfError, match="outside the repository"):
        resolve_repo_weight_url("weights/link.bin", root, remote=True, allow_local=True)
    # A local folder is the user's own: its links are the user's choice.
    local = resolve_repo_weight_url("weights/link.bin", root, remote=False, allow_local=False)
    assert local.endswith("/weights/link.bin")


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "FILE:///etc/passwd",
        "file://localhost/etc/passwd",
        "/etc/passwd",
        "~/.ssh/id_rsa",
        "http://127.0.0.1:8080/w.bin",
        "https://localhost/w.bin",
        "http://app.localhost/w.bin",
        "http://[::1]/w.bin",
        "http://[::ffff:127.0.0.1]/w.bin",
        "http://10.1.2.3/w.bin",
        "http://192.168.0.1/w.bin",
        "http://172.16.5.4/w.bin",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/w.bin",
        "http://0.0.0.0/w.bin",
        "http://127.1/w.bin",
        "http://2130706433/w.bin",
        "memory://w.bin",
        "sftp://host/w.bin",
        "simplecache::https://example.org/w.bin",
        "zip://w.bin::file:///tmp/a.zip",
    ],
)
def test_untrusted_remote_repository_may_not_reach_this_machine(root, url) -> None:
    with pytest.raises(UntrustedRepoError, match="not trusted") as info:
        untrusted(url, root)
    assert "HUBCORE_ALLOW_PRIVATE_URLS" in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.216.34/w.bin",
        "http://[2606:4700::1111]/w.bin",
        "s3://bucket/w.bin",
        "gs://bucket/w.bin",
        "oss://bucket/w.bin",
        "hf://org/model/w.bin",
    ],
)
def test_untrusted_remote_repository_may_name_public_addresses(root, url) -> None:
    assert untrusted(url, root) == url


def test_file_url_inside_the_repository_is_fine(root) -> None:
    url = (root / "weights" / "w.bin").as_uri()
    assert untrusted(url, root) == url


@pytest.mark.parametrize("url", ["file:///etc/passwd", "/etc/passwd", "http://127.0.0.1/w"])
def test_trust_a_flag_or_a_local_folder_allow_local_urls(root, url, monkeypatch) -> None:
    assert resolve_repo_weight_url(url, root, remote=True, allow_local=True)
    assert resolve_repo_weight_url(url, root, remote=False, allow_local=False)
    monkeypatch.setenv("HUBCORE_ALLOW_PRIVATE_URLS", "1")
    assert untrusted(url, root)


def test_internal_hosts(monkeypatch) -> None:
    assert is_internal_host("LOCALHOST.")
    assert is_internal_host("fe80::1%eth0")
    assert not is_internal_host("8.8.8.8")
    assert not is_internal_host("")
    answers = {"intranet.example": "10.0.0.5", "www.example": "93.184.216.34"}

    def resolve(host, port):  # the system resolver, without a network
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], 0))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    assert is_internal_host("intranet.example")  # a name for an internal address
    assert not is_internal_host("www.example")
    assert not is_internal_host("nowhere.example")  # does not resolve: fetching it fails too
    with pytest.raises(UntrustedRepoError, match=r"intranet\.example"):
        untrusted("https://intranet.example/w.bin", Path("/repo"))


def test_redirects_of_an_untrusted_repository_stay_public(hub_home, tmp_path, monkeypatch) -> None:
    """A 'public' weight host that redirects to an internal service is refused on the way, for
    `hubcore lock` and `check --verify` of a repository you have not trusted."""
    import io
    import zipfile

    from click.testing import CliRunner

    from hubcore import pretrained
    from hubcore.cli import main
    from hubcore.store import addresses, http

    from .fileserver import FileServer

    # 127.0.0.2 plays a public host here; 127.0.0.1 is the internal service
    def internal(host: str) -> bool:
        return host in ("127.0.0.1", "localhost")

    for module in (addresses, http, pretrained):
        monkeypatch.setattr(module, "is_internal_host", internal, raising=False)
    inside = FileServer(tmp_path / "inside").start()
    public = FileServer(tmp_path / "public", host="127.0.0.2").start()
    try:
        inside.add("meta-data", b"instance credentials")
        public.redirects["/w.bin"] = f"{inside.url}/meta-data"
        hub = io.BytesIO()
        with zipfile.ZipFile(hub, "w") as zf:
            zf.writestr(
                "hubconf.py",
                "from hubcore import pretrained\n\ndependencies = []\n\n\n"
                f"@pretrained({public.url + '/w.bin'!r})\ndef f():\n    '''F.'''\n",
            )
        url = public.add("hub.zip", hub.getvalue())
        monkeypatch.setenv("HUBCORE_TRUST", "")  # the repository is not trusted
        monkeypatch.chdir(tmp_path)
        for args in (["lock", url], ["check", url, "--verify"]):
            result = CliRunner().invoke(main, args)
            assert "private or link-local" in result.output, result.output
        assert not inside.log  # the internal service never saw a request
        # a trusted repository may reach it
        monkeypatch.setenv("HUBCORE_TRUST", url)
        assert CliRunner().invoke(main, ["lock", url]).exit_code == 0
        assert inside.log
    finally:
        inside.stop()
        public.stop()
