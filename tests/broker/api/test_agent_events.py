"""Agent events: POST/GET /agents/{id}/events, GET /agent-events and /agent-events/{id}.

Covers who may report (the agent itself only, body agent_id must match the path), the status and
event_type rules, that an event must be about a deployment object served to the agent (nothing
stored otherwise), the response shape, listing newest first with limit/offset, role scoping of
the search and the single read (admin all, agent own, generator its stacks' objects), filters,
and pagination bounds.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from brokkr.broker.db import tables
from tests.broker.conftest import Api, assert_error, auth

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"
EVENT_FIELDS = {
    "id",
    "created_at",
    "updated_at",
    "deleted_at",
    "agent_id",
    "deployment_object_id",
    "event_type",
    "status",
    "message",
}


async def create_stack(api: Api, generator_pak: str, name: str = "web") -> dict[str, Any]:
    response = await api.client.post(
        "/api/v1/stacks", json={"name": name}, headers=auth(generator_pak)
    )
    assert response.status_code == 201, response.text
    stack: dict[str, Any] = response.json()
    return stack


async def post_object(api: Api, stack_id: str, name: str = "settings") -> dict[str, Any]:
    response = await api.client.post(
        f"/api/v1/stacks/{stack_id}/deployment-objects",
        json={"yaml_content": CONFIGMAP.format(name=name)},
        headers=api.admin,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def target(api: Api, agent_id: str, stack_id: str) -> None:
    response = await api.client.post(
        f"/api/v1/agents/{agent_id}/targets", json={"stack_id": stack_id}, headers=api.admin
    )
    assert response.status_code == 201, response.text


def events_path(agent_id: str) -> str:
    return f"/api/v1/agents/{agent_id}/events"


async def report(
    api: Api,
    agent_id: str,
    pak: str,
    object_id: str,
    status: str = "SUCCESS",
    /,
    **extra: Any,
) -> dict[str, Any]:
    response = await api.client.post(
        events_path(agent_id),
        json={"deployment_object_id": object_id, "status": status, **extra},
        headers=auth(pak),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def stored_events(api: Api) -> int:
    return await api.count(tables.agent_events)


@dataclass
class Served:
    """One generator's stack with one object, targeted at one agent."""

    generator_id: str
    generator_pak: str
    agent_id: str
    agent_pak: str
    stack_id: str
    object_id: str


async def served(api: Api, suffix: str = "1") -> Served:
    generator, generator_pak = await api.create_generator(f"gen-{suffix}")
    agent, agent_pak = await api.create_agent(f"agent-{suffix}")
    stack = await create_stack(api, generator_pak, f"stack-{suffix}")
    obj = await post_object(api, stack["id"])
    await target(api, agent["id"], stack["id"])
    return Served(
        generator_id=generator["id"],
        generator_pak=generator_pak,
        agent_id=agent["id"],
        agent_pak=agent_pak,
        stack_id=stack["id"],
        object_id=obj["id"],
    )


async def test_agent_reports_event_about_a_served_object(api: Api) -> None:
    scene = await served(api)
    response = await api.client.post(
        events_path(scene.agent_id),
        json={
            "deployment_object_id": scene.object_id,
            "status": "SUCCESS",
            "message": "applied 1 object",
        },
        headers=auth(scene.agent_pak),
    )
    assert response.status_code == 201
    event = response.json()
    assert set(event) == EVENT_FIELDS
    assert event["agent_id"] == scene.agent_id
    assert event["deployment_object_id"] == scene.object_id
    assert event["event_type"] == "DEPLOY"
    assert event["status"] == "SUCCESS"
    assert event["message"] == "applied 1 object"
    assert event["deleted_at"] is None
    assert event["created_at"].endswith("Z") and event["updated_at"].endswith("Z")
    uuid.UUID(event["id"])
    [record] = await api.audit(action="agent_event.created")
    assert record["actor_type"] == "agent" and record["actor_id"] == scene.agent_id
    assert await stored_events(api) == 1


async def test_message_may_be_omitted_or_null(api: Api) -> None:
    scene = await served(api)
    omitted = await report(api, scene.agent_id, scene.agent_pak, scene.object_id, "FAILURE")
    assert omitted["message"] is None and omitted["status"] == "FAILURE"
    null = await report(api, scene.agent_id, scene.agent_pak, scene.object_id, message=None)
    assert null["message"] is None


