"""Benchmark: the agent channel (``/internal/ws/agent``) of one ``brokkr serve`` process.

Simulated agents are ``websockets`` clients in this process (uvloop; no keepalive pings; no
compression unless ``--deflate``), each an ACTIVE agent with its
own PAK seeded straight into the database (SQLAlchemy on the broker's own tables) and targeting
one stack (the broker drops telemetry for stacks an agent does not reach). Each phase runs on a
fresh broker process over one fresh database (PostgreSQL by default, dropped afterwards; or
SQLite with ``--backend sqlite``), so its peak RSS is its own.

(a) ingest: ``--ingest-agents`` (500) agents send ``pod_log_line`` frames for ``--seconds``
    (10) at ``--rate`` frames/s in all (10,000; 0: as fast as they can); the rows in
    ``agent_pod_logs`` are counted once their number stops growing and the broker is idle.
    Prints rows/s (wall clock), rows per broker CPU second (utime + stime from
    /proc/<pid>/stat; target >= 5,000: the reference Rust broker's figure per core), the
    broker's peak RSS (VmHWM; target <= 150 MiB), the frames offered and stored, the broker's
    non-zero ``brokkr_ws_*`` counters (what it dropped, why), and this process's CPU (when it
    nears one core, the load generator is the bottleneck and the rates are floors).
(b) push latency: ``--push-agents`` (1,000) connected agents; ``--rounds`` (5) deployment
    objects are POSTed to their stack one after the other; the latency of each ``stack_changed``
    frame is its arrival time minus the object's ``created_at`` (the broker's clock in the
    committing transaction; one host, one clock). Target p99 < 500 ms.
(c) idle: ``--idle-agents`` (10,000) agents connect and stay idle; prints the broker's RSS
    before and after and per 1,000 connections (no target: a sizing figure). RLIMIT_NOFILE is
    raised to its hard limit for this process and the broker.

Run:  .venv/bin/python bench/ws_channel.py --help
      .venv/bin/python bench/ws_channel.py                       # all phases, PostgreSQL
      .venv/bin/python bench/ws_channel.py --phases a --backend sqlite --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import sqlalchemy as sa
import uvloop
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from websockets.asyncio.client import ClientConnection, connect

from _harness import (
    HOST,
    RunningBroker,
    build_request,
    cancel_on_sigterm,
    free_port,
    percentile_ms,
    start_broker,
    stop_process,
    wait_ready,
)
from _harness import scratch_database as postgres_database

MIB = 1024 * 1024
CHANNEL_PATH = "/internal/ws/agent"
INGEST_TARGET_PER_CPU_S = 5_000.0
INGEST_RSS_TARGET_MIB = 150.0
PUSH_P99_TARGET_MS = 500.0
CONNECT_CONCURRENCY = 100
SEED_CHUNK = 1_000
# Rows are counted until their number has not changed, and the broker has been idle, for this
# long (its flushes run every 0.25 s).
SETTLED_SECONDS = 2.0
# The broker counts as idle while it uses less than this share of one core.
IDLE_CPU_SHARE = 0.1
# A paced agent sends what it is due this often.
PACE_SECONDS = 0.05
ROUND_TIMEOUT_SECONDS = 10.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- the broker process, seen from /proc -------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (fields 14 and 15 of /proc/<pid>/stat, after the comm)."""
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_mib(pid: int, key: str) -> float:
    """``VmRSS`` or ``VmHWM`` (peak RSS) of ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} in /proc/{pid}/status")


# --- the database: one per run, agents seeded with the broker's own tables ---------------------


@dataclass(frozen=True)
class SimAgent:
    id: uuid.UUID
    pak: str


@contextlib.asynccontextmanager
async def database(backend: str) -> AsyncIterator[tuple[str, str]]:
    """(the broker's ``database.url``, the SQLAlchemy URL this process seeds through)."""
    if backend == "postgresql":
        async with postgres_database() as dsn:
            yield dsn, "postgresql+asyncpg://" + dsn.split("://", 1)[1]
        return
    with tempfile.TemporaryDirectory(prefix="brokkr-ws-bench-") as directory:
        path = f"{directory}/brokkr.db"
        yield f"sqlite:///{path}", f"sqlite+aiosqlite:///{path}"


async def seed_agents(engine: AsyncEngine, stack_id: uuid.UUID, count: int) -> list[SimAgent]:
    """``count`` ACTIVE agents with their own PAKs, each targeting ``stack_id``."""
    from brokkr.broker.db import tables
    from brokkr.broker.domain import paks

    now = datetime.now(UTC)
    run = uuid.uuid4().hex[:8]
    agents: list[SimAgent] = []
    for start in range(0, count, SEED_CHUNK):
        rows, targets = [], []
        for n in range(start, min(count, start + SEED_CHUNK)):
            pak, agent_id = paks.generate(), uuid.uuid4()
            agents.append(SimAgent(agent_id, pak.plaintext))
            rows.append(
                {
                    "id": agent_id,
                    "created_at": now,
                    "updated_at": now,
                    "name": f"sim-{run}-{n:05d}",
                    "cluster_name": "bench",
                    "status": "ACTIVE",
                    "pak_hash": pak.hash,
                    "key_id": pak.key_id,
                }
            )
            targets.append({"id": uuid.uuid4(), "agent_id": agent_id, "stack_id": stack_id})
        async with engine.begin() as conn:
            await conn.execute(sa.insert(tables.agents), rows)
            await conn.execute(sa.insert(tables.agent_targets), targets)
    return agents


async def pod_log_rows(engine: AsyncEngine) -> int:
    from brokkr.broker.db import tables

    async with engine.connect() as conn:
        found = await conn.scalar(sa.select(sa.func.count()).select_from(tables.agent_pod_logs))
    return int(found or 0)


@dataclass(frozen=True)
class Stack:
    id: uuid.UUID
    admin: httpx.AsyncClient


@contextlib.asynccontextmanager
async def new_stack(broker: RunningBroker) -> AsyncIterator[Stack]:
    """A generator and a stack of it, made through the API; an admin HTTP client."""
    headers = {"Authorization": f"Bearer {broker.admin_pak}"}
    async with httpx.AsyncClient(base_url=broker.url, headers=headers, timeout=30) as admin:
        name = f"bench-{uuid.uuid4().hex[:8]}"
        generator = _json(await admin.post("/api/v1/generators", json={"name": name}), 201)
        stack = _json(
            await admin.post(
                "/api/v1/stacks",
                json={"name": name, "generator_id": generator["generator"]["id"]},
            ),
            201,
        )
        yield Stack(uuid.UUID(stack["id"]), admin)


def _json(response: httpx.Response, status: int) -> dict[str, Any]:
    if response.status_code != status:
        raise SystemExit(f"{response.request.url}: {response.status_code} {response.text}")
    found: dict[str, Any] = response.json()
    return found


# --- simulated agents --------------------------------------------------------------------------


async def connect_all(
    broker: RunningBroker, agents: list[SimAgent], *, deflate: bool
) -> list[ClientConnection]:
    """One channel per agent, ``CONNECT_CONCURRENCY`` handshakes at a time; an agent whose
    upgrade fails is left out (and counted by the caller)."""
    url = f"ws://{HOST}:{broker.port}{CHANNEL_PATH}"
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(agent: SimAgent) -> ClientConnection | None:
        async with gate:
            try:
                return await connect(
                    url,
                    additional_headers={"Authorization": f"Bearer {agent.pak}"},
                    compression="deflate" if deflate else None,
                    ping_interval=None,
                    open_timeout=60,
                    max_size=1024 * 1024,
                )
            except Exception as exc:  # noqa: BLE001 - counted, the first one shown
                if not failures:
                    print(f"  first failed upgrade: {type(exc).__name__}: {exc}", flush=True)
                failures.append(agent)
                return None

    failures: list[SimAgent] = []
    opened = await asyncio.gather(*(one(agent) for agent in agents))
    return [conn for conn in opened if conn is not None]


async def close_all(conns: list[ClientConnection]) -> None:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY * 5)

    async def one(conn: ClientConnection) -> None:
        async with gate:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 5)

    await asyncio.gather(*(one(conn) for conn in conns))


