"""Stack labels and annotations: GET/POST /api/v1/stacks/{id}/labels and /annotations, DELETE
/api/v1/stacks/{id}/labels/{label} and /api/v1/stacks/{id}/annotations/{key}.

Covers both label body forms (the reference's bare JSON string and `{"label": ...}`); the write
matrix (admin and the owning generator; to another generator or any agent the stack is 404
`stack_not_found` like a missing one, nothing stored); the read matrix (admin, owner, and agents
associated with the stack by target, label or annotation; everyone else 404 `stack_not_found`,
also once the association is gone); invalid labels, keys and values (D14: 422, nothing
stored); duplicates (409 `stack_label_exists`, `stack_annotation_exists`); body `stack_id` ≠
path (403 `stack_id_mismatch`); unknown and deleted stacks (404 `stack_not_found`); deleting missing
entries (404 `stack_label_not_found`, `stack_annotation_not_found`); labels and keys with '/'
and ':' deleted through the path; and the audit records of every change.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from brokkr.broker.db import tables
from tests.broker.conftest import Api, assert_error, auth

LABEL_FIELDS = {"id", "stack_id", "label"}
ANNOTATION_FIELDS = {"id", "stack_id", "key", "value"}
BAD_LABELS = ["", " ", "has space", "tab\there", "newline\n", "x" * 65]


def labels_path(stack_id: str, label: str | None = None) -> str:
    base = f"/api/v1/stacks/{stack_id}/labels"
    return base if label is None else f"{base}/{quote(label, safe='')}"


def annotations_path(stack_id: str, key: str | None = None) -> str:
    base = f"/api/v1/stacks/{stack_id}/annotations"
    return base if key is None else f"{base}/{quote(key, safe='')}"


@dataclass
class World:
    """An owning generator with one stack, another generator and an (unassociated) agent."""

    owner: dict[str, Any]
    owner_pak: str
    other_pak: str
    agent: dict[str, Any]
    agent_pak: str
    stack: dict[str, Any]

    def headers(self, api: Api, who: str) -> dict[str, str]:
        return {
            "admin": api.admin,
            "owner": auth(self.owner_pak),
            "other-generator": auth(self.other_pak),
            "agent": auth(self.agent_pak),
        }[who]


async def world(api: Api) -> World:
    owner, owner_pak = await api.create_generator("owner")
    _, other_pak = await api.create_generator("other")
    agent, agent_pak = await api.create_agent()
    response = await api.client.post(
        "/api/v1/stacks", json={"name": "web"}, headers=auth(owner_pak)
    )
    assert response.status_code == 201, response.text
    return World(owner, owner_pak, other_pak, agent, agent_pak, response.json())


async def add_label(api: Api, stack_id: str, label: str) -> dict[str, Any]:
    response = await api.client.post(labels_path(stack_id), json=label, headers=api.admin)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def add_annotation(api: Api, stack_id: str, key: str, value: str) -> dict[str, Any]:
    response = await api.client.post(
        annotations_path(stack_id), json={"key": key, "value": value}, headers=api.admin
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def stored_labels(api: Api, stack_id: str) -> list[str]:
    response = await api.client.get(labels_path(stack_id), headers=api.admin)
    assert response.status_code == 200, response.text
    return [label["label"] for label in response.json()]


async def stored_annotations(api: Api, stack_id: str) -> list[tuple[str, str]]:
    response = await api.client.get(annotations_path(stack_id), headers=api.admin)
    assert response.status_code == 200, response.text
    return [(a["key"], a["value"]) for a in response.json()]


# --- labels ---------------------------------------------------------------------------------


async def test_owner_adds_label_as_bare_json_string_like_the_reference(api: Api) -> None:
    w = await world(api)
    response = await api.client.post(
        labels_path(w.stack["id"]), json="env:prod", headers=auth(w.owner_pak)
    )
    assert response.status_code == 201
    label = response.json()
    assert set(label) == LABEL_FIELDS
    assert label["stack_id"] == w.stack["id"] and label["label"] == "env:prod"
    listed = await api.client.get(labels_path(w.stack["id"]), headers=auth(w.owner_pak))
    assert listed.status_code == 200 and listed.json() == [label]
    [record] = await api.audit(action="stack.label_added")
    assert record["actor_type"] == "generator" and record["actor_id"] == w.owner["id"]
    assert record["resource_type"] == "stack" and record["resource_id"] == w.stack["id"]
    assert record["details"] == {"label": "env:prod"}


async def test_label_object_form_is_accepted_with_or_without_matching_stack_id(api: Api) -> None:
    w = await world(api)
    plain = await api.client.post(
        labels_path(w.stack["id"]), json={"label": "tier"}, headers=api.admin
    )
    assert plain.status_code == 201 and plain.json()["label"] == "tier"
    with_id = await api.client.post(
        labels_path(w.stack["id"]),
        json={"label": "zone", "stack_id": w.stack["id"]},
        headers=api.admin,
    )
    assert with_id.status_code == 201 and with_id.json()["stack_id"] == w.stack["id"]
    assert await stored_labels(api, w.stack["id"]) == ["tier", "zone"]


async def test_labels_are_listed_sorted_and_scoped_to_the_stack(api: Api) -> None:
    w = await world(api)
    other = await api.client.post("/api/v1/stacks", json={"name": "db"}, headers=api.admin)
    for label in ("zeta", "alpha", "mid"):
        await add_label(api, w.stack["id"], label)
    await add_label(api, other.json()["id"], "alpha")  # the same label on another stack is fine
    assert await stored_labels(api, w.stack["id"]) == ["alpha", "mid", "zeta"]
    assert await stored_labels(api, other.json()["id"]) == ["alpha"]


async def test_label_of_64_characters_is_accepted(api: Api) -> None:
    w = await world(api)
    label = await add_label(api, w.stack["id"], "l" * 64)
    assert label["label"] == "l" * 64


@pytest.mark.parametrize("form", ["string", "object"])
async def test_bad_labels_are_422_and_nothing_is_stored(api: Api, form: str) -> None:
    w = await world(api)
    for label in BAD_LABELS:
        body: object = label if form == "string" else {"label": label}
        response = await api.client.post(labels_path(w.stack["id"]), json=body, headers=api.admin)
        error = assert_error(response, 422, "validation_failed")
        assert "label" in error["details"]["fields"], label
    assert await api.count(tables.stack_labels) == 0
    assert await api.audit(action="stack.label_added") == []


async def test_label_body_of_the_wrong_shape_is_422(api: Api) -> None:
    w = await world(api)
    # httpx sends no body (and no Content-Type) for json=None: the JSON null goes as content.
    for content in (b"5", b"null", b'["env"]', b"{}", b'{"labels": "env"}'):
        response = await api.client.post(
            labels_path(w.stack["id"]),
            content=content,
            headers={**api.admin, "Content-Type": "application/json"},
        )
        assert_error(response, 422, "validation_failed")
    assert await api.count(tables.stack_labels) == 0


async def test_duplicate_label_is_409(api: Api) -> None:
    w = await world(api)
    await add_label(api, w.stack["id"], "env:prod")
    for body in ("env:prod", {"label": "env:prod"}):
        response = await api.client.post(labels_path(w.stack["id"]), json=body, headers=api.admin)
        assert_error(response, 409, "stack_label_exists")
    assert await stored_labels(api, w.stack["id"]) == ["env:prod"]
    assert len(await api.audit(action="stack.label_added")) == 1


async def test_label_with_mismatched_body_stack_id_is_403(api: Api) -> None:
    w = await world(api)
    response = await api.client.post(
        labels_path(w.stack["id"]),
        json={"label": "env", "stack_id": str(uuid.uuid4())},
        headers=api.admin,
    )
    assert_error(response, 403, "stack_id_mismatch")
    assert await api.count(tables.stack_labels) == 0


async def test_owner_removes_labels_with_special_characters_through_the_path(api: Api) -> None:
    w = await world(api)
    special = ["env:prod", "app.kubernetes.io/name", "a/b/c", "team=x", "50%", "q?x#y", "é"]
    for label in [*special, "keep"]:
        await add_label(api, w.stack["id"], label)
    for label in special:
        response = await api.client.delete(
            labels_path(w.stack["id"], label), headers=auth(w.owner_pak)
        )
        assert response.status_code == 204, (label, response.text)
    assert await stored_labels(api, w.stack["id"]) == ["keep"]
    records = await api.audit(action="stack.label_removed")
    assert sorted(record["details"]["label"] for record in records) == sorted(special)
    assert {(r["actor_type"], r["actor_id"], r["resource_id"]) for r in records} == {
        ("generator", w.owner["id"], w.stack["id"])
    }


async def test_removing_a_missing_label_is_404(api: Api) -> None:
    w = await world(api)
    await add_label(api, w.stack["id"], "env")
    for label in ("nope", "ENV", "env/extra"):
        response = await api.client.delete(labels_path(w.stack["id"], label), headers=api.admin)
        error = assert_error(response, 404, "stack_label_not_found")
        assert error["details"] == {"label": label}
    await api.client.delete(labels_path(w.stack["id"], "env"), headers=api.admin)
    again = await api.client.delete(labels_path(w.stack["id"], "env"), headers=api.admin)
    assert_error(again, 404, "stack_label_not_found")
    assert await api.audit(action="stack.label_removed") != []


# --- annotations ----------------------------------------------------------------------------


async def test_owner_adds_annotation_and_reads_it(api: Api) -> None:
    w = await world(api)
    response = await api.client.post(
        annotations_path(w.stack["id"]),
        json={"key": "region", "value": "eu-1"},
        headers=auth(w.owner_pak),
    )
    assert response.status_code == 201
    annotation = response.json()
    assert set(annotation) == ANNOTATION_FIELDS
    assert annotation["stack_id"] == w.stack["id"]
    assert (annotation["key"], annotation["value"]) == ("region", "eu-1")
    listed = await api.client.get(annotations_path(w.stack["id"]), headers=auth(w.owner_pak))
    assert listed.status_code == 200 and listed.json() == [annotation]
    [record] = await api.audit(action="stack.annotation_added")
    assert record["actor_type"] == "generator" and record["actor_id"] == w.owner["id"]
    assert record["resource_id"] == w.stack["id"]
    assert record["details"] == {"key": "region", "value": "eu-1"}


async def test_annotations_are_listed_sorted_by_key(api: Api) -> None:
    w = await world(api)
    await add_annotation(api, w.stack["id"], "k2", "v")
    await add_annotation(api, w.stack["id"], "k1", "v")
    assert await stored_annotations(api, w.stack["id"]) == [("k1", "v"), ("k2", "v")]


async def test_annotation_with_matching_body_stack_id_is_accepted(api: Api) -> None:
    w = await world(api)
    response = await api.client.post(
        annotations_path(w.stack["id"]),
        json={"key": "k", "value": "v", "stack_id": w.stack["id"]},
        headers=api.admin,
    )
    assert response.status_code == 201


async def test_annotation_with_mismatched_body_stack_id_is_403(api: Api) -> None:
    w = await world(api)
    response = await api.client.post(
        annotations_path(w.stack["id"]),
        json={"key": "k", "value": "v", "stack_id": str(uuid.uuid4())},
        headers=api.admin,
    )
    assert_error(response, 403, "stack_id_mismatch")
    assert await api.count(tables.stack_annotations) == 0


async def test_bad_annotations_are_422_and_nothing_is_stored(api: Api) -> None:
    w = await world(api)
    bodies: list[Mapping[str, object]] = [
        *({"key": bad, "value": "v"} for bad in BAD_LABELS),
        *({"key": "k", "value": bad} for bad in BAD_LABELS),
        {"key": "k"},
        {"value": "v"},
        {"key": "k", "value": 5},
        {"key": None, "value": "v"},
    ]
    for body in bodies:
        response = await api.client.post(
            annotations_path(w.stack["id"]), json=body, headers=api.admin
        )
        error = assert_error(response, 422, "validation_failed")
        assert error["details"]["fields"], body
    assert await api.count(tables.stack_annotations) == 0
    assert await api.audit(action="stack.annotation_added") == []


async def test_second_annotation_with_the_same_key_is_409(api: Api) -> None:
    w = await world(api)
    await add_annotation(api, w.stack["id"], "region", "eu-1")
    for value in ("eu-1", "us-1"):
        response = await api.client.post(
            annotations_path(w.stack["id"]),
            json={"key": "region", "value": value},
            headers=api.admin,
        )
        assert_error(response, 409, "stack_annotation_exists")
    assert await stored_annotations(api, w.stack["id"]) == [("region", "eu-1")]


async def test_owner_removes_annotations_with_special_keys_through_the_path(api: Api) -> None:
    w = await world(api)
    special = ["region", "app.kubernetes.io/part-of", "team:owner", "a/b/c"]
    for key in [*special, "keep"]:
        await add_annotation(api, w.stack["id"], key, "v")
    for key in special:
        response = await api.client.delete(
            annotations_path(w.stack["id"], key), headers=auth(w.owner_pak)
        )
        assert response.status_code == 204, (key, response.text)
    assert await stored_annotations(api, w.stack["id"]) == [("keep", "v")]
    records = await api.audit(action="stack.annotation_removed")
    assert sorted(record["details"]["key"] for record in records) == sorted(special)
    assert {(r["actor_type"], r["actor_id"]) for r in records} == {("generator", w.owner["id"])}


async def test_removing_a_missing_annotation_is_404(api: Api) -> None:
    w = await world(api)
    await add_annotation(api, w.stack["id"], "region", "eu-1")
    for key in ("nope", "eu-1", "REGION"):
        response = await api.client.delete(annotations_path(w.stack["id"], key), headers=api.admin)
        error = assert_error(response, 404, "stack_annotation_not_found")
        assert error["details"] == {"key": key}
    assert await stored_annotations(api, w.stack["id"]) == [("region", "eu-1")]


# --- who may write --------------------------------------------------------------------------


async def seed(api: Api, w: World) -> None:
    await add_label(api, w.stack["id"], "seed")
    await add_annotation(api, w.stack["id"], "seed", "v")


async def write(api: Api, w: World, kind: str, headers: dict[str, str]) -> httpx.Response:
    stack_id = w.stack["id"]
    if kind == "add-label":
        return await api.client.post(labels_path(stack_id), json="new", headers=headers)
    if kind == "remove-label":
        return await api.client.delete(labels_path(stack_id, "seed"), headers=headers)
    if kind == "add-annotation":
        return await api.client.post(
            annotations_path(stack_id), json={"key": "new", "value": "v"}, headers=headers
        )
    return await api.client.delete(annotations_path(stack_id, "seed"), headers=headers)


WRITES = {"add-label": 201, "remove-label": 204, "add-annotation": 201, "remove-annotation": 204}


@pytest.mark.parametrize("who", ["admin", "owner"])
async def test_admin_and_owner_may_write_metadata(api: Api, who: str) -> None:
    w = await world(api)
    await seed(api, w)
    for kind, status in WRITES.items():
        response = await write(api, w, kind, w.headers(api, who))
        assert response.status_code == status, (kind, response.text)
    assert await stored_labels(api, w.stack["id"]) == ["new"]
    assert await stored_annotations(api, w.stack["id"]) == [("new", "v")]


@pytest.mark.parametrize("who", ["other-generator", "agent", "associated-agent"])
async def test_others_cannot_write_metadata_and_nothing_changes(api: Api, who: str) -> None:
    w = await world(api)
    await seed(api, w)
    if who == "associated-agent":
        target = await api.client.post(
            f"/api/v1/agents/{w.agent['id']}/targets",
            json={"stack_id": w.stack["id"]},
            headers=api.admin,
        )
        assert target.status_code == 201
    headers = w.headers(api, "agent" if who == "associated-agent" else who)
    for kind in WRITES:
        assert_error(await write(api, w, kind, headers), 404, "stack_not_found")
    assert await stored_labels(api, w.stack["id"]) == ["seed"]
    assert await stored_annotations(api, w.stack["id"]) == [("seed", "v")]
    assert await api.count(tables.stack_labels) == 1
    assert await api.count(tables.stack_annotations) == 1


# --- who may read ---------------------------------------------------------------------------


async def associate(api: Api, w: World, how: str) -> None:
    """Associate the world's agent with its stack by target, label or annotation."""
    agent_id, stack_id = w.agent["id"], w.stack["id"]
    if how == "target":
        response = await api.client.post(
            f"/api/v1/agents/{agent_id}/targets", json={"stack_id": stack_id}, headers=api.admin
        )
    elif how == "label":
        await add_label(api, stack_id, "env:prod")
        response = await api.client.post(
            f"/api/v1/agents/{agent_id}/labels", json={"label": "env:prod"}, headers=api.admin
        )
    else:
        await add_annotation(api, stack_id, "region", "eu")
        response = await api.client.post(
            f"/api/v1/agents/{agent_id}/annotations",
            json={"key": "region", "value": "eu"},
            headers=api.admin,
        )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("who", ["admin", "owner"])
