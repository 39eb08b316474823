"""Benchmark: ``brokkr serve --workers N`` on PostgreSQL, one and two worker processes.

All on 127.0.0.1 over one throwaway database: ``brokkr serve --workers 1`` and ``--workers 2``
(both up at once, replicas of one database), the bare Litestar+asyncpg ceiling (``_harness.py``)
served the same two ways (one process; or a parent binding the socket once and two spawned
processes accepting on it, as the broker's supervisor does), ``--agents`` agents seeded straight
into the database with their own PAKs, each targeting one stack of one deployment object.

(1) Throughput, closed loop: ``--concurrency`` keep-alive connections, each sending a request as
    soon as the previous reply is whole (no pipelining, like agents). Per round and worker count,
    alternating: the ceiling (one indexed SELECT of the agent row), the broker's authenticated
    ``GET /api/v1/agents/{id}`` (the agent's PAK) and its target-state 304 polls
    (``If-None-Match`` = the agent's ETag, fetched once beforehand). Each phase warms up 2 s,
    then is measured ``--duration`` s. The load generator is asyncio Protocols on uvloop in this
    process (no streams, no coroutine per request: the cheapest client Python offers). For each
    phase it prints the CPU used by this process, by the server's processes, by the database's
    PostgreSQL backends, and by the whole machine (from /proc), in cores. Targets: the 2-worker
    ratio broker/ceiling >= the 1-worker ratio; 2 workers >= 1.5x one worker's req/s, judged only
    when neither the generator (>= 0.9 of its one core) nor the machine (>= 90% of its cores
    busy) is the bottleneck; otherwise the output says "not judged" and why.
(2) Push across workers: on the 2-worker broker, agents connect to ``/internal/ws/agent``; those
    the pinned ``/api/v1/admin/ws/connections`` of worker 1 (B) lists are kept, up to
    ``--push-agents``. ``--push-rounds`` deployment objects are POSTed one after the other
    through a keep-alive connection whose answers all carry ``X-Brokkr-Worker: 0`` (A); the
    latency of each ``stack_changed`` frame is its arrival time minus the object's
    ``created_at`` (the broker's clock in the committing transaction; one host, one clock).
    Target p99 < 100 ms. Interleaved, half as many commits through worker 1 itself: the same
    path without the crossing, so a reader can tell what the crossing adds from what the
    machine costs. Also printed: the first frame of each commit, the POSTs' p50.

Prints a table per phase and a results table. The exit status is 1 when more than 1% of the
broker's requests failed or of its pushes never arrived; missed targets are reported, not fatal
(on a small machine the generator and PostgreSQL share the cores with the workers).
Takes about 2.5 minutes with the defaults. Every server process gets ``--pool-size`` (8) database
connections: all four servers run at once and PostgreSQL allows 100 connections by default.

Run:  .venv/bin/python bench/workers.py --help
      .venv/bin/python bench/workers.py --duration 10 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import operator
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import cast

import asyncpg
import msgspec
import uvloop
from sqlalchemy.ext.asyncio import create_async_engine
from websockets.asyncio.client import ClientConnection, connect

from _harness import (
    CLIENT_ERRORS,
    HOST,
    MAX_ERROR_RATE,
    WARMUP_SECONDS,
    Connection,
    Phase,
    RunningBroker,
    build_request,
    free_port,
    header,
    on_scratch_database,
    percentile_ms,
    start_broker,
    start_ceiling,
    wait_ready,
)
from ws_channel import CHANNEL_PATH, Envelope, Results, SimAgent, close_all, new_stack, seed_agents

WORKER_COUNTS = (1, 2)
SCALE_TARGET = 1.5
PUSH_P99_TARGET_MS = 100.0
# The generator is one thread: near one core it, not the server, sets the pace. A machine this
# busy has no core left for a second worker to use.
GENERATOR_SATURATED_CORES = 0.9
MACHINE_SATURATED_SHARE = 0.9
# Keep-alive connections opened, at most, to land one on a given worker.
PIN_ATTEMPTS = 64
# The kernel hands connections to whichever worker accepts first, not in turn (a third or fewer
# landed on worker 1 here): seeding this many times the agents wanted lets enough land there.
PUSH_SEED_FACTOR = 8
CONNECT_BATCH = 25
ROUND_TIMEOUT_SECONDS = 5.0
ROUND_PAUSE_SECONDS = 0.05
# Replies still outstanding this long after a phase's end are abandoned.
DRAIN_SECONDS = 2.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
WORKER_HEADER = b"x-brokkr-worker"
NO_BODY = (204, 304)


# --- CPU, from /proc ---------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first); None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except OSError:
        return None
    return stat.rpartition(")")[2].split()


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants (a supervisor and its workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        fields = _stat_fields(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """utime + stime in seconds of each live pid (fields 14 and 15 of /proc/<pid>/stat)."""
    found = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            found[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return found


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent on anything but idle and iowait since boot."""
    with Path("/proc/stat").open(encoding="ascii") as stat:
        ticks = [int(n) for n in stat.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def postgres_backends(dsn: str) -> list[int]:
    """The PostgreSQL backends of this database (the servers' pools), not this query's own."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return [int(row["pid"]) for row in rows]


@dataclass(frozen=True)
class Usage:
    """A snapshot of CPU counters; ``cores_since`` turns two into cores used on average."""

    wall: float
    generator: float
    machine: float
    server: dict[int, float]
    postgres: dict[int, float]

    @classmethod
    def take(cls, server: list[int], postgres: list[int]) -> Usage:
        return cls(
            time.perf_counter(),
            own_cpu_seconds(),
            machine_busy_seconds(),
            cpu_by_pid(server),
            cpu_by_pid(postgres),
        )

    def cores_since(self, before: Usage) -> Cores:
        wall = self.wall - before.wall

        def spent(after: dict[int, float], then: dict[int, float]) -> float:
            # Only processes alive at both ends: a pid that came or went has no interval.
            return sum(after[pid] - then[pid] for pid in after if pid in then)

        return Cores(
            generator=(self.generator - before.generator) / wall,
            server=spent(self.server, before.server) / wall,
            postgres=spent(self.postgres, before.postgres) / wall,
            machine=(self.machine - before.machine) / wall,
        )


@dataclass(frozen=True)
class Cores:
    generator: float
    server: float
    postgres: float
    machine: float

    @property
    def others(self) -> float:
        """Whatever else ran: other databases' backends, other people's processes."""
        return max(0.0, self.machine - self.generator - self.server - self.postgres)


# --- the load generator: one asyncio Protocol per keep-alive connection ------------------------


@dataclass
class Window:
    """What the connections of one phase share: the requests, and the replies they count."""

    requests: list[bytes]
    ok: int
    started: float = float("inf")
    measuring: bool = False
    stopped: bool = False
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    open: set[ClosedLoop] = field(default_factory=set)

    def count(self, sent_at: float, status: int) -> None:
        if self.measuring and sent_at >= self.started:
            if status == self.ok:
                self.latencies.append(time.perf_counter() - sent_at)
            else:
                self.errors += 1


class ClosedLoop(asyncio.Protocol):
    """Sends a request, waits for its whole reply, sends the next, until the window stops.
    Replies must carry Content-Length (both routes do) or no body (304)."""

    def __init__(self, window: Window) -> None:
        self._window = window
        self._buffer = b""
        self._sent_at = 0.0
        self._waiting = False
        self._transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast("asyncio.Transport", transport)
        self._window.open.add(self)
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        self._window.open.discard(self)
        if self._waiting and not self._window.stopped:
            self._window.count(self._sent_at, 0)
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _send(self) -> None:
        assert self._transport is not None  # noqa: S101 - only called once connected
        self._sent_at = time.perf_counter()
        self._waiting = True
        self._transport.write(random.choice(self._window.requests))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (status := self._take_reply()) is not None:
            self._waiting = False
            self._window.count(self._sent_at, status)
            if self._window.stopped or status == 0:
                self.close()
                return
            self._send()

    def _take_reply(self) -> int | None:
        """The status of the first whole reply in the buffer, which then drops it; None until
        one is whole; 0 for a reply this client cannot frame (the caller closes)."""
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = self._buffer[: end + 4]
        status = int(head[9:12])
        length = 0
        if status not in NO_BODY:
            if header(head, b"transfer-encoding") is not None:
                return 0
            length = int(header(head, b"content-length") or 0)
        if len(self._buffer) < end + 4 + length:
            return None
        self._buffer = self._buffer[end + 4 + length :]
        return status


async def keep_loading(port: int, window: Window) -> None:
    """One connection's closed loop until the window stops; a lost connection is reopened."""
    loop = asyncio.get_running_loop()
    while not window.stopped:
        try:
            _, protocol = await loop.create_connection(lambda: ClosedLoop(window), HOST, port)
        except OSError:
            window.count(time.perf_counter(), 0)
            await asyncio.sleep(0.05)
            continue
        await protocol.closed


@dataclass
class Measured:
    phase: Phase
    workers: int
    cores: Cores


async def measure(
    *,
    target: str,
    workers: int,
    round_no: int,
    port: int,
    window: Window,
    concurrency: int,
    duration: float,
    server_pid: int,
    dsn: str,
) -> Measured:
    loaders = [asyncio.create_task(keep_loading(port, window)) for _ in range(concurrency)]
    await asyncio.sleep(WARMUP_SECONDS)
    # After the warm-up the pools have opened their connections: these are the backends at work.
    server, postgres = process_tree(server_pid), await postgres_backends(dsn)
    before = Usage.take(server, postgres)
    window.started, window.measuring = time.perf_counter(), True
    await asyncio.sleep(duration)
    window.measuring, window.stopped = False, True
    after = Usage.take(server, postgres)
    for protocol in list(window.open):
        protocol.close()
    await asyncio.wait(loaders, timeout=DRAIN_SECONDS)
    for task in loaders:
        task.cancel()
    phase = Phase(target, round_no, after.wall - before.wall, concurrency, window.errors)
    phase.latencies = window.latencies
    return Measured(phase, workers, after.cores_since(before))


# --- servers and agents ------------------------------------------------------------------------


@dataclass(frozen=True)
class Servers:
    brokers: dict[int, RunningBroker]
    ceilings: dict[int, tuple[int, subprocess.Popen[bytes]]]  # workers -> (port, process)


async def start_servers(
    dsn: str, data_dir: str, admin_pak: str, pool_size: int, procs: list[subprocess.Popen[bytes]]
) -> Servers:
    brokers: dict[int, RunningBroker] = {}
    ceilings: dict[int, tuple[int, subprocess.Popen[bytes]]] = {}
    ready = build_request("GET", "/readyz", admin_pak)
    # One after the other: the first start migrates the database, the next finds it done.
    for workers in WORKER_COUNTS:
        port = free_port()
        proc = start_broker(
            port,
            dsn,
            f"{data_dir}/{workers}",
            admin_pak,
            workers=workers,
            settings={"BROKKR__DATABASE__POOL_SIZE": str(pool_size)},
        )
        procs.append(proc)
        await wait_ready(proc, port, ready, f"broker with {workers} workers")
        brokers[workers] = RunningBroker(port=port, pid=proc.pid, admin_pak=admin_pak)
    for workers in WORKER_COUNTS:
        port = free_port()
        proc = start_ceiling(port, dsn, workers, pool_size)
        procs.append(proc)
        ceilings[workers] = (port, proc)
    return Servers(brokers, ceilings)


async def wait_ceilings(servers: Servers, probe: bytes) -> None:
    for workers, (port, proc) in servers.ceilings.items():
        await wait_ready(proc, port, probe, f"ceiling with {workers} workers")


async def seed_polling_agents(broker: RunningBroker, dsn: str, count: int) -> list[SimAgent]:
    """``count`` agents targeting a new stack that holds one deployment object."""
    engine = create_async_engine("postgresql+asyncpg://" + dsn.split("://", 1)[1])
    try:
        async with new_stack(broker) as stack:
            agents = await seed_agents(engine, stack.id, count)
            yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: polled, namespace: default}\n"
            created = await stack.admin.post(
                f"/api/v1/stacks/{stack.id}/deployment-objects", json={"yaml_content": yaml}
            )
            if created.status_code != 201:
                raise RuntimeError(f"posting the deployment object: {created.status_code}")
    finally:
        await engine.dispose()
    return agents


