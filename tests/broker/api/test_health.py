"""Deployment health: PATCH /agents/{id}/health-status, GET /deployment-objects/{id}/health and
GET /stacks/{id}/health, on both databases.

Covers who may report and read (agent itself or admin; admin or owning generator), every way a
report is refused (a 422 naming each entry, nothing written), the upsert, the body limit,
staleness (read as unknown, from the broker's receive time), aggregation, and that rows of
deleted agents and objects of deleted stacks are not shown.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest
import sqlalchemy as sa

from brokkr.broker.db import tables
from brokkr.broker.domain import health as rules
from brokkr.common import wire
from tests.broker.conftest import Api, assert_error, auth, limits

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"
_h = tables.deployment_health


@dataclass
class World:
    """Generator ``owner`` with a stack holding two objects, served to agents ``a`` and ``b``;
    a generator ``other`` and an agent ``stranger`` the stack is not served to."""

    api: Api
    stack_id: str
    old_id: str
    object_id: str
    owner_pak: str
    other_pak: str
    a_id: str
    a_pak: str
    b_id: str
    b_pak: str
    stranger_id: str
    stranger_pak: str

    def paks(self) -> dict[str, dict[str, str]]:
        return {
            "admin": self.api.admin,
            "owner": auth(self.owner_pak),
            "other generator": auth(self.other_pak),
            "agent": auth(self.a_pak),
            "other agent": auth(self.stranger_pak),
        }


async def add_object(api: Api, stack_id: str, pak: str, name: str) -> str:
    created = await api.client.post(
        f"/api/v1/stacks/{stack_id}/deployment-objects",
        json={"yaml_content": CONFIGMAP.format(name=name)},
        headers=auth(pak),
    )
    assert created.status_code == 201, created.text
    object_id: str = created.json()["id"]
    return object_id


@pytest.fixture
async def world(api: Api) -> World:
    owner, owner_pak = await api.create_generator("owner")
    _, other_pak = await api.create_generator("other")
    stack = await api.client.post("/api/v1/stacks", json={"name": "web"}, headers=auth(owner_pak))
    assert stack.status_code == 201, stack.text
    stack_id = stack.json()["id"]
    old_id = await add_object(api, stack_id, owner_pak, "v1")
    object_id = await add_object(api, stack_id, owner_pak, "v2")
    agents = [await api.create_agent(f"agent-{n}", f"cluster-{n}") for n in ("a", "b", "s")]
    for agent, _ in agents[:2]:
        targeted = await api.client.post(
            f"/api/v1/agents/{agent['id']}/targets", json={"stack_id": stack_id}, headers=api.admin
        )
        assert targeted.status_code == 201, targeted.text
    (a, a_pak), (b, b_pak), (stranger, stranger_pak) = agents
    return World(
        api=api,
        stack_id=stack_id,
        old_id=old_id,
        object_id=object_id,
        owner_pak=owner_pak,
        other_pak=other_pak,
        a_id=a["id"],
        a_pak=a_pak,
        b_id=b["id"],
        b_pak=b_pak,
        stranger_id=stranger["id"],
        stranger_pak=stranger_pak,
    )


def now() -> str:
    return datetime.now(UTC).isoformat()


def entry(object_id: str, status: str = "healthy", **extra: Any) -> dict[str, Any]:
    return {"id": object_id, "status": status, "checked_at": now(), **extra}


async def send(
    api: Api, agent_id: str, headers: dict[str, str], *entries: dict[str, Any]
) -> httpx.Response:
    return await api.client.patch(
        f"/api/v1/agents/{agent_id}/health-status",
        json={"deployment_objects": list(entries)},
        headers=headers,
    )


async def report(w: World, agent: str, *entries: dict[str, Any]) -> None:
    agent_id, pak = (w.a_id, w.a_pak) if agent == "a" else (w.b_id, w.b_pak)
    response = await send(w.api, agent_id, auth(pak), *entries)
    assert response.status_code == 200, response.text


async def rows(api: Api) -> list[dict[str, Any]]:
    async with api.broker.database.read() as tx:
        found = await tx.execute(sa.select(_h).order_by(_h.c.agent_id, _h.c.deployment_object_id))
        return [dict(row._mapping) for row in found]


def problems(response: httpx.Response) -> list[dict[str, Any]]:
    body = assert_error(response, 422, "invalid_health_report")
    entries: list[dict[str, Any]] = body["details"]["entries"]
    return entries


# --- PATCH /agents/{id}/health-status -----------------------------------------------------------


async def test_the_agent_reports_and_gets_an_empty_200(world: World) -> None:
    resources: list[dict[str, Any]] = [
        {"kind": "Deployment", "name": "web", "namespace": "apps", "ready": False},
        {
            "kind": "Pod",
            "name": "web-1",
            "namespace": "apps",
            "ready": False,
            "message": "Back-off pulling image",
        },
    ]
    summary = {
        "pods_ready": 0,
        "pods_total": 2,
        "conditions": ["ImagePullBackOff"],
        "resources": resources,
    }
    response = await send(
        world.api,
        world.a_id,
        auth(world.a_pak),
        entry(world.object_id, "failing", summary=summary),
        entry(world.old_id, "unknown"),
    )
    assert response.status_code == 200
    assert response.content == b""
    stored = await rows(world.api)
    assert {(r["deployment_object_id"], r["status"]) for r in stored} == {
        (uuid.UUID(world.object_id), "failing"),
        (uuid.UUID(world.old_id), "unknown"),
    }
    assert all(str(r["agent_id"]) == world.a_id for r in stored)
    failing = next(r for r in stored if r["status"] == "failing")
    # Stored as compact JSON, read back through the wire as the same document.
    assert msgspec.json.decode(failing["summary"]) == {
        **summary,
        "resources": [{"message": None, **r} for r in resources],
    }
    assert next(r for r in stored if r["status"] == "unknown")["summary"] is None


async def test_a_new_report_replaces_the_agents_row(world: World) -> None:
    await report(world, "a", entry(world.object_id, "failing"))
    [first] = await rows(world.api)
    summary = {"pods_ready": 1, "pods_total": 1, "conditions": []}
    await report(world, "a", entry(world.object_id, "healthy", summary=summary))
    await report(world, "b", entry(world.object_id, "degraded"))
    stored = await rows(world.api)
    [second] = [r for r in stored if str(r["agent_id"]) == world.a_id]
    assert len(stored) == 2
    assert (second["id"], second["created_at"]) == (first["id"], first["created_at"])
    assert second["status"] == "healthy"
    assert second["summary"] == '{"pods_ready":1,"pods_total":1,"conditions":[]}'
    assert second["updated_at"] >= first["updated_at"]
    assert second["checked_at"] > first["checked_at"]


async def test_an_empty_report_is_accepted(world: World) -> None:
    assert (await send(world.api, world.a_id, auth(world.a_pak))).status_code == 200
    assert await rows(world.api) == []


async def test_an_admin_may_report_for_an_agent(world: World) -> None:
    response = await send(world.api, world.a_id, world.api.admin, entry(world.object_id))
    assert response.status_code == 200, response.text
    assert [str(r["agent_id"]) for r in await rows(world.api)] == [world.a_id]
    unknown = await send(world.api, str(uuid.uuid4()), world.api.admin, entry(world.object_id))
    assert_error(unknown, 404, "agent_not_found")


@pytest.mark.parametrize(
    ("who", "code"),
    [
        ("other agent", "agent_pak_mismatch"),
        ("owner", "agent_pak_mismatch"),
        ("other generator", "agent_pak_mismatch"),
    ],
)
async def test_no_one_else_reports_for_an_agent(world: World, who: str, code: str) -> None:
    response = await send(world.api, world.a_id, world.paks()[who], entry(world.object_id))
    assert_error(response, 403, code)
    assert await rows(world.api) == []


async def test_a_report_without_a_pak_is_refused(world: World) -> None:
    response = await send(world.api, world.a_id, {}, entry(world.object_id))
    assert_error(response, 401)
    assert await rows(world.api) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"status": "ok"}, "status must be one of healthy, degraded, failing, unknown"),
        ({"checked_at": "2025-01-02T10:00:00"}, "checked_at must carry a time zone"),
        ({"checked_at": "2999-01-01T00:00:00Z"}, "checked_at is more than 5 minutes"),
        ({"checked_at": "0001-01-01T00:00:00+05:00"}, "checked_at is before 2000"),
        ({"summary": {"pods_ready": -1, "pods_total": 1}}, "summary.pods_ready must be"),
        ({"summary": {"pods_ready": 3, "pods_total": 1}}, "summary.pods_ready exceeds"),
        ({"summary": {"pods_ready": 0, "pods_total": 0, "conditions": ["c"] * 65}}, "summary."),
        (
            {
                "summary": {
                    "pods_ready": 0,
                    "pods_total": 1,
                    "resources": [{"kind": "Pod", "name": "p", "namespace": "n", "ready": False}]
                    * 101,
                }
            },
            "summary.resources holds more than 100 items",
        ),
        (
            {
                "summary": {
                    "pods_ready": 0,
                    "pods_total": 1,
                    "resources": [
                        {"kind": "Pod", "name": "p", "namespace": "n", "ready": False},
                        {
                            "kind": "Pod",
                            "name": "p",
                            "namespace": "n",
                            "ready": False,
                            "message": "m" * 1025,
                        },
                    ],
                }
            },
            "summary.resources[1].message is longer than 1024",
        ),
    ],
)
async def test_a_bad_entry_is_named_and_nothing_is_written(
    world: World, change: dict[str, Any], reason: str
) -> None:
    await report(world, "a", entry(world.old_id, "healthy"))
    before = await rows(world.api)
    bad = entry(world.object_id) | change
    response = await send(
        world.api, world.a_id, auth(world.a_pak), entry(world.old_id, "failing"), bad
    )
    [problem] = problems(response)
    assert (problem["index"], problem["id"]) == (1, world.object_id)
    assert problem["reason"].startswith(reason), problem
    assert await rows(world.api) == before


async def test_every_problem_of_a_batch_is_named(world: World) -> None:
    response = await send(
        world.api,
        world.a_id,
        auth(world.a_pak),
        entry(world.object_id),
        entry(world.old_id, "fine"),
        entry(world.object_id, "failing"),
    )
    assert problems(response) == [
        {
            "index": 1,
            "id": world.old_id,
            "reason": "status must be one of healthy, degraded, failing, unknown",
        },
        {"index": 2, "id": world.object_id, "reason": "duplicate of entry 0"},
    ]
    assert await rows(world.api) == []


async def test_too_many_entries_are_refused_as_a_batch(world: World) -> None:
    with limits(world.api, health_report_max_entries=1):
        response = await send(
            world.api,
            world.a_id,
            auth(world.a_pak),
            entry(world.object_id),
            entry(world.old_id),
        )
    assert problems(response) == [
        {
            "index": None,
            "id": None,
            "reason": "the report holds 2 entries; at most 1 are accepted",
        }
    ]
    assert await rows(world.api) == []


async def test_objects_that_are_not_the_agents_are_named(world: World) -> None:
    _, elsewhere_pak = await world.api.create_generator("elsewhere")
    other_stack = await world.api.client.post(
        "/api/v1/stacks", json={"name": "db"}, headers=auth(elsewhere_pak)
    )
    assert other_stack.status_code == 201, other_stack.text
    foreign = await add_object(world.api, other_stack.json()["id"], elsewhere_pak, "db")
    missing = str(uuid.uuid4())
    response = await send(
        world.api,
        world.a_id,
        auth(world.a_pak),
        entry(world.object_id),
        entry(missing),
        entry(foreign, "failing"),
    )
    assert problems(response) == [
        {"index": 1, "id": missing, "reason": "unknown deployment object"},
        {"index": 2, "id": foreign, "reason": "not served to this agent"},
    ]
    # The stranger is served nothing at all.
    stranger = await send(
        world.api, world.stranger_id, auth(world.stranger_pak), entry(world.object_id)
    )
    assert problems(stranger) == [
        {"index": 0, "id": world.object_id, "reason": "not served to this agent"}
    ]
    assert await rows(world.api) == []


async def test_objects_of_a_deleted_stack_are_named(world: World) -> None:
    deleted = await world.api.client.delete(
        f"/api/v1/stacks/{world.stack_id}", headers=world.api.admin
    )
    assert deleted.status_code == 204, deleted.text
    response = await send(world.api, world.a_id, auth(world.a_pak), entry(world.object_id))
    assert problems(response) == [
        {"index": 0, "id": world.object_id, "reason": "deployment object deleted"}
    ]
    assert await rows(world.api) == []


def padded_entry(object_id: str) -> dict[str, Any]:
    """An entry whose summary is as large as the bounds allow."""
    condition = "c" * rules.MAX_CONDITION_CHARS
    summary = {"pods_ready": 0, "pods_total": 1, "conditions": [condition] * 31}
    return entry(object_id, "failing", summary=summary)


async def test_the_largest_report_fits_the_body_limit_and_a_larger_one_is_413(
    world: World,
) -> None:
    largest = [padded_entry(str(uuid.uuid4())) for _ in range(rules.MAX_REPORT_ENTRIES)]
    summary = msgspec.convert(largest[0]["summary"], wire.HealthSummary)
    assert len(rules.encode_summary(summary)) > rules.MAX_SUMMARY_BYTES - rules.MAX_CONDITION_CHARS
    response = await send(world.api, world.a_id, auth(world.a_pak), *largest)
    # Read and checked to the end: each unknown object is named.
    assert len(problems(response)) == rules.MAX_REPORT_ENTRIES
    body = b'{"deployment_objects": [], "padding": "' + b"x" * rules.REPORT_BODY_BYTES + b'"}'
    too_large = await world.api.client.patch(
        f"/api/v1/agents/{world.a_id}/health-status",
        content=body,
        headers={**auth(world.a_pak), "content-type": "application/json"},
    )
    assert_error(too_large, 413)
    assert await rows(world.api) == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b'{"deployment_objects": [{"id": "x", "status": "healthy"}]}', 422),
        (b'{"deployment_objects": "all"}', 422),
        (b"{", 400),
    ],
)
async def test_a_malformed_body_is_a_json_error(world: World, body: bytes, status: int) -> None:
    response = await world.api.client.patch(
        f"/api/v1/agents/{world.a_id}/health-status",
        content=body,
        headers={**auth(world.a_pak), "content-type": "application/json"},
    )
    assert_error(response, status)
    assert await rows(world.api) == []


# --- GET /deployment-objects/{id}/health --------------------------------------------------------


async def object_health(w: World, object_id: str, who: str = "admin") -> httpx.Response:
    return await w.api.client.get(
        f"/api/v1/deployment-objects/{object_id}/health", headers=w.paks()[who]
    )


async def test_object_health_lists_each_agents_row_latest_check_first(world: World) -> None:
    earlier = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    await report(world, "a", entry(world.object_id, "healthy", checked_at=earlier))
    await report(world, "b", entry(world.object_id, "degraded"))
    response = await object_health(world, world.object_id)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["deployment_object_id"] == world.object_id
    assert body["overall_status"] == "degraded"
    records = body["health_records"]
    assert [(r["agent_id"], r["status"]) for r in records] == [
        (world.b_id, "degraded"),
        (world.a_id, "healthy"),
    ]
    assert set(records[0]) == {
        "id",
        "agent_id",
        "deployment_object_id",
        "status",
        "summary",
        "checked_at",
        "created_at",
        "updated_at",
        "stale",
        "reported_status",
    }
    assert (records[0]["stale"], records[0]["reported_status"]) == (False, None)


async def test_an_object_without_rows_is_unknown(world: World) -> None:
    response = await object_health(world, world.old_id)
    assert response.json() == {
        "deployment_object_id": world.old_id,
        "health_records": [],
        "overall_status": "unknown",
    }


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        ("admin", 200, None),
        ("owner", 200, None),
        ("other generator", 404, "deployment_object_not_found"),
        ("agent", 403, "health_read_denied"),
        ("other agent", 403, "health_read_denied"),
    ],
)
async def test_object_health_is_read_by_admins_and_the_owner(
    world: World, who: str, status: int, code: str | None
) -> None:
    await report(world, "a", entry(world.object_id, "failing"))
    response = await object_health(world, world.object_id, who)
    if code is None:
        assert response.status_code == status, response.text
        assert response.json()["overall_status"] == "failing"
    else:
        assert_error(response, status, code)


async def test_object_health_of_an_unknown_or_deleted_object_is_404(world: World) -> None:
    await report(world, "a", entry(world.object_id, "failing"))
    unknown = await object_health(world, str(uuid.uuid4()))
    assert_error(unknown, 404, "deployment_object_not_found")
    deleted = await world.api.client.delete(
        f"/api/v1/stacks/{world.stack_id}", headers=world.api.admin
    )
    assert deleted.status_code == 204, deleted.text
    for who in ("admin", "owner"):
        gone = await object_health(world, world.object_id, who)
        assert_error(gone, 404, "deployment_object_not_found")


async def test_a_deleted_agents_rows_are_not_shown(world: World) -> None:
    await report(world, "a", entry(world.object_id, "failing"))
    await report(world, "b", entry(world.object_id, "healthy"))
    deleted = await world.api.client.delete(f"/api/v1/agents/{world.a_id}", headers=world.api.admin)
    assert deleted.status_code == 204, deleted.text
    body = (await object_health(world, world.object_id)).json()
    assert [r["agent_id"] for r in body["health_records"]] == [world.b_id]
    assert body["overall_status"] == "healthy"
    stack = (await stack_health(world)).json()
    assert stack["deployment_objects"][0]["failing_agents"] == 0
    assert stack["overall_status"] == "healthy"


# --- staleness ----------------------------------------------------------------------------------


async def received_ago(api: Api, agent_id: str, seconds: float) -> None:
    """As if the agent's last report had reached the broker ``seconds`` ago."""
    async with api.broker.database.transaction() as tx:
        await tx.execute(
            _h.update()
            .where(_h.c.agent_id == uuid.UUID(agent_id))
            .values(updated_at=datetime.now(UTC) - timedelta(seconds=seconds))
        )