@pytest.mark.parametrize("who", ["admin", "other-agent", "generator", "owner"])
async def test_only_the_agent_itself_may_report(api: Api, who: str) -> None:
    scene = await served(api)
    other, other_pak = await api.create_agent("other")
    await target(api, other["id"], scene.stack_id)
    _, generator_pak = await api.create_generator("stranger")
    headers = {
        "admin": api.admin,
        "other-agent": auth(other_pak),
        "generator": auth(generator_pak),
        "owner": auth(scene.generator_pak),
    }[who]
    response = await api.client.post(
        events_path(scene.agent_id),
        json={"deployment_object_id": scene.object_id, "status": "SUCCESS"},
        headers=headers,
    )
    assert_error(response, 403, "agent_pak_mismatch")
    assert await stored_events(api) == 0


async def test_body_agent_id_must_match_the_path(api: Api) -> None:
    scene = await served(api)
    other, _ = await api.create_agent("other")
    for agent_id in (other["id"], str(uuid.uuid4())):
        response = await api.client.post(
            events_path(scene.agent_id),
            json={
                "agent_id": agent_id,
                "deployment_object_id": scene.object_id,
                "status": "SUCCESS",
            },
            headers=auth(scene.agent_pak),
        )
        assert_error(response, 403, "agent_id_mismatch")
    assert await stored_events(api) == 0
    same = await report(
        api, scene.agent_id, scene.agent_pak, scene.object_id, agent_id=scene.agent_id
    )
    assert same["agent_id"] == scene.agent_id


async def test_status_must_be_success_or_failure(api: Api) -> None:
    scene = await served(api)
    for body in (
        {"status": "success"},
        {"status": "Failure"},
        {"status": "PENDING"},
        {"status": ""},
        {"status": None},
        {"status": 1},
        {},
    ):
        response = await api.client.post(
            events_path(scene.agent_id),
            json={"deployment_object_id": scene.object_id, **body},
            headers=auth(scene.agent_pak),
        )
        error = assert_error(response, 422)
        assert "status" in str(error.get("details")), error
    assert await stored_events(api) == 0


async def test_deployment_object_id_is_required(api: Api) -> None:
    scene = await served(api)
    for body in ({}, {"deployment_object_id": "not-a-uuid"}, {"deployment_object_id": None}):
        response = await api.client.post(
            events_path(scene.agent_id),
            json={"status": "SUCCESS", **body},
            headers=auth(scene.agent_pak),
        )
        assert_error(response, 422)
    assert await stored_events(api) == 0


async def test_event_type_defaults_to_deploy_and_accepts_custom_values(api: Api) -> None:
    scene = await served(api)
    default = await report(api, scene.agent_id, scene.agent_pak, scene.object_id)
    assert default["event_type"] == "DEPLOY"
    custom = await report(
        api, scene.agent_id, scene.agent_pak, scene.object_id, event_type="HEALTH_CHECK"
    )
    assert custom["event_type"] == "HEALTH_CHECK"
    longest = await report(
        api, scene.agent_id, scene.agent_pak, scene.object_id, event_type="X" * 50
    )
    assert longest["event_type"] == "X" * 50


async def test_bad_event_type_is_422(api: Api) -> None:
    scene = await served(api)
    for event_type in ("", "   ", "X" * 51, None, 7):
        response = await api.client.post(
            events_path(scene.agent_id),
            json={
                "deployment_object_id": scene.object_id,
                "status": "SUCCESS",
                "event_type": event_type,
            },
            headers=auth(scene.agent_pak),
        )
        assert_error(response, 422)
    assert await stored_events(api) == 0


async def test_malformed_json_is_400(api: Api) -> None:
    scene = await served(api)
    response = await api.client.post(
        events_path(scene.agent_id),
        content=b"{nope",
        headers={**auth(scene.agent_pak), "content-type": "application/json"},
    )
    assert_error(response, 400)
    assert await stored_events(api) == 0


@pytest.mark.parametrize(
    "case", ["other-stack", "unknown", "deleted-stack-object", "target-removed"]
)
async def test_event_about_object_not_served_is_422_and_stores_nothing(api: Api, case: str) -> None:
    scene = await served(api)
    if case == "other-stack":
        other_stack = await create_stack(api, scene.generator_pak, "not-targeted")
        object_id = (await post_object(api, other_stack["id"]))["id"]
    elif case == "unknown":
        object_id = str(uuid.uuid4())
    elif case == "target-removed":
        object_id = scene.object_id
        removed = await api.client.delete(
            f"/api/v1/agents/{scene.agent_id}/targets/{scene.stack_id}", headers=api.admin
        )
        assert removed.status_code == 204
    else:
        object_id = scene.object_id
        deleted = await api.client.delete(f"/api/v1/stacks/{scene.stack_id}", headers=api.admin)
        assert deleted.status_code == 204
    for status in ("SUCCESS", "FAILURE"):
        response = await api.client.post(
            events_path(scene.agent_id),
            json={"deployment_object_id": object_id, "status": status},
            headers=auth(scene.agent_pak),
        )
        error = assert_error(response, 422, "deployment_object_not_served")
        assert "deployment_object_id" in error["details"]["fields"]
    assert await stored_events(api) == 0


