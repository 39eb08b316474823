"""End to end: on-demand diagnostics with a real broker process, a real ``brokkr agent run``
process and the fake kube-apiserver, the test playing the controllers and the kubelet.

Covers: an admin asks the agent about a deployed Deployment; the agent claims the request and
answers it with that object's pod (found through its ReplicaSet), the pod's event and its
current and previous container logs, and nothing of another workload in the same namespace;
the answer is readable through the API, by the admin and not by a generator. A request for an
agent that never runs is never claimed and expires (the test moves its expiry into the past,
as the clock would; the broker's maintenance runs every 0.5 s here).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
import yaml

from brokkr.broker.db import tables
from brokkr.client import AsyncBrokkrClient, NotFound
from brokkr.common import wire
from tests.agent import controllers as c
from tests.agent.waiting import eventually
from tests.e2e.conftest import DEADLINE, BrokerProcess, World, agent_process
from tests.fakes.kube_apiserver import FakeKubeApiServer

NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
WEB = c.workload("Deployment", "web", namespace="shop")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    environ = {"BROKKR__BROKER__DIAGNOSTIC_CLEANUP_INTERVAL_SECONDS": "0.5"}
    server = BrokerProcess(tmp_path_factory.mktemp("e2e-diagnostics"), environ)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def crashing() -> dict[str, Any]:
    """A container in CrashLoopBackOff after an OOM kill, as the kubelet reports it."""
    return {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
        "containerStatuses": [
            {
                "name": "main",
                "image": "nginx:1",
                "imageID": "",
                "ready": False,
                "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}},
            }
        ],
    }


async def completed(admin: AsyncBrokkrClient, request_id: uuid.UUID) -> wire.DiagnosticResponse:
    async def answered() -> wire.DiagnosticResponse | None:
        response = await admin.diagnostics.get(request_id)
        return response if response.request.status == "completed" else None

    found: wire.DiagnosticResponse = await eventually(
        answered, timeout=DEADLINE, what="a completed diagnostic request"
    )
    return found


async def test_an_agent_answers_with_its_object_s_pods_events_and_logs(
    world: World, kube: FakeKubeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    await world.activate()
    deployed = await world.deploy(yaml.safe_dump_all([NAMESPACE, WEB]))
    with agent_process(world, kubeconfig, tmp_path, diagnostics_interval="0.5"):
        await world.wait_event(deployed.id, "SUCCESS")
        play = c.Controllers(kube)
        [pod] = play.pods(play.child(WEB, "ReplicaSet", "web-1"), 1, crashing())
        kube.record_event(pod, "BackOff", "Back-off restarting failed container", "Warning")
        kube.set_pod_log("shop", "web-1-0", "starting\nallocating\n")
        kube.set_pod_log("shop", "web-1-0", "starting\nout of memory\n", previous=True)
        # Another workload in the same namespace, with the same labels, and its event.
        stranger = c.workload("ReplicaSet", "stranger", namespace="shop", labels={"app": "web"})
        kube.create(stranger)
        [other] = play.pods(stranger, 1)
        kube.record_event(other, "Pulled", "not this object's")

        request = await world.admin.diagnostics.request(
            deployed.id, agent_id=world.agent.id, requested_by="e2e"
        )
        response = await completed(world.admin, request.id)

    result = response.result
    assert result is not None and result.log_tails is not None
    pods = msgspec.json.decode(result.pod_statuses, type=list[wire.PodStatus])
    events = msgspec.json.decode(result.events, type=list[wire.DiagnosticEvent])
    tails = msgspec.json.decode(result.log_tails, type=wire.LogTails)
    assert [(p.namespace, p.name, p.owner) for p in pods] == [("shop", "web-1-0", "Deployment/web")]
    [container] = pods[0].containers
    assert (container.state_reason, container.restart_count, container.last_state_reason) == (
        "CrashLoopBackOff",
        4,
        "OOMKilled",
    )
    assert [(e.involved_object, e.reason) for e in events] == [("web-1-0", "BackOff")]
    assert tails == {
        "web-1-0/main": "starting\nallocating\n",
        "web-1-0/main/previous": "starting\nout of memory\n",
    }
    # The request's owner reads it; a generator cannot (it answers as if it did not exist).
    async with world.generator() as gen:
        with pytest.raises(NotFound):
            await gen.diagnostics.get(request.id)


async def test_a_request_for_an_agent_that_never_runs_expires(
    world: World, broker: BrokerProcess
) -> None:
    absent = await world.admin.agents.create(name=f"absent-{world.suffix}", cluster_name="e2e")
    await world.admin.agents.add_target(absent.agent.id, world.stack_id)
    deployed = await world.deploy(yaml.safe_dump_all([NAMESPACE, WEB]))
    request = await world.admin.diagnostics.request(
        deployed.id, agent_id=absent.agent.id, retention_minutes=1
    )
    expire_now(broker, request.id)

    async def expired() -> bool:
        return (await world.admin.diagnostics.get(request.id)).request.status == "expired"

    await eventually(expired, timeout=DEADLINE, what="the request expired")
    response = await world.admin.diagnostics.get(request.id)
    assert response.result is None
    assert response.request.claimed_at is None


def expire_now(broker: BrokerProcess, request_id: uuid.UUID) -> None:
    """Move a request's expiry into the past, as a minute's wait would."""
    engine = sa.create_engine(f"sqlite:///{broker.data_dir / 'brokkr.db'}")
    try:
        with engine.begin() as connection:
            connection.execute(
                tables.diagnostic_requests.update()
                .where(tables.diagnostic_requests.c.id == request_id)
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
    finally:
        engine.dispose()