def log_frames(agent: SimAgent, stack_id: uuid.UUID, variants: int = 8) -> list[str]:
    """A few ``pod_log_line`` frames of this agent, reused (encoding is not what is measured)."""
    from brokkr.common.wire import channel

    now = datetime.now(UTC)
    return [
        channel.frame(
            channel.POD_LOG_LINE,
            channel.PodLogLineBody(
                agent_id=agent.id,
                stack_id=stack_id,
                namespace="default",
                pod=f"web-{n}",
                container="main",
                ts=now,
                line=f'10.0.0.{n} - - "GET /index.html HTTP/1.1" 200 612 "-" "curl/8.5.0" {n}',
            ),
        ).decode()
        for n in range(variants)
    ]


# --- phases ------------------------------------------------------------------------------------


@dataclass
class Results:
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    missed: int = 0

    def add(self, metric: str, value: str, target: str = "", met: bool | None = None) -> None:
        verdict = "" if met is None else ("pass" if met else "MISS")
        self.missed += met is False
        self.rows.append((metric, value, target, verdict))

    def print(self) -> None:
        header = ("metric", "value", "target", "result")
        widths = [max(len(row[i]) for row in [header, *self.rows]) for i in range(4)]
        for row in [header, *self.rows]:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


async def pump(conn: ClientConnection, frames: list[str], stop: float, per_second: float) -> int:
    """One agent's load until ``stop``: ``per_second`` frames a second, or (0) as many as it
    can; the number sent."""
    sent = 0
    started = time.perf_counter()
    try:
        while (now := time.perf_counter()) < stop:
            if per_second:
                due = int(per_second * (now - started)) + 1
                while sent < due:
                    await conn.send(frames[sent % len(frames)])
                    sent += 1
                await asyncio.sleep(PACE_SECONDS)
            else:
                await conn.send(frames[sent % len(frames)])
                sent += 1
                if sent % 32 == 0:
                    await asyncio.sleep(0)  # let the other agents send too
    except Exception as exc:  # noqa: BLE001 - a closed channel ends this agent's load
        print(f"  an agent's channel ended: {type(exc).__name__}: {exc}", flush=True)
    return sent


