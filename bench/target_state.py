"""Benchmark: agents polling ``GET /api/v1/agents/{id}/target-state`` at 10k agents x 1k stacks.

A throwaway PostgreSQL database; ``brokkr serve`` started once on it (migrations, seeded admin
PAK); then agents, stacks, labels, annotations, explicit targets and one ~2 KB multi-document
deployment object per stack are seeded straight through asyncpg (COPY) and ANALYZEd. Before any
load, EXPLAIN (ANALYZE, BUFFERS) of the target-state SQL for one agent, with a custom and a
generic plan (the broker's prepared statement may switch to the generic one).

Phases on 127.0.0.1, each measured ``--duration`` s after a 2 s warm-up, at each concurrency,
alternating: the bare Litestar+asyncpg ceiling (one indexed SELECT, see ``_harness.py``); 304
polls (an agent's own PAK and ``If-None-Match`` = its current ETag, fetched once beforehand for
``--sample`` agents, checking every body's object count against the seeded associations); full
200 polls (``?mode=full``, no ETag). Last, an open-loop run of full polls at ``--rate`` per
second: latency counts from the scheduled send time, so a slow server cannot hide its queue.
Targets: 304 req/s >= 0.6 x ceiling; p99 < 50 ms at 300 full polls/s. The exit status is 1 when
more than 1% of broker requests failed.

Run:  .venv/bin/python bench/target_state.py --help
      .venv/bin/python bench/target_state.py --agents 3000 --stacks 300 --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import msgspec
import uvloop

from _harness import (
    CLIENT_ERRORS,
    MAX_ERROR_RATE,
    TARGET_RATIO,
    WARMUP_SECONDS,
    Connection,
    Phase,
    build_request,
    free_port,
    header,
    on_scratch_database,
    run_phase,
    start_broker,
    start_ceiling,
    wait_ready,
)

LABELS_PER_AGENT = 10
REGIONS = 20  # every agent has region=rN and a tier; 10% of stacks carry a region
TARGET_P99_MS = 50.0
REPLY_TIMEOUT = 30.0  # open loop: seconds a reply may take before it counts as an error
SEED = 20240601
BIG_TABLES = {"agents", "stacks", "deployment_objects", "agent_targets", "agent_labels"} | {
    "stack_labels", "agent_annotations", "stack_annotations"
}  # fmt: skip
YAML = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}-config
  namespace: {name}
  labels: {{app: {name}, managed-by: brokkr, revision: "{rev}"}}
data:
  LOG_LEVEL: info
  FEATURE_FLAGS: "alpha,beta,gamma,delta"
  settings.yaml: |
    server: {{port: 8080, read_timeout: 30s, write_timeout: 30s, idle_timeout: 120s}}
    cache: {{ttl: 300, size: 10000, eviction: lru}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {name}
  labels: {{app: {name}, managed-by: brokkr}}
spec:
  replicas: 3
  strategy: {{type: RollingUpdate, rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}}}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
      annotations: {{prometheus.io/scrape: "true", prometheus.io/port: "9090"}}
    spec:
      serviceAccountName: {name}
      securityContext: {{runAsNonRoot: true, runAsUser: 10001, fsGroup: 10001}}
      containers:
        - name: app
          image: registry.example.com/team/{name}:1.{rev}.0
          ports: [{{containerPort: 8080, name: http}}, {{containerPort: 9090, name: metrics}}]
          envFrom: [{{configMapRef: {{name: {name}-config}}}}]
          env:
            - {{name: POD_NAME, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
          resources:
            requests: {{cpu: 100m, memory: 128Mi}}
            limits: {{cpu: 500m, memory: 512Mi}}
          readinessProbe: {{httpGet: {{path: /healthz, port: http}}, periodSeconds: 10}}
          livenessProbe: {{httpGet: {{path: /livez, port: http}}, initialDelaySeconds: 15}}
          volumeMounts: [{{name: config, mountPath: /etc/{name}, readOnly: true}}]
      volumes: [{{name: config, configMap: {{name: {name}-config}}}}]
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {name}
  labels: {{app: {name}, managed-by: brokkr}}
spec:
  type: ClusterIP
  selector: {{app: {name}}}
  ports:
    - {{name: http, port: 80, targetPort: http, protocol: TCP}}
    - {{name: metrics, port: 9090, targetPort: metrics, protocol: TCP}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {{name: {name}, namespace: {name}}}
spec: {{minAvailable: 2, selector: {{matchLabels: {{app: {name}}}}}}}
"""


@dataclass
class Agent:
    id: UUID
    pak: str
    associated: int  # stacks it reaches by target, label or annotation (all seeded live)


