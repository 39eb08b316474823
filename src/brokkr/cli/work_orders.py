"""`brokkr work-orders …`: one-shot jobs (image builds, migrations) run by a chosen agent."""

from __future__ import annotations

import time
from uuid import UUID

import typer
import yaml

from brokkr.cli import columns, deploy, output, session
from brokkr.cli.output import Format, OutputOption, QuietOption
from brokkr.client import BrokkrAPIError, BrokkrClient, NotFound
from brokkr.common import wire

EXIT_FAILED = 1
EXIT_TIMEOUT = 3
# What a finished order's status reads as: it left the queue for the log.
FINISHED = ("COMPLETED", "FAILED")
BUILD_TYPE = "build"
CUSTOM_TYPE = "custom"

app = typer.Typer(
    help="Work orders: one-shot jobs (image builds, migrations) run once by one agent (admins).",
    no_args_is_help=True,
)


def work_type_of(content: str) -> str:
    """``build`` when the YAML holds a Shipwright Build, else ``custom``. Reads the node tree
    only (no alias expansion), so a hostile file costs no more than its size."""
    for node in yaml.compose_all(content, Loader=yaml.SafeLoader):
        if not isinstance(node, yaml.MappingNode):
            continue
        fields = {
            key.value: value.value
            for key, value in node.value
            if isinstance(key, yaml.ScalarNode) and isinstance(value, yaml.ScalarNode)
        }
        if fields.get("kind") == "Build" and str(fields.get("apiVersion", "")).startswith(
            "shipwright.io/"
        ):
            return BUILD_TYPE
    return CUSTOM_TYPE


def annotations_of(pairs: list[str] | None) -> dict[str, str]:
    annotations: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="--annotation")
        annotations[key] = value
    return annotations


