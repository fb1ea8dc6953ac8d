"""Catalog records of model packages: one page per package, read from its files alone.

A package's ``config.json`` gives the model type and how it is built, its manifest the files
(size and sha256) and its digest, and its model card (``README.md``, front matter + Markdown)
the title, summary, tags, author and description. Nothing in the package runs.
"""

from __future__ import annotations

import json
from pathlib import Path

from hubcore import api
from hubcore.packages.config import read_config_json
from hubcore.packages.load import card_text
from hubcore.packages.manifest import found_files, read_manifest_digest, verify_files
from hubcore.packages.save import CARD_NAME
from hubcore.site.collectors import FRAMEWORKS, local_folder
from hubcore.site.model import CatalogModel, FileRow, Snippet
from hubcore.site.pages import PageError, TemplatePage, parse_page
from hubcore.store.cache import get_cache

__all__ = ["PackageCollector"]


class PackageCollector:
    """One record for the model package at *reference* (a folder, or any source's URL)."""

    def __init__(self, reference: str) -> None:
        self.reference = reference
        self.name = reference

    def watched(self) -> list[Path]:
        """The package folder, when it is a local folder."""
        return local_folder(self.reference)

    def collect(self) -> list[CatalogModel]:
        """Open the package (no code runs) and describe it."""
        snapshot = api.open_repo(self.reference)
        ref, root = snapshot.ref, snapshot.root
        label = ref.text or ref.identity
        remote = snapshot.snapshot_id is not None  # fetched: no links out of it
        data = read_config_json(root, label, remote=remote)
        section = data.get("hubcore", {})
        manifest, digest = read_manifest_digest(root, label, remote=remote)
        # the page says "verified files": check them as a load would (cheap when unchanged)
        verify_files(root, manifest, label, get_cache(), extra=found_files(root), remote=remote)
        card = _card(root, label, remote)
        model_type = str(data.get("model_type", ""))
        meta = card.meta if card else {}
        title = card.text("title") if card else ""
        tags = card.tags if card else ()
        config = {k: v for k, v in data.items() if k not in ("model_type", "hubcore")}
        pin = f"sha256:{digest}" if ref.source in ("local", "fsspec") else ref.revision
        load = f"hubcore.load({label!r}" + (f", revision={pin!r})" if pin else ")")
        return [
            CatalogModel(
                key=f"package:{ref.identity}",
                title=title or model_type or label,
                summary=card.text("summary") if card else "",
                origin=label,
                kind="package",
                tags=tuple(tags),
                framework=FRAMEWORKS.get(
                    str(section.get("framework", "")), str(section.get("framework", ""))
                ),
                author=str(meta.get("author") or ""),
                description=card.body.strip() if card else "",
                snippets=(Snippet("hubcore", f"import hubcore\n\nmodel = {load}"),),
                files=tuple(
                    FileRow(name, size, sha) for name, (sha, size) in sorted(manifest.items())
                ),
                badges=("verified files",),
                facts={
                    "model type": model_type,
                    "built by": str(section.get("build", "")),
                    "digest": f"sha256:{digest}",
                    "config": json.dumps(config, sort_keys=True),
                },
                page_name=title or model_type or label,
            )
        ]


def _card(root: Path, label: str, remote: bool) -> TemplatePage | None:
    text = card_text(root, label, remote)
    if not text.startswith("---"):
        return None
    try:
        return parse_page(text, root / CARD_NAME)
    except PageError:
        return None
