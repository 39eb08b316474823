"""Diagnostics over HTTP, on both databases: who may call what (a request that is not the
caller's does not exist for it), bad input changing nothing, the request's state machine, a
result left out until there is one, and claims that succeed exactly once under concurrency."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from brokkr.broker import db
from brokkr.broker.db import tables
from brokkr.broker.domain import access, errors
from brokkr.broker.services import diagnostics
from brokkr.broker.services.context import Context
from tests.broker.api.diagnosing import RESULT, ROLES, World, make_world, stamp
from tests.broker.conftest import Api, assert_error, limits

_q, _res = tables.diagnostic_requests, tables.diagnostic_results


@pytest.fixture
async def world(api: Api) -> World:
    return await make_world(api)


async def assert_nothing_stored(world: World) -> None:
    assert await world.api.count(_q) == 0
    assert await world.api.count(_res) == 0
    assert await world.api.audit(action="diagnostic.requested") == []


# --- create -----------------------------------------------------------------------------------


async def test_an_admin_requests_diagnostics_for_a_served_agent(world: World) -> None:
    response = await world.create(requested_by="oncall@example.com")
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "pending"
    assert created["agent_id"] == world.agent_id
    assert created["deployment_object_id"] == world.object_id
    assert created["requested_by"] == "oncall@example.com"
    assert created["claimed_at"] is None and created["completed_at"] is None
    assert created["failure_reason"] is None
    assert stamp(created["expires_at"]) - stamp(created["created_at"]) == timedelta(minutes=60)
    shorter = await world.request(retention_minutes=5)
    assert stamp(shorter["expires_at"]) - stamp(shorter["created_at"]) == timedelta(minutes=5)
    assert await world.api.count(_q, _q.c.status == "pending") == 2
    trail = await world.api.audit(action="diagnostic.requested")
    entry = next(e for e in trail if e["resource_id"] == created["id"])
    assert entry["resource_type"] == "diagnostic"
    assert entry["details"]["agent_id"] == world.agent_id
    assert entry["details"]["deployment_object_id"] == world.object_id


@pytest.mark.parametrize("role", [r for r in ROLES if r != "admin"])
async def test_only_admins_request_diagnostics(world: World, role: str) -> None:
    assert_error(await world.create(role), 403, "admin_required")
    assert (await world.create("none")).status_code == 401
    assert await world.api.count(_q) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"retention_minutes": 0}, "retention_minutes"),
        ({"retention_minutes": 1441}, "retention_minutes"),
        ({"retention_minutes": -5}, "retention_minutes"),
        ({"requested_by": "x" * 256}, "requested_by"),
        ({"requested_by": "on\x00call"}, "requested_by"),
    ],
)
async def test_bad_request_values_are_400_and_change_nothing(
    world: World, body: dict[str, Any], field: str
) -> None:
    found = assert_error(await world.create(**body), 400, "invalid_diagnostic_request")
    assert found["details"] == {"field": field}
    await assert_nothing_stored(world)


async def test_the_bounds_themselves_are_accepted(world: World) -> None:
    for body in (
        {"retention_minutes": 1},
        {"retention_minutes": 1440},
        {"requested_by": "x" * 255},
    ):
        assert (await world.create(**body)).status_code == 201


async def test_agents_that_cannot_collect_are_422_and_change_nothing(world: World) -> None:
    unknown = await world.create(agent_id=str(uuid.uuid4()))
    assert assert_error(unknown, 422, "agent_not_found")["details"] == {
        "fields": {"agent_id": "unknown agent"}
    }
    unserved = await world.create(agent_id=world.unserved_id)
    assert_error(unserved, 422, "deployment_object_not_served")
    deleted = await world.send("admin", "DELETE", f"/agents/{world.other_id}")
    assert deleted.status_code == 204
    assert_error(await world.create(agent_id=world.other_id), 422, "agent_not_found")
    for body in ({"agent_id": "not-a-uuid"}, {"agent_id": None}, {"retention_minutes": "soon"}):
        response = await world.send(
            "admin", "POST", f"/deployment-objects/{world.object_id}/diagnostics", json=body
        )
        assert_error(response, 422, "validation_failed")
    await assert_nothing_stored(world)


async def test_a_missing_or_deleted_object_is_404(world: World) -> None:
    missing = await world.send(
        "admin",
        "POST",
        f"/deployment-objects/{uuid.uuid4()}/diagnostics",
        json={"agent_id": world.agent_id},
    )
    assert_error(missing, 404, "deployment_object_not_found")
    assert (await world.send("admin", "DELETE", f"/stacks/{world.stack_id}")).status_code == 204
    assert_error(await world.create(), 404, "deployment_object_not_found")
    bad_path = await world.send(
        "admin", "POST", "/deployment-objects/nope/diagnostics", json={"agent_id": world.agent_id}
    )
    assert_error(bad_path, 400)
    await assert_nothing_stored(world)


# --- list for an object -----------------------------------------------------------------------


async def test_an_objects_requests_are_listed_newest_first_in_pages(world: World) -> None:
    ids = [(await world.request())["id"] for _ in range(3)]
    path = f"/deployment-objects/{world.object_id}/diagnostics"
    listed = await world.send("admin", "GET", path)
    assert listed.status_code == 200
    assert [r["id"] for r in listed.json()] == ids[::-1]
    first = await world.send("admin", "GET", path, params={"limit": 2})
    assert [r["id"] for r in first.json()] == ids[:0:-1]
    assert first.headers["x-next-offset"] == "2"
    rest = await world.send("admin", "GET", path, params={"limit": 2, "offset": 2})
    assert [r["id"] for r in rest.json()] == ids[:1]
    assert "x-next-offset" not in rest.headers
    with limits(world.api, list_page_bytes=1024):
        budgeted = await world.send("admin", "GET", path)
    assert 0 < len(budgeted.json()) < 3
    assert budgeted.headers["x-next-offset"] == str(len(budgeted.json()))
    # The requests about a deleted object stay readable.
    assert (await world.send("admin", "DELETE", f"/stacks/{world.stack_id}")).status_code == 204
    assert len((await world.send("admin", "GET", path)).json()) == 3
    missing = await world.send("admin", "GET", f"/deployment-objects/{uuid.uuid4()}/diagnostics")
    assert_error(missing, 404, "deployment_object_not_found")
    assert_error(await world.send("admin", "GET", path, params={"limit": 0}), 400)


@pytest.mark.parametrize("role", [r for r in ROLES if r != "admin"])
async def test_only_admins_list_an_objects_requests(world: World, role: str) -> None:
    await world.request()
    response = await world.send(role, "GET", f"/deployment-objects/{world.object_id}/diagnostics")
    assert_error(response, 403, "admin_required")


# --- read one ---------------------------------------------------------------------------------


async def test_the_result_is_left_out_until_there_is_one(world: World) -> None:
    created = await world.request()
    before = await world.get(created["id"])
    assert before.status_code == 200
    assert before.json() == {"request": created}
    assert "result" not in before.json()
    await world.claim(created["id"])
    submitted = await world.submit(created["id"])
    assert submitted.status_code == 201, submitted.text
    after = (await world.get(created["id"], "agent")).json()
    assert after["result"] == submitted.json()
    assert after["request"]["status"] == "completed"


@pytest.mark.parametrize(("role", "visible"), [(r, r in ("admin", "agent")) for r in ROLES])
async def test_a_request_exists_only_for_admins_and_its_agent(
    world: World, role: str, visible: bool
) -> None:
    created = await world.request()
    response = await world.get(created["id"], role)
    missing = await world.get(str(uuid.uuid4()), role)
    assert_error(missing, 404, "diagnostic_not_found")
    if visible:
        assert response.status_code == 200
        assert response.json()["request"]["id"] == created["id"]
    else:
        body = assert_error(response, 404, "diagnostic_not_found")
        assert body["message"] == missing.json()["message"]
    assert (await world.get(created["id"], "none")).status_code == 401


# --- pending ----------------------------------------------------------------------------------


async def test_an_agent_lists_what_it_may_claim_oldest_first(world: World) -> None:
    first, second, taken, late = [await world.request() for _ in range(4)]
    await world.claim(taken["id"])
    await world.set(late["id"], expires_at=stamp(late["created_at"]) - timedelta(seconds=1))
    assert (await world.create(agent_id=world.other_id)).status_code == 201
    for role in ("agent", "admin"):
        response = await world.send(role, "GET", f"/agents/{world.agent_id}/diagnostics/pending")
        assert response.status_code == 200
        assert [r["id"] for r in response.json()] == [first["id"], second["id"]]


@pytest.mark.parametrize("role", ["other", "owner", "generator"])
async def test_another_agents_pending_list_is_forbidden(world: World, role: str) -> None:
    await world.request()
    response = await world.send(role, "GET", f"/agents/{world.agent_id}/diagnostics/pending")
    assert_error(response, 403, "agent_pak_mismatch")


async def test_the_pending_list_of_an_unknown_agent_is_404(world: World) -> None:
    response = await world.send("admin", "GET", f"/agents/{uuid.uuid4()}/diagnostics/pending")
    assert_error(response, 404, "agent_not_found")


# --- claim ------------------------------------------------------------------------------------


async def test_the_agent_claims_once(world: World) -> None:
    created = await world.request()
    response = await world.claim(created["id"])
    assert response.status_code == 200, response.text
    claimed = response.json()
    assert claimed["status"] == "claimed" and claimed["claimed_at"] is not None
    again = assert_error(await world.claim(created["id"]), 409, "diagnostic_already_claimed")
    assert again["message"] == "request is already claimed"
    assert (await world.row(created["id"]))["claimed_at"] == stamp(claimed["claimed_at"])
    trail = await world.api.audit(action="diagnostic.claimed")
    assert [e["resource_id"] for e in trail] == [created["id"]]
    assert trail[0]["actor_type"] == "agent"


async def test_an_admin_may_claim_for_the_agent(world: World) -> None:
    created = await world.request()
    assert (await world.claim(created["id"], "admin")).json()["status"] == "claimed"


@pytest.mark.parametrize("role", ["other", "owner", "generator"])
async def test_a_request_that_is_not_yours_cannot_be_claimed(world: World, role: str) -> None:
    created = await world.request()
    assert_error(await world.claim(created["id"], role), 404, "diagnostic_not_found")
    assert_error(await world.claim(str(uuid.uuid4()), role), 404, "diagnostic_not_found")
    assert (await world.row(created["id"]))["status"] == "pending"


async def test_an_expired_request_cannot_be_claimed(world: World) -> None:
    created = await world.request(retention_minutes=1)
    await world.set(created["id"], expires_at=stamp(created["created_at"]))
    refused = assert_error(await world.claim(created["id"]), 409, "diagnostic_already_claimed")
    assert refused["message"] == "request is already expired"
    assert refused["details"] == {"status": "expired"}
    assert (await world.row(created["id"]))["claimed_at"] is None


async def test_a_finished_request_cannot_be_claimed(world: World) -> None:
    claimed = await world.claimed()
    await world.submit(claimed["id"])
    refused = assert_error(await world.claim(claimed["id"]), 409, "diagnostic_already_claimed")
    assert refused["message"] == "request is already completed"


# --- result -----------------------------------------------------------------------------------


async def test_the_agent_answers_a_claimed_request_once(world: World) -> None:
    claimed = await world.claimed()
    response = await world.submit(claimed["id"])
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["request_id"] == claimed["id"]
    assert result["pod_statuses"].startswith('[{"name": "app-1"')
    assert result["log_tails"] == '{"app-1/app": "ready\\n"}'
    assert result["collected_at"] == "2025-01-02T10:00:00Z"
    row = await world.row(claimed["id"])
    assert row["status"] == "completed" and row["completed_at"] is not None
    again = assert_error(await world.submit(claimed["id"]), 409, "diagnostic_not_claimed")
    assert again["message"] == "request status is completed, expected 'claimed'"
    assert await world.api.count(_res) == 1
    trail = await world.api.audit(action="diagnostic.completed")
    assert [e["resource_id"] for e in trail] == [claimed["id"]]


async def test_log_tails_may_be_null(world: World) -> None:
    claimed = await world.claimed()
    response = await world.submit(claimed["id"], log_tails=None)
    assert response.status_code == 201, response.text
    assert response.json()["log_tails"] is None


async def test_a_result_before_the_claim_is_409(world: World) -> None:
    created = await world.request()
    refused = assert_error(await world.submit(created["id"]), 409, "diagnostic_not_claimed")
    assert refused["message"] == "request status is pending, expected 'claimed'"
    assert (await world.row(created["id"]))["status"] == "pending"
    assert await world.api.count(_res) == 0


async def test_only_the_agent_itself_submits(world: World) -> None:
    claimed = await world.claimed()
    assert_error(await world.submit(claimed["id"], "admin"), 403, "diagnostic_not_owned")
    for role in ("other", "owner", "generator"):
        assert_error(await world.submit(claimed["id"], role), 404, "diagnostic_not_found")
    assert_error(await world.submit(str(uuid.uuid4())), 404, "diagnostic_not_found")
    assert (await world.row(claimed["id"]))["status"] == "claimed"
    assert await world.api.count(_res) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"pod_statuses": ""}, "pod_statuses"),
        ({"pod_statuses": "   "}, "pod_statuses"),
        ({"events": ""}, "events"),
        ({"pod_statuses": "pods: none"}, "pod_statuses"),
        ({"events": "[1, 2"}, "events"),
        ({"log_tails": "{"}, "log_tails"),
        ({"log_tails": ""}, "log_tails"),
        ({"pod_statuses": "[" * 5000 + "]" * 5000}, "pod_statuses"),
        ({"collected_at": "2025-01-02T10:00:00"}, "collected_at"),
        ({"collected_at": "2999-01-01T00:00:00Z"}, "collected_at"),
    ],
)
async def test_bad_result_values_are_400_and_change_nothing(
    world: World, body: dict[str, Any], field: str
) -> None:
    claimed = await world.claimed()
    found = assert_error(
        await world.submit(claimed["id"], **body), 400, "invalid_diagnostic_result"
    )
    assert found["details"] == {"field": field}
    assert (await world.row(claimed["id"]))["status"] == "claimed"
    assert await world.api.count(_res) == 0


async def test_malformed_result_bodies_change_nothing(world: World) -> None:
    claimed = await world.claimed()
    path = f"/diagnostics/{claimed['id']}/result"
    json_type = {"content-type": "application/json"}
    cases = [
        (await world.send("agent", "POST", path, json={"events": "[]"}), 422, "validation_failed"),
        (
            await world.send("agent", "POST", path, json={**RESULT, "pod_statuses": 3}),
            422,
            "validation_failed",
        ),
        (await world.send("agent", "POST", path, content=b"{", headers=json_type), 400, None),
        (
            await world.send(
                "agent", "POST", path, content=b"[]", headers={"content-type": "text/plain"}
            ),
            415,
            "unsupported_media_type",
        ),
        (
            await world.send(
                "agent", "POST", path, content=b"[" * 200 + b"]" * 200, headers=json_type
            ),
            422,
            "nesting_too_deep",
        ),
    ]
    for response, status, code in cases:
        assert_error(response, status, code)
    assert (await world.row(claimed["id"]))["status"] == "claimed"
    assert await world.api.count(_res) == 0


async def test_a_result_over_the_size_limit_is_413(world: World) -> None:
    claimed = await world.claimed()
    logs = '{"app-1/app": "' + "x" * 2000 + '"}'
    with limits(world.api, diagnostic_result_max_bytes=2048):
        over = await world.submit(claimed["id"], log_tails=logs)
        found = assert_error(over, 413, "diagnostic_result_too_large")
        assert found["details"] == {"limit_bytes": 2048}
        # A body that could never fit is refused by its length, or while it arrives.
        huge = await world.submit(claimed["id"], log_tails='"' + "y" * 100_000 + '"')
        assert_error(huge, 413, "diagnostic_result_too_large")

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"pod_statuses": "[]", "events": "[]", "log_tails": "'
            for _ in range(100):
                yield b"z" * 1024

        streamed = await world.send(
            "agent",
            "POST",
            f"/diagnostics/{claimed['id']}/result",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
        assert "content-length" not in streamed.request.headers
        assert_error(streamed, 413, "diagnostic_result_too_large")
        assert await world.api.count(_res) == 0
        fits = await world.submit(claimed["id"], log_tails='{"app-1/app": "ok"}')
    assert fits.status_code == 201, fits.text


async def test_a_result_larger_than_the_default_body_limit_is_accepted(world: World) -> None:
    """The result's own limit (4 MiB by default) applies, not the 2 MiB of other bodies."""
    claimed = await world.claimed()
    logs = '{"app-1/app": "' + "l" * (3 * 1024 * 1024) + '"}'
    response = await world.submit(claimed["id"], log_tails=logs)
    assert response.status_code == 201, response.text[:200]
    assert len(response.json()["log_tails"]) == len(logs)


