"""`brokkr objects …`: deployment objects."""

from __future__ import annotations

from uuid import UUID

import typer

from brokkr.cli import columns, output, session
from brokkr.cli.output import Format, OutputOption, QuietOption

app = typer.Typer(help="Deployment objects: immutable revisions of a stack.", no_args_is_help=True)


@app.command("get")
def get_object(
    ctx: typer.Context,
    object_id: UUID,
    content: bool = typer.Option(False, "--content", help="Print only the YAML content."),
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Show a deployment object.

    Example: brokkr objects get 77b2… --content > applied.yaml
    """
    with session.client(ctx) as brokkr:
        found = brokkr.deployment_objects.get(object_id)
    if content:
        typer.echo(found.yaml_content, nl=False)
        return
    output.show(found, columns=columns.OBJECT, output=output_format, quiet=quiet)
