"""The health-report task against a real ``brokkr serve`` (SQLite): a change is reported at
once, an unchanged assessment only every ``resend_after``, an object no longer running is never
reported again, entries the broker refuses (422) are dropped and the rest sent, reports are
split into batches; entries acknowledged over the broker channel are not sent over REST too
(those not acknowledged are); and the runtime loop runs the task only while the agent is ACTIVE.

A ``Verdicts`` stub stands in for the Kubernetes side (``CheckHealth``); a fake clock drives
the periodic resend without waiting.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, cast

import msgspec
import pytest

from brokkr.agent.assessing import Assessment
from brokkr.agent.health_reports import MAX_ENTRIES_PER_REPORT, HealthReports
from brokkr.agent.loop import run_agent
from brokkr.agent.manifests import ObjectRef
from brokkr.agent.outcomes import Outcome
from brokkr.agent.settings import AgentSection, Settings
from brokkr.client import AsyncBrokkrClient, ValidationFailed
from brokkr.common import wire
from brokkr.common.wire import channel as frames
from tests.agent.waiting import eventually
from tests.cli.serving import HOST, free_port

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: v\n"
WEB = ObjectRef(api_version="apps/v1", kind="Deployment", namespace="default", name="web")


def verdict(status: wire.HealthStatus, *conditions: str, ready: int = 1) -> Assessment:
    summary = wire.HealthSummary(pods_ready=ready, pods_total=2, conditions=list(conditions))
    return Assessment(status=status, summary=summary)


class Verdicts:
    """``CheckHealth``: answers ``current`` for every deployment object, records the calls."""

    def __init__(self) -> None:
        self.current = verdict("healthy")
        self.calls: list[tuple[ObjectRef, ...]] = []

    async def __call__(self, applied: tuple[ObjectRef, ...]) -> Assessment:
        self.calls.append(applied)
        return self.current


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class World:
    """An ACTIVE agent targeted at a stack with deployment objects; ``client`` speaks as it."""

    def __init__(self, admin: AsyncBrokkrClient, url: str) -> None:
        self.admin = admin
        self.url = url
        self.agent: wire.Agent
        self.pak = ""
        self.stack_id = uuid.UUID(int=0)
        self.client: AsyncBrokkrClient

    async def deploy(self, name: str = "cm") -> wire.DeploymentObject:
        return await self.admin.stacks.deploy(self.stack_id, CONFIGMAP.format(name=name))

    async def records(self, obj_id: uuid.UUID) -> list[wire.DeploymentHealth]:
        return (await self.admin.health.for_deployment_object(obj_id)).health_records


@pytest.fixture
async def world(admin: AsyncBrokkrClient, broker: tuple[str, str]) -> AsyncIterator[World]:
    suffix = uuid.uuid4().hex[:10]
    created = await admin.agents.create(name=f"agent-{suffix}", cluster_name="test")
    generator = await admin.generators.create(name=f"gen-{suffix}")
    stack = await admin.stacks.create(name=f"stack-{suffix}", generator_id=generator.generator.id)
    await admin.agents.add_target(created.agent.id, stack.id)
    await admin.agents.activate(created.agent.id)
    world = World(admin, broker[0])
    world.agent, world.pak, world.stack_id = created.agent, created.initial_pak, stack.id
    async with AsyncBrokkrClient(broker[0], created.initial_pak) as client:
        world.client = client
        yield world


def reports(world: World, verdicts: Verdicts, clock: Clock) -> HealthReports:
    return HealthReports(world.client, verdicts, resend_after=60.0, clock=clock)


async def test_a_change_is_reported_at_once_and_a_repeat_only_after_the_interval(
    world: World,
) -> None:
    obj = await world.deploy()
    verdicts, clock = Verdicts(), Clock()
    task = reports(world, verdicts, clock)
    running = {obj.id: (WEB,)}

    assert await task.tick(world.agent.id, running) == 1
    [first] = await world.records(obj.id)
    assert (first.agent_id, first.status) == (world.agent.id, "healthy")
    assert verdicts.calls == [(WEB,)]

    clock.now += 59
    assert await task.tick(world.agent.id, running) == 0  # unchanged: nothing sent
    verdicts.current = verdict("failing", "ImagePullBackOff", ready=0)
    assert await task.tick(world.agent.id, running) == 1  # changed: sent at once
    [failing] = await world.records(obj.id)
    assert failing.status == "failing"
    summary = wire.decode_summary(failing.summary)
    assert summary is not None and summary.conditions == ["ImagePullBackOff"]

    clock.now += 59
    assert await task.tick(world.agent.id, running) == 0
    clock.now += 1
    assert await task.tick(world.agent.id, running) == 1  # unchanged, but due again
    [again] = await world.records(obj.id)
    assert again.checked_at > failing.checked_at
    assert task.tracked == 1


async def test_an_object_no_longer_running_is_never_reported_again(world: World) -> None:
    old = await world.deploy("one")
    verdicts, clock = Verdicts(), Clock()
    task = reports(world, verdicts, clock)
    await task.tick(world.agent.id, {old.id: (WEB,)})
    new = await world.deploy("two")  # supersedes ``old``: the runtime drops it

    verdicts.current = verdict("degraded", "CrashLoopBackOff")
    clock.now += 3600
    assert await task.tick(world.agent.id, {new.id: (WEB,)}) == 1

    [kept] = await world.records(old.id)
    assert kept.status == "healthy"  # never touched again
    assert task.tracked == 1
    assert len(verdicts.calls) == 2


async def test_refused_entries_are_dropped_and_the_rest_sent(world: World) -> None:
    obj = await world.deploy()
    unknown = uuid.uuid4()
    verdicts, clock = Verdicts(), Clock()
    task = reports(world, verdicts, clock)
    running = {unknown: (WEB,), obj.id: (WEB,)}

    assert await task.tick(world.agent.id, running) == 1
    assert [r.status for r in await world.records(obj.id)] == ["healthy"]

    # Refused once: not sent again while its assessment stays the same...
    clock.now += 3600
    assert await task.tick(world.agent.id, running) == 1
    # ...tried again when it changes (and refused again), the others unaffected.
    verdicts.current = verdict("failing", "ErrImagePull")
    assert await task.tick(world.agent.id, running) == 1
    assert [r.status for r in await world.records(obj.id)] == ["failing"]


async def test_a_deleted_stack_s_object_is_refused_not_fatal(world: World) -> None:
    obj = await world.deploy()
    await world.admin.stacks.delete(world.stack_id)
    task = reports(world, Verdicts(), Clock())

    assert await task.tick(world.agent.id, {obj.id: (WEB,)}) == 0

    assert task.refused.keys() == {obj.id}


class Recording:
    """A client whose ``health.report`` records each batch; ``refuse`` ids answer a 422."""

    def __init__(self, refuse: set[uuid.UUID] | None = None, whole: bool = False) -> None:
        self.batches: list[list[uuid.UUID]] = []
        self.refuse = refuse or set()
        self.whole = whole
        self.health = self

    async def report(
        self, agent_id: uuid.UUID, updates: list[wire.DeploymentObjectHealthUpdate]
    ) -> None:
        ids = [update.id for update in updates]
        self.batches.append(ids)
        entries: list[dict[str, Any]] = [
            {"index": i, "id": str(key), "reason": "deployment object deleted"}
            for i, key in enumerate(ids)
            if key in self.refuse
        ]
        if self.whole:
            entries = [{"index": None, "id": None, "reason": "too many entries"}]
        if entries:
            raise ValidationFailed(422, "invalid_health_report", "refused", {"entries": entries})


async def test_reports_are_split_into_batches() -> None:
    recording = Recording()
    task = HealthReports(cast("AsyncBrokkrClient", recording), Verdicts(), resend_after=60.0)
    running = {uuid.uuid4(): (WEB,) for _ in range(MAX_ENTRIES_PER_REPORT * 2 + 1)}

    assert await task.tick(uuid.uuid4(), running) == len(running)

    assert [len(batch) for batch in recording.batches] == [500, 500, 1]
    assert {key for batch in recording.batches for key in batch} == running.keys()


async def test_a_problem_of_the_whole_report_is_raised() -> None:
    recording = Recording(whole=True)
    task = HealthReports(cast("AsyncBrokkrClient", recording), Verdicts(), resend_after=60.0)
    running = {uuid.uuid4(): (WEB,)}

    with pytest.raises(ValidationFailed):
        await task.tick(uuid.uuid4(), running)
    # Nothing counts as reported: the next tick sends it again.
    recording.whole = False
    assert await task.tick(uuid.uuid4(), running) == 1


async def test_only_refused_entries_are_dropped() -> None:
    refused = uuid.uuid4()
    recording = Recording(refuse={refused})
    task = HealthReports(cast("AsyncBrokkrClient", recording), Verdicts(), resend_after=60.0)
    others = [uuid.uuid4(), uuid.uuid4()]
    running = {key: (WEB,) for key in [others[0], refused, others[1]]}

    assert await task.tick(uuid.uuid4(), running) == 2

    assert recording.batches == [[others[0], refused, others[1]], others]


class Acking:
    """The channel's ``send_acked``: acknowledges the entries of ``ack`` (all when None)."""

    def __init__(self, ack: set[uuid.UUID] | None = None) -> None:
        self.ack = ack
        self.sent: list[frames.AgentHealthBody] = []

    async def __call__(self, type_: str, body: object) -> bool:
        assert type_ == frames.AGENT_HEALTH
        assert isinstance(body, frames.AgentHealthBody)
        self.sent.append(body)
        return self.ack is None or body.deployment_object_id in self.ack