async def settle(engine: AsyncEngine, pid: int) -> tuple[int, float, float]:
    """Count rows until their number has not changed and the broker has been idle (it may still
    be reading what the agents sent, or writing its buffer) for ``SETTLED_SECONDS``: the rows,
    and when and at which broker CPU time their number last changed."""
    rows, changed_at = await pod_log_rows(engine), time.perf_counter()
    cpu_at_change = last_cpu = cpu_seconds(pid)
    idle_since = changed_at
    while time.perf_counter() - max(changed_at, idle_since) < SETTLED_SECONDS:
        await asyncio.sleep(0.25)
        now_rows, now_cpu = await pod_log_rows(engine), cpu_seconds(pid)
        if now_cpu - last_cpu > 0.25 * IDLE_CPU_SHARE:
            idle_since = time.perf_counter()
        last_cpu = now_cpu
        if now_rows != rows:
            rows, changed_at, cpu_at_change = now_rows, time.perf_counter(), now_cpu
    return rows, changed_at, cpu_at_change


async def ingest(
    broker: RunningBroker, engine: AsyncEngine, args: argparse.Namespace, results: Results
) -> None:
    async with new_stack(broker) as stack:
        agents = await seed_agents(engine, stack.id, args.ingest_agents)
    conns = await connect_all(broker, agents, deflate=args.deflate)
    frames = [log_frames(agent, stack.id) for agent in agents]
    before_rows = await pod_log_rows(engine)
    per_agent = args.rate / max(1, len(conns))
    print(
        f"(a) {len(conns)}/{len(agents)} agents connected; broker RSS before the load"
        f" {memory_mib(broker.pid, 'VmRSS'):.0f} MiB",
        flush=True,
    )
    cpu0, own0, wall0 = cpu_seconds(broker.pid), time.process_time(), time.perf_counter()
    stop = wall0 + args.seconds
    counts = await asyncio.gather(
        *(pump(c, f, stop, per_agent) for c, f in zip(conns, frames, strict=False))
    )
    sent = sum(counts)
    own_cpu = time.process_time() - own0
    sending = time.perf_counter() - wall0
    rows, changed_at, cpu_at_change = await settle(engine, broker.pid)
    stored = rows - before_rows
    wall = changed_at - wall0
    cpu = cpu_at_change - cpu0
    peak = memory_mib(broker.pid, "VmHWM")
    await close_all(conns)
    for line in await channel_counters(broker):
        print(f"    {line}")
    per_cpu = stored / cpu if cpu else 0.0
    print(
        f"(a) sent {sent} frames in {sending:.1f} s ({sent / sending:.0f}/s); stored {stored} rows"
        f" by {wall:.1f} s; broker CPU {cpu:.1f} s; load generator CPU {own_cpu:.1f} s"
        f" ({100 * own_cpu / sending:.0f}% of one core)",
        flush=True,
    )
    results.add(f"(a) rows/s ingested, {len(conns)} agents", f"{stored / wall:.0f}")
    results.add(
        "(a) rows per broker CPU second",
        f"{per_cpu:.0f}",
        f">= {INGEST_TARGET_PER_CPU_S:.0f}",
        per_cpu >= INGEST_TARGET_PER_CPU_S,
    )
    results.add(
        "(a) broker peak RSS (VmHWM)",
        f"{peak:.0f} MiB",
        f"<= {INGEST_RSS_TARGET_MIB:.0f} MiB",
        peak <= INGEST_RSS_TARGET_MIB,
    )
    lost = sent - stored
    results.add(
        f"(a) frames offered, stored (at {sent / sending:.0f}/s)",
        f"{sent}, {stored} ({100 * lost / max(1, sent):.0f}% dropped)",
    )
    if own_cpu >= 0.9 * sending:
        results.add("(a) load generator", "saturated: rates are floors")