async def fetch_etags(port: int, agents: list[SimAgent]) -> list[str]:
    """Each agent's current target-state ETag (one object each, checked)."""
    etags: dict[uuid.UUID, str] = {}
    todo = iter(agents)

    async def worker() -> None:
        conn = await Connection.open(port)
        try:
            for agent in todo:
                path = f"/api/v1/agents/{agent.id}/target-state"
                status, head, body = await conn.exchange(build_request("GET", path, agent.pak))
                etag = header(head, b"etag")
                if status != 200 or etag is None or len(msgspec.json.decode(body)) != 1:
                    raise RuntimeError(f"agent {agent.id}: HTTP {status}, ETag {etag}: {body!r}")
                etags[agent.id] = etag
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(8)))
    return [etags[agent.id] for agent in agents]


# --- (1) throughput ----------------------------------------------------------------------------


async def throughput(
    args: argparse.Namespace, servers: Servers, agents: list[SimAgent], dsn: str
) -> list[Measured]:
    etags = await fetch_etags(servers.brokers[1].port, agents)
    state = "/api/v1/agents/{}/target-state"
    workloads: dict[str, tuple[list[bytes], int]] = {
        "ceiling": ([build_request("GET", f"/agents/{a.id}", a.pak) for a in agents], 200),
        "GET": ([build_request("GET", f"/api/v1/agents/{a.id}", a.pak) for a in agents], 200),
        "304": (
            [
                build_request("GET", state.format(a.id), a.pak, headers=(f"If-None-Match: {e}",))
                for a, e in zip(agents, etags, strict=True)
            ],
            304,
        ),
    }
    measured: list[Measured] = []
    for round_no in range(1, args.rounds + 1):
        for workers in WORKER_COUNTS:
            for target, (requests, ok) in workloads.items():
                if target == "ceiling":
                    port, pid = servers.ceilings[workers][0], servers.ceilings[workers][1].pid
                else:
                    port, pid = servers.brokers[workers].port, servers.brokers[workers].pid
                result = await measure(
                    target=target,
                    workers=workers,
                    round_no=round_no,
                    port=port,
                    window=Window(requests, ok),
                    concurrency=args.concurrency,
                    duration=args.duration,
                    server_pid=pid,
                    dsn=dsn,
                )
                print(
                    f"  r{round_no} {workers}w {target:>7}: {result.phase.rps:>6.0f} req/s,"
                    f" generator {result.cores.generator:.2f} cores",
                    flush=True,
                )
                measured.append(result)
    return measured


