"""`brokkr deploy --wait --healthy`: after the agents applied a deployment object, wait until
each of them reports it healthy (CI gates on what runs, not only on what was applied)."""

from __future__ import annotations

import time
from uuid import UUID

from rich.console import Console
from rich.table import Table

from brokkr.cli import output
from brokkr.cli.health import record_status
from brokkr.client import BrokkrClient
from brokkr.common import wire

EXIT_FAILED = 1
EXIT_TIMEOUT = 3


def wait_healthy(
    brokkr: BrokkrClient,
    object_id: UUID,
    expected: dict[UUID, wire.Agent],
    *,
    deadline: float,
    interval: float,
) -> int:
    """Poll the object's health until every agent of ``expected`` has a fresh healthy report
    (0), one has a fresh failing one (1) or ``deadline`` passed (3). A stale report counts as
    none: the agent stopped saying what runs."""
    console = Console(stderr=True)
    with console.status("waiting for the clusters to report healthy") as spinner:
        while True:
            records = brokkr.health.for_deployment_object(object_id).health_records
            latest = {r.agent_id: r for r in records if r.agent_id in expected and not r.stale}
            healthy = {agent_id for agent_id, r in latest.items() if r.status == "healthy"}
            failing = [r for r in latest.values() if r.status == "failing"]
            spinner.update(
                f"waiting for the clusters to report healthy: {len(healthy)}/{len(expected)}"
            )
            if failing or len(healthy) == len(expected) or time.monotonic() >= deadline:
                break
            time.sleep(interval)
    console.print(_summary(expected, latest))
    if failing:
        output.error(f"{len(failing)} agent(s) report the deployment failing")
        for record in failing:
            for line in _failure_lines(expected[record.agent_id], record):
                output.error_detail(line)
        return EXIT_FAILED
    if len(healthy) < len(expected):
        waiting = [
            f"{agent.name} ({latest[agent_id].status if agent_id in latest else 'no report'})"
            for agent_id, agent in expected.items()
            if agent_id not in healthy
        ]
        output.error(f"timed out: {len(waiting)} agent(s) not healthy yet: " + ", ".join(waiting))
        return EXIT_TIMEOUT
    return 0


def _summary(expected: dict[UUID, wire.Agent], latest: dict[UUID, wire.DeploymentHealth]) -> Table:
    table = Table("agent", "cluster", "health", "pods", "conditions", header_style="bold")
    for agent_id, agent in expected.items():
        record = latest.get(agent_id)
        summary = wire.decode_summary(record.summary) if record else None
        table.add_row(
            agent.name,
            agent.cluster_name,
            record_status(record) if record else "[yellow]no report[/]",
            f"{summary.pods_ready}/{summary.pods_total}" if summary else "-",
            ", ".join(summary.conditions) if summary else "",
        )
    return table


def _failure_lines(agent: wire.Agent, record: wire.DeploymentHealth) -> list[str]:
    """Which agent, why (its conditions) and which resources are not ready."""
    summary = wire.decode_summary(record.summary)
    if summary is None:
        return [f"{agent.name} ({agent.cluster_name}): {record.summary or 'no detail'}"]
    lines = [
        f"{agent.name} ({agent.cluster_name}): "
        + (", ".join(summary.conditions) or "no condition given")
    ]
    lines.extend(
        f"  {r.kind} {r.namespace}/{r.name}: {r.message or 'not ready'}"
        for r in summary.resources or []
        if not r.ready
    )
    return lines
