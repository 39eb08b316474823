"""Shared pieces of the benchmarks: a throwaway PostgreSQL database, ``brokkr serve`` and the bare
Litestar+asyncpg "ceiling" server as subprocesses, and a deliberately minimal keep-alive HTTP/1.1
load generator. Not a benchmark itself; ``python bench/_harness.py --serve-ceiling PORT DSN
[WORKERS POOL_SIZE]`` is how the ceiling subprocess is started.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from uuid import UUID

import asyncpg
import msgspec
import uvicorn
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
    size = app.state.pool_size
    app.state.pool = await asyncpg.create_pool(
        app.state.dsn, min_size=size, max_size=size, reset=_no_reset
    )
    try:
        yield
    finally:
        await app.state.pool.close()


def _ceiling_config(port: int, dsn: str, pool_size: int) -> uvicorn.Config:
    state = State({"dsn": dsn, "pool_size": pool_size})
    app = Litestar([ceiling_get_agent], lifespan=[ceiling_pool], state=state, logging_config=None)
    return uvicorn.Config(
        app,
        host=HOST,
        port=port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        server_header=False,
    )


def serve_ceiling(port: int, dsn: str, workers: int = 1, pool_size: int = POOL_SIZE) -> None:
    """Serve until SIGTERM. ``workers`` > 1 is served the way ``brokkr serve --workers N`` is:
    this process binds the socket once and N spawned processes, each with its own pool, accept
    on it (uvicorn's own ``workers`` would add its reloader-style supervisor and an import
    string, and differ from the broker in what it costs)."""
    config = _ceiling_config(port, dsn, pool_size)
    if workers == 1:
        uvicorn.Server(config).run()
        return
    sock = config.bind_socket()
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(target=_ceiling_worker, args=(port, dsn, pool_size, sock))
        for _ in range(workers)
    ]
    for child in children:
        child.start()

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.pid is not None and child.is_alive():
                os.kill(child.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    for child in children:
        child.join()
    sock.close()


def _ceiling_worker(port: int, dsn: str, pool_size: int, sock: socket.socket) -> None:
    # Ctrl-C reaches the whole process group: the parent alone decides when workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    uvicorn.Server(_ceiling_config(port, dsn, pool_size)).run(sockets=[sock])


# --- a deliberately minimal HTTP/1.1 client ------------------------------------------------


def build_request(
    method: str, path: str, pak: str, body: bytes = b"", headers: tuple[str, ...] = ()
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", f"Authorization: Bearer {pak}"]
    lines += headers
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def header(head: bytes, name: bytes) -> str | None:
    """One response header's value from a raw head (``name`` lower case), or None."""
    at = head.lower().find(b"\r\n" + name + b":")
    if at < 0:
        return None
    return head[at + len(name) + 3 : head.index(b"\r\n", at + 2)].strip().decode()


@dataclass
class Connection:
    _reader: asyncio.StreamReader
    _writer: asyncio.StreamWriter

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection(HOST, port))

    async def exchange(self, raw: bytes) -> tuple[int, bytes, bytes]:
        """Status, raw head and body of one request on this connection."""
        self._writer.write(raw)
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = header(head, b"content-length")
        if length is not None:
            return status, head, await self._reader.readexactly(int(length))
        if (header(head, b"transfer-encoding") or "").lower() == "chunked":
            # Target state is streamed (one object per chunk).
            return status, head, await self._read_chunks()
        return status, head, b""

    async def _read_chunks(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        status, _, body = await self.exchange(raw)
        return status, body

    def close(self) -> None:
        self._writer.close()


CLIENT_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)


# --- closed-loop load ----------------------------------------------------------------------


@dataclass
class Phase:
    target: str
    round: int
    seconds: float
    concurrency: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile_ms(self, q: float) -> float:
        return percentile_ms(self.latencies, q, empty=0.0)


def percentile_ms(seconds: list[float], q: float, *, empty: float = float("nan")) -> float:
    """The ``q`` quantile (0..1) of durations in seconds, in milliseconds; ``empty`` if none."""
    ordered = sorted(seconds)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else empty


