"""Stacks API: POST/GET/PUT/DELETE /api/v1/stacks[/{id}] and GET /api/v1/stacks?generator_id=.

Covers ownership by generator (D8): the role matrix of every endpoint (admin / owning generator /
another generator / an agent) with the codes `stacks_list_denied`, `stack_create_denied` and
`stack_generator_mismatch`, and a foreign stack answered exactly like a missing one on every stack
route (404 `stack_not_found`, no existence oracle); the default owner (the calling generator, for
admins the built-in `admin-generator`), admin-chosen owners and unknown or deleted ones (422
`generator_not_found`); global unique names (409 `stack_name_taken`, reusable after a delete); name
and description validation (D14); PUT as a partial update of name/description that also takes a full
reference Stack body, with `id_mismatch`, `stack_owner_immutable` and ignored timestamps; soft,
idempotent deletes (D15) and the cascade from a deleted generator (D13); and the `stack.created` /
`stack.updated` / `stack.deleted` audit records with the real actor.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from brokkr.broker.db import tables
from tests.broker.conftest import Api, assert_error, auth

STACK_FIELDS = {
    "id",
    "created_at",
    "updated_at",
    "deleted_at",
    "name",
    "description",
    "generator_id",
}
ROLES = ["admin", "owner", "other-generator", "agent"]


@dataclass
class World:
    """An owning generator with one stack, another generator and an agent."""

    owner: dict[str, Any]
    owner_pak: str
    other: dict[str, Any]
    other_pak: str
    agent_pak: str
    stack: dict[str, Any]

    def headers(self, api: Api, who: str) -> dict[str, str]:
        return {
            "admin": api.admin,
            "owner": auth(self.owner_pak),
            "other-generator": auth(self.other_pak),
            "agent": auth(self.agent_pak),
        }[who]


async def create_stack(
    api: Api, pak: str | None = None, name: str = "web", **fields: Any
) -> dict[str, Any]:
    headers = api.admin if pak is None else auth(pak)
    response = await api.client.post(
        "/api/v1/stacks", json={"name": name, **fields}, headers=headers
    )
    assert response.status_code == 201, response.text
    stack: dict[str, Any] = response.json()
    return stack


async def world(api: Api) -> World:
    owner, owner_pak = await api.create_generator("owner")
    other, other_pak = await api.create_generator("other")
    _, agent_pak = await api.create_agent()
    stack = await create_stack(api, owner_pak, "owned", description="the owner's")
    return World(owner, owner_pak, other, other_pak, agent_pak, stack)


async def admin_generator_id(api: Api) -> str:
    listed = (await api.client.get("/api/v1/generators", headers=api.admin)).json()
    [builtin] = [g["id"] for g in listed if g["name"] == "admin-generator"]
    return str(builtin)


async def stack_names(api: Api, headers: dict[str, str], **params: str) -> list[str]:
    response = await api.client.get("/api/v1/stacks", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [stack["name"] for stack in response.json()]


# --- create ---------------------------------------------------------------------------------


async def test_generator_creates_a_stack_it_owns(api: Api) -> None:
    generator, pak = await api.create_generator()
    response = await api.client.post(
        "/api/v1/stacks", json={"name": "web", "description": "frontend"}, headers=auth(pak)
    )
    assert response.status_code == 201
    stack = response.json()
    assert set(stack) == STACK_FIELDS
    assert stack["name"] == "web" and stack["description"] == "frontend"
    assert stack["generator_id"] == generator["id"] and stack["deleted_at"] is None
    assert stack["created_at"].endswith("Z") and stack["updated_at"].endswith("Z")
    assert str(uuid.UUID(stack["id"])) == stack["id"]
    fetched = await api.client.get(f"/api/v1/stacks/{stack['id']}", headers=auth(pak))
    assert fetched.status_code == 200 and fetched.json() == stack
    [record] = await api.audit(action="stack.created")
    assert record["actor_type"] == "generator" and record["actor_id"] == generator["id"]
    assert record["resource_type"] == "stack" and record["resource_id"] == stack["id"]
    assert record["details"] == {"name": "web", "generator_id": generator["id"]}


async def test_generator_may_name_itself_as_owner(api: Api) -> None:
    generator, pak = await api.create_generator()
    stack = await create_stack(api, pak, generator_id=generator["id"])
    assert stack["generator_id"] == generator["id"] and stack["description"] is None


async def test_admin_stack_defaults_to_the_admin_generator(api: Api) -> None:
    stack = await create_stack(api, name="platform")
    assert stack["generator_id"] == await admin_generator_id(api)
    [record] = await api.audit(action="stack.created")
    assert record["actor_type"] == "admin" and record["actor_id"] is None
    assert record["resource_id"] == stack["id"]


async def test_admin_creates_a_stack_for_any_live_generator(api: Api) -> None:
    generator, pak = await api.create_generator()
    stack = await create_stack(api, name="for-ci", generator_id=generator["id"])
    assert stack["generator_id"] == generator["id"]
    # The chosen generator owns it: it reads it and lists it.
    fetched = await api.client.get(f"/api/v1/stacks/{stack['id']}", headers=auth(pak))
    assert fetched.status_code == 200
    assert await stack_names(api, auth(pak)) == ["for-ci"]


async def test_admin_create_for_unknown_or_deleted_generator_is_422(api: Api) -> None:
    gone, _ = await api.create_generator("gone")
    await api.client.delete(f"/api/v1/generators/{gone['id']}", headers=api.admin)
    for generator_id in (str(uuid.uuid4()), gone["id"]):
        response = await api.client.post(
            "/api/v1/stacks",
            json={"name": "orphan", "generator_id": generator_id},
            headers=api.admin,
        )
        error = assert_error(response, 422, "generator_not_found")
        assert "generator_id" in error["details"]["fields"]
    assert await api.count(tables.stacks) == 0
    assert await api.audit(action="stack.created") == []


async def test_generator_cannot_create_a_stack_for_another_generator(api: Api) -> None:
    _, pak = await api.create_generator("g1")
    other, _ = await api.create_generator("g2")
    response = await api.client.post(
        "/api/v1/stacks",
        json={"name": "smuggled", "generator_id": other["id"]},
        headers=auth(pak),
    )
    assert_error(response, 403, "stack_generator_mismatch")
    assert await api.count(tables.stacks) == 0


async def test_agent_cannot_create_a_stack(api: Api) -> None:
    _, agent_pak = await api.create_agent()
    response = await api.client.post(
        "/api/v1/stacks", json={"name": "nope"}, headers=auth(agent_pak)
    )
    assert_error(response, 403, "stack_create_denied")
    assert await api.count(tables.stacks) == 0


async def test_name_of_255_characters_is_accepted(api: Api) -> None:
    stack = await create_stack(api, name="n" * 255)
    assert stack["name"] == "n" * 255


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 256},
        {"name": None},
        {"name": 5},
        {"description": "no name"},
        {"name": "ok", "description": ""},
        {"name": "ok", "description": "  "},
        {"name": "ok", "generator_id": "not-a-uuid"},
    ],
)
async def test_create_rejects_bad_body_and_stores_nothing(
    api: Api, body: dict[str, object]
) -> None:
    response = await api.client.post("/api/v1/stacks", json=body, headers=api.admin)
    error = assert_error(response, 422, "validation_failed")
    assert error["details"]["fields"]
    assert await api.count(tables.stacks) == 0


async def test_stack_names_are_unique_across_generators(api: Api) -> None:
    _, first_pak = await api.create_generator("g1")
    _, second_pak = await api.create_generator("g2")
    await create_stack(api, first_pak, "shared")
    response = await api.client.post(
        "/api/v1/stacks", json={"name": "shared"}, headers=auth(second_pak)
    )
    error = assert_error(response, 409, "stack_name_taken")
    assert error["details"]["constraint"] == "unique_stack_name"
    assert await api.count(tables.stacks, tables.stacks.c.name == "shared") == 1


async def test_deleted_stack_name_can_be_reused(api: Api) -> None:
    first = await create_stack(api, name="reuse")
    deleted = await api.client.delete(f"/api/v1/stacks/{first['id']}", headers=api.admin)
    assert deleted.status_code == 204
    second = await create_stack(api, name="reuse")
    assert second["id"] != first["id"]


# --- read -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        ("admin", 200, None),
        ("owner", 200, None),
        ("other-generator", 404, "stack_not_found"),
        ("agent", 404, "stack_not_found"),
    ],
)
async def test_get_stack_role_matrix(api: Api, who: str, status: int, code: str | None) -> None:
    w = await world(api)
    response = await api.client.get(f"/api/v1/stacks/{w.stack['id']}", headers=w.headers(api, who))
    if code is None:
        assert response.status_code == status and response.json() == w.stack
    else:
        assert_error(response, status, code)


async def test_unknown_stack_id_is_404_and_malformed_is_400(api: Api) -> None:
    assert_error(
        await api.client.get(f"/api/v1/stacks/{uuid.uuid4()}", headers=api.admin),
        404,
        "stack_not_found",
    )
    assert_error(
        await api.client.get("/api/v1/stacks/not-a-uuid", headers=api.admin),
        400,
        "invalid_parameter",
    )


async def test_admin_lists_every_live_stack_and_may_filter_by_generator(api: Api) -> None:
    w = await world(api)
    await create_stack(api, w.other_pak, "theirs")
    await create_stack(api, name="platform")
    assert sorted(await stack_names(api, api.admin)) == ["owned", "platform", "theirs"]
    assert await stack_names(api, api.admin, generator_id=w.owner["id"]) == ["owned"]
    assert await stack_names(api, api.admin, generator_id=w.other["id"]) == ["theirs"]
    assert await stack_names(api, api.admin, generator_id=str(uuid.uuid4())) == []


async def test_generator_lists_only_its_own_stacks(api: Api) -> None:
    w = await world(api)
    await create_stack(api, w.other_pak, "theirs")
    listed = await api.client.get("/api/v1/stacks", headers=auth(w.owner_pak))
    assert listed.status_code == 200 and listed.json() == [w.stack]
    assert await stack_names(api, auth(w.owner_pak), generator_id=w.owner["id"]) == ["owned"]
    assert await stack_names(api, auth(w.other_pak)) == ["theirs"]


@pytest.mark.parametrize("who", ["other-generator", "agent"])
async def test_listing_another_generators_stacks_is_denied(api: Api, who: str) -> None:
    w = await world(api)
    response = await api.client.get(
        "/api/v1/stacks", params={"generator_id": w.owner["id"]}, headers=w.headers(api, who)
    )
    assert_error(response, 403, "stacks_list_denied")


async def test_agent_cannot_list_stacks(api: Api) -> None:
    w = await world(api)
    response = await api.client.get("/api/v1/stacks", headers=auth(w.agent_pak))
    assert_error(response, 403, "stacks_list_denied")


async def test_list_rejects_malformed_generator_filter(api: Api) -> None:
    response = await api.client.get(
        "/api/v1/stacks", params={"generator_id": "nope"}, headers=api.admin
    )
    assert_error(response, 400, "invalid_parameter")


# --- update ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "code"),
    [
        ("admin", None),
        ("owner", None),
        ("other-generator", "stack_not_found"),
        ("agent", "stack_not_found"),
    ],
)
async def test_update_stack_role_matrix(api: Api, who: str, code: str | None) -> None:
    w = await world(api)
    response = await api.client.put(
        f"/api/v1/stacks/{w.stack['id']}", json={"name": "renamed"}, headers=w.headers(api, who)
    )
    stored = (await api.client.get(f"/api/v1/stacks/{w.stack['id']}", headers=api.admin)).json()
    if code is None:
        assert response.status_code == 200 and response.json()["name"] == "renamed"
        assert stored == response.json()
    else:
        assert_error(response, 404, code)
        assert stored == w.stack
        assert await api.audit(action="stack.updated") == []


async def test_partial_update_changes_only_the_fields_sent(api: Api) -> None:
    w = await world(api)
    path = f"/api/v1/stacks/{w.stack['id']}"
    renamed = await api.client.put(path, json={"name": "renamed"}, headers=auth(w.owner_pak))
    assert renamed.status_code == 200
    body = renamed.json()
    assert body["name"] == "renamed" and body["description"] == "the owner's"
    assert body["generator_id"] == w.owner["id"] and body["created_at"] == w.stack["created_at"]
    described = await api.client.put(
        path, json={"description": "new words"}, headers=auth(w.owner_pak)
    )
    assert described.status_code == 200
    assert described.json()["name"] == "renamed"
    assert described.json()["description"] == "new words"
    cleared = await api.client.put(path, json={"description": None}, headers=auth(w.owner_pak))
    assert cleared.status_code == 200 and cleared.json()["description"] is None
    records = await api.audit(action="stack.updated")
    assert sorted(str(record["details"]) for record in records) == sorted(
        str(details)
        for details in ({"name": "renamed"}, {"description": "new words"}, {"description": None})
    )
    assert {(record["actor_type"], record["actor_id"]) for record in records} == {
        ("generator", w.owner["id"])
    }
    assert {record["resource_id"] for record in records} == {w.stack["id"]}


async def test_update_accepts_full_reference_body_and_ignores_timestamps(api: Api) -> None:
    w = await world(api)
    body = {
        **w.stack,
        "name": "full-body",
        "created_at": "2001-01-01T00:00:00Z",
        "deleted_at": "2001-01-01T00:00:00Z",
    }
    response = await api.client.put(
        f"/api/v1/stacks/{w.stack['id']}", json=body, headers=auth(w.owner_pak)
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["name"] == "full-body" and updated["generator_id"] == w.owner["id"]
    assert updated["created_at"] == w.stack["created_at"] and updated["deleted_at"] is None
    assert await stack_names(api, auth(w.owner_pak)) == ["full-body"]
    [record] = await api.audit(action="stack.updated")
    assert record["details"] == {"name": "full-body"}


async def test_update_with_mismatched_body_id_is_403(api: Api) -> None:
    w = await world(api)
    response = await api.client.put(
        f"/api/v1/stacks/{w.stack['id']}",
        json={"id": str(uuid.uuid4()), "name": "hijack"},
        headers=api.admin,
    )
    assert_error(response, 403, "id_mismatch")
    stored = (await api.client.get(f"/api/v1/stacks/{w.stack['id']}", headers=api.admin)).json()
    assert stored == w.stack


@pytest.mark.parametrize("who", ["admin", "owner"])
async def test_owner_cannot_be_changed_even_by_admin(api: Api, who: str) -> None:
    w = await world(api)
    response = await api.client.put(
        f"/api/v1/stacks/{w.stack['id']}",
        json={"generator_id": w.other["id"], "name": "moved"},
        headers=w.headers(api, who),
    )
    assert_error(response, 403, "stack_owner_immutable")
    stored = (await api.client.get(f"/api/v1/stacks/{w.stack['id']}", headers=api.admin)).json()
    assert stored == w.stack
    assert await stack_names(api, auth(w.other_pak)) == []


async def test_update_with_unchanged_generator_id_is_accepted(api: Api) -> None:
    w = await world(api)
    response = await api.client.put(
        f"/api/v1/stacks/{w.stack['id']}",
        json={"generator_id": w.owner["id"], "description": "same owner"},
        headers=auth(w.owner_pak),
    )
    assert response.status_code == 200
    assert response.json()["description"] == "same owner"


@pytest.mark.parametrize(
    "body",
    [{"name": ""}, {"name": "  "}, {"name": "x" * 256}, {"name": None}, {"description": ""}],
)
async def test_update_rejects_bad_values(api: Api, body: dict[str, object]) -> None:
    w = await world(api)
    response = await api.client.put(
        f"/api/v1/stacks/{w.stack['id']}", json=body, headers=auth(w.owner_pak)
    )
    error = assert_error(response, 422, "validation_failed")
    assert error["details"]["fields"]
    stored = (await api.client.get(f"/api/v1/stacks/{w.stack['id']}", headers=api.admin)).json()
    assert stored == w.stack


async def test_rename_to_a_live_stacks_name_is_409_and_to_a_deleted_ones_is_fine(api: Api) -> None:
    w = await world(api)
    await create_stack(api, w.other_pak, "taken")
    response = await api.client.put(
        f"/api/v1/stacks/{w.stack['id']}", json={"name": "taken"}, headers=auth(w.owner_pak)
    )
    assert_error(response, 409, "stack_name_taken")
    assert await stack_names(api, auth(w.owner_pak)) == ["owned"]
    # A deleted stack's name is free.
    gone = await create_stack(api, w.other_pak, "gone")
    await api.client.delete(f"/api/v1/stacks/{gone['id']}", headers=api.admin)
    renamed = await api.client.put(
        f"/api/v1/stacks/{w.stack['id']}", json={"name": "gone"}, headers=auth(w.owner_pak)
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "gone"


async def test_update_of_unknown_or_deleted_stack_is_404(api: Api) -> None:
    w = await world(api)
    await api.client.delete(f"/api/v1/stacks/{w.stack['id']}", headers=api.admin)
    for stack_id in (str(uuid.uuid4()), w.stack["id"]):
        response = await api.client.put(
            f"/api/v1/stacks/{stack_id}", json={"name": "zombie"}, headers=api.admin
        )
        assert_error(response, 404, "stack_not_found")


# --- delete ---------------------------------------------------------------------------------


async def test_owner_deletes_stack_idempotently(api: Api) -> None:
    w = await world(api)
    path = f"/api/v1/stacks/{w.stack['id']}"
    first = await api.client.delete(path, headers=auth(w.owner_pak))
    assert first.status_code == 204 and first.content == b""
    second = await api.client.delete(path, headers=auth(w.owner_pak))
    assert second.status_code == 204
    assert_error(await api.client.get(path, headers=api.admin), 404, "stack_not_found")
    assert_error(await api.client.get(path, headers=auth(w.owner_pak)), 404, "stack_not_found")
    assert await stack_names(api, api.admin) == []
    assert await stack_names(api, auth(w.owner_pak)) == []
    # Soft delete: the row stays, marked deleted.
    stacks = tables.stacks
    stack_id = uuid.UUID(w.stack["id"])
    assert await api.count(stacks, stacks.c.id == stack_id, stacks.c.deleted_at.is_not(None)) == 1
    [record] = await api.audit(action="stack.deleted")
    assert record["actor_type"] == "generator" and record["actor_id"] == w.owner["id"]
    assert record["resource_type"] == "stack" and record["resource_id"] == w.stack["id"]
    assert record["details"]["name"] == "owned"


async def test_admin_deletes_any_stack(api: Api) -> None:
    w = await world(api)
    response = await api.client.delete(f"/api/v1/stacks/{w.stack['id']}", headers=api.admin)
    assert response.status_code == 204
    [record] = await api.audit(action="stack.deleted")
    assert record["actor_type"] == "admin" and record["resource_id"] == w.stack["id"]


@pytest.mark.parametrize("who", ["other-generator", "agent"])
async def test_others_cannot_delete_a_stack(api: Api, who: str) -> None:
    w = await world(api)
    path = f"/api/v1/stacks/{w.stack['id']}"
    assert_error(await api.client.delete(path, headers=w.headers(api, who)), 404, "stack_not_found")
    assert (await api.client.get(path, headers=api.admin)).json() == w.stack
    # Nor can they learn that it was already deleted.
    await api.client.delete(path, headers=api.admin)
    assert_error(await api.client.delete(path, headers=w.headers(api, who)), 404, "stack_not_found")
    assert len(await api.audit(action="stack.deleted")) == 1


async def test_delete_of_unknown_stack_is_404(api: Api) -> None:
    response = await api.client.delete(f"/api/v1/stacks/{uuid.uuid4()}", headers=api.admin)
    assert_error(response, 404, "stack_not_found")


async def test_deleting_a_generator_soft_deletes_its_stacks(api: Api) -> None:
    w = await world(api)
    kept = await create_stack(api, w.other_pak, "kept")
    second = await create_stack(api, w.owner_pak, "second")
    deleted = await api.client.delete(f"/api/v1/generators/{w.owner['id']}", headers=api.admin)
    assert deleted.status_code == 204
    for stack in (w.stack, second):
        assert_error(
            await api.client.get(f"/api/v1/stacks/{stack['id']}", headers=api.admin),
            404,
            "stack_not_found",
        )
    assert await stack_names(api, api.admin) == ["kept"]
    stacks = tables.stacks
    assert await api.count(stacks, stacks.c.deleted_at.is_not(None)) == 2
    kept_id = uuid.UUID(kept["id"])
    assert await api.count(stacks, stacks.c.id == kept_id, stacks.c.deleted_at.is_(None)) == 1
    records = await api.audit(action="stack.deleted")
    assert {record["resource_id"] for record in records} == {w.stack["id"], second["id"]}
    assert all(record["details"]["cause"] == "generator.deleted" for record in records)
    # The names are free again.
    reused = await create_stack(api, w.other_pak, "owned")
    assert reused["id"] != w.stack["id"]


# --- no existence oracle --------------------------------------------------------------------

# Every stack route, with a body the owner could send: {stack} is the stack id, {agent} an agent.
STACK_ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/api/v1/stacks/{stack}", None),
    ("PUT", "/api/v1/stacks/{stack}", {"name": "renamed"}),
    ("DELETE", "/api/v1/stacks/{stack}", None),
    ("GET", "/api/v1/stacks/{stack}/labels", None),
    ("POST", "/api/v1/stacks/{stack}/labels", {"label": "env:prod"}),
    ("DELETE", "/api/v1/stacks/{stack}/labels/env:prod", None),
    ("GET", "/api/v1/stacks/{stack}/annotations", None),
    ("POST", "/api/v1/stacks/{stack}/annotations", {"key": "tier", "value": "web"}),
    ("DELETE", "/api/v1/stacks/{stack}/annotations/tier", None),
    ("GET", "/api/v1/stacks/{stack}/deployment-objects", None),
    (
        "POST",
        "/api/v1/stacks/{stack}/deployment-objects",
        {"yaml_content": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n"},
    ),
    ("GET", "/api/v1/stacks/{stack}/agents", None),
    ("POST", "/api/v1/agents/{agent}/targets", {"stack_id": "{stack}"}),
    ("DELETE", "/api/v1/agents/{agent}/targets/{stack}", None),
]


def _fill(value: Any, stack_id: str, agent_id: str) -> Any:
    if isinstance(value, str):
        return value.format(stack=stack_id, agent=agent_id)
    if isinstance(value, dict):
        return {key: _fill(item, stack_id, agent_id) for key, item in value.items()}
    return value


@pytest.mark.parametrize(("method", "route", "body"), STACK_ROUTES, ids=lambda v: str(v))
async def test_a_foreign_stack_answers_exactly_like_a_missing_one(
    api: Api, method: str, route: str, body: Any
) -> None:
    w = await world(api)
    agent, _ = await api.create_agent("target")
    headers = auth(w.other_pak)

    async def send(stack_id: str) -> tuple[int, dict[str, Any]]:
        response = await api.client.request(
            method,
            _fill(route, stack_id, agent["id"]),
            json=_fill(body, stack_id, agent["id"]),
            headers=headers,
        )
        error = assert_error(response, 404, "stack_not_found")
        assert error["details"] == {"id": stack_id}
        error["details"] = None
        return response.status_code, error

    missing = str(uuid.uuid4())
    assert await send(w.stack["id"]) == await send(missing)
    stored = await api.client.get(f"/api/v1/stacks/{w.stack['id']}", headers=api.admin)
    assert stored.json() == w.stack
