"""Inputs of the catalog-site tests: template pages (Korean, Chinese, one with a missing
field) and records as the package and registry collectors produce them."""

from __future__ import annotations

import shutil
from pathlib import Path

from hubcore.site import (
    CatalogModel,
    FileRow,
    HistoryRow,
    LineageEdge,
    LineageGraph,
    LineageNode,
    SiteConfig,
    Snippet,
    VersionRow,
)

PAGES = Path(__file__).parent / "pages"
EXAMPLE_HUB = Path(__file__).resolve().parents[2] / "examples" / "hub"


class StaticCollector:
    """A collector that returns records it was given (stands in for the package and registry
    collectors, which produce the same record type)."""

    def __init__(self, name: str, records: list[CatalogModel]) -> None:
        self.name = name
        self.records = records

    def collect(self) -> list[CatalogModel]:
        return list(self.records)

    def watched(self) -> list[Path]:
        return []


def package_record() -> CatalogModel:
    """A saved model package as the package collector describes it."""
    return CatalogModel(
        key="package:file:///srv/packages/tinynet",
        title="tinynet-package",
        summary="TinyNet saved as a model package (config, safetensors, manifest, card).",
        origin="file:///srv/packages/tinynet",
        kind="package",
        tags=("vision",),
        framework="PyTorch",
        description="## Model card\n\nTrained on nothing; weights are random.",
        snippets=(
            Snippet(
                "hubcore",
                "import hubcore\n\nmodel = hubcore.from_pretrained('file:///srv/packages/tinynet')",
            ),
        ),
        files=(
            FileRow("config.json", 312, "a" * 64),
            FileRow("model.safetensors", 2048, "b" * 64),
            FileRow("README.md", 640, "c" * 64),
        ),
        badges=("verified files",),
        facts={"model type": "tinynet", "config": "num_classes=10"},
        page_name="tinynet-package",
    )


def registry_record() -> CatalogModel:
    """A registered model with versions, aliases, history and lineage."""
    return CatalogModel(
        key="registry:file:///srv/registry#Image Classifier",
        title="Image Classifier",
        summary="The team's production image classifier, linked from training checkpoints.",
        origin="file:///srv/registry",
        kind="registry",
        tags=("vision",),
        framework="PyTorch",
        snippets=(
            Snippet(
                "hubcore",
                "import hubcore\n\nmodel = hubcore.load('registry:Image Classifier:production')",
            ),
        ),
        versions=(
            VersionRow(
                "v1",
                "sha256:" + "1" * 64,
                "2026-03-02T10:00:00Z",
                "ana@ci",
                ("production", "latest"),
                metadata={"accuracy": "0.91"},
            ),
            VersionRow(
                "v0",
                "sha256:" + "0" * 64,
                "2026-03-01T09:00:00Z",
                "ana@ci",
                ("staging",),
                metadata={"accuracy": "0.87"},
            ),
        ),
        aliases={"production": "v1", "staging": "v0", "latest": "v1"},
        history=(
            HistoryRow("2026-03-01T09:00:00Z", "ana@ci", "link", "classifier:v3 -> v0"),
            HistoryRow("2026-03-02T10:00:00Z", "ana@ci", "link", "classifier:v7 -> v1"),
            HistoryRow("2026-03-02T10:05:00Z", "bo@laptop", "alias", "production: (none) -> v1"),
        ),
        lineage=LineageGraph(
            nodes=(
                LineageNode("data", "nature_100:v0", "artifact"),
                LineageNode("run1", "train run 1a2b", "run"),
                LineageNode("ckpt", "classifier:v7", "artifact"),
                LineageNode("model", "Image Classifier:v1", "model", current=True),
            ),
            edges=(
                LineageEdge("data", "run1"),
                LineageEdge("run1", "ckpt"),
                LineageEdge("ckpt", "model"),
            ),
        ),
        page_name="image-classifier",
    )


def site_inputs(tmp: Path) -> tuple[SiteConfig, list[StaticCollector]]:
    """A configuration over the example hub and a copy of the fixture pages, and the extra
    collectors for the package and the registry."""
    pages = tmp / "pages"
    shutil.copytree(PAGES, pages)
    config = SiteConfig(
        title="Test hub", repositories=(str(EXAMPLE_HUB),), pages=pages, output=tmp / "site"
    )
    extra = [
        StaticCollector("package", [package_record()]),
        StaticCollector("registry", [registry_record()]),
    ]
    return config, extra


def all_collectors(config: SiteConfig, extra: list[StaticCollector]) -> list[object]:
    """The configured collectors plus *extra*."""
    from hubcore.site import collectors_for

    return [*collectors_for(config), *extra]
