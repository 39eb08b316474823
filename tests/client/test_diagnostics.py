"""``client.diagnostics`` against a real broker process, on SQLite and on PostgreSQL.

Covers the round trip: the admin's ``request`` (pending, ``expires_at`` from
``retention_minutes``), ``get`` without a result, ``list_for_deployment_object`` and the agent's
``list_pending``; ``claim`` with the agent's PAK (a second claim is a ``Conflict``), ``submit``
(the three documents come back as sent; the request reads ``completed`` with its result, no
longer pending); and the typed errors: a generator may not request (``Forbidden``), another agent
reads no request of this one (``NotFound``, like a missing one), a retention out of range is
``BadRequest``, an unknown object ``NotFound``, an unknown agent ``ValidationFailed``, the admin
may not submit for the agent (``Forbidden``) and a result for an unclaimed request is a
``Conflict``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from brokkr.client import (
    AsyncBrokkrClient,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from brokkr.common import wire
from tests.client.conftest import LiveBroker, manifest, unique

PODS = [
    wire.PodStatus(
        name="web-1",
        namespace="shop",
        phase="Pending",
        owner="Deployment/web",
        containers=[
            wire.ContainerStatus(
                name="app",
                ready=False,
                restart_count=0,
                state="Waiting",
                state_reason="ErrImagePull",
            )
        ],
    )
]
EVENTS = [
    wire.DiagnosticEvent(
        event_type="Warning", reason="Failed", message="pull failed", involved_object="web-1"
    )
]
LOGS: wire.LogTails = {"web-1/app": "starting\n", "web-1/app/previous": "boom\n"}


def document(value: object) -> str:
    return msgspec.json.encode(value).decode()


async def served_agent(
    admin: AsyncBrokkrClient,
) -> tuple[wire.CreateAgentResponse, wire.DeploymentObject]:
    """An active agent targeted at a new stack holding one deployment object."""
    created = await admin.agents.create(name=unique("edge"), cluster_name=unique("cluster"))
    await admin.agents.activate(created.agent.id)
    stack = await admin.stacks.create(name=unique("web"))
    await admin.agents.add_target(created.agent.id, stack.id)
    return created, await admin.stacks.deploy(stack.id, manifest(unique("cm")))


async def test_request_claim_submit_and_read_back(
    live_broker: LiveBroker, admin: AsyncBrokkrClient
) -> None:
    agent, deployed = await served_agent(admin)

    request = await admin.diagnostics.request(
        deployed.id, agent_id=agent.agent.id, requested_by="oncall", retention_minutes=5
    )

    assert isinstance(request, wire.DiagnosticRequest)
    assert (request.agent_id, request.deployment_object_id) == (agent.agent.id, deployed.id)
    assert (request.status, request.requested_by) == ("pending", "oncall")
    assert request.claimed_at is None and request.completed_at is None
    assert request.failure_reason is None
    assert timedelta(minutes=4) < request.expires_at - request.created_at <= timedelta(minutes=6)
    assert await admin.diagnostics.get(request.id) == wire.DiagnosticResponse(request=request)
    assert await admin.diagnostics.list_for_deployment_object(deployed.id) == [request]

    collected_at = datetime.now(UTC).replace(microsecond=0)
    async with live_broker.client(agent.initial_pak) as as_agent:
        assert await as_agent.diagnostics.list_pending(agent.agent.id) == [request]
        claimed = await as_agent.diagnostics.claim(request.id)
        with pytest.raises(Conflict) as again:
            await as_agent.diagnostics.claim(request.id)
        assert await as_agent.diagnostics.list_pending(agent.agent.id) == []
        result = await as_agent.diagnostics.submit(
            request.id,
            pod_statuses=document(PODS),
            events=document(EVENTS),
            log_tails=document(LOGS),
            collected_at=collected_at,
        )
        seen_by_agent = await as_agent.diagnostics.get(request.id)

    assert (claimed.status, claimed.id) == ("claimed", request.id)
    assert claimed.claimed_at is not None
    assert again.value.code == "diagnostic_already_claimed"
    assert isinstance(result, wire.DiagnosticResult)
    assert (result.request_id, result.collected_at) == (request.id, collected_at)
    assert msgspec.json.decode(result.pod_statuses, type=list[wire.PodStatus]) == PODS
    assert msgspec.json.decode(result.events, type=list[wire.DiagnosticEvent]) == EVENTS
    assert msgspec.json.decode(result.log_tails or "", type=wire.LogTails) == LOGS
    answered = await admin.diagnostics.get(request.id)
    assert answered == seen_by_agent
    assert answered.result == result
    assert answered.request.status == "completed" and answered.request.completed_at is not None


async def test_bad_input_and_wrong_roles_raise_typed_errors(
    live_broker: LiveBroker, admin: AsyncBrokkrClient
) -> None:
    agent, deployed = await served_agent(admin)
    rival, _ = await served_agent(admin)
    request = await admin.diagnostics.request(deployed.id, agent_id=agent.agent.id)

    with pytest.raises(BadRequest) as out_of_range:
        await admin.diagnostics.request(deployed.id, agent_id=agent.agent.id, retention_minutes=0)
    assert out_of_range.value.code == "invalid_diagnostic_request"
    with pytest.raises(NotFound):
        await admin.diagnostics.request(uuid.uuid4(), agent_id=agent.agent.id)
    with pytest.raises(ValidationFailed) as unknown_agent:
        await admin.diagnostics.request(deployed.id, agent_id=uuid.uuid4())
    assert unknown_agent.value.details["fields"]["agent_id"]
    with pytest.raises(NotFound) as missing:
        await admin.diagnostics.get(uuid.uuid4())
    assert missing.value.code == "diagnostic_not_found"
    with pytest.raises(Forbidden) as admin_submits:
        await admin.diagnostics.submit(
            request.id,
            pod_statuses="[]",
            events="[]",
            log_tails=None,
            collected_at=datetime.now(UTC),
        )
    assert admin_submits.value.code == "diagnostic_not_owned"

    generator = await admin.generators.create(name=unique("ci"))
    async with live_broker.client(generator.pak) as ci:
        with pytest.raises(Forbidden):
            await ci.diagnostics.request(deployed.id, agent_id=agent.agent.id)
        with pytest.raises(NotFound):
            await ci.diagnostics.get(request.id)
    async with live_broker.client(rival.initial_pak) as other:
        with pytest.raises(NotFound) as foreign:
            await other.diagnostics.get(request.id)
        with pytest.raises(NotFound):
            await other.diagnostics.claim(request.id)
    assert foreign.value.code == "diagnostic_not_found"
    async with live_broker.client(agent.initial_pak) as as_agent:
        with pytest.raises(Conflict) as unclaimed:
            await as_agent.diagnostics.submit(
                request.id,
                pod_statuses="[]",
                events="[]",
                log_tails=None,
                collected_at=datetime.now(UTC),
            )
    assert unclaimed.value.code == "diagnostic_not_claimed"
    assert (await admin.diagnostics.get(request.id)).request.status == "pending"
