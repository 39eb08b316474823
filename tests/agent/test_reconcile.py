"""The reconcile against the fake kube-apiserver over real HTTP: converge, prune, delete a stack,
correct drift, fail with the API server's reason, retry a 500, survive a restart, and fail a
hostile (billion laughs) object alone, before stamping, while the next one applies. A success
says whether it changed the cluster (new object, drift corrected, unchanged re-apply); a CRD that
never settles fails with its conditions while another stack applies meanwhile."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from textwrap import indent
from typing import Any
from uuid import UUID, uuid4

import msgspec
import pytest

from brokkr.agent import kube, manifests, reconcile
from brokkr.agent.kube import KubeCluster
from brokkr.agent.outcomes import Outcome
from brokkr.agent.settings import AgentSection, Settings
from brokkr.common import wire
from tests.common.test_yaml_guard import laughs
from tests.fakes.kube_apiserver import FakeKubeApiServer
from tests.fakes.widgets import CRD, WIDGET

AGENT = UUID("00000000-0000-0000-0000-00000000a9e1")
OTHER_AGENT = UUID("00000000-0000-0000-0000-00000000a9e2")
STACK = UUID("00000000-0000-0000-0000-0000000057a1")

NAMESPACE = """
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: blue}}
"""
CONFIGMAP = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
  labels: {app: shop}
  annotations: {note: mine}
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
# Custom resource first: ordering, not document order, must put the CRD before it.
FULL = "---".join([WIDGET, DEPLOYMENT, CONFIGMAP, CRD, NAMESPACE])
WITHOUT_CONFIGMAP = "---".join([WIDGET, DEPLOYMENT, CRD, NAMESPACE])


def settings_for(kubeconfig: Path) -> Settings:
    agent = AgentSection(
        pak="pak",
        agent_name="agent",
        cluster_name="cluster",
        kubeconfig_path=str(kubeconfig),
        backoff_min=0.01,
        backoff_max=0.05,
    )
    return Settings(agent=agent)


_sequence = iter(range(1, 1_000_000))


def deployment_object(
    content: str, *, stack: UUID = STACK, deletion: bool = False
) -> wire.DeploymentObject:
    now = datetime.now(UTC)
    return wire.DeploymentObject(
        id=uuid4(),
        created_at=now,
        updated_at=now,
        deleted_at=None,
        sequence_id=next(_sequence),
        stack_id=stack,
        yaml_content=content,
        yaml_checksum=hashlib.sha256(content.encode()).hexdigest(),
        submitted_at=now,
        is_deletion_marker=deletion,
    )


@pytest.fixture
async def settings(fake: FakeKubeApiServer, tmp_path: Path) -> Settings:
    return settings_for(fake.write_kubeconfig(tmp_path / "kubeconfig"))


async def run(
    cluster: KubeCluster, settings: Settings, obj: wire.DeploymentObject, owner: UUID = AGENT
) -> Outcome:
    [outcome] = await reconcile.Reconciler(settings, cluster)([obj], agent_id=owner)
    assert outcome.deployment_object_id == obj.id
    return outcome


def metadata(obj: dict[str, Any] | None) -> dict[str, Any]:
    assert obj is not None
    meta: dict[str, Any] = obj["metadata"]
    return meta


async def test_converges_in_one_reconcile(
    fake: FakeKubeApiServer, cluster: KubeCluster, settings: Settings
) -> None:
    obj = deployment_object(FULL)
    outcome = await run(cluster, settings, obj)
    assert outcome.success, outcome.message
    assert fake.get("CustomResourceDefinition", "widgets.example.com") is not None
    assert fake.get("Widget", "w1", "shop")["spec"] == {"size": 3}  # type: ignore[index]
    assert fake.get("Deployment", "web", "shop") is not None
    assert metadata(fake.get("Namespace", "shop"))["labels"]["team"] == "blue"
    meta = metadata(fake.get("ConfigMap", "settings", "shop"))
    assert meta["labels"] == {"app": "shop", manifests.STACK_ID_LABEL: str(STACK)}
    annotations = meta["annotations"]
    last_config = json.loads(annotations.pop(manifests.LAST_CONFIG_APPLIED_ANNOTATION))
    assert last_config["metadata"]["annotations"] == {"note": "mine"}
    assert annotations == {
        "note": "mine",
        manifests.STACK_ANNOTATION: str(STACK),
        manifests.CHECKSUM_ANNOTATION: obj.yaml_checksum,
        manifests.DEPLOYMENT_OBJECT_ID_ANNOTATION: str(obj.id),
        manifests.OWNER_ID_ANNOTATION: str(AGENT),
    }
    patches = fake.requests_matching("PATCH", "/configmaps/settings")
    assert "fieldManager=brokkr-controller" in patches[0].query
    assert "force=true" in patches[0].query


async def test_update_prunes_only_what_the_stack_dropped(
    fake: FakeKubeApiServer, cluster: KubeCluster, settings: Settings
) -> None:
    assert (await run(cluster, settings, deployment_object(FULL))).success
    other_stack = CONFIGMAP.replace("name: settings", "name: other-stack")
    assert (await run(cluster, settings, deployment_object(other_stack, stack=uuid4()))).success
    other_agent = CONFIGMAP.replace("name: settings", "name: other-agent")
    assert (await run(cluster, settings, deployment_object(other_agent), OTHER_AGENT)).success
    fake.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "unrelated", "namespace": "shop"},
        }
    )

    outcome = await run(cluster, settings, deployment_object(WITHOUT_CONFIGMAP))
    assert outcome.success, outcome.message
    names = set(fake.names("ConfigMap", "shop"))
    assert "settings" not in names
    assert {"other-stack", "other-agent", "unrelated"} <= names
    assert fake.get("Deployment", "web", "shop") is not None
    assert fake.get("Widget", "w1", "shop") is not None


async def test_a_stack_another_agent_took_over_is_not_pruned(
    fake: FakeKubeApiServer, cluster: KubeCluster, settings: Settings
) -> None:
    assert (await run(cluster, settings, deployment_object(FULL))).success
    assert (await run(cluster, settings, deployment_object(CONFIGMAP), OTHER_AGENT)).success
    assert (await run(cluster, settings, deployment_object(WITHOUT_CONFIGMAP))).success
    assert fake.get("ConfigMap", "settings", "shop") is not None


async def test_deletion_marker_removes_the_stack(
    fake: FakeKubeApiServer, cluster: KubeCluster, settings: Settings
) -> None:
    assert (await run(cluster, settings, deployment_object(FULL))).success
    outcome = await run(cluster, settings, deployment_object("", deletion=True))
    assert outcome.success, outcome.message
    assert fake.get("Namespace", "shop") is None
    # The CRD is gone, and with it the Widget kind and its objects.
    assert fake.get("CustomResourceDefinition", "widgets.example.com") is None
    assert not [n for n in fake.names("ConfigMap", "brokkr-system") if n.startswith("brokkr-")]
    # Again: nothing left to delete is still a success.
    assert (await run(cluster, settings, deployment_object("", deletion=True))).success


async def test_deletion_marker_keeps_a_namespace_the_agent_did_not_create(
    fake: FakeKubeApiServer, cluster: KubeCluster, settings: Settings
) -> None:
    fake.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    assert (await run(cluster, settings, deployment_object(NAMESPACE + "---" + CONFIGMAP))).success
    assert (await run(cluster, settings, deployment_object("", deletion=True))).success
    assert fake.get("Namespace", "shop") is not None
    assert fake.get("ConfigMap", "settings", "shop") is None


async def test_drift_is_corrected_by_reconciling_again(
    fake: FakeKubeApiServer, cluster: KubeCluster, settings: Settings
) -> None:
    obj = deployment_object(FULL)
    assert (await run(cluster, settings, obj)).success
    edited = fake.get("ConfigMap", "settings", "shop")
    assert edited is not None
    edited["data"] = {"key": "tampered"}
    fake.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": edited["metadata"] | {"managedFields": None},
            "data": {"key": "tampered"},
        },
        manager="kubectl",
        force=True,
    )
    fake.delete("Deployment", "web", "shop")
    assert (await run(cluster, settings, obj)).success
    assert fake.get("ConfigMap", "settings", "shop")["data"] == {"key": "value"}  # type: ignore[index]
    assert fake.get("Deployment", "web", "shop") is not None


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("kind: [unclosed", "invalid YAML"),
        ("apiVersion: v1\nkind: Gadget\nmetadata: {name: g}\n", "Gadget"),
        (NAMESPACE + "---" + CONFIGMAP.replace("name: settings", "name: Not_Valid"), "Invalid"),
    ],
)
async def test_a_bad_manifest_fails_with_the_reason(
    cluster: KubeCluster, settings: Settings, content: str, expected: str
) -> None:
    outcome = await run(cluster, settings, deployment_object(content))
    assert not outcome.success
    assert outcome.message is not None
    assert expected in outcome.message


async def test_a_server_error_is_retried(
    fake: FakeKubeApiServer, cluster: KubeCluster, settings: Settings
) -> None:
    fake.fail("PATCH", "/configmaps/settings", status=500, times=2)
    outcome = await run(cluster, settings, deployment_object(NAMESPACE + "---" + CONFIGMAP))
    assert outcome.success, outcome.message
    patches = fake.requests_matching("PATCH", "/configmaps/settings")
    # The two failed dry runs (validation), the passing one, then the apply.
    assert ["dryRun" in patch.params for patch in patches] == [True, True, True, False]


async def test_a_persistent_server_error_fails(
    fake: FakeKubeApiServer, cluster: KubeCluster, settings: Settings
) -> None:
    fake.fail("PATCH", "/configmaps/settings", status=500, times=None)
    outcome = await run(cluster, settings, deployment_object(NAMESPACE + "---" + CONFIGMAP))
    assert not outcome.success
    assert "InternalError" in (outcome.message or "")


async def test_inventories_survive_a_restart(fake: FakeKubeApiServer, settings: Settings) -> None:
    first = await kube.connect(settings)
    try:
        assert (await run(first, settings, deployment_object(FULL))).success
    finally:
        await first.aclose()
    second = await kube.connect(settings)
    try:
        assert (await run(second, settings, deployment_object(WITHOUT_CONFIGMAP))).success
        [stored] = await second.inventories.list(owner_id=AGENT)
    finally:
        await second.aclose()
    assert fake.get("ConfigMap", "settings", "shop") is None
    assert stored.stack_id == STACK
    assert stored.created_namespaces == ("shop",)


async def test_a_hostile_object_fails_alone_before_it_is_stamped(
    fake: FakeKubeApiServer, cluster: KubeCluster, settings: Settings
) -> None:
    # A million nodes once expanded: stamping copied them into an annotation (39 MB in the trial).
    hostile = deployment_object(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol, namespace: shop}\ndata:\n"
        + indent(laughs(6, width=10), "  "),
        stack=uuid4(),
    )
    good = deployment_object(NAMESPACE + "---" + CONFIGMAP)
    failed, applied = await reconcile.Reconciler(settings, cluster)([hostile, good], agent_id=AGENT)
    assert not failed.success
    assert failed.message is not None and "aliases expand" in failed.message
    assert applied.success, applied.message
    assert fake.get("ConfigMap", "lol", "shop") is None
    assert fake.get("ConfigMap", "settings", "shop") is not None


async def test_a_success_says_whether_it_changed_the_cluster(
    fake: FakeKubeApiServer, cluster: KubeCluster, settings: Settings
) -> None:
    reconciler = reconcile.Reconciler(settings, cluster)
    obj = deployment_object(NAMESPACE + "---" + CONFIGMAP + "---" + DEPLOYMENT)
    [first] = await reconciler([obj], agent_id=AGENT)
    assert (first.success, first.changed) == (True, True)
    assert first.message == "applied 3 object(s), pruned 0"
    [steady] = await reconciler([obj], agent_id=AGENT)
    assert (steady.success, steady.changed) == (True, False)
    fake.delete("Deployment", "web", "shop")
    [fixed] = await reconciler([obj], agent_id=AGENT)
    assert (fixed.success, fixed.changed) == (True, True)
    assert fixed.message == "drift corrected: Deployment shop/web"
    # A new process knows nothing of the last one: an unchanged cluster is still unchanged.
    [restarted] = await reconcile.Reconciler(settings, cluster)([obj], agent_id=AGENT)
    assert (restarted.success, restarted.changed) == (True, False)


async def test_a_crd_that_never_settles_fails_while_another_stack_applies(
    fake: FakeKubeApiServer, settings: Settings
) -> None:
    fake.cluster.crd_establish_delay = 3600.0
    agent = msgspec.structs.replace(settings.agent, crd_establish_timeout=1.0)
    impatient = msgspec.structs.replace(settings, agent=agent)
    patient = await kube.connect(impatient)
    try:
        stuck = deployment_object(CRD, stack=uuid4())
        other = deployment_object(NAMESPACE + "---" + CONFIGMAP)
        failed, applied = await reconcile.Reconciler(impatient, patient)(
            [stuck, other], agent_id=AGENT
        )
    finally:
        await patient.aclose()
    assert not failed.success
    assert failed.message is not None
    assert "CRDNotEstablished" in failed.message and "widgets.example.com" in failed.message
    assert applied.success, applied.message
    # The other stack's ConfigMap went in while the CRD was still being waited for.
    log = [(r.method, r.path) for r in fake.requests_matching()]
    configmap_applied = log.index(("PATCH", "/api/v1/namespaces/shop/configmaps/settings"))
    crd = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com"
    last_crd_check = max(i for i, entry in enumerate(log) if entry == ("GET", crd))
    assert configmap_applied < last_crd_check
