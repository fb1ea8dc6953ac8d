"""Build the static catalog: collect records, merge them, render the pages, write what changed.

Output layout (every link relative, so the site works from ``file://`` and under any path)::

    index.html                  a card per model; tag / framework filters and search (static JS)
    models/<slug>.html          one page per model
    static/                     CSS, JS, highlighting, the placeholder image (shipped with hubcore)
    static/search-index.js      the text each card is searched by
    images/                     the pages folder's images

:class:`SiteBuilder` keeps what it rendered, so :meth:`SiteBuilder.refresh` after a change
collects only the input that changed and writes only the pages whose content changed: a
changed page of a 500-model site is rebuilt in a fraction of a second (``serve`` uses it).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

import attrs

from hubcore.errors import HubError
from hubcore.site.collectors import Collector, PagesCollector, collectors_for
from hubcore.site.config import SiteConfig
from hubcore.site.lineage import lineage_svg
from hubcore.site.model import CatalogModel
from hubcore.site.pages import is_site_image
from hubcore.site.render import environment, markdown_html, pygments_css, valid_text
from hubcore.store.files import atomic_write

__all__ = ["BuildReport", "SiteBuilder", "build_site", "merge_records"]

logger = logging.getLogger(__name__)
_STATIC = ("site.css", "site.js", "model.svg", "favicon.svg")


@attrs.define
class BuildReport:
    """What a build did: files written, models on the site, problems met, seconds taken."""

    output: Path
    models: int = 0
    written: list[Path] = attrs.field(factory=list)
    problems: list[str] = attrs.field(factory=list)
    seconds: float = 0.0

    @property
    def index(self) -> Path:
        """The site's index page."""
        return self.output / "index.html"


def merge_records(records: Sequence[CatalogModel]) -> list[CatalogModel]:
    """Hand-written pages replace the generated records of the entrypoints they document
    (their ``covers``), taking over those entrypoints' table rows, dependencies, framework
    and badges; the result is sorted by ``order``, then title."""
    covered: dict[tuple[str, str], str] = {}  # (repository, entry) -> key of the page
    for record in records:
        if record.kind == "page":
            for pair in record.covers:
                covered.setdefault(pair, record.key)
    absorbed: dict[str, list[CatalogModel]] = {}
    kept = []
    for record in records:
        owners = {covered.get(pair) for pair in record.covers}
        owner = owners.pop() if record.kind == "hubconf" and len(owners) == 1 else None
        if owner is None:
            kept.append(record)
        else:
            absorbed.setdefault(owner, []).append(record)
    merged = []
    for record in kept:
        parts = absorbed.get(record.key, [])
        if parts:
            record = attrs.evolve(
                record,
                entrypoints=record.entrypoints + tuple(r for p in parts for r in p.entrypoints),
                dependencies=tuple(
                    dict.fromkeys(
                        record.dependencies + tuple(d for p in parts for d in p.dependencies)
                    )
                ),
                framework=record.framework or next((p.framework for p in parts if p.framework), ""),
                badges=tuple(
                    dict.fromkeys(record.badges + tuple(b for p in parts for b in p.badges))
                ),
            )
        merged.append(record)
    merged.sort(key=lambda r: (r.order if r.order is not None else 1 << 30, r.title.lower(), r.key))
    return merged


def _unique_slugs(records: Sequence[CatalogModel]) -> dict[str, str]:
    seen: dict[str, int] = {}
    slugs = {}
    for record in sorted(records, key=lambda r: r.key):
        base = record.slug
        count = seen.get(base, 0) + 1
        seen[base] = count
        slugs[record.key] = base if count == 1 else f"{base}-{count}"
    return slugs


def _write_if_changed(path: Path, data: bytes, written: list[Path]) -> None:
    try:
        if path.read_bytes() == data:
            return
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda handle: handle.write(data), mode=0o644)  # readable when served
    written.append(path)


def _utf8(text: str) -> bytes:
    return valid_text(text).encode("utf-8")


