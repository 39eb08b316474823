"""Agents API: registration, search, get, update, delete, heartbeat, rotate-pak.

Covers the role matrix (admin / the agent itself / another agent / a generator), bad input,
idempotent deletes, audit records and immediate PAK revocation.
"""

from __future__ import annotations

import uuid

import pytest

from tests.broker.conftest import Api, assert_error, auth


async def test_admin_registers_inactive_agent_with_one_time_pak(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/agents", json={"name": "edge-1", "cluster_name": "prod-eu"}, headers=api.admin
    )
    assert response.status_code == 201
    body = response.json()
    agent = body["agent"]
    assert agent["status"] == "INACTIVE"
    assert agent["last_heartbeat"] is None and agent["deleted_at"] is None
    assert agent["created_at"].endswith("Z")
    assert set(agent) == {
        "id",
        "created_at",
        "updated_at",
        "deleted_at",
        "name",
        "cluster_name",
        "last_heartbeat",
        "status",
    }
    assert body["initial_pak"].startswith("brokkr_BR")
    me = await api.client.get(f"/api/v1/agents/{agent['id']}", headers=auth(body["initial_pak"]))
    assert me.status_code == 200 and me.json() == agent
    [record] = await api.audit(action="agent.created")
    assert record["actor_type"] == "admin" and record["resource_id"] == agent["id"]
    assert record["details"]["name"] == "edge-1"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "cluster_name": "c"},
        {"name": "   ", "cluster_name": "c"},
        {"name": "a", "cluster_name": ""},
        {"name": "x" * 256, "cluster_name": "c"},
        {"name": "a"},
        {"name": 5, "cluster_name": "c"},
    ],
)
async def test_create_agent_rejects_bad_body_and_stores_nothing(
    api: Api, body: dict[str, object]
) -> None:
    response = await api.client.post("/api/v1/agents", json=body, headers=api.admin)
    error = assert_error(response, 422, "validation_failed")
    assert error["details"]["fields"]
    listing = await api.client.get("/api/v1/agents", headers=api.admin)
    assert listing.json() == []


async def test_create_agent_rejects_malformed_json(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/agents",
        content=b"{nope",
        headers={**api.admin, "content-type": "application/json"},
    )
    assert_error(response, 400, "invalid_json")


async def test_duplicate_agent_in_same_cluster_is_409(api: Api) -> None:
    await api.create_agent("dup", "c1")
    response = await api.client.post(
        "/api/v1/agents", json={"name": "dup", "cluster_name": "c1"}, headers=api.admin
    )
    error = assert_error(response, 409, "agent_name_taken")
    assert error["details"]["constraint"] == "unique_agent_cluster"
    other_cluster = await api.client.post(
        "/api/v1/agents", json={"name": "dup", "cluster_name": "c2"}, headers=api.admin
    )
    assert other_cluster.status_code == 201


async def test_deleted_agent_name_can_be_reused(api: Api) -> None:
    agent, _ = await api.create_agent("reuse", "c1")
    assert (
        await api.client.delete(f"/api/v1/agents/{agent['id']}", headers=api.admin)
    ).status_code == 204
    again = await api.client.post(
        "/api/v1/agents", json={"name": "reuse", "cluster_name": "c1"}, headers=api.admin
    )
    assert again.status_code == 201


@pytest.mark.parametrize("who", ["agent", "generator"])
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/v1/agents"), ("POST", "/api/v1/agents"), ("DELETE", "/api/v1/agents/{id}")],
)
async def test_admin_only_agent_routes_forbid_other_roles(
    api: Api, who: str, method: str, path: str
) -> None:
    agent, agent_pak = await api.create_agent()
    _, generator_pak = await api.create_generator()
    pak = agent_pak if who == "agent" else generator_pak
    response = await api.client.request(
        method,
        path.format(id=agent["id"]),
        json={"name": "n", "cluster_name": "c"},
        headers=auth(pak),
    )
    assert_error(response, 403, "admin_required")
    assert (
        await api.client.get(f"/api/v1/agents/{agent['id']}", headers=api.admin)
    ).status_code == 200


async def test_admin_lists_live_agents(api: Api) -> None:
    first, _ = await api.create_agent("a1")
    second, _ = await api.create_agent("a2")
    await api.client.delete(f"/api/v1/agents/{first['id']}", headers=api.admin)
    response = await api.client.get("/api/v1/agents", headers=api.admin)
    assert response.status_code == 200
    assert [agent["id"] for agent in response.json()] == [second["id"]]