def print_phases(measured: list[Measured]) -> None:
    print(
        "\nworkers  target round   req/s  p50 ms  p99 ms  requests errors"
        "  cores: generator server postgres others machine"
    )
    for m in measured:
        p, c = m.phase, m.cores
        print(
            f"{m.workers:>7} {p.target:>7} {p.round:>5} {p.rps:>7.0f} {p.percentile_ms(0.5):>7.2f}"
            f" {p.percentile_ms(0.99):>7.2f} {len(p.latencies):>9} {p.errors:>6}"
            f"  {c.generator:>16.2f} {c.server:>6.2f} {c.postgres:>8.2f} {c.others:>6.2f}"
            f" {c.machine:>7.2f}"
        )


def judge_throughput(measured: list[Measured], results: Results) -> None:
    def median(target: str, workers: int, of: Callable[[Measured], float]) -> float:
        return statistics.median(
            of(m) for m in measured if m.phase.target == target and m.workers == workers
        )

    def rps(target: str, workers: int) -> float:
        return median(target, workers, lambda m: m.phase.rps)

    cores = os.cpu_count() or 1
    for target in ("GET", "304"):
        ratios = {w: rps(target, w) / rps("ceiling", w) for w in WORKER_COUNTS}
        for workers, ratio in ratios.items():
            metric = f"{target} broker/ceiling, {workers} worker{'s' * (workers > 1)}"
            value = f"{ratio:.2f} ({rps(target, workers):.0f} vs {rps('ceiling', workers):.0f}/s)"
            if workers == 1:
                results.add(metric, value)
            else:
                results.add(metric, value, f">= 1-worker ratio {ratios[1]:.2f}", ratio >= ratios[1])
    results.add(
        "ceiling 2 workers / 1 worker",
        f"{rps('ceiling', 2) / rps('ceiling', 1):.2f}x",
        "(what this machine lets any server gain)",
    )
    for target in ("GET", "304"):
        scale = rps(target, 2) / rps(target, 1)
        used = {
            name: median(target, 2, operator.attrgetter(f"cores.{name}"))
            for name in ("generator", "server", "postgres", "others", "machine")
        }
        results.add(
            f"{target} 2 workers: cores used",
            f"generator {used['generator']:.2f}, workers {used['server']:.2f},"
            f" postgres {used['postgres']:.2f}, others {used['others']:.2f};"
            f" {used['machine']:.2f} of {cores}",
        )
        bound = []
        if used["generator"] >= GENERATOR_SATURATED_CORES:
            bound.append(f"generator at {used['generator']:.2f} of its one core")
        if used["machine"] >= MACHINE_SATURATED_SHARE * cores:
            bound.append(f"machine {100 * used['machine'] / cores:.0f}% busy")
        metric, value = f"{target} 2 workers / 1 worker", f"{scale:.2f}x"
        if scale < SCALE_TARGET and bound:
            # A miss the workers could not help: the cores they would need were not free.
            excuse = ", ".join(bound)
            results.add(metric, value, f">= {SCALE_TARGET}x (not judged: {excuse})")
        else:
            results.add(metric, value, f">= {SCALE_TARGET}x", scale >= SCALE_TARGET)


