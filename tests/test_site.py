"""The catalog site: build, merge, check, scaffold, config, incremental rebuild and serve."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from hubcore.cli import main
from hubcore.errors import ConfigError
from hubcore.site import (
    CatalogModel,
    EntrypointRow,
    LineageEdge,
    LineageGraph,
    LineageNode,
    SiteBuilder,
    SiteConfig,
    load_site_config,
    merge_records,
)
from hubcore.site.check import check_pages
from hubcore.site.lineage import lineage_svg
from hubcore.site.render import markdown_html
from hubcore.site.serve import SiteServer

from .site_fixtures import EXAMPLE_HUB, PAGES, all_collectors, site_inputs


def _build(tmp_path: Path) -> tuple[SiteBuilder, Path]:
    config, extra = site_inputs(tmp_path)
    builder = SiteBuilder(config, collectors=all_collectors(config, extra))  # type: ignore[arg-type]
    report = builder.build()
    assert report.problems == []
    return builder, report.output


def test_build_lists_every_input(tmp_path: Path) -> None:
    _, site = _build(tmp_path)
    index = (site / "index.html").read_text(encoding="utf-8")
    # four entrypoints of the example hub, three pages, one package, one registered model
    assert index.count('<li class="card"') == 9
    for title in (
        "tinynet",
        "mlp",
        "mge_tinynet",
        "tokenizer",
        "TinyNet 분류기",
        "空格分词器",
        "Broken page",
        "tinynet-package",
        "Image Classifier",
    ):
        assert f">{title}</a></h2>" in index
    assert 'data-framework="MegEngine"' in index
    assert 'data-framework="PyTorch"' in index
    assert "production &rarr; v1" in index  # registry alias badge on the card
    assert "pinned weights" in index
    pages = sorted(p.name for p in (site / "models").iterdir())
    assert "acme_hub_tinynet.html" in pages
    assert "image-classifier.html" in pages
    assert (site / "images" / "tinynet.png").is_file()
    assert (site / "static" / "site.css").is_file()
    assert (site / "static" / "pygments.css").is_file()


def test_detail_page_of_an_entrypoint(tmp_path: Path) -> None:
    _, site = _build(tmp_path)
    page = (site / "models" / "examples-hub-tinynet.html").read_text(encoding="utf-8")
    assert 'hubcore</span><span class="o">.</span><span class="n">load' in page
    assert "torch.hub" in page  # a local PyTorch entrypoint also gets the torch.hub snippet
    assert "<code>tinynet(num_classes: int=10)</code>" in page
    assert "755edc7016a0343fb201e50eb6c6d79b99570fce4c1c7dfd11a9c18f98f0c389" in page
    size = (EXAMPLE_HUB / "weights" / "tinynet-c10.safetensors").stat().st_size
    assert f"{size / 1024:.1f} KiB" in page
    assert "<code>numpy</code>" in page  # dependencies
    assert 'href="../static/site.css"' in page
    assert 'href="../index.html"' in page


def test_korean_and_chinese_pages_build_unchanged(tmp_path: Path) -> None:
    _, site = _build(tmp_path)
    ko = (site / "models" / "acme_hub_tinynet.html").read_text(encoding="utf-8")
    assert '<h1 id="model-title">TinyNet 분류기</h1>' in ko
    assert "<h3>모델 설명</h3>" in ko
    assert '<img src="../images/tinynet-layers.png" alt="계층 구조"' in ko
    assert "<td><code>c100</code></td>" in ko  # the table extension
    zh = (site / "models" / "acme_hub_tokenizer.html").read_text(encoding="utf-8")
    assert "一个按空格切分文本的分词器" in zh
    assert "<h3>模型描述</h3>" in zh


def test_registry_page_shows_versions_aliases_history_and_lineage(tmp_path: Path) -> None:
    _, site = _build(tmp_path)
    page = (site / "models" / "image-classifier.html").read_text(encoding="utf-8")
    assert re.search(r"<th scope=\"row\">v1</th><td>latest, production</td>", page)
    assert "<dt>staging</dt><dd>v0</dd>" in page
    assert "alias production: - -&gt; v1" in page
    svg = re.search(r"<svg .*?</svg>", page, re.S)
    assert svg is not None
    # the dataset, the run that logged it, the run that used it, its checkpoint, this model
    assert svg.group(0).count('<g class="lineage-node') == 5
    assert 'class="lineage-node lineage-model current"' in svg.group(0)
    package = (site / "models" / "tinynet-package.html").read_text(encoding="utf-8")
    assert "<code>model.safetensors</code>" in package
    assert "<dt>Model type</dt>" in package


def test_built_pages_link_only_inside_the_site(tmp_path: Path) -> None:
    _, site = _build(tmp_path)
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        for url in re.findall(r'(?:src|href)="([^"]+)"', html):
            if url.startswith(("https://", "http://")):
                assert 'href="' + url + '"' in html, f"{page.name} loads {url}"
                continue
            if url.startswith("#"):
                continue
            target = (page.parent / url.split("#")[0]).resolve()
            assert target.is_file(), f"{page.name}: broken link {url}"
            assert target.is_relative_to(site.resolve())


def test_external_images_become_links() -> None:
    html = markdown_html(
        '![chart](https://example.org/chart.png)\n\n<img src="https://example.org/x.png">\n'
    )
    assert '<a class="external-image" href="https://example.org/chart.png"' in html
    assert ">chart</a>" in html
    assert "<img" not in html  # a raw HTML image from elsewhere becomes a link as well
    assert '<a class="external-image" href="https://example.org/x.png"' in html


def test_page_replaces_generated_records_of_its_entrypoints() -> None:
    generated = CatalogModel(
        key="local:/hub#tinynet",
        title="tinynet",
        kind="hubconf",
        framework="PyTorch",
        entrypoints=(EntrypointRow("tinynet", "(n=1)"),),
        dependencies=("numpy",),
        covers=(("local:/hub", "tinynet"),),
    )
    other = CatalogModel(key="local:/hub#mlp", title="mlp", covers=(("local:/hub", "mlp"),))
    page = CatalogModel(
        key="page:a.md", title="TinyNet", kind="page", covers=(("local:/hub", "tinynet"),)
    )
    merged = merge_records([generated, other, page])
    assert [m.title for m in merged] == ["mlp", "TinyNet"]
    assert merged[1].entrypoints[0].name == "tinynet"
    assert merged[1].dependencies == ("numpy",)
    assert merged[1].framework == "PyTorch"


def test_check_reports_the_missing_field_with_file_and_field(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["site", "check", "--pages", str(PAGES)])
    assert result.exit_code == 1, result.output
    assert "error: acme_hub_broken.md: missing required field 'summary'" in result.output
    assert "acme_hub_tinynet.md" not in result.output  # the Korean and Chinese pages pass
    assert "acme_hub_tokenizer.md" not in result.output
    assert "1 error(s)" in result.output


def _page(folder: Path, name: str, **fields: str) -> Path:
    meta = {
        "layout": "hub_detail",
        "background-class": "hub-background",
        "body-class": "hub",
        "category": "researchers",
        "title": "T",
        "summary": "S",
        "image": "no-image",
        "author": "A",
        "tags": "[vision]",
        "github-link": "https://github.com/acme/hub",
        "github-id": "acme/hub",
    }
    body = fields.pop("body", "### Model Description\n")
    meta.update(fields)
    header = "\n".join(f"{k}: {v}" for k, v in meta.items() if v != "<none>")
    path = folder / name
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\n{header}\n---\n{body}", encoding="utf-8")
    return path


def test_check_rules(tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    _page(pages, "acme_hub_ok.md")
    _page(pages, "acme_hub_tags.md", tags="[vision, robots]")
    _page(pages, "acme_hub_image.md", image="missing.png")
    _page(pages, "wrong_name.md")
    _page(pages, "acme_hub_layout.md", layout="post", category="students")
    _page(pages, "acme_hub_syntax.md", body="text\n\n```python\nprint(1\n```\n")
    _page(
        pages,
        "acme_hub_entry.md",
        body=f"```python\nimport hubcore\nhubcore.load({str(EXAMPLE_HUB)!r}, 'resnet')\n```\n",
    )
    _page(
        pages,
        "acme_hub_notebook.md",
        body="```python\n!pip install numpy\n%matplotlib inline\nx = 1\n```\n",
    )
    _page(pages, "acme_hub_yaml.md", title="[unclosed")
    from hubcore import api

    info = api.discover(api.open_repo(str(EXAMPLE_HUB)))
    snapshot_id = api.open_repo(str(EXAMPLE_HUB)).ref.identity
    findings = [
        str(f)
        for f in check_pages(pages, allowed_tags=("vision",), repositories={snapshot_id: info})
    ]
    text = "\n".join(findings)
    assert "acme_hub_ok.md" not in text
    assert "acme_hub_notebook.md" not in text
    assert "acme_hub_tags.md: tag 'robots' is not allowed" in text
    assert "acme_hub_image.md: field 'image': image 'missing.png' is not in images/" in text
    assert "wrong_name.md: file name must be 'acme_hub_<title>.md'" in text
    assert "acme_hub_layout.md: field 'layout' must be 'hub_detail'" in text
    assert "category 'students' is not one of" in text
    assert re.search(r"acme_hub_syntax\.md:1[0-9]+: python block does not compile", text)
    assert "acme_hub_entry.md:" in text
    assert "has no entrypoint 'resnet'" in text
    assert "acme_hub_yaml.md: the front matter is not valid YAML" in text


def test_check_run_executes_python_blocks(tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    hub = str(EXAMPLE_HUB)
    _page(
        pages,
        "acme_hub_good.md",
        body=(
            f"```python\nimport hubcore\nt = hubcore.load({hub!r}, 'tokenizer')\n"
            "assert t is not None\n```\n"
        ),
    )
    _page(pages, "acme_hub_bad.md", body="```python\nraise SystemExit('the page is wrong')\n```\n")
    findings = [str(f) for f in check_pages(pages, allowed_tags=("vision",), run=True, timeout=120)]
    assert findings == [
        "error: acme_hub_bad.md: its python blocks failed (exit status 1): the page is wrong"
    ]
    slow = tmp_path / "slow"
    _page(slow, "acme_hub_slow.md", body="```python\nimport time\ntime.sleep(60)\n```\n")
    findings = [str(f) for f in check_pages(slow, allowed_tags=("vision",), run=True, timeout=2)]
    assert findings == ["error: acme_hub_slow.md: its python blocks did not finish within 2 s"]


def test_check_run_routes_torch_hub_through_hubcore(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pages = tmp_path / "pages"
    body = (
        "```python\nimport torch\nfrom hubcore.compat import torch_hub\n"
        "assert torch.hub.load is torch_hub.load\n"
        f"t = torch.hub.load({str(EXAMPLE_HUB)!r}, 'tokenizer', source='local')\n"
        "assert t is not None\n```\n"
    )
    _page(pages, "acme_hub_torch.md", body=body)
    assert check_pages(pages, allowed_tags=("vision",), run=True, timeout=300) == []


def test_new_scaffolds_a_page_that_checks_and_builds(tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    runner = CliRunner()
    result = runner.invoke(
        main, ["site", "new", str(EXAMPLE_HUB), "tinynet", "-o", str(pages), "--tag", "vision"]
    )
    assert result.exit_code == 0, result.output
    path = Path(result.output.strip())
    text = path.read_text(encoding="utf-8")
    assert path.name == "examples_hub_tinynet.md"
    assert "summary: 'TinyNet (PyTorch): conv 3->8" in text
    assert "github-id: examples/hub" in text
    assert "hubcore.load(" in text
    assert "torch.hub.load(" in text
    assert "sha256 `755edc70" in text
    again = runner.invoke(main, ["site", "new", str(EXAMPLE_HUB), "tinynet", "-o", str(pages)])
    assert again.exit_code == 1
    assert "exists; pass --force" in again.output
    missing = runner.invoke(main, ["site", "new", str(EXAMPLE_HUB), "nope", "-o", str(pages)])
    assert missing.exit_code == 1
    assert "has no entrypoint 'nope'" in missing.output
    checked = runner.invoke(
        main, ["site", "check", "--pages", str(pages), "--repo", str(EXAMPLE_HUB)]
    )
    # only the link is left for the publisher: a local folder has no GitHub address
    assert checked.output.splitlines()[:-1] == [
        "error: examples_hub_tinynet.md: missing required field 'github-link'"
    ]
    built = runner.invoke(
        main,
        [
            "site",
            "build",
            "--repo",
            str(EXAMPLE_HUB),
            "--pages",
            str(pages),
            "-o",
            str(tmp_path / "s"),
        ],
    )
    assert built.exit_code == 0, built.output
    index = (tmp_path / "s" / "index.html").read_text(encoding="utf-8")
    # the page documents tinynet, so the generated tinynet card gives way to it
    assert index.count('<li class="card"') == 4
    page = (tmp_path / "s" / "models" / "examples_hub_tinynet.html").read_text(encoding="utf-8")
    assert "<code>tinynet(num_classes: int=10)</code>" in page  # entrypoint table taken over


def test_config_file(tmp_path: Path) -> None:
    (tmp_path / "pages").mkdir()
    (tmp_path / "hubcore.toml").write_text(
        '[site]\ntitle = "Acme"\nrepositories = ["./hub"]\npages = "pages"\n'
        'allowed_tags = ["vision", "robots"]\n'
    )
    config = load_site_config(tmp_path / "hubcore.toml")
    assert config.title == "Acme"
    assert config.repositories == (str(tmp_path / "hub"),)
    assert config.pages == tmp_path / "pages"
    assert config.output == tmp_path / "_site"
    assert config.allowed_tags == ("vision", "robots")
    (tmp_path / "bad.toml").write_text('[site]\nrepos = ["x"]\n')
    with pytest.raises(ConfigError, match="unknown key"):
        load_site_config(tmp_path / "bad.toml")
    (tmp_path / "bad2.toml").write_text('[site]\nrepositories = "x"\n')
    with pytest.raises(ConfigError, match="repositories must be a list"):
        load_site_config(tmp_path / "bad2.toml")
    (tmp_path / "bad3.toml").write_text('[site]\npackages = ["./p"]\n')
    result = CliRunner().invoke(main, ["site", "build", "-c", str(tmp_path / "bad3.toml")])
    assert result.exit_code == 0, result.output  # an input that cannot be read is a warning
    assert f"{tmp_path / 'p'} does not exist" in result.output


def test_build_without_inputs_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["site", "build"])
    assert result.exit_code == 2
    assert "nothing to catalog" in result.output


def test_one_changed_page_rewrites_only_that_page(tmp_path: Path) -> None:
    builder, site = _build(tmp_path)
    page = builder.config.pages / "acme_hub_tokenizer.md"  # type: ignore[operator]
    page.write_text(
        page.read_text(encoding="utf-8").replace("空格分词器", "空格分词器二"), encoding="utf-8"
    )
    report = builder.poll()
    assert report is not None
    written = sorted(p.relative_to(site).as_posix() for p in report.written)
    assert written == ["index.html", "models/acme_hub_tokenizer.html", "static/search-index.js"]
    assert "空格分词器二" in (site / "models" / "acme_hub_tokenizer.html").read_text(
        encoding="utf-8"
    )
    assert builder.poll() is None  # nothing changed since
    page.unlink()
    report = builder.poll()
    assert report is not None
    assert not (site / "models" / "acme_hub_tokenizer.html").exists()


def test_serve_under_hub_and_rebuild(tmp_path: Path) -> None:
    builder, _ = _build(tmp_path)
    with SiteServer(builder, 0, interval=0.05) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.url.endswith("/hub/")
        with urllib.request.urlopen(server.url) as response:
            assert b"TinyNet" in response.read()
        root = server.url.removesuffix("hub/")
        with urllib.request.urlopen(root) as response:  # redirected to /hub/
            assert response.geturl() == server.url
        with pytest.raises(urllib.error.HTTPError) as outside:
            urllib.request.urlopen(root + "static/site.css")
        assert outside.value.code == 404
        page = builder.config.pages / "acme_hub_tinynet.md"  # type: ignore[operator]
        page.write_text(
            page.read_text(encoding="utf-8").replace("TinyNet 분류기", "TinyNet 2"),
            encoding="utf-8",
        )
        url = server.url + "models/acme_hub_tinynet.html"
        for _ in range(200):
            with urllib.request.urlopen(url) as response:
                if b"TinyNet 2" in response.read():
                    break
            time.sleep(0.05)
        else:
            pytest.fail("the changed page was not rebuilt")


def test_lineage_svg_points_right_and_escapes() -> None:
    graph = LineageGraph(
        nodes=(
            LineageNode("b", "<run>", "run"),
            LineageNode("a", "data & more", "artifact"),
            LineageNode("c", "x" * 40, "model", current=True),
        ),
        edges=(LineageEdge("a", "b"), LineageEdge("b", "c"), LineageEdge("c", "missing")),
    )
    svg = lineage_svg(graph, "Lineage of <c>")
    assert "&lt;run&gt;" in svg
    assert "data &amp; more" in svg
    assert '<title id="lineage-title">Lineage of &lt;c&gt;</title>' in svg
    assert svg.count('class="lineage-edge"') == 2
    xs = {label: int(x) for x, label in re.findall(r'<text x="(\d+)"[^>]*>([^<]+)</text>', svg)}
    assert xs["data &amp; more"] < xs["&lt;run&gt;"] < xs["x" * 21 + "…"]


def test_unreadable_page_is_reported_and_skipped(tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "acme_hub_x.md").write_text("no front matter here\n")
    report = SiteBuilder(SiteConfig(pages=pages), output=tmp_path / "s").build()
    assert report.models == 0
    assert report.problems == [
        f"{pages / 'acme_hub_x.md'}: no front matter; a page starts with a '---' line, the "
        "fields, and '---'"
    ]
