"""End to end: a real broker process, a real ``brokkr agent run`` process and the fake
kube-apiserver (in this process, over real HTTP on 127.0.0.1).

Covers:

1. a generator's deployment object (Namespace, CRD, a custom resource of it, ConfigMap,
   Deployment) converges in the cluster and the broker then shows a SUCCESS event for it;
2. an update without the ConfigMap prunes exactly that ConfigMap; another stack's object and an
   unrelated object in the same namespace are untouched;
3. deleting stacks removes what the agent applied for them (a namespace only if it created it),
   the agent acknowledges the markers and its full target state is then empty;
4. drift (an object edited or deleted behind the agent's back) is undone within
   ``reconcile_interval``;
5. an unknown kind and an API 422 yield FAILURE events with the reason while the agent keeps
   running; a 500 injected for one apply is retried and the object then succeeds;
6. with the broker stopped /healthz stays 200 and /readyz goes 503; once it is started again on
   the same port and data dir the agent recovers by itself and applies a new object;
7. SIGTERM during a reconcile: the agent finishes it, reports, and exits 0 within the grace;
8. an INACTIVE agent applies nothing.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from brokkr.agent import manifests
from tests.agent.waiting import eventually
from tests.e2e.conftest import (
    GRACE_SECONDS,
    RECONCILE_INTERVAL,
    AgentProcess,
    BrokerProcess,
    World,
    agent_process,
)
from tests.fakes.kube_apiserver import FakeKubeApiServer
from tests.fakes.widgets import CRD, WIDGET

NAMESPACE = """
apiVersion: v1
kind: Namespace
metadata: {name: shop}
"""
CONFIGMAP = """
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {key: value}
"""
DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx:1}]}
"""
FULL = "---".join([NAMESPACE, CRD, WIDGET, CONFIGMAP, DEPLOYMENT])
WITHOUT_CONFIGMAP = "---".join([NAMESPACE, CRD, WIDGET, DEPLOYMENT])


def configmap(name: str, namespace: str = "shop", value: str = "value") -> str:
    return (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: {namespace}}}\n"
        f"data: {{key: {value}}}\n"
    )


def data(kube: FakeKubeApiServer, name: str, namespace: str = "shop") -> dict[str, Any] | None:
    found = kube.get("ConfigMap", name, namespace)
    return None if found is None else found.get("data")


async def test_a_deployment_object_converges_and_is_reported(
    world: World, kube: FakeKubeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    await world.activate()
    obj = await world.deploy(FULL)
    with agent_process(world, kubeconfig, tmp_path) as agent:
        event = await world.wait_event(obj.id, "SUCCESS")
        assert agent.alive(), agent.log()
    assert event.message is not None and "applied 5 object(s)" in event.message
    assert kube.get("Namespace", "shop") is not None
    assert kube.get("CustomResourceDefinition", "widgets.example.com") is not None
    widget = kube.get("Widget", "w1", "shop")
    assert widget is not None and widget["spec"] == {"size": 3}
    assert data(kube, "settings") == {"key": "value"}
    deployment = kube.get("Deployment", "web", "shop")
    assert deployment is not None
    assert deployment["metadata"]["labels"][manifests.STACK_ID_LABEL] == str(world.stack_id)
    annotations = deployment["metadata"]["annotations"]
    assert annotations[manifests.OWNER_ID_ANNOTATION] == str(world.agent.id)
    assert annotations[manifests.STACK_ANNOTATION] == str(world.stack_id)


async def test_an_update_prunes_only_what_the_stack_dropped(
    world: World, kube: FakeKubeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    await world.activate()
    other_stack = await world.new_stack("other")
    first = await world.deploy(FULL)
    with agent_process(world, kubeconfig, tmp_path):
        await world.wait_event(first.id, "SUCCESS")
        other = await world.deploy(configmap("other-stack"), stack_id=other_stack)
        await world.wait_event(other.id, "SUCCESS")
        unrelated = kube.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "unrelated", "namespace": "shop"},
                "data": {"mine": "yes"},
            }
        )
        update = await world.deploy(WITHOUT_CONFIGMAP)
        event = await world.wait_event(update.id, "SUCCESS")
        assert event.message is not None and "pruned 1" in event.message
        assert kube.get("ConfigMap", "settings", "shop") is None
        assert data(kube, "other-stack") == {"key": "value"}
        still = kube.get("ConfigMap", "unrelated", "shop")
        assert still is not None
        assert still["metadata"]["resourceVersion"] == unrelated["metadata"]["resourceVersion"]
        assert kube.get("Deployment", "web", "shop") is not None
        assert kube.get("Widget", "w1", "shop") is not None


