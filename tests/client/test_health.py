"""``client.health`` against a real broker process, on SQLite and on PostgreSQL.

Covers ``report`` with the agent's own PAK (a summary with resources; a second report replaces
the first), ``for_deployment_object`` (each agent's record with its summary as a JSON string
that ``wire.decode_summary`` reads back, the overall status by precedence) and ``for_stack``
(per-object status and counts), read by the admin and the owning generator; and the typed
errors: invalid entries (a duplicate, a bad status) are ``ValidationFailed`` naming each and
write nothing, an unknown object too; another agent's id is ``Forbidden``; a foreign generator
and unknown ids get ``NotFound``; an agent may not read health (``Forbidden``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from brokkr.client import AsyncBrokkrClient, Forbidden, NotFound, ValidationFailed
from brokkr.common import wire
from tests.client.conftest import LiveBroker, manifest, unique


@dataclass(frozen=True)
class Deployed:
    """A generator's stack with one deployment object, targeted at two agents."""

    generator_pak: str
    stack: wire.Stack
    deployed: wire.DeploymentObject
    agents: tuple[wire.CreateAgentResponse, wire.CreateAgentResponse]


async def deployed_to_two_agents(live_broker: LiveBroker, admin: AsyncBrokkrClient) -> Deployed:
    generator = await admin.generators.create(name=unique("ci"))
    async with live_broker.client(generator.pak) as ci:
        stack = await ci.stacks.create(name=unique("web"))
        deployed = await ci.stacks.deploy(stack.id, manifest(unique("cm")))
    agents = []
    for _ in range(2):
        created = await admin.agents.create(name=unique("edge"), cluster_name=unique("cluster"))
        await admin.agents.activate(created.agent.id)
        await admin.agents.add_target(created.agent.id, stack.id)
        agents.append(created)
    return Deployed(generator.pak, stack, deployed, (agents[0], agents[1]))


def update(
    object_id: uuid.UUID, status: str, summary: wire.HealthSummary | None = None
) -> wire.DeploymentObjectHealthUpdate:
    return wire.DeploymentObjectHealthUpdate(
        id=object_id, status=status, checked_at=datetime.now(UTC), summary=summary
    )


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


async def test_agents_report_and_admins_and_the_owner_read(
    live_broker: LiveBroker, admin: AsyncBrokkrClient
) -> None:
    fleet = await deployed_to_two_agents(live_broker, admin)
    first, second = fleet.agents
    object_id = fleet.deployed.id

    async with (
        live_broker.client(first.initial_pak) as one,
        live_broker.client(second.initial_pak) as two,
    ):
        await one.health.report(first.agent.id, [update(object_id, "degraded")])
        await one.health.report(first.agent.id, [update(object_id, "failing", FAILING)])
        await two.health.report(
            second.agent.id,
            [update(object_id, "healthy", wire.HealthSummary(pods_ready=1, pods_total=1))],
        )

    found = await admin.health.for_deployment_object(object_id)
    assert isinstance(found, wire.DeploymentHealthResponse)
    assert (found.deployment_object_id, found.overall_status) == (object_id, "failing")
    by_agent = {record.agent_id: record for record in found.health_records}
    assert set(by_agent) == {first.agent.id, second.agent.id}
    failing = by_agent[first.agent.id]
    assert (failing.status, failing.stale, failing.deployment_object_id) == (
        "failing",
        False,
        object_id,
    )
    assert wire.decode_summary(failing.summary) == FAILING
    healthy = wire.decode_summary(by_agent[second.agent.id].summary)
    assert healthy == wire.HealthSummary(pods_ready=1, pods_total=1)

    stack_health = await admin.health.for_stack(fleet.stack.id)
    assert isinstance(stack_health, wire.StackHealthResponse)
    assert (stack_health.stack_id, stack_health.overall_status) == (fleet.stack.id, "failing")
    assert stack_health.deployment_objects == [
        wire.DeploymentObjectHealthSummary(
            id=object_id, status="failing", healthy_agents=1, degraded_agents=0, failing_agents=1
        )
    ]

    async with live_broker.client(fleet.generator_pak) as owner:
        assert await owner.health.for_deployment_object(object_id) == found
        assert await owner.health.for_stack(fleet.stack.id) == stack_health


async def test_bad_reports_and_wrong_roles_raise_typed_errors(
    live_broker: LiveBroker, admin: AsyncBrokkrClient
) -> None:
    fleet = await deployed_to_two_agents(live_broker, admin)
    first, second = fleet.agents
    object_id = fleet.deployed.id
    missing = uuid.uuid4()

    async with live_broker.client(first.initial_pak) as agent:
        with pytest.raises(ValidationFailed) as invalid:
            await agent.health.report(
                first.agent.id, [update(object_id, "healthy"), update(object_id, "sick")]
            )
        with pytest.raises(ValidationFailed) as unknown:
            await agent.health.report(first.agent.id, [update(missing, "healthy")])
        with pytest.raises(Forbidden) as impostor:
            await agent.health.report(second.agent.id, [update(object_id, "healthy")])
        with pytest.raises(Forbidden):
            await agent.health.for_deployment_object(object_id)

    assert invalid.value.code == "invalid_health_report"
    named = invalid.value.details["entries"]
    assert {(entry["index"], entry["id"]) for entry in named} == {(1, str(object_id))}
    reasons = " ".join(entry["reason"] for entry in named)
    assert "duplicate of entry 0" in reasons and "status must be one of" in reasons
    assert str(missing) in str(unknown.value.details)
    assert impostor.value.code == "agent_pak_mismatch"
    nothing = await admin.health.for_deployment_object(object_id)
    assert (nothing.health_records, nothing.overall_status) == ([], "unknown")

    stranger = await admin.generators.create(name=unique("other"))
    async with live_broker.client(stranger.pak) as other:
        with pytest.raises(NotFound):
            await other.health.for_deployment_object(object_id)
        with pytest.raises(NotFound):
            await other.health.for_stack(fleet.stack.id)
    with pytest.raises(NotFound):
        await admin.health.for_deployment_object(missing)
    with pytest.raises(NotFound):
        await admin.health.for_stack(missing)
