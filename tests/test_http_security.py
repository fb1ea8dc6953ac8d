"""Credentials belong to an origin (scheme, host, port): redirects and mirrors to another port
never receive them, an https -> http redirect is refused unless allowed, and error messages
never show a URL's user info or query."""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

import hubcore
from hubcore.cli import main
from hubcore.errors import DownloadError, HubError
from hubcore.store import http

from .fileserver import FileServer
from .gitserver import BareRepo, GitHostServer

SECRET_HEADERS = ("Authorization", "PRIVATE-TOKEN")
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def secrets_seen(log: list[tuple[str, str, dict[str, str]]]) -> list[str]:
    """Every credential header a loopback server received."""
    return [
        name
        for _, _, headers in log
        for name in headers
        if name.lower() in ("authorization", "private-token")
    ]


@pytest.fixture
def other(tmp_path: Path):
    """A second file server on 127.0.0.1, on another port."""
    server = FileServer(tmp_path / "other").start()
    yield server
    server.stop()


@pytest.fixture
def quick(monkeypatch) -> None:
    monkeypatch.setenv("HUBCORE_RETRIES", "2")
    monkeypatch.setenv("HUBCORE_READ_TIMEOUT", "2")


# -- a throwaway certificate for 127.0.0.1 --------------------------------------------------------


