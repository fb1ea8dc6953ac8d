"""The command line of model packages: ``hubcore push`` and ``hubcore model-types``."""

from __future__ import annotations

import click

__all__ = ["model_types_command", "push_command"]


@click.command("push")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.argument("destination")
def push_command(folder: str, destination: str) -> None:
    """Upload the package in FOLDER to DESTINATION (s3://..., file://..., any fsspec URL);
    files first, the manifest last; a rerun resumes. Prints the pin (sha256:...)."""
    from hubcore.cli import _hub_errors
    from hubcore.packages.push import push
    from hubcore.store.redaction import redact

    with _hub_errors():
        pin = push(folder, destination)
    click.echo(f"pushed {folder} to {redact(destination)}\nrevision: {pin}")


@click.command("model-types")
def model_types_command() -> None:
    """List the registered model types (packages of these types ship no code)."""
    from hubcore.cli import _hub_errors
    from hubcore.packages.types import model_types

    with _hub_errors():
        found = model_types()
    for name, entry in sorted(found.items()):
        where = f"{entry.config.__module__}.{entry.config.__qualname__}"
        click.echo(f"{name}  config {where}  ({entry.origin})")
    if not found:
        click.echo("no model types are registered")
