"""End to end: a hostile deployment object fails alone on the agent (issue #9, finding 4).

The broker here is configured to let alias expansion through (as a reference broker, or one
configured more loosely than its agents, would), so a billion-laughs object reaches the agent.
The agent refuses it before stamping: a FAILURE event naming the expansion for that object, while
another stack's object is applied and reported SUCCESS, and the agent stays alive and healthy.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from textwrap import indent

import pytest

from tests.common.test_yaml_guard import laughs
from tests.e2e.conftest import BrokerProcess, World, agent_process
from tests.fakes.kube_apiserver import FakeKubeApiServer

GOOD = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: good, namespace: default}\n"
# About 1.1 million nodes once expanded; 9 levels of these exhausted 1.5 GiB in the trial.
HOSTILE = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol, namespace: default}\ndata:\n"
    + indent(laughs(6, width=10), "  ")
)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    server = BrokerProcess(
        tmp_path_factory.mktemp("e2e-hostile"), {"BROKKR__LIMITS__MAX_YAML_EXPANSION": "10000000"}
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_a_hostile_object_fails_alone_and_other_stacks_still_apply(
    world: World, kube: FakeKubeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    await world.activate()
    other_stack = await world.new_stack("other")
    hostile = await world.deploy(HOSTILE)
    good = await world.deploy(GOOD, stack_id=other_stack)
    with agent_process(world, kubeconfig, tmp_path) as agent:
        failure = await world.wait_event(hostile.id, "FAILURE")
        await world.wait_event(good.id, "SUCCESS")
        assert agent.alive(), agent.log()
        assert await agent.status("/healthz") == 200
    assert failure.message is not None and "aliases expand" in failure.message
    assert kube.get("ConfigMap", "lol", "default") is None
    assert kube.get("ConfigMap", "good", "default") is not None
