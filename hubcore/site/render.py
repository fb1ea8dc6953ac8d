"""Markdown to HTML (markdown-it-py, CommonMark plus tables) with Pygments highlighting, and
the Jinja2 environment of the site's templates.

Pages are rendered for a page that sits one folder below the site root (``models/x.html``):
relative links and images in a page body get ``../`` so that they still point at the site
root's ``images/``. Images from outside the site become links, so that a built site never
makes a request outside itself.

Descriptions come from other people (READMEs and docstrings of hub repositories, pages), so
the rendered HTML is cleaned by an allow-list sanitizer (nh3, the Ammonia library): no
script, style, frame, form or event handler survives, links keep only http, https and mailto
addresses, and an ``src`` survives only when it names a file inside the site.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jinja2
import nh3
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup, escape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

__all__ = [
    "PYGMENTS_STYLE",
    "body_references",
    "environment",
    "highlight_code",
    "is_external",
    "markdown_html",
    "outside_link",
    "pygments_css",
    "sanitize_html",
    "site_path",
    "valid_text",
]

#: A Pygments style whose every token colour has at least 4.5:1 contrast on its background.
PYGMENTS_STYLE = "xcode"
_FORMATTER = HtmlFormatter(style=PYGMENTS_STYLE, nowrap=True)
#: Schemes a link may use to leave the site (followed by the reader, never loaded by a page).
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
# what browsers ignore in a URL: surrounding spaces and controls, tabs and newlines anywhere
_URL_NOISE = re.compile(r"[\t\n\r]")
_URL_EDGES = "".join(chr(c) for c in range(0x21))
# Ammonia's safe tags, less the landmarks a page body must not add to the page's own
_TAGS = set(nh3.ALLOWED_TAGS) - {"nav", "header", "footer", "article", "aside"}
_ATTRIBUTES = {tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()}
for _tag, _names in {
    "a": {"class"},
    "img": {"loading"},
    "pre": {"class", "data-language"},
    "code": {"class"},
    "span": {"class"},
}.items():
    _ATTRIBUTES.setdefault(_tag, set()).update(_names)
_URL_ATTRIBUTES = frozenset({"href", "src", "cite", "longdesc"})


def pygments_css() -> str:
    """The highlighting style sheet (for ``.highlight`` blocks)."""
    return str(HtmlFormatter(style=PYGMENTS_STYLE).get_style_defs(".highlight"))


def highlight_code(code: str, language: str = "python") -> str:
    """*code* as highlighted HTML (the inside of a ``<pre><code>``)."""
    try:
        lexer = get_lexer_by_name(language or "text")
    except ClassNotFound:
        lexer = TextLexer()
    return str(highlight(code, lexer, _FORMATTER))


def _clean_url(url: str) -> str:
    # the URL as a browser reads it: backslashes are slashes in http(s) URLs
    return _URL_NOISE.sub("", url.strip(_URL_EDGES)).replace("\\", "/")


def _split(url: str) -> tuple[str, str, str] | None:
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed [IPv6 host
        return None
    return parts.scheme.lower(), parts.netloc, parts.path


def is_external(url: str) -> bool:
    """Whether *url* names another site (a scheme or a host, as a browser reads it)."""
    cleaned = _clean_url(url)
    parts = _split(cleaned)
    return parts is None or bool(parts[0] or parts[1]) or cleaned.startswith("//")


def site_path(url: str) -> str | None:
    """*url* as a path inside the site (``images/x.png``), normalized; ``None`` when it
    has a scheme or host, is absolute, or climbs out of the site with ``..``."""
    url = _clean_url(url)
    if not url or is_external(url) or url.startswith(("/", "#", "?")):
        return None
    parts = _split(url)
    path = posixpath.normpath(parts[2]) if parts is not None else "/"
    if path == ".." or path.startswith(("../", "/")):
        return None
    return url


def outside_link(url: str) -> str | None:
    """*url* when it is an http, https or mailto address (a link the reader may follow out
    of the site), else ``None``: ``javascript:``, ``data:`` and the like never become links."""
    cleaned = _clean_url(url)
    parts = _split(cleaned)
    return cleaned if parts is not None and parts[0] in LINK_SCHEMES else None


def _attribute_filter(site: Path | None) -> Callable[[str, str, str], str | None]:
    def keep(tag: str, attribute: str, value: str) -> str | None:
        if attribute not in _URL_ATTRIBUTES:
            return value
        if value.strip(_URL_EDGES).startswith("#") and attribute == "href":
            return value
        inside = site_path(value)
        if inside is not None:
            path = unquote(urlsplit(inside).path)
            if site is not None and not (site / path).is_file():
                return None  # e.g. a README's picture of its repository: not in the site
            # bodies are written relative to the site root; the page sits in models/
            return "../" + inside
        if attribute == "src":
            return None  # a page loads nothing from outside the site
        return outside_link(value)

    return keep


def valid_text(text: str) -> str:
    """*text* with what UTF-8 cannot hold (a lone surrogate, written ``"\\ud800"`` in a
    docstring) replaced by ``?``."""
    return text.encode("utf-8", errors="replace").decode("utf-8")


def sanitize_html(html: str, site: Path | None = None) -> str:
    """*html* reduced to safe markup for a model page (see the module docstring). With
    *site* (the output folder), a link or image inside the site must name a file there."""
    return str(
        nh3.clean(
            html,
            tags=_TAGS,
            clean_content_tags={"script", "style"},
            attributes=_ATTRIBUTES,
            attribute_filter=_attribute_filter(site),
            url_schemes=set(LINK_SCHEMES),
            link_rel="noopener noreferrer",
        )
    )


def _fence(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    language = token.info.strip().split(" ")[0] if token.info else ""
    label = f' data-language="{escape(language)}"' if language else ""
    return (
        f'<pre class="highlight"{label}><code>{highlight_code(token.content, language)}'
        "</code></pre>\n"
    )


def _image(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    alt = self.renderInlineAsText(token.children or [], options, env)
    if is_external(src):
        # shown as a link: the page fetches nothing from other sites
        return f'<a class="external-image" href="{escape(src)}">{escape(alt or src)}</a>'
    token.attrSet("loading", "lazy")
    return str(self.image(tokens, idx, options, env))


_RAW_IMG = re.compile(r"<img\b[^>]*>", re.I)


def _raw_image_links(html: str) -> str:
    # a raw <img> from another site becomes a link to it, as a Markdown image does
    def replace(match: re.Match[str]) -> str:
        parser = _RawAttributes()
        parser.feed(match.group(0))
        src = parser.attrs.get("src") or ""
        if not is_external(src):
            return match.group(0)
        text = parser.attrs.get("alt") or "image"
        return f'<a class="external-image" href="{escape(src)}">{escape(text)}</a>'

    return _RAW_IMG.sub(replace, html)


def _html_block(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return _raw_image_links(tokens[idx].content)


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    md.add_render_rule("fence", _fence)
    md.add_render_rule("code_block", _fence)
    md.add_render_rule("image", _image)
    md.add_render_rule("html_block", _html_block)
    md.add_render_rule("html_inline", _html_block)
    return md


def markdown_html(text: str, site: Path | None = None) -> str:
    """*text* (CommonMark, raw HTML allowed as in Jekyll pages) as sanitized HTML for a model
    page (see :func:`sanitize_html`)."""
    return sanitize_html(str(_markdown().render(valid_text(text))), site)


class _RawAttributes(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.attrs: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attrs = self.attrs or dict(attrs)


class _RawReferences(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.found.append(("image" if name == "src" else "link", value))


def body_references(text: str) -> list[tuple[int, str, str]]:
    """The images and links of a Markdown *text*, raw HTML included, as ``(line, kind,
    url)`` with 1-based lines of *text* and kind ``"image"`` or ``"link"``."""
    found: list[tuple[int, str, str]] = []
    for token in _markdown().parse(valid_text(text)):
        line = token.map[0] + 1 if token.map else 0
        if token.type == "html_block":
            found += [(line, kind, url) for kind, url in _raw_references(token.content)]
        for child in token.children or ():
            if child.type == "image":
                found.append((line, "image", str(child.attrGet("src") or "")))
            elif child.type == "link_open":
                found.append((line, "link", str(child.attrGet("href") or "")))
            elif child.type == "html_inline":
                found += [(line, kind, url) for kind, url in _raw_references(child.content)]
    return found


def _raw_references(html: str) -> list[tuple[str, str]]:
    parser = _RawReferences()
    parser.feed(html)
    parser.close()
    return parser.found


def environment(globals_: Mapping[str, Any] | None = None) -> jinja2.Environment:
    """The Jinja2 environment of the site's templates (autoescaped)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("hubcore.site", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["highlight"] = lambda code, language="python": Markup(
        highlight_code(code, language)
    )
    env.filters["size"] = human_size
    # records come from plugins and other people: a link or image is checked where it is shown
    env.filters["outside_link"] = lambda url: outside_link(str(url or "")) or ""
    env.filters["site_path"] = lambda url: site_path(str(url or "")) or ""
    env.globals.update(globals_ or {})
    return env


def human_size(size: int | None) -> str:
    """*size* bytes as text (``12.3 KiB``); ``""`` when unknown."""
    if size is None:
        return ""
    value, unit = float(size), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
