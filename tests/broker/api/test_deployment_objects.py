"""Deployment objects: POST/GET /stacks/{id}/deployment-objects and GET /deployment-objects/{id}.

Covers the JSON envelope and raw YAML bodies, the shape rules of the content (every document an
object with apiVersion, kind and metadata.name, the error naming the document index), checksums
and the global sequence, the role matrix (admin, owning generator, other generators, agents),
reading an object as the agents it is served to (no existence oracle for anyone else), what
stays readable after a stack delete, and that objects cannot be modified (405).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest

from brokkr.broker.db import tables
from tests.broker.conftest import Api, assert_error, auth

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n"
MULTI_DOC = (
    "---\n"
    "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app\n"
    "---\n"
    "---\n"
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: app\n"
    "---\n"
)
OBJECT_FIELDS = {
    "id",
    "created_at",
    "updated_at",
    "deleted_at",
    "sequence_id",
    "stack_id",
    "yaml_content",
    "yaml_checksum",
    "submitted_at",
    "is_deletion_marker",
}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def objects_path(stack_id: str) -> str:
    return f"/api/v1/stacks/{stack_id}/deployment-objects"


async def create_stack(api: Api, generator_pak: str, name: str = "web") -> dict[str, Any]:
    response = await api.client.post(
        "/api/v1/stacks", json={"name": name}, headers=auth(generator_pak)
    )
    assert response.status_code == 201, response.text
    stack: dict[str, Any] = response.json()
    return stack


async def post_object(
    api: Api, stack_id: str, headers: dict[str, str], content: str = CONFIGMAP
) -> dict[str, Any]:
    response = await api.client.post(
        objects_path(stack_id), json={"yaml_content": content}, headers=headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def stored_objects(api: Api) -> int:
    return await api.count(tables.deployment_objects)


async def test_generator_creates_object_from_json_envelope(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    stack = await create_stack(api, generator_pak)
    response = await api.client.post(
        objects_path(stack["id"]),
        json={"yaml_content": CONFIGMAP, "is_deletion_marker": False},
        headers=auth(generator_pak),
    )
    assert response.status_code == 201
    created = response.json()
    assert set(created) == OBJECT_FIELDS
    assert created["stack_id"] == stack["id"]
    assert created["yaml_content"] == CONFIGMAP
    assert created["yaml_checksum"] == sha256(CONFIGMAP)
    assert created["is_deletion_marker"] is False
    assert created["deleted_at"] is None
    assert created["submitted_at"].endswith("Z") and created["created_at"].endswith("Z")
    assert isinstance(created["sequence_id"], int)
    [record] = await api.audit(action="deployment.created")
    assert record["actor_type"] == "generator" and record["resource_id"] == created["id"]


async def test_envelope_without_deletion_flag_defaults_to_regular_object(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    stack = await create_stack(api, generator_pak)
    created = await post_object(api, stack["id"], auth(generator_pak))
    assert created["is_deletion_marker"] is False


@pytest.mark.parametrize(
    "content_type", ["application/yaml", "application/x-yaml", "text/yaml; charset=utf-8"]
)
async def test_raw_yaml_body_with_several_documents_is_stored_verbatim(
    api: Api, content_type: str
) -> None:
    _, generator_pak = await api.create_generator()
    stack = await create_stack(api, generator_pak)
    response = await api.client.post(
        objects_path(stack["id"]),
        content=MULTI_DOC.encode(),
        headers={**auth(generator_pak), "content-type": content_type},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["yaml_content"] == MULTI_DOC
    assert created["yaml_checksum"] == sha256(MULTI_DOC)
    assert created["is_deletion_marker"] is False
    read = await api.client.get(
        f"/api/v1/deployment-objects/{created['id']}", headers=auth(generator_pak)
    )
    assert read.status_code == 200 and read.json() == created


async def test_sequence_id_increases_across_stacks(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    first_stack = await create_stack(api, generator_pak, "one")
    second_stack = await create_stack(api, generator_pak, "two")
    headers = auth(generator_pak)
    sequence = [
        (await post_object(api, first_stack["id"], headers))["sequence_id"],
        (await post_object(api, second_stack["id"], headers))["sequence_id"],
        (await post_object(api, first_stack["id"], headers))["sequence_id"],
    ]
    assert sequence == sorted(sequence) and len(set(sequence)) == 3


async def test_identical_content_gets_the_same_checksum_but_a_new_object(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    stack = await create_stack(api, generator_pak)
    first = await post_object(api, stack["id"], auth(generator_pak))
    second = await post_object(api, stack["id"], auth(generator_pak))
    assert first["yaml_checksum"] == second["yaml_checksum"]
    assert first["id"] != second["id"] and second["sequence_id"] > first["sequence_id"]
    # The first revision is unchanged by the second (objects are immutable).
    read = await api.client.get(f"/api/v1/deployment-objects/{first['id']}", headers=api.admin)
    assert read.json() == first


@pytest.mark.parametrize("raw", [False, True])
@pytest.mark.parametrize(
    "content", ["key: [unclosed", "apiVersion: v1\n  kind: : bad\n", "\tkind: tab-indented\n"]
)
async def test_invalid_yaml_is_422_and_stores_nothing(api: Api, raw: bool, content: str) -> None:
    _, generator_pak = await api.create_generator()
    stack = await create_stack(api, generator_pak)
    if raw:
        response = await api.client.post(
            objects_path(stack["id"]),
            content=content.encode(),
            headers={**auth(generator_pak), "content-type": "application/yaml"},
        )
    else:
        response = await api.client.post(
            objects_path(stack["id"]), json={"yaml_content": content}, headers=auth(generator_pak)
        )
    assert_error(response, 422, "invalid_yaml")
    assert await stored_objects(api) == 0


@pytest.mark.parametrize(
    "content", ["", "   ", "\n\t\n", "---\n", "---\n---\n", "# comment only\n"]
)
async def test_empty_content_is_422_and_stores_nothing(api: Api, content: str) -> None:
    _, generator_pak = await api.create_generator()
    stack = await create_stack(api, generator_pak)
    response = await api.client.post(
        objects_path(stack["id"]), json={"yaml_content": content}, headers=auth(generator_pak)
    )
    assert_error(response, 422, "invalid_deployment_object")
    raw = await api.client.post(
        objects_path(stack["id"]),
        content=content.encode(),
        headers={**auth(generator_pak), "content-type": "application/yaml"},
    )
    assert_error(raw, 422, "invalid_deployment_object")
    assert await stored_objects(api) == 0


@pytest.mark.parametrize(
    "bad_document",
    [
        "kind: ConfigMap\nmetadata:\n  name: x\n",
        "apiVersion: v1\nmetadata:\n  name: x\n",
        "apiVersion: v1\nkind: ConfigMap\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: x\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ''\n",
        "apiVersion: ''\nkind: ConfigMap\nmetadata:\n  name: x\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: just-a-string\n",
        "- apiVersion: v1\n- kind: ConfigMap\n",
        "just a string\n",
        "42\n",
    ],
    ids=[
        "no-apiVersion",
        "no-kind",
        "no-metadata",
        "no-metadata-name",
        "empty-name",
        "empty-apiVersion",
        "metadata-not-mapping",
        "list",
        "string",
        "number",
    ],
)
async def test_document_that_is_not_a_kubernetes_object_is_named_by_index(
    api: Api, bad_document: str
) -> None:
    _, generator_pak = await api.create_generator()
    stack = await create_stack(api, generator_pak)
    as_second = await api.client.post(
        objects_path(stack["id"]),
        json={"yaml_content": f"{CONFIGMAP}---\n{bad_document}"},
        headers=auth(generator_pak),
    )
    error = assert_error(as_second, 422, "invalid_deployment_object")
    assert error["details"]["document"] == 1
    as_first = await api.client.post(
        objects_path(stack["id"]),
        content=f"{bad_document}---\n{CONFIGMAP}".encode(),
        headers={**auth(generator_pak), "content-type": "application/yaml"},
    )
    error = assert_error(as_first, 422, "invalid_deployment_object")
    assert error["details"]["document"] == 0
    assert await stored_objects(api) == 0


async def test_third_document_error_names_index_two(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    stack = await create_stack(api, generator_pak)
    content = f"{CONFIGMAP}---\n{CONFIGMAP}---\nkind: Secret\n"
    response = await api.client.post(
        objects_path(stack["id"]), json={"yaml_content": content}, headers=auth(generator_pak)
    )
    error = assert_error(response, 422, "invalid_deployment_object")
    assert error["details"]["document"] == 2
    assert "2" in error["message"]


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
async def test_other_content_types_are_415_and_store_nothing(api: Api, content_type: str) -> None:
    _, generator_pak = await api.create_generator()
    stack = await create_stack(api, generator_pak)
    response = await api.client.post(
        objects_path(stack["id"]),
        content=CONFIGMAP.encode(),
        headers={**auth(generator_pak), "content-type": content_type},
    )
    assert_error(response, 415)
    assert await stored_objects(api) == 0


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{nope", 400, "invalid_json"),
        (b"{}", 422, "validation_failed"),
        (b'{"yaml_content": 5}', 422, "validation_failed"),
        (b'{"yaml_content": "x", "is_deletion_marker": "yes"}', 422, "validation_failed"),
        (b"[]", 422, "validation_failed"),
    ],
)
async def test_malformed_envelope_is_rejected_and_stores_nothing(
    api: Api, body: bytes, status: int, code: str
) -> None:
    _, generator_pak = await api.create_generator()
    stack = await create_stack(api, generator_pak)
    response = await api.client.post(
        objects_path(stack["id"]),
        content=body,
        headers={**auth(generator_pak), "content-type": "application/json"},
    )
    assert_error(response, status, code)
    assert await stored_objects(api) == 0


async def test_raw_yaml_body_that_is_not_utf8_is_400(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    stack = await create_stack(api, generator_pak)
    response = await api.client.post(
        objects_path(stack["id"]),
        content=b"\xff\xfekind: x",
        headers={**auth(generator_pak), "content-type": "application/yaml"},
    )
    assert_error(response, 400, "invalid_encoding")
    assert await stored_objects(api) == 0


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        ("admin", 201, None),
        ("owner", 201, None),
        # Someone else's stack is as missing as an unknown one (no existence oracle).
        ("other-generator", 404, "stack_not_found"),
        ("agent", 404, "stack_not_found"),
    ],
)
async def test_create_role_matrix(api: Api, who: str, status: int, code: str | None) -> None:
    _, owner_pak = await api.create_generator("owner")
    _, other_pak = await api.create_generator("other")
    agent, agent_pak = await api.create_agent()
    stack = await create_stack(api, owner_pak)
    await api.client.post(
        f"/api/v1/agents/{agent['id']}/targets",
        json={"stack_id": stack["id"]},
        headers=auth(owner_pak),
    )
    headers = {
        "admin": api.admin,
        "owner": auth(owner_pak),
        "other-generator": auth(other_pak),
        "agent": auth(agent_pak),
    }[who]
    response = await api.client.post(
        objects_path(stack["id"]), json={"yaml_content": CONFIGMAP}, headers=headers
    )
    if status == 201:
        assert response.status_code == 201, response.text
        assert response.json()["stack_id"] == stack["id"]
        assert await stored_objects(api) == 1
    else:
        assert_error(response, status, code)
        assert await stored_objects(api) == 0


async def test_unknown_or_deleted_stack_is_404(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    stack = await create_stack(api, generator_pak)
    assert (
        await api.client.delete(f"/api/v1/stacks/{stack['id']}", headers=auth(generator_pak))
    ).status_code == 204
    markers = await stored_objects(api)
    for stack_id in (str(uuid.uuid4()), stack["id"]):
        response = await api.client.post(
            objects_path(stack_id), json={"yaml_content": CONFIGMAP}, headers=api.admin
        )
        assert_error(response, 404, "stack_not_found")
        listing = await api.client.get(objects_path(stack_id), headers=api.admin)
        assert_error(listing, 404, "stack_not_found")
    assert await stored_objects(api) == markers


async def test_explicit_deletion_marker_envelope_may_be_empty(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    stack = await create_stack(api, generator_pak)
    response = await api.client.post(
        objects_path(stack["id"]),
        json={"yaml_content": "", "is_deletion_marker": True},
        headers=auth(generator_pak),
    )
    assert response.status_code == 201, response.text
    marker = response.json()
    assert marker["is_deletion_marker"] is True
    assert marker["yaml_checksum"] == sha256("")


async def test_list_is_newest_first_with_limit(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    stack = await create_stack(api, generator_pak)
    other_stack = await create_stack(api, generator_pak, "other")
    headers = auth(generator_pak)
    created = [await post_object(api, stack["id"], headers) for _ in range(3)]
    await post_object(api, other_stack["id"], headers)
    listing = await api.client.get(objects_path(stack["id"]), headers=headers)
    assert listing.status_code == 200
    assert [o["id"] for o in listing.json()] == [o["id"] for o in reversed(created)]
    assert listing.json()[0] == created[-1]
    limited = await api.client.get(objects_path(stack["id"]), params={"limit": 2}, headers=headers)
    assert [o["id"] for o in limited.json()] == [created[2]["id"], created[1]["id"]]
    as_admin = await api.client.get(objects_path(stack["id"]), headers=api.admin)
    assert len(as_admin.json()) == 3
    capped = await api.client.get(
        objects_path(other_stack["id"]), params={"limit": 5000}, headers=headers
    )
    assert capped.status_code == 200 and len(capped.json()) == 1


@pytest.mark.parametrize("limit", ["0", "-1", "many"])
async def test_list_rejects_bad_limit(api: Api, limit: str) -> None:
    _, generator_pak = await api.create_generator()
    stack = await create_stack(api, generator_pak)
    response = await api.client.get(
        objects_path(stack["id"]), params={"limit": limit}, headers=auth(generator_pak)
    )
    assert_error(response, 400)


@pytest.mark.parametrize("who", ["other-generator", "agent"])
async def test_list_is_hidden_from_other_generators_and_agents(api: Api, who: str) -> None:
    _, owner_pak = await api.create_generator("owner")
    _, other_pak = await api.create_generator("other")
    _, agent_pak = await api.create_agent()
    stack = await create_stack(api, owner_pak)
    await post_object(api, stack["id"], auth(owner_pak))
    pak = other_pak if who == "other-generator" else agent_pak
    response = await api.client.get(objects_path(stack["id"]), headers=auth(pak))
    assert_error(response, 404, "stack_not_found")


@pytest.mark.parametrize(
    ("reader", "visible"),
    [
        ("admin", True),
        ("owner", True),
        ("targeted-agent", True),
        ("labelled-agent", True),
        ("annotated-agent", True),
        ("unrelated-agent", False),
        ("other-generator", False),
    ],
)
async def test_get_object_is_visible_to_admin_owner_and_served_agents_only(
    api: Api, reader: str, visible: bool
) -> None:
    _, owner_pak = await api.create_generator("owner")
    _, other_pak = await api.create_generator("other")
    stack = await create_stack(api, owner_pak)
    created = await post_object(api, stack["id"], auth(owner_pak))
    paks: dict[str, dict[str, str]] = {"admin": api.admin, "owner": auth(owner_pak)}
    paks["other-generator"] = auth(other_pak)
    targeted, targeted_pak = await api.create_agent("targeted")
    labelled, labelled_pak = await api.create_agent("labelled")
    annotated, annotated_pak = await api.create_agent("annotated")
    unrelated, unrelated_pak = await api.create_agent("unrelated")
    paks |= {
        "targeted-agent": auth(targeted_pak),
        "labelled-agent": auth(labelled_pak),
        "annotated-agent": auth(annotated_pak),
        "unrelated-agent": auth(unrelated_pak),
    }
    owner = auth(owner_pak)
    for response in [
        await api.client.post(
            f"/api/v1/agents/{targeted['id']}/targets",
            json={"stack_id": stack["id"]},
            headers=owner,
        ),
        await api.client.post(
            f"/api/v1/stacks/{stack['id']}/labels", json={"label": "env:prod"}, headers=owner
        ),
        await api.client.post(
            f"/api/v1/agents/{labelled['id']}/labels", json={"label": "env:prod"}, headers=api.admin
        ),
        await api.client.post(
            f"/api/v1/stacks/{stack['id']}/annotations",
            json={"key": "region", "value": "eu"},
            headers=owner,
        ),
        await api.client.post(
            f"/api/v1/agents/{annotated['id']}/annotations",
            json={"key": "region", "value": "eu"},
            headers=api.admin,
        ),
        # Same value under another key, and another label: no association.
        await api.client.post(
            f"/api/v1/agents/{unrelated['id']}/annotations",
            json={"key": "zone", "value": "eu"},
            headers=api.admin,
        ),
        await api.client.post(
            f"/api/v1/agents/{unrelated['id']}/labels", json={"label": "env:dev"}, headers=api.admin
        ),
    ]:
        assert response.status_code == 201, response.text
    response = await api.client.get(
        f"/api/v1/deployment-objects/{created['id']}", headers=paks[reader]
    )
    if visible:
        assert response.status_code == 200 and response.json() == created
    else:
        error = assert_error(response, 404, "deployment_object_not_found")
        # Same answer as for an id that does not exist: no existence oracle.
        missing = await api.client.get(
            f"/api/v1/deployment-objects/{uuid.uuid4()}", headers=paks[reader]
        )
        assert (
            assert_error(missing, 404, "deployment_object_not_found")["message"]
            == (error["message"])
        )


async def test_unknown_object_is_404_even_for_admin(api: Api) -> None:
    response = await api.client.get(f"/api/v1/deployment-objects/{uuid.uuid4()}", headers=api.admin)
    assert_error(response, 404, "deployment_object_not_found")


async def test_object_is_unreadable_by_agent_after_target_is_removed(api: Api) -> None:
    _, owner_pak = await api.create_generator()
    stack = await create_stack(api, owner_pak)
    created = await post_object(api, stack["id"], auth(owner_pak))
    agent, agent_pak = await api.create_agent()
    target_path = f"/api/v1/agents/{agent['id']}/targets"
    await api.client.post(target_path, json={"stack_id": stack["id"]}, headers=api.admin)
    path = f"/api/v1/deployment-objects/{created['id']}"
    assert (await api.client.get(path, headers=auth(agent_pak))).status_code == 200
    removed = await api.client.delete(f"{target_path}/{stack['id']}", headers=api.admin)
    assert removed.status_code == 204
    assert_error(
        await api.client.get(path, headers=auth(agent_pak)), 404, "deployment_object_not_found"
    )


async def test_after_stack_delete_only_the_marker_stays_readable(api: Api) -> None:
    _, owner_pak = await api.create_generator()
    stack = await create_stack(api, owner_pak)
    old = await post_object(api, stack["id"], auth(owner_pak))
    agent, agent_pak = await api.create_agent("associated")
    _, unrelated_pak = await api.create_agent("unrelated")
    await api.client.post(
        f"/api/v1/agents/{agent['id']}/targets", json={"stack_id": stack["id"]}, headers=api.admin
    )
    deleted = await api.client.delete(f"/api/v1/stacks/{stack['id']}", headers=auth(owner_pak))
    assert deleted.status_code == 204
    for headers in (api.admin, auth(owner_pak), auth(agent_pak)):
        response = await api.client.get(f"/api/v1/deployment-objects/{old['id']}", headers=headers)
        assert_error(response, 404, "deployment_object_not_found")
    state = await api.client.get(
        f"/api/v1/agents/{agent['id']}/target-state", headers=auth(agent_pak)
    )
    [marker] = state.json()
    assert marker["is_deletion_marker"] is True and marker["stack_id"] == stack["id"]
    marker_path = f"/api/v1/deployment-objects/{marker['id']}"
    for headers in (api.admin, auth(owner_pak), auth(agent_pak)):
        response = await api.client.get(marker_path, headers=headers)
        assert response.status_code == 200 and response.json() == marker
    assert_error(
        await api.client.get(marker_path, headers=auth(unrelated_pak)),
        404,
        "deployment_object_not_found",
    )
    # The stored revisions are kept (soft delete), only hidden.
    assert await api.count(
        tables.deployment_objects, tables.deployment_objects.c.id == uuid.UUID(old["id"])
    )


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_objects_cannot_be_modified(api: Api, method: str) -> None:
    _, owner_pak = await api.create_generator()
    stack = await create_stack(api, owner_pak)
    created = await post_object(api, stack["id"], auth(owner_pak))
    for headers in (api.admin, auth(owner_pak)):
        response = await api.client.request(
            method,
            f"/api/v1/deployment-objects/{created['id']}",
            json={"yaml_content": "apiVersion: v1\nkind: X\nmetadata:\n  name: y\n"},
            headers=headers,
        )
        assert_error(response, 405)
    read = await api.client.get(f"/api/v1/deployment-objects/{created['id']}", headers=api.admin)
    assert read.json() == created
    d = tables.deployment_objects
    assert await api.count(d, d.c.deleted_at.is_(None)) == 1


async def test_a_foreign_generator_gets_404_before_any_content_check(api: Api) -> None:
    _, owner_pak = await api.create_generator("owner")
    _, other_pak = await api.create_generator("other")
    created = await api.client.post(
        "/api/v1/stacks", json={"name": "mine"}, headers=auth(owner_pak)
    )
    stack_id = created.json()["id"]
    response = await api.client.post(
        f"/api/v1/stacks/{stack_id}/deployment-objects",
        json={"yaml_content": "not: [valid"},
        headers=auth(other_pak),
    )
    assert_error(response, 404, "stack_not_found")
