"""``hubcore.push``: upload a package folder to any fsspec destination.

Files first, the manifest last, so a reader of an unfinished push finds no manifest (an
:class:`~hubcore.packages.errors.IncompletePackageError`), never a wrong model. A manifest
already at the destination is removed before the first file changes. Resumable: a hidden
journal at the destination (``.hubcore-push.json``) records the sha256 of each file once it
is completely uploaded, and a rerun skips every file whose size and recorded sha256 (or
the previous manifest's) match the local one; the journal goes when the manifest is written.
Files an earlier push recorded (in its manifest or journal) that the new package does not
have are removed before the manifest is written; other files of the folder are left alone.
Files go up in parallel; a big file goes up in parallel parts where the filesystem does
multipart uploads (s3fs: ``max_concurrency``).

A plain destination is last-writer-wins: two pushes to one folder at once can interleave.
Versioned, concurrent-safe publishing is the registry's job.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from hubcore import config
from hubcore.errors import DownloadError
from hubcore.packages.manifest import (
    MANIFEST,
    digest_of,
    found_files,
    is_member_name,
    read_manifest,
    verify_files,
)
from hubcore.store import stores
from hubcore.store.cache import get_cache
from hubcore.store.redaction import redact

__all__ = ["JOURNAL", "push"]

JOURNAL = ".hubcore-push.json"
#: Uploads running at once: files in parallel, and parts of one big file.
WORKERS = 8


def push(
    folder: str | os.PathLike[str],
    destination: str,
    *,
    storage_options: Mapping[str, Any] | None = None,
    progress: bool | None = None,
    workers: int = WORKERS,
) -> str:
    """Upload the package in *folder* to *destination* (``s3://bucket/models/tiny``,
    ``file:///srv/models/tiny``, any fsspec URL) and return its pin,
    ``"sha256:<manifest digest>"``, for ``from_pretrained(..., revision=...)``.

    The local package is verified against its manifest first. See the module docstring for
    the order, resuming and what a plain destination does not guarantee.
    """
    root = Path(folder)
    label = str(root)
    manifest = read_manifest(root, label, remote=False)
    verify_files(root, manifest, label, get_cache(), extra=found_files(root), remote=False)
    store = stores.open_store(config.rewrite_url(destination), storage_options)
    fs, base = store.fs, store.path.rstrip("/")
    where = redact(destination)
    try:
        fs.makedirs(base, exist_ok=True)
        remote = _remote_sizes(fs, base)
        known = _recorded(fs, base, remote)
        if MANIFEST in remote:  # readers see an incomplete package, not a mix
            with contextlib.suppress(FileNotFoundError):  # another push removed it
                fs.rm_file(f"{base}/{MANIFEST}")
        todo = [
            name
            for name, (sha, size) in manifest.items()
            if not (remote.get(name) == size and known.get(name) == sha)
        ]
        _upload(fs, root, base, todo, manifest, known, progress, workers)
        # Files an earlier push of another version wrote (its manifest or journal lists
        # them) would otherwise stay: a loader copies the whole folder, and stale code is
        # refused as foreign. Files no push recorded are left alone.
        for name in sorted(set(known) - set(manifest)):
            if name in remote and is_member_name(name):
                fs.rm_file(f"{base}/{name}")
        fs.pipe_file(f"{base}/{MANIFEST}", (root / MANIFEST).read_bytes())
        if JOURNAL in remote or todo:
            try:
                fs.rm_file(f"{base}/{JOURNAL}")
            except FileNotFoundError:
                pass
    except OSError as exc:
        raise DownloadError(
            redact(f"pushing {label} to {where} failed: {exc}; run the push again to resume")
        ) from exc
    return f"sha256:{digest_of(root)}"


def _remote_sizes(fs: Any, base: str) -> dict[str, int]:
    try:
        found = fs.find(base, detail=True)
    except FileNotFoundError:
        return {}
    sizes = {}
    for path, info in found.items():
        if info.get("type") != "directory" and info.get("size") is not None:
            sizes[str(path)[len(base) :].lstrip("/")] = int(info["size"])
    return sizes


def _recorded(fs: Any, base: str, remote: Mapping[str, int]) -> dict[str, str]:
    """What the destination records of its files' sha256: the journal of an unfinished
    push, over the manifest of the last finished one."""
    known: dict[str, str] = {}
    for name in (MANIFEST, JOURNAL):
        if name not in remote:
            continue
        try:
            data = json.loads(fs.cat_file(f"{base}/{name}"))
            files = data.get("files", {})
            known.update({k: v["sha256"] for k, v in files.items() if isinstance(v, dict)})
        except (OSError, ValueError, AttributeError, TypeError, KeyError):
            continue
    return known


def _upload(
    fs: Any,
    root: Path,
    base: str,
    names: list[str],
    manifest: Mapping[str, tuple[str, int]],
    known: dict[str, str],
    progress: bool | None,
    workers: int,
) -> None:
    from fsspec.callbacks import Callback
    from tqdm.auto import tqdm

    total = sum(manifest[n][1] for n in names)
    bar = tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        desc=f"push {root.name}",
        disable=not config.progress_enabled(progress) or not names,
    )
    lock = threading.Lock()
    journal_lock = threading.Lock()
    journal = {k: {"sha256": v} for k, v in known.items() if k in manifest}

    class _Progress(Callback):  # type: ignore[misc]
        def relative_update(self, inc: int = 1) -> None:
            with lock:
                bar.update(inc)

        def call(self, *args: Any, **kwargs: Any) -> None:
            pass

    parts = _multipart_options(fs, workers)

    def one(name: str) -> None:
        target = f"{base}/{name}"
        if "/" in name:
            fs.makedirs(target.rpartition("/")[0], exist_ok=True)
        stores.put_file(fs, str(root / name), target, callback=_Progress(), **parts)
        # One journal write at a time: parallel writes could land out of order, and an
        # older journal would forget a file that is already up.
        with journal_lock:
            journal[name] = {"sha256": manifest[name][0]}
            fs.pipe_file(f"{base}/{JOURNAL}", json.dumps({"files": journal}).encode())

    try:
        big_first = sorted(names, key=lambda n: -manifest[n][1])
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(names) or 1))) as pool:
            for future in [pool.submit(one, n) for n in big_first]:
                future.result()
    finally:
        bar.close()


def _multipart_options(fs: Any, workers: int) -> dict[str, Any]:
    """``max_concurrency`` for filesystems whose uploads take it (s3fs's multipart)."""
    method = getattr(fs, "_put_file", None) or getattr(fs, "put_file", None)
    try:
        params = inspect.signature(method).parameters if method else {}
    except (TypeError, ValueError):
        return {}
    return {"max_concurrency": workers} if "max_concurrency" in params else {}
