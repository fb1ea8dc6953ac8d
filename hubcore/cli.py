"""The ``hubcore`` command line. Every :class:`~hubcore.errors.HubError` ends the command with
a one-line message on stderr and exit status 1; usage errors exit with 2.

Start-up time is part of every command, so this module imports only click, the settings and the
errors at module level: each command imports what it needs inside its function, and command
groups defined elsewhere are registered by name in :data:`_LAZY_COMMANDS` (imported when run
or listed by ``--help``). A test checks that ``hubcore list`` of a local folder imports no
network or storage library.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from hubcore import settings
from hubcore.errors import CacheTargetError, HubError

if TYPE_CHECKING:
    from hubcore.repo.discovery import Entrypoint, WeightsInfo
    from hubcore.store.cache import Cache, CachedSnapshot

__all__ = ["main"]

#: Commands and groups defined in other modules, by name: ``"module:attribute"``. To add one,
#: add ONE line here (never a module-level import in this file): its module is imported only
#: when the command runs or ``hubcore --help`` lists it, so every other command stays fast.
_LAZY_COMMANDS: dict[str, str] = {
    "model-types": "hubcore.packages.cli:model_types_command",
    "push": "hubcore.packages.cli:push_command",
    "registry": "hubcore.registry.cli:registry",
    "site": "hubcore.site.cli:site_group",
}


@contextmanager
def _hub_errors() -> Iterator[None]:
    """Turn a failure into one ``error:`` line on stderr and exit status 1.

    HubErrors carry their own advice; an operating-system error (a full disk, a folder that
    cannot be written) is shown as the system reports it; anything else is a hubcore bug,
    reported in one line with its traceback in the debug log (``-vv``).
    """
    try:
        yield
    except HubError as exc:
        _fail(str(exc))
    except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
        raise  # usage errors: click prints them (exit status 2)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        _fail(f"{exc.strerror or type(exc).__name__}{where}")
    except (RecursionError, MemoryError) as exc:
        _fail(f"the input is too large or too deeply nested ({type(exc).__name__})")
    except Exception as exc:
        logging.getLogger("hubcore.cli").debug("internal error", exc_info=True)
        _fail(
            f"internal error ({type(exc).__name__}: {exc}); rerun with -vv for the traceback "
            "and report it"
        )


def _fail(message: str) -> NoReturn:
    from hubcore.store.redaction import redact

    click.echo(f"error: {redact(' '.join(message.split()))}", err=True)
    sys.exit(1)


class _Group(click.Group):
    """Runs every command under :func:`_hub_errors`, so no command ends in a traceback, and
    adds the commands of :data:`_LAZY_COMMANDS` when they are asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name in _LAZY_COMMANDS:
            import importlib

            module, _, attribute = _LAZY_COMMANDS[cmd_name].partition(":")
            found = getattr(importlib.import_module(module), attribute)
            if not isinstance(found, click.Command):
                raise TypeError(f"{_LAZY_COMMANDS[cmd_name]} is not a click command")
            self.add_command(found, cmd_name)
        return found

    def invoke(self, ctx: click.Context) -> Any:
        # --offline, --quiet and --home hold for this command only (CliRunner runs many).
        with _hub_errors(), settings.process_overrides_restored():
            return super().invoke(ctx)


class _RedactingFilter(logging.Filter):
    """Log lines pass through the one redactor: libraries' debug output (urllib3's request
    lines, say) may name URLs with tokens in them."""

    def filter(self, record: logging.LogRecord) -> bool:
        from hubcore.store.redaction import redact

        message = record.getMessage()
        shown = redact(message)
        if shown != message:
            record.msg, record.args = shown, None
        return True


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hubcore")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars, only warnings and errors.")
@click.option("-v", "--verbose", "verbosity", count=True, help="More log output (-vv: debug).")
@click.option("--offline", is_flag=True, help="Use only the cache; never touch the network.")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Hub home (cache) for this command; default $HUBCORE_HOME or the user cache dir.",
)
def main(quiet: bool, verbosity: int, offline: bool, home: Path | None) -> None:
    """List, inspect and load models published in hubconf.py repositories."""
    level = logging.WARNING if quiet or verbosity == 0 else logging.INFO
    if verbosity > 1:
        level = logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_RedactingFilter())
    if quiet:
        settings.override_process(disable_progress=True)
    if offline:
        settings.override_process(offline=True)
    if home is not None:
        from hubcore import config

        config.set_dir(home)


