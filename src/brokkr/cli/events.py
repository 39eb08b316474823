"""`brokkr events …`: what agents reported about deployment objects."""

from __future__ import annotations

from uuid import UUID

import typer

from brokkr.cli import columns, output, session
from brokkr.cli.output import Format, OutputOption, QuietOption

app = typer.Typer(
    help="Agent events: outcomes of applying deployment objects.", no_args_is_help=True
)


@app.command("list")
def list_events(
    ctx: typer.Context,
    agent: UUID | None = typer.Option(None, help="Only this agent's events."),
    deployment_object: UUID | None = typer.Option(None, "--object", help="Only about this object."),
    limit: int = typer.Option(100, min=1, max=1000, help="Page size, newest first."),
    offset: int = typer.Option(0, min=0, help="Skip this many."),
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """List events you may see (admins: all; agents: own; generators: their stacks').

    Example: brokkr events list --object 77b2… -o json
    """
    with session.client(ctx) as brokkr:
        found = brokkr.agent_events.list(
            agent_id=agent, deployment_object_id=deployment_object, limit=limit, offset=offset
        )
        output.show(found, columns=columns.EVENT, output=output_format, quiet=quiet)


@app.command("get")
def get_event(
    ctx: typer.Context,
    event_id: UUID,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Show one event.

    Example: brokkr events get 5d9e…
    """
    with session.client(ctx) as brokkr:
        output.show(
            brokkr.agent_events.get(event_id),
            columns=columns.EVENT,
            output=output_format,
            quiet=quiet,
        )
