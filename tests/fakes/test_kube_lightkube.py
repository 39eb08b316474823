"""The real lightkube client (generic resources, server-side apply) against the fake: proof
that the fake understands what a real client sends and answers what it expects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.kube_apiserver import FakeKubeApiServer

pytest.importorskip("lightkube")

from lightkube import ApiError, AsyncClient, Client, KubeConfig  # noqa: E402
from lightkube import operators as op  # noqa: E402
from lightkube.core.resource_registry import resource_registry  # noqa: E402
from lightkube.generic_resource import (  # noqa: E402
    Generic,
    create_global_resource,
    create_namespaced_resource,
)
from lightkube.models.meta_v1 import ObjectMeta  # noqa: E402
from lightkube.types import CascadeType  # noqa: E402

MANAGER = "brokkr-controller"
NAMESPACE = "brokkr-test"


@pytest.fixture
def clean_registry() -> Iterator[None]:
    """Generic resource classes live in a process-wide registry: leave it as we found it."""
    saved = dict(resource_registry._registry)
    yield
    resource_registry._registry.clear()
    resource_registry._registry.update(saved)


@pytest.fixture
def client(kube: FakeKubeApiServer, tmp_path: Path) -> Iterator[Client]:
    config = KubeConfig.from_file(kube.write_kubeconfig(tmp_path / "kubeconfig"))
    client = Client(config=config)
    yield client
    client.close()


def name_of(obj: Generic) -> str:
    assert obj.metadata is not None and obj.metadata.name is not None
    return obj.metadata.name


def _crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                }
            ],
        },
    }


@pytest.mark.usefixtures("clean_registry")
def test_generic_apply_list_conflict_delete(client: Client, kube: FakeKubeApiServer) -> None:
    namespace_type = create_global_resource("", "v1", "Namespace", "namespaces")
    configmap_type = create_namespaced_resource("", "v1", "ConfigMap", "configmaps")
    deployment_type = create_namespaced_resource("apps", "v1", "Deployment", "deployments")

    ns = client.apply(
        namespace_type(metadata=ObjectMeta(name=NAMESPACE)), field_manager=MANAGER, force=True
    )
    assert ns.metadata and ns.metadata.uid
    assert ns["status"] == {"phase": "Active"}

    labels = {"brokkr.io/stack-id": "s1"}
    cm = configmap_type(
        metadata=ObjectMeta(name="settings", namespace=NAMESPACE, labels=labels),
        data={"mode": "fast", "level": "3"},
    )
    first = client.apply(cm, field_manager=MANAGER, force=True)
    assert first["data"] == {"mode": "fast", "level": "3"}
    assert first.metadata and first.metadata.managedFields
    assert first.metadata.managedFields[0].manager == MANAGER
    assert first.metadata.managedFields[0].operation == "Apply"

    cm["data"] = {"mode": "slow"}
    second = client.apply(cm, field_manager=MANAGER, force=True)
    assert second["data"] == {"mode": "slow"}  # "level" no longer sent: removed
    assert first.metadata and first.metadata.resourceVersion
    assert second.metadata and second.metadata.resourceVersion
    assert int(second.metadata.resourceVersion) > int(first.metadata.resourceVersion)

    other = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": NAMESPACE},
        "data": {"mode": "manual"},
    }
    kube.apply(other, manager="kubectl-edit", force=True)
    with pytest.raises(ApiError) as raised:
        client.apply(cm, field_manager=MANAGER)
    assert raised.value.status.code == 409
    assert raised.value.status.reason == "Conflict"
    assert raised.value.status.message == (
        'Apply failed with 1 conflict: conflict with "kubectl-edit": .data.mode'
    )
    assert client.apply(cm, field_manager=MANAGER, force=True)["data"] == {"mode": "slow"}

    client.apply(
        configmap_type(metadata=ObjectMeta(name="other", namespace=NAMESPACE, labels={"x": "y"})),
        field_manager=MANAGER,
    )
    selected = client.list(configmap_type, namespace=NAMESPACE, labels={**labels})
    assert [name_of(o) for o in selected] == ["settings"]
    by_set = client.list(
        configmap_type, namespace="*", labels={"brokkr.io/stack-id": op.in_(["s1", "s2"])}
    )
    assert [name_of(o) for o in by_set] == ["settings"]
    not_labelled = client.list(
        configmap_type, namespace=NAMESPACE, labels={"brokkr.io/stack-id": op.not_exists()}
    )
    assert sorted(name_of(o) for o in not_labelled) == ["kube-root-ca.crt", "other"]

    deploy = deployment_type(
        metadata=ObjectMeta(name="web", namespace=NAMESPACE),
        spec={
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "main", "image": "nginx:1"}]},
            },
        },
    )
    applied = client.apply(deploy, field_manager=MANAGER, force=True)
    assert applied.metadata and applied.metadata.generation == 1

    client.delete(configmap_type, "settings", namespace=NAMESPACE)
    with pytest.raises(ApiError) as missing:
        client.get(configmap_type, "settings", namespace=NAMESPACE)
    assert missing.value.status.code == 404
    assert missing.value.status.reason == "NotFound"

    client.delete(deployment_type, "web", namespace=NAMESPACE, cascade=CascadeType.FOREGROUND)
    assert kube.objects("Deployment", NAMESPACE) == []
    client.delete(namespace_type, NAMESPACE)
    assert kube.get("Namespace", NAMESPACE) is None


@pytest.mark.usefixtures("clean_registry")
def test_crd_then_custom_resource(client: Client, kube: FakeKubeApiServer) -> None:
    crd_type = create_global_resource(
        "apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions"
    )
    client.apply(crd_type(**_crd()), field_manager=MANAGER, force=True)
    established = client.wait(crd_type, "widgets.example.com", for_conditions=["Established"])
    assert established["status"]["acceptedNames"]["kind"] == "Widget"
    [watch] = kube.requests_matching("GET", "watch=true")  # wait() watches the CRD
    assert "fieldSelector=metadata.name%3Dwidgets.example.com" in watch.query

    widget_type = create_namespaced_resource("example.com", "v1", "Widget", "widgets")
    widget = widget_type(metadata=ObjectMeta(name="w", namespace="default"), spec={"size": 2})
    created = client.apply(widget, field_manager=MANAGER, force=True)
    assert created["spec"] == {"size": 2}
    assert [name_of(w) for w in client.list(widget_type, namespace="*")] == ["w"]

    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        }
    )
    kube.set_pod_log("default", "p", "hello\nworld\n")
    assert list(client.log("p", namespace="default")) == ["hello\n", "world\n"]

    client.delete(crd_type, "widgets.example.com")
    assert kube.get("CustomResourceDefinition", "widgets.example.com") is None
    with pytest.raises(ApiError) as gone:
        client.get(widget_type, "w", namespace="default")
    assert gone.value.status.code == 404


@pytest.mark.usefixtures("clean_registry")
async def test_async_client(kube: FakeKubeApiServer, tmp_path: Path) -> None:
    config = KubeConfig.from_file(kube.write_kubeconfig(tmp_path / "kubeconfig"))
    client = AsyncClient(config=config, field_manager=MANAGER)
    try:
        configmap_type = create_namespaced_resource("", "v1", "ConfigMap", "configmaps")
        obj = configmap_type(metadata=ObjectMeta(name="a", namespace="default"), data={"k": "v"})
        applied = await client.apply(obj, force=True)
        assert applied["data"] == {"k": "v"}
        names = [name_of(o) async for o in client.list(configmap_type, namespace="default")]
        assert names == ["a", "kube-root-ca.crt"]
        kube.fail(method="GET", path_contains="/configmaps/a", status=500)
        with pytest.raises(ApiError) as failed:
            await client.get(configmap_type, "a", namespace="default")
        assert failed.value.status.reason == "InternalError"
    finally:
        await client.close()
