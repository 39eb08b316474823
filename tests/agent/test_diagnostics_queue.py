"""The agent's diagnostics task against a real ``brokkr serve`` subprocess (SQLite), with a
stand-in ``CollectDiagnostics``.

Covers: a pending request is claimed, collected for exactly the objects that deployment object
applied, and submitted (the broker marks it completed and serves the documents); a request lost
to another process of the agent (409 on claim) is skipped quietly and the next one answered;
two processes polling at once answer a request once; an object this agent has not applied, a
failing or a slow collection are still answered, with a ``NotApplied`` or ``CollectionFailed``
event in valid JSON; a result the broker could not take is submitted on a later poll. And the
whole runtime: once ACTIVE, the agent answers about what its reconcile applied.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import msgspec
import pytest

from brokkr.agent.diagnostics_queue import COLLECTION_FAILED, NOT_APPLIED, DiagnosticsQueue
from brokkr.agent.loop import run_agent
from brokkr.agent.manifests import ObjectRef
from brokkr.agent.outcomes import Diagnosis, Outcome
from brokkr.agent.settings import AgentSection, Settings
from brokkr.client import AsyncBrokkrClient, Retry
from brokkr.common import wire
from tests.agent.waiting import eventually
from tests.cli.serving import HOST, free_port
from tests.fakes.gate import Gate

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n"
WEB = ObjectRef(api_version="apps/v1", kind="Deployment", namespace="shop", name="web")
DIAGNOSIS = Diagnosis(
    pod_statuses=msgspec.json.encode(
        [wire.PodStatus(name="web-1", namespace="shop", phase="Running", owner="Deployment/web")]
    ).decode(),
    events="[]",
    log_tails='{"web-1/main": "hello\\n"}',
)


@dataclass
class Collector:
    """A ``CollectDiagnostics`` answering ``DIAGNOSIS`` (or raising ``error``), after
    ``before`` when given."""

    error: Exception | None = None
    delay: float = 0.0
    before: asyncio.Event | None = None
    seen: list[tuple[ObjectRef, ...]] = field(default_factory=list)

    async def __call__(self, objects: Sequence[ObjectRef]) -> Diagnosis:
        self.seen.append(tuple(objects))
        if self.before is not None:
            await self.before.wait()
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return DIAGNOSIS


@dataclass
class World:
    admin: AsyncBrokkrClient
    agent: wire.Agent
    client: AsyncBrokkrClient
    pak: str
    deployment_object: wire.DeploymentObject

    def queue(
        self,
        collector: Collector,
        *,
        applied: bool = True,
        timeout: float = 10.0,
        client: AsyncBrokkrClient | None = None,
    ) -> DiagnosticsQueue:
        running = {self.deployment_object.id: (WEB,)} if applied else {}
        return DiagnosticsQueue(
            client or self.client,
            collector,
            lambda: running,
            timeout=timeout,
            stop=asyncio.Event(),
        )

    async def request(self) -> wire.DiagnosticRequest:
        return await self.admin.diagnostics.request(
            self.deployment_object.id, agent_id=self.agent.id, requested_by="test"
        )

    async def read(self, request: wire.DiagnosticRequest) -> wire.DiagnosticResponse:
        return await self.admin.diagnostics.get(request.id)


@pytest.fixture
async def world(admin: AsyncBrokkrClient, broker: tuple[str, str]) -> AsyncIterator[World]:
    suffix = uuid.uuid4().hex[:10]
    created = await admin.agents.create(name=f"agent-{suffix}", cluster_name="c")
    generator = await admin.generators.create(name=f"gen-{suffix}")
    stack = await admin.stacks.create(name=f"stack-{suffix}", generator_id=generator.generator.id)
    await admin.agents.add_target(created.agent.id, stack.id)
    deployed = await admin.stacks.deploy(stack.id, CONFIGMAP)
    async with AsyncBrokkrClient(broker[0], created.initial_pak, retry=Retry(attempts=1)) as client:
        yield World(admin, created.agent, client, created.initial_pak, deployed)


@asynccontextmanager
async def agent_client(url: str, world: World) -> AsyncIterator[AsyncBrokkrClient]:
    """The same agent's PAK, through another URL (a gate) or as a second process."""
    async with AsyncBrokkrClient(url, world.pak, retry=Retry(attempts=1)) as client:
        yield client


def explanation(response: wire.DiagnosticResponse) -> wire.DiagnosticEvent:
    assert response.result is not None
    assert response.result.pod_statuses == "[]"
    assert response.result.log_tails is None
    [event] = msgspec.json.decode(response.result.events, type=list[wire.DiagnosticEvent])
    return event


async def test_a_request_is_claimed_collected_and_submitted(world: World) -> None:
    request = await world.request()
    collector = Collector()

    await world.queue(collector).poll(world.agent.id)

    assert collector.seen == [(WEB,)]
    response = await world.read(request)
    assert response.request.status == "completed"
    assert response.result is not None
    assert (response.result.pod_statuses, response.result.events, response.result.log_tails) == (
        DIAGNOSIS.pod_statuses,
        DIAGNOSIS.events,
        DIAGNOSIS.log_tails,
    )
    assert await world.client.diagnostics.list_pending(world.agent.id) == []


