"""Inputs of the catalog-site tests: the example hub, a saved model package, a registry with a
registered model, and template pages (Korean, Chinese, one with a missing field)."""

from __future__ import annotations

import shutil
from pathlib import Path

from hubcore.site import CatalogModel, SiteConfig

PAGES = Path(__file__).parent / "pages"
EXAMPLE_HUB = Path(__file__).resolve().parents[2] / "examples" / "hub"


class StaticCollector:
    """A collector that returns records it was given (records a plugin's collector could
    produce, hostile ones included)."""

    def __init__(self, name: str, records: list[CatalogModel]) -> None:
        self.name = name
        self.records = records

    def collect(self) -> list[CatalogModel]:
        return list(self.records)

    def watched(self) -> list[Path]:
        return []


#: A model module outside any installed distribution: a package of it ships its code.
MODEL = """
import hubcore
from hubcore_numpy_example import NumpyModel


@hubcore.model_config("catalog-tiny")
class TinyConfig:
    features: int = 3


class Tiny(NumpyModel):
    def __init__(self, config):
        super().__init__({"weight": (config.features, 4), "bias": (config.features,)})
"""

PACKAGE_CARD = {
    "title": "tinynet-package",
    "summary": "TinyNet saved as a model package (config, safetensors, manifest, card).",
    "tags": ["vision"],
    "author": "Acme",
}

REGISTRY_CARD = """---
title: Image Classifier
summary: The team's production image classifier, linked from training checkpoints.
tags: [vision]
author: Vision team
---
Linked from the training runs' checkpoints.
"""


def save_package(tmp: Path) -> Path:
    """A model package saved with the numpy example backend (its code shipped)."""
    import importlib
    import sys

    import hubcore

    src = tmp / "package-src"
    src.mkdir()
    (src / "catalog_tiny.py").write_text(MODEL)
    sys.path.insert(0, str(src))
    try:
        module = importlib.import_module("catalog_tiny")
        config = module.TinyConfig()
        return hubcore.save_pretrained(
            module.Tiny(config), tmp / "package", config=config, model_card=PACKAGE_CARD
        )
    finally:
        sys.path.remove(str(src))
        sys.modules.pop("catalog_tiny", None)


def populate_registry(url: str, tmp: Path) -> None:
    """A registry with a dataset, two checkpoints from a run that used it, and the registered
    model "Image Classifier" (v0 staging, v1 production) with its card."""
    import hubcore.registry as registry

    def folder(name: str, files: dict[str, str]) -> Path:
        root = tmp / name
        root.mkdir()
        for rel, text in files.items():
            (root / rel).write_text(text)
        return root

    reg = registry.open(url)
    with reg.run(job_type="upload") as upload:
        upload.log("nature_100", folder("data", {"d.txt": "data"}), type="dataset")
    with reg.run(job_type="train") as train:
        train.use("nature_100:latest")
        for i in range(2):
            hubconf = "import torch\n\n\ndef classifier():\n    return None\n"
            checkpoint = folder(f"ck{i}", {"hubconf.py": hubconf, "w.bin": f"w{i}"})
            train.log("classifier", checkpoint, metadata={"accuracy": 0.87 + i * 0.04})
    reg.link("classifier:v0", "Image Classifier", aliases=["staging"])
    reg.link("classifier:v1", "Image Classifier", aliases=["production"])
    reg.set_card("Image Classifier", REGISTRY_CARD)


def site_inputs(tmp: Path) -> tuple[SiteConfig, list[object]]:
    """A configuration over the example hub, a saved model package, a registry with a
    registered model and a copy of the fixture pages: every kind of input, each read by its
    real collector."""
    pages = tmp / "pages"
    shutil.copytree(PAGES, pages)
    registry_url = str(tmp / "registry")
    populate_registry(registry_url, tmp)
    config = SiteConfig(
        title="Test hub",
        repositories=(str(EXAMPLE_HUB),),
        packages=(str(save_package(tmp)),),
        registries=(registry_url,),
        pages=pages,
        output=tmp / "site",
    )
    return config, []


def all_collectors(config: SiteConfig, extra: list[object]) -> list[object]:
    """The configured collectors plus *extra*."""
    from hubcore.site import collectors_for

    return [*collectors_for(config), *extra]