def _repo_options(fn: Any) -> Any:
    """--source, --host and --commit, shared by every command that takes a REPO."""
    fn = click.option("--commit", default=None, help="Pin a commit (or branch/tag).")(fn)
    fn = click.option("--host", default=None, help="Self-hosted GitHub/GitLab host or base URL.")(
        fn
    )
    return click.option(
        "--source", default=None, help="Force a source by name (local, github, ...)."
    )(fn)


def _import_options(fn: Any) -> Any:
    """--import and --trust, for the commands that read hubconf.py statically."""
    fn = click.option(
        "--trust", "trust_repo", is_flag=True, help="With --import: trust REPO (and remember it)."
    )(fn)
    return click.option(
        "--import",
        "imported",
        is_flag=True,
        help="Import hubconf.py (runs its code; REPO must be trusted) to complete the answer.",
    )(fn)


@main.command("list")
@click.argument("repo")
@_repo_options
@click.option("--verbose", "-V", "details", is_flag=True, help="Show signatures and weights.")
@_import_options
def list_command(
    repo: str,
    source: str | None,
    host: str | None,
    commit: str | None,
    details: bool,
    imported: bool,
    trust_repo: bool,
) -> None:
    """List REPO's entrypoints (reads hubconf.py; runs nothing unless --import)."""
    from hubcore import api

    with _hub_errors():
        snapshot = api.open_repo(repo, source=source, host=host, commit=commit)
        info = api.discover(snapshot)
        names = (
            api.list(snapshot, imported=True, trust_repo=True if trust_repo else "check")
            if imported
            else list(info.entrypoints)
        )
    for name in names:
        entry = info.entrypoints.get(name)
        if not details:
            click.echo(name)
        elif entry is None:
            click.echo(f"{name}  (found by importing hubconf.py)")
        else:
            click.echo(_entry_line(entry))
            if entry.weights is not None:
                for line in _weights_lines(entry.weights):
                    click.echo(f"    {line}")
    skipped = {n: why for n, why in info.skipped.items() if n not in names}
    if details and skipped:
        click.echo("not entrypoints:")
        for name, why in skipped.items():
            click.echo(f"  {name}: {why}")
    if not imported:
        for gap in info.gaps:
            click.echo(
                f"listing incomplete: {gap}; `hubcore list --import` runs the hubconf to list them",
                err=True,
            )
    for note in info.notes:
        click.echo(f"warning: {note}", err=True)


@main.command("help")
@click.argument("repo")
@click.argument("entry", required=False)
@_repo_options
@_import_options
def help_command(
    repo: str,
    entry: str | None,
    source: str | None,
    host: str | None,
    commit: str | None,
    imported: bool,
    trust_repo: bool,
) -> None:
    """Show the documentation of ENTRY in REPO (reads hubconf.py; runs nothing unless
    --import). Without ENTRY, REPO is a model package: its config, files and model card."""

    from hubcore import api

    with _hub_errors():
        snapshot = api.open_repo(repo, source=source, host=host, commit=commit)
        if entry is None:
            click.echo(api.help(snapshot))
            return
        info = api.discover(snapshot)
        doc = api.help(
            snapshot, entry, imported=imported, trust_repo=True if trust_repo else "check"
        )
    found = info.entrypoints.get(entry)
    if found is not None:
        click.echo(_entry_line(found))
        if found.weights is not None:
            click.echo("  pretrained weights:")
            for line in _weights_lines(found.weights):
                click.echo(f"    {line}")
        click.echo()
    if info.dependencies:
        click.echo(f"dependencies: {', '.join(info.dependencies)}\n")
    click.echo(doc or "(no docstring)")


