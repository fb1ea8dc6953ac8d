"""The one record the catalog renders, :class:`CatalogModel`, and the parts it is made of.

Every input (hub repositories, hand-written pages, model packages, the registry) is turned into
these records by a *collector* (:mod:`hubcore.site.collectors`); the templates read nothing
else. Optional parts (versions, aliases, history, lineage) are empty for inputs that have none.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

import attrs

__all__ = [
    "CatalogModel",
    "EntrypointRow",
    "FileRow",
    "HistoryRow",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "Snippet",
    "VersionRow",
    "WeightRow",
    "slugify",
]


def slugify(text: str) -> str:
    """A file-name-safe slug of *text*: letters, digits and dashes (non-Latin letters kept)."""
    normalized = unicodedata.normalize("NFKC", text).lower()
    slug = re.sub(r"[^\w]+", "-", normalized, flags=re.UNICODE).strip("-_")
    return slug[:80] or "model"


@attrs.frozen
class Snippet:
    """A copyable code block: ``label`` names the API (``hubcore``, ``torch.hub``)."""

    label: str
    code: str
    language: str = "python"


@attrs.frozen
class WeightRow:
    """One weight variant of an entrypoint."""

    name: str
    url: str
    sha256: str | None = None
    size: int | None = None
    default: bool = False


@attrs.frozen
class EntrypointRow:
    """One row of a model page's entrypoint table."""

    name: str
    signature: str = ""
    doc: str = ""
    weights: tuple[WeightRow, ...] = ()
    #: "declared, not literal" and similar notes about what could not be read statically.
    note: str = ""


@attrs.frozen
class FileRow:
    """A file of a package or registry version."""

    path: str
    size: int | None = None
    sha256: str | None = None


@attrs.frozen
class VersionRow:
    """One version of a registry artifact or registered model (newest first on the page)."""

    name: str  # "v3"
    digest: str = ""  # "sha256:..."
    created: str = ""  # ISO 8601 text, shown as written
    creator: str = ""
    aliases: tuple[str, ...] = ()
    description: str = ""
    metadata: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class HistoryRow:
    """One entry of a model's hand-off history."""

    when: str
    actor: str
    action: str  # "log", "alias", "link", ...
    detail: str = ""


@attrs.frozen
class LineageNode:
    """A node of a lineage graph: an artifact version, a run or a registered model."""

    id: str
    label: str
    kind: str = "artifact"  # "artifact" | "run" | "model"
    #: The node this page is about is drawn highlighted.
    current: bool = False


@attrs.frozen
class LineageEdge:
    """An edge ``source -> target`` (a run used an artifact; a run produced one)."""

    source: str
    target: str


@attrs.frozen
class LineageGraph:
    """A small directed acyclic graph, drawn as SVG at build time."""

    nodes: tuple[LineageNode, ...]
    edges: tuple[LineageEdge, ...] = ()


@attrs.frozen
class CatalogModel:
    """Everything a card and a detail page show about one model.

    ``key`` identifies the record across rebuilds and names its page (``models/<slug>.html``);
    ``origin`` says which input produced it (a page file, a repository reference, ...), and
    ``covers`` the ``(repository identity, entrypoint)`` pairs it documents, so that a
    hand-written page replaces the generated page of the entrypoints it describes.
    """

    key: str
    title: str
    summary: str = ""
    origin: str = ""
    kind: str = "hubconf"  # "hubconf" | "page" | "package" | "registry"
    tags: tuple[str, ...] = ()
    framework: str = ""  # "PyTorch", "MegEngine", ... ; "" when none is needed
    author: str = ""
    #: Path of the card image relative to the site root ("images/x.png"), or "" for the default.
    image: str = ""
    image_alt: str = ""
    featured_images: tuple[str, ...] = ()
    #: The description in CommonMark (rendered by the site).
    description: str = ""
    #: Markdown shown after the description and shared by many records (a repository's
    #: README on each of its entrypoints' pages): rendered once per build, not per page.
    about: str = ""
    snippets: tuple[Snippet, ...] = ()
    entrypoints: tuple[EntrypointRow, ...] = ()
    dependencies: tuple[str, ...] = ()
    files: tuple[FileRow, ...] = ()
    links: Mapping[str, str] = attrs.field(factory=dict)  # "GitHub" -> URL
    #: Short facts for the card ("pinned weights", "production -> v3").
    badges: tuple[str, ...] = ()
    versions: tuple[VersionRow, ...] = ()
    aliases: Mapping[str, str] = attrs.field(factory=dict)  # alias -> version name
    history: tuple[HistoryRow, ...] = ()
    lineage: LineageGraph | None = None
    covers: tuple[tuple[str, str], ...] = ()
    order: int | None = None
    accelerator: str = ""
    demo_link: str = ""
    #: Extra facts shown as a definition list (config of a package, model type, ...).
    facts: Mapping[str, str] = attrs.field(factory=dict)
    #: Preferred page name (made unique by the build); the key's slug when empty.
    page_name: str = ""

    @property
    def slug(self) -> str:
        """The file name of the model's page, without ``.html``."""
        return slugify(self.page_name or self.key)
