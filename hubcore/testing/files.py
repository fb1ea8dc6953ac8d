"""A small loopback HTTP server for the files a test downloads (the ``file_server`` fixture).

It serves the files of one folder with ``GET`` and ``HEAD`` on 127.0.0.1 and logs every
request, so a test can assert that a second load made no request. It does nothing else on
purpose: no ranges, no validators, no misbehaviour. hubcore's own download tests use a
fault-injecting server of their own (tests/fileserver.py in hubcore's repository), built on
this one.
"""

from __future__ import annotations

import shutil
import textwrap
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

__all__ = ["FileServer"]


class FileServer:
    """``FileServer(folder).start()``; ``add(name, data)`` writes a file and returns its URL.

    ``log`` holds ``(method, path, headers)`` of every request; :meth:`requests` filters it.
    Usable as a context manager (started on entry, stopped on exit).
    """

    scheme = "http"

    def __init__(self, folder: Path, *, host: str = "127.0.0.1"):
        self.folder = folder
        self.host = host
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log: list[tuple[str, str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        """The port the server listens on (chosen by the system)."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash."""
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self) -> FileServer:
        """Start serving in a background thread; returns the server."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FileServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def add(self, name: str, data: bytes) -> str:
        """Write *data* as the file *name* (a path relative to the folder); its URL."""
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return f"{self.url}/{name}"

    def reset_counters(self) -> None:
        """Forget the requests logged so far."""
        with self._lock:
            self.log.clear()

    def requests(self, method: str = "GET") -> list[tuple[str, dict[str, str]]]:
        """``(path, headers)`` of the requests made with *method*, oldest first."""
        with self._lock:
            return [(path, headers) for m, path, headers in self.log if m == method]

    def file_for(self, path: str) -> Path | None:
        """The served file a request *path* names, or ``None`` (missing, or outside the
        folder)."""
        relative = path.split("?", 1)[0].lstrip("/")
        if not relative or ".." in relative.split("/"):
            return None
        file = self.folder / relative
        return file if file.is_file() else None

    def _record(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        with self._lock:
            self.log.append(("HEAD" if head else "GET", h.path, dict(h.headers)))

    def _serve(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        """Answer one request; subclasses serve differently."""
        self._record(h, head)
        file = self.file_for(h.path)
        if file is None:
            _empty(h, 404)
            return
        h.send_response(200)
        h.send_header("Content-Length", str(file.stat().st_size))
        h.end_headers()
        if not head:
            with open(file, "rb") as fh:
                try:
                    shutil.copyfileobj(fh, h.wfile)
                except OSError:
                    h.close_connection = True  # the client went away

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass  # the server's own log is the record

            def do_GET(self) -> None:
                server._serve(self, head=False)

            def do_HEAD(self) -> None:
                server._serve(self, head=True)

        return Handler


def _empty(h: BaseHTTPRequestHandler, status: int) -> None:
    """An answer without a body."""
    h.send_response(status)
    h.send_header("Content-Length", "0")
    h.end_headers()


def write_repo(root: Path, files: Mapping[str, str | bytes]) -> Path:
    """Write *files* (relative path -> text or bytes) under *root*; text is dedented."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
    return root
