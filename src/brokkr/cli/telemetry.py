"""`brokkr stacks events` and `brokkr stacks logs`: a stack's recent Kubernetes events and pod
log lines (the broker keeps a few hours), and `--follow` over the live stream."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import typer
from rich.console import Console
from rich.table import Table

from brokkr.cli import output, session, stacks
from brokkr.cli.output import Format, OutputOption, QuietOption
from brokkr.client.streams import LiveFrame
from brokkr.common import wire
from brokkr.common.wire import channel

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
SinceOption = typer.Option(
    None, "--since", help="How far back: a duration (90s, 10m, 2h, 1h30m) or an RFC 3339 time."
)
LimitOption = typer.Option(500, min=1, max=5000, help="Most recent rows to show (1-5000).")


def parse_since(text: str | None, *, now: datetime | None = None) -> datetime | None:
    """A duration back from now, or a timestamp (without an offset: UTC)."""
    if text is None:
        return None
    match = _DURATION.fullmatch(text.strip())
    if match and any(match.groups()):
        days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
        delta = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        return (now or datetime.now(UTC)) - delta
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither a duration (10m, 2h) nor a time", param_hint="--since"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def stack_events(
    ctx: typer.Context,
    stack: str,
    since: str | None = SinceOption,
    limit: int = LimitOption,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Recent Kubernetes events of a stack's objects and of their pods, oldest first.

    Example: brokkr stacks events web --since 30m
    """
    start = parse_since(since)
    with session.client(ctx) as brokkr:
        found = brokkr.stacks.events(stacks.stack_id_of(brokkr, stack), since=start, limit=limit)
    if quiet:
        output.show(list(reversed(found.events)), columns=(), quiet=True)
        return
    if output_format is not Format.TABLE:
        output.show(found, columns=(), output=output_format)
        return
    table = Table(header_style="bold")
    for column in ("time", "type", "reason", "object", "message"):
        table.add_column(column, overflow="fold")
    for event in reversed(found.events):
        involved = event.involved_object
        table.add_row(
            output.timestamp(event.observed_at),
            event.event_type,
            event.reason,
            f"{involved.get('kind', '?')}/{involved.get('name', '?')}",
            event.message,
        )
    Console().print(table)


def _line(entry: wire.AgentPodLog, *, bare: bool = False) -> str:
    if bare:
        return entry.line
    return f"{entry.namespace}/{entry.pod}[{entry.container}] {entry.line}"


def _live(frame: LiveFrame, *, bare: bool) -> str | None:
    if isinstance(frame, wire.AgentPodLog):
        return _line(frame, bare=bare)
    if isinstance(frame, channel.LogGapBody):
        return f"-- {frame.dropped_count} lines lost ({frame.reason}) --"
    return None


def stack_logs(
    ctx: typer.Context,
    stack: str,
    since: str | None = SinceOption,
    limit: int = LimitOption,
    follow: bool = typer.Option(
        False, "--follow", "-f", help="Keep printing new lines as they arrive (Ctrl-C stops)."
    ),
    output_format: Format = OutputOption,
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Print the lines alone, without namespace/pod[container]."
    ),
) -> None:
    """Recent pod log lines of a stack, oldest first, each after its namespace/pod and container.

    Lines are shipped by agents that enable pod log shipping. With --follow, new lines follow
    as they arrive; lost lines are shown as a notice.

    Example: brokkr stacks logs web --since 10m --follow
    """
    start = parse_since(since)
    with session.client(ctx) as brokkr:
        stack_id = stacks.stack_id_of(brokkr, stack)
        found = brokkr.stacks.logs(stack_id, since=start, limit=limit)
        if output_format is not Format.TABLE and not follow and not quiet:
            output.show(found, columns=(), output=output_format)
            return
        for entry in reversed(found.lines):
            typer.echo(_line(entry, bare=quiet))
        if not follow:
            return
        try:
            for frame in brokkr.stacks.live(stack_id):
                shown = _live(frame, bare=quiet)
                if shown is not None:
                    typer.echo(shown)
        except KeyboardInterrupt:
            return