# --- (2) push across workers -------------------------------------------------------------------


async def pinned(port: int, worker: int, admin_pak: str) -> Connection:
    """A keep-alive connection the kernel handed to worker ``worker``."""
    probe = build_request("GET", "/readyz", admin_pak)
    for _ in range(PIN_ATTEMPTS):
        conn = await Connection.open(port)
        status, head, _ = await conn.exchange(probe)
        if status == 200 and header(head, WORKER_HEADER) == str(worker):
            return conn
        conn.close()
    raise RuntimeError(f"no connection landed on worker {worker} in {PIN_ATTEMPTS} attempts")


async def agents_on(port: int, worker: int, admin_pak: str) -> set[uuid.UUID]:
    conn = await pinned(port, worker, admin_pak)
    try:
        status, body = await conn.send(
            build_request("GET", "/api/v1/admin/ws/connections", admin_pak)
        )
    finally:
        conn.close()
    if status != 200:
        raise RuntimeError(f"/admin/ws/connections on worker {worker}: HTTP {status}")
    listed = msgspec.json.decode(body)["connections"]
    return {uuid.UUID(entry["agent_id"]) for entry in listed}


async def connect_on(
    broker: RunningBroker, agents: list[SimAgent], worker: int, wanted: int
) -> tuple[list[ClientConnection], int]:
    """Channels of up to ``wanted`` agents whose handshake landed on ``worker`` (the others are
    closed), and how many agents were tried."""
    url = f"ws://{HOST}:{broker.port}{CHANNEL_PATH}"
    kept: list[ClientConnection] = []
    tried = 0
    for start in range(0, len(agents), CONNECT_BATCH):
        batch = agents[start : start + CONNECT_BATCH]
        tried += len(batch)
        conns = await asyncio.gather(
            *(
                connect(
                    url,
                    additional_headers={"Authorization": f"Bearer {agent.pak}"},
                    ping_interval=None,
                    open_timeout=30,
                )
                for agent in batch
            )
        )
        there = await agents_on(broker.port, worker, broker.admin_pak)
        others: list[ClientConnection] = []
        for agent, conn in zip(batch, conns, strict=True):
            (kept if agent.id in there and len(kept) < wanted else others).append(conn)
        await close_all(others)
        if len(kept) >= wanted:
            break
    return kept, tried