async def test_event_about_marker_is_accepted_until_acknowledged(api: Api) -> None:
    scene = await served(api)
    other, other_pak = await api.create_agent("bystander")
    deleted = await api.client.delete(f"/api/v1/stacks/{scene.stack_id}", headers=api.admin)
    assert deleted.status_code == 204
    state = await api.client.get(
        f"/api/v1/agents/{scene.agent_id}/target-state", headers=auth(scene.agent_pak)
    )
    [marker] = state.json()
    assert marker["is_deletion_marker"] is True
    bystander = await api.client.post(
        events_path(other["id"]),
        json={"deployment_object_id": marker["id"], "status": "SUCCESS"},
        headers=auth(other_pak),
    )
    assert_error(bystander, 422, "deployment_object_not_served")
    await report(api, scene.agent_id, scene.agent_pak, marker["id"], "FAILURE")
    await report(api, scene.agent_id, scene.agent_pak, marker["id"], "SUCCESS")
    assert await stored_events(api) == 2


async def test_event_about_an_object_served_by_label_is_accepted(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    agent, agent_pak = await api.create_agent()
    stack = await create_stack(api, generator_pak)
    obj = await post_object(api, stack["id"])
    for path in (f"/api/v1/stacks/{stack['id']}/labels", f"/api/v1/agents/{agent['id']}/labels"):
        response = await api.client.post(path, json={"label": "env:prod"}, headers=api.admin)
        assert response.status_code == 201
    event = await report(api, agent["id"], agent_pak, obj["id"])
    assert event["deployment_object_id"] == obj["id"]


@pytest.mark.parametrize(("who", "status"), [("admin", 200), ("self", 200)])
async def test_agent_events_are_listed_newest_first(api: Api, who: str, status: int) -> None:
    scene = await served(api)
    other = await served(api, "2")
    reported = [
        await report(api, scene.agent_id, scene.agent_pak, scene.object_id, s)
        for s in ("FAILURE", "FAILURE", "SUCCESS")
    ]
    await report(api, other.agent_id, other.agent_pak, other.object_id)
    headers = api.admin if who == "admin" else auth(scene.agent_pak)
    response = await api.client.get(events_path(scene.agent_id), headers=headers)
    assert response.status_code == status
    assert response.json() == list(reversed(reported))


@pytest.mark.parametrize("who", ["other-agent", "owner", "generator"])
async def test_agent_event_list_is_forbidden_to_others(api: Api, who: str) -> None:
    scene = await served(api)
    await report(api, scene.agent_id, scene.agent_pak, scene.object_id)
    _, other_pak = await api.create_agent("other")
    _, generator_pak = await api.create_generator("stranger")
    pak = {"other-agent": other_pak, "owner": scene.generator_pak, "generator": generator_pak}[who]
    response = await api.client.get(events_path(scene.agent_id), headers=auth(pak))
    assert_error(response, 403, "agent_pak_mismatch")


async def test_agent_event_list_pages_with_limit_and_offset(api: Api) -> None:
    scene = await served(api)
    reported = [
        await report(api, scene.agent_id, scene.agent_pak, scene.object_id, message=str(i))
        for i in range(5)
    ]
    newest_first = [e["id"] for e in reversed(reported)]
    path = events_path(scene.agent_id)
    headers = auth(scene.agent_pak)
    pages = [
        (await api.client.get(path, params={"limit": 2, "offset": o}, headers=headers)).json()
        for o in (0, 2, 4, 6)
    ]
    assert [[e["id"] for e in page] for page in pages] == [
        newest_first[0:2],
        newest_first[2:4],
        newest_first[4:],
        [],
    ]


async def test_bad_pagination_is_400(api: Api) -> None:
    agent, _ = await api.create_agent()
    for params in ({"limit": 0}, {"limit": -5}, {"offset": -1}, {"limit": "x"}, {"offset": "y"}):
        for path in (events_path(agent["id"]), "/api/v1/agent-events"):
            response = await api.client.get(path, params=params, headers=api.admin)
            assert_error(response, 400)


@dataclass
class World:
    """Two generators, each with a stack; three agents, each reporting about what it is served."""

    first: Served
    second: Served
    shared_agent_id: str
    shared_agent_pak: str
    events: dict[str, dict[str, Any]]


async def world(api: Api) -> World:
    first = await served(api, "1")
    second = await served(api, "2")
    shared, shared_pak = await api.create_agent("shared")
    await target(api, shared["id"], first.stack_id)
    await target(api, shared["id"], second.stack_id)
    events = {
        "first": await report(api, first.agent_id, first.agent_pak, first.object_id),
        "second": await report(api, second.agent_id, second.agent_pak, second.object_id),
        "shared-first": await report(api, shared["id"], shared_pak, first.object_id, "FAILURE"),
        "shared-second": await report(api, shared["id"], shared_pak, second.object_id),
    }
    return World(first, second, shared["id"], shared_pak, events)


def event_ids(events: list[dict[str, Any]]) -> set[str]:
    return {e["id"] for e in events}


async def search(api: Api, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = await api.client.get("/api/v1/agent-events", params=params, headers=headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def test_admin_searches_all_events_newest_first(api: Api) -> None:
    w = await world(api)
    found = await search(api, api.admin)
    assert [e["id"] for e in found] == [e["id"] for e in reversed(list(w.events.values()))]


async def test_agent_searches_only_its_own_events(api: Api) -> None:
    w = await world(api)
    own = await search(api, auth(w.shared_agent_pak))
    assert event_ids(own) == {w.events["shared-first"]["id"], w.events["shared-second"]["id"]}
    filtered = await search(api, auth(w.shared_agent_pak), agent_id=w.shared_agent_id)
    assert event_ids(filtered) == event_ids(own)
    # Asking for another agent's events yields nothing rather than an error or a leak.
    assert await search(api, auth(w.shared_agent_pak), agent_id=w.first.agent_id) == []
    by_object = await search(api, auth(w.first.agent_pak), deployment_object_id=w.first.object_id)
    assert event_ids(by_object) == {w.events["first"]["id"]}


async def test_generator_searches_only_events_about_its_stacks(api: Api) -> None:
    w = await world(api)
    mine = await search(api, auth(w.first.generator_pak))
    assert event_ids(mine) == {w.events["first"]["id"], w.events["shared-first"]["id"]}
    by_agent = await search(api, auth(w.first.generator_pak), agent_id=w.shared_agent_id)
    assert event_ids(by_agent) == {w.events["shared-first"]["id"]}
    foreign = await search(
        api, auth(w.first.generator_pak), deployment_object_id=w.second.object_id
    )
    assert foreign == []
    _, idle_pak = await api.create_generator("idle")
    assert await search(api, auth(idle_pak)) == []


async def test_generator_still_sees_events_after_its_stack_is_deleted(api: Api) -> None:
    w = await world(api)
    deleted = await api.client.delete(
        f"/api/v1/stacks/{w.first.stack_id}", headers=auth(w.first.generator_pak)
    )
    assert deleted.status_code == 204
    mine = await search(api, auth(w.first.generator_pak))
    assert event_ids(mine) == {w.events["first"]["id"], w.events["shared-first"]["id"]}


async def test_admin_filters_by_agent_and_deployment_object(api: Api) -> None:
    w = await world(api)
    by_agent = await search(api, api.admin, agent_id=w.shared_agent_id)
    assert event_ids(by_agent) == {w.events["shared-first"]["id"], w.events["shared-second"]["id"]}
    by_object = await search(api, api.admin, deployment_object_id=w.second.object_id)
    assert event_ids(by_object) == {w.events["second"]["id"], w.events["shared-second"]["id"]}
    both = await search(
        api, api.admin, agent_id=w.shared_agent_id, deployment_object_id=w.second.object_id
    )
    assert event_ids(both) == {w.events["shared-second"]["id"]}
    assert await search(api, api.admin, agent_id=str(uuid.uuid4())) == []


async def test_malformed_filter_is_400(api: Api) -> None:
    for param in ("agent_id", "deployment_object_id"):
        response = await api.client.get(
            "/api/v1/agent-events", params={param: "not-a-uuid"}, headers=api.admin
        )
        assert_error(response, 400)


async def seed_events(api: Api, scene: Served, total: int) -> None:
    """Store ``total`` events directly (one statement), one second apart, message = index."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [
        {
            "id": uuid.uuid4(),
            "created_at": start + timedelta(seconds=i),
            "updated_at": start + timedelta(seconds=i),
            "agent_id": uuid.UUID(scene.agent_id),
            "deployment_object_id": uuid.UUID(scene.object_id),
            "event_type": "DEPLOY",
            "status": "FAILURE",
            "message": str(i),
        }
        for i in range(total)
    ]
    async with api.broker.database.transaction() as tx:
        await tx.execute(tables.agent_events.insert(), rows)


async def test_search_pagination_defaults_to_100_and_caps_limit(api: Api) -> None:
    scene = await served(api)
    total = 120
    await seed_events(api, scene, total)
    default = await search(api, api.admin)
    assert [e["message"] for e in default] == [str(i) for i in range(total - 1, total - 101, -1)]
    rest = await search(api, api.admin, offset=100)
    assert [e["message"] for e in rest] == [str(i) for i in range(total - 101, -1, -1)]
    # A limit above the cap is accepted and served as the cap (1000 ≥ the 120 stored here).
    capped = await search(api, api.admin, limit=5000)
    assert len(capped) == total
    path = events_path(scene.agent_id)
    own = await api.client.get(path, params={"limit": 5000}, headers=auth(scene.agent_pak))
    assert own.status_code == 200 and len(own.json()) == total
    own_default = await api.client.get(path, headers=auth(scene.agent_pak))
    assert len(own_default.json()) == 100
    as_generator = await search(api, auth(scene.generator_pak), limit=1000, offset=20)
    assert len(as_generator) == total - 20


@pytest.mark.parametrize(
    ("reader", "visible"),
    [
        ("admin", True),
        ("reporting-agent", True),
        ("owning-generator", True),
        ("other-agent", False),
        ("other-generator", False),
    ],
)
async def test_get_event_follows_the_same_scoping(api: Api, reader: str, visible: bool) -> None:
    w = await world(api)
    event = w.events["first"]
    headers = {
        "admin": api.admin,
        "reporting-agent": auth(w.first.agent_pak),
        "owning-generator": auth(w.first.generator_pak),
        "other-agent": auth(w.second.agent_pak),
        "other-generator": auth(w.second.generator_pak),
    }[reader]
    response = await api.client.get(f"/api/v1/agent-events/{event['id']}", headers=headers)
    if visible:
        assert response.status_code == 200 and response.json() == event
    else:
        assert_error(response, 404, "agent_event_not_found")


async def test_get_unknown_event_is_404(api: Api) -> None:
    response = await api.client.get(f"/api/v1/agent-events/{uuid.uuid4()}", headers=api.admin)
    assert_error(response, 404, "agent_event_not_found")


async def test_event_endpoints_require_authentication(api: Api) -> None:
    scene = await served(api)
    for response in (
        await api.client.get("/api/v1/agent-events"),
        await api.client.get(events_path(scene.agent_id)),
        await api.client.post(
            events_path(scene.agent_id),
            json={"deployment_object_id": scene.object_id, "status": "SUCCESS"},
        ),
    ):
        assert_error(response, 401)
    assert await stored_events(api) == 0


async def test_a_retried_success_for_an_acknowledged_marker_is_accepted(api: Api) -> None:
    agent, pak = await api.create_agent()
    generator, generator_pak = await api.create_generator()
    stack = await create_stack(api, generator_pak)
    await post_object(api, stack["id"])
    await target(api, agent["id"], stack["id"])
    assert (
        await api.client.delete(f"/api/v1/stacks/{stack['id']}", headers=api.admin)
    ).status_code == 204
    state = await api.client.get(f"/api/v1/agents/{agent['id']}/target-state", headers=auth(pak))
    [marker] = state.json()
    first = await api.client.post(
        events_path(agent["id"]),
        json={"deployment_object_id": marker["id"], "status": "SUCCESS"},
        headers=auth(pak),
    )
    assert first.status_code == 201, first.text
    # The agent did not see the first answer and reports again: accepted, not refused.
    again = await api.client.post(
        events_path(agent["id"]),
        json={"deployment_object_id": marker["id"], "status": "SUCCESS"},
        headers=auth(pak),
    )
    assert again.status_code == 201, again.text
    after = await api.client.get(
        f"/api/v1/agents/{agent['id']}/target-state?mode=full", headers=auth(pak)
    )
    assert after.json() == []
    assert generator["id"]


async def test_admin_listing_events_of_an_unknown_agent_is_404(api: Api) -> None:
    response = await api.client.get(events_path(str(uuid.uuid4())), headers=api.admin)
    assert_error(response, 404, "agent_not_found")
