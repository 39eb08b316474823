"""The reference agent's acceptance checklist (agent.md §20.1, §20.3, §20.4, §20.5), item by item.

Items already covered elsewhere are referenced in a comment at their section instead of being
tested twice. Kubernetes items run against the fake kube-apiserver (tests/fakes), broker items
against a real ``brokkr serve`` (tests/cli/serving.py) through ``brokkr.client``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from brokkr.agent import kube, manifests
from brokkr.agent.kube import KubeCluster
from brokkr.agent.manifests import ManifestError, ObjectRef
from brokkr.agent.probes import Health, Metrics, ProbeServer
from brokkr.agent.settings import Settings
from brokkr.broker.domain import paks
from brokkr.client import AsyncBrokkrClient, Retry
from brokkr.common.yaml_guard import YamlLimits
from tests.agent.test_reconcile import AGENT, deployment_object, run, settings_for
from tests.cli.serving import Server, running_broker
from tests.fakes.kube_apiserver import FakeKubeApiServer

# --- §20.1 Broker interaction -------------------------------------------------------------


class Broker:
    def __init__(self, server: Server, admin_pak: str) -> None:
        self.server = server
        self.admin_pak = admin_pak

    def client(self, pak: str) -> AsyncBrokkrClient:
        return AsyncBrokkrClient(self.server.url, pak, retry=Retry(attempts=3))


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    root = tmp_path_factory.mktemp("checklist-broker")
    admin_pak = paks.generate().plaintext
    extra = {"BROKKR__BROKER__ADMIN_PAK": admin_pak, "BROKKR__LOG__LEVEL": "warning"}
    with running_broker(root / "data", root / "work", extra_env=extra) as server:
        yield Broker(server, admin_pak)


async def test_broker_readiness_wait_completes(broker: Broker) -> None:
    deadline = time.monotonic() + 30.0
    async with httpx.AsyncClient(base_url=broker.server.url) as http:
        while (await http.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, "broker not ready within 30 s"


async def test_broker_flow_of_an_agent(broker: Broker) -> None:
    """PAK verification (agent and admin), own details, target state after SUCCESS and FAILURE,
    heartbeat. FAILURE follows our decision D12, not the reference: a FAILURE does NOT empty the
    incremental target state (the agent backs off itself), only SUCCESS does."""
    suffix = uuid4().hex[:10]
    async with broker.client(broker.admin_pak) as admin:
        assert (await admin.auth.whoami()).admin
        created = await admin.agents.create(name=f"agent-{suffix}", cluster_name="checklist")
        agent_id = created.agent.id
        generator = await admin.generators.create(name=f"gen-{suffix}")
        async with broker.client(generator.pak) as gen:
            stack = await gen.stacks.create(
                name=f"stack-{suffix}", generator_id=generator.generator.id
            )
            await admin.agents.add_target(agent_id, stack.id)
            await admin.agents.activate(agent_id)
            async with broker.client(created.initial_pak) as agent:
                assert (await agent.auth.whoami()).agent == agent_id
                me = await agent.agents.search(name=f"agent-{suffix}", cluster_name="checklist")
                assert (me.id, me.name, me.cluster_name) == (
                    agent_id,
                    f"agent-{suffix}",
                    "checklist",
                )

                first = await gen.stacks.deploy(stack.id, NAMESPACE_ONLY)
                state = await agent.agents.target_state(agent_id)
                assert state.objects and state.objects[0].id == first.id
                await agent.agents.report_event(
                    agent_id, deployment_object_id=first.id, status="SUCCESS"
                )
                assert (await agent.agents.target_state(agent_id)).objects == []

                second = await gen.stacks.deploy(stack.id, NAMESPACE_ONLY + "# changed\n")
                await agent.agents.report_event(
                    agent_id,
                    deployment_object_id=second.id,
                    status="FAILURE",
                    message="Test failure",
                )
                # D12: still served after a FAILURE (the reference would return it empty).
                after_failure = await agent.agents.target_state(agent_id)
                assert [obj.id for obj in after_failure.objects or []] == [second.id]

                await agent.agents.heartbeat(agent_id)
                me = await agent.agents.get(agent_id)
                assert me.last_heartbeat is not None and me.last_heartbeat > me.created_at


# --- §20.3 Agent HTTP server --------------------------------------------------------------
# /readyz 200-or-503 and the reference metric names: tests/agent/test_probes.py.


@pytest.fixture
async def probe_http() -> AsyncIterator[httpx.AsyncClient]:
    server = ProbeServer(Health(polling_interval=1.0), Metrics(), host="127.0.0.1", port=0)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            yield http
    finally:
        await server.aclose()


async def test_probe_endpoints(probe_http: httpx.AsyncClient) -> None:
    healthz = await probe_http.get("/healthz")
    assert (healthz.status_code, healthz.text) == (200, "OK")
    assert (await probe_http.get("/readyz")).status_code in (200, 503)
    health = await probe_http.get("/health")
    assert health.status_code in (200, 503)
    body = health.json()
    assert isinstance(body["status"], str)
    assert isinstance(body["kubernetes"], dict)
    assert isinstance(body["broker"], dict)
    assert isinstance(body["uptime_seconds"], int | float)
    assert isinstance(body["version"], str)
    assert isinstance(body["timestamp"], str)
    metrics = await probe_http.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"] == "text/plain; version=0.0.4"


# --- §20.4 Kubernetes behaviour -----------------------------------------------------------
# Namespace and ConfigMap in one desired state: test_reconcile.py::test_converges_in_one_reconcile.
# Client creation failing for a non-existent kubeconfig:
# test_kube_cluster.py::test_a_missing_kubeconfig_fails_start_up.
# The fake does not validate Pod or Deployment specs (no OpenAPI schemas), so the invalid objects
# below are ones it does reject with 422 Invalid: a name that is not a DNS subdomain.

INVALID_POD = """
apiVersion: v1
kind: Pod
metadata: {name: Bad_Pod, namespace: checklist}
"""
INVALID_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: Bad_Deployment, namespace: checklist}
"""
NONEXISTENT_KIND = """
apiVersion: v1
kind: NonexistentKind
metadata: {name: nothing, namespace: checklist}
"""
NAMESPACE_ONLY = """
apiVersion: v1
kind: Namespace
metadata: {name: checklist}
"""
NEW_NAMESPACE = """
apiVersion: v1
kind: Namespace
metadata: {name: brand-new}
"""
BUSYBOX = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "busybox", "namespace": "checklist"},
    "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "busybox"}},
        "template": {
            "metadata": {"labels": {"app": "busybox"}},
            "spec": {"containers": [{"name": "busybox", "image": "busybox:1"}]},
        },
    },
}


