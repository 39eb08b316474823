"""`brokkr diagnose DEPLOYMENT_OBJECT --agent A`: ask one agent for the pods, events and log
tails of a deployment object's resources, wait for its answer and print it."""

from __future__ import annotations

import json
import time
from typing import Any, TypeVar
from uuid import UUID

import msgspec
import typer
import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

from brokkr.cli import output, session
from brokkr.cli.agent_lookup import agent_of
from brokkr.cli.output import Format, OutputOption
from brokkr.client import BrokkrClient
from brokkr.common import wire
from brokkr.common.wire.diagnostics import PREVIOUS_SUFFIX

EXIT_FAILED = 1
EXIT_TIMEOUT = 3
ENDED = ("completed", "failed", "expired")
DOCUMENTS = ("pod_statuses", "events", "log_tails")

T = TypeVar("T")


def diagnose(
    ctx: typer.Context,
    deployment_object: UUID = typer.Argument(..., help="Deployment object id."),
    agent: str = typer.Option(
        ..., "--agent", "-a", help="The agent (id or name) that collects, in its cluster."
    ),
    timeout: float = typer.Option(120.0, min=1, help="Seconds to wait for the answer."),
    interval: float = typer.Option(1.0, min=0.1, help="Seconds between polls."),
    retention_minutes: int | None = typer.Option(
        None, help="Minutes the request waits for the agent to claim it (broker default 60)."
    ),
    requested_by: str | None = typer.Option(
        None, help="Who asks, kept with the request (free text)."
    ),
    output_format: Format = OutputOption,
    quiet: bool = typer.Option(
        False,
        "--quiet",
        "-q",
        help="Print only the request's id (the exit code says how it ended).",
    ),
) -> None:
    """Collect diagnostics of a deployment object in one agent's cluster (admins).

    The agent reads the pods of the object's own resources, their recent events and the last
    lines of each container's log (and of the previous container after a restart). Waits with
    a spinner on stderr; prints pods, events and logs, or with -o json|yaml the request and
    its result with the three documents decoded. Exit 0 when answered, 1 when the request
    failed or expired unclaimed, 3 when --timeout passed first.

    Example: brokkr diagnose 77b2… --agent edge-1 --timeout 60
    """
    with session.client(ctx) as brokkr:
        collector = agent_of(brokkr, agent, param_hint="--agent")
        who = f"{collector.name} ({collector.cluster_name})"
        request = brokkr.diagnostics.request(
            deployment_object,
            agent_id=collector.id,
            requested_by=requested_by,
            retention_minutes=retention_minutes,
        )
        response = _await(brokkr, request, who, timeout=timeout, interval=interval)
    if quiet:
        typer.echo(str(response.request.id))
    elif output_format is not Format.TABLE:
        _dump(response, output_format)
    elif response.result is not None:
        show_result(response.result, who)
    raise typer.Exit(verdict(response, who, timeout))


def _await(
    brokkr: BrokkrClient,
    request: wire.DiagnosticRequest,
    who: str,
    *,
    timeout: float,
    interval: float,
) -> wire.DiagnosticResponse:
    """Poll until the request ended (a completed one with its result) or ``timeout`` passed."""
    deadline = time.monotonic() + timeout
    with Console(stderr=True).status(_progress(request, who)) as spinner:
        while True:
            response = brokkr.diagnostics.get(request.id)
            spinner.update(_progress(response.request, who))
            ended = response.request.status in ENDED
            if (ended and response.request.status != "completed") or response.result is not None:
                return response
            if time.monotonic() >= deadline:
                return response
            time.sleep(interval)


def _progress(request: wire.DiagnosticRequest, who: str) -> str:
    if request.status == "pending":
        return f"diagnostic request {request.id}: pending, waiting for agent {who} to claim it"
    if request.status == "claimed":
        return f"diagnostic request {request.id}: claimed, agent {who} is collecting"
    return f"diagnostic request {request.id}: {request.status}"


def verdict(response: wire.DiagnosticResponse, who: str, timeout: float) -> int:
    """The exit code for how the wait ended; an error line on stderr unless answered."""
    request = response.request
    if response.result is not None:
        return 0
    if request.status == "failed":
        output.error(
            f"diagnostic request {request.id} failed: {request.failure_reason or 'no reason given'}"
        )
        return EXIT_FAILED
    if request.status == "expired":
        reason = request.failure_reason or f"agent {who} did not claim it in time"
        output.error(f"diagnostic request {request.id} expired: {reason}")
        return EXIT_FAILED
    output.error(
        f"timed out after {timeout:g} s: diagnostic request {request.id} is still {request.status}"
    )
    return EXIT_TIMEOUT


