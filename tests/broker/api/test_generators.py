"""Generators API: list, create, get, update, delete, rotate-pak.

Covers the role matrix (admin / the generator itself / another generator / an agent) with the
codes `admin_required` and `generator_not_owned`, unknown ids, duplicate and invalid names,
body id ≠ path id, who may change `is_active` and the immediate 401 of a deactivated, deleted or
rotated-away PAK, the full reference Generator body on PUT, idempotent deletes, the audit
records of every change, and the built-in `admin-generator` row that has no PAK.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest

from brokkr.broker.db import tables
from tests.broker.conftest import Api, assert_error, auth

GENERATOR_FIELDS = {
    "id",
    "created_at",
    "updated_at",
    "deleted_at",
    "name",
    "description",
    "last_active_at",
    "is_active",
}


def moment(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


def key_id(pak: str) -> str:
    """The public short token of a PAK (`brokkr_<short>_<long>`)."""
    return pak.split("_")[1]


async def can_read_itself(api: Api, generator_id: str, pak: str) -> bool:
    response = await api.client.get(f"/api/v1/generators/{generator_id}", headers=auth(pak))
    if response.status_code == 401:
        assert_error(response, 401, "unauthorized")
        return False
    assert response.status_code == 200, response.text
    return True


async def test_admin_creates_active_generator_with_one_time_pak(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/generators",
        json={"name": "ci-pipeline", "description": "builds things"},
        headers=api.admin,
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"generator", "pak"}
    generator = body["generator"]
    assert set(generator) == GENERATOR_FIELDS
    assert generator["name"] == "ci-pipeline" and generator["description"] == "builds things"
    assert generator["is_active"] is True
    assert generator["deleted_at"] is None and generator["last_active_at"] is None
    assert generator["created_at"].endswith("Z") and generator["updated_at"].endswith("Z")
    assert str(uuid.UUID(generator["id"])) == generator["id"]
    assert body["pak"].startswith("brokkr_BR")
    me = await api.client.get(f"/api/v1/generators/{generator['id']}", headers=auth(body["pak"]))
    # Its own call is its first activity: the one field that changed.
    assert me.status_code == 200 and me.json()["last_active_at"] is not None
    assert {**me.json(), "last_active_at": None} == generator
    [record] = await api.audit(action="generator.created")
    assert record["actor_type"] == "admin" and record["actor_id"] is None
    assert record["key_id"] == key_id(api.admin_pak)
    assert record["resource_type"] == "generator" and record["resource_id"] == generator["id"]
    assert record["details"] == {"name": "ci-pipeline", "pak_key_id": key_id(body["pak"])}


async def test_create_without_description_stores_null(api: Api) -> None:
    response = await api.client.post("/api/v1/generators", json={"name": "bare"}, headers=api.admin)
    assert response.status_code == 201
    assert response.json()["generator"]["description"] is None


async def test_name_of_255_characters_is_accepted(api: Api) -> None:
    generator, _ = await api.create_generator("n" * 255)
    assert generator["name"] == "n" * 255


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 256},
        {"name": None},
        {"name": 5},
        {"description": "no name"},
        {"name": "ok", "description": 5},
    ],
)
async def test_create_generator_rejects_bad_body_and_stores_nothing(
    api: Api, body: dict[str, object]
) -> None:
    response = await api.client.post("/api/v1/generators", json=body, headers=api.admin)
    error = assert_error(response, 422, "validation_failed")
    assert error["details"]["fields"]
    assert await api.count(tables.generators) == 1  # only the built-in admin-generator
    assert await api.audit(action="generator.created") == []


async def test_duplicate_generator_name_is_409(api: Api) -> None:
    await api.create_generator("dup")
    response = await api.client.post("/api/v1/generators", json={"name": "dup"}, headers=api.admin)
    error = assert_error(response, 409, "generator_name_taken")
    assert error["details"]["constraint"] == "unique_generator_name"
    assert await api.count(tables.generators, tables.generators.c.name == "dup") == 1


async def test_the_builtin_admin_generator_name_is_taken(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/generators", json={"name": "admin-generator"}, headers=api.admin
    )
    assert_error(response, 409, "generator_name_taken")


async def test_deleted_generator_name_can_be_reused(api: Api) -> None:
    generator, _ = await api.create_generator("reuse")
    deleted = await api.client.delete(f"/api/v1/generators/{generator['id']}", headers=api.admin)
    assert deleted.status_code == 204
    again, _ = await api.create_generator("reuse")
    assert again["id"] != generator["id"]


async def test_admin_lists_live_generators_including_admin_generator(api: Api) -> None:
    first, _ = await api.create_generator("g1", description="first")
    second, _ = await api.create_generator("g2")
    await api.client.delete(f"/api/v1/generators/{first['id']}", headers=api.admin)
    response = await api.client.get("/api/v1/generators", headers=api.admin)
    assert response.status_code == 200
    listed = response.json()
    assert all(set(generator) == GENERATOR_FIELDS for generator in listed)
    assert [generator["name"] for generator in listed] == ["admin-generator", "g2"]
    assert listed[1] == second


async def test_admin_generator_exists_but_has_no_pak_to_authenticate_with(api: Api) -> None:
    listed = (await api.client.get("/api/v1/generators", headers=api.admin)).json()
    [builtin] = [generator for generator in listed if generator["name"] == "admin-generator"]
    assert builtin["is_active"] is True and builtin["deleted_at"] is None
    generators = tables.generators
    assert (
        await api.count(
            generators,
            generators.c.id == uuid.UUID(builtin["id"]),
            generators.c.pak_hash.is_(None),
            generators.c.key_id.is_(None),
        )
        == 1
    )
    # Unlike the reference, the admin PAK does not double as the admin-generator's key.
    whoami = await api.client.post("/api/v1/auth/pak", headers=api.admin)
    assert whoami.json() == {"admin": True, "agent": None, "generator": None}


@pytest.mark.parametrize("who", ["agent", "generator"])
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_admin_only_generator_routes_forbid_other_roles(
    api: Api, who: str, method: str
) -> None:
    _, agent_pak = await api.create_agent()
    _, generator_pak = await api.create_generator()
    pak = agent_pak if who == "agent" else generator_pak
    response = await api.client.request(
        method, "/api/v1/generators", json={"name": "sneaky"}, headers=auth(pak)
    )
    assert_error(response, 403, "admin_required")
    assert await api.count(tables.generators, tables.generators.c.name == "sneaky") == 0


@pytest.mark.parametrize("who", ["agent", "other-generator"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/generators/{id}"),
        ("PUT", "/api/v1/generators/{id}"),
        ("DELETE", "/api/v1/generators/{id}"),
        ("POST", "/api/v1/generators/{id}/rotate-pak"),
    ],
)
async def test_generator_routes_forbid_agents_and_other_generators(
    api: Api, who: str, method: str, path: str
) -> None:
    generator, pak = await api.create_generator("owner")
    _, agent_pak = await api.create_agent()
    _, other_pak = await api.create_generator("other")
    intruder = agent_pak if who == "agent" else other_pak
    response = await api.client.request(
        method,
        path.format(id=generator["id"]),
        json={"name": "hijacked", "is_active": False},
        headers=auth(intruder),
    )
    assert_error(response, 403, "generator_not_owned")
    unchanged = await api.client.get(f"/api/v1/generators/{generator['id']}", headers=api.admin)
    assert unchanged.status_code == 200 and unchanged.json() == generator


async def test_non_admin_gets_403_not_404_for_unknown_generator(api: Api) -> None:
    _, pak = await api.create_generator()
    response = await api.client.get(f"/api/v1/generators/{uuid.uuid4()}", headers=auth(pak))
    assert_error(response, 403, "generator_not_owned")


@pytest.mark.parametrize("who", ["admin", "self"])
async def test_admin_and_generator_itself_read_the_generator(api: Api, who: str) -> None:
    generator, pak = await api.create_generator("reader", description="d")
    caller = api.admin if who == "admin" else auth(pak)
    response = await api.client.get(f"/api/v1/generators/{generator['id']}", headers=caller)
    assert response.status_code == 200
    # Reading with its own PAK is activity, which the generator's record shows.
    assert {**response.json(), "last_active_at": None} == generator


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/generators/{id}"),
        ("PUT", "/api/v1/generators/{id}"),
        ("DELETE", "/api/v1/generators/{id}"),
        ("POST", "/api/v1/generators/{id}/rotate-pak"),
    ],
)
async def test_unknown_generator_is_404(api: Api, method: str, path: str) -> None:
    missing = str(uuid.uuid4())
    response = await api.client.request(
        method, path.format(id=missing), json={"name": "x"}, headers=api.admin
    )
    error = assert_error(response, 404, "generator_not_found")
    assert error["details"] == {"id": missing}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/generators/{id}"),
        ("PUT", "/api/v1/generators/{id}"),
        ("POST", "/api/v1/generators/{id}/rotate-pak"),
    ],
)
async def test_deleted_generator_is_404(api: Api, method: str, path: str) -> None:
    generator, _ = await api.create_generator()
    await api.client.delete(f"/api/v1/generators/{generator['id']}", headers=api.admin)
    response = await api.client.request(
        method, path.format(id=generator["id"]), json={"name": "x"}, headers=api.admin
    )
    assert_error(response, 404, "generator_not_found")


async def test_admin_updates_name_and_description(api: Api) -> None:
    generator, _ = await api.create_generator("before", description="old")
    response = await api.client.put(
        f"/api/v1/generators/{generator['id']}",
        json={"name": "after", "description": "new"},
        headers=api.admin,
    )
    assert response.status_code == 200
    updated = response.json()
    assert set(updated) == GENERATOR_FIELDS
    assert updated["name"] == "after" and updated["description"] == "new"
    assert updated["created_at"] == generator["created_at"]
    assert moment(updated["updated_at"]) > moment(generator["updated_at"])
    assert updated["is_active"] is True
    seen = await api.client.get(f"/api/v1/generators/{generator['id']}", headers=api.admin)
    assert seen.json() == updated
    [record] = await api.audit(action="generator.updated")
    assert record["actor_type"] == "admin" and record["resource_type"] == "generator"
    assert record["resource_id"] == generator["id"]
    assert record["details"] == {"name": "after", "description": "new"}


async def test_description_can_be_cleared_with_null(api: Api) -> None:
    generator, _ = await api.create_generator(description="something")
    response = await api.client.put(
        f"/api/v1/generators/{generator['id']}", json={"description": None}, headers=api.admin
    )
    assert response.status_code == 200 and response.json()["description"] is None


async def test_generator_renames_itself_and_is_the_audited_actor(api: Api) -> None:
    generator, pak = await api.create_generator("mine")
    response = await api.client.put(
        f"/api/v1/generators/{generator['id']}", json={"name": "still-mine"}, headers=auth(pak)
    )
    assert response.status_code == 200 and response.json()["name"] == "still-mine"
    [record] = await api.audit(action="generator.updated")
    assert record["actor_type"] == "generator" and record["actor_id"] == generator["id"]
    assert record["key_id"] == key_id(pak)
    assert record["details"] == {"name": "still-mine"}


async def test_update_without_changes_returns_generator_and_writes_no_audit(api: Api) -> None:
    generator, _ = await api.create_generator("same")
    response = await api.client.put(
        f"/api/v1/generators/{generator['id']}", json={"name": "same"}, headers=api.admin
    )
    assert response.status_code == 200 and response.json() == generator
    assert await api.audit(action="generator.updated") == []


async def test_generator_cannot_change_its_own_is_active(api: Api) -> None:
    generator, pak = await api.create_generator()
    path = f"/api/v1/generators/{generator['id']}"
    response = await api.client.put(path, json={"is_active": False}, headers=auth(pak))
    error = assert_error(response, 403, "generator_update_forbidden")
    assert error["details"] == {"fields": ["is_active"]}
    assert await can_read_itself(api, generator["id"], pak)
    # Sending the current value is not a change and is accepted.
    unchanged = await api.client.put(path, json={"is_active": True}, headers=auth(pak))
    assert unchanged.status_code == 200 and unchanged.json()["is_active"] is True
    assert await api.audit(action="generator.updated") == []


async def test_admin_deactivation_stops_the_pak_at_once_and_reactivation_restores_it(
    api: Api,
) -> None:
    generator, pak = await api.create_generator()
    path = f"/api/v1/generators/{generator['id']}"
    assert await can_read_itself(api, generator["id"], pak)  # now cached
    response = await api.client.put(path, json={"is_active": False}, headers=api.admin)
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert not await can_read_itself(api, generator["id"], pak)
    whoami = await api.client.post("/api/v1/auth/pak", headers=auth(pak))
    assert_error(whoami, 401, "unauthorized")
    seen = await api.client.get(path, headers=api.admin)
    assert seen.status_code == 200 and seen.json()["is_active"] is False
    [record] = await api.audit(action="generator.updated")
    assert record["details"] == {"is_active": False}
    reactivated = await api.client.put(path, json={"is_active": True}, headers=api.admin)
    assert reactivated.status_code == 200 and reactivated.json()["is_active"] is True
    assert await can_read_itself(api, generator["id"], pak)


@pytest.mark.parametrize("who", ["admin", "self"])
async def test_full_reference_generator_body_is_accepted_and_timestamps_ignored(
    api: Api, who: str
) -> None:
    generator, pak = await api.create_generator("full", description="d")
    body: dict[str, Any] = {
        **generator,
        "name": "full-renamed",
        "created_at": "2001-02-03T04:05:06Z",
        "updated_at": "2001-02-03T04:05:06Z",
        "deleted_at": "2001-02-03T04:05:06Z",
        "last_active_at": "2001-02-03T04:05:06Z",
    }
    caller = api.admin if who == "admin" else auth(pak)
    response = await api.client.put(
        f"/api/v1/generators/{generator['id']}", json=body, headers=caller
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["name"] == "full-renamed" and updated["description"] == "d"
    assert updated["created_at"] == generator["created_at"]
    assert moment(updated["updated_at"]) > moment(generator["updated_at"])
    assert updated["deleted_at"] is None
    # Never the body's value: only the generator's own calls set it.
    assert (updated["last_active_at"] is None) == (who == "admin")
    assert updated["last_active_at"] != body["last_active_at"]
    assert await can_read_itself(api, generator["id"], pak)


async def test_update_with_mismatched_body_id_is_403(api: Api) -> None:
    generator, pak = await api.create_generator("stays")
    for caller in (api.admin, auth(pak)):
        response = await api.client.put(
            f"/api/v1/generators/{generator['id']}",
            json={"id": str(uuid.uuid4()), "name": "moved"},
            headers=caller,
        )
        error = assert_error(response, 403, "id_mismatch")
        assert error["details"] == {"field": "id"}
    seen = await api.client.get(f"/api/v1/generators/{generator['id']}", headers=api.admin)
    assert seen.json()["name"] == "stays"
    matching = await api.client.put(
        f"/api/v1/generators/{generator['id']}",
        json={"id": generator["id"], "name": "moved"},
        headers=api.admin,
    )
    assert matching.status_code == 200 and matching.json()["name"] == "moved"


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 256},
        {"name": None},
        {"is_active": None},
        {"is_active": "no"},
        {"description": 5},
        {"id": "not-a-uuid"},
    ],
)
async def test_update_rejects_bad_values(api: Api, body: dict[str, object]) -> None:
    generator, _ = await api.create_generator("valid")
    response = await api.client.put(
        f"/api/v1/generators/{generator['id']}", json=body, headers=api.admin
    )
    error = assert_error(response, 422, "validation_failed")
    assert error["details"]["fields"]
    seen = await api.client.get(f"/api/v1/generators/{generator['id']}", headers=api.admin)
    assert seen.json() == generator


async def test_rename_to_taken_name_is_409(api: Api) -> None:
    await api.create_generator("g1")
    second, _ = await api.create_generator("g2")
    response = await api.client.put(
        f"/api/v1/generators/{second['id']}", json={"name": "g1"}, headers=api.admin
    )
    assert_error(response, 409, "generator_name_taken")
    seen = await api.client.get(f"/api/v1/generators/{second['id']}", headers=api.admin)
    assert seen.json()["name"] == "g2"


async def test_delete_is_idempotent_revokes_pak_at_once_and_is_audited_once(api: Api) -> None:
    generator, pak = await api.create_generator()
    path = f"/api/v1/generators/{generator['id']}"
    assert await can_read_itself(api, generator["id"], pak)  # now cached
    first = await api.client.delete(path, headers=api.admin)
    assert first.status_code == 204 and first.content == b""
    second = await api.client.delete(path, headers=api.admin)
    assert second.status_code == 204
    assert not await can_read_itself(api, generator["id"], pak)
    assert_error(await api.client.get(path, headers=api.admin), 404, "generator_not_found")
    listed = (await api.client.get("/api/v1/generators", headers=api.admin)).json()
    assert generator["id"] not in {g["id"] for g in listed}
    generators = tables.generators
    assert (
        await api.count(
            generators,
            generators.c.id == uuid.UUID(generator["id"]),
            generators.c.deleted_at.is_not(None),
        )
        == 1
    )
    [record] = await api.audit(action="generator.deleted")
    assert record["actor_type"] == "admin" and record["resource_type"] == "generator"
    assert record["resource_id"] == generator["id"]


async def test_generator_deletes_itself_and_its_pak_stops_working(api: Api) -> None:
    generator, pak = await api.create_generator()
    path = f"/api/v1/generators/{generator['id']}"
    response = await api.client.delete(path, headers=auth(pak))
    assert response.status_code == 204
    assert_error(await api.client.delete(path, headers=auth(pak)), 401, "unauthorized")
    [record] = await api.audit(action="generator.deleted")
    assert record["actor_type"] == "generator" and record["actor_id"] == generator["id"]


@pytest.mark.parametrize("who", ["admin", "self"])
async def test_rotate_pak_answers_201_and_old_key_stops_at_once(api: Api, who: str) -> None:
    generator, pak = await api.create_generator("rotating")
    assert await can_read_itself(api, generator["id"], pak)  # now cached
    caller = api.admin if who == "admin" else auth(pak)
    response = await api.client.post(
        f"/api/v1/generators/{generator['id']}/rotate-pak", headers=caller
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"generator", "pak"}
    assert set(body["generator"]) == GENERATOR_FIELDS
    assert body["generator"]["id"] == generator["id"]
    assert body["generator"]["name"] == "rotating" and body["generator"]["is_active"] is True
    new_pak = body["pak"]
    assert new_pak.startswith("brokkr_BR") and new_pak != pak
    assert not await can_read_itself(api, generator["id"], pak)
    assert await can_read_itself(api, generator["id"], new_pak)
    [record] = await api.audit(action="pak.rotated")
    assert record["actor_type"] == ("admin" if who == "admin" else "generator")
    assert record["actor_id"] == (None if who == "admin" else generator["id"])
    assert record["resource_type"] == "generator" and record["resource_id"] == generator["id"]
    assert record["details"] == {"generator_name": "rotating", "pak_key_id": key_id(new_pak)}


async def test_the_admin_generator_cannot_get_a_pak_be_renamed_deactivated_or_deleted(
    api: Api,
) -> None:
    listed = (await api.client.get("/api/v1/generators", headers=api.admin)).json()
    [builtin] = [generator for generator in listed if generator["name"] == "admin-generator"]
    path = f"/api/v1/generators/{builtin['id']}"
    attempts = [
        api.client.post(f"{path}/rotate-pak", headers=api.admin),
        api.client.put(path, json={"name": "renamed"}, headers=api.admin),
        api.client.put(path, json={"is_active": False}, headers=api.admin),
        api.client.delete(path, headers=api.admin),
    ]
    for attempt in attempts:
        assert_error(await attempt, 403, "admin_generator_protected")
    same = await api.client.put(
        path, json={"name": "admin-generator", "description": "ours"}, headers=api.admin
    )
    assert same.status_code == 200 and same.json()["description"] == "ours"
