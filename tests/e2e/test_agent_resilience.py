"""End to end (broker process, ``brokkr agent run`` process, fake kube-apiserver): the agent never
wedges and says what happened (issue 10).

Covers:

1. deleting ``brokkr-system`` under a running agent is repaired on the next reconcile: a new
   deployment object succeeds and its inventory is written again;
2. a CRD that never becomes Established yields a FAILURE event naming it and the reason, while
   another stack still deploys;
3. a steady agent with 10 unchanged stacks writes no events however often it re-applies (a
   reconcile interval of 0.2 s stands in for a day at the default 300 s), and its INFO log tells
   what it applied without one line per HTTP request.
"""

from __future__ import annotations

from pathlib import Path

from tests.agent.waiting import eventually
from tests.e2e.conftest import World, agent_process, inventories
from tests.fakes.kube_apiserver import FakeKubeApiServer
from tests.fakes.widgets import CRD, WIDGET

STACKS = 10
# Full re-applies of every stack to sit through: with 0.2 s between them, a few seconds.
REAPPLIES = 15


def configmap(name: str, namespace: str = "default") -> str:
    return (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: {namespace}}}\n"
        "data: {key: value}\n"
    )


async def test_deleting_the_inventory_namespace_is_repaired_on_the_next_reconcile(
    world: World, kube: FakeKubeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    await world.activate()
    first = await world.deploy(configmap("first"))
    with agent_process(world, kubeconfig, tmp_path) as agent:
        await world.wait_event(first.id, "SUCCESS")
        assert len(inventories(kube)) == 1
        kube.delete("Namespace", "brokkr-system")
        assert kube.get("Namespace", "brokkr-system") is None
        second = await world.deploy(configmap("second"))
        event = await world.wait_event(second.id, "SUCCESS")
        assert agent.alive(), agent.log()
    assert event.message is not None and "applied 1 object(s)" in event.message
    assert kube.get("Namespace", "brokkr-system") is not None
    assert len(inventories(kube)) == 1
    assert kube.get("ConfigMap", "second", "default") is not None
    assert await world.event_for(second.id, "FAILURE") is None


async def test_a_crd_that_never_settles_fails_with_the_reason_while_another_stack_deploys(
    world: World, kube: FakeKubeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    kube.cluster.crd_establish_delay = 3600.0
    await world.activate()
    other_stack = await world.new_stack("other")
    namespace = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"
    stuck = await world.deploy("---".join([namespace, CRD, WIDGET]))
    other = await world.deploy(configmap("other"), stack_id=other_stack)
    with agent_process(world, kubeconfig, tmp_path, crd_establish_timeout="3") as agent:
        await world.wait_event(other.id, "SUCCESS")
        # The other stack was done before the CRD wait ran out.
        assert await world.event_for(stuck.id, "FAILURE") is None
        failure = await world.wait_event(stuck.id, "FAILURE")
        assert agent.alive(), agent.log()
    assert failure.message is not None
    assert "CRDNotEstablished" in failure.message
    assert "widgets.example.com" in failure.message
    assert kube.get("ConfigMap", "other", "default") is not None


async def test_a_steady_agent_with_ten_stacks_writes_no_events(
    world: World, kube: FakeKubeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    await world.activate()
    stacks = [world.stack_id] + [await world.new_stack(f"steady{i}") for i in range(1, STACKS)]
    objects = [
        await world.deploy(configmap(f"steady-{i}"), stack_id=stack)
        for i, stack in enumerate(stacks)
    ]
    with agent_process(world, kubeconfig, tmp_path, reconcile_interval="0.2") as agent:
        for obj in objects:
            await world.wait_event(obj.id, "SUCCESS")

        def reapplied() -> bool:
            applies = kube.requests_matching("PATCH", "/configmaps/steady-0")
            return len([r for r in applies if "dryRun" not in r.params]) >= REAPPLIES

        await eventually(reapplied, what=f"{REAPPLIES} re-applies")
        assert agent.alive(), agent.log()
        events = await world.events()
    assert sorted(e.deployment_object_id for e in events) == sorted(o.id for o in objects)
    log = agent.log()
    assert "HTTP Request" not in log
    assert f"version {objects[0].sequence_id}: applied 1 object(s), pruned 0" in log