@main.command("load")
@click.argument("repo")
@click.argument("entry", required=False)
@_repo_options
@click.option(
    "--pretrained",
    is_flag=False,
    flag_value="true",
    default=None,
    metavar="[VARIANT]",
    help="Apply the declared weights (the default variant, or the one named).",
)
@click.option(
    "--kw",
    "kwargs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Keyword argument for the entrypoint; VALUE is a Python literal or a plain string.",
)
@click.option("--map-location", default=None, help="Device for the weights (e.g. cpu).")
@click.option("--force-reload", is_flag=True, help="Fetch the repository again.")
@click.option("--trust", "trust_repo", is_flag=True, help="Trust the repository (and remember it).")
def load_command(
    repo: str,
    entry: str | None,
    source: str | None,
    host: str | None,
    commit: str | None,
    pretrained: str | None,
    kwargs: tuple[str, ...],
    map_location: str | None,
    force_reload: bool,
    trust_repo: bool,
) -> None:
    """Run ENTRY of REPO and describe what it returned; without ENTRY, load the model
    package REPO (--commit takes sha256:<digest> too). A remote repository must be trusted
    first (see `hubcore trust`)."""
    from hubcore import api

    options = dict(_parse_kw(item) for item in kwargs)
    if pretrained is not None:
        options["pretrained"] = True if pretrained == "true" else pretrained
    if map_location is not None:
        options["map_location"] = map_location
    applied: list[str] = []
    with _hub_errors(), _watch_weights(applied):
        result = api.load(
            repo,
            entry,
            source=source,
            host=host,
            commit=commit,
            force_reload=force_reload,
            trust_repo=True if trust_repo else "check",
            **options,
        )
    for line in _describe_result(result):
        click.echo(line)
    click.echo(f"weights: {applied[-1] if applied else 'none applied'}")


@main.command("plugins")
def plugins_command() -> None:
    """List loaded plugins, what each registers, and plugins that failed to load."""
    from hubcore.plugins import get_plugins

    plugins = get_plugins()
    for info in plugins.infos.values():
        origin = info.distribution or "?"
        version = f" {info.version}" if info.version else ""
        tag = " (built-in)" if info.builtin else ""
        if info.blocked:
            state = "blocked"
        elif info.error:
            state = f"FAILED: {info.error}"
        else:
            parts = [f"sources: {', '.join(info.sources)}"] if info.sources else []
            parts += [f"backends: {', '.join(info.backends)}"] if info.backends else []
            parts += [f"redirects: {', '.join(info.redirects)}"] if info.redirects else []
            state = "; ".join(parts) or "no registrations (events only)"
        click.echo(f"{info.name}  [{origin}{version}]{tag}  {state}")


@main.command("hash")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def hash_command(files: tuple[str, ...]) -> None:
    """Print the sha256 of weight FILES, for @pretrained(..., sha256=...), and the
    torch-style file name that carries a hash prefix (checked on download)."""
    from hubcore.store import transfer

    for name in files:
        digest = transfer.file_sha256(name)
        path = Path(name)
        stem = path.name[: -len("".join(path.suffixes))] if path.suffixes else path.name
        prefix = transfer.hash_prefix(path.name)
        width = 10  # a prefix of digits only would read as a date, not a hash
        while digest[:width].isdigit():
            width += 1
        suggested = path.name if prefix else f"{stem}-{digest[:width]}{''.join(path.suffixes)}"
        click.echo(f"{digest}  {name}")
        click.echo(f"  suggested name: {suggested}")


@main.command("download")
@click.argument("url")
@click.option("-o", "--output", "output_text", help="Also copy the file here (FILE or FOLDER/).")
@click.option("--sha256", default=None, help="Expected sha256; a mismatch is an error.")
def download_command(url: str, output_text: str | None, sha256: str | None) -> None:
    """Fetch URL into the cache (verified, locked, atomic) and print where it is."""
    from hubcore import api
    from hubcore.store.files import atomic_copy

    def refuse_special(target: Path) -> None:
        # the copy renames a file over the target: a device (/dev/null), FIFO or socket there
        # would be replaced, not written to
        if target.exists() and not (target.is_file() or target.is_dir()):
            raise click.BadParameter(
                f"{target} is a device, FIFO or socket, not a regular file or folder; the copy "
                "would replace it",
                param_hint="-o",
            )

    output = Path(output_text).expanduser() if output_text else None
    if output is not None and output_text and output_text.endswith(("/", os.sep)):
        if not output.is_dir():
            raise click.BadParameter(f"the folder {output} does not exist", param_hint="-o")
    elif output is not None and not (output.is_dir() or output.parent.is_dir()):
        raise click.BadParameter(f"the folder {output.parent} does not exist", param_hint="-o")
    if output is not None:
        refuse_special(output)
    with _hub_errors():
        path = api.download_file(url, sha256=sha256)
        if output is not None:
            target = output / path.name if output.is_dir() else output
            refuse_special(target)
            atomic_copy(path, target)
            path = target
    click.echo(str(path))


