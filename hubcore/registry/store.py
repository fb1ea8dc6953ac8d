"""Storage under a registry: the few operations the registry needs, with their guarantees.

Every object is addressed by a ``/``-separated key below the registry's root. Two writes are
conditional, and they carry all of the registry's concurrency control:

* :meth:`Store.create` writes an object only if none exists (create-only): on S3
  ``PutObject`` with ``If-None-Match: *``; on a local or network folder the bytes go to a
  temporary file that is hard-linked to its name (``link`` fails if the name exists, and a
  reader never sees a half-written object);
* :meth:`Store.swap` replaces an object only if it is still the one read (compare-and-swap):
  on S3 ``PutObject`` with ``If-Match: <ETag>``; on a folder a per-object
  :mod:`filelock` lock around read-compare-rename (``os.replace`` is atomic; readers take
  no lock). The lock is the one place a folder needs one: it is an OS lock, released when
  its holder dies.

Any other fsspec filesystem is refused with :class:`UnsupportedStorageError` naming it.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import filelock

from hubcore.errors import DownloadError
from hubcore.registry.errors import RegistryError, UnsupportedStorageError
from hubcore.store.files import atomic_copy
from hubcore.store.hashing import OverlappedHash

if TYPE_CHECKING:
    from hubcore.store import stores

__all__ = ["LocalStore", "ObjectInfo", "S3Store", "Store", "open_store"]

CHUNK = 8 << 20
#: Bytes per ``write`` call of a download: measured on a 2-core VM, writing 1 GiB in pieces of
#: 1 MiB or more cost several times the CPU of 256 KiB pieces (and so most of the time).
WRITE = 256 << 10


@attrs.frozen
class ObjectInfo:
    """An object's key (relative to the root), size and modification time (POSIX seconds)."""

    key: str
    size: int
    mtime: float


class Store(Protocol):
    """What the registry asks of its storage (see the module docstring)."""

    #: the registry's location as the user may see it (no credentials)
    url: str
    #: one canonical name of the registry, whatever the spelling (keys the local cache)
    identity: str

    def read(self, key: str) -> tuple[bytes, str]:
        """The object's bytes and its version tag; :class:`FileNotFoundError` if absent."""
        ...

    def info(self, key: str) -> ObjectInfo | None:
        """Size and modification time of the object, ``None`` if absent."""
        ...

    def create(self, key: str, data: bytes) -> bool:
        """Write *data* if no object is at *key*; ``False`` if one is."""
        ...

    def swap(self, key: str, data: bytes, tag: str) -> bool:
        """Replace the object if its version tag is still *tag*; ``False`` if it changed."""
        ...

    def objects(
        self, prefix: str, *, start_after: str = "", limit: int = 0
    ) -> Iterator[ObjectInfo]:
        """The objects under folder *prefix* (recursively), in key order, after *start_after*
        (a key), at most *limit* (0: all); fetched page by page."""
        ...

    def folders(self, prefix: str) -> list[str]:
        """The names of the immediate sub-folders of folder *prefix*."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object (absent is fine)."""
        ...

    def upload(self, local: Path, key: str) -> None:
        """Copy a local file to *key*, replacing what is there (content-addressed keys only)."""
        ...

    def download(
        self, key: str, local: Path, on_bytes: Callable[[int], object] | None = None
    ) -> str:
        """Copy the object to the local file *local*, read once and hashed as it is written;
        returns the sha256 of the bytes written. *on_bytes* hears each piece's length."""
        ...

    def touch(self, key: str, local: Path | None = None) -> None:
        """Make the object's modification time now (gc's grace period starts again);
        *local* holds the same bytes, for stores that must write them again."""
        ...