# --- concurrency ------------------------------------------------------------------------------


async def test_concurrent_claims_succeed_exactly_once(world: World) -> None:
    for _ in range(30):
        created = await world.request()
        responses = await asyncio.gather(
            *(world.claim(created["id"], role) for role in ("agent", "agent", "admin", "agent"))
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 409, 409, 409], [r.text for r in responses]
        for loser in (r for r in responses if r.status_code == 409):
            assert loser.json()["message"] == "request is already claimed"
    assert await world.api.count(_q, _q.c.status == "claimed") == 30
    assert len(await world.api.audit(action="diagnostic.claimed", limit="1000")) == 30


async def test_two_brokers_claiming_one_request_claim_it_once(world: World) -> None:
    """Two engines on one database (two broker processes), several claims each."""
    api = world.api
    ctx: Context = api.broker.app.state.ctx
    settings = api.broker.settings
    second = db.create(settings.database_url, pool_size=4, timeouts=settings.database.timeouts())
    other = dataclasses.replace(ctx, database=second)
    caller = access.Caller(
        identity=access.Identity(role=access.Role.AGENT, id=uuid.UUID(world.agent_id), key_id=None)
    )

    async def claim(on: Context, request_id: str) -> str:
        try:
            await diagnostics.claim(on, caller=caller, request_id=uuid.UUID(request_id))
        except errors.DiagnosticAlreadyClaimed:
            return "lost"
        return "won"

    try:
        for _ in range(20):
            created = await world.request()
            outcomes = await asyncio.gather(
                *(claim(on, created["id"]) for on in (ctx, other, ctx, other))
            )
            assert sorted(outcomes) == ["lost", "lost", "lost", "won"]
    finally:
        await second.dispose()
    assert await api.count(_q, _q.c.status == "claimed") == 20
