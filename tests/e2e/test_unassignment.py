"""End to end (issue 10): a real broker process, a real ``brokkr agent run`` process and the fake
kube-apiserver.

Covers:

1. removing the label that made a stack reach an agent removes the stack's objects and its
   inventory within two polls (the agent acknowledges the stack's deletion marker); adding the
   label back applies the stack again;
2. with the broker stopped, a Deployment deleted behind the agent's back is restored from the
   last state the agent applied.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.agent.waiting import eventually
from tests.e2e.conftest import (
    POLLING_INTERVAL,
    RECONCILE_INTERVAL,
    BrokerProcess,
    World,
    agent_process,
    inventories,
)
from tests.e2e.test_agent_flow import CONFIGMAP, DEPLOYMENT, NAMESPACE
from tests.fakes.kube_apiserver import FakeKubeApiServer

LABEL = "env:e2e"
# Scheduling slack on a loaded machine: two processes, the fake cluster and the test share it.
SLACK = 5.0


async def test_removing_the_label_removes_the_stack_and_adding_it_back_reapplies(
    world: World, kube: FakeKubeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    await world.activate()
    async with world.generator() as gen:
        stack = await gen.stacks.create(
            name=f"labelled-{uuid.uuid4().hex[:10]}", generator_id=world.generator_id
        )
        await gen.stacks.add_label(stack.id, LABEL)
    await world.admin.agents.add_label(world.agent.id, LABEL)
    obj = await world.deploy("---".join([NAMESPACE, CONFIGMAP]), stack_id=stack.id)
    with agent_process(world, kubeconfig, tmp_path) as agent:
        await world.wait_event(obj.id, "SUCCESS")
        assert kube.get("ConfigMap", "settings", "shop") is not None
        assert len(inventories(kube)) == 1

        await world.admin.agents.remove_label(world.agent.id, LABEL)

        def removed() -> bool:
            return (
                kube.get("ConfigMap", "settings", "shop") is None
                and kube.get("Namespace", "shop") is None
                and inventories(kube) == []
            )

        await eventually(removed, timeout=2 * POLLING_INTERVAL + SLACK, what="stack removed")

        async def acknowledged() -> bool:
            state = await world.admin.agents.target_state(world.agent.id, full=True)
            return state.objects == []

        await eventually(acknowledged, what="marker acknowledged")

        await world.admin.agents.add_label(world.agent.id, LABEL)

        def reapplied() -> bool:
            return (
                kube.get("ConfigMap", "settings", "shop") is not None
                and len(inventories(kube)) == 1
            )

        await eventually(reapplied, timeout=2 * POLLING_INTERVAL + SLACK, what="stack re-applied")
        assert agent.alive(), agent.log()


async def test_with_the_broker_stopped_drift_is_corrected_from_the_last_applied_state(
    world: World,
    broker: BrokerProcess,
    kube: FakeKubeApiServer,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    await world.activate()
    obj = await world.deploy("---".join([NAMESPACE, DEPLOYMENT]))
    with agent_process(world, kubeconfig, tmp_path) as agent:
        await world.wait_event(obj.id, "SUCCESS")
        broker.stop()
        try:
            kube.delete("Deployment", "web", "shop")

            def restored() -> bool:
                return kube.get("Deployment", "web", "shop") is not None

            await eventually(
                restored, timeout=RECONCILE_INTERVAL + SLACK, what="Deployment restored offline"
            )
            assert agent.alive(), agent.log()
        finally:
            broker.start()