def over_the_channel(recording: Recording, acking: Acking) -> HealthReports:
    client = cast("AsyncBrokkrClient", recording)
    return HealthReports(client, Verdicts(), resend_after=60.0, send_acked=acking)


async def test_entries_acknowledged_over_the_channel_are_not_sent_over_rest() -> None:
    recording, acking = Recording(), Acking()
    task = over_the_channel(recording, acking)
    agent_id = uuid.uuid4()
    running = {uuid.uuid4(): (WEB,) for _ in range(3)}

    assert await task.tick(agent_id, running) == 3
    assert await task.tick(agent_id, running) == 0  # unchanged: nothing again

    assert recording.batches == []
    assert [body.deployment_object_id for body in acking.sent] == list(running)
    first = acking.sent[0]
    assert (first.agent_id, first.status) == (agent_id, "healthy")
    assert first.summary is not None
    assert wire.decode_summary(first.summary) == verdict("healthy").summary


async def test_entries_not_acknowledged_go_in_one_rest_batch_without_the_acked_ones() -> None:
    keys = [uuid.uuid4() for _ in range(4)]
    recording, acking = Recording(), Acking(ack={keys[0]})
    task = over_the_channel(recording, acking)

    assert await task.tick(uuid.uuid4(), {key: (WEB,) for key in keys}) == 4

    # After the first unacknowledged entry the rest do not wait for acks of their own.
    assert [body.deployment_object_id for body in acking.sent] == keys[:2]
    assert recording.batches == [keys[1:]]


