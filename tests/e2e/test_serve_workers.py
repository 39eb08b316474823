"""``brokkr serve --workers 2`` on PostgreSQL (issue 17), as real processes.

Requests reach a chosen worker through a keep-alive connection whose answers carry that worker's
``X-Brokkr-Worker`` header: a change made through one worker must be seen by the other within
the bounds replicas have (D7: a revoked PAK stops working everywhere within a second)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import msgspec
import pytest
from websockets.asyncio.client import connect

from tests.agent.waiting import eventually
from tests.conftest import create_postgres_database, drop_postgres_database
from tests.e2e.conftest import BrokerProcess, World

WORKERS = 2
WORKER_HEADER = "x-brokkr-worker"
# D7: a revoked key stops working everywhere within a second.
REVOCATION_BOUND_SECONDS = 1.0
# Well under uvicorn's 5 s keep-alive: an idle pinned connection is re-made before it may close.
PIN_IDLE_SECONDS = 3.0
STARTED = re.compile(r"broker worker started worker=(\d+) pid=(\d+)")
# The jobs that run once per database (and the fleet gauges, once per server).
DATABASE_JOBS = {
    "brokkr-retention",
    "brokkr-work-order-maintenance",
    "brokkr-diagnostic-maintenance",
}


@pytest.fixture(scope="module")
async def database_url() -> AsyncIterator[str]:
    url = await create_postgres_database()
    yield url
    await drop_postgres_database(url)


def workers_broker(root: Path, database_url: str) -> BrokerProcess:
    return BrokerProcess(
        root,
        environ={"BROKKR__DATABASE__URL": database_url, "BROKKR__LOG__LEVEL": "info"},
        args=("--workers", str(WORKERS)),
    )


@pytest.fixture(scope="module")
def started_at() -> float:
    return time.time()


@pytest.fixture(scope="module")
def broker(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, started_at: float
) -> Iterator[BrokerProcess]:
    server = workers_broker(tmp_path_factory.mktemp("workers"), database_url)
    server.start()
    try:
        wait_all_workers(server)
        yield server
    finally:
        server.stop()


def wait_all_workers(server: BrokerProcess, timeout: float = 60.0) -> None:
    """Until every worker has answered (the first one ready makes /readyz answer already)."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < WORKERS:
        assert time.monotonic() < deadline, f"workers answering: {seen}"
        with contextlib.suppress(httpx.TransportError):
            response = httpx.get(f"{server.url}/readyz", timeout=2.0)
            if response.status_code == 200:
                seen.add(response.headers[WORKER_HEADER])
        time.sleep(0.05)


