"""The fake's fidelity to a real kube-apiserver where the agent's behaviour depends on it:
schema checks of built-in kinds (unknown fields, wrong types, required fields) per verb and
``fieldValidation``, workload selectors, immutable fields, namespace termination, and
``dryRun=All`` never persisting anything."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fakes.kube_apiserver import FakeKubeApiServer

Obj = dict[str, Any]
CMS = "/api/v1/namespaces/default/configmaps"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
SERVICES = "/api/v1/namespaces/default/services"
JOBS = "/apis/batch/v1/namespaces/default/jobs"
APPLY = {"Content-Type": "application/apply-patch+yaml"}
MERGE = {"Content-Type": "application/merge-patch+json"}


def workload(kind: str, name: str = "web", app: str = "web") -> Obj:
    api_version = "batch/v1" if kind == "Job" else "apps/v1"
    spec: Obj = {
        "template": {
            "metadata": {"labels": {"app": app}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]},
        }
    }
    if kind == "Job":
        spec["template"]["spec"]["restartPolicy"] = "Never"
    else:
        spec["selector"] = {"matchLabels": {"app": name}}
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}, "spec": spec}


async def apply(api: httpx.AsyncClient, path: str, obj: Obj, **params: str) -> httpx.Response:
    url = f"{path}/{obj['metadata']['name']}"
    query = {"fieldManager": "brokkr", "force": "true", **params}
    return await api.patch(url, params=query, content=json.dumps(obj), headers=APPLY)


def causes(response: httpx.Response) -> list[tuple[str, str]]:
    return [(c["reason"], c["field"]) for c in response.json()["details"]["causes"]]


# --- schemas ------------------------------------------------------------------------------------


async def test_apply_with_an_unknown_field_fails_to_build_the_typed_patch(
    api: httpx.AsyncClient,
) -> None:
    deployment = workload("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    deployment["spec"]["replica"] = 2
    for validation in ("Strict", "Warn", "Ignore"):
        response = await apply(api, DEPLOYS, deployment, fieldValidation=validation)
        assert response.status_code == 500
        body = response.json()
        assert "reason" not in body
        assert body["message"] == (
            "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): "
            "errors:\n"
            '  .spec.template.spec.containers[name="c"].imagePullPolcy: field not declared in '
            "schema\n"
            "  .spec.replica: field not declared in schema"
        )
    assert (await api.get(f"{DEPLOYS}/web")).status_code == 404


async def test_apply_with_a_wrong_type_fails_to_build_the_typed_patch(
    api: httpx.AsyncClient,
) -> None:
    deployment = workload("Deployment")
    deployment["spec"]["replicas"] = "three"
    response = await apply(api, DEPLOYS, deployment)
    assert response.status_code == 500
    assert response.json()["message"].endswith(
        "(default/web; apps/v1, Kind=Deployment): .spec.replicas: expected numeric (int or "
        "float), got string"
    )


async def test_create_with_an_unknown_field_per_field_validation(api: httpx.AsyncClient) -> None:
    configmap = {"metadata": {"name": "a"}, "data": {"k": "v"}, "dat": {"typo": "x"}}
    strict = await api.post(CMS, params={"fieldValidation": "Strict"}, json=configmap)
    assert strict.status_code == 400
    assert strict.json()["reason"] == "BadRequest"
    assert strict.json()["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
        'unknown field "dat"'
    )
    assert (await api.get(f"{CMS}/a")).status_code == 404

    warned = await api.post(CMS, json=configmap)  # Warn is the server's default
    assert warned.status_code == 201
    assert warned.headers["warning"] == '299 - "unknown field \\"dat\\""'
    assert "dat" not in (await api.get(f"{CMS}/a")).json()

    ignored = await api.post(
        CMS, params={"fieldValidation": "Ignore"}, json={**configmap, "metadata": {"name": "b"}}
    )
    assert ignored.status_code == 201
    assert "warning" not in ignored.headers
    assert "dat" not in ignored.json()

    unknown = await api.post(CMS, params={"fieldValidation": "Loud"}, json=configmap)
    assert unknown.status_code == 422


async def test_update_and_merge_patch_decode_strictly_too(api: httpx.AsyncClient) -> None:
    created = (await api.post(DEPLOYS, json=workload("Deployment"))).json()
    created["spec"]["paused"] = "yes"
    wrong_type = await api.put(f"{DEPLOYS}/web", json=created)
    assert wrong_type.status_code == 400
    assert wrong_type.json()["message"] == (
        'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal '
        "string into Go struct field DeploymentSpec.spec.paused of type bool"
    )
    patched = await api.patch(
        f"{DEPLOYS}/web",
        params={"fieldValidation": "Strict"},
        content=json.dumps({"spec": {"template": {"spec": {"nodeSelectr": {"a": "b"}}}}}),
        headers=MERGE,
    )
    assert patched.status_code == 400
    assert patched.json()["message"].endswith(
        'strict decoding error: unknown field "spec.template.spec.nodeSelectr"'
    )


async def test_a_missing_required_field_is_invalid(api: httpx.AsyncClient) -> None:
    deployment = workload("Deployment")
    del deployment["spec"]["template"]["spec"]["containers"][0]["name"]
    response = await apply(api, DEPLOYS, deployment)
    assert response.status_code == 422
    assert response.json()["reason"] == "Invalid"
    assert causes(response) == [("FieldValueRequired", "spec.template.spec.containers[0].name")]
    assert response.json()["message"] == (
        'Deployment.apps "web" is invalid: spec.template.spec.containers[0].name: Required value'
    )


# --- workload selectors and immutable fields ---------------------------------------------------


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"])
async def test_workloads_need_a_selector_matching_the_template(
    api: httpx.AsyncClient, kind: str
) -> None:
    path = f"/apis/apps/v1/namespaces/default/{kind.lower()}s"
    missing = workload(kind)
    del missing["spec"]["selector"]
    response = await apply(api, path, missing)
    assert response.status_code == 422
    assert ("FieldValueRequired", "spec.selector") in causes(response)

    mismatched = await apply(api, path, workload(kind, app="other"))
    assert mismatched.status_code == 422
    assert causes(mismatched) == [("FieldValueInvalid", "spec.template.metadata.labels")]
    assert mismatched.json()["message"].endswith(
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"other"}: '
        "`selector` does not match template `labels`"
    )
    assert (await apply(api, path, workload(kind))).status_code == 201


async def test_a_deployment_selector_is_immutable(api: httpx.AsyncClient) -> None:
    assert (await apply(api, DEPLOYS, workload("Deployment"))).status_code == 201
    changed = workload("Deployment", app="v2")
    changed["spec"]["selector"] = {"matchLabels": {"app": "v2"}}
    response = await apply(api, DEPLOYS, changed)
    assert response.status_code == 422
    assert causes(response) == [("FieldValueInvalid", "spec.selector")]
    assert response.json()["message"].endswith("field is immutable")


async def test_a_service_cluster_ip_is_immutable(api: httpx.AsyncClient) -> None:
    service: Obj = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }
    created = (await apply(api, SERVICES, service)).json()
    assigned = created["spec"]["clusterIP"]
    reapplied = await apply(api, SERVICES, service)  # not sent: the assigned one stays
    assert reapplied.status_code == 200
    assert reapplied.json()["spec"]["clusterIP"] == assigned
    service["spec"]["clusterIP"] = "10.96.200.200"
    response = await apply(api, SERVICES, service)
    assert response.status_code == 422
    assert response.json()["message"] == (
        'Service "web" is invalid: spec.clusterIP: Invalid value: "10.96.200.200": field is '
        "immutable"
    )


async def test_a_job_gets_a_generated_selector_and_an_immutable_template(
    api: httpx.AsyncClient,
) -> None:
    created = await apply(api, JOBS, workload("Job"))
    assert created.status_code == 201
    job = created.json()
    uid = job["metadata"]["uid"]
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert job["spec"]["template"]["metadata"]["labels"] == {
        "app": "web",
        "batch.kubernetes.io/controller-uid": uid,
        "controller-uid": uid,
        "batch.kubernetes.io/job-name": "web",
        "job-name": "web",
    }
    assert (await apply(api, JOBS, workload("Job"))).status_code == 200  # same template: fine

    changed = workload("Job")
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    response = await apply(api, JOBS, changed)
    assert response.status_code == 422
    assert causes(response) == [("FieldValueInvalid", "spec.template")]

    chosen = workload("Job", name="manual")
    chosen["spec"]["selector"] = {"matchLabels": {"app": "web"}}
    refused = await apply(api, JOBS, chosen)
    assert refused.status_code == 422
    assert refused.json()["message"].endswith("`selector` will be auto-generated")
    chosen["spec"]["manualSelector"] = True
    assert (await apply(api, JOBS, chosen)).status_code == 201


# --- namespace termination ---------------------------------------------------------------------


@pytest.fixture
async def slow_api() -> AsyncIterator[httpx.AsyncClient]:
    """A cluster whose namespace controller takes a minute: Terminating lasts the test."""
    async with FakeKubeApiServer(namespace_termination_delay=60) as server:
        headers = {"Authorization": f"Bearer {server.token}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10) as client:
            yield client


async def test_a_terminating_namespace_refuses_new_content(slow_api: httpx.AsyncClient) -> None:
    api = slow_api
    await api.post("/api/v1/namespaces", json={"metadata": {"name": "team"}})
    team = "/api/v1/namespaces/team/configmaps"
    await api.post(team, json={"metadata": {"name": "kept"}})
    deleted = await api.delete("/api/v1/namespaces/team")
    assert deleted.status_code == 200
    assert deleted.json()["status"]["phase"] == "Terminating"
    live = (await api.get("/api/v1/namespaces/team")).json()
    assert live["status"]["phase"] == "Terminating"
    assert live["metadata"]["deletionTimestamp"]

    refused = await api.post(team, json={"metadata": {"name": "new"}})
    assert refused.status_code == 403
    assert refused.json()["reason"] == "Forbidden"
    assert refused.json()["message"] == (
        'configmaps "new" is forbidden: unable to create new content in namespace team because '
        "it is being terminated"
    )
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new"}}
    assert (await apply(api, team, configmap)).status_code == 403
    kept = {**configmap, "metadata": {"name": "kept"}, "data": {"k": "v"}}
    assert (await apply(api, team, kept)).status_code == 200  # updates are still allowed

    again = await api.post("/api/v1/namespaces", json={"metadata": {"name": "team"}})
    assert again.status_code == 409
    assert again.json()["message"] == 'object is being deleted: namespaces "team" already exists'
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
    reapplied = await apply(api, "/api/v1/namespaces", namespace)
    assert reapplied.json()["status"]["phase"] == "Terminating"  # applying does not revive it


async def test_namespace_content_goes_when_termination_finishes(
    api: httpx.AsyncClient, kube: FakeKubeApiServer
) -> None:
    await api.post("/api/v1/namespaces", json={"metadata": {"name": "team"}})
    await api.post("/api/v1/namespaces/team/configmaps", json={"metadata": {"name": "a"}})
    position = kube.resource_version
    assert (await api.delete("/api/v1/namespaces/team")).status_code == 200
    assert (await api.get("/api/v1/namespaces/team")).status_code == 404
    assert kube.objects("ConfigMap", "team") == []
    events = [
        (e.type, e.obj["kind"], e.obj["metadata"]["name"])
        for e in kube.cluster.events_after(position)
    ]
    assert events[0] == ("MODIFIED", "Namespace", "team")  # Terminating first
    assert events[-1] == ("DELETED", "Namespace", "team")
    assert ("DELETED", "ConfigMap", "a") in events


# --- dryRun=All ---------------------------------------------------------------------------------


async def test_dry_run_never_persists(api: httpx.AsyncClient, kube: FakeKubeApiServer) -> None:
    dry = {"dryRun": "All"}
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}
    start = kube.resource_version
    created = await api.post(CMS, params=dry, json={**configmap, "data": {"k": "v"}})
    assert created.status_code == 201
    assert created.json()["data"] == {"k": "v"}
    applied = await apply(api, CMS, {**configmap, "data": {"k": "v"}}, **dry)
    assert applied.status_code == 201
    assert (await api.get(f"{CMS}/a")).status_code == 404
    assert kube.resource_version == start

    real = (await api.post(CMS, json={**configmap, "data": {"k": "v"}})).json()
    start = kube.resource_version
    changed = {**configmap, "data": {"k": "changed"}}
    assert (await apply(api, CMS, changed, **dry)).json()["data"] == {"k": "changed"}
    put = await api.put(f"{CMS}/a", params=dry, json={**real, "data": {"k": "changed"}})
    assert put.json()["data"] == {"k": "changed"}
    patched = await api.patch(
        f"{CMS}/a", params=dry, content=json.dumps({"data": {"k": "changed"}}), headers=MERGE
    )
    assert patched.json()["data"] == {"k": "changed"}
    assert (await api.delete(f"{CMS}/a", params=dry)).status_code == 200
    assert (await api.request("DELETE", CMS, params=dry)).status_code == 200
    assert (await api.delete("/api/v1/namespaces/default", params=dry)).status_code == 200
    assert kube.resource_version == start
    assert (await api.get(f"{CMS}/a")).json()["data"] == {"k": "v"}
    assert (await api.get("/api/v1/namespaces/default")).json()["status"]["phase"] == "Active"