@contextmanager
def stale_after(api: Api, seconds: float) -> Iterator[None]:
    live = api.broker.app.state.ctx.settings
    before = live.current
    broker = msgspec.structs.replace(before.broker, health_stale_after_seconds=seconds)
    live.current = msgspec.structs.replace(before, broker=broker)
    try:
        yield
    finally:
        live.current = before


async def test_a_row_not_refreshed_in_time_reads_unknown_and_stale(world: World) -> None:
    # A checked_at within the allowed skew ahead does not keep a row fresh: receipt time counts.
    ahead = (datetime.now(UTC) + timedelta(minutes=4)).isoformat()
    await report(world, "a", entry(world.object_id, "failing", checked_at=ahead))
    await report(world, "b", entry(world.object_id, "healthy"))
    await received_ago(world.api, world.a_id, 181)
    body = (await object_health(world, world.object_id)).json()
    by_agent = {r["agent_id"]: r for r in body["health_records"]}
    stale = by_agent[world.a_id]
    assert (stale["status"], stale["stale"], stale["reported_status"]) == (
        "unknown",
        True,
        "failing",
    )
    assert (by_agent[world.b_id]["status"], by_agent[world.b_id]["stale"]) == ("healthy", False)
    assert body["overall_status"] == "healthy"
    [counted] = (await stack_health(world)).json()["deployment_objects"]
    assert (counted["failing_agents"], counted["healthy_agents"], counted["status"]) == (
        0,
        1,
        "healthy",
    )
    # The row itself keeps what the agent said.
    assert {r["status"] for r in await rows(world.api)} == {"failing", "healthy"}


