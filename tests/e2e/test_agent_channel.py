"""End to end over the agent channel: a real broker process, a real ``brokkr agent run`` process
and the fake kube-apiserver; pushes, REST fallback, reconnects and live telemetry.

Covers:

1. with a 300 s polling and reconcile interval, once the start-up poll is done, a new deployment
   object of a directly targeted stack and of a stack reached through a label is applied within
   2 s of its commit (the push);
2. with the WebSocket unreachable (``ws_url`` on a closed port) the agent works over REST
   polling alone: every object applied, every event reported once, heartbeats recorded;
3. with the WebSocket silently partitioned (a relay swallowing every byte) a deploy event sent
   on it is never acknowledged and reaches the broker over REST, exactly once; once the relay
   drops the connection and serves again, the agent is connected again;
4. after a broker restart on the same port the agent reconnects (``/admin/ws/connections`` lists
   it again) and a push after the restart is applied within 2 s (the second change: the first
   may meet a poll the reconnect started);
5. ``brokkr stacks logs STACK --follow`` (the real CLI, a subprocess) prints each line a pod of
   the stack writes while it runs (the pod opted in through its Deployment's template, owned
   through a ReplicaSet, without Brokkr's annotations), and ``brokkr stacks events STACK``
   lists the events of the Deployment, its ReplicaSet and its pod;
6. two broker processes on one PostgreSQL database: a deployment object committed through the
   first is applied within 2 s by an agent connected to the second.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from brokkr.client import AsyncBrokkrClient, Retry
from brokkr.common import wire
from tests.agent import controllers
from tests.agent.waiting import eventually
from tests.cli.serving import BROKKR, HOST, STOP_TIMEOUT, environment, free_port, run_cli
from tests.conftest import create_postgres_database, drop_postgres_database
from tests.e2e.conftest import BrokerProcess, World, agent_process
from tests.fakes.kube_apiserver import FakeKubeApiServer

# Long enough that nothing but a push can explain an apply within PUSH_DEADLINE.
QUIET = {"polling_interval": "300", "reconcile_interval": "300"}
PUSH_DEADLINE = 2.0
CONNECT_DEADLINE = 20.0
CHANNEL_PATH = "/internal/ws/agent"
STREAM_LOGS = "brokkr.io/stream-logs"


def configmap(name: str, namespace: str = "default") -> str:
    return (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: {namespace}}}\n"
        "data: {key: value}\n"
    )


# --- what the broker says about its channel ------------------------------------------------


async def connections(broker: BrokerProcess) -> wire.WsConnectionsResponse:
    async with httpx.AsyncClient(base_url=broker.url, timeout=10.0) as http:
        response = await http.get(
            "/api/v1/admin/ws/connections",
            headers={"Authorization": f"Bearer {broker.admin_pak}"},
        )
    assert response.status_code == 200, response.text
    return msgspec.json.decode(response.content, type=wire.WsConnectionsResponse)


async def connected_agents(broker: BrokerProcess) -> set[uuid.UUID]:
    return {info.agent_id for info in (await connections(broker)).connections}


async def wait_connected(broker: BrokerProcess, agent_id: uuid.UUID) -> None:
    async def listed() -> bool:
        return agent_id in await connected_agents(broker)

    await eventually(listed, timeout=CONNECT_DEADLINE, what=f"agent {agent_id} on the channel")


async def applied_within(
    deadline: float, commit: Callable[[], Awaitable[Any]], present: Callable[[], bool]
) -> float:
    """Seconds from the end of ``commit`` (its response: the change is committed) until
    ``present`` holds; fails past ``deadline``."""
    await commit()
    committed = time.monotonic()
    await eventually(present, timeout=deadline, what="the pushed object applied")
    return time.monotonic() - committed


# --- 1. the push -------------------------------------------------------------------------------


async def test_a_new_object_is_applied_within_two_seconds_through_the_push(
    world: World, broker: BrokerProcess, kube: FakeKubeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    await world.activate()
    label = f"edge-{world.suffix}"
    await world.admin.agents.add_label(world.agent.id, label)
    async with world.generator() as gen:
        labelled = await gen.stacks.create(
            name=f"labelled-{world.suffix}", generator_id=world.generator_id
        )
        await gen.stacks.add_label(labelled.id, label)
    baseline = await world.deploy(configmap("baseline"))
    with agent_process(world, kubeconfig, tmp_path, **QUIET) as agent:
        await world.wait_event(baseline.id, "SUCCESS")
        await wait_connected(broker, world.agent.id)
        direct = await applied_within(
            PUSH_DEADLINE,
            lambda: world.deploy(configmap("pushed")),
            lambda: kube.get("ConfigMap", "pushed", "default") is not None,
        )
        by_label = await applied_within(
            PUSH_DEADLINE,
            lambda: world.deploy(configmap("pushed-by-label"), stack_id=labelled.id),
            lambda: kube.get("ConfigMap", "pushed-by-label", "default") is not None,
        )
        assert agent.alive(), agent.log()
    assert direct < PUSH_DEADLINE and by_label < PUSH_DEADLINE


# --- 2. and 3. REST fallback -----------------------------------------------------------------


async def test_with_the_websocket_unreachable_the_agent_works_over_rest(
    world: World, broker: BrokerProcess, kube: FakeKubeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    await world.activate()
    stacks = [world.stack_id, await world.new_stack("second"), await world.new_stack("third")]
    closed = f"ws://{HOST}:{free_port()}{CHANNEL_PATH}"
    started = (await world.admin.agents.get(world.agent.id)).last_heartbeat
    with agent_process(world, kubeconfig, tmp_path, ws_url=closed) as agent:
        objects = [
            await world.deploy(configmap(f"polled-{n}"), stack_id=stack)
            for n, stack in enumerate(stacks)
        ]
        for obj in objects:
            await world.wait_event(obj.id, "SUCCESS")

        async def beating() -> bool:
            beat = (await world.admin.agents.get(world.agent.id)).last_heartbeat
            return beat is not None and beat != started

        await eventually(beating, what="a heartbeat over REST")
        assert world.agent.id not in await connected_agents(broker)
        assert agent.alive(), agent.log()
    for n in range(len(stacks)):
        assert kube.get("ConfigMap", f"polled-{n}", "default") is not None
    reported = [event.deployment_object_id for event in await world.events()]
    assert sorted(reported) == sorted(obj.id for obj in objects)


class Relay:
    """A TCP relay in front of the broker: ``freeze`` keeps its connections open but swallows
    every byte (a silent partition, which only a missing acknowledgement reveals); ``cut``
    drops them and refuses new ones; ``open`` serves again on the same port."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self._target = target_port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._frozen = False

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}{CHANNEL_PATH}"

    async def open(self) -> None:
        self._frozen = False
        self._server = await asyncio.start_server(self._relay, HOST, self.port)

    def freeze(self) -> None:
        self._frozen = True

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(HOST, self._target)
        ends = (writer, up_writer)
        self._writers.update(ends)
        try:
            await asyncio.gather(
                self._copy(reader, up_writer), self._copy(up_reader, writer), return_exceptions=True
            )
        finally:
            for end in ends:
                self._writers.discard(end)
                end.close()

    async def _copy(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(65536):
            if not self._frozen:
                sink.write(data)
                await sink.drain()
        sink.close()


@pytest.fixture
async def relay(broker: BrokerProcess) -> AsyncIterator[Relay]:
    relay = Relay(broker.port)
    await relay.open()
    try:
        yield relay
    finally:
        await relay.cut()


async def test_an_unacknowledged_event_reaches_the_broker_over_rest_exactly_once(
    world: World,
    broker: BrokerProcess,
    relay: Relay,
    kube: FakeKubeApiServer,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    await world.activate()
    overrides = {"ws_url": relay.ws_url, "ws_ack_timeout": "1", "polling_interval": "1"}
    with agent_process(world, kubeconfig, tmp_path, **overrides) as agent:
        await wait_connected(broker, world.agent.id)
        relay.freeze()
        obj = await world.deploy(configmap("partitioned"))
        await world.wait_event(obj.id, "SUCCESS")
        # Over the partitioned channel no acknowledgement can come: the event went over REST.
        await relay.cut()
        await relay.open()

        async def reconnected() -> bool:
            current = await connections(broker)
            return [info.agent_id for info in current.connections].count(world.agent.id) == 1

        await eventually(reconnected, timeout=CONNECT_DEADLINE, what="one connection again")
        assert agent.alive(), agent.log()
    assert kube.get("ConfigMap", "partitioned", "default") is not None
    events = [event for event in await world.events() if event.deployment_object_id == obj.id]
    assert [event.status for event in events] == ["SUCCESS"]


# --- 4. a broker restart -----------------------------------------------------------------------


async def test_after_a_broker_restart_the_agent_reconnects_and_pushes_work_again(
    world: World, broker: BrokerProcess, kube: FakeKubeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    await world.activate()
    baseline = await world.deploy(configmap("baseline"))
    with agent_process(world, kubeconfig, tmp_path, **QUIET) as agent:
        await world.wait_event(baseline.id, "SUCCESS")
        await wait_connected(broker, world.agent.id)
        broker.stop()
        broker.start()
        await wait_connected(broker, world.agent.id)
        # The first change may meet a poll the reconnect started; the second only a push.
        first = await world.deploy(configmap("after-restart"))
        await world.wait_event(first.id, "SUCCESS")
        took = await applied_within(
            PUSH_DEADLINE,
            lambda: world.deploy(configmap("pushed-after-restart")),
            lambda: kube.get("ConfigMap", "pushed-after-restart", "default") is not None,
        )
        assert agent.alive(), agent.log()
    assert took < PUSH_DEADLINE


# --- 5. live telemetry through the CLI -------------------------------------------------------


def chatty(namespace: str = "default") -> controllers.Obj:
    """A Deployment whose pods opt in to log streaming through the template's annotation."""
    manifest = controllers.workload("Deployment", "chatty", namespace=namespace)
    manifest["spec"]["template"]["metadata"]["annotations"] = {STREAM_LOGS: "true"}
    return manifest


def running_pod(play: controllers.Controllers, replica_set: controllers.Obj) -> controllers.Obj:
    """The ReplicaSet's pod as its controller makes it: the template's labels and annotations
    (none of Brokkr's), owned by the ReplicaSet; then running."""
    owner = play.live(replica_set)
    meta = owner["spec"]["template"]["metadata"]
    body = controllers.bare_pod(f"{owner['metadata']['name']}-x1", namespace="default")
    body["metadata"]["labels"] = dict(meta["labels"])
    body["metadata"]["annotations"] = dict(meta.get("annotations") or {})
    body["metadata"]["ownerReferences"] = [controllers.owner_reference(owner)]
    pod = play.fake.create(body)
    play.fake.set_status("Pod", pod["metadata"]["name"], controllers.ready_pod(), "default")
    return pod


def watching(kube: FakeKubeApiServer, resource: str) -> bool:
    return any(
        request.path.endswith(f"/{resource}") and request.params.get("watch") in ("1", "true")
        for request in kube.requests_matching("GET")
    )


class FollowingCli:
    """``brokkr stacks logs STACK --follow`` running, its stdout in a file."""

    def __init__(self, world: World, workdir: Path) -> None:
        self.output = workdir / "follow.out"
        self.errors = workdir / "follow.err"
        env = cli_environment(world, workdir)
        with self.output.open("wb") as out, self.errors.open("wb") as err:
            self.process = subprocess.Popen(
                [BROKKR, "stacks", "logs", str(world.stack_id), "--follow"],
                env=env,
                stdout=out,
                stderr=err,
            )

    def text(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")

    def printed(self, line: str) -> Callable[[], bool]:
        return lambda: line in self.text()

    def describe(self) -> str:
        errors = self.errors.read_text(encoding="utf-8", errors="replace")
        return f"stdout:\n{self.text()}\nstderr:\n{errors}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def cli_environment(world: World, workdir: Path) -> dict[str, str]:
    config_dir = workdir / "cli-config"
    config_dir.mkdir(exist_ok=True)
    env = environment(world.broker.data_dir)
    del env["BROKKR__DATA_DIR"]  # the broker's, not the CLI's
    env.pop("BROKKR_PROFILE", None)
    env.update(
        {
            "BROKKR_CONFIG_DIR": str(config_dir),
            "BROKKR_URL": world.broker.url,
            "BROKKR_PAK": world.generator_pak,
            # Wide enough that a table never folds a name or a message.
            "COLUMNS": "250",
        }
    )
    return env


async def test_the_cli_follows_a_pods_log_and_lists_the_stacks_events(
    world: World, broker: BrokerProcess, kube: FakeKubeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    await world.activate()
    play = controllers.Controllers(kube)
    deployment = chatty()
    token = uuid.uuid4().hex[:8]
    with agent_process(world, kubeconfig, tmp_path, **QUIET) as agent:
        await wait_connected(broker, world.agent.id)
        await eventually(lambda: watching(kube, "events"), what="the agent watching events")
        await eventually(lambda: watching(kube, "pods"), what="the agent watching pods")
        obj = await world.deploy(msgspec.json.encode(deployment).decode())
        await world.wait_event(obj.id, "SUCCESS")
        replica_set = play.child(deployment, "ReplicaSet", "chatty-5f7d")
        pod = running_pod(play, replica_set)
        pod_name = pod["metadata"]["name"]
        follower = FollowingCli(world, tmp_path)
        try:

            async def subscribed() -> bool:
                return (await connections(broker)).live_subscribers >= 1

            await eventually(subscribed, what="the CLI subscribed to the stack")
            for n in range(3):
                line = f"request {n} served {token}"
                kube.append_pod_log("default", pod_name, "main", line)
                await eventually(
                    follower.printed(line), timeout=10.0, what=f"line {n} printed by --follow"
                )
            assert follower.process.poll() is None, follower.describe()
            assert pod_name in follower.text(), follower.describe()
        finally:
            follower.stop()

        messages = {
            "Deployment": f"Scaled up replica set chatty-5f7d to 1 {token}",
            "ReplicaSet": f"Created pod: {pod_name} {token}",
            "Pod": f"Successfully pulled image nginx:1 {token}",
        }
        kube.record_event(play.live(deployment), "ScalingReplicaSet", messages["Deployment"])
        kube.record_event(play.live(replica_set), "SuccessfulCreate", messages["ReplicaSet"])
        kube.record_event(pod, "Pulled", messages["Pod"])
        env = cli_environment(world, tmp_path)

        def listed() -> str | None:
            result = run_cli("stacks", "events", str(world.stack_id), env=env)
            assert result.returncode == 0, result.stderr
            return result.stdout if all(m in result.stdout for m in messages.values()) else None

        shown = await eventually(listed, what="the three events listed by the CLI")
        assert agent.alive(), agent.log()
    for reason in ("ScalingReplicaSet", "SuccessfulCreate", "Pulled"):
        assert reason in shown


# --- 6. two brokers on one PostgreSQL database ----------------------------------------------


async def test_a_change_through_one_broker_reaches_an_agent_connected_to_another(
    tmp_path: Path, kube: FakeKubeApiServer, kubeconfig: Path
) -> None:
    database_url = await create_postgres_database()
    shared = {"BROKKR__DATABASE__URL": database_url}
    first = BrokerProcess(tmp_path / "one", shared)
    second = BrokerProcess(tmp_path / "two", shared)
    second.admin_pak = first.admin_pak
    try:
        first.start()
        second.start()
        async with AsyncBrokkrClient(second.url, second.admin_pak, retry=Retry(attempts=3)) as adm:
            world = await World(adm, second).setup()
            await world.activate()
            baseline = await world.deploy(configmap("baseline"))
            with agent_process(world, kubeconfig, tmp_path, **QUIET) as agent:
                await world.wait_event(baseline.id, "SUCCESS")
                await wait_connected(second, world.agent.id)
                assert world.agent.id not in await connected_agents(first)
                async with AsyncBrokkrClient(first.url, world.generator_pak) as through_first:
                    took = await applied_within(
                        PUSH_DEADLINE,
                        lambda: through_first.stacks.deploy(world.stack_id, configmap("remote")),
                        lambda: kube.get("ConfigMap", "remote", "default") is not None,
                    )
                assert agent.alive(), agent.log()
    finally:
        first.stop()
        second.stop()
        await drop_postgres_database(database_url)
    assert took < PUSH_DEADLINE