@main.command("check")
@click.argument("repo")
@_repo_options
@click.option("--online", is_flag=True, help="Also check that every weight URL is reachable.")
@click.option("--verify", is_flag=True, help="Download every weight and verify its sha256.")
def check_command(
    repo: str, source: str | None, host: str | None, commit: str | None, online: bool, verify: bool
) -> None:
    """Review REPO as a publisher would want it (docstrings, dependencies, weights, README).
    Runs no repository code; exits 1 when there are errors."""
    from hubcore import api
    from hubcore.policy.check import check_snapshot
    from hubcore.store.redaction import redact

    with _hub_errors():
        snapshot = api.open_repo(repo, source=source, host=host, commit=commit)
        findings = check_snapshot(snapshot, online=online, verify=verify)
    for finding in findings:
        click.echo(redact(str(finding)))
    errors = sum(f.level == "error" for f in findings)
    warnings = len(findings) - errors
    click.echo(f"{errors} error(s), {warnings} warning(s)")
    if errors:
        sys.exit(1)


@main.command("lock")
@click.argument("refs", nargs=-1)
@click.option(
    "-c",
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='A TOML file listing the references: repos = ["acme/models:main", ...].',
)
@click.option(
    "-o", "--output", default="hub.lock", show_default=True, type=click.Path(path_type=Path)
)
@click.option("--host", default=None, help="Self-hosted GitHub/GitLab host or base URL.")
def lock_command(
    refs: tuple[str, ...], config: Path | None, output: Path, host: str | None
) -> None:
    """Record the commit of each repository REF and the sha256 of every weight file its
    entrypoints declare, so later loads are exactly reproducible (runs no repository code)."""
    from hubcore import api
    from hubcore.policy.lock import read_repo_list, write_lock

    wanted = list(refs)
    if config is not None:
        with _hub_errors():
            wanted += read_repo_list(config)
    if not wanted:
        raise click.UsageError("name the references to lock, or pass --config")
    with _hub_errors():
        locked = api.lock_references(wanted, host=host)
    write_lock(output, locked)
    for repo in locked:
        click.echo(f"{repo.ref}  {repo.snapshot[:16]}  {len(repo.weights)} weight file(s)")
    click.echo(f"wrote {output}")


@main.group("trust")
def trust_group() -> None:
    """Manage the repositories whose code `hubcore load` may run."""


_TRUST_HOST = click.option(
    "--host",
    default=None,
    help="The GitHub/GitLab host (or base URL) of entries that name none (default github.com).",
)


@trust_group.command("add")
@click.argument("entries", nargs=-1, required=True)
@_TRUST_HOST
def trust_add(entries: tuple[str, ...], host: str | None) -> None:
    """Trust ENTRIES, written in any form `hubcore load` accepts: an owner (acme,
    github:ghe.example/acme), a repository (acme/models, gitlab:group/sub/repo,
    git+https://host/x.git, git://host/x.git, https://host/hub.zip, s3://bucket/hub,
    registry:NAME) or one snapshot of it, pinned as its source writes snapshots:
    acme/models@<full commit sha>, https://host/hub.zip@<sha256 of the archive>,
    s3://bucket/hub@sha256:<digest>, registry:NAME@sha256:<digest>. Each is stored as the
    repository's identity, which names its host and never holds credentials."""
    from hubcore.policy import trust

    with _hub_errors():
        for entry in entries:  # every entry checked before any is stored
            trust.normalize_entry(entry, host=host)
        for entry in entries:  # normalized once each: an identity is not re-read
            click.echo(f"trusted {trust.add(entry, host=host)}")


@trust_group.command("rm")
@click.argument("entries", nargs=-1, required=True)
@_TRUST_HOST
def trust_rm(entries: tuple[str, ...], host: str | None) -> None:
    """Stop trusting ENTRIES, in any form `trust add` accepts (a repository entry also drops
    its pinned commits)."""
    from hubcore.policy import trust

    with _hub_errors():
        for entry in entries:
            normalized = trust.normalize_entry(entry, host=host)
            removed = trust.remove(entry, host=host)
            state = "removed" if removed else "not on the list:"
            click.echo(f"{state} {normalized}")