def configmap(name: str, key: str, value: str) -> str:
    return f"""
apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}, namespace: checklist}}
data: {{{key}: {value}}}
"""


@pytest.fixture
async def settings(fake: FakeKubeApiServer, tmp_path: Path) -> Settings:
    return settings_for(fake.write_kubeconfig(tmp_path / "kubeconfig"))


@pytest.fixture
async def cluster(settings: Settings) -> AsyncIterator[KubeCluster]:
    connected = await kube.connect(settings)
    # The pre-created namespace of the reference tests (not applied by a deployment object).
    await connected.objects.apply(manifests.parse(NAMESPACE_ONLY, YamlLimits())[0])
    yield connected
    await connected.aclose()


def data(fake: FakeKubeApiServer, name: str) -> dict[str, str] | None:
    found = fake.get("ConfigMap", name, "checklist")
    return None if found is None else found["data"]


async def test_configmap_apply_update_and_owner_checked_delete(
    fake: FakeKubeApiServer, cluster: KubeCluster, settings: Settings
) -> None:
    assert (
        await run(cluster, settings, deployment_object(configmap("cm", "key1", "value1")))
    ).success
    assert data(fake, "cm") == {"key1": "value1"}
    assert (
        await run(cluster, settings, deployment_object(configmap("cm", "key1", "value2")))
    ).success
    assert data(fake, "cm") == {"key1": "value2"}
    ref = ObjectRef(api_version="v1", kind="ConfigMap", namespace="checklist", name="cm")
    live = await cluster.objects.get(ref)
    assert live is not None and manifests.is_owned_by(live, AGENT)
    await cluster.objects.delete(ref)
    assert data(fake, "cm") is None


async def test_validation_failure_applies_nothing(
    fake: FakeKubeApiServer, cluster: KubeCluster, settings: Settings
) -> None:
    assert (
        await run(cluster, settings, deployment_object(configmap("cm", "key1", "value1")))
    ).success
    content = configmap("cm", "key1", "value2") + "---" + INVALID_POD
    outcome = await run(cluster, settings, deployment_object(content))
    assert not outcome.success
    assert "Validation failed for Pod 'Bad_Pod'" in (outcome.message or "")
    assert data(fake, "cm") == {"key1": "value1"}
    # Only dry runs reached the ConfigMap after the first reconcile.
    writes = fake.requests_matching("PATCH", "/configmaps/cm")
    assert ["dryRun" in write.params for write in writes] == [True, False, True]


async def test_validation_failure_keeps_a_new_namespace_until_the_stack_goes(
    fake: FakeKubeApiServer, cluster: KubeCluster, settings: Settings
) -> None:
    # Deviation from §20.4's rollback (issue 10, finding 7): deleting the namespace and
    # re-creating it on the retry meets it still Terminating on a real cluster. It is kept,
    # recorded as the agent's, and deleted with the stack.
    pod = INVALID_POD.replace("namespace: checklist", "namespace: brand-new")
    failing = deployment_object(NEW_NAMESPACE + "---" + pod)
    for _ in range(2):
        outcome = await run(cluster, settings, failing)
        assert not outcome.success
        assert fake.get("Namespace", "brand-new") is not None
    assert fake.requests_matching("DELETE", "/namespaces/brand-new") == []
    assert (await run(cluster, settings, deployment_object("", deletion=True))).success
    assert fake.get("Namespace", "brand-new") is None
    # A namespace that existed before is not the agent's to delete.
    pod = INVALID_POD
    outcome = await run(cluster, settings, deployment_object(NAMESPACE_ONLY + "---" + pod))
    assert not outcome.success
    assert (await run(cluster, settings, deployment_object("", deletion=True))).success
    assert fake.get("Namespace", "checklist") is not None


