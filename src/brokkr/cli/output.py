"""Rendering results: a rich table for people, JSON or YAML for scripts, ids only with --quiet."""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import typer
import yaml
from rich.console import Console
from rich.table import Table


class Format(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


OutputOption = typer.Option(Format.TABLE, "--output", "-o", help="table, json or yaml.")
QuietOption = typer.Option(False, "--quiet", "-q", help="Print ids only, one per line.")
QuietWithPakOption = typer.Option(
    False, "--quiet", "-q", help="Print the id, then the PAK (shown once), one per line."
)
QuietPakOption = typer.Option(False, "--quiet", "-q", help="Print only the new PAK.")


class Deleted(msgspec.Struct, kw_only=True, frozen=True):
    """What a delete prints with -o json|yaml: the broker answers a delete with no body."""

    kind: str
    id: UUID
    deleted: bool = True


def show(
    data: msgspec.Struct | Sequence[msgspec.Struct],
    *,
    columns: Sequence[str],
    output: Format = Format.TABLE,
    quiet: bool = False,
) -> None:
    """Print one record or a list of records."""
    records = list(data) if isinstance(data, Sequence) else [data]
    if quiet:
        for record in records:
            typer.echo(str(getattr(record, "id", "")))
        return
    plain: Any = msgspec.to_builtins(data)
    if output is Format.JSON:
        typer.echo(json.dumps(plain, indent=2))
    elif output is Format.YAML:
        typer.echo(yaml.safe_dump(plain, sort_keys=False).rstrip())
    else:
        table = Table(show_lines=False, header_style="bold")
        for column in columns:
            if column == "id" or column.endswith("_id"):
                # Ids must stay whole and copyable: on one line, never cut by an ellipsis.
                table.add_column(column, no_wrap=True, min_width=36, overflow="fold")
            else:
                table.add_column(column, overflow="fold")
        for record in records:
            table.add_row(*(_cell(getattr(record, column, "")) for column in columns))
        Console().print(table)


def show_with_pak(
    record: msgspec.Struct,
    pak: str,
    *,
    response: msgspec.Struct,
    columns: Sequence[str],
    output: Format,
    quiet: bool,
) -> None:
    """A record created with a PAK that is shown once: with -q its id, then the PAK."""
    if quiet:
        typer.echo(str(getattr(record, "id", "")))
        typer.echo(pak)
    elif output is Format.TABLE:
        show(record, columns=columns)
        typer.echo(f"PAK (shown once): {pak}")
    else:
        show(response, columns=(), output=output)


def show_pak(pak: str, *, response: msgspec.Struct, output: Format, quiet: bool) -> None:
    """A rotated PAK: the key alone (table or -q, so scripts can capture it) or the response."""
    if quiet or output is Format.TABLE:
        typer.echo(pak)
    else:
        show(response, columns=(), output=output)


def show_deleted(
    kind: str, resource_id: UUID, *, shown_as: str, output: Format, quiet: bool
) -> None:
    if quiet:
        typer.echo(str(resource_id))
    elif output is Format.TABLE:
        typer.echo(f"deleted {kind} {shown_as}")
    else:
        show(Deleted(kind=kind, id=resource_id), columns=(), output=output)


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return timestamp(value)
    return "-" if value is None else str(value)


def timestamp(value: datetime | None) -> str:
    """A time as a table shows it: to the second, UTC as ``Z``; ``-`` for none."""
    return "-" if value is None else value.isoformat(timespec="seconds").replace("+00:00", "Z")


def error(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)


def error_detail(line: str) -> None:
    typer.secho(f"  {line}", fg=typer.colors.RED, err=True)


def note(message: str) -> None:
    typer.secho(message, err=True, fg=typer.colors.YELLOW)
