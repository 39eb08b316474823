"""`brokkr health STACK|DEPLOYMENT_OBJECT`: what the agents find running, per cluster and
resource, once or re-drawn until Ctrl-C."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from uuid import UUID

import msgspec
import typer
import yaml
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from brokkr.cli import output, session, stacks
from brokkr.cli.agent_lookup import AgentLookup
from brokkr.cli.output import Format, OutputOption
from brokkr.client import BrokkrClient, NotFound
from brokkr.common import wire

STYLES = {"healthy": "green", "degraded": "yellow", "failing": "red", "unknown": "dim"}


class StackHealth(wire.StackHealthResponse, kw_only=True, frozen=True):
    """What ``-o json|yaml`` prints for a stack: the stack's response, then the full response
    of each deployment object it lists."""

    deployment_object_health: list[wire.DeploymentHealthResponse]


Snapshot = StackHealth | wire.DeploymentHealthResponse


def health(
    ctx: typer.Context,
    target: str = typer.Argument(..., help="Stack (id or name) or deployment object (id)."),
    watch: bool = typer.Option(
        False, "--watch", "-w", help="Re-read and redraw every --interval seconds until Ctrl-C."
    ),
    interval: float = typer.Option(5.0, min=0.5, help="Seconds between reads with --watch."),
    count: int | None = typer.Option(
        None, min=1, help="With --watch, stop after this many reads (default: until Ctrl-C)."
    ),
    output_format: Format = OutputOption,
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Print only the overall status (with --watch, each read's)."
    ),
) -> None:
    """Show the health the agents report: per cluster, each resource with its pods.

    A stack shows each of its live deployment objects that has a report. Status is healthy,
    degraded, failing or unknown; a report older than the broker's staleness bound reads as
    unknown, marked stale, with what the agent last said. Admins and the owning generator
    may read it. -o json|yaml prints the broker's responses (with --watch, one per read); -q
    only the overall status, for scripts.

    Example: brokkr health web --watch --interval 10
    """
    if count is not None and not watch:
        raise typer.BadParameter("--count needs --watch", param_hint="--count")
    with session.client(ctx) as brokkr:
        fetch = _reader(brokkr, target)
        agents = AgentLookup(brokkr)
        reads = _reads(fetch, interval=interval, count=count if watch else 1)
        try:
            if quiet:
                for snapshot in reads:
                    typer.echo(snapshot.overall_status)
            elif output_format is Format.TABLE:
                _draw(reads, agents, live=watch)
            else:
                for number, snapshot in enumerate(reads):
                    _dump(snapshot, output_format, first=number == 0)
        except KeyboardInterrupt:
            # Ctrl-C is how a watch ends: not an error.
            return


def _reader(brokkr: BrokkrClient, reference: str) -> Callable[[], Snapshot]:
    """What one read of ``reference`` fetches: a stack's health or one object's."""
    try:
        object_id = UUID(reference)
    except ValueError:
        stack_id = stacks.stack_id_of(brokkr, reference)
        return lambda: _stack_health(brokkr, stack_id)
    try:
        brokkr.deployment_objects.get(object_id)
    except NotFound:
        try:
            stack_id = brokkr.stacks.get(object_id).id
        except NotFound:
            output.error(f"no stack or deployment object {object_id}")
            raise typer.Exit(1) from None
        return lambda: _stack_health(brokkr, stack_id)
    return lambda: brokkr.health.for_deployment_object(object_id)


def _stack_health(brokkr: BrokkrClient, stack_id: UUID) -> StackHealth:
    overview = brokkr.health.for_stack(stack_id)
    details = [brokkr.health.for_deployment_object(item.id) for item in overview.deployment_objects]
    # The broker lists them unordered: the most recently checked first.
    details.sort(
        key=lambda d: max((r.checked_at.timestamp() for r in d.health_records), default=0.0),
        reverse=True,
    )
    return StackHealth(**msgspec.structs.asdict(overview), deployment_object_health=details)


def _reads(
    fetch: Callable[[], Snapshot], *, interval: float, count: int | None
) -> Iterator[Snapshot]:
    done = 0
    while True:
        yield fetch()
        done += 1
        if count is not None and done >= count:
            return
        time.sleep(interval)


def _draw(reads: Iterator[Snapshot], agents: AgentLookup, *, live: bool) -> None:
    console = Console()
    if not (live and console.is_terminal):
        # Not a terminal (a pipe, a CI log): each read is printed after the previous one.
        for snapshot in reads:
            console.print(render(snapshot, agents))
        return
    with Live(console=console, auto_refresh=False) as screen:
        for snapshot in reads:
            screen.update(render(snapshot, agents), refresh=True)


def _dump(snapshot: Snapshot, output_format: Format, *, first: bool) -> None:
    plain = msgspec.to_builtins(snapshot)
    if output_format is Format.JSON:
        typer.echo(json.dumps(plain, indent=2))
    else:
        # Successive reads of a watch are successive YAML documents.
        typer.echo(("" if first else "---\n") + yaml.safe_dump(plain, sort_keys=False).rstrip())


def render(snapshot: Snapshot, agents: AgentLookup) -> RenderableType:
    """A stack as a heading and one table per deployment object; an object as its table."""
    if isinstance(snapshot, wire.DeploymentHealthResponse):
        return object_table(snapshot, agents)
    heading = Text.assemble(
        f"stack {snapshot.stack_id}: ", styled(snapshot.overall_status), style="bold"
    )
    if not snapshot.deployment_object_health:
        return Group(heading, Text("no agent has reported health for this stack yet"))
    counts = {item.id: item for item in snapshot.deployment_objects}
    tables = [
        object_table(detail, agents, counts.get(detail.deployment_object_id))
        for detail in snapshot.deployment_object_health
    ]
    return Group(heading, *tables)


def object_table(
    detail: wire.DeploymentHealthResponse,
    agents: AgentLookup,
    counts: wire.DeploymentObjectHealthSummary | None = None,
) -> Table:
    """One row per reporting agent (its cluster), then one per resource it assessed."""
    title = Text.assemble(
        f"deployment object {detail.deployment_object_id}: ", styled(detail.overall_status)
    )
    if counts is not None:
        title.append(
            f"  (agents: {counts.healthy_agents} healthy, {counts.degraded_agents} degraded, "
            f"{counts.failing_agents} failing)"
        )
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in ("cluster", "resource", "status", "ready", "message", "checked at"):
        table.add_column(column, overflow="fold")
    if not detail.health_records:
        table.add_row("-", "-", styled("unknown"), "-", "no agent has reported yet", "-")
    for record in detail.health_records:
        summary = wire.decode_summary(record.summary)
        table.add_row(
            agents.label(record.agent_id),
            "pods",
            record_status(record),
            f"{summary.pods_ready}/{summary.pods_total}" if summary else "-",
            _record_message(record, summary),
            output.timestamp(record.checked_at) + (" (stale)" if record.stale else ""),
        )
        for resource in (summary.resources or []) if summary else []:
            table.add_row(
                "",
                f"{resource.kind} {resource.namespace}/{resource.name}",
                "",
                Text("yes", style="green") if resource.ready else Text("no", style="red"),
                resource.message or "",
                "",
            )
    return table


def styled(status: str) -> Text:
    return Text(status, style=STYLES.get(status, ""))


def record_status(record: wire.DeploymentHealth) -> Text:
    """The status as read; a stale report says what the agent last reported."""
    if not record.stale:
        return styled(record.status)
    return Text(f"{record.status} (stale, was {record.reported_status or '?'})", style="dim")


def _record_message(record: wire.DeploymentHealth, summary: wire.HealthSummary | None) -> str:
    if summary is not None:
        return ", ".join(summary.conditions)
    # A summary another agent implementation wrote in its own shape: shown as it came.
    return record.summary or ""
