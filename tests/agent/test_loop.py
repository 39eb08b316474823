"""The agent runtime against a real ``brokkr serve`` subprocess (SQLite), with real probes.

Covers: the agent finds its id and heartbeats (``last_heartbeat`` set); nothing is applied while
INACTIVE; after activation reconcile runs once with the new object as this agent (the id found at
start-up), SUCCESS is reported and the incremental target state is then empty; 304 polls do not
reconcile; a FAILURE is reported and retried after a backoff; the full poll re-applies after
``reconcile_interval``; with the broker unreachable the probes stay up (/healthz 200, /readyz 503)
and the agent recovers by itself; a stop during a slow reconcile lets it finish and report; a
wrong agent name fails start-up. Events report changes, not repetitions: re-applies that change
nothing and a failure repeating with the same reason post nothing more, a new reason and a drift
fix do; a slow stack holds up neither the polls nor another stack; the log says when the agent
is paused (INACTIVE) and when it resumes.

Test seams, not mocks: ``Cluster`` (ping returns a flag), ``Recorder`` (a reconcile callable that
records its calls) and ``Gate`` (a TCP relay in front of the broker that can be shut).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from brokkr.agent.loop import run_agent
from brokkr.agent.outcomes import Outcome, Reconcile, StartupError
from brokkr.agent.settings import AgentSection, Settings
from brokkr.client import AsyncBrokkrClient
from brokkr.common import wire
from tests.agent.waiting import eventually
from tests.cli.serving import HOST, free_port
from tests.fakes.gate import Gate

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: v\n"


class Cluster:
    def __init__(self) -> None:
        self.reachable = True

    async def ping(self) -> bool:
        return self.reachable


class Recorder:
    """Records each call (object ids, agent id); ``fail_first`` calls fail; ``delay`` makes each
    call slow."""

    def __init__(
        self,
        *,
        fail_first: int = 0,
        delay: float = 0.0,
        failure: str = "apply failed: boom",
        settled: bool = False,
    ) -> None:
        self.calls: list[tuple[list[uuid.UUID], uuid.UUID]] = []
        self.finished = 0
        self.fail_first = fail_first
        self.delay = delay
        self.failure = failure
        # Successes after the first change nothing in the cluster (a steady re-apply).
        self.settled = settled

    async def __call__(
        self, objects: list[wire.DeploymentObject], *, agent_id: uuid.UUID
    ) -> list[Outcome]:
        self.calls.append(([obj.id for obj in objects], agent_id))
        await asyncio.sleep(self.delay)
        success = len(self.calls) > self.fail_first
        self.finished += 1
        changed = not (self.settled and len(self.calls) > self.fail_first + 1)
        return [
            Outcome(
                deployment_object_id=obj.id,
                success=success,
                message=None if success else self.failure,
                changed=changed,
            )
            for obj in objects
        ]


class World:
    """An agent (INACTIVE, with its PAK) targeted at a stack of a generator."""

    def __init__(self, admin: AsyncBrokkrClient, created: wire.CreateAgentResponse) -> None:
        self.admin = admin
        self.agent = created.agent
        self.pak = created.initial_pak
        self.stack_id = uuid.UUID(int=0)

    async def deploy(self, name: str = "cm") -> wire.DeploymentObject:
        return await self.admin.stacks.deploy(self.stack_id, CONFIGMAP.format(name=name))

    async def events(self) -> list[wire.AgentEvent]:
        return await self.admin.agents.events(self.agent.id)

    def settings(self, url: str, *, reconcile_interval: float = 60.0) -> Settings:
        """Fast timings: polls every 0.2 s, backoff 0.05-0.3 s."""
        section = AgentSection(
            broker_url=url,
            pak=self.pak,
            agent_name=self.agent.name,
            cluster_name=self.agent.cluster_name,
            health_port=free_port(),
            max_retries=3,
            polling_interval=0.2,
            reconcile_interval=reconcile_interval,
            backoff_min=0.05,
            backoff_max=0.3,
            shutdown_grace_seconds=5.0,
        )
        return Settings(agent=section)


@pytest.fixture
async def world(admin: AsyncBrokkrClient) -> World:
    suffix = uuid.uuid4().hex[:10]
    created = await admin.agents.create(name=f"agent-{suffix}", cluster_name="test")
    generator = await admin.generators.create(name=f"gen-{suffix}")
    stack = await admin.stacks.create(name=f"stack-{suffix}", generator_id=generator.generator.id)
    await admin.agents.add_target(created.agent.id, stack.id)
    world = World(admin, created)
    world.stack_id = stack.id
    return world


@asynccontextmanager
async def running(
    settings: Settings, reconcile: Reconcile, cluster: Cluster | None = None
) -> AsyncIterator[asyncio.Event]:
    """The agent in a task; stopped (and required to return cleanly) on exit."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_agent(
            settings,
            cluster=cluster or Cluster(),
            reconcile=reconcile,
            stop=stop,
            probe_host=HOST,
        )
    )
    try:
        # The probes come up before anything touches the broker.
        await eventually(lambda: _listening(settings.agent.health_port), timeout=5.0)
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


