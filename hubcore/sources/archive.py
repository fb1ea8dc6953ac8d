"""The ``url`` source: a repository published as one archive file (zip or tar).

``https://example.org/models/resnet-1.2.zip`` (any fsspec URL works) is downloaded into the
content-addressed cache, and the snapshot id is the archive's sha256. Append
``#sha256=<hex>`` to pin the content: a pinned archive already in the cache costs no request,
and a server that now serves other bytes fails with an IntegrityError. An unpinned archive is
revalidated with one metadata request (ETag / Last-Modified) per load.

Any URL whose scheme fsspec can fetch and whose path ends in an archive suffix is this
source's, ahead of sources that merely know the scheme (``file:///x/hub.zip`` is an archive,
not a folder). The identity is the URL without credentials, query or fragment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urldefrag, urlsplit

from hubcore.errors import InvalidReferenceError
from hubcore.patterns import later
from hubcore.plugins.hookspecs import hookimpl
from hubcore.sources import Claim, FetchContext, RepoRef, Source, canonical_url
from hubcore.sources.remote import RemoteSource, Resolution

__all__ = ["ArchiveSource"]

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_PIN = later(r"^sha256=([0-9a-fA-F]{64})$")


class ArchiveSource(RemoteSource):
    """A zip or tar archive at any fsspec URL, optionally pinned by ``#sha256=``."""

    name = "url"
    # the pin is spelled apart from the URL: the redactor drops a fragment that is no real pin
    forms: tuple[str, ...] = ("https://host/path/name.zip|.tar.gz, pinned by #sha256=<hex>",)

    def claim(self, text: str, options: Mapping[str, Any]) -> int:
        """A fetchable URL with an archive suffix: a scheme plus a rule, so most specific."""
        url = urldefrag(text)[0]
        if "://" not in url or not urlsplit(url).path.lower().endswith(ARCHIVE_SUFFIXES):
            return Claim.NONE
        return Claim.SPECIFIC if _fetchable(urlsplit(url).scheme) else Claim.NONE

    def parse(self, text: str, options: Mapping[str, Any]) -> RepoRef | None:
        """A :class:`RepoRef` for an archive URL, pinned by ``#sha256=`` or ``commit=``."""
        url, fragment = urldefrag(text[len("url:") :] if text.startswith("url:") else text)
        path = urlsplit(url).path.lower()
        if "://" not in url or not path.endswith(ARCHIVE_SUFFIXES):
            if text.startswith("url:"):
                raise InvalidReferenceError(
                    f"{text!r} is not an archive URL; expected {self.forms[0]}"
                )
            return None
        pin = None
        if fragment:
            match = _PIN().match(fragment)
            if not match:
                raise InvalidReferenceError(
                    f"{text!r}: the only fragment understood is #sha256=<64 hex digits>"
                )
            pin = match.group(1).lower()
        if options.get("commit"):  # an archive's "commit" is its content hash
            pin = str(options["commit"]).lower()
        opts = {"storage_options": options.get("storage_options") or {}}
        return RepoRef(
            source=self.name,
            repo=url,
            revision=pin,
            text=text,
            options=opts,
            identity=f"{self.name}:{canonical_url(url, keep_query=True)}",
        )

    def pinned(self, ref: RepoRef) -> str | None:
        """The ``#sha256=`` pin: a cached pinned archive costs no request."""
        return ref.revision

    def is_snapshot_id(self, text: str) -> bool:
        """An archive's snapshot id is the sha256 of its bytes."""
        from hubcore.store.cache import is_sha256

        return is_sha256(text)

    def record_name(self, ref: RepoRef) -> str:
        """An archive URL has one moving name: what it served last."""
        return "latest"

    def resolve(self, ref: RepoRef, ctx: FetchContext) -> Resolution:
        """Fetch the archive (revalidated by ETag / Last-Modified): its sha256 is the id. An
        archive the server does not have (404/410) is a missing repository, as for every source
        (:func:`hubcore.store.http.status_error`)."""
        from hubcore.store import transfer  # when fetching: every command registers the source
        from hubcore.store.archives import extract_archive

        file = transfer.fetch(
            ref.repo,
            sha256=ref.revision,
            progress=ctx.progress,
            cache=ctx.cache,
            revalidate=True,
            storage_options=ref.options.get("storage_options"),
            resource="repository",
        )
        return file.sha256, lambda tree: extract_archive(file.path, tree)


def _fetchable(scheme: str) -> bool:
    """Whether the downloader can fetch URLs of *scheme* (http(s), file, fsspec's protocols)."""
    if scheme in ("http", "https", "file"):
        return True
    import fsspec

    return scheme in fsspec.available_protocols()


@hookimpl
def hubcore_register_sources(register: Callable[[Source], None]) -> None:
    """Register the archive URL source."""
    register(ArchiveSource())
