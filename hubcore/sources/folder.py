"""The ``fsspec`` source: a repository folder on any fsspec filesystem (S3, OSS, GCS, ...).

The folder is listed once (one request for object stores); the snapshot id is a hash of that
listing (names, sizes and ETags or modification times), so an unchanged folder is served from
the cache after that one listing, and a changed one is fetched anew into a fresh snapshot.

``oss://bucket/path/`` uses ``ossfs`` when it is installed; otherwise it goes through s3fs
against OSS's S3-compatible endpoint, taken from ``storage_options={"endpoint_url": ...}`` or
``HUBCORE_OSS_ENDPOINT`` (for example ``https://oss-cn-hangzhou.aliyuncs.com``).

Listing and copying go through :mod:`hubcore.store.stores`: S3-compatible stores get
hubcore's connect and read timeouts, every operation of an asynchronous filesystem is bounded
by the stall budget, and each file is copied as one streamed request (or range by range
where the filesystem cannot stream), every 4 MiB within the stall budget.

The source claims every protocol fsspec knows, but only generically: a source that declares a
protocol (a plugin's ``hf://``) or a rule (an archive suffix) wins. A protocol fsspec does not
know is nobody's, and fails with an error naming it. The identity names the endpoint of
S3-compatible stores: ``fsspec:s3://bucket/path`` for AWS's default endpoint,
``fsspec:s3+https://minio.example:9000/bucket/path`` for another one (a spelling this source
also accepts as a reference).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hubcore import config, records
from hubcore.errors import (
    DownloadError,
    HubconfNotFoundError,
    InvalidReferenceError,
    LockMismatchError,
    RepoNotFoundError,
)
from hubcore.patterns import later
from hubcore.plugins.hookspecs import hookimpl
from hubcore.sources import Claim, FetchContext, RepoRef, Source, canonical_url
from hubcore.sources.remote import RemoteSource, Resolution

__all__ = ["FolderSource"]

if TYPE_CHECKING:
    from hubcore.store import stores

#: A model package's digest, the only revision a folder on a store has.
_PIN = later(r"^sha256:[0-9a-f]{64}$")
#: The snapshot id of an unpinned folder: a hash of its listing.
_LISTING_ID = later(r"^listing-[0-9a-f]{32}$")
#: Files of a folder copied at once (object stores answer each request slowly, not narrowly).
COPIES = 8
#: HTTP has no folder listing, so an http(s) URL is never a folder of files.
_UNLISTABLE = {"http", "https"}
#: Where the endpoint of an S3-compatible store may be given, in order.


class FolderSource(RemoteSource):
    """A folder on an fsspec filesystem, snapshotted by its listing."""

    name = "fsspec"
    forms: tuple[str, ...] = ("s3://bucket/path/", "oss://bucket/path/", "<protocol>://path/")

    def claim(self, text: str, options: Mapping[str, Any]) -> int:
        """Any listable protocol fsspec knows, generically."""
        scheme = urlsplit(text).scheme if "://" in text else ""
        return Claim.GENERIC if scheme and _folder_protocol(scheme) else Claim.NONE

    def parse(self, text: str, options: Mapping[str, Any]) -> RepoRef | None:
        """A :class:`RepoRef` for ``<protocol>://path`` or ``fsspec:<protocol>+<endpoint>/path``."""
        body = text[len("fsspec:") :] if text.startswith("fsspec:") else text
        scheme = urlsplit(body).scheme if "://" in body else ""
        storage = dict(options.get("storage_options") or {})
        protocol, plus, endpoint_scheme = scheme.partition("+")
        if plus and endpoint_scheme in ("http", "https") and _folder_protocol(protocol):
            body, storage = _path_style(body, protocol, storage, text)
        elif not scheme or not _folder_protocol(scheme):
            if body is not text:
                raise InvalidReferenceError(
                    f"{text!r}: fsspec knows no folder protocol {scheme or '(none)'!r}; "
                    f"expected {' or '.join(self.forms)}"
                )
            return None
        repo = body.rstrip("/")
        revision = options.get("commit")
        if revision is not None and not _PIN().match(str(revision)):
            raise InvalidReferenceError(
                f"{text!r} is a folder on a store, which has no commits: pin a model package "
                "with revision='sha256:<package digest>' (what `hubcore push` prints)"
            )
        return RepoRef(
            source=self.name,
            repo=repo,
            revision=revision,
            text=text,
            options={"storage_options": storage},
            identity=f"{self.name}:{_identity(repo, storage)}",
        )

    def record_name(self, ref: RepoRef) -> str:
        """A folder has one moving name: what it held when last listed."""
        return "latest"

    def pinned(self, ref: RepoRef) -> str | None:
        """A model package pinned by its digest (``sha256:<hex>``) is its own snapshot id."""
        return ref.revision if ref.revision and _PIN().match(ref.revision) else None

    def is_snapshot_id(self, text: str) -> bool:
        """A package digest (``sha256:<hex>``) or the hash of a listing (``listing-<hex>``)."""
        return bool(_PIN().match(text) or _LISTING_ID().match(text))

    def resolve(self, ref: RepoRef, ctx: FetchContext) -> Resolution:
        """List the folder once: the hash of the listing (names, sizes, tags) is the id, or
        the pin, which the copied package must then match (``ctx.check_pin``, supplied by the
        model-package feature: a source never imports a feature)."""
        import hashlib  # when fetching: every command registers this source

        from hubcore.store import stores

        pin = self.pinned(ref)
        check = _pin_check(ref, pin, ctx)
        store = _filesystem(ref)
        listing = _listing(store, ref.repo)
        listed = hashlib.sha256(json.dumps(sorted(listing.items())).encode()).hexdigest()
        snapshot_id = pin or f"listing-{listed[:32]}"  # a _LISTING_ID

        def copy(tree: Path, rel: str, size: int | None) -> None:
            target = tree / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            what = f"copying {ref.repo}/{rel}"
            try:
                with open(target, "wb") as out:
                    copied = stores.copy(store, f"{store.path}/{rel}", size, out.write, what)
            except OSError as exc:
                raise DownloadError(f"{what} failed: {exc}") from exc
            if size is not None and copied != size:
                raise DownloadError(f"{ref.repo}/{rel} changed while it was copied")

        def fill(tree: Path) -> None:
            from concurrent.futures import ThreadPoolExecutor  # only a fetch copies

            with ThreadPoolExecutor(max_workers=COPIES) as pool:  # files copy concurrently
                copies = [pool.submit(copy, tree, rel, size) for rel, (size, _) in listing.items()]
                for done in copies:
                    done.result()
            check(tree)

        return snapshot_id, fill