async def test_search_finds_agent_for_admin_and_itself_only(api: Api) -> None:
    agent, pak = await api.create_agent("edge", "eu")
    other, other_pak = await api.create_agent("edge", "us")
    _, generator_pak = await api.create_generator()
    params = {"name": "edge", "cluster_name": "eu"}
    as_admin = await api.client.get("/api/v1/agents/", params=params, headers=api.admin)
    assert as_admin.status_code == 200 and as_admin.json()["id"] == agent["id"]
    as_self = await api.client.get("/api/v1/agents/", params=params, headers=auth(pak))
    assert as_self.status_code == 200 and as_self.json()["id"] == agent["id"]
    assert_error(
        await api.client.get("/api/v1/agents/", params=params, headers=auth(other_pak)),
        403,
        "agent_pak_mismatch",
    )
    assert_error(
        await api.client.get("/api/v1/agents/", params=params, headers=auth(generator_pak)), 403
    )
    missing = {"name": "nope", "cluster_name": "eu"}
    assert_error(
        await api.client.get("/api/v1/agents/", params=missing, headers=api.admin),
        404,
        "agent_not_found",
    )
    # A non-admin cannot probe for other agents' existence.
    assert_error(
        await api.client.get("/api/v1/agents/", params=missing, headers=auth(other_pak)), 403
    )
    assert other["id"] != agent["id"]


async def test_search_requires_both_parameters(api: Api) -> None:
    response = await api.client.get("/api/v1/agents/", params={"name": "x"}, headers=api.admin)
    assert_error(response, 400, "name_and_cluster_required")


async def test_agent_reads_itself_but_not_others(api: Api) -> None:
    agent, pak = await api.create_agent("a1")
    other, _ = await api.create_agent("a2")
    _, generator_pak = await api.create_generator()
    assert (
        await api.client.get(f"/api/v1/agents/{agent['id']}", headers=auth(pak))
    ).status_code == 200
    assert_error(
        await api.client.get(f"/api/v1/agents/{other['id']}", headers=auth(pak)),
        403,
        "agent_pak_mismatch",
    )
    assert_error(
        await api.client.get(f"/api/v1/agents/{agent['id']}", headers=auth(generator_pak)), 403
    )


async def test_unknown_and_malformed_agent_ids(api: Api) -> None:
    assert_error(
        await api.client.get(f"/api/v1/agents/{uuid.uuid4()}", headers=api.admin),
        404,
        "agent_not_found",
    )
    assert_error(
        await api.client.get("/api/v1/agents/not-a-uuid", headers=api.admin),
        400,
        "invalid_parameter",
    )


async def test_admin_updates_agent_status_and_name(api: Api) -> None:
    agent, _ = await api.create_agent("a1")
    response = await api.client.put(
        f"/api/v1/agents/{agent['id']}",
        json={"status": "ACTIVE", "name": "renamed"},
        headers=api.admin,
    )
    assert response.status_code == 200
    assert response.json()["status"] == "ACTIVE" and response.json()["name"] == "renamed"
    [record] = await api.audit(action="agent.updated")
    assert record["details"] == {"status": "ACTIVE", "name": "renamed"}


async def test_agent_cannot_activate_or_rename_itself(api: Api) -> None:
    agent, pak = await api.create_agent("a1")
    for body in ({"status": "ACTIVE"}, {"name": "evil"}, {"cluster_name": "elsewhere"}):
        response = await api.client.put(
            f"/api/v1/agents/{agent['id']}", json=body, headers=auth(pak)
        )
        assert_error(response, 403, "agent_update_forbidden")
    unchanged = await api.client.put(
        f"/api/v1/agents/{agent['id']}", json={"status": "INACTIVE"}, headers=auth(pak)
    )
    assert unchanged.status_code == 200 and unchanged.json()["status"] == "INACTIVE"


@pytest.mark.parametrize("body", [{"status": "RUNNING"}, {"name": ""}, {"status": 1}])
async def test_update_rejects_bad_values(api: Api, body: dict[str, object]) -> None:
    agent, _ = await api.create_agent()
    response = await api.client.put(f"/api/v1/agents/{agent['id']}", json=body, headers=api.admin)
    assert_error(response, 422, "validation_failed")


