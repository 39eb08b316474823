"""End to end work orders: a real broker process, a real ``brokkr agent run`` process and the fake
kube-apiserver; the test plays the Job and Shipwright controllers by setting statuses.

Covers: a ``custom`` order with a Job is claimed by the targeted agent, applied, and logged as a
success once the Job completes, and another as a failure carrying the Job's reason once its Job
fails; a ``build`` order creates a BuildRun of its Build and is logged with the digest the test
puts in the BuildRun's status.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import yaml

from brokkr.client import AsyncBrokkrClient, NotFound
from brokkr.common import wire
from tests.agent.waiting import eventually
from tests.e2e.conftest import World, agent_process
from tests.fakes import shipwright
from tests.fakes.kube_apiserver import FakeKubeApiServer


def job(name: str) -> str:
    return f"""
apiVersion: batch/v1
kind: Job
metadata: {{name: {name}, namespace: default}}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: main, image: "migrate:1"}}]
"""


def job_condition(kind: str, reason: str, message: str) -> dict[str, object]:
    return {"conditions": [{"type": kind, "status": "True", "reason": reason, "message": message}]}


async def logged(admin: AsyncBrokkrClient, order_id: uuid.UUID) -> wire.WorkOrderLog:
    found: list[wire.WorkOrderLog] = []

    async def done() -> bool:
        try:
            found.append(await admin.work_orders.get_log(order_id))
        except NotFound:
            return False
        return True

    await eventually(done, what=f"log entry of work order {order_id}")
    return found[0]


async def test_custom_orders_are_logged_with_their_jobs_outcome(
    world: World, admin: AsyncBrokkrClient, kube: FakeKubeApiServer, kubeconfig: Path
) -> None:
    await world.activate()
    passing = await admin.work_orders.create(
        work_type="custom", yaml_content=job("passes"), agent_ids=[world.agent.id]
    )
    failing = await admin.work_orders.create(
        work_type="custom", yaml_content=job("fails"), agent_ids=[world.agent.id]
    )
    with agent_process(world, kubeconfig, kubeconfig.parent, work_order_check_interval="0.2"):
        await eventually(lambda: bool(kube.get("Job", "passes") and kube.get("Job", "fails")))
        claimed = await admin.work_orders.get(passing.id)
        assert (claimed.status, claimed.claimed_by) == ("CLAIMED", world.agent.id)
        kube.set_status("Job", "passes", job_condition("Complete", "Completed", "done"))
        kube.set_status(
            "Job", "fails", job_condition("Failed", "BackoffLimitExceeded", "pod exited 1")
        )
        success = await logged(admin, passing.id)
        failure = await logged(admin, failing.id)
    assert success.success
    assert success.claimed_by == world.agent.id
    assert success.result_message == "applied 1 object(s); 1 Job(s) succeeded"
    assert not failure.success
    assert failure.retries_attempted == 0
    assert failure.result_message == (
        "Job default/fails failed: BackoffLimitExceeded: pod exited 1"
    )


async def test_a_build_order_reports_the_buildruns_digest(
    world: World, admin: AsyncBrokkrClient, kube: FakeKubeApiServer, kubeconfig: Path
) -> None:
    for document in (shipwright.BUILDS_CRD, shipwright.BUILDRUNS_CRD, shipwright.NAMESPACE):
        kube.create(yaml.safe_load(document))
    await world.activate()
    order = await admin.work_orders.create(
        work_type="build", yaml_content=shipwright.BUILD, agent_ids=[world.agent.id]
    )
    with agent_process(world, kubeconfig, kubeconfig.parent, work_order_check_interval="0.2"):
        await eventually(lambda: bool(kube.objects("BuildRun", "builds")), what="a BuildRun")
        [run] = kube.objects("BuildRun", "builds")
        assert run["spec"] == {"build": {"name": "app"}}
        status = shipwright.succeeded("sha256:0123abcd")
        kube.set_status("BuildRun", run["metadata"]["name"], status, "builds")
        entry = await logged(admin, order.id)
    assert entry.success
    assert entry.result_message == "sha256:0123abcd"
