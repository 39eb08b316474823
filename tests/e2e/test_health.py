"""Deployment health end to end: ``brokkr serve`` + ``brokkr agent run`` + the fake
kube-apiserver, the test playing the Kubernetes controllers (ReplicaSets, pods, statuses).

- a Deployment whose pods are in ImagePullBackOff is reported ``failing`` with that reason, and
  ``healthy`` once its pods are ready and its rollout available;
- a Deployment whose only pod is in CrashLoopBackOff is ``failing`` (none of its pods serves);
- a completed Job is ``healthy``;
- once a stack is deleted, its objects are no longer assessed nor reported.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import yaml

from brokkr.client import AsyncBrokkrClient
from brokkr.common import wire
from tests.agent import controllers as c
from tests.agent.waiting import eventually
from tests.e2e.conftest import DEADLINE, World, agent_process
from tests.fakes.kube_apiserver import FakeKubeApiServer

CHECK_INTERVAL = 0.5
# Fast health: assess twice a second, report everything every 2 s.
HEALTH = {
    "deployment_health_check_interval": str(CHECK_INTERVAL),
    "deployment_health_interval": "2",
}


def manifest(*documents: c.Obj) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False)


async def health_of(admin: AsyncBrokkrClient, object_id: uuid.UUID) -> wire.DeploymentHealth | None:
    records = (await admin.health.for_deployment_object(object_id)).health_records
    return records[0] if records else None


async def wait_health(
    admin: AsyncBrokkrClient, object_id: uuid.UUID, status: str
) -> tuple[wire.DeploymentHealth, wire.HealthSummary]:
    async def reported() -> Any:
        record = await health_of(admin, object_id)
        return record if record is not None and record.status == status else None

    record = await eventually(reported, timeout=DEADLINE, what=f"{status} health of {object_id}")
    summary = wire.decode_summary(record.summary)
    assert summary is not None
    return record, summary


async def test_image_pull_backoff_is_failing_then_healthy_once_ready(
    world: World, kube: FakeKubeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    web = c.workload("Deployment", "web", replicas=2)
    await world.activate()
    with agent_process(world, kubeconfig, tmp_path, **HEALTH) as agent:
        obj = await world.deploy(manifest(web))
        await world.wait_event(obj.id, "SUCCESS")
        play = c.Controllers(kube)
        replicaset = play.child(web, "ReplicaSet", "web-5d9f")
        pods = play.pods(
            replicaset, 2, c.waiting_pod("ImagePullBackOff", 'Back-off pulling "nginx:1"')
        )
        generation = play.live(web)["metadata"]["generation"]
        kube.set_status(
            "Deployment",
            "web",
            {
                "observedGeneration": generation,
                "replicas": 2,
                "updatedReplicas": 2,
                "unavailableReplicas": 2,
            },
        )

        record, summary = await wait_health(world.admin, obj.id, "failing")
        assert record.agent_id == world.agent.id
        assert "ImagePullBackOff" in summary.conditions
        assert (summary.pods_ready, summary.pods_total) == (0, 2)
        failing_pods = {r.name for r in summary.resources or [] if r.kind == "Pod"}
        assert failing_pods == {"web-5d9f-0", "web-5d9f-1"}

        play.set_pods(pods, c.ready_pod())
        kube.set_status("Deployment", "web", c.available(2, generation))

        _, summary = await wait_health(world.admin, obj.id, "healthy")
        assert (summary.pods_ready, summary.pods_total, summary.conditions) == (2, 2, [])
        assert "Traceback" not in agent.log()


async def test_crash_loop_is_failing_and_a_completed_job_healthy(
    world: World, kube: FakeKubeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    crash = c.workload("Deployment", "crash")
    migrate = c.job("migrate")
    jobs_stack = await world.new_stack("jobs")
    await world.activate()
    with agent_process(world, kubeconfig, tmp_path, **HEALTH):
        crashing = await world.deploy(manifest(crash))
        finished = await world.deploy(manifest(migrate), stack_id=jobs_stack)
        await world.wait_event(crashing.id, "SUCCESS")
        await world.wait_event(finished.id, "SUCCESS")
        play = c.Controllers(kube)
        play.pods(
            play.child(crash, "ReplicaSet", "crash-1"),
            1,
            c.waiting_pod("CrashLoopBackOff", restarts=5),
        )
        kube.set_status(
            "Deployment", "crash", {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1}
        )
        play.pods(migrate, 1, c.succeeded_pod())
        kube.set_status("Job", "migrate", c.job_complete())

        _, crashed = await wait_health(world.admin, crashing.id, "failing")
        assert crashed.conditions == ["CrashLoopBackOff"]
        _, done = await wait_health(world.admin, finished.id, "healthy")
        assert (done.pods_total, done.conditions) == (1, [])
        stack = await world.admin.health.for_stack(jobs_stack)
        assert stack.overall_status == "healthy"


async def test_a_deleted_stack_is_no_longer_reported(
    world: World, kube: FakeKubeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    web = c.workload("Deployment", "web")
    await world.activate()
    with agent_process(world, kubeconfig, tmp_path, **HEALTH) as agent:
        obj = await world.deploy(manifest(web))
        await world.wait_event(obj.id, "SUCCESS")
        await wait_health(world.admin, obj.id, "degraded")  # no controller: rollout pending

        async with world.generator() as gen:
            await gen.stacks.delete(world.stack_id)
        await eventually(lambda: kube.get("Deployment", "web") is None, what="the stack pruned")
        kube.clear_requests()
        # Several check intervals: a tracked object would be read again in each.
        await asyncio.sleep(CHECK_INTERVAL * 6)

        assert kube.requests_matching("GET", "/deployments/web") == []
        assert "Traceback" not in agent.log()
