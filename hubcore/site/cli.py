"""``hubcore site``: build, serve, scaffold and check the catalog site."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hubcore.errors import ConfigError
from hubcore.site import require_extra
from hubcore.site.config import SiteConfig, load_site_config

if TYPE_CHECKING:
    from hubcore.site.build import BuildReport, SiteBuilder

__all__ = ["site_group"]

_CONFIG = click.option(
    "-c",
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Project file with a [site] table (default: ./hubcore.toml when present).",
)
_INPUTS = [
    click.option("--repo", "repos", multiple=True, help="A hub repository to list (repeatable)."),
    click.option(
        "--package", "packages", multiple=True, help="A model package to list (repeatable)."
    ),
    click.option(
        "--pages",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Folder of template-format pages (with images/).",
    ),
    click.option("--title", default=None, help="The site's title."),
]


def _inputs(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_INPUTS):
        fn = option(fn)
    return fn


def _config(
    config_file: Path | None,
    repos: tuple[str, ...] = (),
    packages: tuple[str, ...] = (),
    pages: Path | None = None,
    title: str | None = None,
    output: Path | None = None,
) -> SiteConfig:
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"the configuration file {config_file} does not exist")
    config = load_site_config(config_file).with_overrides(
        repositories=repos, packages=packages, pages=pages, output=output, title=title
    )
    if not (config.repositories or config.packages or config.registries or config.pages):
        raise click.UsageError(
            "nothing to catalog: name inputs in the [site] table of hubcore.toml, or pass "
            "--repo / --package / --pages"
        )
    return config


def _report(report: BuildReport, *, verb: str = "built") -> None:
    for problem in report.problems:
        click.echo(f"warning: {problem}", err=True)
    click.echo(
        f"{verb} {report.models} model page(s) in {report.seconds:.2f} s "
        f"({len(report.written)} file(s) written)"
    )


def _builder(config: SiteConfig) -> SiteBuilder:
    require_extra()
    from hubcore.site.build import SiteBuilder

    return SiteBuilder(config)


@click.group("site")
def site_group() -> None:
    """Build a catalog site from hub repositories, packages, the registry and pages."""


@site_group.command("build")
@_CONFIG
@_inputs
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (default: [site] output, or ./_site).",
)
def build_command(
    config_file: Path | None,
    repos: tuple[str, ...],
    packages: tuple[str, ...],
    pages: Path | None,
    title: str | None,
    output: Path | None,
) -> None:
    """Write the static site (relative links: open it from disk or serve it anywhere) and
    print the path of its index page."""
    config = _config(config_file, repos, packages, pages, title, output)
    report = _builder(config).build()
    _report(report)
    click.echo(str(report.index))


@site_group.command("serve")
@_CONFIG
@_inputs
@click.option(
    "--port",
    default=4000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port on 127.0.0.1 (0: any free port).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder (default: [site] output, or ./_site).",
)
def serve_command(
    config_file: Path | None,
    repos: tuple[str, ...],
    packages: tuple[str, ...],
    pages: Path | None,
    title: str | None,
    port: int,
    output: Path | None,
) -> None:
    """Build, serve on http://127.0.0.1:PORT/hub/ and rebuild when an input changes (Ctrl-C
    stops)."""
    from hubcore.site.serve import SiteServer

    config = _config(config_file, repos, packages, pages, title, output)
    builder = _builder(config)
    _report(builder.build())
    try:
        server = SiteServer(builder, port, on_rebuild=lambda r: _report(r, verb="rebuilt"))
    except OSError as exc:
        raise ConfigError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror}; try --port") from None
    with server:
        click.echo(f"serving {server.url} (Ctrl-C stops)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            click.echo("stopped")


@site_group.command("new")
@click.argument("ref")
@click.argument("entry")
@click.option(
    "-o",
    "--pages",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to write the page into (default: [site] pages, or ./pages).",
)
@click.option("--tag", "tags", multiple=True, help="A tag for the page (repeatable).")
@click.option("--force", is_flag=True, help="Replace an existing page.")
@_CONFIG
def new_command(
    ref: str,
    entry: str,
    pages: Path | None,
    tags: tuple[str, ...],
    force: bool,
    config_file: Path | None,
) -> None:
    """Scaffold a template-format page for ENTRY of REF from its docstring, weights and
    snippets (runs no repository code), and print its path."""
    require_extra()
    from hubcore.site.scaffold import scaffold_page

    config = load_site_config(config_file)
    folder = pages or config.pages or Path("pages")
    allowed = set(config.allowed_tags)
    bad = [t for t in tags if t not in allowed]
    if bad:
        raise click.BadParameter(
            f"{', '.join(bad)} not allowed; use: {', '.join(config.allowed_tags)}",
            param_hint="--tag",
        )
    click.echo(str(scaffold_page(ref, entry, folder, tags=tags, force=force)))


def _positive_seconds(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        raise click.BadParameter("must be a positive number of seconds", ctx, param)
    return value


@site_group.command("check")
@_CONFIG
@click.option(
    "--pages",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of pages (default: [site] pages).",
)
@click.option("--repo", "repos", multiple=True, help="Also know this repository's entrypoints.")
@click.option("--run", is_flag=True, help="Also execute each page's python blocks.")
@click.option(
    "--timeout",
    default=600.0,
    show_default=True,
    callback=_positive_seconds,
    help="Seconds each page may run (--run).",
)
def check_command(
    config_file: Path | None,
    pages: Path | None,
    repos: tuple[str, ...],
    run: bool,
    timeout: float,
) -> None:
    """Check pages: required fields, allowed tags, images, file naming, python blocks that
    compile, entrypoints that exist; --run also executes them. Exits 1 on errors."""
    require_extra()
    from hubcore.site.check import check_pages, known_repositories

    config = load_site_config(config_file).with_overrides(repositories=repos, pages=pages)
    if config.pages is None:
        raise click.UsageError("name the pages folder: --pages DIR or [site] pages")
    if not config.pages.is_dir():
        raise ConfigError(f"the pages folder {config.pages} does not exist")
    known, problems = known_repositories(config.repositories)
    for problem in problems:
        click.echo(f"warning: {problem}", err=True)
    findings = check_pages(
        config.pages, allowed_tags=config.allowed_tags, repositories=known, run=run, timeout=timeout
    )
    for finding in findings:
        click.echo(str(finding))
    errors = sum(f.level == "error" for f in findings)
    click.echo(f"{errors} error(s), {len(findings) - errors} warning(s)")
    if errors:
        sys.exit(1)
