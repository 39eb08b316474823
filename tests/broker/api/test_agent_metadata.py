"""Agent labels and annotations: GET/POST /agents/{id}/labels and /annotations, DELETE
/agents/{id}/labels/{label} and /agents/{id}/annotations/{key}.

Covers the role matrix (admin writes; the agent itself only reads; other agents and generators
get 403), invalid labels/keys/values (422, nothing stored), duplicates (409), body `agent_id`
≠ path (403) or omitted, unknown and deleted agents (404), deleting missing entries (404),
labels and keys with URL-special characters deleted through the path, and audit records.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import pytest

from brokkr.broker.db import tables
from tests.broker.conftest import Api, assert_error, auth

LABEL_FIELDS = {"id", "agent_id", "label"}
ANNOTATION_FIELDS = {"id", "agent_id", "key", "value"}


def labels_path(agent_id: str, label: str | None = None) -> str:
    base = f"/api/v1/agents/{agent_id}/labels"
    return base if label is None else f"{base}/{quote(label, safe='')}"


def annotations_path(agent_id: str, key: str | None = None) -> str:
    base = f"/api/v1/agents/{agent_id}/annotations"
    return base if key is None else f"{base}/{quote(key, safe='')}"


async def add_label(api: Api, agent_id: str, label: str) -> dict[str, Any]:
    response = await api.client.post(
        labels_path(agent_id), json={"label": label}, headers=api.admin
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def add_annotation(api: Api, agent_id: str, key: str, value: str) -> dict[str, Any]:
    response = await api.client.post(
        annotations_path(agent_id), json={"key": key, "value": value}, headers=api.admin
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_admin_adds_label_and_agent_reads_it(api: Api) -> None:
    agent, pak = await api.create_agent()
    response = await api.client.post(
        labels_path(agent["id"]), json={"label": "env:prod"}, headers=api.admin
    )
    assert response.status_code == 201
    label = response.json()
    assert set(label) == LABEL_FIELDS
    assert label["agent_id"] == agent["id"] and label["label"] == "env:prod"
    for caller in (api.admin, auth(pak)):
        listed = await api.client.get(labels_path(agent["id"]), headers=caller)
        assert listed.status_code == 200 and listed.json() == [label]
    [record] = await api.audit(action="agent.label_added")
    assert record["actor_type"] == "admin" and record["resource_type"] == "agent"
    assert record["resource_id"] == agent["id"] and record["details"] == {"label": "env:prod"}


async def test_admin_adds_annotation_and_agent_reads_it(api: Api) -> None:
    agent, pak = await api.create_agent()
    response = await api.client.post(
        annotations_path(agent["id"]), json={"key": "region", "value": "eu-1"}, headers=api.admin
    )
    assert response.status_code == 201
    annotation = response.json()
    assert set(annotation) == ANNOTATION_FIELDS
    assert annotation["agent_id"] == agent["id"]
    assert (annotation["key"], annotation["value"]) == ("region", "eu-1")
    for caller in (api.admin, auth(pak)):
        listed = await api.client.get(annotations_path(agent["id"]), headers=caller)
        assert listed.status_code == 200 and listed.json() == [annotation]
    [record] = await api.audit(action="agent.annotation_added")
    assert record["actor_type"] == "admin" and record["resource_id"] == agent["id"]
    assert record["details"] == {"key": "region", "value": "eu-1"}


async def test_lists_are_sorted_and_scoped_to_the_agent(api: Api) -> None:
    agent, _ = await api.create_agent("a1")
    other, _ = await api.create_agent("a2")
    for label in ("zeta", "alpha", "mid"):
        await add_label(api, agent["id"], label)
    await add_label(api, other["id"], "alpha")  # the same label on another agent is fine
    await add_annotation(api, agent["id"], "k2", "v")
    await add_annotation(api, agent["id"], "k1", "v")
    labels = (await api.client.get(labels_path(agent["id"]), headers=api.admin)).json()
    assert [label["label"] for label in labels] == ["alpha", "mid", "zeta"]
    annotations = (await api.client.get(annotations_path(agent["id"]), headers=api.admin)).json()
    assert [annotation["key"] for annotation in annotations] == ["k1", "k2"]
    others = (await api.client.get(labels_path(other["id"]), headers=api.admin)).json()
    assert [label["label"] for label in others] == ["alpha"]


async def test_new_agent_has_no_labels_or_annotations(api: Api) -> None:
    agent, pak = await api.create_agent()
    assert (await api.client.get(labels_path(agent["id"]), headers=auth(pak))).json() == []
    assert (await api.client.get(annotations_path(agent["id"]), headers=auth(pak))).json() == []


@pytest.mark.parametrize("who", ["other-agent", "generator"])
@pytest.mark.parametrize("kind", ["labels", "annotations"])
async def test_other_agents_and_generators_cannot_read_metadata(
    api: Api, who: str, kind: str
) -> None:
    agent, _ = await api.create_agent("a1")
    _, other_pak = await api.create_agent("a2")
    _, generator_pak = await api.create_generator()
    await add_label(api, agent["id"], "secret")
    pak = other_pak if who == "other-agent" else generator_pak
    response = await api.client.get(f"/api/v1/agents/{agent['id']}/{kind}", headers=auth(pak))
    assert_error(response, 403, "agent_pak_mismatch")


@pytest.mark.parametrize("who", ["self", "other-agent", "generator"])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/labels", {"label": "new"}),
        ("DELETE", "/labels/old", None),
        ("POST", "/annotations", {"key": "new", "value": "v"}),
        ("DELETE", "/annotations/old", None),
    ],
)
async def test_only_admin_writes_metadata(
    api: Api, who: str, method: str, path: str, body: dict[str, str] | None
) -> None:
    agent, pak = await api.create_agent("a1")
    _, other_pak = await api.create_agent("a2")
    _, generator_pak = await api.create_generator()
    await add_label(api, agent["id"], "old")
    await add_annotation(api, agent["id"], "old", "v")
    caller = {"self": pak, "other-agent": other_pak, "generator": generator_pak}[who]
    response = await api.client.request(
        method, f"/api/v1/agents/{agent['id']}{path}", json=body, headers=auth(caller)
    )
    assert_error(response, 403, "admin_required")
    assert await api.count(tables.agent_labels) == 1
    assert await api.count(tables.agent_annotations) == 1
    actions = sorted(record["action"] for record in await api.audit(action="agent.*"))
    assert actions == [
        "agent.annotation_added",
        "agent.created",
        "agent.created",
        "agent.label_added",
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"label": ""},
        {"label": " "},
        {"label": "env prod"},
        {"label": "env\tprod"},
        {"label": "trailing\n"},
        {"label": " leading"},
        {"label": "x" * 65},
        {"label": None},
        {"label": 5},
        {},
    ],
)
async def test_bad_labels_are_422_and_nothing_is_stored(api: Api, body: dict[str, object]) -> None:
    agent, _ = await api.create_agent()
    response = await api.client.post(labels_path(agent["id"]), json=body, headers=api.admin)
    error = assert_error(response, 422, "validation_failed")
    assert "label" in str(error["details"]["fields"])
    assert await api.count(tables.agent_labels) == 0
    assert await api.audit(action="agent.label_added") == []


async def test_label_of_64_characters_is_accepted(api: Api) -> None:
    agent, _ = await api.create_agent()
    label = await add_label(api, agent["id"], "x" * 64)
    assert label["label"] == "x" * 64


@pytest.mark.parametrize(
    "body",
    [
        {"key": "", "value": "v"},
        {"key": "k", "value": ""},
        {"key": "a key", "value": "v"},
        {"key": "k", "value": "a value"},
        {"key": "k\n", "value": "v"},
        {"key": "x" * 65, "value": "v"},
        {"key": "k", "value": "x" * 65},
        {"key": "k"},
        {"value": "v"},
        {"key": "k", "value": 1},
    ],
)
async def test_bad_annotations_are_422_and_nothing_is_stored(
    api: Api, body: dict[str, object]
) -> None:
    agent, _ = await api.create_agent()
    response = await api.client.post(annotations_path(agent["id"]), json=body, headers=api.admin)
    error = assert_error(response, 422, "validation_failed")
    assert error["details"]["fields"]
    assert await api.count(tables.agent_annotations) == 0


async def test_annotation_of_64_character_key_and_value_is_accepted(api: Api) -> None:
    agent, _ = await api.create_agent()
    annotation = await add_annotation(api, agent["id"], "k" * 64, "v" * 64)
    assert (annotation["key"], annotation["value"]) == ("k" * 64, "v" * 64)


async def test_malformed_json_is_400(api: Api) -> None:
    agent, _ = await api.create_agent()
    response = await api.client.post(
        labels_path(agent["id"]),
        content=b'{"label": ',
        headers={**api.admin, "content-type": "application/json"},
    )
    assert_error(response, 400, "invalid_json")


async def test_duplicate_label_is_409(api: Api) -> None:
    agent, _ = await api.create_agent()
    await add_label(api, agent["id"], "dup")
    response = await api.client.post(
        labels_path(agent["id"]), json={"label": "dup"}, headers=api.admin
    )
    error = assert_error(response, 409, "agent_label_exists")
    assert error["details"] == {"label": "dup"}
    assert await api.count(tables.agent_labels) == 1
    assert len(await api.audit(action="agent.label_added")) == 1


async def test_duplicate_annotation_key_is_409_even_with_another_value(api: Api) -> None:
    agent, _ = await api.create_agent()
    await add_annotation(api, agent["id"], "tier", "gold")
    response = await api.client.post(
        annotations_path(agent["id"]), json={"key": "tier", "value": "silver"}, headers=api.admin
    )
    error = assert_error(response, 409, "agent_annotation_exists")
    assert error["details"] == {"key": "tier"}
    listed = (await api.client.get(annotations_path(agent["id"]), headers=api.admin)).json()
    assert [(a["key"], a["value"]) for a in listed] == [("tier", "gold")]


@pytest.mark.parametrize(
    ("kind", "body"),
    [("labels", {"label": "l"}), ("annotations", {"key": "k", "value": "v"})],
)
async def test_body_agent_id_must_match_the_path(api: Api, kind: str, body: dict[str, str]) -> None:
    agent, _ = await api.create_agent("a1")
    other, _ = await api.create_agent("a2")
    path = f"/api/v1/agents/{agent['id']}/{kind}"
    for wrong in (other["id"], str(uuid.uuid4())):
        response = await api.client.post(path, json={**body, "agent_id": wrong}, headers=api.admin)
        error = assert_error(response, 403, "agent_id_mismatch")
        assert error["details"] == {"field": "agent_id"}
    assert await api.count(tables.agent_labels) == 0
    assert await api.count(tables.agent_annotations) == 0
    matching = await api.client.post(
        path, json={**body, "agent_id": agent["id"]}, headers=api.admin
    )
    assert matching.status_code == 201 and matching.json()["agent_id"] == agent["id"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/labels", None),
        ("POST", "/labels", {"label": "l"}),
        ("DELETE", "/labels/l", None),
        ("GET", "/annotations", None),
        ("POST", "/annotations", {"key": "k", "value": "v"}),
        ("DELETE", "/annotations/k", None),
    ],
)
@pytest.mark.parametrize("state", ["unknown", "deleted"])
async def test_unknown_or_deleted_agent_is_404(
    api: Api, state: str, method: str, path: str, body: dict[str, str] | None
) -> None:
    if state == "unknown":
        agent_id = str(uuid.uuid4())
    else:
        agent, _ = await api.create_agent()
        agent_id = agent["id"]
        await add_label(api, agent_id, "l")
        await add_annotation(api, agent_id, "k", "v")
        deleted = await api.client.delete(f"/api/v1/agents/{agent_id}", headers=api.admin)
        assert deleted.status_code == 204
    response = await api.client.request(
        method, f"/api/v1/agents/{agent_id}{path}", json=body, headers=api.admin
    )
    assert_error(response, 404, "agent_not_found")


async def test_deleting_a_missing_label_or_annotation_is_404(api: Api) -> None:
    agent, _ = await api.create_agent()
    await add_label(api, agent["id"], "present")
    await add_annotation(api, agent["id"], "present", "v")
    label = await api.client.delete(labels_path(agent["id"], "absent"), headers=api.admin)
    error = assert_error(label, 404, "agent_label_not_found")
    assert error["details"] == {"label": "absent"}
    annotation = await api.client.delete(annotations_path(agent["id"], "absent"), headers=api.admin)
    error = assert_error(annotation, 404, "agent_annotation_not_found")
    assert error["details"] == {"key": "absent"}
    assert await api.count(tables.agent_labels) == 1
    assert await api.count(tables.agent_annotations) == 1


async def test_deleting_a_label_twice_is_404_the_second_time(api: Api) -> None:
    agent, _ = await api.create_agent()
    await add_label(api, agent["id"], "once")
    first = await api.client.delete(labels_path(agent["id"], "once"), headers=api.admin)
    assert first.status_code == 204 and first.content == b""
    second = await api.client.delete(labels_path(agent["id"], "once"), headers=api.admin)
    assert_error(second, 404, "agent_label_not_found")


async def test_removing_a_label_leaves_other_agents_alone(api: Api) -> None:
    agent, _ = await api.create_agent("a1")
    other, _ = await api.create_agent("a2")
    await add_label(api, agent["id"], "shared")
    kept = await add_label(api, other["id"], "shared")
    response = await api.client.delete(labels_path(agent["id"], "shared"), headers=api.admin)
    assert response.status_code == 204
    assert (await api.client.get(labels_path(agent["id"]), headers=api.admin)).json() == []
    assert (await api.client.get(labels_path(other["id"]), headers=api.admin)).json() == [kept]


SPECIAL = ["env:prod", "a.b-c_d", "x=y", "50%", "a+b", "q?x", "h#1", "t&g", "ünï", "~!$'()*,;@"]


@pytest.mark.parametrize("label", SPECIAL)
async def test_label_with_url_special_characters_is_deleted_through_the_path(
    api: Api, label: str
) -> None:
    agent, _ = await api.create_agent()
    await add_label(api, agent["id"], label)
    await add_label(api, agent["id"], "other")
    response = await api.client.delete(labels_path(agent["id"], label), headers=api.admin)
    assert response.status_code == 204, response.text
    listed = (await api.client.get(labels_path(agent["id"]), headers=api.admin)).json()
    assert [entry["label"] for entry in listed] == ["other"]
    [record] = await api.audit(action="agent.label_removed")
    assert record["actor_type"] == "admin" and record["resource_id"] == agent["id"]
    assert record["details"] == {"label": label}


@pytest.mark.parametrize("key", SPECIAL)
async def test_annotation_with_url_special_key_is_deleted_through_the_path(
    api: Api, key: str
) -> None:
    agent, _ = await api.create_agent()
    await add_annotation(api, agent["id"], key, "v")
    response = await api.client.delete(annotations_path(agent["id"], key), headers=api.admin)
    assert response.status_code == 204, response.text
    assert (await api.client.get(annotations_path(agent["id"]), headers=api.admin)).json() == []
    [record] = await api.audit(action="agent.annotation_removed")
    assert record["actor_type"] == "admin" and record["resource_id"] == agent["id"]
    assert record["details"] == {"key": key}


async def test_annotation_key_with_a_slash_is_deleted_through_the_path(api: Api) -> None:
    agent, _ = await api.create_agent()
    await add_annotation(api, agent["id"], "app.kubernetes.io/name", "v")
    response = await api.client.delete(
        annotations_path(agent["id"], "app.kubernetes.io/name"), headers=api.admin
    )
    assert response.status_code == 204, response.text
