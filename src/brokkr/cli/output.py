"""Rendering results: a rich table for people, JSON or YAML for scripts, ids only with --quiet."""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from typing import Any

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
            # Ids must stay whole and copyable: wrap rather than truncate with an ellipsis.
            table.add_column(column, overflow="fold")
        for record in records:
            table.add_row(*(_cell(getattr(record, column, "")) for column in columns))
        Console().print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if hasattr(value, "isoformat"):
        return str(value.isoformat(timespec="seconds")).replace("+00:00", "Z")
    return str(value)


def error(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)


def note(message: str) -> None:
    typer.secho(message, err=True, fg=typer.colors.YELLOW)
