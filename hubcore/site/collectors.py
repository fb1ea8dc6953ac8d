"""Collectors: each turns one kind of input into :class:`~hubcore.site.model.CatalogModel`
records. The site renders records and nothing else, so a new input is a new collector.

* :class:`HubconfCollector` -- one record per entrypoint of a hub repository (any reference
  hubcore opens), from static discovery: no repository code runs.
* :class:`PagesCollector` -- one record per hand-written template-format page.
* Model packages and the registry plug in through the same :class:`Collector` protocol (see
  :func:`register_collector_kind` and docs/catalog.md for the fields they fill).
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from hubcore import api
from hubcore.errors import ConfigError, HubError
from hubcore.repo.discovery import Entrypoint, HubconfInfo
from hubcore.site.config import SiteConfig
from hubcore.site.model import CatalogModel, EntrypointRow, Snippet, WeightRow
from hubcore.site.pages import (
    PLACEHOLDER_IMAGES,
    TemplatePage,
    code_blocks,
    hub_calls,
    iter_pages,
    page_image,
    read_page,
)
from hubcore.sources import RepoRef, Snapshot

__all__ = [
    "Collector",
    "HubconfCollector",
    "PagesCollector",
    "collectors_for",
    "register_collector_kind",
    "repository_identity",
]

logger = logging.getLogger(__name__)

#: Import names of frameworks, and how the catalog names them.
FRAMEWORKS = {
    "torch": "PyTorch",
    "torchvision": "PyTorch",
    "megengine": "MegEngine",
    "tensorflow": "TensorFlow",
    "jax": "JAX",
    "flax": "JAX",
    "paddle": "PaddlePaddle",
    "mindspore": "MindSpore",
    "oneflow": "OneFlow",
}


@runtime_checkable
class Collector(Protocol):
    """Produces catalog records from one input.

    ``collect`` returns the records (it may raise a :class:`~hubcore.errors.HubError`, which
    the build reports with the input's name and goes on); ``watched`` lists the local files
    or folders whose change means the records must be collected again (``serve`` polls them).
    ``name`` is shown in messages.
    """

    name: str

    def collect(self) -> list[CatalogModel]:
        """The records of this input."""
        ...

    def watched(self) -> list[Path]:
        """Local paths whose change calls for a new :meth:`collect`."""
        ...


def repository_identity(reference: str) -> str:
    """The identity of a repository reference (no network), or the text itself when it
    cannot be parsed: pages may name repositories hubcore has no source for."""
    try:
        return api.parse_repo(reference).identity
    except HubError:
        return reference


# -- hub repositories -------------------------------------------------------------------------


def local_folder(reference: str) -> list[Path]:
    """``[the folder]`` when *reference* names a local folder (what ``serve`` watches), else
    ``[]``."""
    try:
        ref = api.parse_repo(reference)
    except HubError:
        return []
    return [Path(ref.repo)] if ref.source == "local" else []


class HubconfCollector:
    """One record per resolved entrypoint of the repository *reference*."""

    def __init__(self, reference: str) -> None:
        self.reference = reference
        self.name = reference
        self._root: Path | None = None

    def watched(self) -> list[Path]:
        """The repository folder, when it is a live local folder."""
        return local_folder(self.reference)

    def collect(self) -> list[CatalogModel]:
        """Open the repository, discover it statically and describe each entrypoint."""
        snapshot = api.open_repo(self.reference)
        info = api.discover(snapshot)
        readme = _readme(snapshot.root)
        records = []
        for entry in info.entrypoints.values():
            if entry.resolved:
                records.append(self._record(snapshot, info, entry, readme))
        return records

    def _record(
        self, snapshot: Snapshot, info: HubconfInfo, entry: Entrypoint, readme: str
    ) -> CatalogModel:
        ref = snapshot.ref
        doc = (entry.doc or "").strip()
        summary = doc.split("\n\n")[0].replace("\n", " ").strip()
        framework = entry_framework(snapshot.root, entry)
        row = entrypoint_row(entry, snapshot.root)
        pinned = bool(row.weights) and all(w.sha256 for w in row.weights)
        badges = []
        if pinned:
            badges.append("pinned weights")
        if len(row.weights) > 1:
            badges.append(f"{len(row.weights)} weight variants")
        about = "## About the repository\n\n" + _demote_headings(readme) if readme else ""
        links = {}
        github = github_id(ref)
        if github:
            links["GitHub"] = f"https://github.com/{github}"
        return CatalogModel(
            key=f"{ref.identity}#{entry.name}",
            title=entry.name,
            summary=summary,
            origin=ref.text or ref.identity,
            kind="hubconf",
            framework=framework,
            description=doc,
            about=about,
            snippets=tuple(snippets_for(ref, entry.name, framework, bool(row.weights))),
            entrypoints=(row,),
            dependencies=info.dependencies,
            links=links,
            badges=tuple(badges),
            covers=((ref.identity, entry.name),),
            facts={"repository": ref.text or ref.identity, "defined in": entry.defined_in or ""},
            page_name="-".join([*ref.repo.replace("\\", "/").split("/")[-2:], entry.name]),
        )


def entrypoint_row(entry: Entrypoint, root: Path | None = None) -> EntrypointRow:
    """The table row of *entry*: signature, docstring and weight variants (with the size of
    weight files shipped in the repository folder *root*)."""
    weights: list[WeightRow] = []
    note = ""
    if entry.weights is not None and not entry.weights.known:
        note = "pretrained weights declared, but not as literals (known only when run)"
    elif entry.weights is not None:
        for name, spec in entry.weights.variants.items():
            size = spec.size
            if size is None and root is not None and not urlsplit(spec.url).scheme:
                shipped = root / spec.url
                if shipped.is_file():
                    size = shipped.stat().st_size
            weights.append(
                WeightRow(
                    name=name,
                    url=spec.url,
                    sha256=spec.sha256,
                    size=size,
                    default=name == entry.weights.default,
                )
            )
    return EntrypointRow(
        name=entry.name,
        signature=entry.signature or "",
        doc=(entry.doc or "").strip(),
        weights=tuple(weights),
        note=note,
    )


def github_id(ref: RepoRef) -> str:
    """``owner/name`` of a github.com reference, else ``""``."""
    if ref.source != "github" or not ref.identity.startswith("github:https://github.com/"):
        return ""
    return ref.identity.removeprefix("github:https://github.com/")


def snippets_for(ref: RepoRef, entry: str, framework: str, pretrained: bool) -> list[Snippet]:
    """How to load *entry*: with hubcore always, and with the framework's own hub API when
    that API can reach the repository (GitHub; torch.hub also local folders)."""
    extra = ", pretrained=True" if pretrained else ""
    text = ref.text or ref.repo
    snippets = [
        Snippet("hubcore", f"import hubcore\n\nmodel = hubcore.load({text!r}, {entry!r}{extra})")
    ]
    github = github_id(ref)
    target = f"{github}:{ref.revision}" if github and ref.revision else github
    if framework == "PyTorch" and (github or ref.source == "local"):
        local = ", source='local'" if not github else ""
        where = target if github else ref.repo
        snippets.append(
            Snippet(
                "torch.hub",
                f"import torch\n\nmodel = torch.hub.load({where!r}, {entry!r}{local}{extra})",
            )
        )
    if framework == "MegEngine" and github:
        snippets.append(
            Snippet(
                "megengine.hub",
                f"import megengine.hub\n\nmodel = megengine.hub.load({target!r}, {entry!r}{extra})",
            )
        )
    return snippets


def entry_framework(root: Path, entry: Entrypoint) -> str:
    """The framework *entry* needs, read statically: the imports in its body and in the
    repository modules those imports name (one level), e.g. ``from models.torch_nets import
    X`` where ``models/torch_nets.py`` imports torch. ``""`` when none is found."""
    if not entry.defined_in:
        return ""
    file_text = entry.defined_in.rpartition(":")[0]
    modules = _definitions(root / file_text).get(entry.name)
    if modules is None:
        return ""
    for module in modules:
        if module.partition(".")[0] in FRAMEWORKS:
            return FRAMEWORKS[module.partition(".")[0]]
    for module in modules:
        local = _local_module(root, module)
        if local is None:
            continue
        for name in _module_imports(local):
            if name.partition(".")[0] in FRAMEWORKS:
                return FRAMEWORKS[name.partition(".")[0]]
    return ""


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _definitions(path: Path) -> dict[str, tuple[str, ...]]:
    """The modules each function or class of *path* imports (the first definition of a
    name wins), parsed once per file version: a hubconf of 10,000 entrypoints is read
    once, not once per entrypoint."""
    return _definitions_cached(path, _stamp(path))


@lru_cache(maxsize=32)
def _definitions_cached(path: Path, stamp: tuple[int, int] | None) -> dict[str, tuple[str, ...]]:
    tree = _parse(path) if stamp is not None else None
    found: dict[str, tuple[str, ...]] = {}
    for node in ast.walk(tree) if tree is not None else ():
        is_definition = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        if is_definition and node.name not in found:  # type: ignore[attr-defined]
            found[node.name] = tuple(_imported_modules(node))  # type: ignore[attr-defined]
    return found


def _module_imports(path: Path) -> tuple[str, ...]:
    return _module_imports_cached(path, _stamp(path))


@lru_cache(maxsize=256)
def _module_imports_cached(path: Path, stamp: tuple[int, int] | None) -> tuple[str, ...]:
    tree = _parse(path) if stamp is not None else None
    return tuple(_imported_modules(tree)) if tree is not None else ()


def _parse(path: Path) -> ast.AST | None:
    try:
        if path.stat().st_size > 1 << 20:
            return None
        return ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _imported_modules(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return names


def _local_module(root: Path, module: str) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file() and candidate.resolve().is_relative_to(root.resolve()):
            return candidate
    return None


#: The most of a README shown on the pages (read from the file's start; the rest is cut).
README_LIMIT = 100_000


def _readme(root: Path) -> str:
    for name in ("README.md", "readme.md", "README.MD", "Readme.md"):
        path = root / name
        if path.is_file():
            try:
                with path.open("rb") as fh:  # never the whole of a huge file
                    data = fh.read(README_LIMIT + 1)
            except OSError:
                return ""
            text = data[:README_LIMIT].decode("utf-8", errors="replace")
            if len(data) > README_LIMIT:
                text += "\n\n*(The README is longer; the rest is in the repository.)*\n"
            return text
    return ""


def _demote_headings(markdown: str) -> str:
    # the README's own headings sit below the page's "About the repository"
    return re.sub(r"^(#{1,5}) ", r"\1## ", markdown, flags=re.M)


# -- hand-written pages -----------------------------------------------------------------------


class PagesCollector:
    """One record per template-format page of *folder* (``images/`` beside them)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.absolute()
        self.name = str(folder)
        #: Pages that could not be read on the last collect, with the reason.
        self.problems: dict[Path, str] = {}

    def watched(self) -> list[Path]:
        """The pages folder."""
        return [self.folder]

    def collect(self) -> list[CatalogModel]:
        """Read every page; a page that cannot be read is skipped and noted in
        :attr:`problems` (``hubcore site check`` explains it)."""
        if not self.folder.is_dir():
            raise ConfigError(f"the pages folder {self.folder} does not exist")
        self.problems = {}
        records = []
        for path in iter_pages(self.folder):
            record = self.collect_one(path)
            if record is not None:
                records.append(record)
        return records

    def collect_one(self, path: Path) -> CatalogModel | None:
        """The record of one page, or ``None`` (noted in :attr:`problems`) when unreadable
        or gone."""
        self.problems.pop(path, None)
        if not path.is_file():
            return None
        try:
            return page_record(read_page(path), self.folder)
        except HubError as exc:
            self.problems[path] = str(exc)
            logger.warning("%s", exc)
            return None


def page_record(page: TemplatePage, folder: Path) -> CatalogModel:
    """The record of a parsed *page*: front matter as the card, body as the description;
    the hub calls of its python blocks say which entrypoints it documents."""
    calls = [call for block in _python_blocks(page.body) for call in hub_calls(block)]
    covers = tuple(dict.fromkeys((repository_identity(c.repo), c.entry) for c in calls))
    framework = ""
    apis = {c.api for c in calls}
    if any(a.startswith("torch.") for a in apis):
        framework = "PyTorch"
    elif any(a.startswith("megengine.") for a in apis):
        framework = "MegEngine"
    images = tuple(
        _image_path(page.text(f), folder)
        for f in ("featured_image_1", "featured_image_2")
        if _image_path(page.text(f), folder)
    )
    links = {}
    if page.text("github-link"):
        links["GitHub"] = page.text("github-link")
    if page.text("demo-model-link"):
        links["Demo"] = page.text("demo-model-link")
    title = page.text("title") or page.path.stem
    return CatalogModel(
        key=f"page:{page.path.name}",
        title=title,
        summary=page.text("summary"),
        origin=page.path.name,
        kind="page",
        tags=page.tags,
        framework=framework,
        author=page.text("author"),
        image=_image_path(page.text("image"), folder),
        image_alt=f"{title} illustration",
        featured_images=images,
        description=page.body,
        links=links,
        covers=covers,
        order=page.order,
        accelerator=page.text("accelerator"),
        demo_link=page.text("demo-model-link"),
        page_name=page.path.stem,
        facts={
            k: v
            for k, v in (("category", page.text("category")), ("github-id", page.text("github-id")))
            if v
        },
    )


def _python_blocks(body: str) -> Iterable[str]:
    return [b.code for b in code_blocks(body) if b.language in ("python", "py", "python3")]


def _image_path(value: str, folder: Path) -> str:
    """``images/<name>`` when the page's image is one the site copies, else ``""``."""
    if value in PLACEHOLDER_IMAGES:
        return ""
    path = page_image(value, folder)
    return f"images/{path.name}" if path is not None else ""


# -- collectors named in the configuration ----------------------------------------------------


def _package_collector(entry: str) -> Collector:
    from hubcore.site.package_collector import PackageCollector  # it imports this module

    return PackageCollector(entry)


_KINDS: dict[str, Callable[[str], Collector]] = {"packages": _package_collector}


def register_collector_kind(kind: str, factory: Callable[[str], Collector]) -> None:
    """Make ``[site] <kind> = [...]`` entries (``"packages"``, ``"registries"``) build
    collectors with *factory* (called with each entry). The package and registry modules
    register theirs; until they do, such entries are a :class:`ConfigError`."""
    _KINDS[kind] = factory


def collectors_for(config: SiteConfig) -> list[Collector]:
    """The collectors *config* asks for, in the order: repositories, packages, registries,
    pages (so hand-written pages are collected last and win over generated ones)."""
    found: list[Collector] = [HubconfCollector(ref) for ref in config.repositories]
    for kind, entries in (("packages", config.packages), ("registries", config.registries)):
        found += _configured(kind, entries)
    if config.pages is not None:
        found.append(PagesCollector(config.pages))
    return found


def _configured(kind: str, entries: Sequence[str]) -> list[Collector]:
    if not entries:
        return []
    factory = _KINDS.get(kind)
    if factory is None:
        raise ConfigError(
            f"[site] {kind} is set, but this installation of hubcore has no {kind} "
            "collector; remove the entries or upgrade hubcore"
        )
    return [factory(entry) for entry in entries]


def _registry_collector(entry: str) -> Collector:
    from hubcore.site.registry_collector import RegistryCollector  # the registry, on demand

    return RegistryCollector(entry)


register_collector_kind("registries", _registry_collector)
