"""Benchmark: authenticated ``GET /api/v1/agents/{id}`` on the real broker against a ceiling.

The broker's full stack (Observability wrapper, Litestar, PAK authentication and its identity
cache, services, SQLAlchemy Core on asyncpg) is compared with the fastest the same stack can go:
a bare Litestar app on uvicorn (uvloop, httptools) whose one route runs one indexed ``SELECT`` of
the agent row through an asyncpg pool, without auth. All on 127.0.0.1: a throwaway PostgreSQL
database, ``brokkr serve`` with a seeded admin PAK, N agents registered through the API, the
ceiling (``_harness.py`` in its own process), and raw keep-alive HTTP/1.1 clients in this
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
import statistics
import subprocess
import sys
import tempfile
import time

import msgspec
import uvloop

from _harness import (
    HOST,
    MAX_ERROR_RATE,
    TARGET_RATIO,
    WARMUP_SECONDS,
    Connection,
    Phase,
    build_request,
    free_port,
    on_scratch_database,
    run_phase,
    start_broker,
    start_ceiling,
    wait_ready,
)


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

        ceiling = start_ceiling(ceiling_port, dsn)
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


def main() -> int:
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
    return uvloop.run(on_scratch_database(run, args))


if __name__ == "__main__":
    sys.exit(main())
