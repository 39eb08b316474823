"""Fixtures for the end-to-end agent tests: every piece real except the Kubernetes API server.

- ``broker``: ``brokkr serve`` as a subprocess on SQLite with a seeded admin PAK, one per module,
  on a fixed port so a test can stop it and start it again on the same port and data dir.
- ``kube``: the fake kube-apiserver (tests/fakes) over real HTTP on 127.0.0.1, one per module,
  reset to an empty cluster for every test; ``kubeconfig`` points at it.
- ``world``: an agent (registered, INACTIVE), a generator with its own client and a stack the
  agent targets; ``agent_process`` runs ``brokkr agent run`` as a subprocess with BROKKR__AGENT__*
  variables (polling 1 s, short reconcile interval and backoff, a free health port, output to a
  file) and always stops it (SIGTERM, then kill) when the context exits.
- ``inventories`` lists the agents' inventory ConfigMaps in the fake cluster.
"""

from __future__ import annotations

import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from brokkr.broker.domain import paks
from brokkr.client import AsyncBrokkrClient, Retry
from brokkr.common import wire
from tests.agent.waiting import eventually
from tests.cli.serving import BROKKR, HOST, STOP_TIMEOUT, Server, environment, free_port
from tests.fakes.kube_apiserver import FakeKubeApiServer

DEADLINE = 20.0
POLLING_INTERVAL = 1.0
RECONCILE_INTERVAL = 2.0
GRACE_SECONDS = 5.0


