"""``hubcore registry ...``: the registry on the command line (``--json`` for machines)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from hubcore.errors import HubError
from hubcore.registry.core import Registry, Version
from hubcore.registry.core import open as open_registry
from hubcore.registry.history import change_text
from hubcore.registry.names import parse_spec
from hubcore.store.redaction import redact

__all__ = ["registry"]


def _common(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--registry URL and --json, on every subcommand; with --json a failure is JSON too."""
    fn = _json_errors(fn)
    fn = click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")(fn)
    return click.option(
        "--registry",
        "url",
        default=None,
        metavar="URL",
        help="Registry folder or fsspec URL (default: $HUBCORE_REGISTRY or <home>/registry).",
    )(fn)


def _json_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """With --json, a hub error is also printed on stdout as ``{"error": {"type",
    "message"}}`` (the exit status and the stderr line stay those of every command)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HubError as exc:
            if kwargs.get("as_json"):
                message = redact(" ".join(str(exc).split()))
                error = {"type": type(exc).__name__, "message": message}
                click.echo(json.dumps({"error": error}, indent=1, sort_keys=True))
            raise

    return wrapper


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
    lines = [f"{event['when'][:19]}  {event['who']}  {change_text(event)}" for event in events]
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
    """Delete the version SPEC: NAME:vN, NAME:ALIAS, NAME@sha256:... or NAME:latest (a bare
    NAME is refused). Refused while aliased, unless --force."""
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
            f"{report['manifests']} manifest(s), {report['temporary']} temporary file(s), "
            f"{report['notifications']} expired notification(s)"
        ],
    )


@registry.command("link")
@click.argument("spec")
@click.argument("model")
@click.option("--alias", "aliases", multiple=True, help="Alias of the registered model to set.")
@click.option("--description", "description", type=click.File("r"), help="File with the text.")
@click.option("--tag", "tags", multiple=True, help="Tag of the registered model.")
@_common
def link_command(
    spec: str,
    model: str,
    aliases: tuple[str, ...],
    description: Any,
    tags: tuple[str, ...],
    url: str | None,
    as_json: bool,
) -> None:
    """Link the artifact version SPEC to the registered model MODEL (its next version)."""
    version = _open(url).link(
        spec,
        model,
        aliases=list(aliases),
        description=description.read() if description else None,
        tags=list(tags) if tags else None,
    )
    link = version.link or (version.name, version.number)
    _emit(
        as_json,
        version.to_dict(files=False),
        [f"linked {link[0]}:v{link[1]} as {version}" + "".join(f", {a}" for a in aliases)],
    )


@registry.command("unlink")
@click.argument("spec")
@click.option("--force", is_flag=True, help="Also remove the aliases pointing at it.")
@_common
def unlink_command(spec: str, force: bool, url: str | None, as_json: bool) -> None:
    """Remove a registered model's version (the artifact version stays)."""
    version = _open(url).unlink(spec, force=force)
    _emit(as_json, {"unlinked": str(version)}, [f"unlinked {version}"])


@registry.command("lineage")
@click.argument("spec")
@click.option("--depth", type=click.IntRange(0, 100), default=3, show_default=True)
@click.option(
    "--format",
    "form",
    type=click.Choice(["text", "json", "dot", "mermaid"]),
    default="text",
    show_default=True,
)
@_common
def lineage_command(spec: str, depth: int, form: str, url: str | None, as_json: bool) -> None:
    """The runs and versions upstream and downstream of SPEC (NAME[:ALIAS|:vN])."""
    graph = _open(url).lineage(spec, depth=depth)
    click.echo(graph.render("json" if as_json else form))


@registry.command("card")
@click.argument("spec")
@click.option(
    "--set",
    "source",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Markdown file (model-page front matter) to store as the written card.",
)
@_common
def card_command(spec: str, source: Path | None, url: str | None, as_json: bool) -> None:
    """Print the card of NAME or NAME:VERSION (after storing --set FILE, when given)."""
    from hubcore.registry.cards import parse_target

    reg = _open(url)
    parse_target(spec)
    if source is not None:
        reg.set_card(spec, source.read_text(encoding="utf-8"))
    text = reg.card(spec)
    _emit(as_json, {"card": text}, [text.rstrip("\n")])


@registry.command("runs")
@click.argument("run_id", required=False)
@_common
def runs_command(run_id: str | None, url: str | None, as_json: bool) -> None:
    """List runs, or show the run RUN_ID (a dead run shows as failed)."""
    reg = _open(url)
    records = [reg.run_info(run_id)] if run_id else reg.runs()
    lines = []
    for r in records:
        lines.append(
            f"{r['id']}  {r['job_type']}  {r['status']}  {str(r['started'])[:19]}  {r['user']}"
        )
        if run_id:
            for key in ("inputs", "outputs"):
                lines += [f"  {key[:-1]}: {i['name']}:v{i['version']}" for i in r[key]]
            if r.get("error"):
                lines.append(f"  error: {r['error']}")
    _emit(as_json, records, lines)


@registry.command("notify")
@click.option("--flush", is_flag=True, help="Deliver what is pending now (with retries).")
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds in all.")
@_common
def notify_command(flush: bool, timeout: float, url: str | None, as_json: bool) -> None:
    """Show the configured webhooks and pending notifications; --flush delivers them."""
    from hubcore.registry import notify

    reg = _open(url)
    report = notify.flush(reg, budget=timeout) if flush else None
    hooks = notify.describe_webhooks(notify.webhooks())
    entries = notify.pending(reg)
    waiting: list[dict[str, Any]] = [
        {
            "event": e["event"]["id"],
            "summary": notify.summary(e["event"]),
            "webhook": e["webhook"],
            "attempts": e.get("attempts", 0),
            "error": e.get("error"),
        }
        for e in entries
    ]
    data = {
        "webhooks": hooks,
        "pending": waiting,
        "delivered": report["delivered"] if report else 0,
        "expired": report["expired"] if report else 0,
    }
    lines = [f"webhook {h['name']} ({h['host']}, {h['format']})" for h in hooks] or [
        "no webhook configured ([registry.webhooks.NAME] or HUBCORE_REGISTRY_WEBHOOK)"
    ]
    if report is not None:
        lines.append(
            f"delivered {report['delivered']}, failed {report['failed']}, "
            f"expired {report['expired']}"
        )
    lines += [
        f"pending: {p['summary']} -> {p['webhook']} ({p['attempts']} attempt(s)"
        + (f", {p['error']})" if p["error"] else ")")
        for p in waiting
    ]
    _emit(as_json, data, lines)