async def seed(dsn: str, args: argparse.Namespace) -> list[Agent]:
    from brokkr.broker.domain import paks  # only the parent needs the broker's code

    rng = random.Random(SEED)
    now = datetime.now(UTC)
    labels = [f"label-{i:03d}" for i in range(args.label_pool)]
    stacks = [uuid4() for _ in range(args.stacks)]
    by_label: dict[str, set[UUID]] = defaultdict(set)
    by_region: dict[str, set[UUID]] = defaultdict(set)
    rows: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    generator = uuid4()
    rows["generators"].append((generator, now, now, "bench-generator", True))
    for n, stack in enumerate(stacks):
        rows["stacks"].append((stack, now, now, f"stack-{n:05d}", generator))
        for label in rng.sample(labels, rng.randint(1, 3)):
            by_label[label].add(stack)
            rows["stack_labels"].append((uuid4(), stack, label))
        if rng.random() < 0.1:
            region = f"r{rng.randrange(REGIONS)}"
            by_region[region].add(stack)
            rows["stack_annotations"].append((uuid4(), stack, "region", region))
        yaml = YAML.format(name=f"stack-{n:05d}", rev=n)
        checksum = hashlib.sha256(yaml.encode()).hexdigest()
        rows["deployment_objects"].append((uuid4(), now, now, n + 1, stack, yaml, checksum, now))
    agents: list[Agent] = []
    for n in range(args.agents):
        pak, agent = paks.generate(), uuid4()
        name = f"agent-{n:05d}"
        rows["agents"].append((agent, now, now, name, "bench", "ACTIVE", pak.hash, pak.key_id))
        reach = set(rng.sample(stacks, min(len(stacks), rng.randint(1, 3))))
        rows["agent_targets"] += [(uuid4(), agent, stack) for stack in reach]
        for label in rng.sample(labels, min(len(labels), LABELS_PER_AGENT)):
            reach |= by_label[label]
            rows["agent_labels"].append((uuid4(), agent, label))
        region = f"r{rng.randrange(REGIONS)}"
        reach |= by_region[region]
        rows["agent_annotations"].append((uuid4(), agent, "region", region))
        rows["agent_annotations"].append((uuid4(), agent, "tier", rng.choice(("a", "b", "c"))))
        agents.append(Agent(agent, pak.plaintext, len(reach)))
    columns = {
        "generators": ("id", "created_at", "updated_at", "name", "is_active"),
        "stacks": ("id", "created_at", "updated_at", "name", "generator_id"),
        "stack_labels": ("id", "stack_id", "label"),
        "stack_annotations": ("id", "stack_id", "key", "value"),
        "deployment_objects": ("id", "created_at", "updated_at", "sequence_id", "stack_id")
        + ("yaml_content", "yaml_checksum", "submitted_at"),
        "agents": ("id", "created_at", "updated_at", "name", "cluster_name", "status")
        + ("pak_hash", "key_id"),
        "agent_targets": ("id", "agent_id", "stack_id"),
        "agent_labels": ("id", "agent_id", "label"),
        "agent_annotations": ("id", "agent_id", "key", "value"),
    }
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            for table, names in columns.items():
                await conn.copy_records_to_table(table, records=rows[table], columns=names)
            await conn.execute(
                "UPDATE sequence_counters SET value = $1 WHERE name = 'deployment_objects'",
                len(stacks),
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return agents


def plan_lines(node: dict[str, Any], depth: int = 0) -> list[str]:
    where = node.get("Relation Name") or node.get("Index Name") or ""
    if node.get("Index Name") and node.get("Relation Name"):
        where = f"{node['Relation Name']} using {node['Index Name']}"
    line = (
        f"{'  ' * depth}{node['Node Type']} {where}  rows={node.get('Actual Rows')}"
        f" loops={node.get('Actual Loops')} time={node.get('Actual Total Time')} ms"
    )
    return [line] + [line for sub in node.get("Plans", []) for line in plan_lines(sub, depth + 1)]


async def explain(dsn: str, agent: Agent, *, verbose: bool) -> None:
    from brokkr.broker.db import target_state

    conn = await asyncpg.connect(dsn)
    try:
        reads = {"incremental": target_state._DIGEST[False], "full": target_state._DIGEST[True]}
        for name, read in reads.items():
            values = read._compiled.construct_params({"agent_id": agent.id})
            params = [values[key] for key in read._names]
            for plan_mode in ("force_custom_plan", "force_generic_plan"):
                await conn.execute(f"SET plan_cache_mode = {plan_mode}")
                query = f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {read._sql}"
                statement = await conn.prepare(query)
                await statement.fetchval(*params)  # warm the buffer cache
                result = msgspec.json.decode((await statement.fetchval(*params)).encode())[0]
                lines = plan_lines(result["Plan"])
                seq = sorted({ln.split()[2] for ln in lines if ln.lstrip().startswith("Seq Scan")})
                big = [table for table in seq if table in BIG_TABLES]
                print(
                    f"EXPLAIN {name:<11} {plan_mode.split('_')[1]:>7} plan:"
                    f" planning {result['Planning Time']:.2f} ms,"
                    f" execution {result['Execution Time']:.2f} ms,"
                    f" Seq Scan on {', '.join(seq) or 'nothing'}"
                    f" (big tables: {', '.join(big) or 'none'})"
                )
                if verbose:
                    print("\n".join(f"    {line}" for line in lines))
    finally:
        await conn.close()


async def fetch_etags(port: int, sample: list[Agent]) -> list[str]:
    """Each sampled agent's current (incremental) ETag; checks each body against the seed."""
    etags: dict[UUID, str] = {}
    todo = iter(sample)

    async def worker() -> None:
        conn = await Connection.open(port)
        try:
            for agent in todo:
                path = f"/api/v1/agents/{agent.id}/target-state"
                status, head, body = await conn.exchange(build_request("GET", path, agent.pak))
                etag = header(head, b"etag")
                count = len(msgspec.json.decode(body)) if status == 200 else -1
                if etag is None or count != agent.associated:
                    raise RuntimeError(
                        f"agent {agent.id}: HTTP {status}, {count} objects"
                        f" (expected {agent.associated}), ETag {etag}"
                    )
                etags[agent.id] = etag
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(8)))
    return [etags[agent.id] for agent in sample]