def _make_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        command = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1"
        command += " -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1"
        subprocess.run(
            [*command.split(), "-keyout", str(key), "-out", str(cert)],
            check=True,
            capture_output=True,
        )
        return cert, key
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch):
    """A file server speaking HTTPS with a throwaway certificate that requests trusts."""
    if shutil.which("openssl") is None:
        pytest.importorskip("cryptography")
    cert, key = _make_certificate(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    monkeypatch.delenv("HUBCORE_ALLOW_HTTP", raising=False)
    server = FileServer(tmp_path / "tls", tls=(cert, key)).start()
    yield server
    server.stop()


# -- the weight download path ---------------------------------------------------------------------


def test_weight_credentials_stay_off_another_port(hub_home, quick, file_server, other) -> None:
    data = os.urandom(5000)
    other.add("w.bin", data)
    file_server.redirects["/w.bin"] = f"{other.url}/w.bin"  # same host, another port
    url = f"http://user:pa55@127.0.0.1:{file_server.port}/w.bin"
    assert hubcore.download(url, sha256=sha(data)).read_bytes() == data
    assert secrets_seen(file_server.log) == ["Authorization"]  # the origin got them
    assert other.log
    assert not secrets_seen(other.log)


def test_weight_credentials_stay_off_a_mirror_on_another_port(
    hub_home, quick, file_server, other, monkeypatch
) -> None:
    data = os.urandom(5000)
    other.add("w.bin", data)
    monkeypatch.setenv("HUBCORE_MIRRORS", f"{file_server.url}/={other.url}/")
    url = f"http://user:pa55@127.0.0.1:{file_server.port}/w.bin"
    assert hubcore.download(url, sha256=sha(data)).read_bytes() == data
    assert not file_server.log
    assert other.log
    assert not secrets_seen(other.log)


def test_weight_https_to_http_redirect_is_refused(
    hub_home, quick, tls_server, other, monkeypatch
) -> None:
    data = os.urandom(5000)
    other.add("w.bin", data)
    tls_server.redirects["/w.bin"] = f"{other.url}/w.bin"
    url = f"https://user:pa55@127.0.0.1:{tls_server.port}/w.bin?sig=s3cr3t"
    with pytest.raises(DownloadError, match="HUBCORE_ALLOW_HTTP") as info:
        hubcore.download(url)
    assert "pa55" not in str(info.value)
    assert "s3cr3t" not in str(info.value)
    assert secrets_seen(tls_server.log) == ["Authorization"]  # TLS works and got the credentials
    assert not other.log  # nothing at all went out in clear text

    monkeypatch.setenv("HUBCORE_ALLOW_HTTP", "127.0.0.1")
    assert hubcore.download(url, sha256=sha(data)).read_bytes() == data
    assert other.log
    assert not secrets_seen(other.log)


# -- the git host path ----------------------------------------------------------------------------


@needs_git
@pytest.mark.parametrize("kind", ["github", "gitlab"])
def test_git_host_token_stays_off_another_port(hub_home, tmp_path, kind, monkeypatch) -> None:
    server = GitHostServer(tmp_path / "srv" / "repos").start()
    mirror = GitHostServer(server.root).start()
    try:
        BareRepo(server.root, "acme/hub").commit(
            {"hubconf.py": "def version():\n    '''v'''\n    return 'v1'\n"}, "first"
        )
        server.redirect_archives_to = mirror.url  # 127.0.0.1 too, another port
        ref = "acme/hub" if kind == "github" else "gitlab:acme/hub"
        assert hubcore.load(ref, "version", host=server.url, token="t0ken") == "v1"
        assert secrets_seen(server.log)
        assert mirror.log
        assert not secrets_seen(mirror.log)

        # a mirror of the host on another port of the same machine
        server.redirect_archives_to = None
        server.reset_log()
        mirror.reset_log()
        monkeypatch.setenv("HUBCORE_MIRRORS", f"{server.url}/={mirror.url}/")
        assert hubcore.load(ref, "version", host=server.url, token="t0ken", force_reload=True)
        assert not server.log
        assert mirror.log
        assert not secrets_seen(mirror.log)
    finally:
        mirror.stop()
        server.stop()


def test_git_host_https_to_http_redirect_is_refused(tls_server, other, monkeypatch) -> None:
    other.add("refs", b"plain")
    tls_server.redirects["/refs"] = f"{other.url}/refs"
    basic = base64.b64encode(b"x-access-token:t0ken").decode()
    credentials = http.Credentials(
        {tls_server.url: {"Authorization": f"Basic {basic}", "PRIVATE-TOKEN": "t0ken"}}
    )
    with pytest.raises(DownloadError, match="HUBCORE_ALLOW_HTTP"):
        http.get(f"{tls_server.url}/refs", credentials=credentials)
    assert sorted(secrets_seen(tls_server.log)) == ["Authorization", "PRIVATE-TOKEN"]
    assert not other.log

    monkeypatch.setenv("HUBCORE_ALLOW_HTTP", f"localhost, 127.0.0.1:{other.port}")
    with http.get(f"{tls_server.url}/refs", credentials=credentials) as response:
        assert response.content == b"plain"
    assert other.log
    assert not secrets_seen(other.log)


def test_credentials_are_bound_to_the_origin() -> None:
    credentials = http.Credentials({"https://git.example:8443": {"Authorization": "s3cr3t"}})
    assert credentials.headers_for("https://git.example:8443/a") == {"Authorization": "s3cr3t"}
    assert credentials.headers_for("HTTPS://GIT.example:8443/b?c") == {"Authorization": "s3cr3t"}
    for url in ("https://git.example/a", "http://git.example:8443/a", "https://git.example:9/a"):
        assert credentials.headers_for(url) == {}
    default_port = http.Credentials({"https://git.example": {"Authorization": "y"}})
    assert default_port.headers_for("https://git.example:443/a") == {"Authorization": "y"}
    assert "s3cr3t" not in repr(credentials)


# -- errors ---------------------------------------------------------------------------------------


def test_retried_failures_end_in_a_plain_download_error(hub_home, quick, file_server) -> None:
    file_server.faults.errors = [(503, 0)] * 10
    url = file_server.add("w.bin", b"x" * 1000)
    with pytest.raises(HubError) as info:
        hubcore.download(url)
    assert type(info.value) is DownloadError  # no internal retry marker reaches the user
    message = str(info.value)
    assert "attempts 1-2: HTTP 503" in message
    assert "HTTP 503" in message


def test_error_texts_hide_user_info_and_query(hub_home, quick) -> None:
    url = "http://user:pa55@127.0.0.1:9/w.bin?X-Amz-Signature=s3cr3t&token=t0k"
    with pytest.raises(DownloadError) as info:
        hubcore.download(url)
    with pytest.raises(DownloadError) as info2:
        http.get("http://127.0.0.1:9/repo.git/info/refs?X-Amz-Signature=s3cr3t")
    for error in (info.value, info2.value):
        text = str(error)
        assert "127.0.0.1" in text
        for secret in ("pa55", "s3cr3t", "t0k", "X-Amz-Signature"):
            assert secret not in text, text


def test_one_status_map() -> None:
    from hubcore.errors import AuthenticationError, RepoNotFoundError

    assert http.status_error(200, "OK", "x") is None
    assert type(http.status_error(404, "Not Found", "x")) is RepoNotFoundError
    assert type(http.status_error(404, "Not Found", "x", resource="file")) is DownloadError
    error = http.status_error(403, "Forbidden", "x", token_hint="Set TOKEN.")
    assert isinstance(error, AuthenticationError)
    assert "Set TOKEN." in str(error)
    assert "HTTP 503" in str(http.status_error(503, "Unavailable", "x"))
    assert http.is_transient(503)
    assert http.is_transient(429)
    assert not http.is_transient(404)


# -- URLs that parsers read differently, chains, HEAD requests ------------------------------------


@pytest.mark.parametrize("target", ["evil", "other-port"])
def test_a_backslash_in_a_redirect_host_is_refused(
    hub_home, quick, file_server, other, target
) -> None:
    """``http://127.0.0.1:EVIL\\@127.0.0.1:LEGIT/`` is LEGIT to urllib and EVIL to urllib3."""
    data = os.urandom(3000)
    file_server.add("w.bin", data)
    other.add("w.bin", data)
    evil = f"127.0.0.1:{other.port}" if target == "other-port" else "evil.invalid"
    file_server.redirects["/w.bin"] = f"http://{evil}\\@127.0.0.1:{file_server.port}/w.bin"
    url = f"http://user:pa55@127.0.0.1:{file_server.port}/w.bin"
    with pytest.raises(DownloadError, match="backslash"):
        hubcore.download(url)
    assert not other.log  # nothing, credentials least of all, reached the other port
    basic = base64.b64encode(b"x-access-token:t0ken").decode()
    credentials = http.Credentials({file_server.url: {"Authorization": f"Basic {basic}"}})
    with pytest.raises(DownloadError, match="backslash"):
        http.get(f"{file_server.url}/w.bin", credentials=credentials)
    assert not other.log


def test_a_downgrade_later_in_a_chain_is_refused_too(
    hub_home, quick, tls_server, file_server, other, monkeypatch
) -> None:
    data = os.urandom(3000)
    other.add("w.bin", data)
    # https -> allowed http host -> another http host nobody allowed
    tls_server.redirects["/w.bin"] = f"{file_server.url}/hop"
    file_server.redirects["/hop"] = f"{other.url}/w.bin"
    monkeypatch.setenv("HUBCORE_ALLOW_HTTP", f"127.0.0.1:{file_server.port}")
    with pytest.raises(DownloadError, match="HUBCORE_ALLOW_HTTP"):
        hubcore.download(f"{tls_server.url}/w.bin")
    assert file_server.log
    assert not other.log


def test_head_requests_use_the_one_client(hub_home, quick, tls_server, other) -> None:
    """``check --online`` and revalidation send HEAD through the same redirect rules."""
    other.add("w.bin", b"x")
    tls_server.redirects["/w.bin"] = f"{other.url}/w.bin"
    from hubcore.policy.check import _unreachable

    assert "HUBCORE_ALLOW_HTTP" in (_unreachable(f"{tls_server.url}/w.bin") or "")
    assert not other.log


def test_untrusted_weight_urls_with_ambiguous_hosts_are_refused(tmp_path) -> None:
    from hubcore.repo.pretrained import resolve_repo_weight_url

    with pytest.raises(HubError, match="backslash"):
        resolve_repo_weight_url(
            "http://127.0.0.1:9\\@unresolvable.invalid/admin",
            tmp_path,
            remote=True,
            allow_local=False,
        )


def test_errors_quote_the_first_line_of_the_servers_body(hub_home, quick) -> None:
    """The status alone rarely says why; the body's first line does (redacted, bounded)."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                body = b"<html><h1>Request has expired</h1> token=s3cr3t</html>\n" + b"x" * 5000
                conn.sendall(
                    b"HTTP/1.1 403 Forbidden\r\nContent-Length: %d\r\n\r\n" % len(body) + body
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/w.bin"
    try:
        with pytest.raises(HubError, match="The server said: Request has expired") as info:
            hubcore.download(url)
        assert "s3cr3t" not in str(info.value)
        with pytest.raises(HubError, match="Request has expired"):
            http.get(url)
    finally:
        thread.join(5)
        listener.close()


def test_an_untrusted_certificate_is_a_clear_error(hub_home, tmp_path, monkeypatch) -> None:
    """A server whose certificate the client does not trust: an ``ssl.SSLError`` keeps a text
    in its ``reason``, which the search for a wrapped hub error once took for an error
    (``internal error (AttributeError ...)``). A hub error names the certificate."""
    cert, key = _make_certificate(tmp_path)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    server = FileServer(tmp_path / "untrusted", tls=(cert, key)).start()
    try:
        url = server.add("hub.zip", b"not reached")
        result = CliRunner().invoke(main, ["list", url])
    finally:
        server.stop()
    assert result.exit_code != 0
    assert "internal error" not in result.output
    assert "certificate" in result.output.lower()
