"""Loopback stand-ins for git hosting, for the source tests.

``GitHostServer`` serves bare repositories under a folder:

* git smart HTTP, by running the real ``git http-backend`` as a CGI program;
* GitHub-style archives: ``/<owner>/<repo>/archive/<ref>.zip`` and
  ``/api/v3/repos/<owner>/<repo>/zipball/<ref>``;
* GitLab-style archives: ``/api/v4/projects/<url-encoded path>/repository/archive.zip?sha=<ref>``;
* plain files under ``/files/`` (with ETag), for archive-URL sources.

Archives are built with ``git archive`` from the same bare repository, so they carry the commit
id in the zip comment exactly as the real hosts do. Every request is logged; repositories can
require a token; archives can be truncated or redirected to another host name.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        [*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


class BareRepo:
    """A bare repository plus a work tree that pushes to it."""

    def __init__(self, root: Path, path: str):
        self.bare = root / f"{path}.git"
        self.work = root.parent / "work" / path
        self.work.mkdir(parents=True)
        git("init", "-q", "-b", "main", cwd=self.work)
        self.bare.parent.mkdir(parents=True, exist_ok=True)
        git("init", "-q", "--bare", "-b", "main", str(self.bare), cwd=self.work)
        git("config", "uploadpack.allowAnySHA1InWant", "true", cwd=self.bare)
        git("remote", "add", "origin", str(self.bare), cwd=self.work)

    def commit(self, files: dict[str, str], message: str = "change", branch: str = "main") -> str:
        """Write *files*, commit on *branch*, push; return the commit sha."""
        current = git("symbolic-ref", "--short", "HEAD", cwd=self.work)
        if current != branch:
            git("checkout", "-q", "-B", branch, cwd=self.work)
        for rel, text in files.items():
            path = self.work / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            if rel.endswith(".sh"):
                path.chmod(0o755)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=self.work)
        git("push", "-q", "-f", "origin", f"{branch}:{branch}", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    def tag(self, name: str, annotated: bool = True) -> None:
        args = ["tag", "-a", name, "-m", name] if annotated else ["tag", name]
        git(*args, cwd=self.work)
        git("push", "-q", "origin", name, cwd=self.work)


class GitHostServer:
    """A threaded HTTP server on 127.0.0.1 speaking just enough of GitHub and GitLab."""

    def __init__(self, root: Path):
        self.root = root
        self.log: list[tuple[str, str, dict[str, str]]] = []
        self.tokens: dict[str, str] = {}  # repo path -> required token
        self.truncate_archives = False
        self.redirect_archives_to: str | None = None  # another base URL
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> GitHostServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def paths(self) -> list[str]:
        return [path for _, path, _ in self.log]

    def reset_log(self) -> None:
        self.log.clear()

    # -- request handling ----------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.log.append(("GET", self.path, dict(self.headers)))
                server.route(self)

            def do_HEAD(self) -> None:
                server.log.append(("HEAD", self.path, dict(self.headers)))
                server.route(self, head=True)

            def do_POST(self) -> None:
                server.log.append(("POST", self.path, dict(self.headers)))
                server.route(self)

        return Handler

    def route(self, h: BaseHTTPRequestHandler, head: bool = False) -> None:
        parts = urlsplit(h.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query)
        if path.startswith("/files/"):
            return self._file(h, self.root.parent / "files" / path[len("/files/") :], head)
        m = re.match(r"^/(?P<repo>.+?)\.git(?P<rest>/.*)$", path)
        if m:
            if not self._authorized(h, m["repo"]):
                return self._send(h, 401, b"auth required")
            return self._git_backend(h, path, parts.query)
        m = (
            re.match(r"^/api/v3/repos/(?P<repo>[^/]+/[^/]+)/zipball/(?P<ref>.+)$", path)
            or re.match(r"^/(?P<repo>[^/]+/[^/]+)/archive/(?P<ref>.+)\.zip$", path)
            or re.match(r"^/(?P<repo>[^/]+/[^/]+)/zip/(?P<ref>.+)$", path)  # codeload
        )
        if m:
            return self._archive(h, m["repo"], m["ref"])
        m = re.match(r"^/api/v4/projects/(?P<repo>.+)/repository/archive\.zip$", path)
        if m:
            return self._archive(h, m["repo"], query.get("sha", ["HEAD"])[0])
        return self._send(h, 404, b"not found")

    def _authorized(self, h: BaseHTTPRequestHandler, repo: str) -> bool:
        required = self.tokens.get(repo)
        if required is None:
            return True
        offered = [h.headers.get("PRIVATE-TOKEN", "")]
        auth = h.headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "basic":
            offered.append(base64.b64decode(value).decode().partition(":")[2])
        elif scheme.lower() in ("bearer", "token"):
            offered.append(value)
        return required in offered

    def _archive(self, h: BaseHTTPRequestHandler, repo: str, ref: str) -> None:
        if self.redirect_archives_to:
            target = self.redirect_archives_to + h.path
            h.send_response(302)
            h.send_header("Location", target)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return None
        if not self._authorized(h, repo):
            return self._send(h, 401, b"auth required")
        bare = self.root / f"{repo}.git"
        if not bare.is_dir():
            return self._send(h, 404, b"no such project")
        try:
            sha = git("rev-parse", "--verify", f"{ref}^{{commit}}", cwd=bare)
        except subprocess.CalledProcessError:
            return self._send(h, 404, b"no such ref")
        name = repo.rsplit("/", 1)[-1]
        data = subprocess.run(
            [*GIT, "archive", "--format=zip", f"--prefix={name}-{sha}/", sha],
            cwd=bare,
            check=True,
            capture_output=True,
        ).stdout
        h.send_response(200)
        h.send_header("Content-Type", "application/zip")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if self.truncate_archives:
            h.wfile.write(data[: len(data) // 2])
            h.wfile.flush()
            h.close_connection = True
            return None
        h.wfile.write(data)

    def _file(self, h: BaseHTTPRequestHandler, path: Path, head: bool) -> None:
        if not path.is_file():
            return self._send(h, 404, b"not found")
        data = path.read_bytes()
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.send_header("ETag", '"' + hashlib.sha256(data).hexdigest()[:16] + '"')
        h.end_headers()
        if not head:
            h.wfile.write(data)

    def _git_backend(self, h: BaseHTTPRequestHandler, path: str, query: str) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        env = {
            **os.environ,
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": h.command,
            "CONTENT_TYPE": h.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(length),
            "REMOTE_ADDR": "127.0.0.1",
        }
        if h.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = h.headers["Git-Protocol"]
        out = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
        ).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.split(b"\r\n"):
            key, _, value = line.decode().partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            elif key:
                headers.append((key, value.strip()))
        h.send_response(status)
        for key, value in headers:
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        h.send_response(status)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)


class GitDaemon:
    """``git daemon`` serving a folder of bare repositories on 127.0.0.1."""

    def __init__(self, root: Path):
        import socket

        self.root = root
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"git://127.0.0.1:{self.port}"

    def start(self) -> GitDaemon:
        import socket
        import time

        self._process = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--enable=upload-pack",
                f"--base-path={self.root}",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                str(self.root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("git daemon did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