async def run_open_loop(
    phase: Phase, port: int, requests: list[bytes], rate: float
) -> tuple[int, int]:
    """Send at a fixed rate whatever the replies; returns (connections used, replies in window)."""
    idle: list[Connection] = []
    opened = in_window = 0
    start = time.perf_counter()
    measure_from = start + WARMUP_SECONDS
    stop = measure_from + phase.seconds

    async def one(due: float) -> None:
        nonlocal opened, in_window
        conn = idle.pop() if idle else None
        try:
            if conn is None:
                opened += 1
                conn = await Connection.open(port)
            # A reply later than this is an error (TimeoutError is an OSError).
            status, _ = await asyncio.wait_for(conn.send(random.choice(requests)), REPLY_TIMEOUT)
        except CLIENT_ERRORS:
            status = 0
            if conn is not None:
                conn.close()
                conn = None
        finished = time.perf_counter()
        if conn is not None:
            idle.append(conn)
        if due >= measure_from:
            in_window += measure_from <= finished < stop
            if status == 200:
                phase.latencies.append(finished - due)
            else:
                phase.errors += 1

    tasks: list[asyncio.Task[None]] = []
    while (due := start + len(tasks) / rate) < stop:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    for conn in idle:
        conn.close()
    return opened, in_window


def summarize(phases: list[Phase], open_loop: Phase, rate: float, achieved: float) -> int:
    print("\nphase    conc round    req/s   p50 ms   p99 ms  requests  errors")
    for p in phases:
        print(
            f"{p.target:>7} {p.concurrency:>5} {p.round:>5} {p.rps:>8.0f}"
            f" {p.percentile_ms(0.5):>8.2f} {p.percentile_ms(0.99):>8.2f}"
            f" {len(p.latencies):>9} {p.errors:>7}"
        )
    for conc in sorted({p.concurrency for p in phases}):
        rps = {
            target: statistics.median(
                p.rps for p in phases if p.concurrency == conc and p.target == target
            )
            for target in ("ceiling", "304", "full")
        }
        print(
            f"concurrency {conc:>3}: 304/ceiling {rps['304'] / rps['ceiling']:.2f}"
            f" (target >= {TARGET_RATIO}), full/ceiling {rps['full'] / rps['ceiling']:.2f}"
        )
    p99 = open_loop.percentile_ms(0.99)
    print(
        f"open loop, full polls at {rate:.0f}/s: achieved {achieved:.0f}/s,"
        f" p50 {open_loop.percentile_ms(0.5):.2f} ms, p99 {p99:.2f} ms,"
        f" errors {open_loop.errors} (target p99 < {TARGET_P99_MS:.0f} ms:"
        f" {'met' if p99 < TARGET_P99_MS and achieved >= 0.98 * rate else 'MISSED'})"
    )
    broker = [p for p in [*phases, open_loop] if p.target != "ceiling"]
    errors = sum(p.errors for p in broker)
    total = errors + sum(len(p.latencies) for p in broker)
    error_rate = errors / total if total else 1.0
    print(f"broker errors: {errors} of {total} ({100 * error_rate:.2f}%)")
    return 1 if error_rate > MAX_ERROR_RATE else 0