def open_store(url: str, storage_options: Mapping[str, Any] | None = None) -> Store:
    """The store of the registry at *url* (a path or any fsspec URL)."""
    if "://" not in url or url.startswith("file://"):
        path = url[len("file://") :] if url.startswith("file://") else url
        return LocalStore(Path(path).expanduser().absolute())
    from hubcore import config
    from hubcore.errors import HubError
    from hubcore.sources.folder import FolderSource
    from hubcore.store.redaction import redact
    from hubcore.store.stores import open_store as open_filesystem

    shown = redact(url)  # messages never carry the URL's user info or query
    try:
        ref = FolderSource().parse(url, {"storage_options": dict(storage_options or {})})
    except HubError as exc:
        raise RegistryError(f"cannot open the registry at {shown}: {exc}") from None
    if ref is None:
        raise UnsupportedStorageError(
            f"cannot open the registry at {shown}: fsspec knows no filesystem for it"
        )
    opened = open_filesystem(config.rewrite_url(ref.repo), ref.options.get("storage_options"))
    fs, root = opened.fs, opened.path.rstrip("/")
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    if "file" in protocols or "local" in protocols:
        return LocalStore(Path(root))
    if "s3" in protocols and hasattr(fs, "call_s3"):
        return S3Store(opened, root, url=redact(ref.repo), identity=ref.location)
    raise UnsupportedStorageError(
        f"the registry cannot be kept on {type(fs).__name__} ({shown}): it offers no create-only "
        "write or compare-and-swap that hubcore knows. Use a local or network folder, or S3 "
        "(or a store with an S3-compatible endpoint that honours If-None-Match and If-Match)."
    )


class LocalStore:
    """A registry in a local or network folder (see the module docstring)."""

    def __init__(self, root: Path):
        self.root = root
        self.url = str(root)
        self.identity = root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    def _tmp(self) -> Path:
        folder = self.root / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def read(self, key: str) -> tuple[bytes, str]:
        """See :class:`Store`; the tag is the sha256 of the bytes."""
        data = self._path(key).read_bytes()
        return data, hashlib.sha256(data).hexdigest()

    def info(self, key: str) -> ObjectInfo | None:
        """See :class:`Store`."""
        try:
            st = self._path(key).stat()
        except FileNotFoundError:
            return None
        return ObjectInfo(key, st.st_size, st.st_mtime)

    @contextlib.contextmanager
    def _staged(self, data: bytes) -> Iterator[Path]:
        fd, name = tempfile.mkstemp(dir=self._tmp(), suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            yield Path(name)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)

    def create(self, key: str, data: bytes) -> bool:
        """See :class:`Store`: a complete temporary file, hard-linked to its name."""
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with self._staged(data) as staged:
            try:
                os.link(staged, target)
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                    raise UnsupportedStorageError(
                        f"the folder {self.root} does not support hard links, which the "
                        f"registry uses for create-only writes ({exc.strerror})"
                    ) from None
                raise
        return True

    def _lock(self, key: str) -> filelock.BaseFileLock:
        folder = self.root / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        return filelock.FileLock(str(folder / f"{digest}.lock"), timeout=60)

    def swap(self, key: str, data: bytes, tag: str) -> bool:
        """See :class:`Store`: read, compare and rename under the object's lock."""
        target = self._path(key)
        try:
            with self._lock(key):
                try:
                    _, current = self.read(key)
                except FileNotFoundError:
                    return False
                if current != tag:
                    return False
                with self._staged(data) as staged:
                    os.replace(staged, target)
                return True
        except filelock.Timeout:
            raise RegistryError(
                f"{target} stayed locked for 60 s; another process may hang while holding "
                f"{self.root / 'locks'}"
            ) from None

    def objects(
        self, prefix: str, *, start_after: str = "", limit: int = 0
    ) -> Iterator[ObjectInfo]:
        """See :class:`Store`."""
        base = self._path(prefix)
        found: list[ObjectInfo] = []
        for folder, _, files in os.walk(base):
            rel = Path(folder).relative_to(self.root).as_posix()
            for name in files:
                key = f"{rel}/{name}"
                if key <= start_after:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    st = os.stat(os.path.join(folder, name))
                    found.append(ObjectInfo(key, st.st_size, st.st_mtime))
        found.sort(key=lambda item: item.key)
        yield from found[:limit] if limit else found

    def folders(self, prefix: str) -> list[str]:
        """See :class:`Store`."""
        try:
            return sorted(e.name for e in os.scandir(self._path(prefix)) if e.is_dir())
        except FileNotFoundError:
            return []

    def delete(self, key: str) -> None:
        """See :class:`Store`."""
        self._path(key).unlink(missing_ok=True)

    def upload(self, local: Path, key: str) -> None:
        """See :class:`Store`: copied to a temporary file in the registry's ``tmp`` folder
        (where gc finds what a crash leaves), then renamed into place."""
        atomic_copy(local, self._path(key), temp_dir=self._tmp())

    def download(
        self, key: str, local: Path, on_bytes: Callable[[int], object] | None = None
    ) -> str:
        """See :class:`Store`."""
        try:
            source = open(self._path(key), "rb")  # noqa: SIM115 (closed below)
        except FileNotFoundError:
            raise DownloadError(f"{self._path(key)} is missing from the registry") from None
        with source, HashingWriter(local, on_bytes) as sink:
            while data := source.read(CHUNK):
                sink.write(data)
        return sink.hexdigest()

    def touch(self, key: str, local: Path | None = None) -> None:
        """See :class:`Store`."""
        with contextlib.suppress(FileNotFoundError):
            os.utime(self._path(key))


