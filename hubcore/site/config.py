"""The catalog's configuration: the ``[site]`` table of a project's ``hubcore.toml``::

    [site]
    title = "Acme model hub"
    repositories = ["./examples/hub", "acme/models:v2"]   # any reference hubcore opens
    packages = ["./packages/tinynet"]                     # model package folders or URLs
    registries = ["s3://team-registry/"]                  # registry URLs
    pages = "pages"                                       # template-format pages (+ images/)
    output = "_site"
    allowed_tags = ["vision", "nlp", "generative", "audio", "scriptable"]

Relative paths are read from the folder of the file. Every key is optional; the command line
adds to (or overrides) what the file says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from hubcore import settings
from hubcore.errors import ConfigError

__all__ = ["DEFAULT_TAGS", "SiteConfig", "load_site_config"]

#: The PyTorch hub's tag set, the default of ``allowed_tags``.
DEFAULT_TAGS: tuple[str, ...] = ("vision", "nlp", "generative", "audio", "scriptable")
_KEYS = {
    "title",
    "repositories",
    "packages",
    "registries",
    "pages",
    "output",
    "allowed_tags",
    "base_url",
}


@attrs.frozen
class SiteConfig:
    """What to put in the catalog and where to write it."""

    title: str = "Model hub"
    repositories: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    registries: tuple[str, ...] = ()
    pages: Path | None = None
    output: Path = Path("_site")
    allowed_tags: tuple[str, ...] = DEFAULT_TAGS
    #: Folder the configuration was read from; relative references resolve against it.
    root: Path = attrs.field(factory=Path.cwd)

    def with_overrides(
        self,
        *,
        repositories: Sequence[str] = (),
        packages: Sequence[str] = (),
        registries: Sequence[str] = (),
        pages: Path | None = None,
        output: Path | None = None,
        title: str | None = None,
    ) -> SiteConfig:
        """This configuration with command-line additions (lists) and replacements."""
        return attrs.evolve(
            self,
            repositories=self.repositories + tuple(repositories),
            packages=self.packages + tuple(packages),
            registries=self.registries + tuple(registries),
            pages=pages if pages is not None else self.pages,
            output=output if output is not None else self.output,
            title=title if title is not None else self.title,
        )


def load_site_config(path: Path | None = None) -> SiteConfig:
    """Read ``[site]`` from *path* (default ``./hubcore.toml`` when it exists).

    A missing default file gives the defaults; a named file that is missing, unreadable or
    holds a malformed ``[site]`` table is a :class:`~hubcore.errors.ConfigError` (the
    file's reading and its errors are :func:`hubcore.settings.project_config`'s).
    """
    document = settings.project_config(path)
    if not document.found:
        return SiteConfig()
    return _from_table(document.table("site"), document.path.parent, str(document.path))


def _from_table(table: Mapping[str, Any], root: Path, where: str) -> SiteConfig:
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ConfigError(
            f"[site] in {where}: unknown key(s) {', '.join(unknown)}; "
            f"known keys: {', '.join(sorted(_KEYS))}"
        )

    def strings(key: str) -> tuple[str, ...] | None:
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"[site] in {where}: {key} must be a list of strings")
        return tuple(value)

    def text(key: str) -> str | None:
        value = table.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"[site] in {where}: {key} must be a string")
        return value

    def local(value: str | None) -> Path | None:
        return None if value is None else (root / Path(value).expanduser())

    def reference(ref: str) -> str:
        # "./x" and "../x" are folders next to the file, wherever the command runs
        return str(root / ref) if ref.startswith(("./", "../")) else ref

    pages = local(text("pages"))
    output = local(text("output"))
    return SiteConfig(
        title=text("title") or "Model hub",
        repositories=tuple(reference(r) for r in strings("repositories") or ()),
        packages=tuple(reference(r) for r in strings("packages") or ()),
        registries=tuple(reference(r) for r in strings("registries") or ()),
        pages=pages,
        output=output or root / "_site",
        allowed_tags=strings("allowed_tags") or DEFAULT_TAGS,
        root=root,
    )