async def test_the_staleness_bound_is_a_setting_and_zero_turns_it_off(world: World) -> None:
    await report(world, "a", entry(world.object_id, "failing"))
    await received_ago(world.api, world.a_id, 30)
    assert (await object_health(world, world.object_id)).json()["overall_status"] == "failing"
    with stale_after(world.api, 10):
        assert (await object_health(world, world.object_id)).json()["overall_status"] == "unknown"
    await received_ago(world.api, world.a_id, 10 * 365 * 24 * 3600)
    with stale_after(world.api, 0):
        body = (await object_health(world, world.object_id)).json()
        assert body["overall_status"] == "failing"
        assert body["health_records"][0]["stale"] is False
        assert (await stack_health(world)).json()["overall_status"] == "failing"


# --- GET /stacks/{id}/health --------------------------------------------------------------------


async def stack_health(w: World, who: str = "admin", stack_id: str | None = None) -> httpx.Response:
    return await w.api.client.get(
        f"/api/v1/stacks/{stack_id or w.stack_id}/health", headers=w.paks()[who]
    )


async def test_stack_health_counts_agents_per_object_newest_first(world: World) -> None:
    await report(world, "a", entry(world.old_id, "healthy"), entry(world.object_id, "failing"))
    await report(world, "b", entry(world.old_id, "unknown"), entry(world.object_id, "degraded"))
    response = await stack_health(world)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "stack_id": world.stack_id,
        "overall_status": "failing",
        "deployment_objects": [
            {
                "id": world.object_id,
                "status": "failing",
                "healthy_agents": 0,
                "degraded_agents": 1,
                "failing_agents": 1,
            },
            {
                "id": world.old_id,
                "status": "healthy",
                "healthy_agents": 1,
                "degraded_agents": 0,
                "failing_agents": 0,
            },
        ],
    }