async def push_latency(
    broker: RunningBroker, engine: AsyncEngine, args: argparse.Namespace, results: Results
) -> None:
    async with new_stack(broker) as stack:
        agents = await seed_agents(engine, stack.id, args.push_agents)
        conns = await connect_all(broker, agents, deflate=args.deflate)
        print(f"(b) {len(conns)}/{len(agents)} agents connected", flush=True)
        arrivals: list[list[float]] = [[] for _ in range(args.rounds)]
        current = 0

        async def listen(conn: ClientConnection) -> None:
            with contextlib.suppress(Exception):
                async for message in conn:
                    envelope = msgspec.json.decode(message, type=Envelope)
                    if envelope.type == "stack_changed":
                        arrivals[current].append(time.time())

        listeners = [asyncio.create_task(listen(conn)) for conn in conns]
        latencies: list[float] = []
        responses: list[float] = []
        missing = 0
        try:
            for current in range(args.rounds):  # noqa: B007 - read by listen()
                yaml = (
                    f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: bench-{current}, "
                    "namespace: default}\ndata: {round: '" + str(current) + "'}\n"
                )
                posted = time.perf_counter()
                created = _json(
                    await stack.admin.post(
                        f"/api/v1/stacks/{stack.id}/deployment-objects",
                        json={"yaml_content": yaml},
                    ),
                    201,
                )
                responses.append(time.perf_counter() - posted)
                committed = datetime.fromisoformat(str(created["created_at"])).timestamp()
                deadline = time.perf_counter() + ROUND_TIMEOUT_SECONDS
                while len(arrivals[current]) < len(conns) and time.perf_counter() < deadline:
                    await asyncio.sleep(0.01)
                missing += len(conns) - len(arrivals[current])
                latencies += [arrived - committed for arrived in arrivals[current]]
                await asyncio.sleep(0.5)
        finally:
            for task in listeners:
                task.cancel()
            await close_all(conns)
    p50, p99 = percentile_ms(latencies, 0.50), percentile_ms(latencies, 0.99)
    print(
        f"(b) {len(latencies)} pushes over {args.rounds} rounds; POST p50"
        f" {percentile_ms(responses, 0.5):.0f} ms; push latency p50 {p50:.0f} ms, p99 {p99:.0f} ms,"
        f" max {percentile_ms(latencies, 1.0):.0f} ms; missing {missing}",
        flush=True,
    )
    results.add(f"(b) push latency p50, {len(conns)} agents", f"{p50:.0f} ms")
    met = p99 < PUSH_P99_TARGET_MS and missing == 0
    results.add(
        f"(b) push latency p99, {len(conns)} agents",
        f"{p99:.0f} ms" + (f" ({missing} never arrived)" if missing else ""),
        f"< {PUSH_P99_TARGET_MS:.0f} ms, none missing",
        met,
    )


async def channel_counters(broker: RunningBroker) -> list[str]:
    """The broker's non-zero ``brokkr_ws_*`` counters: frames in, and what it dropped why."""
    async with httpx.AsyncClient(base_url=broker.url, timeout=30) as http:
        text = (await http.get("/metrics")).text
    return [
        line
        for line in text.splitlines()
        if line.startswith("brokkr_ws_") and "_total" in line and not line.endswith(" 0.0")
    ]


class Envelope(msgspec.Struct):
    type: str


