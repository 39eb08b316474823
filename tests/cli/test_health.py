"""``brokkr health STACK|DEPLOYMENT_OBJECT`` against a real broker, with the test playing the
agents (their own PAKs report health).

Covers: a stack by name or id and a deployment object by id; the table per deployment object
with a row per cluster (``name (cluster)`` for an admin, the agent id for a generator, which may
not read agents), its status, pods ready/total and conditions, then a row per resource with its
message; -o json (the broker's response for an object; for a stack its response plus each
object's), -o yaml and -q (the overall status only); ``--watch --count`` re-reading (one table
per read when stdout is not a terminal) and ``--count`` without ``--watch`` refused; nothing
reported yet; a stale record rendered as ``unknown (stale, was failing)`` and marked stale; and
the refusals: an unknown stack name or id, another generator's stack, an agent's PAK (403 from
the broker).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import msgspec
import pytest
import yaml
from rich.console import Console

from brokkr.cli.agent_lookup import AgentLookup
from brokkr.cli.health import object_table
from brokkr.client import BrokkrClient
from brokkr.common import wire
from tests.cli.conftest import Broker, Cli, describe, unique

SERVICE = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 80\n"
FAILING = wire.HealthSummary(
    pods_ready=0,
    pods_total=2,
    conditions=["ImagePullBackOff"],
    resources=[
        wire.ResourceHealth(
            kind="Deployment",
            name="web",
            namespace="shop",
            ready=False,
            message="0/2 replicas available: ImagePullBackOff",
        )
    ],
)
HEALTHY = wire.HealthSummary(pods_ready=2, pods_total=2)


@dataclass(frozen=True)
class Reported:
    stack: wire.Stack
    generator_pak: str
    object_id: UUID
    failing: wire.Agent
    healthy: wire.Agent
    agent_pak: str


def report(
    broker: Broker,
    agent_id: UUID,
    pak: str,
    object_id: UUID,
    status: str,
    summary: wire.HealthSummary | None,
) -> None:
    with BrokkrClient(broker.url, pak) as as_agent:
        as_agent.health.report(
            agent_id,
            [
                wire.DeploymentObjectHealthUpdate(
                    id=object_id, status=status, checked_at=datetime.now(UTC), summary=summary
                )
            ],
        )


def served_agent(admin: BrokkrClient, stack: wire.Stack) -> tuple[wire.Agent, str]:
    created = admin.agents.create(name=unique("edge"), cluster_name=unique("cluster"))
    admin.agents.activate(created.agent.id)
    admin.agents.add_target(created.agent.id, stack.id)
    return created.agent, created.initial_pak


@pytest.fixture
def reported(
    broker: Broker, admin: BrokkrClient, stack: wire.Stack, generator_pak: str
) -> Reported:
    """The stack's one object, reported failing by one agent and healthy by another."""
    with BrokkrClient(broker.url, generator_pak) as ci:
        object_id = ci.stacks.deploy(stack.id, SERVICE).id
    failing, failing_pak = served_agent(admin, stack)
    healthy, healthy_pak = served_agent(admin, stack)
    report(broker, failing.id, failing_pak, object_id, "failing", FAILING)
    report(broker, healthy.id, healthy_pak, object_id, "healthy", HEALTHY)
    return Reported(stack, generator_pak, object_id, failing, healthy, failing_pak)


def row_of(text: str, marker: str) -> str:
    rows = [line for line in text.splitlines() if marker in line and "│" in line]
    assert len(rows) == 1, text
    return rows[0]


def test_a_stack_shows_each_cluster_and_resource(cli: Cli, reported: Reported) -> None:
    for reference in (reported.stack.name, str(reported.stack.id)):
        shown = cli.ok("health", reference).stdout
        assert f"stack {reported.stack.id}: failing" in shown
        assert f"deployment object {reported.object_id}: failing" in shown
        assert "1 healthy, 0 degraded, 1 failing" in shown
        failing = row_of(shown, f"{reported.failing.name} ({reported.failing.cluster_name})")
        assert "failing" in failing and "0/2" in failing and "ImagePullBackOff" in failing
        healthy = row_of(shown, f"{reported.healthy.name} ({reported.healthy.cluster_name})")
        assert "healthy" in healthy and "2/2" in healthy
        resource = row_of(shown, "Deployment shop/web")
        assert "no" in resource and "0/2 replicas available: ImagePullBackOff" in resource


def test_a_deployment_object_and_the_owning_generator(cli: Cli, reported: Reported) -> None:
    shown = cli.ok("health", str(reported.object_id), pak=reported.generator_pak).stdout
    assert f"deployment object {reported.object_id}: failing" in shown
    assert "stack " not in shown
    # A generator may not read agents: the cluster column falls back to the agent's id.
    assert "ImagePullBackOff" in row_of(shown, str(reported.failing.id))
    assert "healthy" in row_of(shown, str(reported.healthy.id))


