"""Server-side apply against the fake: create/update codes, managedFields, conflicts, force,
field removal, identity checks, and how Update operations take ownership."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.fakes.kube_apiserver import FakeKubeApiServer

Obj = dict[str, Any]
CMS = "/api/v1/namespaces/default/configmaps"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
APPLY = {"Content-Type": "application/apply-patch+yaml"}


def configmap(name: str, labels: dict[str, str] | None = None, **data: str) -> Obj:
    meta: Obj = {"name": name}
    if labels:
        meta["labels"] = labels
    obj: Obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}
    if data:
        obj["data"] = data
    return obj


async def apply(
    api: httpx.AsyncClient,
    obj: Obj,
    manager: str | None,
    force: bool | None = None,
    path: str = CMS,
    **params: str,
) -> httpx.Response:
    if manager is not None:
        params["fieldManager"] = manager
    if force is not None:
        params["force"] = "true" if force else "false"
    url = f"{path}/{obj['metadata']['name']}"
    return await api.patch(url, params=params, content=json.dumps(obj), headers=APPLY)


def managers(obj: Obj) -> dict[tuple[str, str], Obj]:
    return {(e["manager"], e["operation"]): e for e in obj["metadata"]["managedFields"]}


async def test_apply_creates_then_updates(api: httpx.AsyncClient) -> None:
    created = await apply(api, configmap("a", {"app": "x"}, k="v"), "brokkr")
    assert created.status_code == 201
    obj = created.json()
    assert obj["data"] == {"k": "v"}
    assert obj["metadata"]["labels"] == {"app": "x"}
    [entry] = obj["metadata"]["managedFields"]
    assert set(entry) == {"manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1"}
    assert (entry["manager"], entry["operation"], entry["apiVersion"], entry["fieldsType"]) == (
        "brokkr",
        "Apply",
        "v1",
        "FieldsV1",
    )
    assert entry["fieldsV1"] == {"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:app": {}}}}

    same = await apply(api, configmap("a", {"app": "x"}, k="v"), "brokkr")
    assert same.status_code == 200
    assert same.json() == obj  # a no-op apply writes nothing, not even a resourceVersion

    changed = await apply(api, configmap("a", {"app": "x"}, k="w"), "brokkr")
    assert changed.status_code == 200
    assert changed.json()["data"] == {"k": "w"}
    assert int(changed.json()["metadata"]["resourceVersion"]) > int(
        obj["metadata"]["resourceVersion"]
    )


async def test_apply_accepts_yaml(api: httpx.AsyncClient) -> None:
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  k: v\n"
    response = await api.patch(f"{CMS}/y?fieldManager=m", content=body, headers=APPLY)
    assert response.status_code == 201
    assert response.json()["data"] == {"k": "v"}


async def test_field_manager_is_required(api: httpx.AsyncClient) -> None:
    response = await apply(api, configmap("a"), None)
    assert response.status_code == 422
    assert response.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is '
        "required for apply patch",
        "reason": "Invalid",
        "details": {
            "group": "meta.k8s.io",
            "kind": "PatchOptions",
            "causes": [
                {
                    "reason": "FieldValueRequired",
                    "message": "Required value: is required for apply patch",
                    "field": "fieldManager",
                }
            ],
        },
        "code": 422,
    }


async def test_force_is_only_for_apply(api: httpx.AsyncClient) -> None:
    await apply(api, configmap("a", k="v"), "m")
    response = await api.patch(
        f"{CMS}/a",
        params={"force": "true"},
        content=b'{"data":{"k":"x"}}',
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 422
    assert response.json()["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for '
        "non-apply patch"
    )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda o: o["metadata"].update(name="other"),
            "the name of the object (other) does not match the name on the URL (a)",
        ),
        (
            lambda o: o["metadata"].update(namespace="kube-system"),
            "the namespace of the provided object does not match the namespace sent on the request",
        ),
        (
            lambda o: o.update(kind="Secret"),
            "the kind in the data (Secret) does not match the expected kind (ConfigMap)",
        ),
        (
            lambda o: o.update(apiVersion="apps/v1"),
            "the API version in the data (apps/v1) does not match the expected API version (v1)",
        ),
        (lambda o: o.pop("kind"), None),
        (lambda o: o["metadata"].update(managedFields=[]), "metadata.managedFields must be nil"),
    ],
)
async def test_apply_identity_must_match_the_url(
    api: httpx.AsyncClient, mutate: Any, message: str | None
) -> None:
    obj = configmap("a", k="v")
    mutate(obj)
    response = await api.patch(
        f"{CMS}/a", params={"fieldManager": "m"}, content=json.dumps(obj), headers=APPLY
    )
    assert response.status_code == 400
    assert response.json()["reason"] == "BadRequest"
    if message is not None:
        assert response.json()["message"] == message


async def test_conflict_and_force(api: httpx.AsyncClient) -> None:
    await apply(api, configmap("a", k="v", other="o"), "first")
    conflict = await apply(api, configmap("a", k="w"), "second")
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/json"
    assert conflict.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'Apply failed with 1 conflict: conflict with "first": .data.k',
        "reason": "Conflict",
        "details": {
            "causes": [
                {
                    "reason": "FieldManagerConflict",
                    "message": 'conflict with "first"',
                    "field": ".data.k",
                }
            ]
        },
        "code": 409,
    }
    assert (await apply(api, configmap("a", k="w"), "second", force=False)).status_code == 409

    shared = await apply(api, configmap("a", k="v"), "second")  # same value: shared ownership
    assert shared.status_code == 200
    owners = managers(shared.json())
    assert owners[("first", "Apply")]["fieldsV1"]["f:data"] == {"f:k": {}, "f:other": {}}
    assert owners[("second", "Apply")]["fieldsV1"] == {"f:data": {"f:k": {}}}

    forced = await apply(api, configmap("a", k="w"), "second", force=True)
    assert forced.status_code == 200
    assert forced.json()["data"] == {"k": "w", "other": "o"}
    owners = managers(forced.json())
    assert owners[("first", "Apply")]["fieldsV1"] == {"f:data": {"f:other": {}}}
    assert owners[("second", "Apply")]["fieldsV1"] == {"f:data": {"f:k": {}}}

    # "first" re-applying its old value now conflicts with "second".
    back = await apply(api, configmap("a", k="v", other="o"), "first")
    assert back.json()["message"] == 'Apply failed with 1 conflict: conflict with "second": .data.k'


async def test_multiple_conflicts_message(api: httpx.AsyncClient) -> None:
    created = await api.post(
        CMS, params={"fieldManager": "kubectl-create"}, json=configmap("a", {"l": "1"}, k="v")
    )
    assert created.status_code == 201
    response = await apply(api, configmap("a", {"l": "2"}, k="w"), "brokkr")
    assert response.status_code == 409
    body = response.json()
    assert body["message"] == (
        'Apply failed with 2 conflicts: conflicts with "kubectl-create" using v1:\n'
        "- .data.k\n"
        "- .metadata.labels.l"
    )
    assert [c["field"] for c in body["details"]["causes"]] == [".data.k", ".metadata.labels.l"]
    assert {c["message"] for c in body["details"]["causes"]} == {
        'conflict with "kubectl-create" using v1'
    }


async def test_fields_a_manager_stops_sending_are_removed(
    api: httpx.AsyncClient, kube: FakeKubeApiServer
) -> None:
    await apply(api, configmap("a", {"keep": "1", "drop": "2"}, x="1", y="2"), "brokkr")
    kube.apply(configmap("a", {"theirs": "3"}, z="3"), manager="other-controller")
    shared = await apply(api, configmap("a", x="1", z="3"), "brokkr")  # z: shared with "other"
    assert shared.status_code == 200

    after = await apply(api, configmap("a", {"keep": "1"}, x="1"), "brokkr")
    obj = after.json()
    # y and the "drop" label were brokkr's alone: gone. z is also other-controller's: kept.
    assert obj["data"] == {"x": "1", "z": "3"}
    assert obj["metadata"]["labels"] == {"keep": "1", "theirs": "3"}

    gone = await apply(api, configmap("a", x="1"), "brokkr")
    assert gone.json()["metadata"]["labels"] == {"theirs": "3"}
    emptied = await apply(api, configmap("a"), "brokkr")
    assert emptied.json()["data"] == {"z": "3"}
    assert ("brokkr", "Apply") not in managers(emptied.json())


async def test_update_operations_take_ownership(api: httpx.AsyncClient) -> None:
    created = (await apply(api, configmap("a", k="v", j="1"), "brokkr")).json()
    edited = {**created, "data": {"k": "edited", "j": "1"}}
    put = await api.put(f"{CMS}/a", params={"fieldManager": "kubectl-edit"}, json=edited)
    owners = managers(put.json())
    assert owners[("kubectl-edit", "Update")]["fieldsV1"] == {"f:data": {"f:k": {}}}
    assert owners[("brokkr", "Apply")]["fieldsV1"] == {"f:data": {"f:j": {}}}
    conflict = await apply(api, configmap("a", k="v", j="1"), "brokkr")
    assert conflict.status_code == 409
    assert conflict.json()["message"] == (
        'Apply failed with 1 conflict: conflict with "kubectl-edit" using v1: .data.k'
    )
    assert (await apply(api, configmap("a", k="v", j="1"), "brokkr", force=True)).json()[
        "data"
    ] == {"k": "v", "j": "1"}


async def test_resetting_managed_fields(api: httpx.AsyncClient) -> None:
    created = (await apply(api, configmap("a", k="v"), "brokkr")).json()
    created["metadata"]["managedFields"] = [{}]
    cleared = (await api.put(f"{CMS}/a", json=created)).json()
    assert "managedFields" not in cleared["metadata"] or not cleared["metadata"]["managedFields"]
    # With no owners left, another manager's apply takes the field without a conflict.
    assert (await apply(api, configmap("a", k="other"), "newcomer")).status_code == 200


async def test_apply_status_and_subresource(api: httpx.AsyncClient) -> None:
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "main", "image": "nginx"}]},
            },
        },
        "status": {"replicas": 5},
    }
    created = (await apply(api, deploy, "brokkr", path=DEPLOYS)).json()
    assert "status" not in created  # the main resource ignores status
    assert created["spec"]["replicas"] == 1  # defaulted, owned by nobody
    assert "f:replicas" not in managers(created)[("brokkr", "Apply")]["fieldsV1"]["f:spec"]
    assert created["metadata"]["generation"] == 1

    status_patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "status": {"readyReplicas": 1},
    }
    response = await api.patch(
        f"{DEPLOYS}/web/status",
        params={"fieldManager": "fake-controller"},
        content=json.dumps(status_patch),
        headers=APPLY,
    )
    assert response.status_code == 200
    obj = response.json()
    assert obj["status"] == {"readyReplicas": 1}
    entry = managers(obj)[("fake-controller", "Apply")]
    assert entry["subresource"] == "status"
    assert obj["metadata"]["generation"] == 1


async def test_apply_preconditions_and_dry_run(
    api: httpx.AsyncClient, kube: FakeKubeApiServer
) -> None:
    dry = await apply(api, configmap("a", k="v"), "brokkr", dryRun="All")
    assert dry.status_code == 201
    assert kube.get("ConfigMap", "a", "default") is None

    created = (await apply(api, configmap("a", k="v"), "brokkr")).json()
    stale = configmap("a", k="w")
    stale["metadata"]["resourceVersion"] = str(int(created["metadata"]["resourceVersion"]) - 1)
    response = await apply(api, stale, "brokkr")
    assert response.status_code == 409
    assert "the object has been modified" in response.json()["message"]


async def test_lists_are_atomic(api: httpx.AsyncClient) -> None:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
    }
    path = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles"
    created = (await apply(api, role, "brokkr", path=path)).json()
    assert managers(created)[("brokkr", "Apply")]["fieldsV1"] == {"f:rules": {}}
    role["rules"] = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]
    conflict = await apply(api, role, "other", path=path)
    assert conflict.json()["message"] == (
        'Apply failed with 1 conflict: conflict with "brokkr": .rules'
    )


async def test_nulls_in_an_apply_are_not_fields(api: httpx.AsyncClient) -> None:
    deploy = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "creationTimestamp": None, "labels": None},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "main", "image": "nginx", "resources": {}}]},
            },
        },
    }
    created = (await apply(api, deploy, "brokkr", path=DEPLOYS)).json()
    assert created["spec"]["template"]["metadata"] == {"labels": {"app": "web"}}
    assert "labels" not in created["metadata"]
    fields = managers(created)[("brokkr", "Apply")]["fieldsV1"]
    assert fields["f:spec"]["f:template"]["f:metadata"] == {"f:labels": {"f:app": {}}}