@trust_group.command("ls")
def trust_ls() -> None:
    """List trusted entries (from the trust file and HUBCORE_TRUST), as identities."""
    from hubcore.policy import trust

    with _hub_errors():
        for entry in trust.entries():
            click.echo(entry)


@main.group("cache")
def cache_group() -> None:
    """Inspect and clean the cache (safe while other processes load)."""


@cache_group.command("ls")
def cache_ls() -> None:
    """List cached repository snapshots and weight files with their sizes."""
    from hubcore.store.cache import get_cache
    from hubcore.store.redaction import redact

    cache = get_cache()
    snapshots, blobs = cache.snapshots(), cache.blobs()
    click.echo(f"hub home: {cache.root}")
    click.echo(f"repositories ({len(snapshots)} snapshots):")
    for snap in snapshots:
        refs = f"  ({', '.join(snap.refs)})" if snap.refs else ""
        legacy = "" if snap.recorded else "  (written by an older version)"
        click.echo(
            f"  {snap.source}:{snap.repo}  {snap.snapshot_id[:16]}{refs}  "
            f"{_human_size(snap.size)}{legacy}"
        )
    click.echo(f"weights ({len(blobs)} files):")
    for blob in blobs:
        urls = ", ".join(redact(u) for u in blob.urls) or "(no URL record)"
        click.echo(f"  {blob.sha256[:16]}  {_human_size(blob.size)}  {urls}")
    total = sum(s.size for s in snapshots) + sum(b.size for b in blobs)
    click.echo(f"total: {_human_size(total)}")


@cache_group.command("rm")
@click.argument("targets", nargs=-1, required=True)
def cache_rm(targets: tuple[str, ...]) -> None:
    """Remove cached items: a repository (SOURCE:REPO as `cache ls` shows it, or its last
    path components: github:acme/models), a snapshot id or a weight sha256 (prefixes of at
    least 7 characters are accepted). An ambiguous target removes nothing."""
    from hubcore.store.cache import get_cache

    cache = get_cache()
    with _hub_errors():
        for target in targets:
            removed = _remove(cache, target)
            click.echo(f"removed {removed} item(s) matching {target}")


@cache_group.command("prune")
@click.option(
    "--older-than", "days", default=30.0, show_default=True, help="Age in days before removal."
)
def cache_prune(days: float) -> None:
    """Remove weights no URL refers to, snapshots no branch or tag points at (when older than
    --older-than days), and stale temporary files."""
    from hubcore.store.cache import get_cache

    count, freed = get_cache().prune(older_than=days * 86400)
    click.echo(f"pruned {count} item(s), {_human_size(freed)} freed")


def _remove(cache: Cache, target: str) -> int:
    snapshots = cache.snapshots()
    if ":" in target:
        chosen = _repository_matches(snapshots, target)
        for snap in chosen:
            cache.remove_snapshot(snap)
        return len(chosen)
    if len(target) < 7:
        raise CacheTargetError(f"{target!r} is too short; give at least 7 characters")
    snaps = [s for s in snapshots if s.snapshot_id.startswith(target)]
    blobs = [b for b in cache.blobs() if b.sha256.startswith(target)]
    if len(snaps) + len(blobs) > 1:
        raise CacheTargetError(f"{target!r} is ambiguous; give more characters")
    for snap in snaps:
        cache.remove_snapshot(snap)
    for blob in blobs:
        cache.remove_blob(blob)
    if not snaps and not blobs:
        raise CacheTargetError(f"nothing in the cache matches {target!r} (see hubcore cache ls)")
    return 1