async def commit(conn: Connection, path: str, admin_pak: str, n: int) -> tuple[int, bytes, bytes]:
    yaml = (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: round-{n}, namespace: default}}\n"
        f"data: {{round: '{n}'}}\n"
    )
    body = msgspec.json.encode({"yaml_content": yaml})
    return await conn.exchange(build_request("POST", path, admin_pak, body))


@dataclass
class Pushes:
    """The commits through one worker and the ``stack_changed`` frames they caused."""

    writer: int
    agents: int  # connected, each expecting one frame per commit
    commits: int = 0
    lost: int = 0  # commits whose keep-alive connection closed under them
    missing: int = 0  # frames not there within ROUND_TIMEOUT_SECONDS
    latencies: list[float] = field(default_factory=list)
    firsts: list[float] = field(default_factory=list)  # each commit's first frame
    responses: list[float] = field(default_factory=list)

    def percentiles(self, samples: list[float]) -> str:
        return f"{percentile_ms(samples, 0.5):.1f} / {percentile_ms(samples, 0.99):.1f} ms"


async def push_once(
    broker: RunningBroker, conn: Connection, path: str, pushes: Pushes, inbox: list[list[float]]
) -> Connection:
    """One commit through ``conn`` (pinned to ``pushes.writer``), waiting for its frames; the
    connection to use next."""
    inbox.append([])
    arrivals = inbox[-1]  # the listeners append to the newest list
    pushes.commits += 1
    posted = time.perf_counter()
    try:
        status, head, body = await commit(conn, path, broker.admin_pak, len(inbox))
    except CLIENT_ERRORS:
        # Closed by the broker (idle keep-alive): this commit is lost, pin another connection.
        conn.close()
        pushes.lost += 1
        return await pinned(broker.port, pushes.writer, broker.admin_pak)
    served_by = header(head, WORKER_HEADER)
    if status != 201 or served_by != str(pushes.writer):
        raise RuntimeError(f"commit {len(inbox)}: HTTP {status} from worker {served_by}")
    pushes.responses.append(time.perf_counter() - posted)
    committed = datetime.fromisoformat(msgspec.json.decode(body)["created_at"]).timestamp()
    deadline = time.perf_counter() + ROUND_TIMEOUT_SECONDS
    while len(arrivals) < pushes.agents and time.perf_counter() < deadline:
        await asyncio.sleep(0.002)
    pushes.missing += pushes.agents - len(arrivals)
    pushes.latencies += [arrived - committed for arrived in arrivals]
    pushes.firsts += [min(arrivals) - committed] if arrivals else []
    return conn