async def _listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(HOST, port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def probe(settings: Settings, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{settings.agent.health_port}") as http:
        return await http.get(path)


async def test_heartbeats_and_stays_idle_while_inactive(
    world: World, broker: tuple[str, str]
) -> None:
    recorder = Recorder()
    await world.deploy()
    settings = world.settings(broker[0])
    async with running(settings, recorder):

        async def beaten() -> bool:
            return (await world.admin.agents.get(world.agent.id)).last_heartbeat is not None

        await eventually(beaten)
        health = (await probe(settings, "/health")).json()
        assert health["agent_id"] == str(world.agent.id)
        await asyncio.sleep(0.8)
    assert recorder.calls == []


async def test_applies_once_after_activation_and_reports_success(
    world: World, broker: tuple[str, str]
) -> None:
    recorder = Recorder()
    obj = await world.deploy()
    await world.admin.agents.activate(world.agent.id)
    settings = world.settings(broker[0])
    async with running(settings, recorder):

        async def reported() -> bool:
            return any(event.status == "SUCCESS" for event in await world.events())

        await eventually(reported)
        # Several more polls: the broker answers 304 and nothing is re-applied.
        await asyncio.sleep(1.0)
        metrics = (await probe(settings, "/metrics")).text
        assert (await probe(settings, "/readyz")).status_code == 200
    assert recorder.calls == [([obj.id], world.agent.id)]
    (event,) = await world.events()
    assert (event.deployment_object_id, event.status) == (obj.id, "SUCCESS")
    async with AsyncBrokkrClient(broker[0], world.pak) as agent_client:
        state = await agent_client.agents.target_state(world.agent.id)
    assert state.objects == []
    assert 'brokkr_agent_poll_requests_total{status="success"}' in metrics


async def test_failure_is_reported_and_retried_with_backoff(
    world: World, broker: tuple[str, str]
) -> None:
    recorder = Recorder(fail_first=1)
    obj = await world.deploy()
    await world.admin.agents.activate(world.agent.id)
    async with running(world.settings(broker[0]), recorder):

        async def retried() -> bool:
            return {event.status for event in await world.events()} == {"FAILURE", "SUCCESS"}

        await eventually(retried)
    failure = next(event for event in await world.events() if event.status == "FAILURE")
    assert failure.message == "apply failed: boom"
    assert recorder.calls[:2] == [([obj.id], world.agent.id)] * 2


async def test_a_failure_longer_than_an_event_message_is_reported_clipped(
    world: World, broker: tuple[str, str]
) -> None:
    recorder = Recorder(fail_first=1, failure="x" * 20_000)
    await world.deploy()
    await world.admin.agents.activate(world.agent.id)
    async with running(world.settings(broker[0]), recorder):

        async def reported() -> bool:
            return any(event.status == "FAILURE" for event in await world.events())

        await eventually(reported)
    failure = next(event for event in await world.events() if event.status == "FAILURE")
    assert failure.message is not None
    assert len(failure.message) == wire.types.MAX_EVENT_MESSAGE
    assert failure.message.startswith("xxx") and failure.message.endswith("…")


async def test_full_poll_reapplies_after_the_reconcile_interval(
    world: World, broker: tuple[str, str]
) -> None:
    recorder = Recorder()
    obj = await world.deploy()
    await world.admin.agents.activate(world.agent.id)
    async with running(world.settings(broker[0], reconcile_interval=1.0), recorder):

        async def reapplied() -> bool:
            # The incremental polls answer 304 after the SUCCESS: only the full poll re-applies.
            return recorder.calls.count(([obj.id], world.agent.id)) >= 2

        await eventually(reapplied, timeout=5.0)


async def test_broker_outage_keeps_probes_up_and_recovers(
    world: World, broker: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="brokkr.agent")
    recorder = Recorder()
    gate = Gate(int(broker[0].rsplit(":", 1)[1]))
    await gate.open()
    await world.admin.agents.activate(world.agent.id)
    settings = world.settings(gate.url)
    async with running(settings, recorder):

        async def ready() -> bool:
            return (await probe(settings, "/readyz")).status_code == 200

        await eventually(ready)
        await gate.shut()

        async def not_ready() -> bool:
            return (await probe(settings, "/readyz")).status_code == 503

        await eventually(not_ready)
        assert "broker" in (await probe(settings, "/readyz")).json()["reason"]
        assert (await probe(settings, "/healthz")).status_code == 200
        obj = await world.deploy()
        await asyncio.sleep(0.5)
        assert recorder.calls == []

        await gate.open()
        await eventually(ready)

        async def applied() -> bool:
            return ([obj.id], world.agent.id) in recorder.calls

        await eventually(applied)
    await gate.shut()
    told = [record.getMessage() for record in caplog.records]
    assert any("broker unreachable" in line and "reconnecting in" in line for line in told)
    assert "broker reachable again" in told


async def test_stop_lets_a_slow_reconcile_finish(world: World, broker: tuple[str, str]) -> None:
    recorder = Recorder(delay=1.0)
    await world.deploy()
    await world.admin.agents.activate(world.agent.id)
    async with running(world.settings(broker[0]), recorder) as stop:

        async def started() -> bool:
            return bool(recorder.calls)

        await eventually(started)
        stop.set()
    assert recorder.finished == 1
    assert [event.status for event in await world.events()] == ["SUCCESS"]


async def test_an_unknown_agent_fails_start_up(world: World, broker: tuple[str, str]) -> None:
    settings = world.settings(broker[0])
    wrong = Settings(
        agent=AgentSection(
            broker_url=broker[0],
            pak=world.pak,
            agent_name="not-" + world.agent.name,
            cluster_name=world.agent.cluster_name,
            health_port=settings.agent.health_port,
        )
    )
    with pytest.raises(StartupError, match="BROKKR__AGENT__AGENT_NAME"):
        await run_agent(
            wrong, cluster=Cluster(), reconcile=Recorder(), stop=asyncio.Event(), probe_host=HOST
        )


async def test_steady_re_applies_post_no_events(world: World, broker: tuple[str, str]) -> None:
    recorder = Recorder(settled=True)
    obj = await world.deploy()
    await world.admin.agents.activate(world.agent.id)
    async with running(world.settings(broker[0], reconcile_interval=0.1), recorder):

        async def reapplied() -> bool:
            return len(recorder.calls) >= 10

        await eventually(reapplied)
    assert [(e.deployment_object_id, e.status) for e in await world.events()] == [
        (obj.id, "SUCCESS")
    ]


async def test_a_repeated_failure_is_posted_once_and_a_changed_one_again(
    world: World, broker: tuple[str, str]
) -> None:
    recorder = Recorder(fail_first=1_000, failure="Invalid: bad")
    await world.deploy()
    await world.admin.agents.activate(world.agent.id)
    async with running(world.settings(broker[0]), recorder):

        async def retried() -> bool:
            return len(recorder.calls) >= 4

        await eventually(retried)
        recorder.failure = "Forbidden: other"
        calls = len(recorder.calls)

        async def retried_again() -> bool:
            return len(recorder.calls) >= calls + 2

        await eventually(retried_again)
    messages = [event.message for event in await world.events()]
    assert sorted(messages, key=str) == ["Forbidden: other", "Invalid: bad"]


class Stuck:
    """A reconcile that never finishes for ``stuck`` objects (a CRD that never settles) and
    succeeds at once for the others."""

    def __init__(self) -> None:
        self.stuck: set[uuid.UUID] = set()
        self.release = asyncio.Event()
        self.applied: list[uuid.UUID] = []

    async def __call__(
        self, objects: list[wire.DeploymentObject], *, agent_id: uuid.UUID
    ) -> list[Outcome]:
        if any(obj.id in self.stuck for obj in objects):
            await self.release.wait()
        self.applied += [obj.id for obj in objects]
        return [Outcome(deployment_object_id=obj.id, success=True) for obj in objects]


async def test_a_stuck_stack_blocks_neither_polls_nor_other_stacks(
    world: World, broker: tuple[str, str]
) -> None:
    reconcile = Stuck()
    stuck = await world.deploy()
    reconcile.stuck.add(stuck.id)
    generator = await world.admin.generators.create(name=f"gen-{uuid.uuid4().hex[:10]}")
    other = await world.admin.stacks.create(
        name=f"other-{uuid.uuid4().hex[:10]}", generator_id=generator.generator.id
    )
    await world.admin.agents.add_target(world.agent.id, other.id)
    await world.admin.agents.activate(world.agent.id)
    settings = world.settings(broker[0])
    async with running(settings, reconcile):

        async def polling() -> bool:
            return bool((await probe(settings, "/health")).json()["counts"]["polls"] >= 2)

        await eventually(polling)
        # Deployed while the first stack is stuck: a later poll still picks it up.
        later = await world.admin.stacks.deploy(other.id, CONFIGMAP.format(name="later"))

        async def applied() -> bool:
            return later.id in reconcile.applied

        await eventually(applied)
        polls = (await probe(settings, "/health")).json()["counts"]["polls"]

        async def still_polling() -> bool:
            return bool((await probe(settings, "/health")).json()["counts"]["polls"] > polls)

        await eventually(still_polling)
        assert stuck.id not in reconcile.applied
        reconcile.release.set()
    statuses = {(e.deployment_object_id, e.status) for e in await world.events()}
    assert (later.id, "SUCCESS") in statuses


async def test_the_log_says_when_the_agent_pauses_and_resumes(
    world: World, broker: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="brokkr.agent")
    recorder = Recorder()

    def logged(text: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return any(text in record.getMessage() for record in caplog.records)

        return check

    async with running(world.settings(broker[0]), recorder):
        await eventually(logged("is INACTIVE: paused until an admin activates it"))
        await world.admin.agents.activate(world.agent.id)
        await eventually(logged("agent activated (INACTIVE -> ACTIVE): applying again"))
        await world.admin.agents.deactivate(world.agent.id)
        await eventually(logged("agent deactivated (ACTIVE -> INACTIVE): paused"))
