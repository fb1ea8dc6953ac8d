"""``hubcore registry ...``: the registry on the command line (``--json`` for machines)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from hubcore.registry.core import Registry, Version
from hubcore.registry.core import open as open_registry
from hubcore.registry.names import parse_spec

__all__ = ["registry"]


def _common(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--registry URL and --json, on every subcommand."""
    fn = click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")(fn)
    return click.option(
        "--registry",
        "url",
        default=None,
        metavar="URL",
        help="Registry folder or fsspec URL (default: $HUBCORE_REGISTRY or <home>/registry).",
    )(fn)


def _emit(as_json: bool, data: Any, lines: list[str]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=1, sort_keys=True, default=str))
    else:
        for line in lines:
            click.echo(line)


def _size(size: Any) -> str:
    value, unit = float(size or 0), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"


def _version_lines(version: Version, aliases: list[str]) -> list[str]:
    lines = [
        f"{version}  sha256:{version.digest}",
        f"  type: {version.type}   created: {version.created}   by: {version.creator}",
        f"  aliases: {', '.join(aliases) or '-'}",
    ]
    if version.description:
        lines.append(f"  description: {version.description}")
    if version.metadata:
        lines.append(f"  metadata: {json.dumps(version.metadata, sort_keys=True)}")
    if version.tags:
        lines.append(f"  tags: {', '.join(version.tags)}")
    lines.append(f"  files ({len(version.files)}, {_size(version.manifest.size)}):")
    for entry in version.files:
        where = f"  -> {entry.url}" if entry.url else ""
        lines.append(f"    {entry.path}  {_size(entry.size)}  sha256:{entry.sha256[:12]}{where}")
    return lines


def _metadata(items: tuple[str, ...]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--metadata")
        try:
            result[key] = json.loads(raw)
        except ValueError:
            result[key] = raw
    return result


def _open(url: str | None) -> Registry:
    return open_registry(url)


@click.group("registry")
def registry() -> None:
    """Versioned artifacts with aliases, on a folder or an object store."""


@registry.command("log")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.argument("name")
@click.option("--type", "kind", default="model", show_default=True, help="Artifact type.")
@click.option("--alias", "aliases", multiple=True, help="Alias to point at the version.")
@click.option("--metadata", "metadata", multiple=True, metavar="KEY=VALUE", help="JSON or text.")
@click.option("--description", "description", type=click.File("r"), help="File with the text.")
@_common
def log_command(
    path: Path,
    name: str,
    kind: str,
    aliases: tuple[str, ...],
    metadata: tuple[str, ...],
    description: Any,
    url: str | None,
    as_json: bool,
) -> None:
    """Log the folder or file PATH as a new version of NAME."""
    version = _open(url).log(
        name,
        path,
        type=kind,
        aliases=list(aliases),
        metadata=_metadata(metadata),
        description=description.read() if description else "",
    )
    _emit(
        as_json,
        version.to_dict(files=False),
        [f"logged {version} (sha256:{version.digest[:12]}, {_size(version.manifest.size)})"],
    )


@registry.command("ls")
@click.argument("name", required=False)
@click.option("--after", type=int, default=None, metavar="N", help="Versions after vN.")
@click.option("--limit", type=int, default=100, show_default=True, help="Versions per page.")
@_common
def ls_command(
    name: str | None, after: int | None, limit: int, url: str | None, as_json: bool
) -> None:
    """List artifacts, or one page of the versions of NAME."""
    reg = _open(url)
    if name is None:
        names = reg.artifacts()
        _emit(as_json, names, names)
        return
    versions = reg.versions(name, start_after=after, limit=limit)
    aliases: dict[int, list[str]] = {}
    for alias, number in reg.aliases(name).items():
        aliases.setdefault(number, []).append(alias)
    data = [{**v.to_dict(files=False), "aliases": aliases.get(v.number, [])} for v in versions]
    lines = [
        f"v{v.number:<6} sha256:{v.digest[:12]}  {v.created[:19]}  {_size(v.record.get('size'))}"
        f"  {','.join(aliases.get(v.number, []))}"
        for v in versions
    ]
    if limit and len(versions) == limit:
        lines.append(f"(more: --after {versions[-1].number})")
    _emit(as_json, data, lines)


@registry.command("show")
@click.argument("spec")
@_common
def show_command(spec: str, url: str | None, as_json: bool) -> None:
    """Show a version: NAME[:ALIAS|:vN|@sha256:HEX]."""
    version = _open(url).get(spec)
    aliases = version.aliases
    _emit(as_json, {**version.to_dict(), "aliases": aliases}, _version_lines(version, aliases))


@registry.command("alias")
@click.argument("spec")
@click.argument("alias")
@_common
def alias_command(spec: str, alias: str, url: str | None, as_json: bool) -> None:
    """Point ALIAS at the version SPEC (NAME:vN, NAME:OTHER-ALIAS, ...)."""
    version = _open(url).alias(spec, alias)
    _emit(
        as_json, {"alias": alias, "version": str(version)}, [f"{version.name}:{alias} -> {version}"]
    )


@registry.command("unalias")
@click.argument("name")
@click.argument("alias")
@_common
def unalias_command(name: str, alias: str, url: str | None, as_json: bool) -> None:
    """Remove ALIAS from NAME."""
    _open(url).unalias(name, alias)
    _emit(as_json, {"removed": f"{name}:{alias}"}, [f"removed {name}:{alias}"])


@registry.command("history")
@click.argument("name")
@_common
def history_command(name: str, url: str | None, as_json: bool) -> None:
    """Every change of NAME: logs, alias moves, updates, deletions."""
    events = _open(url).history(name)
    lines = []
    for event in events:
        kind = event["kind"]
        if kind in ("alias", "unalias"):
            old = f"v{event['from']}" if event.get("from") is not None else "-"
            new = f"v{event['to']}" if event.get("to") is not None else "-"
            what = f"{event['alias']}: {old} -> {new}"
        else:
            what = f"v{event.get('version')}"
        lines.append(f"{event['when'][:19]}  {event['who']}  {kind} {what}")
    _emit(as_json, events, lines)


@registry.command("download")
@click.argument("spec")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None)
@_common
def download_command(spec: str, output: Path | None, url: str | None, as_json: bool) -> None:
    """Download a version (into the cache, and copied to --output when given)."""
    version = _open(url).get(spec)
    folder = version.download(output)
    _emit(as_json, {"version": str(version), "path": str(folder)}, [str(folder)])


