"""Targeting: GET/POST/DELETE /api/v1/agents/{id}/targets[/{stack_id}] and
GET /api/v1/agents/{id}/stacks.

Covers explicit targets (admin targets any stack; the owning generator targets its own stack at
any agent; another generator's stack is 404 `stack_not_found` like a missing one and agents 403
`target_create_denied`, nothing stored; body `agent_id` ≠ path 403 `agent_id_mismatch`;
duplicates 409 `agent_target_exists`; unknown or deleted stacks and agents 404; removing a
missing target 404 `agent_target_not_found`; audit records), who may read an agent's targets
and stacks (admin and the agent itself; others 403 `agent_pak_mismatch`), and the matching of
D12: a stack reaches an agent through ANY one shared label (exact, case-sensitive string), ANY
one shared annotation key=value pair (key or value alone is not enough) or an explicit target;
the result is the de-duplicated union sorted by stack id; removing the label/annotation/target
(on either side) or deleting the stack removes it. Finally, a generator cannot make its stack
reach an agent by any path other than its own stack's labels, annotations and targets.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest

from brokkr.broker.db import tables
from tests.broker.conftest import Api, assert_error, auth

TARGET_FIELDS = {"id", "agent_id", "stack_id"}


@dataclass
class World:
    """A generator owning one stack, another generator, and two agents."""

    owner: dict[str, Any]
    owner_pak: str
    other: dict[str, Any]
    other_pak: str
    agent: dict[str, Any]
    agent_pak: str
    second_agent: dict[str, Any]
    second_pak: str
    stack: dict[str, Any]

    def headers(self, api: Api, who: str) -> dict[str, str]:
        return {
            "admin": api.admin,
            "owner": auth(self.owner_pak),
            "other-generator": auth(self.other_pak),
            "agent": auth(self.agent_pak),
            "other-agent": auth(self.second_pak),
        }[who]


async def create_stack(api: Api, headers: dict[str, str], name: str) -> dict[str, Any]:
    response = await api.client.post("/api/v1/stacks", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.text
    stack: dict[str, Any] = response.json()
    return stack


async def world(api: Api) -> World:
    owner, owner_pak = await api.create_generator("owner")
    other, other_pak = await api.create_generator("other")
    agent, agent_pak = await api.create_agent("a1")
    second, second_pak = await api.create_agent("a2")
    stack = await create_stack(api, auth(owner_pak), "web")
    return World(owner, owner_pak, other, other_pak, agent, agent_pak, second, second_pak, stack)


def targets_path(agent_id: str, stack_id: str | None = None) -> str:
    base = f"/api/v1/agents/{agent_id}/targets"
    return base if stack_id is None else f"{base}/{stack_id}"


async def target(api: Api, agent_id: str, stack_id: str) -> dict[str, Any]:
    response = await api.client.post(
        targets_path(agent_id), json={"stack_id": stack_id}, headers=api.admin
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def label_agent(api: Api, agent_id: str, label: str) -> None:
    response = await api.client.post(
        f"/api/v1/agents/{agent_id}/labels", json={"label": label}, headers=api.admin
    )
    assert response.status_code == 201, response.text


async def annotate_agent(api: Api, agent_id: str, key: str, value: str) -> None:
    response = await api.client.post(
        f"/api/v1/agents/{agent_id}/annotations",
        json={"key": key, "value": value},
        headers=api.admin,
    )
    assert response.status_code == 201, response.text


async def label_stack(api: Api, stack_id: str, label: str) -> None:
    response = await api.client.post(
        f"/api/v1/stacks/{stack_id}/labels", json=label, headers=api.admin
    )
    assert response.status_code == 201, response.text


async def annotate_stack(api: Api, stack_id: str, key: str, value: str) -> None:
    response = await api.client.post(
        f"/api/v1/stacks/{stack_id}/annotations",
        json={"key": key, "value": value},
        headers=api.admin,
    )
    assert response.status_code == 201, response.text


async def stacks_of(api: Api, agent_id: str) -> list[str]:
    """Ids of the stacks GET /agents/{id}/stacks returns, in the order returned."""
    response = await api.client.get(f"/api/v1/agents/{agent_id}/stacks", headers=api.admin)
    assert response.status_code == 200, response.text
    return [stack["id"] for stack in response.json()]


# --- explicit targets -----------------------------------------------------------------------


async def test_admin_targets_a_stack_and_the_agent_sees_it(api: Api) -> None:
    w = await world(api)
    response = await api.client.post(
        targets_path(w.agent["id"]), json={"stack_id": w.stack["id"]}, headers=api.admin
    )
    assert response.status_code == 201
    created = response.json()
    assert set(created) == TARGET_FIELDS
    assert created["agent_id"] == w.agent["id"] and created["stack_id"] == w.stack["id"]
    for headers in (api.admin, auth(w.agent_pak)):
        listed = await api.client.get(targets_path(w.agent["id"]), headers=headers)
        assert listed.status_code == 200 and listed.json() == [created]
        stacks = await api.client.get(f"/api/v1/agents/{w.agent['id']}/stacks", headers=headers)
        assert stacks.status_code == 200 and stacks.json() == [w.stack]
    assert await stacks_of(api, w.second_agent["id"]) == []
    [record] = await api.audit(action="agent.target_added")
    assert record["actor_type"] == "admin" and record["resource_type"] == "agent"
    assert record["resource_id"] == w.agent["id"]
    assert record["details"] == {"stack_id": w.stack["id"]}


async def test_owning_generator_targets_its_stack_at_any_agent(api: Api) -> None:
    w = await world(api)
    for agent in (w.agent, w.second_agent):
        response = await api.client.post(
            targets_path(agent["id"]), json={"stack_id": w.stack["id"]}, headers=auth(w.owner_pak)
        )
        assert response.status_code == 201, response.text
        assert await stacks_of(api, agent["id"]) == [w.stack["id"]]
    records = await api.audit(action="agent.target_added")
    assert {(r["actor_type"], r["actor_id"]) for r in records} == {("generator", w.owner["id"])}
    assert {r["resource_id"] for r in records} == {w.agent["id"], w.second_agent["id"]}


@pytest.mark.parametrize(
    ("who", "code"),
    [
        ("other-generator", "stack_not_found"),
        ("agent", "target_create_denied"),
        ("other-agent", "target_create_denied"),
    ],
)
async def test_others_cannot_add_targets_and_nothing_is_stored(
    api: Api, who: str, code: str
) -> None:
    w = await world(api)
    response = await api.client.post(
        targets_path(w.agent["id"]), json={"stack_id": w.stack["id"]}, headers=w.headers(api, who)
    )
    assert_error(response, 404 if code == "stack_not_found" else 403, code)
    assert await api.count(tables.agent_targets) == 0
    assert await stacks_of(api, w.agent["id"]) == []
    assert await api.audit(action="agent.target_added") == []


@pytest.mark.parametrize(
    ("who", "code"),
    [
        ("admin", None),
        ("owner", None),
        ("other-generator", "stack_not_found"),
        ("agent", "target_create_denied"),
    ],
)
async def test_remove_target_role_matrix(api: Api, who: str, code: str | None) -> None:
    w = await world(api)
    await target(api, w.agent["id"], w.stack["id"])
    response = await api.client.delete(
        targets_path(w.agent["id"], w.stack["id"]), headers=w.headers(api, who)
    )
    if code is None:
        assert response.status_code == 204
        assert await stacks_of(api, w.agent["id"]) == []
        [record] = await api.audit(action="agent.target_removed")
        assert record["actor_type"] == ("admin" if who == "admin" else "generator")
        assert record["resource_id"] == w.agent["id"]
        assert record["details"] == {"stack_id": w.stack["id"]}
    else:
        assert_error(response, 404 if code == "stack_not_found" else 403, code)
        assert await stacks_of(api, w.agent["id"]) == [w.stack["id"]]
        assert await api.count(tables.agent_targets) == 1


async def test_body_agent_id_must_match_the_path(api: Api) -> None:
    w = await world(api)
    mismatched = await api.client.post(
        targets_path(w.agent["id"]),
        json={"stack_id": w.stack["id"], "agent_id": w.second_agent["id"]},
        headers=api.admin,
    )
    assert_error(mismatched, 403, "agent_id_mismatch")
    assert await api.count(tables.agent_targets) == 0
    matching = await api.client.post(
        targets_path(w.agent["id"]),
        json={"stack_id": w.stack["id"], "agent_id": w.agent["id"]},
        headers=api.admin,
    )
    assert matching.status_code == 201 and matching.json()["agent_id"] == w.agent["id"]


async def test_duplicate_target_is_409(api: Api) -> None:
    w = await world(api)
    await target(api, w.agent["id"], w.stack["id"])
    for headers in (api.admin, auth(w.owner_pak)):
        response = await api.client.post(
            targets_path(w.agent["id"]), json={"stack_id": w.stack["id"]}, headers=headers
        )
        assert_error(response, 409, "agent_target_exists")
    assert await api.count(tables.agent_targets) == 1


async def test_unknown_or_deleted_stack_is_404_and_nothing_is_stored(api: Api) -> None:
    w = await world(api)
    deleted = await create_stack(api, auth(w.owner_pak), "gone")
    await api.client.delete(f"/api/v1/stacks/{deleted['id']}", headers=api.admin)
    for stack_id in (str(uuid.uuid4()), deleted["id"]):
        for headers in (api.admin, auth(w.owner_pak)):
            response = await api.client.post(
                targets_path(w.agent["id"]), json={"stack_id": stack_id}, headers=headers
            )
            assert_error(response, 404, "stack_not_found")
    assert await api.count(tables.agent_targets) == 0


async def test_unknown_or_deleted_agent_is_404_and_nothing_is_stored(api: Api) -> None:
    w = await world(api)
    await api.client.delete(f"/api/v1/agents/{w.second_agent['id']}", headers=api.admin)
    for agent_id in (str(uuid.uuid4()), w.second_agent["id"]):
        for headers in (api.admin, auth(w.owner_pak)):
            response = await api.client.post(
                targets_path(agent_id), json={"stack_id": w.stack["id"]}, headers=headers
            )
            assert_error(response, 404, "agent_not_found")
        for path in (targets_path(agent_id), f"/api/v1/agents/{agent_id}/stacks"):
            assert_error(await api.client.get(path, headers=api.admin), 404, "agent_not_found")
    assert await api.count(tables.agent_targets) == 0


@pytest.mark.parametrize("body", [{}, {"stack_id": "nope"}, {"stack_id": None}, {"agent_id": 5}])
async def test_add_target_rejects_bad_body(api: Api, body: dict[str, object]) -> None:
    w = await world(api)
    response = await api.client.post(targets_path(w.agent["id"]), json=body, headers=api.admin)
    error = assert_error(response, 422, "validation_failed")
    assert error["details"]["fields"]
    assert await api.count(tables.agent_targets) == 0


async def test_removing_a_missing_target_is_404(api: Api) -> None:
    w = await world(api)
    other_stack = await create_stack(api, auth(w.owner_pak), "db")
    await target(api, w.agent["id"], other_stack["id"])
    for agent_id in (w.agent["id"], w.second_agent["id"]):
        response = await api.client.delete(targets_path(agent_id, w.stack["id"]), headers=api.admin)
        assert_error(response, 404, "agent_target_not_found")
    unknown = await api.client.delete(
        targets_path(w.agent["id"], str(uuid.uuid4())), headers=api.admin
    )
    assert_error(unknown, 404, "stack_not_found")
    assert await api.count(tables.agent_targets) == 1
    assert await api.audit(action="agent.target_removed") == []


# --- who may read ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "code"),
    [
        ("admin", None),
        ("agent", None),
        ("other-agent", "agent_pak_mismatch"),
        ("owner", "agent_pak_mismatch"),
        ("other-generator", "agent_pak_mismatch"),
    ],
)
async def test_targets_and_stacks_readable_by_admin_and_the_agent_only(
    api: Api, who: str, code: str | None
) -> None:
    w = await world(api)
    created = await target(api, w.agent["id"], w.stack["id"])
    headers = w.headers(api, who)
    targets = await api.client.get(targets_path(w.agent["id"]), headers=headers)
    stacks = await api.client.get(f"/api/v1/agents/{w.agent['id']}/stacks", headers=headers)
    if code is None:
        assert targets.status_code == 200 and targets.json() == [created]
        assert stacks.status_code == 200 and stacks.json() == [w.stack]
    else:
        assert_error(targets, 403, code)
        assert_error(stacks, 403, code)


# --- matching -------------------------------------------------------------------------------


async def test_any_one_shared_label_matches_exactly_and_case_sensitively(api: Api) -> None:
    w = await world(api)
    await label_stack(api, w.stack["id"], "env:prod")
    await label_stack(api, w.stack["id"], "tier:web")
    matching, _ = await api.create_agent("match")
    await label_agent(api, matching["id"], "tier:web")
    await label_agent(api, matching["id"], "unrelated")
    misses: list[dict[str, Any]] = []
    for index, label in enumerate(["env:PROD", "env", "prod", "env:prod2", "tier"]):
        miss, _ = await api.create_agent(f"miss-{index}")
        await label_agent(api, miss["id"], label)
        misses.append(miss)
    assert await stacks_of(api, matching["id"]) == [w.stack["id"]]
    for agent in [*misses, w.agent]:
        assert await stacks_of(api, agent["id"]) == []
    # The matched agent reads the stack's metadata; an unmatched one does not.
    labels_path = f"/api/v1/stacks/{w.stack['id']}/labels"
    assert_error(
        await api.client.get(labels_path, headers=auth(w.agent_pak)), 404, "stack_not_found"
    )


async def test_annotation_matches_only_on_the_same_key_and_value(api: Api) -> None:
    w = await world(api)
    await annotate_stack(api, w.stack["id"], "region", "eu")
    await annotate_stack(api, w.stack["id"], "tier", "web")
    matching, _ = await api.create_agent("match")
    await annotate_agent(api, matching["id"], "tier", "web")
    await annotate_agent(api, matching["id"], "region", "us")
    cases = [
        [("region", "us")],  # key alone
        [("zone", "eu")],  # value alone
        [("region", "web"), ("tier", "eu")],  # keys and values swapped
        [("REGION", "eu")],  # case-sensitive
        [("region", "EU")],
    ]
    misses: list[dict[str, Any]] = []
    for index, pairs in enumerate(cases):
        miss, _ = await api.create_agent(f"miss-{index}")
        for key, value in pairs:
            await annotate_agent(api, miss["id"], key, value)
        misses.append(miss)
    # A label equal to "key=value" or "key:value" is not an annotation either.
    labelled, _ = await api.create_agent("labelled")
    await label_agent(api, labelled["id"], "region=eu")
    await label_agent(api, labelled["id"], "region:eu")
    assert await stacks_of(api, matching["id"]) == [w.stack["id"]]
    for agent in [*misses, labelled, w.agent]:
        assert await stacks_of(api, agent["id"]) == []


async def test_stacks_are_the_deduplicated_union_sorted_by_id(api: Api) -> None:
    w = await world(api)
    by_all = w.stack
    by_label = await create_stack(api, auth(w.other_pak), "by-label")
    by_annotation = await create_stack(api, api.admin, "by-annotation")
    by_target = await create_stack(api, auth(w.owner_pak), "by-target")
    unrelated = await create_stack(api, auth(w.owner_pak), "unrelated")
    agent_id = w.agent["id"]
    await label_agent(api, agent_id, "env:prod")
    await label_agent(api, agent_id, "team:a")
    await annotate_agent(api, agent_id, "region", "eu")
    for stack in (by_all, by_label):
        await label_stack(api, stack["id"], "env:prod")
    await label_stack(api, by_all["id"], "team:a")  # two shared labels: still listed once
    for stack in (by_all, by_annotation):
        await annotate_stack(api, stack["id"], "region", "eu")
    for stack in (by_all, by_target):
        await target(api, agent_id, stack["id"])
    await label_stack(api, unrelated["id"], "env:dev")
    expected = sorted(s["id"] for s in (by_all, by_label, by_annotation, by_target))
    assert await stacks_of(api, agent_id) == expected
    listed = await api.client.get(f"/api/v1/agents/{agent_id}/stacks", headers=auth(w.agent_pak))
    assert [stack["id"] for stack in listed.json()] == expected
    assert {stack["name"] for stack in listed.json()} == {
        "web",
        "by-label",
        "by-annotation",
        "by-target",
    }
    # Explicit targets stay explicit: matching creates no target rows.
    targets = (await api.client.get(targets_path(agent_id), headers=api.admin)).json()
    assert sorted(t["stack_id"] for t in targets) == sorted([by_all["id"], by_target["id"]])
    assert await stacks_of(api, w.second_agent["id"]) == []


async def test_removing_a_label_on_either_side_removes_the_stack(api: Api) -> None:
    w = await world(api)
    other_stack = await create_stack(api, auth(w.owner_pak), "db")
    for stack in (w.stack, other_stack):
        await label_stack(api, stack["id"], "app.kubernetes.io/part-of:web")
    await label_agent(api, w.agent["id"], "app.kubernetes.io/part-of:web")
    label = quote("app.kubernetes.io/part-of:web", safe="")
    assert await stacks_of(api, w.agent["id"]) == sorted([w.stack["id"], other_stack["id"]])
    removed = await api.client.delete(
        f"/api/v1/stacks/{w.stack['id']}/labels/{label}", headers=auth(w.owner_pak)
    )
    assert removed.status_code == 204
    assert await stacks_of(api, w.agent["id"]) == [other_stack["id"]]
    removed = await api.client.delete(
        f"/api/v1/agents/{w.agent['id']}/labels/{label}", headers=api.admin
    )
    assert removed.status_code == 204
    assert await stacks_of(api, w.agent["id"]) == []


async def test_removing_an_annotation_on_either_side_removes_the_stack(api: Api) -> None:
    w = await world(api)
    other_stack = await create_stack(api, auth(w.owner_pak), "db")
    for stack in (w.stack, other_stack):
        await annotate_stack(api, stack["id"], "region", "eu")
    await annotate_agent(api, w.agent["id"], "region", "eu")
    assert await stacks_of(api, w.agent["id"]) == sorted([w.stack["id"], other_stack["id"]])
    removed = await api.client.delete(
        f"/api/v1/stacks/{w.stack['id']}/annotations/region", headers=auth(w.owner_pak)
    )
    assert removed.status_code == 204
    assert await stacks_of(api, w.agent["id"]) == [other_stack["id"]]
    removed = await api.client.delete(
        f"/api/v1/agents/{w.agent['id']}/annotations/region", headers=api.admin
    )
    assert removed.status_code == 204
    assert await stacks_of(api, w.agent["id"]) == []


async def test_deleted_stacks_disappear_whatever_the_path(api: Api) -> None:
    w = await world(api)
    await label_stack(api, w.stack["id"], "env")
    await annotate_stack(api, w.stack["id"], "k", "v")
    await target(api, w.agent["id"], w.stack["id"])
    await label_agent(api, w.agent["id"], "env")
    await annotate_agent(api, w.agent["id"], "k", "v")
    await label_agent(api, w.second_agent["id"], "env")
    kept = await create_stack(api, auth(w.other_pak), "kept")
    await target(api, w.agent["id"], kept["id"])
    deleted = await api.client.delete(f"/api/v1/stacks/{w.stack['id']}", headers=api.admin)
    assert deleted.status_code == 204
    assert await stacks_of(api, w.agent["id"]) == [kept["id"]]
    assert await stacks_of(api, w.second_agent["id"]) == []


async def test_stacks_of_a_deleted_generator_disappear(api: Api) -> None:
    w = await world(api)
    await target(api, w.agent["id"], w.stack["id"])
    await label_stack(api, w.stack["id"], "env")
    await label_agent(api, w.second_agent["id"], "env")
    deleted = await api.client.delete(f"/api/v1/generators/{w.owner['id']}", headers=api.admin)
    assert deleted.status_code == 204
    assert await stacks_of(api, w.agent["id"]) == []
    assert await stacks_of(api, w.second_agent["id"]) == []


# --- a generator's reach --------------------------------------------------------------------


async def test_generator_cannot_reach_an_agent_except_through_its_own_stack(api: Api) -> None:
    """The other generator tries every path to put its stack (or get the owner's stack) in
    front of an agent that the owner's stack reaches; all fail and nothing changes."""
    w = await world(api)
    mine = await create_stack(api, auth(w.other_pak), "mine")
    await label_stack(api, w.stack["id"], "env:prod")
    await annotate_stack(api, w.stack["id"], "region", "eu")
    await label_agent(api, w.agent["id"], "env:prod")
    before = {
        table.name: await api.count(table)
        for table in (
            tables.agent_labels,
            tables.agent_annotations,
            tables.agent_targets,
            tables.stack_labels,
            tables.stack_annotations,
            tables.stacks,
        )
    }
    headers = auth(w.other_pak)
    agent_path = f"/api/v1/agents/{w.agent['id']}"
    owner_stack = f"/api/v1/stacks/{w.stack['id']}"
    attempts: list[tuple[str, str, object, str]] = [
        # Labels and annotations on agents are admin-only.
        ("POST", f"{agent_path}/labels", {"label": "team:other"}, "admin_required"),
        ("POST", f"{agent_path}/annotations", {"key": "k", "value": "v"}, "admin_required"),
        ("DELETE", f"{agent_path}/labels/env:prod", None, "admin_required"),
        # The owner's stack cannot be targeted, labelled, annotated, taken over or deleted.
        # To it the owner's stack does not exist (404, no existence oracle).
        ("POST", f"{agent_path}/targets", {"stack_id": w.stack["id"]}, "stack_not_found"),
        ("POST", f"{owner_stack}/labels", "team:other", "stack_not_found"),
        ("POST", f"{owner_stack}/annotations", {"key": "k", "value": "v"}, "stack_not_found"),
        ("DELETE", f"{owner_stack}/labels/env:prod", None, "stack_not_found"),
        ("PUT", owner_stack, {"generator_id": w.other["id"]}, "stack_not_found"),
        ("DELETE", owner_stack, None, "stack_not_found"),
        # Its own stack cannot be handed to the owner, nor a new one created in the owner's name.
        (
            "PUT",
            f"/api/v1/stacks/{mine['id']}",
            {"generator_id": w.owner["id"]},
            "stack_owner_immutable",
        ),
        (
            "POST",
            "/api/v1/stacks",
            {"name": "sneaky", "generator_id": w.owner["id"]},
            "stack_generator_mismatch",
        ),
    ]
    for method, path, body, code in attempts:
        response = await api.client.request(method, path, headers=headers, json=body)
        assert_error(response, 404 if code == "stack_not_found" else 403, code)
    after = {table: await api.count(getattr(tables, table)) for table in before}
    assert after == before
    assert await stacks_of(api, w.agent["id"]) == [w.stack["id"]]
    listed = (await api.client.get("/api/v1/stacks", headers=auth(w.owner_pak))).json()
    assert [stack["id"] for stack in listed] == [w.stack["id"]]
    # Through its own stack's labels it does reach agents carrying them (and only them).
    await api.client.post(f"/api/v1/stacks/{mine['id']}/labels", json="env:prod", headers=headers)
    assert await stacks_of(api, w.agent["id"]) == sorted([w.stack["id"], mine["id"]])
    assert await stacks_of(api, w.second_agent["id"]) == []