async def test_deleting_stacks_removes_what_the_agent_applied(
    world: World, kube: FakeKubeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    await world.activate()
    # A namespace that exists before the agent applies it: it must survive the deletion.
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "theirs"}})
    theirs = await world.new_stack("theirs")
    objects = [
        await world.deploy(FULL),
        await world.deploy(
            NAMESPACE.replace("shop", "theirs") + "---\n" + configmap("c", "theirs"),
            stack_id=theirs,
        ),
    ]
    with agent_process(world, kubeconfig, tmp_path):
        for obj in objects:
            await world.wait_event(obj.id, "SUCCESS")
        assert kube.get("ConfigMap", "c", "theirs") is not None
        async with world.generator() as gen:
            await gen.stacks.delete(world.stack_id)
            await gen.stacks.delete(theirs)
        deployed = {obj.id for obj in objects}

        async def markers_acknowledged() -> bool:
            acknowledged = {
                event.deployment_object_id
                for event in await world.events()
                if event.status == "SUCCESS" and event.deployment_object_id not in deployed
            }
            return len(acknowledged) == 2

        await eventually(markers_acknowledged, what="both deletion markers acknowledged")
    assert kube.get("Namespace", "shop") is None
    assert kube.get("CustomResourceDefinition", "widgets.example.com") is None
    assert kube.get("Namespace", "theirs") is not None
    assert kube.get("ConfigMap", "c", "theirs") is None
    inventories = [name for name in kube.names("ConfigMap", "brokkr-system") if "brokkr" in name]
    assert inventories == []
    state = await world.admin.agents.target_state(world.agent.id, full=True)
    assert state.objects == []


async def test_drift_is_corrected_within_the_reconcile_interval(
    world: World, kube: FakeKubeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    await world.activate()
    obj = await world.deploy("---".join([NAMESPACE, CONFIGMAP, DEPLOYMENT]))
    with agent_process(world, kubeconfig, tmp_path):
        await world.wait_event(obj.id, "SUCCESS")
        live = kube.get("ConfigMap", "settings", "shop")
        assert live is not None
        kube.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "settings", "namespace": "shop"},
                "data": {"key": "tampered"},
            },
            manager="kubectl",
            force=True,
        )
        kube.delete("Deployment", "web", "shop")
        assert data(kube, "settings") == {"key": "tampered"}
        edited_at = time.monotonic()

        def restored() -> bool:
            return (
                data(kube, "settings") == {"key": "value"}
                and kube.get("Deployment", "web", "shop") is not None
            )

        # One reconcile interval, plus the reconcile itself and scheduling slack.
        await eventually(restored, timeout=RECONCILE_INTERVAL + 3.0, what="drift corrected")
        assert time.monotonic() - edited_at < RECONCILE_INTERVAL + 3.0


