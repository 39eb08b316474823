"""The agent's webhook task against a real ``brokkr serve`` subprocess (SQLite) and a real local
receiver.

Covers: a delivery of a subscription whose ``target_labels`` the agent carries is claimed,
POSTed with the envelope verbatim and the headers (``X-Brokkr-Event``, ``X-Brokkr-Delivery-Id``,
a signature that verifies with the subscription's secret, ``Authorization``) and reported
success; a 500 is reported failed (retry scheduled, the error quoted), a 410 dead, a redirect is
not followed, a receiver slower than the subscription's timeout is a failure; an agent without
the labels never gets the delivery (which waits for one that has them); an outcome the broker
could not take is reported on the next tick without POSTing again. And the whole runtime: once
ACTIVE, the agent delivers by itself.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest

from brokkr.agent.loop import run_agent
from brokkr.agent.settings import AgentSection, Settings
from brokkr.agent.webhook_deliveries import WebhookDeliveries
from brokkr.client import AsyncBrokkrClient, BrokkrConnectionError, Retry
from brokkr.common import signing, wire
from tests.agent.waiting import eventually
from tests.cli.serving import HOST, free_port
from tests.fakes.webhook_receiver import Reply, WebhookReceiver

SECRET = "agent-side-secret-0123456789"
AUTH = "Bearer receiver-token"


@dataclass
class World:
    admin: AsyncBrokkrClient
    agent: wire.Agent
    pak: str
    client: AsyncBrokkrClient
    label: str
    receiver: WebhookReceiver
    subscription: wire.WebhookResponse
    # Every deliverer made, closed when the test ends.
    deliverers: list[WebhookDeliveries] = field(default_factory=list)

    def deliverer(self, client: AsyncBrokkrClient | None = None) -> WebhookDeliveries:
        made = WebhookDeliveries(client or self.client, stop=asyncio.Event())
        self.deliverers.append(made)
        return made

    async def emit(self) -> wire.Stack:
        """One ``stack.created`` event: one delivery for the subscription."""
        generator = await self.admin.generators.create(name=unique("gen"))
        return await self.admin.stacks.create(
            name=unique("stack"), generator_id=generator.generator.id
        )

    async def delivery(self) -> wire.WebhookDelivery:
        [found] = await self.admin.webhooks.deliveries(self.subscription.id)
        return found


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as running:
        yield running


async def labelled_agent(admin: AsyncBrokkrClient, label: str) -> wire.CreateAgentResponse:
    created = await admin.agents.create(name=unique("agent"), cluster_name=unique("cluster"))
    await admin.agents.add_label(created.agent.id, label)
    return created


@pytest.fixture
async def world(
    admin: AsyncBrokkrClient, broker: tuple[str, str], receiver: WebhookReceiver
) -> AsyncIterator[World]:
    label = unique("edge")
    created = await labelled_agent(admin, label)
    subscription = await admin.webhooks.create(
        name=unique("hook"),
        url=receiver.url,
        event_types=["stack.created"],
        auth_header=AUTH,
        secret=SECRET,
        target_labels=[label],
        timeout_seconds=5,
    )
    async with AsyncBrokkrClient(broker[0], created.initial_pak, retry=Retry(attempts=1)) as client:
        world = World(
            admin, created.agent, created.initial_pak, client, label, receiver, subscription
        )
        yield world
        for deliverer in world.deliverers:
            await deliverer.aclose()
    await admin.webhooks.delete(subscription.id)


async def test_a_delivery_is_posted_with_its_headers_and_reported(world: World) -> None:
    stack = await world.emit()
    deliverer = world.deliverer()

    await deliverer.poll(world.agent.id)

    [request] = world.receiver.requests
    delivery = await world.delivery()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("success", 1, None)
    assert request.body == delivery.payload.encode()
    envelope = msgspec.json.decode(request.body, type=wire.WebhookEnvelope)
    assert envelope.event_type == "stack.created"
    assert envelope.data["stack_id"] == str(stack.id)
    headers = request.headers
    assert headers["content-type"] == "application/json"
    assert headers["x-brokkr-event"] == "stack.created"
    assert headers["x-brokkr-delivery-id"] == str(delivery.id)
    assert headers["authorization"] == AUTH
    assert headers["user-agent"].startswith("brokkr-agent/")
    assert signing.verify(SECRET, request.body, headers["x-brokkr-signature"])


@pytest.mark.parametrize(
    ("status", "outcome", "error"),
    [(500, "failed", "HTTP 500: answered 500"), (410, "dead", "HTTP 410"), (307, "failed", "307")],
)
async def test_a_refusal_is_reported_as_a_failure(
    world: World, status: int, outcome: str, error: str
) -> None:
    world.receiver.answer = lambda _: Reply(status=status)
    await world.emit()

    await world.deliverer().poll(world.agent.id)

    assert len(world.receiver.requests) == 1  # a redirect is not followed
    delivery = await world.delivery()
    assert (delivery.status, delivery.attempts) == (outcome, 1)
    assert error in (delivery.last_error or "")
    assert (delivery.next_retry_at is not None) == (outcome == "failed")


async def test_a_receiver_slower_than_the_timeout_fails(world: World) -> None:
    await world.admin.webhooks.update(world.subscription.id, timeout_seconds=1)
    world.receiver.answer = lambda _: Reply(delay=5.0)
    await world.emit()

    await world.deliverer().poll(world.agent.id)

    delivery = await world.delivery()
    assert delivery.status == "failed"
    assert "timed out" in (delivery.last_error or "")


async def test_an_agent_without_the_labels_never_gets_the_delivery(
    world: World, broker: tuple[str, str]
) -> None:
    other = await labelled_agent(world.admin, unique("elsewhere"))
    await world.emit()

    async with AsyncBrokkrClient(broker[0], other.initial_pak, retry=Retry(attempts=1)) as client:
        assert await client.webhooks.pending(other.agent.id) == []
        await world.deliverer(client).poll(other.agent.id)

    assert world.receiver.requests == []
    assert (await world.delivery()).status == "pending"
    await world.deliverer().poll(world.agent.id)
    assert len(world.receiver.requests) == 1
    assert (await world.delivery()).status == "success"


async def test_an_outcome_not_taken_is_reported_on_the_next_tick(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.emit()
    deliverer = world.deliverer()
    report = world.client.webhooks.report_result

    async def unreachable(*args: Any, **kwargs: Any) -> wire.DeliveryResultResponse:
        raise BrokkrConnectionError("broker unreachable")

    monkeypatch.setattr(world.client.webhooks, "report_result", unreachable)
    await deliverer.poll(world.agent.id)
    assert (await world.delivery()).status == "acquired"
    assert list(deliverer.unreported) == [(await world.delivery()).id]

    monkeypatch.setattr(world.client.webhooks, "report_result", report)
    await deliverer.poll(world.agent.id)

    assert (await world.delivery()).status == "success"
    assert len(world.receiver.requests) == 1
    assert deliverer.unreported == {}


class Cluster:
    async def ping(self) -> bool:
        return True


async def reconciles_nothing(
    objects: list[wire.DeploymentObject], *, agent_id: uuid.UUID
) -> list[Any]:
    return []


async def test_the_runtime_delivers_once_active(world: World, broker: tuple[str, str]) -> None:
    section = AgentSection(
        broker_url=broker[0],
        pak=world.pak,
        agent_name=world.agent.name,
        cluster_name=world.agent.cluster_name,
        health_port=free_port(),
        polling_interval=0.2,
        webhook_delivery_interval=0.2,
        backoff_min=0.05,
        backoff_max=0.3,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_agent(
            Settings(agent=section),
            cluster=Cluster(),
            reconcile=reconciles_nothing,
            stop=stop,
            probe_host=HOST,
        )
    )
    try:
        await world.admin.agents.activate(world.agent.id)
        await world.emit()

        async def delivered() -> bool:
            return (await world.delivery()).status == "success"

        await eventually(delivered, what="the delivery made by the running agent")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    assert len(world.receiver.requests) == 1
