"""Hand-written model pages in the PyTorch hub's ``template.md`` format.

A page is a Markdown file whose YAML front matter holds ``layout``, ``background-class``,
``body-class``, ``category``, ``title``, ``summary``, ``image``, ``author``, ``tags``,
``github-link``, ``github-id``, ``featured_image_1``, ``featured_image_2``, ``accelerator``,
``order`` and ``demo-model-link``; the body describes the model and shows how to load it in
python code blocks. Images live in ``images/`` next to the pages. Pages written for the
PyTorch hub and its translations build unchanged.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import frontmatter
import yaml

from hubcore.errors import HubError

__all__ = [
    "FIELDS",
    "IMAGE_SUFFIXES",
    "REQUIRED_FIELDS",
    "HubCall",
    "PageError",
    "TemplatePage",
    "code_blocks",
    "hub_calls",
    "is_site_image",
    "page_image",
    "read_page",
]

#: Every front-matter field of the format, in the template's order.
FIELDS: tuple[str, ...] = (
    "layout",
    "background-class",
    "body-class",
    "category",
    "title",
    "summary",
    "image",
    "author",
    "tags",
    "github-link",
    "github-id",
    "featured_image_1",
    "featured_image_2",
    "accelerator",
    "order",
    "demo-model-link",
)
#: The fields a page must set (the PyTorch hub's sanity check requires the same ones).
REQUIRED_FIELDS: tuple[str, ...] = (
    "title",
    "summary",
    "image",
    "author",
    "tags",
    "github-link",
    "category",
)
#: Image values that mean "no image of my own".
PLACEHOLDER_IMAGES = frozenset({"", "no-image", "pytorch-logo.png"})

_FRONT = re.compile(r"\A(?:\ufeff)?---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
_COMMENT_LINE = re.compile(r"^\s*<!--.*?-->\s*$", re.M)
_FENCE = re.compile(
    r"^(?P<indent>[ \t]{0,3})(?P<fence>```+|~~~+)[ \t]*(?P<info>[^\n`]*)\n(?P<code>.*?)"
    r"^(?P=indent)(?P=fence)[ \t]*$",
    re.S | re.M,
)


class PageError(HubError, ValueError):
    """A page cannot be read (no front matter, or front matter that is not YAML)."""


@attrs.frozen
class TemplatePage:
    """A parsed page: its file, front matter (as written) and Markdown body."""

    path: Path
    meta: Mapping[str, Any]
    body: str
    #: How many lines of the file come before the body (to turn body lines into file lines).
    body_offset: int = 0

    def text(self, field: str) -> str:
        """A front-matter value as text (``""`` when absent, empty or not a single value:
        a list or mapping is no title, and YAML aliases could make its text enormous)."""
        return _scalar_text(self.meta.get(field))

    def is_scalar(self, field: str) -> bool:
        """Whether *field* is absent or a single value (text, number, date), as the
        template's fields (other than ``tags``) must be."""
        return not isinstance(self.meta.get(field), _COMPOUND)

    @property
    def tags(self) -> tuple[str, ...]:
        """The ``tags`` field as a tuple (a list, or one tag, or ``[a, b]`` written as text)."""
        value = self.meta.get("tags")
        if value is None:
            return ()
        if isinstance(value, str):
            items = value.strip().strip("[]").split(",")
        elif isinstance(value, list):
            items = [_scalar_text(v) for v in value]
        else:
            items = [_scalar_text(value)]
        return tuple(t.strip() for t in items if t.strip())

    @property
    def order(self) -> int | None:
        """The ``order`` field as a number, when it is one."""
        value = self.meta.get("order")
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return None
        try:
            return int(value)
        except (TypeError, ValueError, OverflowError):  # "x", nan, .inf
            return None


_COMPOUND = (list, dict, set, tuple)


def _scalar_text(value: object) -> str:
    if value is None or isinstance(value, _COMPOUND):
        return ""
    return str(value).strip()