async def run(args: argparse.Namespace, dsn: str, procs: list[subprocess.Popen[bytes]]) -> int:
    from brokkr.broker.domain import paks

    admin_pak = paks.generate().plaintext
    broker_port, ceiling_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="brokkr-bench-") as data_dir:
        broker = start_broker(broker_port, dsn, data_dir, admin_pak)
        procs.append(broker)
        await wait_ready(broker, broker_port, build_request("GET", "/readyz", admin_pak), "broker")
        started = time.perf_counter()
        agents = await seed(dsn, args)
        associated = [agent.associated for agent in agents]
        print(
            f"seeded {len(agents)} agents, {args.stacks} stacks in"
            f" {time.perf_counter() - started:.1f} s; associated stacks per agent: avg"
            f" {statistics.mean(associated):.1f}, min {min(associated)}, max {max(associated)}"
        )
        await explain(dsn, agents[0], verbose=args.plans)

        ceiling = start_ceiling(ceiling_port, dsn)
        procs.append(ceiling)
        probe = build_request("GET", f"/agents/{agents[0].id}", agents[0].pak)
        await wait_ready(ceiling, ceiling_port, probe, "ceiling")
        sample = random.Random(SEED).sample(agents, min(args.sample, len(agents)))
        started = time.perf_counter()
        etags = await fetch_etags(broker_port, sample)
        print(f"fetched {len(etags)} ETags in {time.perf_counter() - started:.1f} s (bodies ok)")
        print(f"broker pid {broker.pid}, ceiling pid {ceiling.pid}, load gen pid {os.getpid()};")
        print(f"all share {os.cpu_count()} CPUs; warm-up {WARMUP_SECONDS:.0f} s per phase")

        state, row = "/api/v1/agents/{}/target-state", "/agents/{}"
        targets = {
            "ceiling": (ceiling_port, [
                build_request("GET", row.format(a.id), a.pak) for a in sample
            ]),
            "304": (broker_port, [
                build_request("GET", state.format(a.id), a.pak, headers=(f"If-None-Match: {e}",))
                for a, e in zip(sample, etags, strict=True)
            ]),
            "full": (broker_port, [
                build_request("GET", state.format(a.id) + "?mode=full", a.pak) for a in sample
            ]),
        }  # fmt: skip
        phases: list[Phase] = []
        for conc in args.concurrency:
            for round_no in range(1, args.rounds + 1):
                for target, (port, requests) in targets.items():
                    phase = Phase(target, round_no, args.duration, concurrency=conc)
                    await run_phase(phase, port, requests, conc, ok=304 if target == "304" else 200)
                    print(f"  {target:>7} c{conc} r{round_no}: {phase.rps:.0f} req/s")
                    phases.append(phase)
        open_loop = Phase("open", 1, args.duration)
        used, in_window = await run_open_loop(open_loop, broker_port, targets["full"][1], args.rate)
        print(f"  open loop: {used} connections")
    return summarize(phases, open_loop, args.rate, in_window / args.duration)


def main() -> int:
    parser = argparse.ArgumentParser(description="Target-state polls at scale against a ceiling.")
    parser.add_argument("--agents", type=int, default=10_000, help="agents (and PAKs) to seed")
    parser.add_argument("--stacks", type=int, default=1_000, help="stacks (one object each)")
    parser.add_argument("--label-pool", type=int, default=200, help="distinct labels")
    parser.add_argument("--sample", type=int, default=2_000, help="agents the load polls as")
    parser.add_argument(
        "--concurrency",
        type=lambda text: [int(c) for c in text.split(",")],
        default=[8, 32, 64],
        help="comma-separated keep-alive connection counts (default 8,32,64)",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per phase")
    parser.add_argument("--rounds", type=int, default=1, help="phase triples per concurrency")
    parser.add_argument("--rate", type=float, default=300.0, help="open-loop full polls/s")
    parser.add_argument("--plans", action="store_true", help="print the EXPLAIN plan trees")
    args = parser.parse_args()
    numbers = [args.agents, args.stacks, args.label_pool, args.sample, *args.concurrency]
    if min(numbers) < 1 or args.duration <= 0 or args.rounds < 1 or args.rate <= 0:
        parser.error("counts, --duration, --rounds and --rate must be positive")
    return uvloop.run(on_scratch_database(run, args))


if __name__ == "__main__":
    sys.exit(main())
