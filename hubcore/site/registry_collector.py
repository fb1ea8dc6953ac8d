"""The catalog's registry collector: one record per registered model of a registry (and,
when asked, per artifact), for ``[site] registries = ["s3://team-registry/registry"]``.

A record carries what the registry knows: the card's front matter (title, summary, author,
tags, GitHub and demo links, accelerator, order) and written text, the versions (newest
first, with aliases and metadata), the aliases, the history, the lineage of the headline
version (``production``, else ``latest``) and how to load it (``registry:NAME:ALIAS``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hubcore.registry import Registry
from hubcore.registry import open as open_registry
from hubcore.registry.cards import front_matter, headline, load_snippets, read_written
from hubcore.registry.core import REGISTERED_MODEL, Version
from hubcore.registry.history import change_text
from hubcore.site.model import (
    CatalogModel,
    FileRow,
    HistoryRow,
    LineageEdge,
    LineageGraph,
    LineageNode,
    Snippet,
    VersionRow,
)

__all__ = ["RegistryCollector", "registry_record"]

#: How many versions a page lists (the newest).
MAX_VERSIONS = 50


class RegistryCollector:
    """Records for the registered models (and, with *artifacts*, the artifacts) of the
    registry at *url*."""

    def __init__(self, url: str, *, artifacts: bool = False) -> None:
        self.url = url
        self.name = f"registry {url}"
        self.artifacts = artifacts

    def watched(self) -> list[Path]:
        """Nothing: a registry changes through its own writes, not files under watch (its
        folder's tmp/ and locks/ churn), so ``serve`` rebuilds it only when restarted."""
        return []

    def collect(self) -> list[CatalogModel]:
        """One record per registered model (per collection, with *artifacts*)."""
        reg = open_registry(self.url)
        records = []
        for name in reg.artifacts():
            if self.artifacts or reg.collection(name)["kind"] == REGISTERED_MODEL:
                records.append(registry_record(reg, name))
        return records


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _tags(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.strip("[]").split(",")
    return tuple(str(t).strip() for t in value or () if str(t).strip())


def registry_record(reg: Registry, name: str) -> CatalogModel:
    """The catalog record of collection *name* of *reg*."""
    collection = reg.collection(name)
    fields, body = front_matter(read_written(reg, name))
    aliases = reg.aliases(name)
    versions = reg.versions(name, limit=0)
    by_number: dict[int, list[str]] = {}
    for alias, number in aliases.items():
        by_number.setdefault(number, []).append(alias)
    shown = headline(reg, name, aliases)
    description = _text(collection.get("description"))
    rows = tuple(
        VersionRow(
            name=f"v{v.number}",
            digest=f"sha256:{v.digest}",
            created=v.created,
            creator=v.creator,
            aliases=tuple(sorted(by_number.get(v.number, []))),
            description=(f"{v.link[0]}:v{v.link[1]}" if v.link else v.description),
            metadata={k: _text(val) for k, val in v.metadata.items()},
        )
        for v in sorted(versions, key=lambda v: -v.number)[:MAX_VERSIONS]
    )
    history = tuple(
        HistoryRow(e["when"], e["who"], e["kind"], change_text(e)) for e in reg.history(name)
    )
    links = {}
    if _text(fields.get("github-link")):
        links["GitHub"] = _text(fields.get("github-link"))
    if _text(fields.get("demo-model-link")):
        links["Demo"] = _text(fields.get("demo-model-link"))
    order = fields.get("order")
    facts = {
        "registry": reg.store.url,
        "kind": str(collection["kind"]),
        "type": _text(collection.get("type")),
    }
    if shown is not None and shown.link is not None:
        facts["links to"] = f"{shown.link[0]}:v{shown.link[1]}"
    snippets: tuple[Snippet, ...] = ()
    files: tuple[FileRow, ...] = ()
    lineage = None
    framework = ""
    if shown is not None:
        snippets, framework = _snippets(reg, name, shown, aliases)
        files = tuple(FileRow(f.path, f.size, f.sha256) for f in shown.files)
        lineage = _lineage(reg, shown)
    return CatalogModel(
        key=f"registry:{reg.store.identity}#{name}",
        title=_text(fields.get("title")) or name,
        summary=_text(fields.get("summary")) or (description.splitlines() or [""])[0],
        origin=reg.store.url,
        kind="registry",
        tags=_tags(fields.get("tags")) or tuple(collection.get("tags") or ()),
        framework=framework,
        author=_text(fields.get("author")) or _text(collection.get("creator")),
        description=body.strip() or description,
        snippets=snippets,
        files=files,
        links=links,
        versions=rows,
        aliases={a: f"v{n}" for a, n in aliases.items()},
        history=history,
        lineage=lineage,
        order=int(order) if isinstance(order, int) else None,
        accelerator=_text(fields.get("accelerator")),
        demo_link=_text(fields.get("demo-model-link")),
        facts=facts,
        page_name=name.replace("/", "-"),
    )


def _snippets(
    reg: Registry, name: str, version: Version, aliases: dict[str, int]
) -> tuple[tuple[Snippet, ...], str]:
    found, framework = load_snippets(reg, name, version, aliases)
    names = {"torch": "PyTorch", "megengine": "MegEngine"}
    return tuple(Snippet(label, code) for label, code in found), names.get(framework, "")


def _lineage(reg: Registry, version: Version) -> LineageGraph | None:
    graph = reg.lineage(f"{version.name}:v{version.number}", depth=2)
    if len(graph.nodes) <= 1:
        return None
    nodes = tuple(
        LineageNode(
            n.id,
            f"{n.data.get('job_type')} run" if n.kind == "run" else n.label,
            n.kind,
            current=n.id == graph.root,
        )
        for n in graph.nodes
    )
    return LineageGraph(nodes, tuple(LineageEdge(e.source, e.target) for e in graph.edges))