class S3Store:
    """A registry under ``s3://bucket/prefix`` (or an S3-compatible endpoint), via s3fs."""

    def __init__(self, opened: stores.Store, root: str, *, url: str, identity: str):
        self.opened = opened
        self.fs = opened.fs
        self.bucket, _, prefix = root.partition("/")
        self.prefix = prefix.strip("/")
        self.url = url
        self.identity = identity

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _folder(self, prefix: str) -> str:
        prefix = prefix.strip("/")
        return self._key(prefix) + "/" if prefix else (f"{self.prefix}/" if self.prefix else "")

    def _rel(self, full: str) -> str:
        return full[len(self.prefix) + 1 :] if self.prefix else full

    def _call(self, method: str, **kwargs: Any) -> Any:
        return self.fs.call_s3(method, Bucket=self.bucket, **kwargs)

    def read(self, key: str) -> tuple[bytes, str]:
        """See :class:`Store`; the tag is the object's ETag."""
        import fsspec.asyn

        async def get() -> tuple[bytes, str]:
            response = await self.fs._call_s3("get_object", Bucket=self.bucket, Key=self._key(key))
            body = response["Body"]
            try:
                data = await body.read()
            finally:
                body.close()
            return data, str(response["ETag"])

        result: tuple[bytes, str] = fsspec.asyn.sync(self.fs.loop, get)
        return result

    def info(self, key: str) -> ObjectInfo | None:
        """See :class:`Store` (one HEAD request)."""
        try:
            head = self._call("head_object", Key=self._key(key))
        except FileNotFoundError:
            return None
        return ObjectInfo(key, int(head["ContentLength"]), _seconds(head["LastModified"]))

    def _put(self, key: str, data: bytes, condition: dict[str, str]) -> bool:
        for attempt in range(20):
            try:
                self._call("put_object", Key=self._key(key), Body=data, **condition)
                return True
            except FileExistsError:
                return False
            except OSError as exc:
                status = _status(exc)
                if status == 412 or (status == 404 and "IfMatch" in condition):
                    return False
                if status != 409:  # 409: a concurrent conditional write; S3 says retry
                    raise
            time.sleep(min(0.05 * 2**attempt, 1.0))
        raise RegistryError(f"S3 kept answering 409 Conflict for {self.url}/{key}")

    def create(self, key: str, data: bytes) -> bool:
        """See :class:`Store`: ``PutObject`` with ``If-None-Match: *``."""
        return self._put(key, data, {"IfNoneMatch": "*"})

    def swap(self, key: str, data: bytes, tag: str) -> bool:
        """See :class:`Store`: ``PutObject`` with ``If-Match: <ETag>``."""
        return self._put(key, data, {"IfMatch": tag})

    def objects(
        self, prefix: str, *, start_after: str = "", limit: int = 0
    ) -> Iterator[ObjectInfo]:
        """See :class:`Store`: ``ListObjectsV2`` pages of up to 1,000 keys."""
        kwargs: dict[str, Any] = {"Prefix": self._folder(prefix)}
        if start_after:
            kwargs["StartAfter"] = self._key(start_after)
        count = 0
        while True:
            if limit:
                kwargs["MaxKeys"] = min(1000, limit - count)
            page = self._call("list_objects_v2", **kwargs)
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    self._rel(item["Key"]), int(item["Size"]), _seconds(item["LastModified"])
                )
                count += 1
                if limit and count >= limit:
                    return
            if not page.get("IsTruncated"):
                return
            kwargs["ContinuationToken"] = page["NextContinuationToken"]
            kwargs.pop("StartAfter", None)

    def folders(self, prefix: str) -> list[str]:
        """See :class:`Store`: ``ListObjectsV2`` with a delimiter."""
        base = self._folder(prefix)
        kwargs: dict[str, Any] = {"Prefix": base, "Delimiter": "/"}
        names: list[str] = []
        while True:
            page = self._call("list_objects_v2", **kwargs)
            names += [p["Prefix"][len(base) :].rstrip("/") for p in page.get("CommonPrefixes", [])]
            if not page.get("IsTruncated"):
                return sorted(names)
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def delete(self, key: str) -> None:
        """See :class:`Store`."""
        self._call("delete_object", Key=self._key(key))

    def _path(self, key: str) -> str:
        return f"{self.bucket}/{self._key(key)}"

    def upload(self, local: Path, key: str) -> None:
        """See :class:`Store`: s3fs's concurrent multipart upload, made again when the server
        failed it with HTTP 500 (:func:`hubcore.store.stores.put_file`)."""
        from hubcore.store import stores

        stores.put_file(self.fs, str(local), self._path(key))

    def download(
        self, key: str, local: Path, on_bytes: Callable[[int], object] | None = None
    ) -> str:
        """See :class:`Store`: one streamed ``GetObject`` (ranges from where a broken stream
        stopped), each piece within the stall budget (:func:`hubcore.store.stores.copy`)."""
        from hubcore.store import stores

        try:
            with HashingWriter(local, on_bytes) as sink:
                stores.copy(
                    self.opened,
                    self._path(key),
                    None,
                    sink.write,
                    f"reading {self.url}/{key}",
                    writelines=sink.writelines,
                )
        except FileNotFoundError:
            raise DownloadError(f"{self.url}/{key} is missing from the registry") from None
        return sink.hexdigest()

    def touch(self, key: str, local: Path | None = None) -> None:
        """See :class:`Store`: copied onto itself (metadata replaced), or uploaded again."""
        try:
            self._call(
                "copy_object",
                Key=self._key(key),
                CopySource={"Bucket": self.bucket, "Key": self._key(key)},
                MetadataDirective="REPLACE",
            )
        except OSError:
            if local is None:
                raise
            self.upload(local, key)  # objects over 5 GB cannot be copied in one request


