"""Work-order executors against the fake kube-apiserver over real HTTP.

Covers: a ``custom`` order applies every document stamped with the owner and the order's id and
succeeds once every Job among them completed (the test sets the Job's status as the Job
controller would); a failed Job fails it permanently with the Job's reason; a Job that never
finishes fails retryably at the deadline. Retryability comes from the API server's answer: 500,
429 and 503 are retryable, an invalid object and 403 are permanent. A ``build`` order applies its
Build, creates a BuildRun of it and reports the digest from its status; every attempt gets a
BuildRun of its own; a failed BuildRun fails with its ``failureDetails`` reason; an order
without a Build, and an unknown work type, fail permanently naming why.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import msgspec
import pytest
import yaml

from brokkr.agent import manifests
from brokkr.agent.kube import KubeCluster
from brokkr.agent.outcomes import WorkOrderResult
from brokkr.agent.settings import AgentSection, Settings
from brokkr.agent.work_orders import Executor
from brokkr.common import wire
from tests.agent.waiting import eventually
from tests.fakes import shipwright
from tests.fakes.kube_apiserver import FakeKubeApiServer

AGENT = UUID("00000000-0000-0000-0000-00000000a9e1")

CONFIGMAP = """
apiVersion: v1
kind: ConfigMap
metadata: {name: migrate-config, namespace: jobs, labels: {team: blue}}
data: {step: "1"}
"""
NAMESPACE = "\napiVersion: v1\nkind: Namespace\nmetadata: {name: jobs}\n"
JOB = """
apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: jobs}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: "migrate:1"}]
"""
CUSTOM_WITH_JOB = "---".join([JOB, CONFIGMAP, NAMESPACE])


def order(content: str, *, work_type: str = "custom", retry_count: int = 0) -> wire.WorkOrder:
    now = datetime.now(UTC)
    return wire.WorkOrder(
        id=uuid4(),
        created_at=now,
        updated_at=now,
        work_type=work_type,
        yaml_content=content,
        status="CLAIMED",
        claimed_by=AGENT,
        claimed_at=now,
        claim_timeout_seconds=3600,
        max_retries=3,
        retry_count=retry_count,
        backoff_seconds=60,
    )


@pytest.fixture
async def settings(fake: FakeKubeApiServer, tmp_path: Path) -> Settings:
    agent = AgentSection(
        pak="pak",
        agent_name="agent",
        cluster_name="cluster",
        kubeconfig_path=str(fake.write_kubeconfig(tmp_path / "kubeconfig")),
        work_order_timeout=10.0,
        work_order_check_interval=0.05,
    )
    return Settings(agent=agent)


@pytest.fixture
def executor(settings: Settings, cluster: KubeCluster) -> Executor:
    return Executor(settings, cluster)


def started(executor: Executor, work: wire.WorkOrder) -> asyncio.Task[WorkOrderResult]:
    return asyncio.create_task(executor(work, agent_id=AGENT))


def job_status(condition: str, reason: str, message: str) -> dict[str, Any]:
    return {
        "conditions": [{"type": condition, "status": "True", "reason": reason, "message": message}]
    }


async def test_custom_applies_stamped_objects_and_waits_for_the_job(
    fake: FakeKubeApiServer, executor: Executor
) -> None:
    work = order(CUSTOM_WITH_JOB)
    task = started(executor, work)
    await eventually(lambda: fake.get("Job", "migrate", "jobs"))
    await asyncio.sleep(0.2)
    assert not task.done(), "the order must wait for its Job"
    fake.set_status("Job", "migrate", job_status("Complete", "Completed", ""), "jobs")
    result = await asyncio.wait_for(task, 5)
    assert result == WorkOrderResult(
        success=True, message="applied 3 object(s); 1 Job(s) succeeded"
    )
    meta = fake.get("ConfigMap", "migrate-config", "jobs")["metadata"]  # type: ignore[index]
    assert meta["labels"] == {"team": "blue", manifests.WORK_ORDER_ID_LABEL: str(work.id)}
    assert meta["annotations"][manifests.OWNER_ID_ANNOTATION] == str(AGENT)
    assert manifests.STACK_ID_LABEL not in meta["labels"]


async def test_custom_without_a_job_succeeds_once_applied(
    fake: FakeKubeApiServer, executor: Executor
) -> None:
    result = await executor(order(NAMESPACE + "---" + CONFIGMAP), agent_id=AGENT)
    assert result == WorkOrderResult(success=True, message="applied 2 object(s)")
    assert fake.get("ConfigMap", "migrate-config", "jobs") is not None


async def test_a_failed_job_fails_permanently_with_its_reason(
    fake: FakeKubeApiServer, executor: Executor
) -> None:
    task = started(executor, order(CUSTOM_WITH_JOB))
    await eventually(lambda: fake.get("Job", "migrate", "jobs"))
    fake.set_status(
        "Job",
        "migrate",
        job_status("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
        "jobs",
    )
    result = await asyncio.wait_for(task, 5)
    assert result == WorkOrderResult(
        success=False,
        message="Job jobs/migrate failed: BackoffLimitExceeded: "
        "Job has reached the specified backoff limit",
        retryable=False,
    )


async def test_a_job_that_never_finishes_fails_retryably_at_the_deadline(
    cluster: KubeCluster, settings: Settings
) -> None:
    agent = msgspec.structs.replace(settings.agent, work_order_timeout=0.5)
    executor = Executor(msgspec.structs.replace(settings, agent=agent), cluster)
    result = await executor(order(CUSTOM_WITH_JOB), agent_id=AGENT)
    assert result == WorkOrderResult(success=False, message="timed out after 0.5 s", retryable=True)


@pytest.mark.parametrize("status", [500, 429, 503])
async def test_server_errors_are_retryable(
    fake: FakeKubeApiServer, executor: Executor, status: int
) -> None:
    fake.fail("PATCH", "/configmaps/", status=status, times=None)
    result = await executor(order(NAMESPACE + "---" + CONFIGMAP), agent_id=AGENT)
    assert not result.success
    assert result.retryable, result.message


async def test_forbidden_is_permanent(fake: FakeKubeApiServer, executor: Executor) -> None:
    fake.fail("PATCH", "/configmaps/", status=403, times=None)
    result = await executor(order(NAMESPACE + "---" + CONFIGMAP), agent_id=AGENT)
    assert not result.success
    assert not result.retryable
    assert result.message is not None
    assert "Forbidden" in result.message


async def test_an_invalid_object_is_permanent(executor: Executor) -> None:
    invalid = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Not_Valid}\n"
    result = await executor(order(invalid), agent_id=AGENT)
    assert not result.success
    assert not result.retryable
    assert result.message is not None
    assert "Invalid" in result.message


async def test_an_unknown_work_type_fails_permanently_naming_it(executor: Executor) -> None:
    result = await executor(order(CONFIGMAP, work_type="deploy-rocket"), agent_id=AGENT)
    assert result == WorkOrderResult(
        success=False,
        message="unknown work type 'deploy-rocket' (this agent runs build, custom)",
        retryable=False,
    )


@pytest.fixture
def with_shipwright(fake: FakeKubeApiServer) -> FakeKubeApiServer:
    for crd in (shipwright.BUILDS_CRD, shipwright.BUILDRUNS_CRD, shipwright.NAMESPACE):
        fake.create(yaml.safe_load(crd))
    return fake


BUILD_ORDER = shipwright.BUILD


def buildruns(fake: FakeKubeApiServer) -> list[dict[str, Any]]:
    return fake.objects("BuildRun", "builds")


async def test_build_creates_a_buildrun_and_reports_its_digest(
    with_shipwright: FakeKubeApiServer, executor: Executor
) -> None:
    fake = with_shipwright
    work = order(BUILD_ORDER, work_type="build")
    task = started(executor, work)
    [run] = await eventually(lambda: buildruns(fake))
    assert fake.get("Build", "app", "builds") is not None
    assert run["spec"] == {"build": {"name": "app"}}
    labels = run["metadata"]["labels"]
    assert labels[manifests.WORK_ORDER_ID_LABEL] == str(work.id)
    assert labels["shipwright.io/build"] == "app"
    name = run["metadata"]["name"]
    fake.set_status("BuildRun", name, shipwright.succeeded("sha256:abc123"), "builds")
    result = await asyncio.wait_for(task, 5)
    assert result == WorkOrderResult(success=True, message="sha256:abc123")


async def test_every_attempt_gets_its_own_buildrun(
    with_shipwright: FakeKubeApiServer, executor: Executor
) -> None:
    fake = with_shipwright
    work = order(BUILD_ORDER, work_type="build")
    seen: set[str] = set()

    def new_runs() -> list[dict[str, Any]]:
        return [run for run in buildruns(fake) if run["metadata"]["name"] not in seen]

    for attempt in (1, 2):
        task = started(executor, work)
        [run] = await eventually(new_runs)
        seen.add(run["metadata"]["name"])
        status = shipwright.succeeded(f"sha256:{attempt}")
        fake.set_status("BuildRun", run["metadata"]["name"], status, "builds")
        result = await asyncio.wait_for(task, 5)
        assert result.message == f"sha256:{attempt}"
    assert len(buildruns(fake)) == 2


async def test_a_failed_buildrun_fails_permanently_with_its_reason(
    with_shipwright: FakeKubeApiServer, executor: Executor
) -> None:
    fake = with_shipwright
    task = started(executor, order(BUILD_ORDER, work_type="build"))
    [run] = await eventually(lambda: buildruns(fake))
    status = shipwright.failed("BuildRunTimeout", "BuildRun exceeded its timeout")
    fake.set_status("BuildRun", run["metadata"]["name"], status, "builds")
    result = await asyncio.wait_for(task, 5)
    assert result == WorkOrderResult(
        success=False,
        message=f"BuildRun builds/{run['metadata']['name']} failed: BuildRunTimeout: "
        "BuildRun exceeded its timeout",
        retryable=False,
    )


async def test_a_build_order_without_a_build_fails_permanently(
    with_shipwright: FakeKubeApiServer, executor: Executor
) -> None:
    result = await executor(order(CONFIGMAP, work_type="build"), agent_id=AGENT)
    assert result == WorkOrderResult(
        success=False,
        message="a build work order needs exactly one Shipwright Build (shipwright.io/*), found 0",
        retryable=False,
    )
    assert buildruns(with_shipwright) == []