def _dump(response: wire.DiagnosticResponse, output_format: Format) -> None:
    plain: dict[str, Any] = msgspec.to_builtins(response)
    result = plain.get("result")
    if isinstance(result, dict):
        for key in DOCUMENTS:
            result[key] = _json_or_text(result.get(key))
    if output_format is Format.JSON:
        typer.echo(json.dumps(plain, indent=2))
    else:
        typer.echo(yaml.safe_dump(plain, sort_keys=False).rstrip())


def _json_or_text(text: str | None) -> Any:
    """A document as the JSON it holds; kept as text when it is not JSON."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _decoded(text: str | None, kind: type[T]) -> T | None:
    """``text`` as ``kind``; None when it does not have that shape (another agent's format)."""
    if text is None:
        return None
    try:
        return msgspec.json.decode(text, type=kind)
    except msgspec.DecodeError:
        return None


def show_result(result: wire.DiagnosticResult, who: str) -> None:
    console = Console()
    console.print(
        Text(f"collected by agent {who} at {output.timestamp(result.collected_at)}", style="bold")
    )
    pods = _decoded(result.pod_statuses, list[wire.PodStatus])
    if pods is None:
        _raw(console, "pods", result.pod_statuses)
    else:
        console.print(pods_table(pods))
    events = _decoded(result.events, list[wire.DiagnosticEvent])
    if events is None:
        _raw(console, "events", result.events)
    else:
        console.print(events_table(events))
    tails = _decoded(result.log_tails, wire.LogTails)
    if tails is None and result.log_tails is not None:
        _raw(console, "logs", result.log_tails)
    for key, text in sorted((tails or {}).items()):
        show_log(key, text)


def _raw(console: Console, what: str, text: str) -> None:
    console.print(Text(f"{what} (not in the expected format, shown as sent):", style="bold"))
    typer.echo(text)


def pods_table(pods: list[wire.PodStatus]) -> Table:
    table = Table(title="pods", title_justify="left", header_style="bold")
    for column in ("pod", "owner", "phase", "ready", "restarts", "containers", "conditions"):
        table.add_column(column, overflow="fold")
    if not pods:
        table.add_row("-", "-", "-", "-", "-", "no pods found", "-")
    for pod in pods:
        running = [c for c in pod.containers if not c.init]
        table.add_row(
            f"{pod.namespace}/{pod.name}",
            pod.owner or "-",
            Text(pod.phase, style=_phase_style(pod.phase)),
            f"{sum(c.ready for c in running)}/{len(running)}",
            str(sum(c.restart_count for c in pod.containers)),
            "\n".join(_container_line(c) for c in pod.containers),
            "\n".join(
                f"{c.condition_type}: {c.reason or c.status}"
                + (f" ({c.message})" if c.message else "")
                for c in pod.conditions
                if c.status != "True"
            ),
        )
    return table


def _phase_style(phase: str) -> str:
    return {"Running": "green", "Succeeded": "green", "Pending": "yellow"}.get(phase, "red")


def _container_line(container: wire.ContainerStatus) -> str:
    line = f"{'init ' if container.init else ''}{container.name}: {container.state}"
    if container.state_reason:
        line += f" {container.state_reason}"
    if container.state_message:
        line += f" ({container.state_message})"
    if container.last_state_reason:
        line += f"; last ended {container.last_state_reason}"
    return line


def events_table(events: list[wire.DiagnosticEvent]) -> Table:
    table = Table(title="events", title_justify="left", header_style="bold")
    for column in ("last seen", "type", "reason", "object", "count", "message"):
        table.add_column(column, overflow="fold")
    if not events:
        table.add_row("-", "-", "-", "-", "-", "no events")
    for event in events:
        kind = f"{event.involved_kind}/" if event.involved_kind else ""
        table.add_row(
            event.last_timestamp or event.first_timestamp or "-",
            Text(event.event_type or "-", style="yellow" if event.event_type == "Warning" else ""),
            event.reason or "-",
            kind + event.involved_object,
            "-" if event.count is None else str(event.count),
            event.message or "",
        )
    return table


def show_log(key: str, text: str) -> None:
    """One log tail under a ``==> pod/container <==`` heading, as ``tail`` marks files."""
    previous = key.endswith(PREVIOUS_SUFFIX)
    name = key.removesuffix(PREVIOUS_SUFFIX)
    typer.secho(f"==> {name}{' (previous)' if previous else ''} <==", bold=True)
    typer.echo(text.rstrip("\n") if text.strip() else "(empty)")
