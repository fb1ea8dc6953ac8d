"""The catalog's package collector: a saved model package becomes a page, read from its files."""

from __future__ import annotations

from pathlib import Path

import pytest

import hubcore
from hubcore.site import SiteBuilder, SiteConfig

from .test_packages import tiny, trained  # noqa: F401  (tiny is a fixture)


def test_a_package_gets_a_page_from_its_card_manifest_and_config(
    hub_home,
    tiny,  # noqa: F811
    tmp_path: Path,
) -> None:
    pytest.importorskip("jinja2")
    tiny_models, marker = tiny
    folder = hubcore.save_pretrained(
        trained(tiny_models),
        tmp_path / "pkg",
        config=tiny_models.TinyConfig(),
        model_card={
            "title": "Tiny classifier",
            "summary": "Three outputs from four inputs.",
            "tags": ["vision"],
            "author": "Acme",
        },
    )
    marker.unlink(missing_ok=True)
    config = SiteConfig(packages=(str(folder),), output=tmp_path / "site", title="Packages")
    report = SiteBuilder(config).build()
    assert report.problems == []
    index = (report.output / "index.html").read_text(encoding="utf-8")
    assert ">Tiny classifier</a></h2>" in index
    assert 'data-framework="numpy-example"' in index
    page = report.output / "models" / "tiny-classifier.html"
    html = page.read_text(encoding="utf-8")
    manifest = hubcore.packages.manifest.read_manifest(folder, "pkg")
    sha, _ = manifest["model.safetensors"]
    assert sha in html  # the files table, from the manifest
    digest = hubcore.packages.manifest.digest_of(folder)
    assert f"sha256:{digest}" in html  # the pinned load snippet and the digest fact
    assert "tiny-numpy" in html  # the model type
    assert "Acme" in html
    assert not marker.exists()  # describing a package runs none of its code


def test_a_tampered_package_gets_no_verified_page(
    hub_home,
    tiny,  # noqa: F811
    tmp_path: Path,
) -> None:
    pytest.importorskip("jinja2")
    tiny_models, _ = tiny
    folder = hubcore.save_pretrained(
        trained(tiny_models),
        tmp_path / "pkg",
        config=tiny_models.TinyConfig(),
        model_card={"title": "Tiny classifier"},
    )
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes
    weights.write_bytes(bytes(data))
    config = SiteConfig(packages=(str(folder),), output=tmp_path / "site", title="Packages")
    report = SiteBuilder(config).build()
    assert any("model.safetensors" in problem for problem in report.problems), report.problems
    index = (report.output / "index.html").read_text(encoding="utf-8")
    assert "Tiny classifier" not in index
