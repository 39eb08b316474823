"""Audit trail query: GET /api/v1/admin/audit-logs.

Covers admin-only access, the response and record shapes of the reference, newest-first order,
every filter (actor_type, actor_id, exact and `prefix.*` action with `%`/`_` taken literally,
resource_type, resource_id, `from` inclusive / `to` exclusive with naive times as UTC),
pagination (limit/offset/total, default 100, capped at 1000), 400 `invalid_parameter` for bad
query values, and the client IP and user agent recorded for an action. Bounded records: client
text (user agent, path, free text of a change) clipped to a few hundred bytes and stored
escaped; failed authentications and denied writes rate-limited per source address, per key id
and in all, with what was not written counted in /metrics. Denied writes (403, and writes to a
stack hidden as 404) recorded as `access.denied` with the real caller; denied reads are not.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from brokkr.broker.api.observability import Observability
from brokkr.broker.db import tables
from brokkr.broker.domain import audit, paks
from tests.broker.conftest import Api, assert_error, auth, limits

PATH = "/api/v1/admin/audit-logs"
LOG_FIELDS = {
    "id",
    "timestamp",
    "actor_type",
    "actor_id",
    "action",
    "resource_type",
    "resource_id",
    "details",
    "ip_address",
    "user_agent",
    "created_at",
}


async def query(api: Api, **params: str | int) -> dict[str, Any]:
    response = await api.client.get(PATH, params=params, headers=api.admin)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def actions(body: dict[str, Any]) -> list[str]:
    return [log["action"] for log in body["logs"]]


async def insert_records(api: Api, count: int, *, start: datetime) -> None:
    """Bulk-insert synthetic records one second apart, for limits beyond what the API makes."""
    rows = [
        {
            "id": uuid.uuid4(),
            "timestamp": start + timedelta(seconds=index),
            "created_at": start + timedelta(seconds=index),
            "actor_type": "system",
            "actor_id": None,
            "key_id": None,
            "action": "test.synthetic",
            "resource_type": "test",
            "resource_id": None,
            "outcome": "success",
            "details": {"index": index},
            "ip_address": None,
            "user_agent": None,
        }
        for index in range(count)
    ]
    async with api.broker.database.transaction() as tx:
        await tx.execute(tables.audit_logs.insert(), rows)


@pytest.mark.parametrize("who", ["agent", "generator"])
async def test_only_admin_reads_the_audit_trail(api: Api, who: str) -> None:
    _, agent_pak = await api.create_agent()
    _, generator_pak = await api.create_generator()
    pak = agent_pak if who == "agent" else generator_pak
    assert_error(await api.client.get(PATH, headers=auth(pak)), 403, "admin_required")


async def test_unauthenticated_read_is_401(api: Api) -> None:
    assert_error(await api.client.get(PATH), 401, "unauthorized")


async def test_response_and_record_shape(api: Api) -> None:
    agent, _ = await api.create_agent("edge", "eu")
    body = await query(api)
    assert set(body) == {"logs", "total", "count", "limit", "offset"}
    assert (body["total"], body["count"], body["limit"], body["offset"]) == (1, 1, 100, 0)
    [log] = body["logs"]
    assert set(log) >= LOG_FIELDS and set(log) - LOG_FIELDS <= {"key_id"}
    assert str(uuid.UUID(log["id"])) == log["id"]
    assert log["timestamp"].endswith("Z") and log["created_at"].endswith("Z")
    assert log["actor_type"] == "admin" and log["actor_id"] is None
    assert log["action"] == "agent.created"
    assert log["resource_type"] == "agent" and log["resource_id"] == agent["id"]
    assert log["details"]["name"] == "edge" and log["details"]["cluster_name"] == "eu"


async def test_empty_trail_is_an_empty_page(api: Api) -> None:
    body = await query(api)
    assert body == {"logs": [], "total": 0, "count": 0, "limit": 100, "offset": 0}


async def test_newest_first(api: Api) -> None:
    for name in ("a1", "a2", "a3"):
        await api.create_agent(name)
    logs = (await query(api))["logs"]
    assert [log["details"]["name"] for log in logs] == ["a3", "a2", "a1"]
    stamps = [datetime.fromisoformat(log["timestamp"]) for log in logs]
    assert stamps == sorted(stamps, reverse=True)


async def _scenario(api: Api) -> dict[str, str]:
    """admin creates agent and generator; the agent rotates its own PAK; the generator renames
    itself; admin labels the agent; one failed authentication."""
    agent, agent_pak = await api.create_agent("edge")
    generator, generator_pak = await api.create_generator("ci")
    rotated = await api.client.post(
        f"/api/v1/agents/{agent['id']}/rotate-pak", headers=auth(agent_pak)
    )
    assert rotated.status_code == 200
    renamed = await api.client.put(
        f"/api/v1/generators/{generator['id']}", json={"name": "ci-2"}, headers=auth(generator_pak)
    )
    assert renamed.status_code == 200
    labelled = await api.client.post(
        f"/api/v1/agents/{agent['id']}/labels", json={"label": "env"}, headers=api.admin
    )
    assert labelled.status_code == 201
    denied = await api.client.get("/api/v1/agents", headers=auth("nope"))
    assert denied.status_code == 401
    return {"agent": agent["id"], "generator": generator["id"]}


async def test_filters_by_actor(api: Api) -> None:
    ids = await _scenario(api)
    assert actions(await query(api, actor_type="agent")) == ["pak.rotated"]
    assert actions(await query(api, actor_type="generator")) == ["generator.updated"]
    assert actions(await query(api, actor_type="system")) == ["auth.failed"]
    assert actions(await query(api, actor_type="admin")) == [
        "agent.label_added",
        "generator.created",
        "agent.created",
    ]
    by_generator = await query(api, actor_id=ids["generator"])
    assert actions(by_generator) == ["generator.updated"]
    assert by_generator["logs"][0]["actor_id"] == ids["generator"]
    assert actions(await query(api, actor_id=ids["agent"])) == ["pak.rotated"]
    assert (await query(api, actor_id=str(uuid.uuid4())))["total"] == 0


async def test_filters_by_resource(api: Api) -> None:
    ids = await _scenario(api)
    assert actions(await query(api, resource_type="generator")) == [
        "generator.updated",
        "generator.created",
    ]
    assert actions(await query(api, resource_id=ids["agent"])) == [
        "agent.label_added",
        "pak.rotated",
        "agent.created",
    ]
    assert actions(await query(api, resource_type="pak")) == ["auth.failed"]
    combined = await query(api, resource_id=ids["agent"], actor_type="admin", action="agent.*")
    assert actions(combined) == ["agent.label_added", "agent.created"]


async def test_action_matches_exactly_or_by_prefix(api: Api) -> None:
    await _scenario(api)
    assert actions(await query(api, action="agent.created")) == ["agent.created"]
    assert actions(await query(api, action="agent.*")) == ["agent.label_added", "agent.created"]
    assert actions(await query(api, action="agent.label_*")) == ["agent.label_added"]
    assert (await query(api, action="*"))["total"] == 6
    # Without the star there is no prefix match.
    assert (await query(api, action="agent."))["total"] == 0
    assert (await query(api, action="agent"))["total"] == 0


@pytest.mark.parametrize("pattern", ["agent_*", "%*", "agent%*", "agent.label%*", "_*", "p_k.*"])
async def test_like_wildcards_in_the_prefix_are_literal(api: Api, pattern: str) -> None:
    await _scenario(api)
    assert (await query(api, action=pattern))["total"] == 0


async def test_from_is_inclusive_and_to_exclusive(api: Api) -> None:
    for name in ("a1", "a2", "a3"):
        await api.create_agent(name)
    first, second, third = reversed((await query(api))["logs"])

    def names(body: dict[str, Any]) -> list[str]:
        return [log["details"]["name"] for log in body["logs"]]

    assert names(await query(api, **{"from": second["timestamp"]})) == ["a3", "a2"]
    assert names(await query(api, to=second["timestamp"])) == ["a1"]
    window = await query(api, **{"from": first["timestamp"], "to": third["timestamp"]})
    assert names(window) == ["a2", "a1"] and window["total"] == 2
    assert (await query(api, **{"from": third["timestamp"], "to": third["timestamp"]}))[
        "total"
    ] == 0


async def test_times_without_offset_are_utc_and_offsets_are_honoured(api: Api) -> None:
    for name in ("a1", "a2", "a3"):
        await api.create_agent(name)
    second = (await query(api))["logs"][1]
    moment = datetime.fromisoformat(second["timestamp"])
    naive = moment.astimezone(UTC).replace(tzinfo=None).isoformat()
    shifted = moment.astimezone(timezone(timedelta(hours=2))).isoformat()
    expected = await query(api, **{"from": second["timestamp"]})
    assert expected["total"] == 2
    for bound in (naive, shifted):
        assert await query(api, **{"from": bound}) == expected
    assert (await query(api, to=naive))["total"] == 1


async def test_pagination_with_limit_offset_and_total(api: Api) -> None:
    for index in range(5):
        await api.create_agent(f"a{index}")
    everything = (await query(api))["logs"]
    pages = []
    for offset in (0, 2, 4):
        page = await query(api, limit=2, offset=offset)
        assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == offset
        assert page["count"] == len(page["logs"])
        pages.extend(page["logs"])
    assert pages == everything
    beyond = await query(api, limit=2, offset=10)
    assert beyond["logs"] == [] and beyond["count"] == 0 and beyond["total"] == 5


async def test_limit_defaults_to_100_and_is_capped_at_1000(api: Api) -> None:
    # 1005 records are more than the API could create quickly; they are inserted directly.
    start = datetime(2030, 1, 1, tzinfo=UTC)
    await insert_records(api, 1005, start=start)
    default = await query(api)
    assert (default["count"], default["limit"], default["total"]) == (100, 100, 1005)
    assert default["logs"][0]["details"] == {"index": 1004}
    capped = await query(api, limit=5000)
    assert (capped["count"], capped["limit"], capped["total"]) == (1000, 1000, 1005)
    tail = await query(api, limit=1000, offset=1000)
    assert [log["details"]["index"] for log in tail["logs"]] == [4, 3, 2, 1, 0]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "-1"},
        {"limit": "x"},
        {"limit": "1.5"},
        {"offset": "-1"},
        {"offset": "x"},
        {"actor_id": "not-a-uuid"},
        {"resource_id": "123"},
        {"from": "yesterday"},
        {"to": "2024-13-45T00:00:00Z"},
        # Valid on their own but out of range once shifted to UTC, or for a 64-bit OFFSET.
        {"from": "0001-01-01T00:00:00+01:00"},
        {"to": "9999-12-31T23:59:59-05:00"},
        {"offset": str(2**63)},
        {"offset": str(10**20)},
    ],
)
async def test_invalid_parameters_are_400(api: Api, params: dict[str, str]) -> None:
    response = await api.client.get(PATH, params=params, headers=api.admin)
    error = assert_error(response, 400, "invalid_parameter")
    assert error["details"]["fields"]


async def test_ip_address_user_agent_and_key_id_are_recorded(api: Api) -> None:
    generator, pak = await api.create_generator("recorded")
    response = await api.client.put(
        f"/api/v1/generators/{generator['id']}",
        json={"description": "seen"},
        headers={**auth(pak), "User-Agent": "ci-runner/7.1"},
    )
    assert response.status_code == 200
    [log] = (await query(api, action="generator.updated"))["logs"]
    assert log["ip_address"] == "127.0.0.1" and log["user_agent"] == "ci-runner/7.1"
    assert log["actor_type"] == "generator" and log["actor_id"] == generator["id"]
    assert log["key_id"] == pak.split("_")[1]


# --- bounded: clipped text, rate-limited failures ------------------------------------------


async def dropped(api: Api, action: str) -> float:
    """brokkr_audit_records_dropped_total{action=...} as /metrics shows it."""
    text = (await api.client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "brokkr_audit_records_dropped_total"
                and sample.labels["action"] == action
            ):
                return float(sample.value)
    return 0.0


def client_from(api: Api, host: str) -> httpx.AsyncClient:
    app = api.broker.app
    transport = httpx.ASGITransport(app=Observability(app, app.state.metrics), client=(host, 4000))
    return httpx.AsyncClient(transport=transport, base_url="http://broker.test")


# A route whose last segment takes any text, so the path reaches authentication as sent.
LABELS = f"/api/v1/agents/{uuid.uuid4()}/labels"


def stored_bytes(value: str | None) -> int:
    return len((value or "").encode())


async def test_client_text_in_a_failed_authentication_is_clipped(api: Api) -> None:
    huge_agent = "curl/" + "A" * 32 * 1024
    huge_path = f"{LABELS}/" + "p" * 8000
    response = await api.client.delete(huge_path, headers={"User-Agent": huge_agent})
    assert_error(response, 401, "unauthorized")
    [log] = (await query(api, action="auth.failed"))["logs"]
    assert log["user_agent"].startswith("curl/AAA") and log["user_agent"].endswith("\u2026")
    assert stored_bytes(log["user_agent"]) <= audit.MAX_TEXT_BYTES
    assert log["details"]["path"].startswith(f"{LABELS}/ppp")
    assert stored_bytes(log["details"]["path"]) <= audit.MAX_TEXT_BYTES


@pytest.mark.parametrize("label", ["x%00y", "x%0d%0aforged", "%E2%80%A8"])
async def test_control_characters_in_a_failed_path_are_stored_escaped(api: Api, label: str) -> None:
    # PostgreSQL cannot store NUL at all: unescaped, this failure would be a 500 and no record.
    assert_error(await api.client.delete(f"{LABELS}/{label}"), 401, "unauthorized")
    [log] = (await query(api, action="auth.failed"))["logs"]
    assert log["details"]["path"].isprintable()


async def test_free_text_of_a_change_is_clipped_in_its_record(api: Api) -> None:
    generator, _ = await api.create_generator("described")
    description = "d" * 4000
    response = await api.client.put(
        f"/api/v1/generators/{generator['id']}",
        json={"description": description},
        headers=api.admin,
    )
    assert response.status_code == 200 and response.json()["description"] == description
    [log] = (await query(api, action="generator.updated"))["logs"]
    assert stored_bytes(log["details"]["description"]) <= audit.MAX_TEXT_BYTES


async def test_failed_authentications_are_recorded_at_a_bounded_rate_per_source(
    api: Api,
) -> None:
    before = await dropped(api, "auth.failed")
    with limits(api, audit_failures_per_minute=5):
        for _ in range(12):
            assert (await api.client.get("/api/v1/agents", headers=auth("nope"))).status_code == 401
        # Another address has its own allowance.
        async with client_from(api, "10.9.8.7") as other:
            for _ in range(3):
                assert (await other.get("/api/v1/agents")).status_code == 401
    logs = (await query(api, action="auth.failed"))["logs"]
    assert sorted(log["ip_address"] for log in logs) == ["10.9.8.7"] * 3 + ["127.0.0.1"] * 5
    assert await dropped(api, "auth.failed") == before + 7


async def test_failures_with_one_key_id_are_bounded_across_addresses(api: Api) -> None:
    stolen = paks.generate().plaintext
    with limits(api, audit_failures_per_minute=2):
        for index in range(4):
            async with client_from(api, f"10.0.0.{index}") as client:
                response = await client.get("/api/v1/agents", headers=auth(stolen))
                assert response.status_code == 401
    logs = (await query(api, action="auth.failed"))["logs"]
    assert len(logs) == 2 and {log["key_id"] for log in logs} == {stolen.split("_")[1]}


async def test_failures_are_bounded_in_all_however_many_addresses(api: Api) -> None:
    with limits(api, audit_failures_per_minute_total=4):
        for index in range(10):
            async with client_from(api, f"10.1.0.{index}") as client:
                assert (await client.get("/api/v1/agents")).status_code == 401
    assert (await query(api, action="auth.failed"))["total"] == 4


# --- denied writes --------------------------------------------------------------------------


async def test_a_denied_write_is_audited_with_the_real_caller(api: Api) -> None:
    mine, pak = await api.create_generator("mine")
    theirs, _ = await api.create_generator("theirs")
    response = await api.client.put(
        f"/api/v1/generators/{theirs['id']}",
        json={"name": "taken-over"},
        headers={**auth(pak), "User-Agent": "ci-runner/7.1"},
    )
    assert_error(response, 403, "generator_not_owned")
    [log] = (await query(api, action="access.denied"))["logs"]
    assert (log["actor_type"], log["actor_id"]) == ("generator", mine["id"])
    assert log["key_id"] == pak.split("_")[1] and log["user_agent"] == "ci-runner/7.1"
    assert (log["resource_type"], log["resource_id"]) == ("generator", theirs["id"])
    assert log["details"]["code"] == "generator_not_owned"
    assert log["details"]["method"] == "PUT"
    assert log["details"]["path"] == f"/api/v1/generators/{theirs['id']}"
    async with api.broker.database.read() as tx:
        outcome = (
            await tx.execute(
                sa.select(tables.audit_logs.c.outcome).where(
                    tables.audit_logs.c.action == "access.denied"
                )
            )
        ).scalar_one()
    assert outcome == "failure"
    assert (await query(api, action="generator.updated"))["total"] == 0


async def test_a_write_to_a_hidden_stack_is_404_and_audited_as_denied(api: Api) -> None:
    owner, owner_pak = await api.create_generator("owner")
    other, other_pak = await api.create_generator("other")
    stack = await api.client.post("/api/v1/stacks", json={"name": "s"}, headers=auth(owner_pak))
    stack_id = stack.json()["id"]
    response = await api.client.delete(f"/api/v1/stacks/{stack_id}", headers=auth(other_pak))
    assert_error(response, 404, "stack_not_found")
    [log] = (await query(api, action="access.denied"))["logs"]
    assert (log["actor_type"], log["actor_id"]) == ("generator", other["id"])
    assert (log["resource_type"], log["resource_id"]) == ("stack", stack_id)
    assert log["details"]["code"] == "stack_not_found"
    # A missing stack is no denial: nothing to record beyond the 404.
    missing = await api.client.delete(f"/api/v1/stacks/{uuid.uuid4()}", headers=auth(other_pak))
    assert_error(missing, 404, "stack_not_found")
    assert (await query(api, action="access.denied"))["total"] == 1
    del owner


async def test_denied_reads_are_not_audited(api: Api) -> None:
    _, pak = await api.create_agent()
    assert_error(await api.client.get("/api/v1/agents", headers=auth(pak)), 403)
    assert (await query(api, action="access.denied"))["total"] == 0


async def test_denied_writes_are_recorded_at_a_bounded_rate(api: Api) -> None:
    _, pak = await api.create_agent()
    before = await dropped(api, "access.denied")
    with limits(api, audit_failures_per_minute=3):
        for index in range(8):
            response = await api.client.post(
                "/api/v1/agents", json={"name": f"a{index}", "cluster_name": "c"}, headers=auth(pak)
            )
            assert_error(response, 403, "admin_required")
    assert (await query(api, action="access.denied"))["total"] == 3
    assert await dropped(api, "access.denied") == before + 5