def _pin_check(ref: RepoRef, pin: str | None, ctx: FetchContext) -> Callable[[Path], None]:
    """What a filled folder must pass before the cache publishes it: for a pinned reference,
    the fetch context's pin check (a package digest is the packages feature's to check)."""
    if pin is None:
        return lambda tree: None
    check_pin = ctx.check_pin
    if check_pin is None:  # never publish a pinned tree unchecked
        raise LockMismatchError(
            f"{ref} pins the package {pin}, but nothing was given to check a package digest "
            "with; open it through hubcore.load or hubcore.open_repo"
        )
    return lambda tree: check_pin(tree, pin, str(ref))


def _filesystem(ref: RepoRef) -> stores.Store:
    from hubcore.store import stores

    store = stores.open_store(config.rewrite_url(ref.repo), ref.options.get("storage_options"))
    return records.replace(store, path=store.path.rstrip("/"))


def _listing(store: stores.Store, label: str) -> dict[str, tuple[int | None, str]]:
    """``{relative path: (size, change marker)}`` of every file below the store's path."""
    from hubcore.store import stores

    root = store.path
    try:
        found = stores.call(store, "find", root, detail=True, what=f"listing {label}")
    except FileNotFoundError:
        found = {}
    if not found:
        raise RepoNotFoundError(f"{label} is empty or does not exist")
    listing: dict[str, tuple[int | None, str]] = {}
    for path, info in found.items():
        if info.get("type") == "directory":
            continue
        rel = str(path)[len(root) :].lstrip("/")
        if not rel or ".." in rel.split("/"):
            continue
        marker = next(
            (str(info[k]) for k in ("ETag", "etag", "mtime", "LastModified", "md5") if info.get(k)),
            "",
        )
        size = info.get("size")
        listing[rel] = (int(size) if size is not None else None, marker)
    if "hubconf.py" not in listing and "config.json" not in listing:
        raise HubconfNotFoundError(
            f"{label} has no hubconf.py (nor a model package's config.json) at its root"
        )
    return listing


def _folder_protocol(scheme: str) -> bool:
    """Whether *scheme* is a protocol fsspec knows (or OSS) that can list folders."""
    if scheme in _UNLISTABLE or not scheme or "+" in scheme:
        return False  # "+" spells a transport (git+https, s3+https), never an fsspec protocol
    import fsspec  # slow to import: not for references that are not fsspec's

    return scheme in fsspec.available_protocols() or scheme == "oss"


def _identity(url: str, storage: Mapping[str, Any]) -> str:
    """``s3://bucket/path``, or ``s3+https://endpoint/bucket/path`` for another endpoint."""
    from hubcore.store import stores

    parts = urlsplit(url)
    endpoint = stores.endpoint(parts.scheme, storage)
    if endpoint is None:
        return canonical_url(url)
    base = canonical_url(endpoint if "://" in endpoint else f"https://{endpoint}")
    return f"{parts.scheme}+{base}/{parts.netloc}{parts.path.rstrip('/')}"


def _path_style(
    body: str, protocol: str, storage: dict[str, Any], text: str
) -> tuple[str, dict[str, Any]]:
    """``s3+https://endpoint/bucket/path`` -> (``s3://bucket/path``, storage with the endpoint)."""
    parts = urlsplit(body)
    endpoint_scheme = parts.scheme.partition("+")[2]
    endpoint = f"{endpoint_scheme}://{parts.netloc}"
    bucket_path = parts.path.lstrip("/")
    if not bucket_path:
        raise InvalidReferenceError(f"{text!r} names an endpoint but no bucket")
    from hubcore.store import stores

    given = stores.endpoint(protocol, storage)
    if given is not None and canonical_url(given) != canonical_url(endpoint):
        raise InvalidReferenceError(
            f"{text!r} names the endpoint {canonical_url(endpoint)} but the storage options "
            f"name {canonical_url(given)}; name one"
        )
    return f"{protocol}://{bucket_path}", {**storage, "endpoint_url": endpoint}


@hookimpl
def hubcore_register_sources(register: Callable[[Source], None]) -> None:
    """Register the fsspec folder source."""
    register(FolderSource())
