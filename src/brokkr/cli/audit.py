"""`brokkr audit …`: the audit trail (admins)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import typer

from brokkr.cli import columns, output, session
from brokkr.cli.output import Format, OutputOption, QuietOption

app = typer.Typer(
    help="The audit trail: who changed what, and failed logins (admins).", no_args_is_help=True
)


@app.command("list")
def list_audit_logs(
    ctx: typer.Context,
    action: str | None = typer.Option(
        None, help="Exact action, or a prefix ending in * (agent.*)."
    ),
    actor_type: str | None = typer.Option(None, help="admin, agent, generator or system."),
    actor_id: UUID | None = typer.Option(None, help="The actor's id."),
    resource_type: str | None = typer.Option(None, help="agent, generator, stack, pak, …"),
    resource_id: UUID | None = typer.Option(None, help="The resource's id."),
    since: datetime | None = typer.Option(
        None, "--from", help="From this time (UTC if no offset)."
    ),
    until: datetime | None = typer.Option(None, "--to", help="Before this time."),
    limit: int = typer.Option(100, min=1, max=1000, help="Page size, newest first."),
    offset: int = typer.Option(0, min=0, help="Skip this many."),
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Query the audit trail.

    Example: brokkr audit list --action "pak.*" --from 2026-11-01
    """
    with session.client(ctx) as brokkr:
        page = brokkr.audit_logs.list(
            action=action,
            actor_type=actor_type,
            actor_id=actor_id,
            resource_type=resource_type,
            resource_id=resource_id,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
    output.show(page.logs, columns=columns.AUDIT, output=output_format, quiet=quiet)
    if output_format is Format.TABLE and not quiet:
        output.note(f"{page.count} of {page.total} records (offset {page.offset})")