async def test_admin_and_owner_read_metadata(api: Api, who: str) -> None:
    w = await world(api)
    label = await add_label(api, w.stack["id"], "env")
    annotation = await add_annotation(api, w.stack["id"], "k", "v")
    headers = w.headers(api, who)
    labels = await api.client.get(labels_path(w.stack["id"]), headers=headers)
    assert labels.status_code == 200 and labels.json() == [label]
    annotations = await api.client.get(annotations_path(w.stack["id"]), headers=headers)
    assert annotations.status_code == 200 and annotations.json() == [annotation]


@pytest.mark.parametrize("how", ["target", "label", "annotation"])
async def test_associated_agent_reads_metadata_until_no_longer_associated(
    api: Api, how: str
) -> None:
    w = await world(api)
    await associate(api, w, how)
    headers = auth(w.agent_pak)
    labels = await api.client.get(labels_path(w.stack["id"]), headers=headers)
    annotations = await api.client.get(annotations_path(w.stack["id"]), headers=headers)
    assert labels.status_code == 200 and annotations.status_code == 200
    assert (
        labels.json()
        == (await api.client.get(labels_path(w.stack["id"]), headers=api.admin)).json()
    )
    # Break the association: the agent loses access.
    agent_path = f"/api/v1/agents/{w.agent['id']}"
    if how == "target":
        removal = await api.client.delete(
            f"{agent_path}/targets/{w.stack['id']}", headers=api.admin
        )
    elif how == "label":
        removal = await api.client.delete(labels_path(w.stack["id"], "env:prod"), headers=api.admin)
    else:
        removal = await api.client.delete(f"{agent_path}/annotations/region", headers=api.admin)
    assert removal.status_code == 204, removal.text
    for path in (labels_path(w.stack["id"]), annotations_path(w.stack["id"])):
        assert_error(await api.client.get(path, headers=headers), 404, "stack_not_found")


