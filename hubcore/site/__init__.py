"""The catalog site: model pages built from hub repositories, model packages, the registry
and hand-written template-format pages (``hubcore site build|serve|new|check``).

Needs the ``site`` extra (``pip install hubcore[site]``: Jinja2, markdown-it-py, nh3, Pygments,
python-frontmatter); the rest of hubcore does not import this package.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from hubcore.errors import DependencyError

if TYPE_CHECKING:
    from hubcore.site.build import BuildReport, SiteBuilder, build_site, merge_records
    from hubcore.site.collectors import (
        Collector,
        HubconfCollector,
        PagesCollector,
        collectors_for,
        register_collector_kind,
    )
    from hubcore.site.config import SiteConfig, load_site_config
    from hubcore.site.model import (
        CatalogModel,
        EntrypointRow,
        FileRow,
        HistoryRow,
        LineageEdge,
        LineageGraph,
        LineageNode,
        Snippet,
        VersionRow,
        WeightRow,
    )

_WHERE = {
    "BuildReport": "build",
    "SiteBuilder": "build",
    "build_site": "build",
    "merge_records": "build",
    "Collector": "collectors",
    "HubconfCollector": "collectors",
    "PagesCollector": "collectors",
    "collectors_for": "collectors",
    "register_collector_kind": "collectors",
    "SiteConfig": "config",
    "load_site_config": "config",
    **dict.fromkeys(
        [
            "CatalogModel",
            "EntrypointRow",
            "FileRow",
            "HistoryRow",
            "LineageEdge",
            "LineageGraph",
            "LineageNode",
            "Snippet",
            "VersionRow",
            "WeightRow",
        ],
        "model",
    ),
}
__all__ = [
    "EXTRA",
    "BuildReport",
    "CatalogModel",
    "Collector",
    "EntrypointRow",
    "FileRow",
    "HistoryRow",
    "HubconfCollector",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "PagesCollector",
    "SiteBuilder",
    "SiteConfig",
    "Snippet",
    "VersionRow",
    "WeightRow",
    "build_site",
    "collectors_for",
    "load_site_config",
    "merge_records",
    "register_collector_kind",
    "require_extra",
]
#: Import names of the ``site`` extra's libraries, and their distributions.
EXTRA = {
    "jinja2": "Jinja2",
    "markdown_it": "markdown-it-py",
    "nh3": "nh3",
    "pygments": "Pygments",
    "frontmatter": "python-frontmatter",
    "yaml": "PyYAML",
}


def require_extra() -> None:
    """Raise :class:`~hubcore.errors.DependencyError` naming ``pip install 'hubcore[site]'``
    when a library of the ``site`` extra is missing."""
    missing = [dist for module, dist in EXTRA.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise DependencyError(
            "the catalog site (hubcore site)",
            [f"{', '.join(missing)} (pip install 'hubcore[site]')"],
        )


def __getattr__(name: str) -> Any:
    # lazy, so `hubcore site --help` and the core work without the extra installed
    if name not in _WHERE:
        raise AttributeError(f"module 'hubcore.site' has no attribute {name!r}")
    require_extra()
    return getattr(importlib.import_module(f"hubcore.site.{_WHERE[name]}"), name)