@registry.command("diff")
@click.argument("a")
@click.argument("b")
@_common
def diff_command(a: str, b: str, url: str | None, as_json: bool) -> None:
    """What changed from version A to version B (files and metadata)."""
    result = _open(url).diff(a, b)
    lines = [f"{result['from']} -> {result['to']}"]
    lines += [f"  + {p}" for p in result["added"]]
    lines += [f"  - {p}" for p in result["removed"]]
    lines += [f"  ~ {p}" for p in result["changed"]]
    for key, (old, new) in result["metadata"].items():
        lines.append(f"  metadata {key}: {json.dumps(old)} -> {json.dumps(new)}")
    for field in ("description", "type", "tags"):
        if field in result:
            lines.append(f"  {field}: {result[field][0]!r} -> {result[field][1]!r}")
    _emit(as_json, result, lines)


@registry.command("rm")
@click.argument("spec")
@click.option("--force", is_flag=True, help="Also remove the aliases pointing at it.")
@_common
def rm_command(spec: str, force: bool, url: str | None, as_json: bool) -> None:
    """Delete a version (refused while aliased, unless --force)."""
    parse_spec(spec)
    version = _open(url).delete(spec, force=force)
    _emit(as_json, {"deleted": str(version)}, [f"deleted {version}"])


@registry.command("gc")
@click.option("--grace", type=float, default=24.0, show_default=True, help="Hours to keep.")
@click.option("--dry-run", is_flag=True, help="Only count what would go.")
@_common
def gc_command(grace: float, dry_run: bool, url: str | None, as_json: bool) -> None:
    """Remove stored files no version holds (older than the grace period)."""
    report = _open(url).gc(grace=grace * 3600, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    _emit(
        as_json,
        report,
        [
            f"{verb} {report['blobs']} file(s) ({_size(report['bytes'])}), "
            f"{report['manifests']} manifest(s), {report['temporary']} temporary file(s)"
        ],
    )