class BrokerProcess:
    """``brokkr serve`` on a fixed port and data dir; ``stop`` and ``start`` at will;
    ``environ`` adds BROKKR__* variables (a test module's own broker settings), ``args`` more
    arguments of ``serve``: by default one worker, also on PostgreSQL (whose default is a worker
    per core), as the tests of one broker process expect."""

    def __init__(
        self,
        root: Path,
        environ: dict[str, str] | None = None,
        args: Sequence[str] = ("--workers", "1"),
    ) -> None:
        self.environ = environ or {}
        self.args = tuple(args)
        self.data_dir = root / "data"
        self.workdir = root / "work"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.admin_pak = paks.generate().plaintext
        self.output = self.workdir / "serve.out"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        extra = {
            "BROKKR__BROKER__ADMIN_PAK": self.admin_pak,
            "BROKKR__LOG__LEVEL": "warning",
            **self.environ,
        }
        with self.output.open("ab") as out:
            self.process = subprocess.Popen(
                [BROKKR, "serve", "--host", HOST, "--port", str(self.port), *self.args],
                env=environment(self.data_dir, extra),
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        Server(self.process, self.port, self.output, self.output).wait_ready()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    server = BrokerProcess(tmp_path_factory.mktemp("e2e-broker"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def admin(broker: BrokerProcess) -> AsyncIterator[AsyncBrokkrClient]:
    if not broker.running:  # a test that stopped it failed before starting it again
        broker.start()
    async with AsyncBrokkrClient(broker.url, broker.admin_pak, retry=Retry(attempts=3)) as client:
        yield client


@pytest.fixture(scope="module")
async def kube_server() -> AsyncIterator[FakeKubeApiServer]:
    async with FakeKubeApiServer() as server:
        yield server


@pytest.fixture
def kube(kube_server: FakeKubeApiServer) -> FakeKubeApiServer:
    kube_server.reset()
    return kube_server


@pytest.fixture
def kubeconfig(kube: FakeKubeApiServer, tmp_path: Path) -> Path:
    return kube.write_kubeconfig(tmp_path / "kubeconfig")


class World:
    """One agent (INACTIVE until ``activate``), a generator and a stack the agent targets."""

    def __init__(self, admin: AsyncBrokkrClient, broker: BrokerProcess) -> None:
        self.admin = admin
        self.broker = broker
        self.suffix = uuid.uuid4().hex[:10]
        self.agent: wire.Agent
        self.agent_pak = ""
        self.generator_pak = ""
        self.generator_id: uuid.UUID
        self.stack_id: uuid.UUID

    async def setup(self) -> World:
        created = await self.admin.agents.create(name=f"agent-{self.suffix}", cluster_name="e2e")
        self.agent, self.agent_pak = created.agent, created.initial_pak
        generator = await self.admin.generators.create(name=f"gen-{self.suffix}")
        self.generator_id, self.generator_pak = generator.generator.id, generator.pak
        self.stack_id = await self.new_stack("stack")
        return self

    async def new_stack(self, prefix: str) -> uuid.UUID:
        """A stack of the generator, targeted by the agent."""
        async with self.generator() as gen:
            stack = await gen.stacks.create(
                name=f"{prefix}-{uuid.uuid4().hex[:10]}", generator_id=self.generator_id
            )
        await self.admin.agents.add_target(self.agent.id, stack.id)
        return stack.id

    def generator(self) -> AsyncBrokkrClient:
        return AsyncBrokkrClient(self.broker.url, self.generator_pak, retry=Retry(attempts=3))

    async def activate(self) -> None:
        await self.admin.agents.activate(self.agent.id)

    async def deploy(
        self, content: str, *, stack_id: uuid.UUID | None = None
    ) -> wire.DeploymentObject:
        async with self.generator() as gen:
            return await gen.stacks.deploy(stack_id or self.stack_id, content)

    async def events(self) -> list[wire.AgentEvent]:
        return await self.admin.agents.events(self.agent.id)

    async def event_for(self, object_id: uuid.UUID, status: str) -> wire.AgentEvent | None:
        for event in await self.events():
            if event.deployment_object_id == object_id and event.status == status:
                return event
        return None

    async def wait_event(
        self, object_id: uuid.UUID, status: str, timeout: float = DEADLINE
    ) -> wire.AgentEvent:
        found: list[wire.AgentEvent] = []

        async def seen() -> bool:
            event = await self.event_for(object_id, status)
            if event is not None:
                found.append(event)
            return event is not None

        await eventually(seen, timeout=timeout, what=f"{status} event for {object_id}")
        return found[0]


@pytest.fixture
async def world(admin: AsyncBrokkrClient, broker: BrokerProcess) -> World:
    return await World(admin, broker).setup()


class AgentProcess:
    """A running ``brokkr agent run``; output in ``output`` (stdout and stderr)."""

    def __init__(self, process: subprocess.Popen[bytes], health_port: int, output: Path) -> None:
        self.process = process
        self.health_port = health_port
        self.output = output

    def log(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")

    async def probe(self, path: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{self.health_port}") as http:
            return await http.get(path, timeout=5.0)

    async def status(self, path: str) -> int | None:
        """The probe's status code, or None while nothing listens."""
        try:
            return (await self.probe(path)).status_code
        except httpx.TransportError:
            return None

    def alive(self) -> bool:
        return self.process.poll() is None


def agent_environment(world: World, kubeconfig: Path, **overrides: str) -> dict[str, str]:
    section = {
        "BROKER_URL": world.broker.url,
        "PAK": world.agent_pak,
        "AGENT_NAME": world.agent.name,
        "CLUSTER_NAME": world.agent.cluster_name,
        "POLLING_INTERVAL": str(POLLING_INTERVAL),
        "RECONCILE_INTERVAL": str(RECONCILE_INTERVAL),
        "BACKOFF_MIN": "0.1",
        "BACKOFF_MAX": "1.0",
        "HEALTH_PORT": str(free_port()),
        "HEALTH_HOST": "127.0.0.1",
        "KUBECONFIG_PATH": str(kubeconfig),
        "SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
        "MAX_RETRIES": "30",
    }
    section.update({key.upper(): value for key, value in overrides.items()})
    env = environment(world.broker.data_dir)
    del env["BROKKR__DATA_DIR"]  # the broker's, not the agent's
    env.update({f"BROKKR__AGENT__{key}": value for key, value in section.items()})
    env["BROKKR__LOG__LEVEL"] = "info"
    return env


@contextmanager
def agent_process(
    world: World, kubeconfig: Path, workdir: Path, **overrides: str
) -> Iterator[AgentProcess]:
    """``brokkr agent run`` for ``world``'s agent; ``overrides`` are AgentSection keys."""
    env = agent_environment(world, kubeconfig, **overrides)
    output = workdir / f"agent-{world.suffix}.log"
    with output.open("ab") as out:
        process = subprocess.Popen(
            [BROKKR, "agent", "run"], env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT
        )
    running = AgentProcess(process, int(env["BROKKR__AGENT__HEALTH_PORT"]), output)
    try:
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=GRACE_SECONDS + STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def inventories(kube: FakeKubeApiServer) -> list[str]:
    """The names of the agents' inventory ConfigMaps in the cluster."""
    return [name for name in kube.names("ConfigMap", "brokkr-system") if "inventory" in name]