async def test_a_lost_claim_is_skipped_and_the_next_request_answered(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost, next_one = await world.request(), await world.request()
    stale = await world.client.diagnostics.list_pending(world.agent.id)
    # Another process of this agent claims the first request after this one listed it.
    await world.client.diagnostics.claim(lost.id)

    async def listed(agent_id: uuid.UUID) -> list[wire.DiagnosticRequest]:
        return stale

    monkeypatch.setattr(world.client.diagnostics, "list_pending", listed)
    collector = Collector()

    await world.queue(collector).poll(world.agent.id)

    assert len(collector.seen) == 1
    assert (await world.read(lost)).request.status == "claimed"
    assert (await world.read(next_one)).request.status == "completed"


async def test_two_processes_answer_a_request_once(world: World, broker: tuple[str, str]) -> None:
    request = await world.request()
    first, second = Collector(), Collector()
    async with agent_client(broker[0], world) as other:
        await asyncio.gather(
            world.queue(first).poll(world.agent.id),
            world.queue(second, client=other).poll(world.agent.id),
        )
    assert len(first.seen) + len(second.seen) == 1
    assert (await world.read(request)).request.status == "completed"


async def test_an_object_not_applied_here_is_answered_as_such(world: World) -> None:
    request = await world.request()
    collector = Collector()

    await world.queue(collector, applied=False).poll(world.agent.id)

    assert collector.seen == []
    response = await world.read(request)
    assert response.request.status == "completed"
    event = explanation(response)
    assert event.reason == NOT_APPLIED
    assert str(world.deployment_object.id) in (event.message or "")


@pytest.mark.parametrize(
    ("collector", "timeout", "message"),
    [
        (Collector(error=RuntimeError('API said "no" \\ {broken')), 10.0, 'API said "no"'),
        (Collector(delay=5.0), 0.2, "longer than 0.2 s"),
    ],
)
async def test_a_failed_collection_is_answered_in_valid_json(
    world: World, collector: Collector, timeout: float, message: str
) -> None:
    request = await world.request()

    await world.queue(collector, timeout=timeout).poll(world.agent.id)

    event = explanation(await world.read(request))
    assert event.reason == COLLECTION_FAILED
    assert message in (event.message or "")


async def test_a_result_the_broker_could_not_take_is_submitted_later(
    world: World, broker: tuple[str, str]
) -> None:
    request = await world.request()
    gate = Gate(int(broker[0].rsplit(":", 1)[1]))
    await gate.open()
    collecting = asyncio.Event()
    try:
        async with agent_client(gate.url, world) as client:
            collector = Collector(before=collecting)
            queue = world.queue(collector, client=client)
            polling = asyncio.create_task(queue.poll(world.agent.id))
            await asyncio.sleep(0)
            # The broker becomes unreachable while the agent collects.
            while not collector.seen:
                await asyncio.sleep(0.01)
            await gate.shut()
            collecting.set()
            await polling
            assert (await world.read(request)).request.status == "claimed"
            await gate.open()
            await queue.poll(world.agent.id)
    finally:
        await gate.shut()
    assert (await world.read(request)).request.status == "completed"
    assert len(collector.seen) == 1


class Cluster:
    async def ping(self) -> bool:
        return True


async def applies_web(
    objects: list[wire.DeploymentObject], *, agent_id: uuid.UUID
) -> list[Outcome]:
    """A reconcile that applies every object as the Deployment ``WEB``."""
    return [Outcome(deployment_object_id=obj.id, success=True, applied=(WEB,)) for obj in objects]


async def test_the_runtime_answers_about_what_it_applied_once_active(
    world: World, broker: tuple[str, str]
) -> None:
    collector = Collector()
    section = AgentSection(
        broker_url=broker[0],
        pak=world.pak,
        agent_name=world.agent.name,
        cluster_name=world.agent.cluster_name,
        health_port=free_port(),
        polling_interval=0.2,
        diagnostics_interval=0.2,
        backoff_min=0.05,
        backoff_max=0.3,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_agent(
            Settings(agent=section),
            cluster=Cluster(),
            reconcile=applies_web,
            stop=stop,
            probe_host=HOST,
            collect_diagnostics=collector,
        )
    )
    try:
        await world.admin.agents.activate(world.agent.id)

        async def applied() -> bool:
            events = await world.admin.agents.events(world.agent.id)
            return any(e.deployment_object_id == world.deployment_object.id for e in events)

        await eventually(applied, what="the object applied")
        request = await world.request()

        async def answered() -> bool:
            return (await world.read(request)).request.status == "completed"

        await eventually(answered, what="the request answered")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    # Collected for what the reconcile left in the cluster.
    assert collector.seen == [(WEB,)]