async def test_validation_names_every_failing_object(
    cluster: KubeCluster, settings: Settings
) -> None:
    content = INVALID_DEPLOYMENT + "---" + NONEXISTENT_KIND
    outcome = await run(cluster, settings, deployment_object(content))
    assert not outcome.success
    message = outcome.message or ""
    assert "Validation failed for Deployment 'Bad_Deployment': Invalid:" in message
    assert "Validation failed for NonexistentKind 'nothing'" in message


async def test_pruning_replaces_config_1_and_2_by_config_3(
    fake: FakeKubeApiServer, cluster: KubeCluster, settings: Settings
) -> None:
    both = configmap("config-1", "key1", "value1") + "---" + configmap("config-2", "key2", "value2")
    assert (await run(cluster, settings, deployment_object(both))).success
    third = configmap("config-3", "key3", "value3")
    assert (await run(cluster, settings, deployment_object(third))).success
    assert data(fake, "config-1") is None
    assert data(fake, "config-2") is None
    assert data(fake, "config-3") == {"key3": "value3"}


async def test_empty_desired_state_deletes_everything(
    fake: FakeKubeApiServer, cluster: KubeCluster, settings: Settings
) -> None:
    both = configmap("config-1", "key1", "value1") + "---" + configmap("config-2", "key2", "value2")
    assert (await run(cluster, settings, deployment_object(both))).success
    assert (await run(cluster, settings, deployment_object(""))).success
    assert data(fake, "config-1") is None
    assert data(fake, "config-2") is None


async def test_generic_apply_of_a_deployment(cluster: KubeCluster) -> None:
    applied = await cluster.objects.apply(BUSYBOX)
    live = await cluster.objects.get(applied.ref)
    assert live is not None
    assert (live["metadata"]["name"], live["metadata"]["namespace"]) == ("busybox", "checklist")


# --- §20.5 Object conversion --------------------------------------------------------------
# Owner check table: test_manifests.py::test_owner_check_needs_this_agents_id_in_the_annotation.

CONVERSION_NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns}\n"
CONVERSION_CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: ns}\n"
CONVERSION_DEPLOYMENT = (
    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: ns}\n"
)
CONVERSION_CRD = (
    "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
    "metadata: {name: widgets.example.com}\n"
)
REFERENCE_ANNOTATIONS = {
    manifests.STACK_ANNOTATION,
    manifests.CHECKSUM_ANNOTATION,
    manifests.DEPLOYMENT_OBJECT_ID_ANNOTATION,
    manifests.LAST_CONFIG_APPLIED_ANNOTATION,
    manifests.OWNER_ID_ANNOTATION,
}


def convert(*documents: str) -> list[manifests.Manifest]:
    """What the reconcile does before applying: parse, order, stamp."""
    obj = deployment_object("---\n".join(documents))
    return [
        manifests.stamp(
            manifest,
            stack_id=obj.stack_id,
            owner_id=AGENT,
            deployment_object_id=obj.id,
            checksum=obj.yaml_checksum,
        )
        for manifest in manifests.order_for_apply(manifests.parse(obj.yaml_content, YamlLimits()))
    ]


def kinds(converted: list[manifests.Manifest]) -> list[str]:
    return [manifest["kind"] for manifest in converted]


def test_one_namespace_carries_every_reference_annotation() -> None:
    [converted] = convert(CONVERSION_NAMESPACE)
    assert set(converted["metadata"]["annotations"]) >= REFERENCE_ANNOTATIONS


def test_namespace_first_and_all_annotated() -> None:
    converted = convert(CONVERSION_DEPLOYMENT, CONVERSION_CONFIGMAP, CONVERSION_NAMESPACE)
    assert kinds(converted)[0] == "Namespace"
    assert len(converted) == 3
    assert all(set(m["metadata"]["annotations"]) >= REFERENCE_ANNOTATIONS for m in converted)


def test_crd_before_configmap() -> None:
    assert kinds(convert(CONVERSION_CONFIGMAP, CONVERSION_CRD)) == [
        "CustomResourceDefinition",
        "ConfigMap",
    ]


def test_namespace_and_crd_lead() -> None:
    converted = convert(
        CONVERSION_DEPLOYMENT, CONVERSION_NAMESPACE, CONVERSION_CRD, CONVERSION_CONFIGMAP
    )
    assert len(converted) == 4
    assert set(kinds(converted)[:2]) == {"Namespace", "CustomResourceDefinition"}


def test_invalid_yaml_is_an_error_and_empty_content_is_nothing() -> None:
    with pytest.raises(ManifestError):
        convert("kind: [unclosed")
    assert convert("") == []