class Pinned:
    """Requests to one worker: a single keep-alive connection that landed on it."""

    def __init__(self, url: str, worker: int, pak: str) -> None:
        self._url = url
        self.worker = str(worker)
        self._headers = {"Authorization": f"Bearer {pak}"}
        self._client: httpx.AsyncClient | None = None
        self._used = 0.0

    async def _pin(self) -> httpx.AsyncClient:
        if self._client is not None and time.monotonic() - self._used < PIN_IDLE_SECONDS:
            return self._client
        await self.aclose()
        for _ in range(200):
            client = httpx.AsyncClient(
                base_url=self._url,
                headers=self._headers,
                timeout=10.0,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            )
            probe = await client.get("/healthz")
            if probe.headers[WORKER_HEADER] == self.worker:
                self._client, self._used = client, time.monotonic()
                return client
            await client.aclose()
        raise AssertionError(f"no connection landed on worker {self.worker}")

    async def request(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        client = await self._pin()
        response = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
        self._used = time.monotonic()
        assert response.headers[WORKER_HEADER] == self.worker, "the connection changed worker"
        return response

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


@contextlib.asynccontextmanager
async def pinned(url: str, worker: int, pak: str) -> AsyncIterator[Pinned]:
    client = Pinned(url, worker, pak)
    try:
        yield client
    finally:
        await client.aclose()


def configmap(name: str) -> str:
    return (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\n"
        "data:\n  key: value\n"
    )


async def test_background_jobs_ran_once_for_both_workers(
    broker: BrokerProcess, database_url: str, started_at: float
) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT job, runs, last_run_at, due_at FROM job_schedule")
    finally:
        await connection.close()
    jobs = {row["job"]: row for row in rows}
    assert set(jobs) >= DATABASE_JOBS, jobs
    assert len([job for job in jobs if job.startswith("brokkr-gauge-refresh@")]) == 1, jobs
    alive = time.time() - started_at
    for job, row in jobs.items():
        interval = (row["due_at"] - row["last_run_at"]).total_seconds()
        # One turn per interval for the whole server, not one per worker.
        assert 1 <= row["runs"] <= 1 + alive // interval, (job, row["runs"], alive, interval)


async def test_metrics_count_the_requests_of_both_workers(broker: BrokerProcess) -> None:
    served: dict[str, int] = {}
    path = f"/no-such-path-{uuid.uuid4().hex}"
    while len(served) < WORKERS or sum(served.values()) < 10:
        assert sum(served.values()) < 500, served
        async with httpx.AsyncClient(base_url=broker.url) as client:
            response = await client.get(path)
        assert response.status_code == 404
        answered = response.headers[WORKER_HEADER]
        served[answered] = served.get(answered, 0) + 1
    total = sum(served.values())
    line = re.compile(
        r'^brokkr_http_requests_total\{endpoint="<unmatched>",method="GET",status="404"\} '
        r"([0-9.e+]+)$",
        re.MULTILINE,
    )
    for worker in range(WORKERS):
        async with pinned(broker.url, worker, broker.admin_pak) as client:
            text = (await client.request("GET", "/metrics")).text
        counted = line.search(text)
        assert counted is not None, text
        # Each worker's scrape reports the whole server: both workers' requests.
        assert float(counted.group(1)) == total, (worker, served)


async def test_a_pak_rotated_through_one_worker_is_refused_by_the_other(
    broker: BrokerProcess, world: World
) -> None:
    agent_path = f"/api/v1/agents/{world.agent.id}"
    async with (
        pinned(broker.url, 0, broker.admin_pak) as admin_on_a,
        pinned(broker.url, 1, world.agent_pak) as agent_on_b,
    ):
        # The old key is verified, and so cached, by worker B first.
        assert (await agent_on_b.request("GET", agent_path)).status_code == 200
        rotated = await admin_on_a.request("POST", f"{agent_path}/rotate-pak")
        assert rotated.status_code == 200, rotated.text
        refused_after = time.monotonic()
        deadline = refused_after + REVOCATION_BOUND_SECONDS
        while (status := (await agent_on_b.request("GET", agent_path)).status_code) == 200:
            assert time.monotonic() < deadline, "worker B still accepts the rotated-out key"
            await asyncio.sleep(0.02)
        assert status == 401
        new_pak = rotated.json()["pak"]
    async with pinned(broker.url, 1, new_pak) as renewed_on_b:
        assert (await renewed_on_b.request("GET", agent_path)).status_code == 200


async def test_a_change_through_one_worker_invalidates_the_target_state_etag_of_both(
    broker: BrokerProcess, world: World
) -> None:
    await world.activate()
    state_path = f"/api/v1/agents/{world.agent.id}/target-state"
    async with (
        pinned(broker.url, 0, world.agent_pak) as agent_on_a,
        pinned(broker.url, 1, world.agent_pak) as agent_on_b,
        pinned(broker.url, 0, world.generator_pak) as generator_on_a,
    ):
        first = await agent_on_a.request("GET", state_path)
        etag = first.headers["etag"]
        for agent in (agent_on_a, agent_on_b):
            polled = await agent.request("GET", state_path, headers={"If-None-Match": etag})
            assert polled.status_code == 304
        deployed = await generator_on_a.request(
            "POST",
            f"/api/v1/stacks/{world.stack_id}/deployment-objects",
            json={"yaml_content": configmap(f"etag-{world.suffix}")},
        )
        assert deployed.status_code == 201, deployed.text
        for agent in (agent_on_a, agent_on_b):

            async def changed(agent: Pinned = agent) -> bool:
                polled = await agent.request("GET", state_path, headers={"If-None-Match": etag})
                return polled.status_code == 200 and f"etag-{world.suffix}" in polled.text

            what = f"new target state on worker {agent.worker}"
            await eventually(changed, timeout=1.0, what=what)


async def channel_worker(broker: BrokerProcess, agent_id: uuid.UUID) -> int:
    """The worker holding the agent's channel (each lists only its own connections)."""
    for worker in range(WORKERS):
        async with pinned(broker.url, worker, broker.admin_pak) as admin:
            listed = (await admin.request("GET", "/api/v1/admin/ws/connections")).json()
        if any(entry["agent_id"] == str(agent_id) for entry in listed["connections"]):
            return worker
    raise AssertionError("the agent's channel is on no worker")


class Envelope(msgspec.Struct):
    type: str


async def test_a_change_through_one_worker_is_pushed_to_an_agent_on_the_other(
    broker: BrokerProcess, world: World
) -> None:
    await world.activate()
    url = broker.url.replace("http://", "ws://") + "/internal/ws/agent"
    headers = {"Authorization": f"Bearer {world.agent_pak}"}
    async with connect(url, additional_headers=headers) as ws:

        async def connected() -> bool:
            with contextlib.suppress(AssertionError):
                await channel_worker(broker, world.agent.id)
                return True
            return False

        await eventually(connected, timeout=5.0, what="the agent's channel listed")
        # The handshake's answer names the worker that holds the channel.
        assert ws.response is not None
        holder = int(ws.response.headers[WORKER_HEADER])
        assert await channel_worker(broker, world.agent.id) == holder
        other = 1 - holder
        async with pinned(broker.url, other, world.generator_pak) as generator:
            deployed = await generator.request(
                "POST",
                f"/api/v1/stacks/{world.stack_id}/deployment-objects",
                json={"yaml_content": configmap(f"push-{world.suffix}")},
            )
            assert deployed.status_code == 201, deployed.text

        async def hinted() -> None:
            async for message in ws:
                if msgspec.json.decode(message, type=Envelope).type == "stack_changed":
                    return

        await asyncio.wait_for(hinted(), timeout=5.0)


def worker_pids(output: str) -> dict[int, int]:
    """The latest pid of each worker, from the supervisor's log."""
    return {int(worker): int(pid) for worker, pid in STARTED.findall(output)}


async def survivor_requests(admin_on_b: Pinned, stop: asyncio.Event, failures: list[str]) -> int:
    """Requests to worker 1 until ``stop``; what did not answer 200 goes to ``failures``."""
    served = 0
    while not stop.is_set():
        response = await admin_on_b.request("GET", "/api/v1/agents")
        if response.status_code != 200:
            failures.append(f"worker 1 answered {response.status_code}")
        served += 1
    return served


async def readiness_probes(server: BrokerProcess, stop: asyncio.Event, failures: list[str]) -> int:
    """/readyz on a fresh connection each time (any worker), until ``stop``. A connection the
    killed worker had just accepted dies with it: that probe is asked again at once, as a
    kubelet would at its next period (failureThreshold > 1); a second failure counts."""
    probes = 0
    while not stop.is_set():
        for attempt in (1, 2):
            try:
                async with httpx.AsyncClient(base_url=server.url, timeout=5.0) as fresh:
                    response = await fresh.get("/readyz")
            except httpx.TransportError as exc:
                if attempt == 2:
                    failures.append(f"/readyz twice unanswered: {exc!r}")
                continue
            if response.status_code != 200:
                failures.append(f"/readyz answered {response.status_code}")
            break
        probes += 1
        await asyncio.sleep(0.02)
    return probes


@pytest.fixture
async def own_database_url() -> AsyncIterator[str]:
    # Its own database: the admin PAK a new server seeds is its own.
    url = await create_postgres_database()
    yield url
    await drop_postgres_database(url)


async def test_a_killed_worker_is_replaced_while_the_other_serves(
    tmp_path: Path, own_database_url: str
) -> None:
    server = workers_broker(tmp_path, own_database_url)
    server.start()
    try:
        wait_all_workers(server)
        victim = worker_pids(server.output.read_text())[0]
        failures: list[str] = []
        stop = asyncio.Event()
        admin_on_b = Pinned(server.url, 1, server.admin_pak)
        # Pinned before the kill: a new connection might land on the victim as it dies.
        assert (await admin_on_b.request("GET", "/api/v1/agents")).status_code == 200
        load = asyncio.gather(
            survivor_requests(admin_on_b, stop, failures), readiness_probes(server, stop, failures)
        )
        await asyncio.sleep(0.3)
        os.kill(victim, signal.SIGKILL)

        async def replaced() -> bool:
            if worker_pids(server.output.read_text()).get(0) in (None, victim):
                return False
            async with httpx.AsyncClient(base_url=server.url, timeout=5.0) as fresh:
                response = await fresh.get("/readyz")
            return response.headers[WORKER_HEADER] == "0"

        await eventually(replaced, timeout=60.0, what="a new worker 0 answering")
        stop.set()
        served, probes = await load
        await admin_on_b.aclose()
        assert served > 0 and probes > 0
        assert failures == []
        assert "broker worker exited; starting another" in server.output.read_text()

        # SIGHUP reaches every worker: each reloads its configuration.
        assert server.process is not None
        server.process.send_signal(signal.SIGHUP)

        async def all_reloaded() -> bool:
            return server.output.read_text().count("configuration reloaded (SIGHUP)") == WORKERS

        await eventually(all_reloaded, timeout=10.0, what="a reload in every worker")
        # A reload through the API reaches one worker, which has the others reload too.
        async with pinned(server.url, 0, server.admin_pak) as admin_on_a:
            reloaded = await admin_on_a.request("POST", "/api/v1/admin/config/reload")
        assert reloaded.status_code == 200, reloaded.text

        async def other_reloaded() -> bool:
            return server.output.read_text().count("configuration reloaded (SIGHUP)") == 3

        await eventually(other_reloaded, timeout=10.0, what="worker 1 reloading after the API")
        pids = worker_pids(server.output.read_text()).values()
    finally:
        process = server.process
        server.stop()
    # SIGTERM drained every worker and the server exited cleanly, leaving none behind.
    assert process is not None and process.returncode == 0
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid)


def _zombie(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    return True
