"""Markdown to HTML (markdown-it-py, CommonMark plus tables) with Pygments highlighting, and
the Jinja2 environment of the site's templates.

Pages are rendered for a page that sits one folder below the site root (``models/x.html``):
relative links and images in a page body get ``../`` so that they still point at the site
root's ``images/``. Images from outside the site become links, so that a built site never
makes a request outside itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import jinja2
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup, escape
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

__all__ = ["PYGMENTS_STYLE", "environment", "highlight_code", "markdown_html", "pygments_css"]

#: A Pygments style whose every token colour has at least 4.5:1 contrast on its background.
PYGMENTS_STYLE = "xcode"
_FORMATTER = HtmlFormatter(style=PYGMENTS_STYLE, nowrap=True)
_EXTERNAL_SRC = re.compile(r"""\s(src|srcset)\s*=\s*(["']?)(?:https?:)?//[^"'\s>]*\2""", re.I)


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


def _is_external(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.scheme or parts.netloc)


def _is_site_relative(url: str) -> bool:
    return bool(url) and not _is_external(url) and not url.startswith(("/", "#", "?"))


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
    if _is_external(src):
        # shown as a link: the page fetches nothing from other sites
        return f'<a class="external-image" href="{escape(src)}">{escape(alt or src)}</a>'
    if _is_site_relative(src):
        token.attrSet("src", "../" + src)
    token.attrSet("loading", "lazy")
    return str(self.image(tokens, idx, options, env))


def _link_open(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    href = str(token.attrGet("href") or "")
    if _is_site_relative(href):
        token.attrSet("href", "../" + href)
    return str(self.renderToken(tokens, idx, options, env))


def _html(original: str) -> str:
    return _EXTERNAL_SRC.sub(lambda m: f' data-external-{m.group(1).lower()}=""', original)


def _html_block(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return _html(tokens[idx].content)


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    md.add_render_rule("fence", _fence)
    md.add_render_rule("code_block", _fence)
    md.add_render_rule("image", _image)
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("html_block", _html_block)
    md.add_render_rule("html_inline", _html_block)
    return md


def markdown_html(text: str) -> str:
    """*text* (CommonMark, raw HTML allowed as in Jekyll pages) as HTML for a model page."""
    return str(_markdown().render(text))


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