def read_page(path: Path) -> TemplatePage:
    """Parse the page at *path* (UTF-8). Raises :class:`PageError` naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PageError(f"{path}: not UTF-8 text ({exc.reason}); save the page as UTF-8") from None
    return parse_page(text, path)


def parse_page(text: str, path: Path) -> TemplatePage:
    """Parse the page *text* (read from *path*, which messages name). Raises
    :class:`PageError`."""
    match = _FRONT.match(text)
    if match is None:
        raise PageError(
            f"{path}: no front matter; a page starts with a '---' line, the fields, and '---'"
        )
    # HTML comments are the template's own annotations, not YAML
    header = _COMMENT_LINE.sub("", match.group(1))
    try:
        post = frontmatter.loads(f"---\n{header}\n---\n")
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (front matter line {where.line + 1})" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PageError(f"{path}: the front matter is not valid YAML{line}: {problem}") from None
    if not isinstance(post.metadata, dict):
        raise PageError(f"{path}: the front matter must be 'field: value' lines")
    return TemplatePage(
        path=path,
        meta=dict(post.metadata),
        body=text[match.end() :],
        body_offset=text.count("\n", 0, match.end()),
    )


@attrs.frozen
class CodeBlock:
    """A fenced code block of a page body."""

    language: str
    code: str
    line: int  # 1-based line of the opening fence within the body


def code_blocks(body: str) -> Iterator[CodeBlock]:
    """The fenced code blocks of a Markdown *body*, in order."""
    for match in _FENCE.finditer(body):
        language = (match.group("info").split() or [""])[0].lower()
        line = body.count("\n", 0, match.start()) + 1
        yield CodeBlock(language=language, code=match.group("code"), line=line)


def python_source(code: str) -> str:
    """*code* with notebook-only lines (``!pip install``, ``%matplotlib``) commented out, as
    the PyTorch hub's CI runs pages converted to notebooks."""
    return "\n".join(
        f"# {line}" if line.lstrip().startswith(("!", "%")) else line for line in code.split("\n")
    )


@attrs.frozen
class HubCall:
    """A ``*.hub.load`` / ``hubcore.load``-style call with literal repository and entry."""

    api: str  # "torch.hub.load", "hubcore.load", ...
    repo: str
    entry: str
    line: int


def hub_calls(code: str) -> list[HubCall]:
    """The hub calls in python *code* whose first two arguments are string literals
    (``torch.hub.load('owner/repo', 'entry', ...)``, ``hubcore.load(...)``,
    ``megengine.hub.load(...)``, ``hub.load(...)``). Code that does not parse has none."""
    try:
        tree = ast.parse(python_source(code))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        dotted = _dotted(node.func)
        if dotted is None or not _is_hub_api(dotted):
            continue
        args = [a.value for a in node.args[:2] if isinstance(a, ast.Constant)]
        if len(args) == 2 and all(isinstance(a, str) for a in args):
            found.append(
                HubCall(api=dotted, repo=str(args[0]), entry=str(args[1]), line=node.lineno)
            )
    return found


def _is_hub_api(dotted: str) -> bool:
    head, _, last = dotted.rpartition(".")
    return last in ("load", "help") and (head == "hubcore" or head.split(".")[-1] == "hub")


def _dotted(node: ast.expr) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


#: File suffixes of the images a pages folder may ship.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".avif"})


def is_site_image(path: Path, pages: Path) -> bool:
    """Whether *path* is an image the site copies from the pages folder *pages*: a regular
    file (not a symlink) with an image suffix, directly in ``images/``, which is itself a
    folder inside *pages* (a symlink out of the folder would publish what it points at)."""
    images = pages / "images"
    if path.parent != images or path.suffix.lower() not in IMAGE_SUFFIXES:
        return False
    if images.is_symlink() or path.is_symlink() or not path.is_file():
        return False
    return images.resolve().is_relative_to(pages.resolve())


def page_image(value: str, pages: Path) -> Path | None:
    """The file a page's image field (``x.png`` or ``images/x.png``) names in *pages*'
    ``images/``, or ``None`` when it names no image there (or names one elsewhere)."""
    name = value.removeprefix("images/")
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    path = pages / "images" / name
    return path if is_site_image(path, pages) else None


def iter_pages(folder: Path) -> Iterator[Path]:
    """The page files of *folder*: its ``*.md`` files except ``README.md``, sorted."""
    for path in sorted(folder.glob("*.md")):
        if path.name.lower() != "readme.md" and path.is_file():
            yield path