@app.command("create")
def create_work_order(
    ctx: typer.Context,
    files: list[str] = typer.Option(
        ..., "--file", "-f", help="The order's YAML: file, directory of *.yaml, or - for stdin."
    ),
    work_type: str | None = typer.Option(
        None,
        "--type",
        help="build or custom (default: build if the YAML holds a Shipwright Build, else custom).",
    ),
    agents: list[UUID] | None = typer.Option(
        None, "--agent", help="An agent that may run it (id). Repeatable."
    ),
    labels: list[str] | None = typer.Option(
        None, "--label", help="Any agent with this label may run it. Repeatable."
    ),
    annotations: list[str] | None = typer.Option(
        None, "--annotation", help="Any agent with this key=value may run it. Repeatable."
    ),
    max_retries: int | None = typer.Option(
        None, min=0, help="Retries after the first attempt (broker default 3)."
    ),
    backoff_seconds: int | None = typer.Option(
        None, min=1, help="Base of the exponential wait between retries (broker default 60)."
    ),
    claim_timeout_seconds: int | None = typer.Option(
        None, min=1, help="A claim older than this is released (broker default 3600)."
    ),
    wait: bool = typer.Option(False, "--wait", help="Follow the order until it finishes."),
    timeout: float = typer.Option(3600.0, min=1, help="Seconds to wait with --wait."),
    interval: float = typer.Option(2.0, min=0.1, help="Seconds between polls with --wait."),
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Queue a work order for the agents given by --agent, --label or --annotation (any of them
    may claim it; exactly one runs it).

    With --wait, show who claimed it, each retry and the result (on stderr): exit 0 if it
    succeeded, 1 if it failed or was cancelled, 3 if it had not finished within --timeout.

    Example: brokkr work-orders create -f build.yaml --label env:ci --wait
    """
    content = deploy.read_manifests(files)
    if not content.strip():
        output.error("the work order's YAML is empty")
        raise typer.Exit(2)
    with session.client(ctx) as brokkr:
        created = brokkr.work_orders.create(
            work_type=work_type or work_type_of(content),
            yaml_content=content,
            agent_ids=agents,
            labels=labels,
            annotations=annotations_of(annotations),
            max_retries=max_retries,
            backoff_seconds=backoff_seconds,
            claim_timeout_seconds=claim_timeout_seconds,
        )
        output.show(created, columns=columns.WORK_ORDER, output=output_format, quiet=quiet)
        if wait:
            raise typer.Exit(follow(brokkr, created, timeout=timeout, interval=interval))


def follow(brokkr: BrokkrClient, order: wire.WorkOrder, *, timeout: float, interval: float) -> int:
    """Poll ``order`` until it finishes, noting each change on stderr; the exit code."""
    deadline = time.monotonic() + timeout
    shown = ""
    names: dict[UUID, str] = {}
    while True:
        try:
            order = brokkr.work_orders.get(order.id)
        except NotFound:
            output.error(f"work order {order.id} was cancelled")
            return EXIT_FAILED
        progress = describe(order, agent=_agent_name(brokkr, order.claimed_by, names))
        if progress != shown:
            output.note(progress)
            shown = progress
        if order.status in FINISHED:
            return _finished(brokkr, order, names)
        if time.monotonic() >= deadline:
            output.error(f"timed out: work order {order.id} is still {order.status}")
            return EXIT_TIMEOUT
        time.sleep(interval)


def describe(order: wire.WorkOrder, *, agent: str) -> str:
    """One line on where ``order`` stands: its state, who claimed it, attempt and last error."""
    attempt = f"attempt {order.retry_count + 1} of {order.max_retries + 1}"
    if order.status == "CLAIMED":
        return f"claimed by agent {agent} ({attempt})"
    if order.status == "RETRY_PENDING":
        return (
            f"retry {order.retry_count} of {order.max_retries} scheduled for "
            f"{output.timestamp(order.next_retry_after)} after: {order.last_error}"
        )
    if order.status == "PENDING":
        return f"waiting for an agent to claim it ({attempt})"
    retries = f"after {order.retry_count} retr{'y' if order.retry_count == 1 else 'ies'}"
    return f"{order.status.lower()} {retries}"


def _agent_name(brokkr: BrokkrClient, agent_id: UUID | None, names: dict[UUID, str]) -> str:
    """``name (id)`` of an agent, looked up once; the bare id if it cannot be read."""
    if agent_id is None:
        return "-"
    if agent_id not in names:
        try:
            names[agent_id] = f"{brokkr.agents.get(agent_id).name} ({agent_id})"
        except BrokkrAPIError:
            names[agent_id] = str(agent_id)
    return names[agent_id]


def _finished(brokkr: BrokkrClient, order: wire.WorkOrder, names: dict[UUID, str]) -> int:
    entry = brokkr.work_orders.get_log(order.id)
    agent = _agent_name(brokkr, entry.claimed_by, names)
    if entry.success:
        typer.secho(f"succeeded on agent {agent}: {entry.result_message or ''}", err=True)
        return 0
    output.error(f"failed on agent {agent}: {entry.result_message}")
    return EXIT_FAILED


@app.command("list")
def list_work_orders(
    ctx: typer.Context,
    status: str | None = typer.Option(None, help="PENDING, CLAIMED or RETRY_PENDING."),
    work_type: str | None = typer.Option(None, "--type", help="Only this work type."),
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """List the queue: orders not finished yet, newest first (finished ones: `log`).

    Example: brokkr work-orders list --status RETRY_PENDING -o json
    """
    with session.client(ctx) as brokkr:
        found = brokkr.work_orders.list(status=status, work_type=work_type)
    output.show(found, columns=columns.WORK_ORDER, output=output_format, quiet=quiet)


@app.command("get")
def get_work_order(
    ctx: typer.Context,
    work_order_id: UUID,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Show one work order; a finished one shows status COMPLETED or FAILED.

    Example: brokkr work-orders get 0b5e… -o yaml
    """
    with session.client(ctx) as brokkr:
        found = brokkr.work_orders.get(work_order_id)
    output.show(found, columns=columns.WORK_ORDER, output=output_format, quiet=quiet)


@app.command("cancel")
def cancel_work_order(
    ctx: typer.Context,
    work_order_id: UUID,
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Cancel an order that has not finished (also a claimed one: its agent's result is then
    refused). Nothing is logged.

    Example: brokkr work-orders cancel 0b5e…
    """
    with session.client(ctx) as brokkr:
        brokkr.work_orders.delete(work_order_id)
    output.show_deleted(
        "work_order", work_order_id, shown_as=str(work_order_id), output=output_format, quiet=quiet
    )


@app.command("log")
def work_order_log(
    ctx: typer.Context,
    work_order_id: UUID | None = typer.Argument(None, help="Show only this finished order."),
    success: bool | None = typer.Option(
        None, "--success/--failed", help="Only orders that succeeded, or only failed ones."
    ),
    agent: UUID | None = typer.Option(None, help="Only orders this agent ran."),
    work_type: str | None = typer.Option(None, "--type", help="Only this work type."),
    limit: int | None = typer.Option(
        None, min=1, help="How many, newest first (default: the broker's)."
    ),
    output_format: Format = OutputOption,
    quiet: bool = QuietOption,
) -> None:
    """Finished work orders, newest first, with each one's result (image digest, error).

    Example: brokkr work-orders log --failed --type build --limit 20
    """
    with session.client(ctx) as brokkr:
        if work_order_id is not None:
            found: wire.WorkOrderLog | list[wire.WorkOrderLog] = brokkr.work_orders.get_log(
                work_order_id
            )
        else:
            found = brokkr.work_orders.list_log(
                work_type=work_type, success=success, agent_id=agent, limit=limit
            )
    output.show(found, columns=columns.WORK_ORDER_LOG, output=output_format, quiet=quiet)