async def run_phase(
    phase: Phase, port: int, requests: list[bytes], concurrency: int, ok: int = 200
) -> None:
    """``concurrency`` keep-alive connections each sending random ``requests`` back to back;
    after the warm-up, a reply with status ``ok`` is a latency sample, anything else an error."""
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
                    if status == ok:
                        phase.latencies.append(done - started)
                    else:
                        phase.errors += 1
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


# --- processes and the database ------------------------------------------------------------


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


@asynccontextmanager
async def scratch_database() -> AsyncIterator[str]:
    """A fresh database's DSN, dropped on exit whatever happened."""
    name = f"brokkr_bench_{secrets.token_hex(4)}"
    await admin_execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@{HOST}:5432/{name}"
    finally:
        await admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def cancel_on_sigterm() -> None:
    """SIGTERM would otherwise end the process without stopping servers or dropping the DB;
    cancelling the main task runs the ``finally`` blocks (SIGINT already does so)."""
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


Run = Callable[[argparse.Namespace, str, list[subprocess.Popen[bytes]]], Awaitable[int]]


async def on_scratch_database(run: Run, args: argparse.Namespace) -> int:
    """``run(args, dsn, procs)`` on a throwaway database; the servers it adds to ``procs`` are
    stopped and the database dropped however it ends (SIGTERM and Ctrl-C included)."""
    cancel_on_sigterm()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        async with scratch_database() as dsn:
            try:
                return await run(args, dsn, procs)
            finally:
                for proc in reversed(procs):
                    stop_process(proc)
    except asyncio.CancelledError:
        print("interrupted; cleaning up", file=sys.stderr)
        return 130


def start_broker(
    port: int,
    dsn: str,
    data_dir: str,
    admin_pak: str,
    workers: int = 1,
    settings: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """``brokkr serve --workers N``: one process by default (the default of ``brokkr serve``
    on PostgreSQL is one per core), so a bench's figures and its ``pid`` are one process's.
    ``settings``: more ``BROKKR_*`` environment variables."""
    # Inherited BROKKR_* settings would make the run depend on the caller's shell.
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROKKR")}
    env |= {
        "BROKKR__DATABASE__URL": dsn,
        "BROKKR__DATA_DIR": data_dir,
        "BROKKR__BROKER__ADMIN_PAK": admin_pak,
        "BROKKR__LOG__LEVEL": "warning",
    }
    env |= settings or {}
    brokkr = Path(sys.executable).parent / "brokkr"
    command = [str(brokkr), "serve", "--host", HOST, "--port", str(port), "--workers", str(workers)]
    return subprocess.Popen(command, env=env)


@dataclass(frozen=True)
class RunningBroker:
    port: int
    pid: int
    admin_pak: str

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


@asynccontextmanager
async def running_broker(database_url: str, *, name: str) -> AsyncIterator[RunningBroker]:
    """``brokkr serve`` on a free port with a new admin PAK and a throwaway data dir (which holds
    its SQLite database when ``database_url`` is empty), ready (``/readyz``); stopped on exit."""
    from brokkr.broker.domain import paks  # not in the ceiling subprocess, which runs this file

    admin_pak = paks.generate().plaintext
    port = free_port()
    with tempfile.TemporaryDirectory(prefix=f"brokkr-{name}-") as data_dir:
        proc = start_broker(port, database_url, data_dir, admin_pak)
        try:
            await wait_ready(proc, port, build_request("GET", "/readyz", admin_pak), "broker")
            yield RunningBroker(port=port, pid=proc.pid, admin_pak=admin_pak)
        finally:
            stop_process(proc)


def start_ceiling(
    port: int, dsn: str, workers: int = 1, pool_size: int = POOL_SIZE
) -> subprocess.Popen[bytes]:
    command = [sys.executable, __file__, "--serve-ceiling", str(port), dsn]
    return subprocess.Popen([*command, str(workers), str(pool_size)])


if __name__ == "__main__":
    if len(sys.argv) not in (4, 6) or sys.argv[1] != "--serve-ceiling":
        sys.exit("usage: _harness.py --serve-ceiling PORT DSN [WORKERS POOL_SIZE]")
    serve_ceiling(int(sys.argv[2]), sys.argv[3], *(int(arg) for arg in sys.argv[4:]))
