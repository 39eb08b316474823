"""Discovery documents, CRDs appearing and disappearing in them, broken discovery, auth."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.fakes.kube_apiserver import FakeKubeApiServer

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {
            "plural": "widgets",
            "singular": "widget",
            "kind": "Widget",
            "shortNames": ["wd"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object"}},
                "subresources": {"status": {}},
            },
            {
                "name": "v1beta1",
                "served": True,
                "storage": False,
                "schema": {"openAPIV3Schema": {"type": "object"}},
            },
        ],
    },
}
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"


async def test_api_versions(api: httpx.AsyncClient, kube: FakeKubeApiServer) -> None:
    response = await api.get("/api")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{kube.port}"}
        ],
    }


async def test_core_resource_list(api: httpx.AsyncClient) -> None:
    doc = (await api.get("/api/v1")).json()
    assert list(doc) == ["kind", "groupVersion", "resources"]  # no apiVersion for the core group
    assert doc["kind"] == "APIResourceList"
    assert doc["groupVersion"] == "v1"
    resources = {r["name"]: r for r in doc["resources"]}
    configmaps = resources["configmaps"]
    assert configmaps.pop("storageVersionHash")
    assert configmaps == {
        "name": "configmaps",
        "singularName": "configmap",
        "namespaced": True,
        "kind": "ConfigMap",
        "verbs": [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ],
        "shortNames": ["cm"],
    }
    assert resources["pods/log"] == {
        "name": "pods/log",
        "singularName": "",
        "namespaced": True,
        "kind": "Pod",
        "verbs": ["get"],
    }
    assert resources["namespaces"]["namespaced"] is False
    assert resources["nodes"]["namespaced"] is False
    expected = {"namespaces", "configmaps", "secrets", "services", "serviceaccounts", "pods"}
    assert expected | {"events", "nodes", "pods/status"} <= set(resources)
    assert [r["name"] for r in doc["resources"]] == sorted(resources)


async def test_group_list(api: httpx.AsyncClient) -> None:
    doc = (await api.get("/apis")).json()
    assert doc["kind"] == "APIGroupList"
    assert doc["apiVersion"] == "v1"
    groups = {g["name"]: g for g in doc["groups"]}
    assert groups["apps"] == {
        "name": "apps",
        "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
    }
    for name in (
        "batch",
        "rbac.authorization.k8s.io",
        "networking.k8s.io",
        "apiextensions.k8s.io",
    ):
        assert name in groups
    assert "" not in groups


async def test_group_and_group_version(api: httpx.AsyncClient) -> None:
    group = (await api.get("/apis/apps")).json()
    assert group["kind"] == "APIGroup"
    assert group["apiVersion"] == "v1"
    assert group["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}

    doc = (await api.get("/apis/apps/v1")).json()
    assert list(doc)[:3] == ["kind", "apiVersion", "groupVersion"]
    assert (doc["kind"], doc["apiVersion"], doc["groupVersion"]) == (
        "APIResourceList",
        "v1",
        "apps/v1",
    )
    names = {r["name"] for r in doc["resources"]}
    assert {"deployments", "deployments/status", "statefulsets", "daemonsets"} <= names

    rbac = (await api.get("/apis/rbac.authorization.k8s.io/v1")).json()
    scopes = {r["name"]: r["namespaced"] for r in rbac["resources"]}
    assert scopes == {
        "clusterrolebindings": False,
        "clusterroles": False,
        "rolebindings": True,
        "roles": True,
    }

    for path in ("/apis/nope.example.com", "/apis/apps/v2", "/apis/nope.example.com/v1", "/api/v2"):
        response = await api.get(path)
        assert response.status_code == 404, path
        assert response.json() == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "the server could not find the requested resource",
            "reason": "NotFound",
            "details": {},
            "code": 404,
        }


async def test_crd_lifecycle(api: httpx.AsyncClient) -> None:
    created = await api.post(CRDS, json=WIDGET_CRD)
    assert created.status_code == 201
    # Like a real server, the create response precedes the CRD's establishment...
    assert not created.json()["status"].get("conditions")
    # ... which the next request sees.
    crd = (await api.get(f"{CRDS}/widgets.example.com")).json()
    conditions = {c["type"]: c for c in crd["status"]["conditions"]}
    assert conditions["Established"]["status"] == "True"
    assert conditions["NamesAccepted"]["status"] == "True"
    assert crd["status"]["acceptedNames"]["kind"] == "Widget"
    assert crd["status"]["storedVersions"] == ["v1"]

    groups = {g["name"]: g for g in (await api.get("/apis")).json()["groups"]}
    assert groups["example.com"]["preferredVersion"] == {
        "groupVersion": "example.com/v1",
        "version": "v1",
    }
    assert [v["version"] for v in groups["example.com"]["versions"]] == ["v1", "v1beta1"]
    resources = (await api.get("/apis/example.com/v1")).json()["resources"]
    assert [(r["name"], r["kind"], r["namespaced"]) for r in resources] == [
        ("widgets", "Widget", True),
        ("widgets/status", "Widget", True),
    ]
    assert resources[0]["shortNames"] == ["wd"]

    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}}
    widget["spec"] = {"size": 3}
    assert (await api.post(WIDGETS, json=widget)).status_code == 201
    listed = (await api.get(WIDGETS)).json()
    assert listed["kind"] == "WidgetList"
    assert listed["items"][0]["kind"] == "Widget"  # custom resources keep kind in list items
    assert listed["items"][0]["metadata"]["generation"] == 1
    beta = (await api.get("/apis/example.com/v1beta1/namespaces/default/widgets/w1")).json()
    assert beta["apiVersion"] == "example.com/v1beta1"
    assert beta["spec"] == {"size": 3}

    strategic = await api.patch(
        f"{WIDGETS}/w1",
        content=b'{"spec":{"size":4}}',
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    assert strategic.status_code == 415
    assert strategic.json()["reason"] == "UnsupportedMediaType"

    deleted = await api.delete(f"{CRDS}/widgets.example.com")
    assert deleted.status_code == 200
    assert deleted.json()["kind"] == "CustomResourceDefinition"
    assert "example.com" not in {g["name"] for g in (await api.get("/apis")).json()["groups"]}
    assert (await api.get(WIDGETS)).status_code == 404
    assert (await api.get("/apis/example.com/v1")).status_code == 404


async def test_crd_establish_delay() -> None:
    async with FakeKubeApiServer(crd_establish_delay=0.3) as kube:
        headers = {"Authorization": f"Bearer {kube.token}"}
        async with httpx.AsyncClient(base_url=kube.url, headers=headers) as api:
            assert (await api.post(CRDS, json=WIDGET_CRD)).status_code == 201
            widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "a"}}
            early = await api.post(WIDGETS, json=widget)
            assert early.status_code == 404
            assert (await api.get("/apis/example.com/v1")).status_code == 404
            await asyncio.sleep(0.35)
            assert (await api.get("/apis/example.com/v1")).status_code == 200
            assert (await api.post(WIDGETS, json=widget)).status_code == 201


async def test_invalid_crd(api: httpx.AsyncClient) -> None:
    crd = {**WIDGET_CRD, "metadata": {"name": "gadgets.example.com"}}
    response = await api.post(CRDS, json=crd)
    assert response.status_code == 422
    body = response.json()
    assert body["reason"] == "Invalid"
    assert body["message"] == (
        'CustomResourceDefinition.apiextensions.k8s.io "gadgets.example.com" is invalid: '
        'metadata.name: Invalid value: "gadgets.example.com": must be '
        'spec.names.plural+"."+spec.group'
    )
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "gadgets.example.com": must be '
            'spec.names.plural+"."+spec.group',
            "field": "metadata.name",
        }
    ]


async def test_break_discovery(api: httpx.AsyncClient, kube: FakeKubeApiServer) -> None:
    kube.break_discovery("apps/v1")
    kube.break_discovery("v1")
    broken = await api.get("/apis/apps/v1")
    assert broken.status_code == 503
    assert broken.json()["reason"] == "ServiceUnavailable"
    assert (await api.get("/api/v1")).status_code == 503
    assert "apps" in {g["name"] for g in (await api.get("/apis")).json()["groups"]}
    assert (await api.get("/apis/batch/v1")).status_code == 200
    kube.restore_discovery("apps/v1")
    assert (await api.get("/apis/apps/v1")).status_code == 200
    kube.clear_faults()
    assert (await api.get("/api/v1")).status_code == 200


async def test_version_is_public_and_the_rest_needs_the_token(kube: FakeKubeApiServer) -> None:
    async with httpx.AsyncClient(base_url=kube.url) as anonymous:
        version = await anonymous.get("/version")
        assert version.status_code == 200
        assert version.json()["major"] == "1"
        assert (await anonymous.get("/healthz")).text == "ok"
        denied = await anonymous.get("/api/v1/namespaces")
        assert denied.status_code == 401
        assert denied.json() == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Unauthorized",
            "reason": "Unauthorized",
            "code": 401,
        }
        wrong = await anonymous.get("/api/v1/namespaces", headers={"Authorization": "Bearer no"})
        assert wrong.status_code == 401


async def test_watch_sees_a_crd_become_established() -> None:
    async with FakeKubeApiServer(crd_establish_delay=0.2) as kube:
        headers = {"Authorization": f"Bearer {kube.token}"}
        async with httpx.AsyncClient(base_url=kube.url, headers=headers) as api:
            await api.post(CRDS, json=WIDGET_CRD)
            params = {
                "watch": "true",
                "fieldSelector": "metadata.name=widgets.example.com",
                "timeoutSeconds": "3",
            }
            async with api.stream("GET", CRDS, params=params) as stream:
                async for line in stream.aiter_lines():
                    event = json.loads(line)
                    conditions = event["object"]["status"]["conditions"]
                    if any(c["type"] == "Established" for c in conditions):
                        break
            assert event["type"] == "MODIFIED"


async def test_cluster_scoped_custom_resources(api: httpx.AsyncClient) -> None:
    crd = json.loads(json.dumps(WIDGET_CRD))
    crd["metadata"]["name"] = "gizmos.example.org"
    crd["spec"].update(
        group="example.org",
        scope="Cluster",
        names={"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"},
    )
    assert (await api.post(CRDS, json=crd)).status_code == 201
    gizmo = {"apiVersion": "example.org/v1", "kind": "Gizmo", "metadata": {"name": "g"}}
    gizmo["spec"] = {"nothing": None}  # custom resources keep nulls
    created = await api.post("/apis/example.org/v1/gizmos", json=gizmo)
    assert created.status_code == 201
    assert created.json()["spec"] == {"nothing": None}
    assert "namespace" not in created.json()["metadata"]
    wrong = await api.post("/apis/example.org/v1/namespaces/default/gizmos", json=gizmo)
    assert wrong.status_code == 404
    resources = (await api.get("/apis/example.org/v1")).json()["resources"]
    assert resources[0]["namespaced"] is False