async def test_with_the_channel_down_everything_goes_over_rest() -> None:
    keys = [uuid.uuid4() for _ in range(3)]
    recording, acking = Recording(), Acking(ack=set())
    task = over_the_channel(recording, acking)

    assert await task.tick(uuid.uuid4(), {key: (WEB,) for key in keys}) == 3

    assert len(acking.sent) == 1
    assert recording.batches == [keys]


class Applier:
    """A reconcile that applies nothing but says it left ``WEB`` in the cluster."""

    async def __call__(
        self, objects: list[wire.DeploymentObject], *, agent_id: uuid.UUID
    ) -> list[Outcome]:
        return [
            Outcome(deployment_object_id=obj.id, success=True, applied=(WEB,)) for obj in objects
        ]


class Cluster:
    async def ping(self) -> bool:
        return True


def settings(world: World, *, enabled: bool = True) -> Settings:
    section = AgentSection(
        broker_url=world.url,
        pak=world.pak,
        agent_name=world.agent.name,
        cluster_name=world.agent.cluster_name,
        health_port=free_port(),
        max_retries=3,
        polling_interval=0.2,
        backoff_min=0.05,
        backoff_max=0.3,
        deployment_health_enabled=enabled,
        deployment_health_check_interval=0.2,
        deployment_health_interval=0.5,
    )
    return Settings(agent=section)


