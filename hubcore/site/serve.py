"""``hubcore site serve``: the built site on ``http://127.0.0.1:PORT/hub/`` (as the Jekyll
preview of the PyTorch hub), rebuilt when an input changes.

Only loopback is served (a preview, not a web server). A thread polls the inputs' local
files; a changed page is read and rendered alone (:meth:`SiteBuilder.refresh`).
"""

from __future__ import annotations

import functools
import http.server
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hubcore.site.build import BuildReport, SiteBuilder

__all__ = ["PREFIX", "SiteServer"]

logger = logging.getLogger(__name__)
PREFIX = "/hub/"


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the output folder under :data:`PREFIX`; ``/`` redirects there."""

    def translate_path(self, path: str) -> str:
        # the prefix is checked in do_GET/do_HEAD; here it is only removed
        rest = urlsplit(path).path[len(PREFIX) - 1 :]
        return super().translate_path(rest)

    def send_head(self) -> Any:
        # the folder only: a symlink in it that leads elsewhere is not followed
        root = os.path.realpath(self.directory)
        real = os.path.realpath(self.translate_path(self.path))
        if real != root and not real.startswith(root + os.sep):
            self.send_error(404, "not in the catalog")
            return None
        return super().send_head()

    def list_directory(self, path: str | os.PathLike[str]) -> None:
        """No folder listings: a folder without ``index.html`` is not found."""
        self.send_error(404, "no such page")

    def _in_prefix(self) -> bool:
        # a page of another site that rebinds its name to 127.0.0.1 sends its own Host
        host = self.headers.get("Host", "")
        port = getattr(self.server, "server_port", 0)
        if host not in (f"127.0.0.1:{port}", f"localhost:{port}"):
            self.send_error(403, "the catalog preview answers only 127.0.0.1 and localhost")
            return False
        path = urlsplit(self.path).path
        if path in ("/", PREFIX.rstrip("/")):
            self.send_response(302)
            self.send_header("Location", PREFIX)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False
        if not path.startswith(PREFIX):
            self.send_error(404, "the catalog is under /hub/")
            return False
        return True

    def do_GET(self) -> None:
        """Serve a file of the site."""
        if self._in_prefix():
            super().do_GET()

    def do_HEAD(self) -> None:
        """Headers of a file of the site."""
        if self._in_prefix():
            super().do_HEAD()

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("serve: " + format, *args)


class SiteServer:
    """Serve *builder*'s output on 127.0.0.1:*port* (0: any free port) and rebuild on change.

    Use as a context manager, or call :meth:`start` / :meth:`stop`. *on_rebuild* is told
    about each rebuild (the command prints a line).
    """

    def __init__(
        self,
        builder: SiteBuilder,
        port: int = 4000,
        *,
        interval: float = 0.3,
        on_rebuild: Callable[[BuildReport], None] | None = None,
    ) -> None:
        self.builder = builder
        handler = functools.partial(_Handler, directory=str(builder.output))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.interval = interval
        self.on_rebuild = on_rebuild
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        """The site's address."""
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}{PREFIX}"

    @property
    def output(self) -> Path:
        """The folder served."""
        return self.builder.output

    def start(self) -> SiteServer:
        """Serve and watch in background threads."""
        self._threads = [
            threading.Thread(target=self.httpd.serve_forever, name="site-serve", daemon=True),
            threading.Thread(target=self._watch, name="site-watch", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                report = self.builder.poll()
            except Exception:  # a bad edit must not end the preview
                logger.exception("rebuild failed")
                continue
            if report is not None and self.on_rebuild is not None:
                self.on_rebuild(report)

    def stop(self) -> None:
        """Stop serving and watching."""
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> SiteServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
