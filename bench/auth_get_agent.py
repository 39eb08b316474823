"""Benchmark: authenticated ``GET /api/v1/agents/{id}`` on the real broker against a ceiling.

The broker's full stack (Observability wrapper, Litestar, PAK authentication and its identity
cache, services, SQLAlchemy Core on asyncpg) is compared with the fastest the same stack can go:
a bare Litestar app on uvicorn (uvloop, httptools) whose one route runs one indexed ``SELECT`` of
the agent row through an asyncpg pool, without auth. All on 127.0.0.1: a throwaway PostgreSQL
database, ``brokkr serve`` with a seeded admin PAK, N agents registered through the API, the
ceiling (this file, hidden ``--serve-ceiling`` mode), and raw keep-alive HTTP/1.1 clients in this
process. Each broker request carries the PAK of the agent it reads, so auth sees many keys.
Phases alternate (ceiling, broker, ...) since the machine is shared and noisy; each warms up 2 s
first. The exit status is 1 when more than 1% of broker requests were not 200.

Run:  .venv/bin/python bench/auth_get_agent.py --help
      .venv/bin/python bench/auth_get_agent.py --agents 1000 --concurrency 32 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from uuid import UUID

import asyncpg
import msgspec
import uvicorn
import uvloop
from litestar import Litestar, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException

HOST = "127.0.0.1"
ADMIN_DSN = f"postgresql://postgres@{HOST}:5432/postgres"
WARMUP_SECONDS = 2.0
MAX_ERROR_RATE = 0.01
TARGET_RATIO = 0.6
# The broker's default database.pool_size, so both servers may hold as many connections.
POOL_SIZE = 20
READY_TIMEOUT_SECONDS = 60.0

# --- the ceiling server (runs in its own process) ------------------------------------------


class AgentRow(msgspec.Struct, kw_only=True, frozen=True):
    # The same fields, in the same order, as the broker's wire.Agent, so both bodies match.
    id: UUID
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    name: str
    cluster_name: str
    last_heartbeat: datetime | None
    status: str


SELECT_AGENT = (
    "SELECT id, created_at, updated_at, deleted_at, name, cluster_name, last_heartbeat, status"
    " FROM agents WHERE id = $1 AND deleted_at IS NULL"
)


@get("/agents/{agent_id:uuid}")
async def ceiling_get_agent(agent_id: UUID, state: State) -> AgentRow:
    row = await state.pool.fetchrow(SELECT_AGENT, agent_id)
    if row is None:
        raise NotFoundException()
    return AgentRow(**dict(row))


async def _no_reset(_: asyncpg.Connection) -> None:
    # asyncpg's default reset on release is a second round trip (RESET ALL, UNLISTEN *, ...);
    # the broker's pool does none, and a ceiling must do exactly one query per request.
    return None


@asynccontextmanager
async def ceiling_pool(app: Litestar) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(
        app.state.dsn, min_size=POOL_SIZE, max_size=POOL_SIZE, reset=_no_reset
    )
    try:
        yield
    finally:
        await app.state.pool.close()


def serve_ceiling(port: int, dsn: str) -> None:
    state = State({"dsn": dsn})
    app = Litestar([ceiling_get_agent], lifespan=[ceiling_pool], state=state, logging_config=None)
    uvicorn.run(
        app,
        host=HOST,
        port=port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        server_header=False,
    )


# --- a deliberately minimal HTTP/1.1 client ------------------------------------------------


def build_request(method: str, path: str, pak: str, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", f"Authorization: Bearer {pak}"]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class Connection:
    _reader: asyncio.StreamReader
    _writer: asyncio.StreamWriter

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection(HOST, port))

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        self._writer.write(raw)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        at = head.lower().find(b"\r\ncontent-length:")
        if at < 0:
            # Litestar always sets Content-Length; anything else would need chunked parsing.
            return status, b""
        length = int(head[at + 17 : head.index(b"\r\n", at + 2)])
        return status, await self._reader.readexactly(length)

    def close(self) -> None:
        self._writer.close()


CLIENT_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)


# --- the benchmark -------------------------------------------------------------------------


@dataclass
class Phase:
    target: str
    round: int
    seconds: float
    errors: int = 0
    latencies: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def run_phase(phase: Phase, port: int, requests: list[bytes], concurrency: int) -> None:
    measure_from = time.perf_counter() + WARMUP_SECONDS
    stop = measure_from + phase.seconds

    async def worker() -> None:
        conn = await Connection.open(port)
        try:
            while True:
                started = time.perf_counter()
                try:
                    status, _ = await conn.send(random.choice(requests))
                except CLIENT_ERRORS:
                    status = 0
                    conn.close()
                    conn = await Connection.open(port)
                done = time.perf_counter()
                if done >= stop:
                    return
                if started >= measure_from:
                    if status == 200:
                        phase.latencies.append(done - started)
                    else:
                        phase.errors += 1
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


class _Created(msgspec.Struct):
    agent: dict[str, object]
    initial_pak: str


async def create_agents(port: int, admin_pak: str, count: int) -> list[tuple[str, str]]:
    todo = iter(range(count))
    agents: list[tuple[str, str]] = []

    async def worker() -> None:
        conn = await Connection.open(port)
        try:
            for i in todo:
                body = msgspec.json.encode({"name": f"bench-{i}", "cluster_name": "bench"})
                status, reply = await conn.send(
                    build_request("POST", "/api/v1/agents", admin_pak, body)
                )
                if status not in (200, 201):
                    raise RuntimeError(f"creating agent {i}: HTTP {status}: {reply[:200]!r}")
                created = msgspec.json.decode(reply, type=_Created)
                agents.append((str(created.agent["id"]), created.initial_pak))
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(8)))
    return agents


async def wait_ready(proc: subprocess.Popen[bytes], port: int, request: bytes, name: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with status {proc.returncode} before it was ready")
        try:
            conn = await Connection.open(port)
            try:
                if (await conn.send(request))[0] == 200:
                    return
            finally:
                conn.close()
        except CLIENT_ERRORS:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{name} was not ready after {READY_TIMEOUT_SECONDS:.0f} s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def admin_execute(statement: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def start_broker(port: int, dsn: str, data_dir: str, admin_pak: str) -> subprocess.Popen[bytes]:
    # Inherited BROKKR_* settings would make the run depend on the caller's shell.
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKKR")}
    env |= {
        "BROKKR__DATABASE__URL": dsn,
        "BROKKR__DATA_DIR": data_dir,
        "BROKKR__BROKER__ADMIN_PAK": admin_pak,
        "BROKKR__LOG__LEVEL": "warning",
    }
    brokkr = Path(sys.executable).parent / "brokkr"
    return subprocess.Popen([str(brokkr), "serve", "--host", HOST, "--port", str(port)], env=env)


def summarize(phases: list[Phase]) -> int:
    print("\nphase            req/s   p50 ms   p99 ms  requests  errors")
    for p in phases:
        print(
            f"{p.target:>7} r{p.round:<3} {p.rps:>9.0f} {p.percentile_ms(0.5):>8.2f}"
            f" {p.percentile_ms(0.99):>8.2f} {len(p.latencies):>9} {p.errors:>7}"
        )
    by_round = {p.round: {q.target: q for q in phases if q.round == p.round} for p in phases}
    ratios = [r["broker"].rps / r["ceiling"].rps for r in by_round.values()]
    print("per-round ratios:", ", ".join(f"{r:.2f}" for r in ratios))
    print(f"ratio broker/ceiling: {statistics.median(ratios):.2f} (target >= {TARGET_RATIO})")
    broker = [p for p in phases if p.target == "broker"]
    errors = sum(p.errors for p in broker)
    total = errors + sum(len(p.latencies) for p in broker)
    rate = errors / total if total else 1.0
    print(f"broker errors: {errors} of {total} ({100 * rate:.2f}%, limit {100 * MAX_ERROR_RATE}%)")
    return 1 if rate > MAX_ERROR_RATE else 0


async def run(args: argparse.Namespace, dsn: str, procs: list[subprocess.Popen[bytes]]) -> int:
    from brokkr.broker.domain import paks  # only the parent needs the broker's code

    admin_pak = paks.generate().plaintext
    broker_port, ceiling_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="brokkr-bench-") as data_dir:
        broker = start_broker(broker_port, dsn, data_dir, admin_pak)
        procs.append(broker)
        await wait_ready(broker, broker_port, build_request("GET", "/readyz", admin_pak), "broker")
        started = time.perf_counter()
        agents = await create_agents(broker_port, admin_pak, args.agents)
        print(f"created {len(agents)} agents in {time.perf_counter() - started:.1f} s")

        ceiling_cmd = [sys.executable, __file__, "--serve-ceiling", str(ceiling_port), dsn]
        ceiling = subprocess.Popen(ceiling_cmd)
        procs.append(ceiling)
        probe = build_request("GET", f"/agents/{agents[0][0]}", agents[0][1])
        await wait_ready(ceiling, ceiling_port, probe, "ceiling")

        print(f"broker   : pid {broker.pid} at {HOST}:{broker_port} (brokkr serve, 1 process)")
        print(f"ceiling  : pid {ceiling.pid} at {HOST}:{ceiling_port} (bare Litestar, asyncpg)")
        print(f"load gen : pid {os.getpid()} (this process, uvloop, {args.concurrency} conns)")
        print(f"postgres : {HOST}:5432/{dsn.rsplit('/', 1)[1]}")
        print(f"all share {os.cpu_count()} CPUs; warm-up {WARMUP_SECONDS:.0f} s per phase")

        targets = {
            name: (port, [build_request("GET", f"{prefix}/agents/{i}", k) for i, k in agents])
            for name, port, prefix in (
                ("ceiling", ceiling_port, ""),
                ("broker", broker_port, "/api/v1"),
            )
        }
        phases: list[Phase] = []
        for round_no in range(1, args.rounds + 1):
            for target, (port, requests) in targets.items():
                phase = Phase(target=target, round=round_no, seconds=args.duration)
                await run_phase(phase, port, requests, args.concurrency)
                print(f"  {target:>7} round {round_no}: {phase.rps:.0f} req/s")
                phases.append(phase)
    return summarize(phases)


async def bench(args: argparse.Namespace) -> int:
    db_name = f"brokkr_bench_{secrets.token_hex(4)}"
    await admin_execute(f'CREATE DATABASE "{db_name}"')
    procs: list[subprocess.Popen[bytes]] = []
    task = asyncio.current_task()
    if task is not None:
        # SIGTERM would otherwise end the process without stopping servers or dropping the DB.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await run(args, f"postgresql://postgres@{HOST}:5432/{db_name}", procs)
    except asyncio.CancelledError:
        print("interrupted; cleaning up", file=sys.stderr)
        return 130
    finally:
        for proc in reversed(procs):
            stop_process(proc)
        await admin_execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-ceiling":
        serve_ceiling(int(sys.argv[2]), sys.argv[3])
        return 0
    parser = argparse.ArgumentParser(
        description="Authenticated GET /api/v1/agents/{id}: broker req/s against a bare ceiling."
    )
    parser.add_argument("--agents", type=int, default=1000, help="agents (and PAKs) to create")
    parser.add_argument("--concurrency", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per phase")
    parser.add_argument("--rounds", type=int, default=2, help="ceiling+broker phase pairs")
    args = parser.parse_args()
    if args.agents < 1 or args.concurrency < 1 or args.duration <= 0 or args.rounds < 1:
        parser.error("--agents, --concurrency, --duration and --rounds must be positive")
    return uvloop.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