@pytest.mark.parametrize("who", ["other-generator", "agent"])
async def test_unassociated_callers_cannot_read_metadata(api: Api, who: str) -> None:
    w = await world(api)
    await seed(api, w)
    for path in (labels_path(w.stack["id"]), annotations_path(w.stack["id"])):
        response = await api.client.get(path, headers=w.headers(api, who))
        assert_error(response, 404, "stack_not_found")


async def test_partial_annotation_overlap_grants_no_read_access(api: Api) -> None:
    w = await world(api)
    await add_annotation(api, w.stack["id"], "region", "eu")
    for key, value in (("region", "us"), ("zone", "eu")):
        added = await api.client.post(
            f"/api/v1/agents/{w.agent['id']}/annotations",
            json={"key": key, "value": value},
            headers=api.admin,
        )
        assert added.status_code == 201
    response = await api.client.get(annotations_path(w.stack["id"]), headers=auth(w.agent_pak))
    assert_error(response, 404, "stack_not_found")


# --- unknown and deleted stacks --------------------------------------------------------------


async def test_unknown_or_deleted_stack_is_404_on_every_route(api: Api) -> None:
    w = await world(api)
    await seed(api, w)
    deleted = await api.client.delete(f"/api/v1/stacks/{w.stack['id']}", headers=api.admin)
    assert deleted.status_code == 204
    routes: list[tuple[str, str, object]] = [
        ("GET", "/labels", None),
        ("POST", "/labels", "env"),
        ("DELETE", "/labels/seed", None),
        ("GET", "/annotations", None),
        ("POST", "/annotations", {"key": "k", "value": "v"}),
        ("DELETE", "/annotations/seed", None),
    ]
    for method, path, body in routes:
        for stack_id in (str(uuid.uuid4()), w.stack["id"]):
            for headers in (api.admin, auth(w.owner_pak)):
                response = await api.client.request(
                    method,
                    f"/api/v1/stacks/{stack_id}{path}",
                    headers=headers,
                    json=body,
                )
                assert_error(response, 404, "stack_not_found")