async def test_bad_manifests_fail_with_the_reason_and_a_500_is_retried(
    world: World, kube: FakeKubeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    await world.activate()
    unknown_stack, invalid_stack, flaky_stack = [
        await world.new_stack(prefix) for prefix in ("unknown", "invalid", "flaky")
    ]
    kube.fail("PATCH", "/configmaps/flaky", status=500, times=1)
    unknown = await world.deploy(
        "apiVersion: v1\nkind: Gadget\nmetadata: {name: g, namespace: default}\n",
        stack_id=unknown_stack,
    )
    invalid = await world.deploy(configmap("Not_Valid", "default"), stack_id=invalid_stack)
    flaky = await world.deploy(configmap("flaky", "default"), stack_id=flaky_stack)
    with agent_process(world, kubeconfig, tmp_path) as agent:
        unknown_event = await world.wait_event(unknown.id, "FAILURE")
        invalid_event = await world.wait_event(invalid.id, "FAILURE")
        await world.wait_event(flaky.id, "SUCCESS")
        assert agent.alive(), agent.log()
        assert await agent.status("/healthz") == 200
        # Still working: a good object deployed after the failures is applied.
        good = await world.deploy(configmap("good", "default"))
        await world.wait_event(good.id, "SUCCESS")
    assert unknown_event.message is not None and "Gadget" in unknown_event.message
    assert invalid_event.message is not None and "Invalid" in invalid_event.message
    assert data(kube, "flaky", "default") == {"key": "value"}
    statuses = [r.status for r in kube.requests_matching("PATCH", "/configmaps/flaky")]
    assert statuses[0] == 500
    assert statuses[1] in (200, 201)
    assert await world.event_for(flaky.id, "FAILURE") is None
    assert kube.get("ConfigMap", "Not_Valid", "default") is None


async def test_a_broker_outage_keeps_the_agent_alive_and_it_recovers(
    world: World,
    broker: BrokerProcess,
    kube: FakeKubeApiServer,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    await world.activate()
    with agent_process(world, kubeconfig, tmp_path) as agent:
        await eventually(lambda: ready(agent, 200), what="/readyz 200")
        broker.stop()
        try:
            await eventually(lambda: ready(agent, 503), what="/readyz 503")
            assert await agent.status("/healthz") == 200
            assert "broker" in (await agent.probe("/readyz")).json()["reason"]
        finally:
            broker.start()
        obj = await world.deploy(configmap("after-outage", "default"))
        await world.wait_event(obj.id, "SUCCESS")
        await eventually(lambda: ready(agent, 200), what="/readyz 200 again")
        assert agent.alive(), agent.log()
    assert data(kube, "after-outage", "default") == {"key": "value"}


async def ready(agent: AgentProcess, status: int) -> bool:
    return await agent.status("/readyz") == status


async def test_sigterm_during_a_reconcile_exits_cleanly(
    world: World, kube: FakeKubeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    await world.activate()
    kube.delay(2.0, "PATCH", "/configmaps/slow")
    obj = await world.deploy(configmap("slow", "default"))
    with agent_process(world, kubeconfig, tmp_path) as agent:
        await eventually(
            lambda: bool(kube.requests_matching("PATCH", "/configmaps/slow")),
            what="the slow apply in flight",
        )
        agent.process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        await eventually(lambda: not agent.alive(), timeout=GRACE_SECONDS + 2.0, what="exit")
        took = time.monotonic() - sent
        assert agent.process.returncode == 0, agent.log()
    assert took < GRACE_SECONDS
    # The in-flight reconcile finished and was reported before the exit.
    assert await world.event_for(obj.id, "SUCCESS") is not None
    assert data(kube, "slow", "default") == {"key": "value"}


async def test_an_inactive_agent_applies_nothing(
    world: World, kube: FakeKubeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    await world.deploy(FULL)
    with agent_process(world, kubeconfig, tmp_path) as agent:

        async def beating() -> bool:
            if await agent.status("/health") is None:
                return False
            counts = (await agent.probe("/health")).json()["counts"]
            return bool(counts["heartbeats"] >= 3)

        await eventually(beating, what="three heartbeats")
        assert (await world.admin.agents.get(world.agent.id)).status == "INACTIVE"
        assert agent.alive(), agent.log()
    assert kube.requests_matching("PATCH") == []
    assert kube.get("Namespace", "shop") is None
    assert kube.get("Namespace", "brokkr-system") is None
    assert await world.events() == []