async def push_latency(
    args: argparse.Namespace, broker: RunningBroker, dsn: str, results: Results
) -> tuple[int, int]:
    """Measures and reports; returns (pushes expected, pushes that never arrived)."""
    writer, reader = 0, 1
    engine = create_async_engine("postgresql+asyncpg://" + dsn.split("://", 1)[1])
    try:
        async with new_stack(broker) as stack:
            agents = await seed_agents(engine, stack.id, PUSH_SEED_FACTOR * args.push_agents)
    finally:
        await engine.dispose()
    conns, tried = await connect_on(broker, agents, reader, args.push_agents)
    print(f"(2) {len(conns)} agents on worker {reader} (of {tried} connected)", flush=True)
    inbox: list[list[float]] = []

    async def listen(conn: ClientConnection) -> None:
        with contextlib.suppress(Exception):
            async for message in conn:
                if msgspec.json.decode(message, type=Envelope).type == "stack_changed" and inbox:
                    inbox[-1].append(time.time())

    listeners = [asyncio.create_task(listen(conn)) for conn in conns]
    # The control: commits through the agents' own worker, delivered without crossing.
    across, control = Pushes(writer, len(conns)), Pushes(reader, len(conns))
    path = f"/api/v1/stacks/{stack.id}/deployment-objects"
    pinned_to = {w: await pinned(broker.port, w, broker.admin_pak) for w in (writer, reader)}
    own_cpu, wall = own_cpu_seconds(), time.perf_counter()
    try:
        for n in range(args.push_rounds):
            for pushes in (across, control) if n % 2 == 0 else (across,):
                conn = pinned_to[pushes.writer]
                pinned_to[pushes.writer] = await push_once(broker, conn, path, pushes, inbox)
                await asyncio.sleep(ROUND_PAUSE_SECONDS)
        own_cpu = (own_cpu_seconds() - own_cpu) / (time.perf_counter() - wall)
    finally:
        for conn in pinned_to.values():
            conn.close()
        for task in listeners:
            task.cancel()
        await close_all(conns)
    for pushes in (across, control):
        print(
            f"(2) worker {pushes.writer} -> {reader}: {len(pushes.latencies)} frames over"
            f" {pushes.commits} commits ({pushes.lost} lost with their connection, {pushes.missing}"
            f" frames missing); POST p50 {percentile_ms(pushes.responses, 0.5):.1f} ms;"
            f" max {percentile_ms(pushes.latencies, 1.0):.1f} ms",
            flush=True,
        )
    print(f"(2) load generator {own_cpu:.2f} cores", flush=True)
    agents_there = f"{len(conns)} agents on worker {reader}"
    p99 = percentile_ms(across.latencies, 0.99)
    results.add(
        f"push worker {writer} -> {agents_there}, p50 / p99",
        across.percentiles(across.latencies)
        + (f" ({across.missing} never arrived)" if across.missing else ""),
        f"p99 < {PUSH_P99_TARGET_MS:.0f} ms",
        p99 < PUSH_P99_TARGET_MS and not across.missing,
    )
    results.add("  first agent per commit, p50 / p99", across.percentiles(across.firsts))
    results.add(
        f"control: worker {reader} -> {agents_there}, p50 / p99",
        control.percentiles(control.latencies),
        "(no crossing: what the machine costs)",
    )
    results.add("  first agent per commit, p50 / p99", control.percentiles(control.firsts))
    expected = sum(p.commits * p.agents for p in (across, control))
    return expected, sum(p.missing + p.lost * p.agents for p in (across, control))