async def test_update_with_mismatched_body_id_is_403(api: Api) -> None:
    agent, _ = await api.create_agent()
    response = await api.client.put(
        f"/api/v1/agents/{agent['id']}",
        json={"id": str(uuid.uuid4()), "status": "ACTIVE"},
        headers=api.admin,
    )
    assert_error(response, 403, "id_mismatch")


async def test_update_to_duplicate_name_is_409_and_unknown_is_404(api: Api) -> None:
    await api.create_agent("a1", "c")
    second, _ = await api.create_agent("a2", "c")
    response = await api.client.put(
        f"/api/v1/agents/{second['id']}", json={"name": "a1"}, headers=api.admin
    )
    assert_error(response, 409, "agent_name_taken")
    missing = await api.client.put(
        f"/api/v1/agents/{uuid.uuid4()}", json={"status": "ACTIVE"}, headers=api.admin
    )
    assert_error(missing, 404, "agent_not_found")


async def test_delete_is_idempotent_revokes_pak_and_404s_for_unknown(api: Api) -> None:
    agent, pak = await api.create_agent()
    assert (
        await api.client.get(f"/api/v1/agents/{agent['id']}", headers=auth(pak))
    ).status_code == 200
    assert (
        await api.client.delete(f"/api/v1/agents/{agent['id']}", headers=api.admin)
    ).status_code == 204
    assert (
        await api.client.delete(f"/api/v1/agents/{agent['id']}", headers=api.admin)
    ).status_code == 204
    assert_error(
        await api.client.get(f"/api/v1/agents/{agent['id']}", headers=auth(pak)),
        401,
        "unauthorized",
    )
    assert_error(await api.client.get(f"/api/v1/agents/{agent['id']}", headers=api.admin), 404)
    assert_error(
        await api.client.delete(f"/api/v1/agents/{uuid.uuid4()}", headers=api.admin),
        404,
        "agent_not_found",
    )
    assert len(await api.audit(action="agent.deleted")) == 1


async def test_heartbeat_only_by_the_agent_itself(api: Api) -> None:
    agent, pak = await api.create_agent("a1")
    _, other_pak = await api.create_agent("a2")
    _, generator_pak = await api.create_generator()
    path = f"/api/v1/agents/{agent['id']}/heartbeat"
    response = await api.client.post(path, headers=auth(pak))
    assert response.status_code == 204 and response.content == b""
    for pak_of_other in (api.admin_pak, other_pak, generator_pak):
        assert_error(
            await api.client.post(path, headers=auth(pak_of_other)), 403, "agent_pak_mismatch"
        )
    seen = (await api.client.get(f"/api/v1/agents/{agent['id']}", headers=api.admin)).json()
    assert seen["last_heartbeat"] is not None and seen["status"] == "INACTIVE"


@pytest.mark.parametrize("who", ["admin", "self"])
async def test_rotate_pak_returns_new_key_and_old_key_stops_at_once(api: Api, who: str) -> None:
    agent, pak = await api.create_agent()
    path = f"/api/v1/agents/{agent['id']}"
    assert (await api.client.get(path, headers=auth(pak))).status_code == 200  # now cached
    caller = api.admin if who == "admin" else auth(pak)
    response = await api.client.post(f"{path}/rotate-pak", headers=caller)
    assert response.status_code == 200
    new_pak = response.json()["pak"]
    assert response.json()["agent"]["id"] == agent["id"] and new_pak != pak
    assert_error(await api.client.get(path, headers=auth(pak)), 401)
    assert (await api.client.get(path, headers=auth(new_pak))).status_code == 200
    [record] = await api.audit(action="pak.rotated")
    assert record["actor_type"] == ("admin" if who == "admin" else "agent")
    assert record["resource_id"] == agent["id"]


async def test_rotate_pak_forbidden_for_others_and_404_for_unknown(api: Api) -> None:
    agent, _ = await api.create_agent("a1")
    _, other_pak = await api.create_agent("a2")
    _, generator_pak = await api.create_generator()
    for pak in (other_pak, generator_pak):
        response = await api.client.post(
            f"/api/v1/agents/{agent['id']}/rotate-pak", headers=auth(pak)
        )
        assert_error(response, 403, "agent_pak_mismatch")
    missing = await api.client.post(f"/api/v1/agents/{uuid.uuid4()}/rotate-pak", headers=api.admin)
    assert_error(missing, 404, "agent_not_found")
