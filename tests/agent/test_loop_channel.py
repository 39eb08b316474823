"""The agent runtime with its broker channel: REST against a real ``brokkr serve`` (SQLite), the
channel against an in-test WebSocket server (``ws_url``) that the test controls.

Covers: a push makes the agent poll at once although its polling interval is 300 s (and many
pushes come to few polls); heartbeats and deploy events go over the channel when it is up and
acknowledged, never also over REST; without an ack, or with the channel down, the event goes over
REST exactly once; ``/health`` and ``/metrics`` show the channel; ``ws_force_rest`` never dials;
an inactive agent does not dial until activated; a telemetry shipper offers to the channel.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
import msgspec
import pytest

from brokkr.agent.loop import run_agent
from brokkr.agent.outcomes import Outcome, ShipTelemetry, Uplink
from brokkr.agent.settings import AgentSection, Settings
from brokkr.client import AsyncBrokkrClient
from brokkr.common import wire
from brokkr.common.wire import channel as frames
from tests.agent.channel_server import ChannelServer
from tests.agent.waiting import eventually
from tests.cli.serving import HOST, free_port
from tests.fakes.gate import Gate

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: v\n"


class Cluster:
    async def ping(self) -> bool:
        return True


class Recorder:
    """A ``Reconcile`` that succeeds and records the deployment objects it was given."""

    def __init__(self) -> None:
        self.applied: list[uuid.UUID] = []

    async def __call__(
        self, objects: list[wire.DeploymentObject], *, agent_id: uuid.UUID
    ) -> list[Outcome]:
        self.applied += [obj.id for obj in objects]
        return [Outcome(deployment_object_id=obj.id, success=True) for obj in objects]


class World:
    """An agent targeted at a stack; ``settings`` point its channel at ``server``."""

    def __init__(self, admin: AsyncBrokkrClient, url: str, created: wire.CreateAgentResponse):
        self.admin = admin
        self.url = url
        self.agent = created.agent
        self.pak = created.initial_pak
        self.stack_id = uuid.UUID(int=0)

    async def deploy(self, name: str = "cm") -> wire.DeploymentObject:
        return await self.admin.stacks.deploy(self.stack_id, CONFIGMAP.format(name=name))

    async def events(self) -> list[wire.AgentEvent]:
        return await self.admin.agents.events(self.agent.id)

    def settings(
        self,
        server: ChannelServer,
        *,
        polling_interval: float = 0.2,
        force_rest: bool = False,
        ack_timeout: float = 5.0,
    ) -> Settings:
        section = AgentSection(
            broker_url=self.url,
            pak=self.pak,
            agent_name=self.agent.name,
            cluster_name=self.agent.cluster_name,
            health_port=free_port(),
            max_retries=3,
            polling_interval=polling_interval,
            reconcile_interval=300.0,
            backoff_min=0.05,
            backoff_max=0.3,
            shutdown_grace_seconds=5.0,
            ws_url=server.url,
            ws_force_rest=force_rest,
            ws_ack_timeout=ack_timeout,
            deployment_health_enabled=False,
        )
        return Settings(agent=section)


@pytest.fixture
async def world(admin: AsyncBrokkrClient, broker: tuple[str, str]) -> World:
    suffix = uuid.uuid4().hex[:10]
    created = await admin.agents.create(name=f"agent-{suffix}", cluster_name="test")
    generator = await admin.generators.create(name=f"gen-{suffix}")
    stack = await admin.stacks.create(name=f"stack-{suffix}", generator_id=generator.generator.id)
    await admin.agents.add_target(created.agent.id, stack.id)
    world = World(admin, broker[0], created)
    world.stack_id = stack.id
    return world


@pytest.fixture
async def server() -> AsyncIterator[ChannelServer]:
    async with ChannelServer() as started:
        yield started


@asynccontextmanager
async def running(
    settings: Settings, reconcile: Recorder, ship_telemetry: ShipTelemetry | None = None
) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_agent(
            settings,
            cluster=Cluster(),
            reconcile=reconcile,
            stop=stop,
            probe_host=HOST,
            ship_telemetry=ship_telemetry,
        )
    )
    try:
        await eventually(lambda: _up(settings), timeout=5.0)
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


async def _up(settings: Settings) -> bool:
    try:
        await probe(settings, "/healthz")
    except httpx.TransportError:
        return False
    return True


async def probe(settings: Settings, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{settings.agent.health_port}") as http:
        return await http.get(path)


async def polls(settings: Settings) -> int:
    count: int = (await probe(settings, "/health")).json()["counts"]["polls"]
    return count


async def test_a_push_makes_the_agent_poll_at_once(world: World, server: ChannelServer) -> None:
    await world.admin.agents.activate(world.agent.id)
    settings = world.settings(server, polling_interval=300.0)
    recorder = Recorder()
    async with running(settings, recorder):
        await server.wait_connected()
        # The start-up polls (incremental and full) are done: the next is 300 s away.
        await eventually(lambda: _at_least(settings, 2))
        before = await polls(settings)
        obj = await world.deploy()
        changed = {"id": str(world.stack_id), "name": "s", "generator_id": str(uuid.uuid4())}
        for _ in range(50):
            await server.push_frame(frames.STACK_CHANGED, changed)
        await eventually(lambda: obj.id in recorder.applied, timeout=10)
        # Fifty pushes, coalesced: a few polls, not fifty.
        await asyncio.sleep(0.3)
        assert await polls(settings) - before <= 5
        # The deploy event went over the channel and was acknowledged: not over REST as well.
        await eventually(lambda: server.of_type(frames.AGENT_EVENT))
    [event] = server.of_type(frames.AGENT_EVENT)
    assert event["body"]["deployment_object_id"] == str(obj.id)
    assert event["body"]["agent_id"] == str(world.agent.id)
    assert event["body"]["status"] == "SUCCESS"
    assert event["ref"]
    assert await world.events() == []


async def _at_least(settings: Settings, count: int) -> bool:
    return await polls(settings) >= count


async def test_heartbeats_go_over_the_channel_and_probes_show_it(
    world: World, server: ChannelServer
) -> None:
    await world.admin.agents.activate(world.agent.id)
    settings = world.settings(server)
    async with running(settings, Recorder()):
        await eventually(lambda: len(server.of_type(frames.HEARTBEAT)) >= 2)
        # The first beat may have gone over REST, before the channel was up; none since.
        rest_beat = (await world.admin.agents.get(world.agent.id)).last_heartbeat
        seen = len(server.of_type(frames.HEARTBEAT))
        await eventually(lambda: len(server.of_type(frames.HEARTBEAT)) >= seen + 2)
        health = (await probe(settings, "/health")).json()
        metrics = (await probe(settings, "/metrics")).text
    beat = server.of_type(frames.HEARTBEAT)[0]
    assert beat["body"]["agent_id"] == str(world.agent.id)
    assert health["broker"]["channel"] == "Up"
    assert 'brokkr_agent_ws_state{brokkr_agent_ws_state="Up"} 1.0' in metrics
    assert 'brokkr_agent_ws_frames_total{direction="out",type="heartbeat"}' in metrics
    assert 'brokkr_agent_ws_frames_total{direction="in",type="ack"}' in metrics
    # Acknowledged over the channel, so not sent over REST as well.
    assert (await world.admin.agents.get(world.agent.id)).last_heartbeat == rest_beat


async def test_without_an_ack_the_event_goes_over_rest_once(
    world: World, server: ChannelServer
) -> None:
    server.acks = "never"
    await world.admin.agents.activate(world.agent.id)
    obj = await world.deploy()
    settings = world.settings(server, ack_timeout=0.5)
    async with running(settings, Recorder()):
        await eventually(lambda: _has_event(world))
        await eventually(lambda: server.of_type(frames.AGENT_EVENT))
        await asyncio.sleep(0.5)  # a few more polls: the event is not posted again
    [event] = await world.events()
    assert (event.deployment_object_id, event.status) == (obj.id, "SUCCESS")
    assert (await world.admin.agents.get(world.agent.id)).last_heartbeat is not None


async def test_with_the_channel_down_everything_goes_over_rest(
    world: World, server: ChannelServer
) -> None:
    await server.stop()
    await world.admin.agents.activate(world.agent.id)
    obj = await world.deploy()
    settings = world.settings(server)
    async with running(settings, Recorder()):
        await eventually(lambda: _has_event(world))
        health = (await probe(settings, "/health")).json()
    [event] = await world.events()
    assert event.deployment_object_id == obj.id
    assert health["broker"]["channel"] == "Down"


async def _has_event(world: World) -> bool:
    return bool(await world.events())


async def test_force_rest_never_dials(world: World, server: ChannelServer) -> None:
    await world.admin.agents.activate(world.agent.id)
    settings = world.settings(server, force_rest=True)
    async with running(settings, Recorder()):

        async def beaten() -> bool:
            return (await world.admin.agents.get(world.agent.id)).last_heartbeat is not None

        await eventually(beaten)
        health = (await probe(settings, "/health")).json()
    assert server.attempts == 0
    assert health["broker"]["channel"] == "ForceRestOnly"


async def test_an_inactive_agent_dials_only_once_activated(
    world: World, server: ChannelServer
) -> None:
    settings = world.settings(server)
    async with running(settings, Recorder()):

        async def beaten() -> bool:
            return (await world.admin.agents.get(world.agent.id)).last_heartbeat is not None

        await eventually(beaten)
        assert server.attempts == 0
        await world.admin.agents.activate(world.agent.id)
        await server.wait_connected()


async def test_the_telemetry_shipper_offers_to_the_channel(
    world: World, server: ChannelServer
) -> None:
    await world.admin.agents.activate(world.agent.id)
    offered: list[bool] = []

    async def ship(uplink: Uplink, *, agent_id: uuid.UUID, stop: asyncio.Event) -> None:
        body = frames.PodLogLineBody(
            agent_id=agent_id,
            stack_id=world.stack_id,
            namespace="default",
            pod="web",
            container="web",
            ts=datetime.now(UTC),
            line="hello",
        )
        while not stop.is_set():
            offered.append(uplink.offer(frames.frame(frames.POD_LOG_LINE, body)))
            if offered[-1]:
                await stop.wait()
            await asyncio.sleep(0.05)

    settings = world.settings(server)
    async with running(settings, Recorder(), ship_telemetry=ship):
        await eventually(lambda: server.of_type(frames.POD_LOG_LINE))
    [line] = server.of_type(frames.POD_LOG_LINE)
    assert line["body"]["agent_id"] == str(world.agent.id)


# --- against the broker's own channel -----------------------------------------------------------


async def test_against_the_broker_a_push_applies_at_once_and_events_go_over_the_channel(
    world: World,
) -> None:
    await world.admin.agents.activate(world.agent.id)
    port = int(world.url.rsplit(":", 1)[1])
    gate = Gate(port)
    await gate.open()
    settings = world.settings(ChannelServer(), polling_interval=300.0)
    section = msgspec.structs.replace(
        settings.agent, ws_url=f"ws://{HOST}:{gate.port}/internal/ws/agent"
    )
    settings = msgspec.structs.replace(settings, agent=section)
    recorder = Recorder()
    try:
        async with running(settings, recorder):
            await eventually(lambda: _channel(settings, "Up"))
            await eventually(lambda: _at_least(settings, 2))
            first = await world.deploy("one")
            # Pushed by the broker: applied long before the next poll (300 s).
            await eventually(lambda: first.id in recorder.applied, timeout=10)
            await eventually(lambda: _has_event(world))
            assert await _sent(settings, frames.AGENT_EVENT) == 1

            # The channel blocked: the next change waits for a poll, and its event goes over
            # REST, once.
            await gate.shut()
            await eventually(lambda: _channel(settings, "Down"))
            second = await world.deploy("two")
        settings = msgspec.structs.replace(
            settings, agent=msgspec.structs.replace(section, polling_interval=0.2)
        )
        async with running(settings, recorder):
            await eventually(lambda: second.id in recorder.applied, timeout=10)
            await eventually(lambda: _events(world, 2))
            await asyncio.sleep(0.5)  # more polls: nothing is posted twice
            assert await _sent(settings, frames.AGENT_EVENT) == 0
    finally:
        await gate.shut()
    events = await world.events()
    assert sorted((e.deployment_object_id, e.status) for e in events) == sorted(
        [(first.id, "SUCCESS"), (second.id, "SUCCESS")]
    )


async def _channel(settings: Settings, state: str) -> bool:
    return bool((await probe(settings, "/health")).json()["broker"].get("channel") == state)


async def _sent(settings: Settings, type_: str) -> float:
    metrics = (await probe(settings, "/metrics")).text
    line = f'brokkr_agent_ws_frames_total{{direction="out",type="{type_}"}} '
    for text in metrics.splitlines():
        if text.startswith(line):
            return float(text.removeprefix(line))
    return 0.0


async def _events(world: World, count: int) -> bool:
    return len(await world.events()) >= count