async def idle(
    broker: RunningBroker, engine: AsyncEngine, args: argparse.Namespace, results: Results
) -> None:
    async with new_stack(broker) as stack:
        started = time.perf_counter()
        agents = await seed_agents(engine, stack.id, args.idle_agents)
        print(f"(c) seeded {len(agents)} agents in {time.perf_counter() - started:.1f} s")
        before = memory_mib(broker.pid, "VmRSS")
        started = time.perf_counter()
        conns = await connect_all(broker, agents, deflate=args.deflate)
        took = time.perf_counter() - started
        await asyncio.sleep(3.0)  # let the broker settle after the handshakes
        response = await stack.admin.get("/api/v1/admin/ws/connections")
        listed = response.json().get("connected_agents") if response.status_code == 200 else None
        after = memory_mib(broker.pid, "VmRSS")
        peak = memory_mib(broker.pid, "VmHWM")
        await close_all(conns)
    print(
        f"(c) {len(conns)}/{len(agents)} connected in {took:.1f} s"
        f" ({len(conns) / took:.0f}/s); broker lists {listed}; RSS {before:.0f} -> {after:.0f} MiB"
        f" (peak {peak:.0f})",
        flush=True,
    )
    per_thousand = (after - before) / max(1, len(conns)) * 1000
    results.add(
        f"(c) broker RSS, {len(conns)} idle agents",
        f"{after:.0f} MiB (+{per_thousand:.1f} MiB per 1,000)",
    )
    results.add("(c) agents connected / listed by broker", f"{len(conns)} / {listed}")


PHASES = {"a": ingest, "b": push_latency, "c": idle}


@contextlib.asynccontextmanager
async def fresh_broker(database_url: str, admin_pak: str) -> AsyncIterator[RunningBroker]:
    """A new ``brokkr serve`` on the run's database; one admin PAK for the whole run (only a
    broker's first start on a database seeds it)."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="brokkr-ws-bench-data-") as data_dir:
        proc = start_broker(port, database_url, data_dir, admin_pak)
        try:
            await wait_ready(proc, port, build_request("GET", "/readyz", admin_pak), "broker")
            yield RunningBroker(port=port, pid=proc.pid, admin_pak=admin_pak)
        finally:
            stop_process(proc)


def raise_file_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


async def bench(args: argparse.Namespace) -> int:
    from brokkr.broker.domain import paks

    cancel_on_sigterm()
    admin_pak = paks.generate().plaintext
    limit = raise_file_limit()
    print(f"backend {args.backend}; {os.cpu_count()} CPUs shared by the broker, the database and")
    print(f"this load generator (pid {os.getpid()}); open files limit {limit}", flush=True)
    results = Results()
    try:
        async with database(args.backend) as (broker_url, seed_url):
            engine = create_async_engine(seed_url, connect_args=_connect_args(args.backend))
            try:
                for phase in args.phases:
                    async with fresh_broker(broker_url, admin_pak) as broker:
                        print(f"phase ({phase}): broker pid {broker.pid}", flush=True)
                        await PHASES[phase](broker, engine, args, results)
            finally:
                await engine.dispose()
    except asyncio.CancelledError:
        print("interrupted; cleaning up", file=sys.stderr)
        return 130
    print()
    results.print()
    return 1 if results.missed else 0


def _connect_args(backend: str) -> dict[str, object]:
    # The broker holds the SQLite file too: wait for its write lock rather than fail.
    return {"timeout": 30} if backend == "sqlite" else {}


def main() -> int:
    first, _, rest = (__doc__ or "").partition("\n\n")
    parser = argparse.ArgumentParser(
        description=first, epilog=rest, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument(
        "--phases",
        default="abc",
        help="which phases to run, in order: any of a (ingest), b (push latency), c (idle)",
    )
    parser.add_argument("--ingest-agents", type=int, default=500, help="(a) agents sending")
    parser.add_argument("--seconds", type=float, default=10.0, help="(a) seconds of sending")
    parser.add_argument(
        "--rate",
        type=float,
        default=10_000.0,
        help="(a) frames/s offered by all agents together; 0: as fast as they can (a flood,"
        " which measures what the broker drops as much as what it stores)",
    )
    parser.add_argument("--push-agents", type=int, default=1_000, help="(b) connected agents")
    parser.add_argument("--rounds", type=int, default=5, help="(b) deployment objects posted")
    parser.add_argument("--idle-agents", type=int, default=10_000, help="(c) idle agents")
    parser.add_argument(
        "--deflate",
        action="store_true",
        help="offer permessage-deflate (the broker accepts it; brokkr's agent does not offer it)",
    )
    args = parser.parse_args()
    if set(args.phases) - set(PHASES) or not args.phases:
        parser.error("--phases takes letters among a, b and c")
    counts = [args.ingest_agents, args.push_agents, args.rounds, args.idle_agents]
    if min(counts) < 1 or args.seconds <= 0 or args.rate < 0:
        parser.error("counts and --seconds must be positive, --rate not negative")
    return uvloop.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