def test_json_yaml_and_quiet_print_the_brokers_responses(
    cli: Cli, admin: BrokkrClient, reported: Reported
) -> None:
    expected = msgspec.to_builtins(admin.health.for_deployment_object(reported.object_id))
    assert json.loads(cli.ok("health", str(reported.object_id), "-o", "json").stdout) == expected

    stack = yaml.safe_load(cli.ok("health", reported.stack.name, "-o", "yaml").stdout)
    assert (stack["stack_id"], stack["overall_status"]) == (str(reported.stack.id), "failing")
    assert [item["id"] for item in stack["deployment_objects"]] == [str(reported.object_id)]
    assert stack["deployment_object_health"] == [expected]
    assert cli.ok("health", reported.stack.name, "-q").stdout == "failing\n"


def test_watch_reads_again_until_count(cli: Cli, reported: Reported) -> None:
    shown = cli.ok(
        "health", str(reported.object_id), "--watch", "--interval", "0.5", "--count", "2"
    ).stdout
    assert shown.count(f"deployment object {reported.object_id}: failing") == 2
    as_json = cli.ok(
        "health", str(reported.object_id), "-w", "--interval", "0.5", "--count", "2", "-o", "yaml"
    ).stdout
    documents = list(yaml.safe_load_all(as_json))
    assert len(documents) == 2 and documents[0]["overall_status"] == "failing"

    refused = cli("health", str(reported.object_id), "--count", "2")
    assert refused.exit_code == 2, describe(refused)
    assert "--count needs --watch" in refused.stderr


def test_nothing_reported_yet(cli: Cli, stack: wire.Stack, generator_pak: str) -> None:
    created = cli.ok("deploy", stack.name, "-f", "-", "-q", input=SERVICE, pak=generator_pak)
    object_id = created.stdout.strip()
    on_object = cli.ok("health", object_id).stdout
    assert f"deployment object {object_id}: unknown" in on_object
    assert "no agent has reported yet" in on_object
    on_stack = cli.ok("health", stack.name).stdout
    assert "unknown" in on_stack and "no agent has reported health for this stack yet" in on_stack


def test_unknown_targets_and_roles_that_may_not_read(
    cli: Cli, admin: BrokkrClient, reported: Reported
) -> None:
    unknown = cli.fails("health", "no-such-stack")
    assert "no stack named 'no-such-stack'" in unknown.stderr
    missing = uuid4()
    assert f"no stack or deployment object {missing}" in cli.fails("health", str(missing)).stderr

    stranger = admin.generators.create(name=unique("other")).pak
    assert "no stack named" in cli.fails("health", reported.stack.name, pak=stranger).stderr
    foreign = cli.fails("health", str(reported.object_id), pak=stranger)
    assert f"no stack or deployment object {reported.object_id}" in foreign.stderr
    as_agent = cli.fails("health", str(reported.object_id), pak=reported.agent_pak)
    assert as_agent.exit_code == 1 and "(403 " in as_agent.stderr


def test_a_stale_record_reads_unknown_and_says_what_was_reported() -> None:
    checked = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    agent_id = uuid4()
    record = wire.DeploymentHealth(
        id=uuid4(),
        agent_id=agent_id,
        deployment_object_id=uuid4(),
        status="unknown",
        summary='{"pods_ready":0,"pods_total":1,"conditions":["CrashLoopBackOff"]}',
        checked_at=checked,
        created_at=checked,
        updated_at=checked + timedelta(seconds=1),
        stale=True,
        reported_status="failing",
    )
    detail = wire.DeploymentHealthResponse(
        deployment_object_id=record.deployment_object_id,
        health_records=[record],
        overall_status="unknown",
    )
    agent = wire.Agent(
        id=agent_id,
        created_at=checked,
        updated_at=checked,
        deleted_at=None,
        name="edge-1",
        cluster_name="prod-eu",
        last_heartbeat=None,
        status="ACTIVE",
    )
    # No broker: the one agent is known already, so rendering sends no request.
    with BrokkrClient("http://127.0.0.1:9", None) as unreachable:
        agents = AgentLookup(unreachable)
        agents.remember([agent])
        console = Console(width=250, record=True)
        console.print(object_table(detail, agents))
    row = row_of(console.export_text(), "edge-1 (prod-eu)")
    assert "unknown (stale, was failing)" in row
    assert "2024-05-01T12:00:00Z (stale)" in row and "CrashLoopBackOff" in row
