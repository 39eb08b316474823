"""Benchmark: the agent's reconcile of one big stack against a bare server-side-apply loop.

One deployment object holding a Namespace and N ConfigMaps (``--objects``, default 500) goes
through ``brokkr.agent.reconcile`` (parse, ownership stamping, ordering, discovery, forced SSA
per object, inventory read, prune planning, inventory write) against the fake kube-apiserver of
``tests/fakes`` (uvicorn in a thread of this process, real HTTP on 127.0.0.1). Side by side, in
the same run and against the same fake, a bare loop sends the same server-side-apply PATCHes
with lightkube and nothing else. Each phase starts on an empty cluster (``create``) and is then
repeated on the converged one (``reapply``, what the periodic full reconcile does); rounds
alternate bare and agent. Prints objects/s per phase, ``ratio agent/bare`` (time; target <= 1.5)
and the process peak RSS (``resource.getrusage``; it includes the fake server and its store).
No PostgreSQL and no broker: the reconcile is given an agent id, as the runtime loop gives it.
The exit status is 1 when an agent reconcile fails.

Run:  .venv/bin/python bench/agent_apply.py --help
      .venv/bin/python bench/agent_apply.py --objects 500 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "bench"
FIELD_MANAGER = "bench-bare"
TARGET_RATIO = 1.5
PHASES = ("create", "reapply")


def documents(count: int) -> list[dict[str, Any]]:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    configmaps = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"cm-{i:04d}", "namespace": NAMESPACE, "labels": {"app": "b"}},
            "data": {"index": str(i), "payload": "x" * 200},
        }
        for i in range(count)
    ]
    return [namespace, *configmaps]


def deployment_object(content: str) -> Any:
    from brokkr.common import wire

    now = datetime.now(UTC)
    return wire.DeploymentObject(
        id=uuid.uuid4(),
        created_at=now,
        updated_at=now,
        deleted_at=None,
        sequence_id=1,
        stack_id=uuid.uuid4(),
        yaml_content=content,
        yaml_checksum=hashlib.sha256(content.encode()).hexdigest(),
        submitted_at=now,
        is_deletion_marker=False,
    )


async def timed(run: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await run()
    return time.perf_counter() - started


async def bare_round(kubeconfig: Path, docs: list[dict[str, Any]]) -> dict[str, float]:
    """The same SSA PATCHes with lightkube, nothing else (connection set up before timing)."""
    from lightkube import AsyncClient, KubeConfig
    from lightkube.resources.core_v1 import ConfigMap, Namespace
    from lightkube.types import PatchType

    config = KubeConfig.from_file(kubeconfig)
    client = AsyncClient(config, field_manager=FIELD_MANAGER)
    try:
        await client.get(Namespace, "default")  # warm the connection

        async def apply_all() -> None:
            for doc in docs:
                meta = doc["metadata"]
                if doc["kind"] == "Namespace":
                    await client.patch(
                        Namespace,
                        meta["name"],
                        doc,
                        patch_type=PatchType.APPLY,
                        field_manager=FIELD_MANAGER,
                        force=True,
                    )
                    continue
                await client.patch(
                    ConfigMap,
                    meta["name"],
                    doc,
                    namespace=meta["namespace"],
                    patch_type=PatchType.APPLY,
                    field_manager=FIELD_MANAGER,
                    force=True,
                )

        return {phase: await timed(apply_all) for phase in PHASES}
    finally:
        await client.close()


async def agent_round(kubeconfig: Path, content: str) -> dict[str, float]:
    """``brokkr.agent.reconcile`` of one deployment object (connection set up before timing)."""
    from brokkr.agent import kube, reconcile
    from brokkr.agent.settings import AgentSection, Settings

    settings = Settings(
        agent=AgentSection(
            pak="bench", agent_name="bench", cluster_name="bench", kubeconfig_path=str(kubeconfig)
        )
    )
    cluster = await kube.connect(settings)
    try:
        await cluster.ping()  # warm the connection
        reconciler, agent_id = reconcile.Reconciler(settings, cluster), uuid.uuid4()
        obj = deployment_object(content)
        failures: list[str] = []

        async def apply_all() -> None:
            for outcome in await reconciler([obj], agent_id=agent_id):
                if not outcome.success:
                    failures.append(outcome.message or "failed")

        times = {phase: await timed(apply_all) for phase in PHASES}
        if failures:
            raise RuntimeError(f"agent reconcile failed: {failures[0]}")
        return times
    finally:
        await cluster.aclose()


async def bench(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT))
    from tests.fakes.kube_apiserver import FakeKubeApiServer

    docs = documents(args.objects)
    content = yaml.safe_dump_all(docs, sort_keys=False)
    count = len(docs)
    results: dict[str, dict[str, list[float]]] = {
        side: {phase: [] for phase in PHASES} for side in ("bare", "agent")
    }
    with tempfile.TemporaryDirectory(prefix="brokkr-bench-") as tmp:
        async with FakeKubeApiServer() as fake:
            kubeconfig = fake.write_kubeconfig(Path(tmp) / "kubeconfig")
            print(f"{count} objects (1 Namespace + {args.objects} ConfigMaps), fake at {fake.url}")
            for round_no in range(1, args.rounds + 1):
                for side in ("bare", "agent"):
                    fake.reset()
                    try:
                        if side == "bare":
                            times = await bare_round(kubeconfig, docs)
                        else:
                            times = await agent_round(kubeconfig, content)
                    except RuntimeError as exc:
                        print(str(exc), file=sys.stderr)
                        return 1
                    line = ", ".join(f"{p} {count / t:.0f} obj/s" for p, t in times.items())
                    print(f"  {side:>5} round {round_no}: {line}")
                    for phase, seconds in times.items():
                        results[side][phase].append(seconds)
    print()
    worst = 0.0
    for phase in PHASES:
        bare = statistics.median(results["bare"][phase])
        agent = statistics.median(results["agent"][phase])
        ratio = agent / bare
        worst = max(worst, ratio)
        print(
            f"{phase:>8}: bare {count / bare:.0f} obj/s, agent {count / agent:.0f} obj/s, "
            f"ratio agent/bare {ratio:.2f} (target <= {TARGET_RATIO})"
        )
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS {peak_kib / 1024:.0f} MiB (this process, the fake server included)")
    verdict = "met" if worst <= TARGET_RATIO else "NOT met"
    print(f"target {verdict}: worst ratio {worst:.2f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Agent reconcile of a big stack against a bare lightkube SSA loop."
    )
    parser.add_argument("--objects", type=int, default=500, help="ConfigMaps in the stack")
    parser.add_argument("--rounds", type=int, default=3, help="bare+agent round pairs")
    args = parser.parse_args()
    if args.objects < 1 or args.rounds < 1:
        parser.error("--objects and --rounds must be positive")
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
