"""The catalog's registry collector: ``[site] registries = [...]`` builds a page per registered
model of a real registry (folder and moto S3), from its card, versions, aliases, history and
lineage."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import hubcore.registry as registry
from hubcore.cli import main

from .test_registry import make_files
from .test_registry import reg_url as reg_url

pytest.importorskip("jinja2")

CARD = """---
title: Image Classifier
summary: Tells cats from dogs.
author: Vision team
tags: [vision]
github-link: https://github.com/acme/classifier
order: 3
---
A small network trained on **nature_100**.
"""


def populate(reg: registry.Registry, tmp_path: Path) -> None:
    with reg.run(job_type="upload") as upload:
        upload.log("nature_100", make_files(tmp_path / "data", {"d.txt": "data"}), type="dataset")
    with reg.run(job_type="train") as train:
        train.use("nature_100:latest")
        for i in range(2):
            folder = make_files(
                tmp_path / f"ck{i}",
                {"hubconf.py": "import torch\n\ndef classifier():\n    return None\n"}
                | {"w.bin": f"w{i}"},
            )
            train.log("classifier", folder, metadata={"accuracy": 0.8 + i / 10}, type="code")
    reg.link("classifier:v0", "Image Classifier", aliases=["staging"])
    reg.link("classifier:v1", "Image Classifier", aliases=["staging"])
    reg.alias("Image Classifier:staging", "production")
    reg.set_card("Image Classifier", CARD)


def test_site_build_makes_pages_for_registered_models(
    reg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reg = registry.open(reg_url)
    populate(reg, tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    (project / "hubcore.toml").write_text(
        f'[site]\ntitle = "Team hub"\nregistries = ["{reg_url}"]\noutput = "_site"\n'
    )
    monkeypatch.chdir(project)
    result = CliRunner().invoke(main, ["site", "build"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    site = project / "_site"
    pages = sorted(p.name for p in (site / "models").iterdir())
    assert pages == ["image-classifier.html"]  # registered models only, not artifacts
    index = (site / "index.html").read_text(encoding="utf-8")
    assert ">Image Classifier</a></h2>" in index
    assert "Tells cats from dogs." in index
    assert "production &rarr; v1" in index
    page = (site / "models" / "image-classifier.html").read_text(encoding="utf-8")
    assert "A small network trained on <strong>nature_100</strong>." in page
    assert re.search(r'<th scope="row">v1</th><td>[^<]*production[^<]*</td>', page)
    assert "<dt>production</dt><dd>v1</dd>" in page
    assert "alias production: - -&gt; v1" in page  # the history
    assert "link v1 -&gt; classifier:v1" in page
    svg = re.search(r"<svg .*?</svg>", page, re.S)
    assert svg is not None
    assert "nature_100:v0" in svg.group(0)
    assert 'class="lineage-node lineage-model current"' in svg.group(0)
    assert "registry:Image Classifier:production" in page
    assert "torch.hub" in page  # the version is a hub repository that imports torch
    assert "https://github.com/acme/classifier" in page
    assert "Vision team" in page


def test_the_collector_lists_artifacts_when_asked(
    reg_url: str,
    tmp_path: Path,
) -> None:
    from hubcore.site.registry_collector import RegistryCollector

    reg = registry.open(reg_url)
    populate(reg, tmp_path)
    records = {r.title: r for r in RegistryCollector(reg_url, artifacts=True).collect()}
    assert sorted(records) == ["Image Classifier", "classifier", "nature_100"]
    assert records["Image Classifier"].order == 3
    assert records["Image Classifier"].tags == ("vision",)
    assert records["classifier"].versions[0].metadata == {"accuracy": "0.9"}
    assert [v.name for v in records["Image Classifier"].versions] == ["v1", "v0"]