class HashingWriter:
    """Writes pieces to a new local file and hashes them in the same pass (the hash runs on
    :class:`~hubcore.store.hashing.OverlappedHash`'s helper thread while the piece is
    written and the next one read), so a download costs one pass over its bytes and no read
    back."""

    def __init__(self, path: Path, on_bytes: Callable[[int], object] | None = None):
        self.path = path
        self.on_bytes = on_bytes
        self._hash = OverlappedHash()
        self._file: Any = None

    def __enter__(self) -> HashingWriter:
        self._file = open(self.path, "wb")
        return self

    def write(self, data: bytes) -> None:
        """Hash *data* (after the pieces before it) and write it."""
        self.writelines([data])

    def writelines(self, parts: list[bytes]) -> None:
        """Hash and write *parts* in order: one item for the hashing thread, no join."""
        self._hash.update(parts)
        count = 0
        for data in parts:
            view = memoryview(data)
            for start in range(0, len(view), WRITE):
                self._file.write(view[start : start + WRITE])
            count += len(data)
        if self.on_bytes is not None:
            self.on_bytes(count)

    def __exit__(self, *exc: object) -> None:
        try:
            self._hash.close()
        finally:
            self._file.close()

    def hexdigest(self) -> str:
        """The sha256 of everything written (once the writer is closed)."""
        return self._hash.hexdigest()


def _seconds(value: Any) -> float:
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    return float(value)


def _status(exc: BaseException) -> int | None:
    """The HTTP status of the S3 error behind an s3fs exception, if any."""
    cause = exc.__cause__ or exc.__context__
    response = getattr(cause, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if status else None
    return None
