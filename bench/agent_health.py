"""Benchmark: the agent's health check by polling, against what watching would cost.

N Deployments (``--workloads``, default ``50,200``), each with one ReplicaSet and 3 ready pods,
in one namespace of the fake kube-apiserver of ``tests/fakes`` (uvicorn in a thread of this
process, real HTTP on 127.0.0.1). One deployment object per Deployment, as ``Runtime.running()``
would list them.

- ``poll``: one pass of ``brokkr.agent.health_reports`` over all of them (``HealthChecker``:
  GET the Deployment, LIST its ReplicaSets and its pods by selector, assess), at the task's
  concurrency: wall time (median of ``--rounds``) and API requests per pass.
- ``baseline``: as many ``GET /version`` at the same concurrency: the fake's (and client's)
  per-request overhead, which the poll pass is compared with.
- ``watch``: what a watch-based checker pays on start and on every reconnect or ``410 Gone``
  (a full LIST of the namespace's pods and ReplicaSets, then two WATCH streams held open), and
  how many pod objects it must then keep in memory; between changes it sends no requests.

Prints one line per size and phase. No PostgreSQL and no broker. Takes a few seconds.

Run:  .venv/bin/python bench/agent_health.py --help
      .venv/bin/python bench/agent_health.py --workloads 50,200 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "bench"
PODS_PER_WORKLOAD = 3


def seed(fake: Any, count: int) -> list[Any]:
    """``count`` Deployments with a ReplicaSet and ready pods each; their ``ObjectRef``s."""
    from tests.agent import controllers as c

    from brokkr.agent.manifests import ObjectRef

    fake.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    play = c.Controllers(fake)
    refs = []
    for index in range(count):
        name = f"web-{index:04d}"
        deployment = c.workload("Deployment", name, namespace=NAMESPACE, replicas=3)
        fake.create(deployment)
        fake.set_status("Deployment", name, c.available(PODS_PER_WORKLOAD), NAMESPACE)
        replicaset = play.child(deployment, "ReplicaSet", f"{name}-1")
        play.pods(replicaset, PODS_PER_WORKLOAD, c.ready_pod())
        refs.append(
            ObjectRef(api_version="apps/v1", kind="Deployment", namespace=NAMESPACE, name=name)
        )
    return refs


async def poll_pass(checker: Any, refs: list[Any]) -> float:
    from brokkr.agent.health_reports import HealthReports

    task = HealthReports(cast("Any", None), checker, resend_after=60.0)
    running = {uuid.uuid4(): (ref,) for ref in refs}
    started = time.perf_counter()
    assessed = await task.assess(running)
    elapsed = time.perf_counter() - started
    unhealthy = [a for a, _ in assessed.values() if a.status != "healthy"]
    if unhealthy:
        raise RuntimeError(f"{len(unhealthy)} unexpected verdicts, e.g. {unhealthy[0]}")
    return elapsed


async def baseline(client: Any, requests: int) -> float:
    """The same number of trivial requests (``GET /version``) at the same concurrency: what
    the fake's per-request overhead alone costs."""
    from brokkr.agent.health_reports import CONCURRENT_CHECKS

    slots = asyncio.Semaphore(CONCURRENT_CHECKS)

    async def one() -> None:
        async with slots:
            await client.get_json("/version")

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(requests)))
    return time.perf_counter() - started


async def relist(client: Any) -> tuple[float, int]:
    """The LISTs a watcher makes before (re)starting its watches; seconds and pods held."""
    started = time.perf_counter()
    pods = await client.get_json(f"/api/v1/namespaces/{NAMESPACE}/pods")
    await client.get_json(f"/apis/apps/v1/namespaces/{NAMESPACE}/replicasets")
    return time.perf_counter() - started, len(pods["items"])


async def bench(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT))
    from tests.fakes.kube_apiserver import FakeKubeApiServer

    from brokkr.agent import kube
    from brokkr.agent.settings import AgentSection, Settings

    sizes = [int(size) for size in args.workloads.split(",")]
    with tempfile.TemporaryDirectory(prefix="brokkr-bench-") as tmp:
        async with FakeKubeApiServer() as fake:
            kubeconfig = fake.write_kubeconfig(Path(tmp) / "kubeconfig")
            section = AgentSection(
                pak="b", agent_name="b", cluster_name="b", kubeconfig_path=str(kubeconfig)
            )
            for size in sizes:
                fake.reset()
                refs = seed(fake, size)
                cluster = await kube.connect(Settings(agent=section))
                try:
                    await cluster.ping()  # warm the connection
                    checker = kube.HealthChecker(cluster.client)
                    times, requests = [], 0
                    for _ in range(args.rounds):
                        fake.clear_requests()
                        times.append(await poll_pass(checker, refs))
                        requests = len(fake.requests)
                    relists = [await relist(cluster.client) for _ in range(args.rounds)]
                    trivial = statistics.median(
                        [await baseline(cluster.client, requests) for _ in range(args.rounds)]
                    )
                except RuntimeError as exc:
                    print(str(exc), file=sys.stderr)
                    return 1
                finally:
                    await cluster.aclose()
                pods = size * PODS_PER_WORKLOAD
                poll = statistics.median(times)
                print(
                    f"{size:>4} workloads, {pods} pods: poll pass {poll * 1000:.0f} ms, "
                    f"{requests} requests ({requests / size:.1f} per workload); "
                    f"{requests} x GET /version alone {trivial * 1000:.0f} ms"
                )
                relist_s = statistics.median(seconds for seconds, _ in relists)
                print(
                    f"{'':>4}            watch: relist {relist_s * 1000:.0f} ms, 2 requests, "
                    f"2 open streams per namespace, {relists[0][1]} pods cached; "
                    "0 requests between changes"
                )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description="The agent's polling health check against the cost of watches."
    )
    parser.add_argument(
        "--workloads", default="50,200", help="comma-separated Deployment counts (3 pods each)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="passes per size (median)")
    return asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
