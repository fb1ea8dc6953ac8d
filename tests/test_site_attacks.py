"""The catalog site under attack: hostile hubconfs, READMEs, pages and records; the preview
server; ``site check --run``; huge and malformed inputs.

Every page is read with an HTML parser, and what a browser would run or load is listed:
scripts, event handlers, styles, frames, forms, and every ``src`` / ``href``.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from hubcore.cli import main
from hubcore.site import CatalogModel, SiteBuilder, SiteConfig
from hubcore.site.check import check_pages
from hubcore.site.render import pygments_css
from hubcore.site.serve import SiteServer

from .site_fixtures import StaticCollector
from .test_site_browser import chromium

EVIL = "evil.example"
_HOSTILE_HTML = f"""
<script>window.pwned = 'script'</script>
<img src=x onerror="window.pwned = 'onerror'">
<iframe src="https://{EVIL}/frame"></iframe>
[md link](javascript:alert('md'))
<a href="javascript:window.pwned='href'">raw</a>
<a href="JaVaScRiPt:window.pwned='case'">case</a>
<img src="  https://{EVIL}/leading-space.png">
<img src="https:\\\\{EVIL}/backslash.png">
<img src="//{EVIL}/protocol-relative.png">
<img src="file:///etc/passwd">
<img src="/etc/passwd">
<img srcset="https://{EVIL}/srcset.png 2x">
<style>body {{ background: url(https://{EVIL}/css.png) }}</style>
<div style="background: url(https://{EVIL}/inline.png)" onclick="x()">styled</div>
<video poster="https://{EVIL}/poster.png"></video>
<object data="https://{EVIL}/object"></object>
<link rel="stylesheet" href="https://{EVIL}/x.css">
<svg><image href="https://{EVIL}/svg.png"/></svg>
<form action="https://{EVIL}/"><input name="q"></form>
<meta http-equiv="refresh" content="0;url=https://{EVIL}/">
<base href="https://{EVIL}/">

![up and out](../../../../etc/passwd)

![absolute](/etc/passwd)

[a fine link](https://example.org/ok)
"""


class _Page(HTMLParser):
    """What a page would run or load."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def _parse(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Page()
    parser.feed(html)
    return parser.tags


def _dangers(page: Path, site: Path) -> list[str]:
    """What in *page* would run code, load from outside *site*, or lead to a script URL."""
    found = []
    for tag, attrs in _parse(page.read_text(encoding="utf-8")):
        if tag == "script":
            src = attrs.get("src") or ""
            if not (src.endswith(("static/site.js", "static/search-index.js"))):
                found.append(f"<script {attrs}>")
        if tag in ("iframe", "object", "embed", "style", "form", "base", "video", "image"):
            found.append(f"<{tag}>")
        if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "refresh":
            found.append("<meta refresh>")
        if tag == "link" and not (attrs.get("href") or "").endswith((".css", ".svg")):
            found.append(f"<link {attrs}>")
        for name, value in attrs.items():
            value = value or ""
            if name.startswith("on") or name in ("style", "srcset", "poster", "action"):
                found.append(f"<{tag} {name}={value!r}>")
            if name in ("src", "href") and tag not in ("a",):
                target = (page.parent / value).resolve()
                if (
                    urlsplit(value).scheme
                    or value.startswith(("/", "\\"))
                    or not (target.is_relative_to(site.resolve()))
                ):
                    found.append(f"<{tag} {name}={value!r}> loads from outside the site")
            if name == "href" and tag == "a":
                scheme = urlsplit(value.strip()).scheme.lower()
                if scheme not in ("", "http", "https", "mailto") or value.strip().startswith("/"):
                    found.append(f"<a href={value!r}>")
                if not scheme and not value.startswith("#"):
                    target = (page.parent / value.split("#")[0]).resolve()
                    if not target.is_relative_to(site.resolve()):
                        found.append(f"<a href={value!r}> leads out of the site")
        if EVIL in json.dumps(attrs) and not (
            tag == "a" and set(attrs) <= {"href", "rel", "class"}
        ):
            found.append(f"<{tag} {attrs}> names {EVIL}")
    return found


def _hostile_hub(root: Path, marker: Path) -> Path:
    hub = root / "acme" / "hub"
    (hub / "models").mkdir(parents=True)
    (hub / "hubconf.py").write_text(
        f"""'''A hub.'''
import pathlib
pathlib.Path({str(marker)!r}).write_text('hubconf ran')
dependencies = ["numpy</script><script>window.pwned='dep'</script>"]


def evil(x="</code><script>window.pwned='default'</script>"):
    '''<script>window.pwned='doc'</script> <img src=x onerror="window.pwned='doc2'">

    <iframe src="https://{EVIL}/doc"></iframe> [x](javascript:alert(1))
    '''
    from models.nets import Net
    return Net()
""",
        encoding="utf-8",
    )
    (hub / "models" / "__init__.py").write_text("", encoding="utf-8")
    (hub / "models" / "nets.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('module ran')\n"
        "import torch\nclass Net: pass\n",
        encoding="utf-8",
    )
    (hub / "README.md").write_text("# Readme\n\n" + _HOSTILE_HTML, encoding="utf-8")
    return hub


def _page_text(**fields: object) -> str:
    meta: dict[str, object] = {
        "layout": "hub_detail",
        "background-class": "hub-background",
        "body-class": "hub",
        "category": "researchers",
        "title": "T",
        "summary": "S",
        "image": "no-image",
        "author": "A",
        "tags": ["vision"],
        "github-link": "https://github.com/acme/hub",
        "github-id": "acme/hub",
    }
    body = str(fields.pop("body", "### Model Description\n"))
    meta.update(fields)
    header = "\n".join(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in meta.items())
    return f"---\n{header}\n---\n{body}"


def _write_page(folder: Path, name: str, **fields: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(_page_text(**fields), encoding="utf-8")
    return path


def _hostile_site(tmp_path: Path) -> tuple[SiteBuilder, Path, Path]:
    marker = tmp_path / "ran.txt"
    hub = _hostile_hub(tmp_path, marker)
    pages = tmp_path / "pages"
    (pages / "images").mkdir(parents=True)
    (pages / "images" / "ok.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    _write_page(
        pages,
        "acme_hub_evil.md",
        title="</title><script>window.pwned='title'</script>",
        summary="<img src=x onerror=alert(1)>",
        author="<b>me</b>",
        tags=["vision", "a b", "</script>'\""],
        image="../../../etc/passwd",
        featured_image_1="/etc/passwd",
        featured_image_2="images/../../../../etc/passwd",
        **{
            "github-link": "javascript:window.pwned='gh'",
            "demo-model-link": "data:text/html,<script>alert(1)</script>",
        },
        body=_HOSTILE_HTML + "\n![ok](images/ok.png)\n",
    )
    record = CatalogModel(
        key="registry:x",
        title="from a plugin",
        kind="registry",
        image="../../../../etc/passwd",
        featured_images=("https://evil.example/x.png",),
        links={"Home": " javascript:alert(1)", "Docs": "https://example.org/docs"},
        description=_HOSTILE_HTML,
    )
    config = SiteConfig(repositories=(str(hub),), pages=pages, output=tmp_path / "site")
    from hubcore.site import collectors_for

    builder = SiteBuilder(
        config, collectors=[*collectors_for(config), StaticCollector("plugin", [record])]
    )
    return builder, marker, hub


def test_hostile_inputs_cannot_script_the_site_or_load_from_outside(tmp_path: Path) -> None:
    builder, _, _ = _hostile_site(tmp_path)
    report = builder.build()
    assert report.problems == []
    site = report.output
    pages = sorted(site.rglob("*.html"))
    assert len(pages) == 4  # the index, the entrypoint, the page, the plugin's record
    problems = {p.relative_to(site).as_posix(): _dangers(p, site) for p in pages}
    assert problems == {p: [] for p in problems}
    page = (site / "models" / "acme_hub_evil.html").read_text(encoding="utf-8")
    assert '<img src="../images/ok.png"' in page  # a picture inside the site still shows
    assert 'href="https://example.org/ok"' in page  # and an ordinary link still links
    assert "javascript:window.pwned=&#39;gh&#39;" in page  # the bad link is shown as text
    plugin = (site / "models" / "registry-x.html").read_text(encoding="utf-8")
    assert 'href="https://example.org/docs"' in plugin


def test_every_page_forbids_scripts_and_requests_from_elsewhere(tmp_path: Path) -> None:
    builder, _, _ = _hostile_site(tmp_path)
    site = builder.build().output
    for page in site.rglob("*.html"):
        metas = [
            a
            for t, a in _parse(page.read_text(encoding="utf-8"))
            if t == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy"
        ]
        assert len(metas) == 1, page
        policy = metas[0]["content"] or ""
        assert "default-src 'none'" in policy
        assert "script-src 'self'" in policy
        assert "unsafe" not in policy


def test_search_index_cannot_close_its_script(tmp_path: Path) -> None:
    builder, _, _ = _hostile_site(tmp_path)
    site = builder.build().output
    text = (site / "static" / "search-index.js").read_text(encoding="utf-8")
    assert "</script" not in text.lower()
    assert "<" not in text.split("=", 1)[1]
    data = json.loads(text.split("=", 1)[1].strip().rstrip(";"))
    assert any("window.pwned" in v for v in data.values())  # kept as searchable text


def test_tags_with_spaces_and_quotes_stay_whole_in_the_filter_data(tmp_path: Path) -> None:
    builder, _, _ = _hostile_site(tmp_path)
    index = (builder.build().output / "index.html").read_text(encoding="utf-8")
    cards = {a.get("data-slug"): a for t, a in _parse(index) if t == "li" and "data-slug" in a}
    assert json.loads(cards["acme_hub_evil"]["data-tags"] or "") == [
        "vision",
        "a b",
        "</script>'\"",
    ]


def test_the_collector_never_runs_repository_code(tmp_path: Path) -> None:
    builder, marker, hub = _hostile_site(tmp_path)
    report = builder.build()
    assert report.models == 3
    page = (report.output / "models" / "acme-hub-evil.html").read_text(encoding="utf-8")
    assert "<dd>PyTorch</dd>" in page  # read from models/nets.py, which imports torch
    runner = CliRunner()
    new = runner.invoke(main, ["site", "new", str(hub), "evil", "-o", str(tmp_path / "new")])
    assert new.exit_code == 0, new.output
    check = runner.invoke(
        main, ["site", "check", "--pages", str(tmp_path / "new"), "--repo", str(hub)]
    )
    assert "Traceback" not in check.output
    assert not marker.exists(), marker.read_text()


def test_scaffolded_page_of_a_hostile_docstring_builds_clean(tmp_path: Path) -> None:
    _, _, hub = _hostile_site(tmp_path)
    pages = tmp_path / "new"
    result = CliRunner().invoke(main, ["site", "new", str(hub), "evil", "-o", str(pages)])
    assert result.exit_code == 0, result.output
    report = SiteBuilder(SiteConfig(pages=pages), output=tmp_path / "s").build()
    for page in report.output.rglob("*.html"):
        assert _dangers(page, report.output) == [], page


def test_urls_inside_and_outside_the_site() -> None:
    from hubcore.site.render import outside_link, site_path

    assert site_path("images/x.png") == "images/x.png"
    assert site_path("a/../images/x.png") == "a/../images/x.png"
    for bad in (
        "../x.png",
        "images/../../x.png",
        "/etc/passwd",
        "//evil.example/x",
        "\\\\evil.example\\x",
        " https://evil.example/x",
        "https:\\\\evil.example",
        "file:///etc/passwd",
        "data:image/png;base64,AAAA",
        "http://[::1",
        "",
    ):
        assert site_path(bad) is None, bad
    assert outside_link("https://example.org/a") == "https://example.org/a"
    assert outside_link("mailto:a@example.org") == "mailto:a@example.org"
    for bad in (
        "javascript:alert(1)",
        " JAVASCRIPT:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,x",
        "vbscript:x",
        "//evil.example",
    ):
        assert outside_link(bad) is None, bad


def test_front_matter_that_is_not_text_does_not_crash_or_explode(tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    _write_page(pages, "acme_hub_inf.md", order=float("inf"))
    (pages / "acme_hub_nan.md").write_text(_page_text().replace("T\n", "T\norder: .nan\n", 1))
    (pages / "acme_hub_inf.md").write_text(_page_text().replace("T\n", "T\norder: .inf\n", 1))
    # a "billion laughs" of YAML aliases: 9**9 items if turned into text
    laughs = "\n".join(
        [
            "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]",
            *[f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)],
        ]
    )
    text = _page_text(tags=["vision"]).replace('title: "T"', laughs + "\ntitle: *l8")
    (pages / "acme_hub_laughs.md").write_text(text, encoding="utf-8")
    report = SiteBuilder(SiteConfig(pages=pages), output=tmp_path / "s").build()
    assert report.models == 3
    assert report.problems == []
    findings = [str(f) for f in check_pages(pages, allowed_tags=("vision",))]
    assert findings == [
        "error: acme_hub_laughs.md: field 'title' must be a single value, not a list or mapping"
    ]


def test_non_utf8_and_surrogates_are_reported_not_crashed(tmp_path: Path) -> None:
    hub = tmp_path / "acme" / "hub"
    hub.mkdir(parents=True)
    (hub / "hubconf.py").write_text(
        '"""hub"""\n\ndef odd(x="\\udcff"):\n    """Lone \\ud800 surrogate."""\n    return x\n',
        encoding="utf-8",
    )
    (hub / "README.md").write_bytes(b"# R\n\n\xff\xfe latin-1 \xe9t\xe9\n")
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "acme_hub_latin1.md").write_bytes(_page_text().encode("utf-8") + b"\xe9t\xe9\n")
    result = CliRunner().invoke(
        main,
        ["site", "build", "--repo", str(hub), "--pages", str(pages), "-o", str(tmp_path / "s")],
    )
    assert result.exit_code == 0, result.output
    assert "acme_hub_latin1.md: not UTF-8 text" in result.output
    page = (tmp_path / "s" / "models" / "acme-hub-odd.html").read_text(encoding="utf-8")
    assert "Lone" in page
    assert "latin-1" in page


def test_a_huge_readme_is_read_in_part(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = tmp_path / "acme" / "hub"
    hub.mkdir(parents=True)
    (hub / "hubconf.py").write_text('def a():\n    """A."""\n\ndef b():\n    """B."""\n')
    with (hub / "README.md").open("wb") as fh:  # 50 MB
        fh.write(b"# Huge\n\nfirst words\n\n")
        fh.write(b"word " * 10_000_000)
    read: list[int] = []
    original = Path.read_text

    def spy(self: Path, *args: object, **kwargs: object) -> str:
        text = original(self, *args, **kwargs)  # type: ignore[arg-type]
        if self.name == "README.md":
            read.append(len(text))
        return text

    monkeypatch.setattr(Path, "read_text", spy)
    from hubcore.site.render import markdown_html

    rendered: list[int] = []
    import hubcore.site.build as build

    def counting(text: str, site: Path | None = None) -> str:
        rendered.append(len(text))
        return markdown_html(text, site)

    monkeypatch.setattr(build, "markdown_html", counting)
    report = SiteBuilder(SiteConfig(repositories=(str(hub),)), output=tmp_path / "s").build()
    assert report.models == 2
    assert read == []  # never read whole
    # the README is rendered once for the two entrypoints, and cut to a readable size
    big = [n for n in rendered if n > 1000]
    assert len(big) == 1
    assert big[0] < 200_000
    page = (tmp_path / "s" / "models" / "acme-hub-a.html").read_text(encoding="utf-8")
    assert "first words" in page
    assert "The README is longer" in page


def test_10000_entrypoints_read_the_hubconf_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = tmp_path / "hub"
    hub.mkdir()
    body = "".join(
        f'def e{i}(a=1):\n    """Entry {i}."""\n    import torch\n\n' for i in range(10_000)
    )
    (hub / "hubconf.py").write_text(body)
    import ast

    import hubcore.site.collectors as collectors

    parsed: list[str] = []
    real_parse = ast.parse

    def counting(source: object, filename: str = "<unknown>", *a: object, **k: object) -> object:
        if str(filename).endswith("hubconf.py"):
            parsed.append(filename)
        return real_parse(source, filename, *a, **k)  # type: ignore[call-overload]

    monkeypatch.setattr(collectors.ast, "parse", counting)
    report = SiteBuilder(SiteConfig(repositories=(str(hub),)), output=tmp_path / "s").build()
    assert report.models == 10_000
    assert len(parsed) <= 2  # discovery's read and the collector's: not one per entrypoint
    assert 'data-framework="PyTorch"' in (tmp_path / "s" / "index.html").read_text()


# -- check --run --------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(sys.platform == "win32", reason="process groups are POSIX")
def test_check_run_leaves_nothing_running(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    spawn = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        f"open({str(pids)!r}, 'a').write(f'{{child.pid}}\\n')\n"
    )
    pages = tmp_path / "pages"
    _write_page(pages, "acme_hub_quick.md", body=f"```python\n{spawn}```\n")
    started = time.monotonic()
    findings = check_pages(pages, allowed_tags=("vision",), run=True, timeout=60)
    assert [str(f) for f in findings] == []
    assert time.monotonic() - started < 50  # the page ended; its child does not hold us
    slow = tmp_path / "slow"
    _write_page(
        slow, "acme_hub_slow.md", body=f"```python\n{spawn}import time\ntime.sleep(300)\n```\n"
    )
    findings = check_pages(slow, allowed_tags=("vision",), run=True, timeout=3)
    assert [str(f) for f in findings] == [
        "error: acme_hub_slow.md: its python blocks did not finish within 3 s"
    ]
    children = [int(line) for line in pids.read_text().split()]
    assert len(children) == 2
    for _ in range(50):
        if not any(_alive(pid) for pid in children):
            break
        time.sleep(0.1)
    assert [pid for pid in children if _alive(pid)] == []


def test_check_runs_code_only_with_run_and_a_sane_timeout(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    pages = tmp_path / "pages"
    code = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
    _write_page(pages, "acme_hub_code.md", body=f"```python\n{code}```\n")
    runner = CliRunner()
    assert runner.invoke(main, ["site", "check", "--pages", str(pages)]).exit_code == 0
    assert not marker.exists()
    for bad in ("0", "-5", "nan", "inf"):
        result = runner.invoke(
            main, ["site", "check", "--pages", str(pages), "--run", "--timeout", bad]
        )
        assert result.exit_code == 2, (bad, result.output)
        assert "positive number of seconds" in result.output
    assert not marker.exists()
    ok = runner.invoke(main, ["site", "check", "--pages", str(pages), "--run", "--timeout", "60"])
    assert ok.exit_code == 0, ok.output
    assert marker.read_text() == "ran"


# -- serve ----------------------------------------------------------------------------------


def _get(server: SiteServer, path: str, host: str | None = None) -> tuple[int, bytes]:
    address, port = server.httpd.server_address[:2]
    connection = http.client.HTTPConnection(str(address), int(port), timeout=10)
    try:
        # the raw path, as an attacker sends it (no client-side normalization)
        connection.putrequest("GET", path, skip_host=host is not None)
        if host is not None:
            connection.putheader("Host", host)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_serve_stays_on_loopback_and_inside_the_output(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET")
    pages = tmp_path / "pages"
    _write_page(pages, "acme_hub_ok.md")
    builder = SiteBuilder(SiteConfig(pages=pages), output=tmp_path / "site")
    builder.build()
    (tmp_path / "site" / "link.txt").symlink_to(secret)
    (tmp_path / "site" / "linkdir").symlink_to(tmp_path, target_is_directory=True)
    with SiteServer(builder, 0, interval=60) as server:
        assert server.httpd.server_address[0] == "127.0.0.1"
        assert _get(server, "/hub/")[0] == 200
        for path in (
            "/hub/../secret.txt",
            "/hub/%2e%2e/secret.txt",
            "/hub/%2e%2e%2fsecret.txt",
            "/hub/..%5csecret.txt",
            "/hub/static/../../secret.txt",
            "/secret.txt",
            "/hub/link.txt",
            "/hub/linkdir/secret.txt",
        ):
            status, body = _get(server, path)
            assert b"SECRET" not in body, path
            assert status == 404, (path, status)
        status, body = _get(server, "/hub/static/")  # no folder listings
        assert status == 404
        assert b"site.css" not in body
        status, _ = _get(server, "/hub/", host=f"{EVIL}:80")  # DNS rebinding
        assert status == 403
        assert (
            _get(server, "/hub/", host="localhost:" + str(server.httpd.server_address[1]))[0] == 200
        )


# -- quality ----------------------------------------------------------------------------------


def _luminance(colour: str) -> float:
    colour = colour.lstrip("#")
    if len(colour) == 3:
        colour = "".join(c * 2 for c in colour)
    channels = [int(colour[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_text_colours_have_enough_contrast() -> None:
    from importlib import resources

    css = (resources.files("hubcore.site") / "static" / "site.css").read_text(encoding="utf-8")
    var = dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{3,6})", css))
    pairs = {
        "text": (var["fg"], var["bg"]),
        "muted text": (var["muted"], var["bg"]),
        "muted on panel": (var["muted"], var["panel"]),
        "links": (var["accent"], var["bg"]),
        "pressed tag": (var["accent-fg"], var["accent"]),
        "badge": ("#123a66", var["badge"]),
        "alias badge": ("#1c5a2b", "#e7f5ea"),
    }
    low = {k: round(_contrast(*v), 2) for k, v in pairs.items() if _contrast(*v) < 4.5}
    assert low == {}
    assert _contrast(var["focus"], var["bg"]) >= 3  # a focus outline is not text: 3:1
    # every highlighting colour on the code block's background
    block = re.search(r"pre\.highlight \{[^}]*background: (#[0-9a-fA-F]{6})", css)
    assert block is not None
    colours = set(re.findall(r"(?<![-\w])color: (#[0-9a-fA-F]{6})", pygments_css()))
    assert len(colours) > 5
    weak = {c: round(_contrast(c, block.group(1)), 2) for c in colours}
    assert {c: r for c, r in weak.items() if r < 4.5} == {}


# -- in the browser -------------------------------------------------------------------------

_LONG = "https://example.org/" + "a" * 300
_WIDE_PAGE = f"""
A word that does not break: {"x" * 200} and a link {_LONG}

`{"inline_code_" * 30}`

| {" | ".join(f"column {i}" for i in range(14))} |
| {" | ".join("---" for _ in range(14))} |
| {" | ".join(f"value-{i}-{'v' * 20}" for i in range(14))} |

<pre>{"y" * 400}</pre>
"""


@pytest.fixture(scope="module")
def browser() -> Any:
    yield from chromium()


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("hostile")
    builder, _, _ = _hostile_site(tmp)
    _write_page(
        builder.config.pages,  # type: ignore[arg-type]
        "acme_hub_wide.md",
        title="W" * 120,
        summary="s" * 300,
        body=_WIDE_PAGE,
    )
    builder.build()
    with SiteServer(builder, 0, interval=60) as server:
        yield server


@pytest.mark.browser
def test_hostile_pages_run_nothing_and_load_nothing_outside(
    browser: Any, hostile_server: SiteServer
) -> None:
    from .test_site_browser import _errors, _requests

    site = urlsplit(hostile_server.url).netloc
    browser.get_log("performance")
    for page in (
        "",
        "models/acme_hub_evil.html",
        "models/acme-hub-evil.html",
        "models/registry-x.html",
    ):
        browser.get(hostile_server.url + page)
        assert browser.execute_script("return window.pwned === undefined")
        assert (
            browser.execute_script("return document.querySelectorAll('script:not([src])').length")
            == 0
        )
        assert _errors(browser) == [], page  # a CSP violation would be logged here
    outside = [
        u
        for u in _requests(browser)
        if urlsplit(u).scheme not in ("data", "about") and urlsplit(u).netloc != site
    ]
    assert outside == []


@pytest.mark.browser
def test_long_words_wide_tables_and_titles_fit_a_phone(
    browser: Any, hostile_server: SiteServer
) -> None:
    browser.set_window_size(390, 844)
    try:
        for page in ("", "models/acme_hub_wide.html"):
            browser.get(hostile_server.url + page)
            assert browser.execute_script("return window.innerWidth") <= 400
            overflow, wide = browser.execute_script(
                "var w = document.documentElement.clientWidth, out = [];"
                "document.querySelectorAll('body *').forEach(function (e) {"
                "  if (e.getBoundingClientRect().right > w + 1) { out.push(e.tagName); } });"
                "return [document.documentElement.scrollWidth - w, [w].concat(out.slice(0, 8))];"
            )
            assert overflow <= 0, f"{page or 'index'} scrolls sideways by {overflow}px: {wide}"
    finally:
        browser.set_window_size(1280, 900)


@pytest.mark.browser
def test_filters_work_from_disk_under_the_content_policy(
    browser: Any, hostile_server: SiteServer
) -> None:
    from selenium.webdriver.common.by import By

    from .test_site_browser import _errors

    browser.get((hostile_server.output / "index.html").as_uri())
    search = browser.find_element(By.ID, "search")
    search.send_keys("registry-x-nothing-else")
    assert browser.find_element(By.ID, "count").text == "0 models"
    search.clear()
    button = browser.find_element(By.CSS_SELECTOR, '.tag-filter[data-tag="a b"]')
    button.click()
    shown = [
        c.get_attribute("data-slug")
        for c in browser.find_elements(By.CSS_SELECTOR, ".card")
        if c.is_displayed()
    ]
    assert shown == ["acme_hub_evil"]
    assert _errors(browser) == []


@pytest.mark.browser
def test_keyboard_reaches_every_filter_with_a_visible_focus(
    browser: Any, hostile_server: SiteServer
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(hostile_server.url)
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    reached = []
    for _ in range(12):
        active = browser.switch_to.active_element
        outline = browser.execute_script(
            "var s = getComputedStyle(arguments[0]); return [s.outlineStyle, s.outlineWidth];",
            active,
        )
        reached.append((active.tag_name, active.get_attribute("id") or active.text))
        assert outline[0] != "none", reached[-1]
        assert outline[1] != "0px", reached[-1]
        active.send_keys(Keys.TAB)
    names = [name for _, name in reached]
    assert "Skip to content" in names
    assert "search" in names
    assert any(tag == "button" for tag, _ in reached)


def test_page_images_stay_in_the_pages_folder(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"SECRET")
    pages = tmp_path / "pages"
    (pages / "images").mkdir(parents=True)
    (pages / "images" / "ok.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (pages / "images" / "link.png").symlink_to(outside / "secret.png")
    for name, image in (
        ("acme_hub_ok.md", "ok.png"),
        ("acme_hub_traversal.md", "../../../etc/passwd"),
        ("acme_hub_absolute.md", "/etc/passwd"),
        ("acme_hub_symlink.md", "link.png"),
        ("acme_hub_prefixed.md", "images/../../outside/secret.png"),
    ):
        _write_page(pages, name, image=image)
    findings = [str(f) for f in check_pages(pages, allowed_tags=("vision",))]
    assert sorted(findings) == sorted(
        f"error: {name}: field 'image': image '{image}' is not in images/"
        for name, image in (
            ("acme_hub_traversal.md", "../../../etc/passwd"),
            ("acme_hub_absolute.md", "/etc/passwd"),
            ("acme_hub_symlink.md", "link.png"),
            ("acme_hub_prefixed.md", "images/../../outside/secret.png"),
        )
    )
    site = SiteBuilder(SiteConfig(pages=pages), output=tmp_path / "site").build().output
    assert sorted(p.name for p in (site / "images").iterdir()) == ["ok.png"]
    for page in site.rglob("*.html"):
        assert _dangers(page, site) == [], page
        for tag, attrs in _parse(page.read_text(encoding="utf-8")):
            if tag == "img":
                assert (page.parent / (attrs.get("src") or "")).resolve().is_file(), page
    # an images folder that is a symlink out of the pages folder publishes nothing
    other = tmp_path / "other"
    other.mkdir()
    _write_page(other, "acme_hub_x.md", image="secret.png")
    (other / "images").symlink_to(outside, target_is_directory=True)
    site = SiteBuilder(SiteConfig(pages=other), output=tmp_path / "site2").build().output
    assert not (site / "images").exists()
    assert [str(f) for f in check_pages(other, allowed_tags=("vision",))] == [
        "error: acme_hub_x.md: field 'image': image 'secret.png' is not in images/"
    ]


def test_page_names_cannot_leave_the_output_folder(tmp_path: Path) -> None:
    records = [
        CatalogModel(key=key, title="t", page_name=name)
        for key, name in (
            ("a", "../../../escaped"),
            ("b", "/tmp/escaped"),
            ("c", "..\\..\\escaped"),
            ("d", ".."),
            ("e", ""),
            ("f", "x" * 400),
        )
    ]
    site = tmp_path / "out" / "site"
    SiteBuilder(SiteConfig(), output=site, collectors=[StaticCollector("r", records)]).build()
    written = {p.resolve() for p in tmp_path.rglob("*") if p.is_file()}
    assert all(p.is_relative_to(site.resolve()) for p in written)
    assert len(list((site / "models").iterdir())) == 6


def test_new_with_hostile_references_writes_nothing_outside(tmp_path: Path) -> None:
    hub = tmp_path / "acme" / "hub"
    hub.mkdir(parents=True)
    (hub / "hubconf.py").write_text('def a():\n    """A."""\n')
    pages = tmp_path / "pages"
    runner = CliRunner()
    for ref, entry in (
        (str(hub), "../../escaped"),
        (str(hub), "a/../../escaped"),
        (str(tmp_path / "missing"), "a"),
        ("../../../../etc", "a"),
        ("file:///etc/passwd", "a"),
    ):
        result = runner.invoke(main, ["site", "new", ref, entry, "-o", str(pages)])
        assert result.exit_code == 1, (ref, entry, result.output)
        assert result.output.startswith("error:"), result.output
        assert "Traceback" not in result.output
    assert not pages.exists()
    assert not list(tmp_path.rglob("*escaped*"))


def test_body_references_outside_images_are_reported_and_left_out(tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    (pages / "images").mkdir(parents=True)
    (pages / "images" / "ok.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    body = (
        "![fine](images/ok.png) [anchor](#usage) [out](https://example.org)\n\n"
        "![missing](images/missing.png)\n\n"
        "[docs](docs/usage.md)\n\n"
        '<p><img src="../secret.png"></p>\n'
    )
    path = _write_page(pages, "acme_hub_refs.md", body=body)
    first = path.read_text(encoding="utf-8").splitlines().index("![missing](images/missing.png)")
    findings = [str(f) for f in check_pages(pages, allowed_tags=("vision",))]
    assert findings == [
        f"warning: acme_hub_refs.md:{first + 1}: image 'images/missing.png' names no file of "
        "the site (only images/ is published); it is left out of the page",
        f"warning: acme_hub_refs.md:{first + 3}: link 'docs/usage.md' names no file of the "
        "site (only images/ is published); it is left out of the page",
        f"warning: acme_hub_refs.md:{first + 5}: image '../secret.png' names no file of the "
        "site (only images/ is published); it is left out of the page",
    ]
    site = SiteBuilder(SiteConfig(pages=pages), output=tmp_path / "site").build().output
    page = site / "models" / "acme_hub_refs.html"
    for tag, attrs in _parse(page.read_text(encoding="utf-8")):
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            if tag in ("img", "a") and value and not value.startswith(("#", "https:")):
                assert (page.parent / value).resolve().is_file(), value


def test_raw_html_images_from_elsewhere_become_links() -> None:
    from hubcore.site.render import markdown_html

    html = markdown_html(
        'Figure: <img src="https://example.org/a.jpg" alt="A" width="480">\n\n'
        '<p align="center"><img src="https://example.org/b.jpg?x=1&y=2"></p>\n'
    )
    assert "<img" not in html
    assert '<a class="external-image" href="https://example.org/a.jpg"' in html
    assert ">A</a>" in html
    assert 'href="https://example.org/b.jpg?x=1&amp;y=2"' in html


def test_serve_refuses_a_port_that_cannot_exist(tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    _write_page(pages, "acme_hub_ok.md")
    for port in ("70000", "-1"):
        result = CliRunner().invoke(
            main,
            ["site", "serve", "--pages", str(pages), "-o", str(tmp_path / "s"), "--port", port],
        )
        assert result.exit_code == 2, result.output
        assert "--port" in result.output
        assert "internal error" not in result.output