# --- the run -----------------------------------------------------------------------------------


def failure_rate(measured: list[Measured], pushes: tuple[int, int]) -> tuple[int, int]:
    """(failed, attempted): the broker's requests and the pushes expected."""
    broker = [m.phase for m in measured if m.phase.target != "ceiling"]
    errors = sum(p.errors for p in broker)
    expected, lost = pushes
    return errors + lost, errors + sum(len(p.latencies) for p in broker) + expected


async def run(args: argparse.Namespace, dsn: str, procs: list[subprocess.Popen[bytes]]) -> int:
    from brokkr.broker.domain import paks  # only the parent needs the broker's code

    admin_pak = paks.generate().plaintext
    results = Results()
    with tempfile.TemporaryDirectory(prefix="brokkr-workers-bench-") as data_dir:
        for workers in WORKER_COUNTS:
            Path(f"{data_dir}/{workers}").mkdir()
        started = time.perf_counter()
        servers = await start_servers(dsn, data_dir, admin_pak, args.pool_size, procs)
        agents = await seed_polling_agents(servers.brokers[1], dsn, args.agents)
        probe = build_request("GET", f"/agents/{agents[0].id}", agents[0].pak)
        await wait_ceilings(servers, probe)
        print(
            f"servers up and {len(agents)} agents seeded in {time.perf_counter() - started:.1f} s;"
            f" load generator pid {os.getpid()}, {args.concurrency} connections;"
            f" {os.cpu_count()} CPUs shared by all; warm-up {WARMUP_SECONDS:.0f} s per phase",
            flush=True,
        )
        measured = await throughput(args, servers, agents, dsn)
        judge_throughput(measured, results)
        pushes = await push_latency(args, servers.brokers[2], dsn, results)
    print_phases(measured)
    failed, total = failure_rate(measured, pushes)
    rate = failed / total if total else 1.0
    results.add(
        "broker requests and pushes failed",
        f"{failed} of {total} ({100 * rate:.2f}%)",
        f"<= {100 * MAX_ERROR_RATE:.0f}% (else exit 1)",
        rate <= MAX_ERROR_RATE,
    )
    print()
    results.print()
    return 1 if rate > MAX_ERROR_RATE else 0


def main() -> int:
    first, _, rest = (__doc__ or "").partition("\n\n")
    parser = argparse.ArgumentParser(
        description=first, epilog=rest, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=500, help="(1) agents polled, own PAKs")
    parser.add_argument("--concurrency", type=int, default=32, help="(1) keep-alive connections")
    parser.add_argument("--duration", type=float, default=5.0, help="(1) seconds per phase")
    parser.add_argument("--rounds", type=int, default=2, help="(1) rounds of all six phases")
    parser.add_argument(
        "--pool-size",
        type=int,
        default=8,
        help="database pool size of every server process (all four servers run at once, and"
        " PostgreSQL allows 100 connections by default)",
    )
    parser.add_argument("--push-agents", type=int, default=50, help="(2) agents on worker 1")
    parser.add_argument("--push-rounds", type=int, default=200, help="(2) commits on worker 0")
    args = parser.parse_args()
    counts = [args.agents, args.concurrency, args.rounds, args.pool_size]
    counts += [args.push_agents, args.push_rounds]
    if min(counts) < 1 or args.duration <= 0:
        parser.error("counts and --duration must be positive")
    return uvloop.run(on_scratch_database(run, args))


if __name__ == "__main__":
    sys.exit(main())