def _search_text(record: CatalogModel) -> str:
    words = [record.title, record.summary, record.author, record.framework, *record.tags]
    words += [e.name for e in record.entrypoints] + [e.doc for e in record.entrypoints]
    words += [*list(record.aliases), record.description[:4000], record.about[:1000]]
    return " ".join(" ".join(w.split()) for w in words if w).lower()


class SiteBuilder:
    """Builds the site described by *config* into *output* (default ``config.output``).

    *collectors* replaces the ones the configuration names (tests and other tools pass their
    own, e.g. a registry collector with records made in memory).
    """

    def __init__(
        self,
        config: SiteConfig,
        *,
        output: Path | None = None,
        collectors: Sequence[Collector] | None = None,
    ) -> None:
        self.config = config
        self.output = (output or config.output).absolute()
        self.collectors: list[Collector] = (
            list(collectors) if collectors is not None else collectors_for(config)
        )
        self._env = environment({"site_title": config.title})
        self._records: dict[int, list[CatalogModel]] = {}
        self._page_records: dict[int, dict[Path, CatalogModel]] = {}
        self._problems: dict[int, list[str]] = {}
        self._rendered: dict[str, tuple[CatalogModel, str]] = {}  # slug -> (record, html)
        self._mtimes: dict[Path, float] = {}
        self._images_signature: tuple[tuple[str, float], ...] = ()

    # -- collecting -------------------------------------------------------------------------

    def _collect(self, index: int) -> None:
        collector = self.collectors[index]
        self._problems[index] = []
        try:
            if isinstance(collector, PagesCollector):
                pages: dict[Path, CatalogModel] = {}
                for record in collector.collect():
                    pages[collector.folder / record.origin] = record
                self._page_records[index] = pages
                self._records[index] = list(pages.values())
                self._problems[index] = list(collector.problems.values())
            else:
                self._records[index] = list(collector.collect())
        except HubError as exc:
            self._records[index] = []
            self._problems[index] = [f"{collector.name}: {exc}"]
            logger.warning("%s: %s", collector.name, exc)

    def _recollect_page(self, index: int, path: Path) -> None:
        collector = self.collectors[index]
        assert isinstance(collector, PagesCollector)
        pages = self._page_records.setdefault(index, {})
        record = collector.collect_one(path) if path.is_file() else None
        if record is None:
            pages.pop(path, None)
        else:
            pages[path] = record
        self._records[index] = sorted(pages.values(), key=lambda r: r.origin)
        self._problems[index] = list(collector.problems.values())

    # -- building ---------------------------------------------------------------------------

    def build(self) -> BuildReport:
        """Collect every input and write the whole site (unchanged files are not rewritten)."""
        started = time.perf_counter()
        for index in range(len(self.collectors)):
            self._collect(index)
        self._mtimes = self._scan()
        report = self._render()
        report.seconds = time.perf_counter() - started
        return report

    def refresh(self, changed: Iterable[Path]) -> BuildReport:
        """Rebuild after *changed* local files changed: a page file is read again alone; a
        change in a repository folder collects that repository again."""
        started = time.perf_counter()
        for path in {p.absolute() for p in changed}:
            for index, collector in enumerate(self.collectors):
                roots = [r.absolute() for r in collector.watched()]
                if not any(path == r or path.is_relative_to(r) for r in roots):
                    continue
                if isinstance(collector, PagesCollector) and path.suffix == ".md":
                    if path.parent == collector.folder.absolute():
                        self._recollect_page(index, path)
                elif not isinstance(collector, PagesCollector):
                    self._collect(index)
        report = self._render()
        report.seconds = time.perf_counter() - started
        return report

    def poll(self) -> BuildReport | None:
        """Look for changed inputs (by modification time and size); rebuild when any changed."""
        current = self._scan()
        changed = {
            p for p in current.keys() | self._mtimes.keys() if current.get(p) != self._mtimes.get(p)
        }
        self._mtimes = current
        return self.refresh(changed) if changed else None

    def _scan(self) -> dict[Path, float]:
        found: dict[Path, float] = {}
        for collector in self.collectors:
            for root in collector.watched():
                for path in _files_under(root.absolute()):
                    try:
                        stat = path.stat()
                    except OSError:
                        continue
                    found[path] = stat.st_mtime_ns + stat.st_size / 1e12
        return found

    def _render(self) -> BuildReport:
        report = BuildReport(output=self.output)
        records = merge_records(
            [r for i in range(len(self.collectors)) for r in self._records.get(i, [])]
        )
        report.problems = [
            p for i in range(len(self.collectors)) for p in self._problems.get(i, [])
        ]
        report.models = len(records)
        slugs = _unique_slugs(records)
        self.output.mkdir(parents=True, exist_ok=True)
        self._write_static(report.written)
        detail = self._env.get_template("model.html")
        rendered: dict[str, tuple[CatalogModel, str]] = {}
        about: dict[str, str] = {}  # shared Markdown -> HTML, rendered once
        for record in records:
            slug = slugs[record.key]
            previous = self._rendered.get(slug)
            if previous is not None and previous[0] == record:
                html = previous[1]
            else:
                if record.about and record.about not in about:
                    about[record.about] = markdown_html(record.about, self.output)
                html = detail.render(
                    model=record,
                    root="../",
                    description=markdown_html(record.description, self.output)
                    if record.description
                    else "",
                    about=about.get(record.about, ""),
                    lineage=lineage_svg(record.lineage, f"Lineage of {record.title}")
                    if record.lineage is not None and record.lineage.nodes
                    else "",
                )
            rendered[slug] = (record, html)
            _write_if_changed(self.output / "models" / f"{slug}.html", _utf8(html), report.written)
        for slug in self._rendered.keys() - rendered.keys():
            (self.output / "models" / f"{slug}.html").unlink(missing_ok=True)
        self._rendered = rendered
        cards = [(record, slugs[record.key]) for record in records]
        tags = sorted({t for r in records for t in r.tags})
        frameworks = sorted({r.framework for r in records if r.framework})
        index = self._env.get_template("index.html").render(
            cards=cards, tags=tags, frameworks=frameworks, root=""
        )
        _write_if_changed(self.output / "index.html", _utf8(index), report.written)
        search = self._env.get_template("search-index.js").render(
            entries={slugs[r.key]: _search_text(r) for r in records}
        )
        _write_if_changed(self.output / "static" / "search-index.js", _utf8(search), report.written)
        return report

    def _write_static(self, written: list[Path]) -> None:
        static = resources.files("hubcore.site") / "static"
        for name in _STATIC:
            _write_if_changed(self.output / "static" / name, (static / name).read_bytes(), written)
        _write_if_changed(self.output / "static" / "pygments.css", pygments_css().encode(), written)
        for collector in self.collectors:
            if isinstance(collector, PagesCollector):
                self._copy_images(collector.folder / "images", written)

    def _copy_images(self, folder: Path, written: list[Path]) -> None:
        if not folder.is_dir():
            return
        for path in sorted(folder.iterdir()):
            if is_site_image(path, folder.parent):
                target = self.output / "images" / path.name
                try:
                    same = target.stat().st_size == path.stat().st_size and (
                        target.stat().st_mtime >= path.stat().st_mtime
                    )
                except OSError:
                    same = False
                if not same:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target)
                    written.append(target)


def _files_under(root: Path) -> Iterable[Path]:
    if root.is_file():
        yield root
        return
    for folder, dirs, files in os.walk(root):
        # hidden folders (.git) and caches change without changing the catalog
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
        for name in files:
            yield Path(folder) / name


def build_site(
    config: SiteConfig,
    *,
    output: Path | None = None,
    collectors: Sequence[Collector] | None = None,
) -> BuildReport:
    """Build the site of *config* once (see :class:`SiteBuilder`)."""
    return SiteBuilder(config, output=output, collectors=collectors).build()
