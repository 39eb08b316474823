"""The fake kube-apiserver over real HTTP: CRUD, lists and selectors, resourceVersions, URL
scopes, Status bodies, deletion and garbage collection, pods/log, events, watch."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.fakes.kube_apiserver import FakeKubeApiServer

Obj = dict[str, Any]
CMS = "/api/v1/namespaces/default/configmaps"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"


def configmap(name: str, labels: dict[str, str] | None = None, **data: str) -> Obj:
    meta: Obj = {"name": name}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def deployment(name: str, image: str = "nginx:1", replicas: int = 1) -> Obj:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
        },
    }


def status(code: int, reason: str, message: str, details: Obj | None = None) -> Obj:
    body: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


async def test_create_get_list(api: httpx.AsyncClient) -> None:
    created = await api.post(f"{CMS}?fieldManager=tester", json=configmap("a", k="v"))
    assert created.status_code == 201
    obj = created.json()
    meta = obj["metadata"]
    assert (obj["apiVersion"], obj["kind"], meta["name"], meta["namespace"]) == (
        "v1",
        "ConfigMap",
        "a",
        "default",
    )
    assert len(meta["uid"]) == 36
    assert meta["resourceVersion"].isdigit()
    assert meta["creationTimestamp"].endswith("Z")
    assert "generation" not in meta  # ConfigMaps have none
    [entry] = meta["managedFields"]
    assert entry["manager"] == "tester"
    assert entry["operation"] == "Update"
    assert entry["fieldsV1"] == {"f:data": {"f:k": {}}}

    fetched = await api.get(f"{CMS}/a")
    assert fetched.json() == obj

    listing = (await api.get(CMS)).json()
    assert listing["kind"] == "ConfigMapList"
    assert listing["apiVersion"] == "v1"
    assert int(listing["metadata"]["resourceVersion"]) >= int(meta["resourceVersion"])
    names = [item["metadata"]["name"] for item in listing["items"]]
    assert names == ["a", "kube-root-ca.crt"]
    assert "kind" not in listing["items"][0]  # built-in list items carry no kind/apiVersion


async def test_default_field_manager_is_the_user_agent(api: httpx.AsyncClient) -> None:
    created = (await api.post(CMS, json=configmap("a", k="v"))).json()
    assert created["metadata"]["managedFields"][0]["manager"] == "fake-tests"


async def test_resource_versions_increase_globally(api: httpx.AsyncClient) -> None:
    versions = []
    for name in ("a", "b"):
        versions.append((await api.post(CMS, json=configmap(name))).json())
    versions.append((await api.post(DEPLOYS, json=deployment("web"))).json())
    versions.append((await api.put(f"{CMS}/a", json=configmap("a", k="1"))).json())
    numbers = [int(v["metadata"]["resourceVersion"]) for v in versions]
    assert numbers == sorted(set(numbers))
    list_rv = (await api.get("/apis/apps/v1/deployments")).json()["metadata"]["resourceVersion"]
    assert int(list_rv) == numbers[-1]


async def test_already_exists_and_not_found(api: httpx.AsyncClient) -> None:
    await api.post(CMS, json=configmap("a"))
    again = await api.post(CMS, json=configmap("a"))
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/json"
    assert again.json() == status(
        409,
        "AlreadyExists",
        'configmaps "a" already exists',
        {"name": "a", "kind": "configmaps"},
    )
    missing = await api.get(f"{DEPLOYS}/nope")
    assert missing.status_code == 404
    assert missing.json() == status(
        404,
        "NotFound",
        'deployments.apps "nope" not found',
        {"name": "nope", "group": "apps", "kind": "deployments"},
    )
    for method in ("PUT", "DELETE"):
        body = json.dumps(configmap("nope")).encode() if method == "PUT" else None
        response = await api.request(method, f"{CMS}/nope", content=body)
        assert response.status_code == 404, method
        assert response.json()["reason"] == "NotFound"


async def test_put_resource_version_conflict(api: httpx.AsyncClient) -> None:
    created = (await api.post(CMS, json=configmap("a", k="1"))).json()
    first = {**created, "data": {"k": "2"}}
    updated = await api.put(f"{CMS}/a", json=first)
    assert updated.status_code == 200
    assert int(updated.json()["metadata"]["resourceVersion"]) > int(
        created["metadata"]["resourceVersion"]
    )
    stale = await api.put(f"{CMS}/a", json={**created, "data": {"k": "3"}})
    assert stale.status_code == 409
    assert stale.json() == status(
        409,
        "Conflict",
        'Operation cannot be fulfilled on configmaps "a": the object has been modified; please '
        "apply your changes to the latest version and try again",
        {"name": "a", "kind": "configmaps"},
    )
    unconditional = configmap("a", k="4")  # no resourceVersion: last write wins
    assert (await api.put(f"{CMS}/a", json=unconditional)).json()["data"] == {"k": "4"}

    renamed = await api.put(f"{CMS}/a", json=configmap("b"))
    assert renamed.status_code == 400
    assert renamed.json() == status(
        400, "BadRequest", "the name of the object (b) does not match the name on the URL (a)"
    )
    wrong_kind = await api.put(f"{CMS}/a", json={**configmap("a"), "kind": "Secret"})
    assert wrong_kind.status_code == 400


async def test_generation_and_status_subresource(api: httpx.AsyncClient) -> None:
    created = (await api.post(DEPLOYS, json=deployment("web"))).json()
    assert created["metadata"]["generation"] == 1
    labelled = {**created, "metadata": {**created["metadata"], "labels": {"x": "y"}}}
    labelled = (await api.put(f"{DEPLOYS}/web", json=labelled)).json()
    assert labelled["metadata"]["generation"] == 1
    scaled = {**labelled, "spec": {**labelled["spec"], "replicas": 3}, "status": {"replicas": 9}}
    scaled = (await api.put(f"{DEPLOYS}/web", json=scaled)).json()
    assert scaled["metadata"]["generation"] == 2
    assert "replicas" not in scaled.get("status", {})  # status belongs to the subresource
    with_status = {**scaled, "status": {"readyReplicas": 3}}
    after = (await api.put(f"{DEPLOYS}/web/status", json=with_status)).json()
    assert after["status"] == {"readyReplicas": 3}
    assert after["metadata"]["generation"] == 2
    status_get = (await api.get(f"{DEPLOYS}/web/status")).json()
    assert status_get["status"] == {"readyReplicas": 3}
    assert (await api.get(f"{CMS}/x/status")).status_code == 404  # no such subresource


async def test_url_scope(api: httpx.AsyncClient) -> None:
    assert (await api.get("/api/v1/nodes/fake-node")).status_code == 200
    wrong = await api.get("/api/v1/namespaces/default/nodes/fake-node")
    assert wrong.status_code == 404
    assert wrong.json()["message"] == "the server could not find the requested resource"
    assert (await api.get("/api/v1/configmaps/kube-root-ca.crt")).status_code == 404
    assert await api.get("/apis/rbac.authorization.k8s.io/v1/namespaces/default/clusterroles")
    not_allowed = await api.post("/api/v1/configmaps", json=configmap("a"))
    assert not_allowed.status_code == 405
    assert not_allowed.json() == status(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
        {},
    )
    assert (await api.post(f"{CMS}/a", json=configmap("a"))).status_code == 405
    everywhere = (await api.get("/api/v1/configmaps")).json()
    namespaces = {item["metadata"]["namespace"] for item in everywhere["items"]}
    assert {"default", "kube-system", "kube-public"} <= namespaces
    assert (await api.get("/api/v1/namespaces/default/nope")).status_code == 404


async def test_writes_into_a_missing_namespace(api: httpx.AsyncClient) -> None:
    expected = status(
        404, "NotFound", 'namespaces "ghost" not found', {"name": "ghost", "kind": "namespaces"}
    )
    created = await api.post("/api/v1/namespaces/ghost/configmaps", json=configmap("a"))
    assert created.status_code == 404
    assert created.json() == expected
    applied = await api.patch(
        "/api/v1/namespaces/ghost/configmaps/a?fieldManager=m",
        content=json.dumps(configmap("a")),
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    assert applied.status_code == 404
    assert applied.json() == expected


async def test_namespaces(api: httpx.AsyncClient, kube: FakeKubeApiServer) -> None:
    created = await api.post("/api/v1/namespaces", json={"metadata": {"name": "team"}})
    assert created.status_code == 201
    ns = created.json()
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team"}
    assert ns["status"] == {"phase": "Active"}
    assert kube.names("ConfigMap", "team") == ["kube-root-ca.crt"]
    assert kube.names("ServiceAccount", "team") == ["default"]
    await api.post("/api/v1/namespaces/team/configmaps", json=configmap("a"))
    deleted = await api.delete("/api/v1/namespaces/team")
    assert deleted.status_code == 200
    assert deleted.json()["status"]["phase"] == "Terminating"
    assert deleted.json()["metadata"]["deletionTimestamp"]
    assert kube.objects("ConfigMap", "team") == []
    assert (await api.get("/api/v1/namespaces/team")).status_code == 404


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", ["both", "web-only"]),
        ("app==web", ["both", "web-only"]),
        ("app!=web", ["db", "none"]),
        ("tier in (front,back)", ["both", "db"]),
        ("tier notin (front)", ["db", "none", "web-only"]),
        ("tier", ["both", "db"]),
        ("!tier", ["none", "web-only"]),
        ("app=web,tier=front", ["both"]),
        ("app in (web, db),!tier", ["web-only"]),
        ("", ["both", "db", "none", "web-only"]),
    ],
)
async def test_label_selectors(api: httpx.AsyncClient, selector: str, expected: list[str]) -> None:
    for name, labels in (
        ("both", {"app": "web", "tier": "front"}),
        ("web-only", {"app": "web"}),
        ("db", {"app": "db", "tier": "back"}),
        ("none", {"other": "x"}),
    ):
        await api.post(CMS, json=configmap(name, labels))
    listing = await api.get(CMS, params={"labelSelector": selector})
    assert listing.status_code == 200
    names = [i["metadata"]["name"] for i in listing.json()["items"]]
    assert [n for n in names if n != "kube-root-ca.crt"] == expected


async def test_bad_selectors(api: httpx.AsyncClient) -> None:
    for params in (
        {"labelSelector": "app in ()"},
        {"labelSelector": "a b c"},
        {"fieldSelector": "spec.whatever=1"},
    ):
        response = await api.get(CMS, params=params)
        assert response.status_code == 400, params
        assert response.json()["reason"] == "BadRequest"


async def test_field_selector_and_pagination(api: httpx.AsyncClient) -> None:
    for name in ("a", "b", "c", "d"):
        await api.post(CMS, json=configmap(name))
    by_name = await api.get(CMS, params={"fieldSelector": "metadata.name=b"})
    assert [i["metadata"]["name"] for i in by_name.json()["items"]] == ["b"]
    not_b = await api.get("/api/v1/configmaps", params={"fieldSelector": "metadata.name!=b"})
    assert "b" not in [i["metadata"]["name"] for i in not_b.json()["items"]]

    page = (await api.get(CMS, params={"limit": "2"})).json()
    assert [i["metadata"]["name"] for i in page["items"]] == ["a", "b"]
    assert page["metadata"]["remainingItemCount"] == 3
    rest = await api.get(CMS, params={"limit": "2", "continue": page["metadata"]["continue"]})
    rest_page = rest.json()
    assert [i["metadata"]["name"] for i in rest_page["items"]] == ["c", "d"]
    last = await api.get(CMS, params={"limit": "2", "continue": rest_page["metadata"]["continue"]})
    assert [i["metadata"]["name"] for i in last.json()["items"]] == ["kube-root-ca.crt"]
    assert "continue" not in last.json()["metadata"]


async def test_validation(api: httpx.AsyncClient) -> None:
    bad_name = await api.post(CMS, json=configmap("Not_Valid"))
    assert bad_name.status_code == 422
    body = bad_name.json()
    assert body["reason"] == "Invalid"
    assert body["message"].startswith(
        'ConfigMap "Not_Valid" is invalid: metadata.name: Invalid value: "Not_Valid": a lowercase '
        "RFC 1123 subdomain"
    )
    assert body["details"]["kind"] == "ConfigMap"
    assert body["details"]["causes"][0]["field"] == "metadata.name"

    nameless = await api.post(CMS, json={"metadata": {}})
    assert nameless.status_code == 422
    assert nameless.json()["details"]["causes"] == [
        {
            "reason": "FieldValueRequired",
            "message": "Required value: name or generateName is required",
            "field": "metadata.name",
        }
    ]
    generated = await api.post(CMS, json={"metadata": {"generateName": "gen-"}})
    assert generated.status_code == 201
    assert generated.json()["metadata"]["name"].startswith("gen-")

    long_label = await api.post(CMS, json=configmap("a", {"digest": "x" * 64}))
    assert long_label.status_code == 422
    assert "must be no more than 63 characters" in long_label.json()["message"]
    numeric_label = await api.post(CMS, json={"metadata": {"name": "a", "labels": {"n": 1}}})
    assert numeric_label.status_code == 400

    service = {"metadata": {"name": "1svc"}, "spec": {"ports": [{"port": 80}]}}
    bad_service = await api.post("/api/v1/namespaces/default/services", json=service)
    assert bad_service.status_code == 422
    assert "DNS-1035" in bad_service.json()["message"]

    with_rv = await api.post(CMS, json={"metadata": {"name": "rv", "resourceVersion": "5"}})
    assert with_rv.status_code == 500
    assert with_rv.json()["reason"] == "InternalError"

    created = (await api.post(DEPLOYS, json=deployment("web"))).json()
    created["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    created["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    immutable = await api.put(f"{DEPLOYS}/web", json=created)
    assert immutable.status_code == 422
    assert immutable.json()["message"].startswith(
        'Deployment.apps "web" is invalid: spec.selector: Invalid value: '
    )
    assert immutable.json()["message"].endswith("field is immutable")
    assert immutable.json()["details"]["group"] == "apps"


async def test_defaults(api: httpx.AsyncClient) -> None:
    secret = {"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}}
    created = (await api.post("/api/v1/namespaces/default/secrets", json=secret)).json()
    assert created["type"] == "Opaque"
    assert created["data"] == {"password": "aHVudGVyMg=="}
    assert "stringData" not in created
    bad = {"metadata": {"name": "t"}, "data": {"x": "not base64!"}}
    assert (await api.post("/api/v1/namespaces/default/secrets", json=bad)).status_code == 400

    service = {"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}]}}
    svc = (await api.post("/api/v1/namespaces/default/services", json=service)).json()
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["clusterIP"].startswith("10.96.")
    assert svc["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]

    deploy = deployment("web")
    del deploy["spec"]["replicas"]
    assert (await api.post(DEPLOYS, json=deploy)).json()["spec"]["replicas"] == 1


async def test_merge_and_json_patches(api: httpx.AsyncClient) -> None:
    await api.post(CMS, json=configmap("a", k="1", drop="me"))
    merged = await api.patch(
        f"{CMS}/a?fieldManager=patcher",
        content=json.dumps({"data": {"k": "2", "drop": None}}),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert merged.status_code == 200
    assert merged.json()["data"] == {"k": "2"}
    managers = {e["manager"]: e for e in merged.json()["metadata"]["managedFields"]}
    assert managers["patcher"]["fieldsV1"] == {"f:data": {"f:k": {}}}

    patched = await api.patch(
        f"{CMS}/a",
        content=json.dumps([{"op": "add", "path": "/data/new", "value": "x"}]),
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert patched.json()["data"] == {"k": "2", "new": "x"}
    failed_test = await api.patch(
        f"{CMS}/a",
        content=json.dumps([{"op": "test", "path": "/data/k", "value": "nope"}]),
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert failed_test.status_code == 422

    await api.post(DEPLOYS, json=deployment("web"))
    strategic = await api.patch(
        f"{DEPLOYS}/web",
        content=json.dumps(
            {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:2"}]}}}}
        ),
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    assert strategic.json()["spec"]["template"]["spec"]["containers"] == [
        {"name": "main", "image": "nginx:2"}
    ]
    assert strategic.json()["metadata"]["generation"] == 2

    for content_type in ("text/plain", "application/xml"):
        unsupported = await api.patch(
            f"{CMS}/a", content=b"{}", headers={"Content-Type": content_type}
        )
        assert unsupported.status_code == 415
        assert unsupported.json() == status(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, "
            "application/apply-patch+yaml, application/strategic-merge-patch+json",
            {},
        )
    yaml_body = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n"
    assert (
        await api.post(CMS, content=yaml_body, headers={"Content-Type": "application/yaml"})
    ).status_code == 201
    assert (
        await api.post(CMS, content=b"<x/>", headers={"Content-Type": "application/xml"})
    ).status_code == 415
    assert (await api.post(CMS, content=b"{nope")).status_code == 400


async def test_delete_answers(api: httpx.AsyncClient) -> None:
    created = (await api.post(CMS, json=configmap("a"))).json()
    deleted = await api.delete(f"{CMS}/a")
    assert deleted.status_code == 200
    assert deleted.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": "a", "kind": "configmaps", "uid": created["metadata"]["uid"]},
    }
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    await api.post("/api/v1/namespaces/default/pods", json=pod)
    deleted_pod = await api.delete("/api/v1/namespaces/default/pods/p")
    assert deleted_pod.json()["kind"] == "Pod"  # pods answer with the object
    assert deleted_pod.json()["metadata"]["deletionTimestamp"]

    other = (await api.post(CMS, json=configmap("b"))).json()
    precondition = {"preconditions": {"uid": "not-" + other["metadata"]["uid"]}}
    refused = await api.request("DELETE", f"{CMS}/b", json=precondition)
    assert refused.status_code == 409
    assert refused.json()["message"].startswith(
        'Operation cannot be fulfilled on configmaps "b": Precondition failed: UID in precondition'
    )
    dry = await api.delete(f"{CMS}/b", params={"dryRun": "All"})
    assert dry.status_code == 200
    assert (await api.get(f"{CMS}/b")).status_code == 200
    bad_policy = await api.delete(f"{CMS}/b", params={"propagationPolicy": "Sometimes"})
    assert bad_policy.status_code == 422


async def test_delete_collection(api: httpx.AsyncClient, kube: FakeKubeApiServer) -> None:
    for name, labels in (("a", {"x": "1"}), ("b", {"x": "1"}), ("c", {"x": "2"})):
        await api.post(CMS, json=configmap(name, labels))
    response = await api.delete(CMS, params={"labelSelector": "x=1"})
    assert response.status_code == 200
    assert response.json()["kind"] == "ConfigMapList"
    assert [i["metadata"]["name"] for i in response.json()["items"]] == ["a", "b"]
    assert kube.names("ConfigMap", "default") == ["c", "kube-root-ca.crt"]


async def test_dry_run_create(api: httpx.AsyncClient, kube: FakeKubeApiServer) -> None:
    response = await api.post(CMS, params={"dryRun": "All"}, json=configmap("dry"))
    assert response.status_code == 201
    assert response.json()["metadata"]["name"] == "dry"
    assert kube.get("ConfigMap", "dry", "default") is None


def _owned_by(owner: Obj, name: str) -> Obj:
    ref = {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
    }
    obj = configmap(name)
    obj["metadata"]["ownerReferences"] = [ref]
    return obj


@pytest.mark.parametrize("policy", ["Background", "Foreground", None])
async def test_garbage_collection_deletes_dependents(
    api: httpx.AsyncClient, kube: FakeKubeApiServer, policy: str | None
) -> None:
    owner = (await api.post(DEPLOYS, json=deployment("web"))).json()
    child = (await api.post(CMS, json=_owned_by(owner, "child"))).json()
    await api.post(CMS, json=_owned_by(child, "grandchild"))
    params = {"propagationPolicy": policy} if policy else {}
    response = await api.delete(f"{DEPLOYS}/web", params=params)
    assert response.status_code == 200
    if policy == "Foreground":
        assert response.json()["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert kube.names("ConfigMap", "default") == ["kube-root-ca.crt"]
    assert kube.objects("Deployment", "default") == []


async def test_garbage_collection_orphan_and_shared_owners(
    api: httpx.AsyncClient, kube: FakeKubeApiServer
) -> None:
    first = (await api.post(CMS, json=configmap("first"))).json()
    second = (await api.post(CMS, json=configmap("second"))).json()
    orphan = (await api.post(CMS, json=_owned_by(first, "orphan"))).json()
    shared = _owned_by(first, "shared")
    shared["metadata"]["ownerReferences"] += _owned_by(second, "x")["metadata"]["ownerReferences"]
    await api.post(CMS, json=shared)

    await api.delete(f"{CMS}/first", params={"propagationPolicy": "Orphan"})
    kept = kube.get("ConfigMap", "orphan", "default")
    assert kept is not None
    assert "ownerReferences" not in kept["metadata"]
    assert int(kept["metadata"]["resourceVersion"]) > int(orphan["metadata"]["resourceVersion"])
    shared_now = kube.get("ConfigMap", "shared", "default")
    assert shared_now is not None
    assert [r["name"] for r in shared_now["metadata"]["ownerReferences"]] == ["second"]

    await api.delete(f"{CMS}/second")
    assert kube.get("ConfigMap", "shared", "default") is None

    dangling = await api.post(CMS, json=_owned_by(first, "dangling"))
    assert dangling.status_code == 201  # accepted, then collected: its owner is gone
    assert kube.get("ConfigMap", "dangling", "default") is None


async def test_finalizers_hold_deletion(api: httpx.AsyncClient, kube: FakeKubeApiServer) -> None:
    obj = configmap("held")
    obj["metadata"]["finalizers"] = ["example.com/hold"]
    await api.post(CMS, json=obj)
    response = await api.delete(f"{CMS}/held")
    assert response.status_code == 200
    pending = (await api.get(f"{CMS}/held")).json()
    assert pending["metadata"]["deletionTimestamp"]
    pending["metadata"]["finalizers"] = []
    released = await api.put(f"{CMS}/held", json=pending)
    assert released.status_code == 200
    assert kube.get("ConfigMap", "held", "default") is None


async def test_pod_logs(api: httpx.AsyncClient, kube: FakeKubeApiServer) -> None:
    pods = "/api/v1/namespaces/default/pods"
    one = {"metadata": {"name": "one"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    two = {
        "metadata": {"name": "two"},
        "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "x"}]},
    }
    assert (await api.post(pods, json=one)).json()["status"]["phase"] == "Pending"
    await api.post(pods, json=two)
    kube.set_pod_log("default", "one", "first\nsecond\nthird\n")
    kube.set_pod_log("default", "two", "from b\n", container="b")

    log = await api.get(f"{pods}/one/log")
    assert log.status_code == 200
    assert log.headers["content-type"] == "text/plain"
    assert log.text == "first\nsecond\nthird\n"
    assert (await api.get(f"{pods}/one/log", params={"tailLines": "1"})).text == "third\n"
    assert (await api.get(f"{pods}/two/log", params={"container": "b"})).text == "from b\n"
    ambiguous = await api.get(f"{pods}/two/log")
    assert ambiguous.status_code == 400
    assert ambiguous.json()["message"] == (
        "a container name must be specified for pod two, choose one of: [a b]"
    )
    wrong = await api.get(f"{pods}/one/log", params={"container": "zz"})
    assert wrong.json()["message"] == "container zz is not valid for pod one"
    missing = await api.get(f"{pods}/ghost/log")
    assert missing.status_code == 404
    assert missing.json()["message"] == 'pods "ghost" not found'
    assert (await api.get("/api/v1/namespaces/default/configmaps/x/log")).status_code == 404


async def test_previous_pod_logs_and_limits(
    api: httpx.AsyncClient, kube: FakeKubeApiServer
) -> None:
    pods = "/api/v1/namespaces/default/pods"
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    await api.post(pods, json=pod)
    kube.set_pod_log("default", "p", "now 1\nnow 2\n")

    never_restarted = await api.get(f"{pods}/p/log", params={"previous": "true"})
    assert never_restarted.status_code == 400
    assert never_restarted.json()["reason"] == "BadRequest"
    assert never_restarted.json()["message"] == (
        'previous terminated container "c" in pod "p" not found'
    )

    kube.set_pod_log("default", "p", "before 1\nbefore 2\ncrash\n", previous=True)
    previous = await api.get(f"{pods}/p/log", params={"previous": "true", "tailLines": "2"})
    assert previous.text == "before 2\ncrash\n"
    assert (await api.get(f"{pods}/p/log")).text == "now 1\nnow 2\n"
    # tailLines first, then limitBytes, cut wherever the bytes end.
    limited = await api.get(f"{pods}/p/log", params={"tailLines": "1", "limitBytes": "4"})
    assert limited.text == "now "
    kube.set_pod_log("default", "p", "\u00e9t\u00e9\n")
    assert (await api.get(f"{pods}/p/log", params={"limitBytes": "1"})).content == b"\xc3"

    for params in ({"tailLines": "-1"}, {"limitBytes": "0"}, {"tailLines": "x"}):
        refused = await api.get(f"{pods}/p/log", params=params)
        assert refused.status_code == 400, params
        assert refused.json()["reason"] == "BadRequest"


async def test_events(api: httpx.AsyncClient, kube: FakeKubeApiServer) -> None:
    created = (await api.post(DEPLOYS, json=deployment("web"))).json()
    kube.record_event(created, "ScalingReplicaSet", "Scaled up replica set web-abc to 1")
    other = (await api.post(DEPLOYS, json=deployment("db"))).json()
    kube.record_event(other, "ScalingReplicaSet", "Scaled up replica set db-abc to 1")
    events = await api.get(
        "/api/v1/namespaces/default/events",
        params={"fieldSelector": "involvedObject.name=web,involvedObject.kind=Deployment"},
    )
    [event] = events.json()["items"]
    assert event["reason"] == "ScalingReplicaSet"
    assert event["involvedObject"]["uid"] == created["metadata"]["uid"]
    assert event["metadata"]["name"].startswith("web.")
    assert events.json()["kind"] == "EventList"


async def _read_events(stream: httpx.Response, count: int) -> list[Obj]:
    events: list[Obj] = []
    async for line in stream.aiter_lines():
        if line:
            events.append(json.loads(line))
        if len(events) == count:
            break
    return events


async def test_watch(api: httpx.AsyncClient) -> None:
    await api.post(CMS, json=configmap("before", {"w": "1"}))
    params = {"watch": "true", "labelSelector": "w=1", "timeoutSeconds": "5"}
    async with api.stream("GET", CMS, params=params) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"] == "application/json"
        reader = asyncio.ensure_future(_read_events(stream, 4))
        await asyncio.sleep(0.05)
        await api.post(CMS, json=configmap("new", {"w": "1"}))
        await api.post(CMS, json=configmap("unwatched", {"w": "2"}))
        await api.put(f"{CMS}/new", json=configmap("new", {"w": "1"}, k="v"))
        await api.delete(f"{CMS}/new")
        events = await asyncio.wait_for(reader, 5)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "before"),
        ("ADDED", "new"),
        ("MODIFIED", "new"),
        ("DELETED", "new"),
    ]
    assert events[1]["object"]["kind"] == "ConfigMap"
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events[1:]]
    assert rvs == sorted(rvs)


async def test_watch_from_resource_version_and_timeout(api: httpx.AsyncClient) -> None:
    first = (await api.post(CMS, json=configmap("a"))).json()
    await api.post(CMS, json=configmap("b"))
    params = {
        "watch": "1",
        "resourceVersion": first["metadata"]["resourceVersion"],
        "timeoutSeconds": "1",
    }
    response = await api.get(CMS, params=params)  # the server ends the stream after 1 s
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in lines] == [("ADDED", "b")]