async def test_a_stack_without_rows_is_unknown(world: World) -> None:
    await report(world, "a", entry(world.object_id, "unknown"))
    body = (await stack_health(world)).json()
    assert body["overall_status"] == "unknown"
    assert [(o["id"], o["status"]) for o in body["deployment_objects"]] == [
        (world.object_id, "unknown")
    ]


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        ("admin", 200, None),
        ("owner", 200, None),
        ("other generator", 404, "stack_not_found"),
        ("agent", 403, "health_read_denied"),
        ("other agent", 403, "health_read_denied"),
    ],
)
async def test_stack_health_is_read_by_admins_and_the_owner(
    world: World, who: str, status: int, code: str | None
) -> None:
    await report(world, "a", entry(world.object_id, "healthy"))
    response = await stack_health(world, who)
    if code is None:
        assert response.status_code == status, response.text
        assert response.json()["overall_status"] == "healthy"
    else:
        assert_error(response, status, code)


async def test_stack_health_of_an_unknown_or_deleted_stack_is_404(world: World) -> None:
    await report(world, "a", entry(world.object_id, "healthy"))
    assert_error(await stack_health(world, stack_id=str(uuid.uuid4())), 404, "stack_not_found")
    deleted = await world.api.client.delete(
        f"/api/v1/stacks/{world.stack_id}", headers=world.api.admin
    )
    assert deleted.status_code == 204, deleted.text
    for who in ("admin", "owner"):
        assert_error(await stack_health(world, who), 404, "stack_not_found")
