"""The Kubernetes layer against the fake kube-apiserver: connecting, ping, discovery with a
broken API group, error translation, the inventory ConfigMaps, and cached readiness undone by the
404 that disproves it (the inventory namespace deleted under the agent, a CRD re-created with
another plural), a terminating inventory namespace, and a CRD that never becomes Established."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest
import yaml

from brokkr.agent import kube
from brokkr.agent.inventory import Inventory
from brokkr.agent.kube import KubeCluster, KubeError
from brokkr.agent.kube.client import KubeClient, load_config
from brokkr.agent.manifests import ObjectRef
from brokkr.agent.outcomes import StartupError
from brokkr.agent.settings import AgentSection, Settings
from tests.fakes.kube_apiserver import FakeKubeApiServer
from tests.fakes.widgets import CRD

AGENT = UUID("00000000-0000-0000-0000-00000000a9e1")
STACK = UUID("00000000-0000-0000-0000-0000000057a1")


def settings_for(kubeconfig: Path | str) -> Settings:
    agent = AgentSection(pak="p", agent_name="a", cluster_name="c", kubeconfig_path=str(kubeconfig))
    return Settings(agent=agent)


@pytest.fixture
async def cluster(fake: FakeKubeApiServer, tmp_path: Path) -> AsyncIterator[KubeCluster]:
    connected = await kube.connect(settings_for(fake.write_kubeconfig(tmp_path / "kubeconfig")))
    yield connected
    await connected.aclose()


async def test_a_missing_kubeconfig_fails_start_up(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="cannot load Kubernetes configuration"):
        await kube.connect(settings_for(tmp_path / "absent"))


async def test_ping(fake: FakeKubeApiServer, cluster: KubeCluster) -> None:
    assert await cluster.ping()
    fake.fail("GET", "/version", status=503)
    assert not await cluster.ping()


async def test_discovery_tolerates_a_broken_group(
    fake: FakeKubeApiServer, cluster: KubeCluster
) -> None:
    fake.break_discovery("batch/v1")
    info = await cluster.discovery.resolve("apps/v1", "Deployment")
    assert (info.plural, info.namespaced) == ("deployments", True)
    assert not (await cluster.discovery.resolve("v1", "Namespace")).namespaced
    with pytest.raises(KubeError, match="discovery of batch/v1 failed") as caught:
        await cluster.discovery.resolve("batch/v1", "Job")
    assert not caught.value.retryable
    fake.restore_discovery("batch/v1")
    # A miss refreshes discovery, so the group is found once it answers again.
    assert (await cluster.discovery.resolve("batch/v1", "Job")).plural == "jobs"


async def test_errors_carry_the_reason_and_retryability(
    fake: FakeKubeApiServer, cluster: KubeCluster
) -> None:
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}}
    with pytest.raises(KubeError, match="Invalid") as invalid:
        await cluster.objects.apply(bad)
    assert (invalid.value.code, invalid.value.retryable) == (422, False)
    fake.fail("PATCH", "/configmaps/", status=429)
    good = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "good"}}
    with pytest.raises(KubeError) as throttled:
        await cluster.objects.apply(good)
    assert (throttled.value.code, throttled.value.retryable) == (429, True)
    assert (await cluster.objects.apply(good)).ref.name == "good"


async def test_a_timeout_is_retryable(fake: FakeKubeApiServer, tmp_path: Path) -> None:
    config = load_config(str(fake.write_kubeconfig(tmp_path / "kubeconfig")))
    impatient = KubeCluster(
        KubeClient(config, timeout=0.3),
        inventory_namespace="brokkr-system",
        crd_establish_timeout=1.0,
    )
    fake.timeout("GET", "/version", seconds=5)
    try:
        with pytest.raises(KubeError, match="timed out") as timed_out:
            await impatient.client.get_json("/version")
    finally:
        await impatient.aclose()
    assert timed_out.value.retryable


async def test_inventories_round_trip(fake: FakeKubeApiServer, cluster: KubeCluster) -> None:
    store = cluster.inventories
    assert await store.read(owner_id=AGENT, stack_id=STACK) is None
    ref = ObjectRef(api_version="v1", kind="ConfigMap", namespace="default", name="x")
    stored = Inventory(
        stack_id=STACK,
        deployment_object_id=STACK,
        checksum="c",
        applied_at=datetime(2024, 1, 1, tzinfo=UTC),
        objects=(ref,),
    )
    await store.write(AGENT, stored)
    assert fake.get("Namespace", "brokkr-system") is not None
    assert await store.read(owner_id=AGENT, stack_id=STACK) == stored
    assert await store.list(owner_id=AGENT) == [stored]
    await store.delete(owner_id=AGENT, stack_id=STACK)
    await store.delete(owner_id=AGENT, stack_id=STACK)
    assert await store.list(owner_id=AGENT) == []


def inventory_of(stack: UUID) -> Inventory:
    ref = ObjectRef(api_version="v1", kind="ConfigMap", namespace="default", name="x")
    return Inventory(
        stack_id=stack,
        deployment_object_id=stack,
        checksum="c",
        applied_at=datetime(2024, 1, 1, tzinfo=UTC),
        objects=(ref,),
    )


async def test_an_inventory_namespace_deleted_under_the_agent_is_re_created(
    fake: FakeKubeApiServer, cluster: KubeCluster
) -> None:
    await cluster.inventories.write(AGENT, inventory_of(STACK))
    fake.delete("Namespace", "brokkr-system")
    assert fake.get("Namespace", "brokkr-system") is None
    await cluster.inventories.write(AGENT, inventory_of(STACK))
    assert fake.get("Namespace", "brokkr-system") is not None
    assert await cluster.inventories.read(owner_id=AGENT, stack_id=STACK) == inventory_of(STACK)


async def test_a_terminating_inventory_namespace_is_a_retryable_error(
    fake: FakeKubeApiServer, cluster: KubeCluster
) -> None:
    await cluster.inventories.write(AGENT, inventory_of(STACK))
    namespace = fake.get("Namespace", "brokkr-system")
    assert namespace is not None
    fake.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "brokkr-system", "finalizers": ["example.com/hold"]},
        },
        manager="someone",
    )
    fake.delete("Namespace", "brokkr-system")
    with pytest.raises(KubeError, match="being terminated") as caught:
        await cluster.inventories.write(AGENT, inventory_of(STACK))
    assert caught.value.retryable


async def test_a_crd_re_created_with_another_plural_is_found_again(
    fake: FakeKubeApiServer, cluster: KubeCluster
) -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
    widget = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "shop"},
    }
    await cluster.objects.apply(namespace)
    await cluster.objects.apply(yaml.safe_load(CRD))
    await cluster.objects.apply(widget)
    fake.delete("CustomResourceDefinition", "widgets.example.com")
    # Re-created by someone else: the agent's discovery still knows the old plural.
    fake.create(yaml.safe_load(CRD.replace("widgets", "gizmos")))
    with pytest.raises(KubeError) as stale:
        await cluster.objects.apply(widget)
    assert stale.value.not_found
    assert (await cluster.objects.apply(widget)).ref.name == "w1"
    assert fake.get("Widget", "w1", "shop") is not None


async def test_a_crd_that_never_settles_fails_with_its_conditions(
    fake: FakeKubeApiServer, tmp_path: Path
) -> None:
    fake.cluster.crd_establish_delay = 3600.0
    config = load_config(str(fake.write_kubeconfig(tmp_path / "kubeconfig")))
    impatient = KubeCluster(
        KubeClient(config), inventory_namespace="brokkr-system", crd_establish_timeout=0.5
    )
    try:
        with pytest.raises(KubeError, match="not Established after 0.5 s") as caught:
            await impatient.objects.apply(yaml.safe_load(CRD))
    finally:
        await impatient.aclose()
    assert caught.value.reason == "CRDNotEstablished"
    assert not caught.value.retryable