def _repository_matches(snapshots: list[CachedSnapshot], target: str) -> list[CachedSnapshot]:
    """The snapshots of the one repository *target* names: SOURCE:KEY exactly, or SOURCE:
    followed by the key's last whole path components. Without a match under that source, the
    whole target is tried as a key of any source (keys may hold a colon: host:port/...)."""
    source, _, pattern = target.partition(":")
    if not source or not pattern.strip("/"):
        raise CacheTargetError(
            f"{target!r} names no repository; write SOURCE:REPO as `hubcore cache ls` shows it"
        )

    def candidates(wanted: str, sources: set[str] | None) -> set[tuple[str, str]]:
        repos = {(s.source, s.repo) for s in snapshots if sources is None or s.source in sources}
        exact = {r for r in repos if r[1] == wanted}
        return exact or {r for r in repos if r[1].endswith("/" + wanted.strip("/"))}

    found = candidates(pattern, {source}) or candidates(target, None)
    if len(found) > 1:
        names = ", ".join(f"{s}:{r}" for s, r in sorted(found))
        raise CacheTargetError(
            f"{target!r} is ambiguous: it matches {names}; give more of the repository"
        )
    if not found:
        raise CacheTargetError(f"no cached repository matches {target!r} (see hubcore cache ls)")
    return [s for s in snapshots if (s.source, s.repo) in found]


# -- helpers --------------------------------------------------------------------------------------


def _entry_line(entry: Entrypoint) -> str:
    if not entry.resolved:
        return f"{entry.name}  (unresolved: {entry.note})"
    summary = (entry.doc or "").strip().splitlines()
    first = f"  - {summary[0]}" if summary else ""
    where = f"  [{entry.defined_in}]" if entry.defined_in else ""
    return f"{entry.name}{entry.signature or ''}{first}{where}"


def _weights_lines(weights: WeightsInfo) -> list[str]:
    from hubcore.store.redaction import redact

    if not weights.known:
        return ["weights: declared, but not literal (known only when run)"]
    lines = []
    for name, spec in weights.variants.items():
        mark = "*" if name == weights.default else " "
        sha = f" sha256={spec.sha256[:12]}..." if spec.sha256 else " (no sha256)"
        size = f" {_human_size(spec.size)}" if spec.size else ""
        lines.append(f"{mark} {name}: {redact(spec.url)}{sha}{size}")
    return lines


def _human_size(size: int) -> str:
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    value, index = float(size), 0
    while value >= 1024 and index < len(units) - 1:
        value /= 1024
        index += 1
    return f"{size} B" if index == 0 else f"{value:.1f} {units[index]}"


def _parse_kw(item: str) -> tuple[str, Any]:
    import ast

    key, sep, raw = item.partition("=")
    if not sep or not key.isidentifier():
        raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--kw")
    try:
        value: Any = ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError):
        value = raw
    except (RecursionError, MemoryError):
        raise click.BadParameter(
            f"{key}: the value is too deeply nested", param_hint="--kw"
        ) from None
    return key, value


def _describe_result(result: Any) -> list[str]:
    from hubcore.plugins import get_plugins
    from hubcore.repo.isolation import PRIVATE_PREFIX

    items = list(result) if isinstance(result, tuple) else [result]
    plugins = get_plugins()
    lines = []
    for item in items:
        module = type(item).__module__
        if module.startswith(PRIVATE_PREFIX):  # show the repository's own module name
            module = module.partition(".")[2]
        kind = f"{module}.{type(item).__qualname__}"
        backend = plugins.backend_for(item)
        facts = ""
        if backend is not None:
            summary = backend.summarize(item)
            facts = "  " + ", ".join(f"{k}={_fmt(v)}" for k, v in summary.items())
            facts += f"  (backend: {backend.name})"
        lines.append(f"loaded: {kind}{facts}")
    return lines


def _fmt(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


@contextmanager
def _watch_weights(applied: list[str]) -> Iterator[None]:
    """Record the weights the entrypoint applied (not any other download, such as the
    repository archive), described by the download events."""
    from hubcore.plugins import get_plugins
    from hubcore.plugins.hookspecs import hookimpl
    from hubcore.store.redaction import redact

    fetched: dict[str, str] = {}

    class _Watcher:
        @hookimpl
        def hubcore_download_finished(
            self, url: str, path: str, sha256: str, size: int, cached: bool
        ) -> None:
            origin = "cache" if cached else "transferred"
            fetched[url] = f"{redact(url)} (sha256 {sha256[:12]}..., {_human_size(size)}, {origin})"

        @hookimpl
        def hubcore_entrypoint_loaded(
            self, repo: str, entrypoint: str, result: object, weights: str | None
        ) -> None:
            if weights is not None:
                applied.append(fetched.get(weights, redact(weights)))

    manager = get_plugins().manager
    watcher = _Watcher()
    manager.register(watcher)
    try:
        yield
    finally:
        manager.unregister(watcher)