async def run_for_a_while(world: World, verdicts: Verdicts, *, enabled: bool = True) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_agent(
            settings(world, enabled=enabled),
            cluster=Cluster(),
            reconcile=Applier(),
            stop=stop,
            probe_host=HOST,
            check_health=verdicts,
        )
    )
    try:

        async def applied() -> bool:
            events = await world.admin.agents.events(world.agent.id)
            return any(event.status == "SUCCESS" for event in events)

        await eventually(applied)
        if enabled:
            await eventually(lambda: len(verdicts.calls) >= 3, what="three health checks")
        else:
            await asyncio.sleep(0.6)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


async def test_the_runtime_reports_what_it_applied(world: World) -> None:
    obj = await world.deploy()
    verdicts = Verdicts()
    verdicts.current = verdict("degraded", "CrashLoopBackOff")

    await run_for_a_while(world, verdicts)

    assert set(verdicts.calls) == {(WEB,)}
    [record] = await world.records(obj.id)
    assert (record.agent_id, record.status) == (world.agent.id, "degraded")


async def test_disabled_health_reports_nothing(world: World) -> None:
    obj = await world.deploy()
    verdicts = Verdicts()

    await run_for_a_while(world, verdicts, enabled=False)

    assert verdicts.calls == []
    assert await world.records(obj.id) == []


async def test_an_inactive_agent_reports_nothing(world: World) -> None:
    await world.admin.agents.deactivate(world.agent.id)
    obj = await world.deploy()
    verdicts = Verdicts()
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_agent(
            settings(world),
            cluster=Cluster(),
            reconcile=Applier(),
            stop=stop,
            probe_host=HOST,
            check_health=verdicts,
        )
    )

    async def beaten() -> datetime | None:
        return (await world.admin.agents.get(world.agent.id)).last_heartbeat

    try:
        await eventually(beaten)
        await asyncio.sleep(0.6)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    assert verdicts.calls == []
    assert await world.records(obj.id) == []


async def test_a_restarted_agent_reports_what_it_applied_before_at_once(world: World) -> None:
    """The object was applied and reported by an earlier run, so incremental polls no longer
    serve it: the start-up full poll re-applies it, and its health is reported long before the
    next reconcile interval."""
    obj = await world.deploy()
    await world.client.agents.report_event(
        world.agent.id, deployment_object_id=obj.id, status="SUCCESS", message="earlier run"
    )
    verdicts = Verdicts()
    verdicts.current = verdict("failing", "ImagePullBackOff", ready=0)
    config = settings(world)
    config = Settings(agent=msgspec.structs.replace(config.agent, reconcile_interval=3600.0))
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_agent(
            config,
            cluster=Cluster(),
            reconcile=Applier(),
            stop=stop,
            probe_host=HOST,
            check_health=verdicts,
        )
    )
    try:

        async def reported() -> list[wire.DeploymentHealth]:
            return await world.records(obj.id)

        [record] = await eventually(reported, what="the health of the earlier object")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    assert (record.agent_id, record.status) == (world.agent.id, "failing")
