"""Work orders (D17) over HTTP, on both databases: who may call what, bad input changing
nothing, atomic claims, retries with the reference backoff, and stale claims released."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from brokkr.broker.db import tables
from brokkr.broker.services import work_orders
from brokkr.broker.services.context import Context
from tests.broker.conftest import Api, assert_error, auth, limits

JOB = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n"


@dataclasses.dataclass
class Fleet:
    api: Api
    agent_id: str
    agent_pak: str
    other_id: str
    other_pak: str
    generator_pak: str

    def headers(self, role: str) -> dict[str, str]:
        return {
            "admin": self.api.admin,
            "agent": auth(self.agent_pak),
            "other": auth(self.other_pak),
            "generator": auth(self.generator_pak),
            "none": {},
        }[role]

    async def create(self, **body: Any) -> dict[str, Any]:
        body = {"work_type": "custom", "yaml_content": JOB, **body}
        body.setdefault("target_agent_ids", [self.agent_id])
        response = await self.api.client.post(
            "/api/v1/work-orders", json=body, headers=self.api.admin
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def claim(self, order_id: str, role: str = "agent") -> httpx.Response:
        agent_id = self.other_id if role == "other" else self.agent_id
        return await self.api.client.post(
            f"/api/v1/work-orders/{order_id}/claim",
            json={"agent_id": agent_id},
            headers=self.headers(role),
        )

    async def complete(self, order_id: str, role: str = "agent", **body: Any) -> httpx.Response:
        return await self.api.client.post(
            f"/api/v1/work-orders/{order_id}/complete", json=body, headers=self.headers(role)
        )

    async def get(self, order_id: str) -> dict[str, Any]:
        response = await self.api.client.get(
            f"/api/v1/work-orders/{order_id}", headers=self.api.admin
        )
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found


@pytest.fixture
async def fleet(api: Api) -> Fleet:
    agent, agent_pak = await api.create_agent("edge-1")
    other, other_pak = await api.create_agent("edge-2")
    _, generator_pak = await api.create_generator()
    return Fleet(api, agent["id"], agent_pak, other["id"], other_pak, generator_pak)


def at(api: Api, moment: datetime) -> Context:
    """The broker's context with its clock set to ``moment``."""
    ctx: Context = api.broker.app.state.ctx
    return dataclasses.replace(ctx, now=lambda: moment)


def stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [("admin", 200), ("agent", 403), ("other", 403), ("generator", 403), ("none", 401)],
)
async def test_admin_only_endpoints(fleet: Fleet, role: str, status: int) -> None:
    order = await fleet.create()
    client, headers = fleet.api.client, fleet.headers(role)
    reads = [
        await client.get("/api/v1/work-orders", headers=headers),
        await client.get(f"/api/v1/work-orders/{order['id']}", headers=headers),
        await client.get("/api/v1/work-order-log", headers=headers),
    ]
    created = await client.post(
        "/api/v1/work-orders",
        json={"work_type": "custom", "yaml_content": JOB, "targeting": {"labels": ["x"]}},
        headers=headers,
    )
    deleted = await client.delete(f"/api/v1/work-orders/{order['id']}", headers=headers)
    if status == 200:
        assert [r.status_code for r in reads] == [200, 200, 200]
        assert (created.status_code, deleted.status_code) == (201, 204)
        return
    for response in [*reads, created, deleted]:
        if status == 401:
            assert response.status_code == 401
        else:
            assert_error(response, 403, "admin_required")
    assert await fleet.api.count(tables.work_orders) == 1


@pytest.mark.parametrize(
    ("role", "status"),
    [("admin", 200), ("agent", 200), ("other", 403), ("generator", 403), ("none", 401)],
)
async def test_pending_list_is_for_the_agent_itself(fleet: Fleet, role: str, status: int) -> None:
    order = await fleet.create()
    response = await fleet.api.client.get(
        f"/api/v1/agents/{fleet.agent_id}/work-orders/pending", headers=fleet.headers(role)
    )
    assert response.status_code == status, response.text
    if status == 200:
        assert [o["id"] for o in response.json()] == [order["id"]]
    elif status == 403:
        assert_error(response, 403, "agent_pak_mismatch")


async def test_pending_lists_what_the_agent_is_targeted_by(fleet: Fleet) -> None:
    api = fleet.api
    await api.client.post(
        f"/api/v1/agents/{fleet.other_id}/labels", json={"label": "gpu"}, headers=api.admin
    )
    await api.client.post(
        f"/api/v1/agents/{fleet.other_id}/annotations",
        json={"key": "zone", "value": "eu"},
        headers=api.admin,
    )
    by_label = await fleet.create(target_agent_ids=None, targeting={"labels": ["gpu"]})
    by_pair = await fleet.create(
        target_agent_ids=None, targeting={"annotations": {"zone": "eu"}}, work_type="build"
    )
    await fleet.create(target_agent_ids=None, targeting={"annotations": {"zone": "us"}})
    await fleet.create()
    url = f"/api/v1/agents/{fleet.other_id}/work-orders/pending"
    found = await api.client.get(url, headers=auth(fleet.other_pak))
    assert [o["id"] for o in found.json()] == [by_label["id"], by_pair["id"]]
    builds = await api.client.get(url, params={"work_type": "build"}, headers=api.admin)
    assert [o["id"] for o in builds.json()] == [by_pair["id"]]


@pytest.mark.parametrize(
    ("role", "status", "code"),
    [
        ("admin", 200, None),
        ("agent", 200, None),
        ("other", 404, "work_order_not_claimable"),
        ("generator", 403, "agent_pak_mismatch"),
        ("none", 401, None),
    ],
)
async def test_claim_roles(fleet: Fleet, role: str, status: int, code: str | None) -> None:
    order = await fleet.create()
    response = await fleet.claim(order["id"], role)
    if code is None:
        assert response.status_code == status, response.text
    else:
        assert_error(response, status, code)
    claimed = (await fleet.get(order["id"]))["status"] == "CLAIMED"
    assert claimed == (status == 200)


async def test_an_agent_cannot_claim_on_behalf_of_another(fleet: Fleet) -> None:
    order = await fleet.create(target_agent_ids=[fleet.agent_id, fleet.other_id])
    response = await fleet.api.client.post(
        f"/api/v1/work-orders/{order['id']}/claim",
        json={"agent_id": fleet.other_id},
        headers=auth(fleet.agent_pak),
    )
    assert_error(response, 403, "agent_pak_mismatch")
    assert (await fleet.get(order["id"]))["status"] == "PENDING"


@pytest.mark.parametrize(
    ("role", "status", "code"),
    [
        ("admin", 200, None),
        ("agent", 200, None),
        ("other", 403, "work_order_not_claimed_by_agent"),
        ("generator", 403, "work_order_not_claimed_by_agent"),
        ("none", 401, None),
    ],
)
async def test_complete_roles(fleet: Fleet, role: str, status: int, code: str | None) -> None:
    order = await fleet.create()
    assert (await fleet.claim(order["id"])).status_code == 200
    response = await fleet.complete(order["id"], role, success=True, message="sha256:abc")
    if code is None:
        assert response.status_code == status, response.text
    else:
        assert_error(response, status, code)
    logged = await fleet.api.count(tables.work_order_log)
    assert logged == (1 if status == 200 else 0)


async def test_log_entry_roles(fleet: Fleet) -> None:
    order = await fleet.create()
    await fleet.claim(order["id"])
    await fleet.complete(order["id"], success=True)
    url = f"/api/v1/work-order-log/{order['id']}"
    for role in ("agent", "other", "generator"):
        assert_error(
            await fleet.api.client.get(url, headers=fleet.headers(role)), 403, "admin_required"
        )
    assert (await fleet.api.client.get(url)).status_code == 401
    assert (await fleet.api.client.get(url, headers=fleet.api.admin)).status_code == 200


# --- lifecycle --------------------------------------------------------------------------------


async def test_success_moves_the_order_to_the_log(fleet: Fleet) -> None:
    order = await fleet.create(work_type="build")
    claimed = (await fleet.claim(order["id"])).json()
    assert (claimed["status"], claimed["claimed_by"]) == ("CLAIMED", fleet.agent_id)
    done = await fleet.complete(order["id"], success=True, message="sha256:abc")
    assert done.status_code == 200, done.text
    entry = done.json()
    assert entry["success"] is True and entry["result_message"] == "sha256:abc"
    assert entry["claimed_by"] == fleet.agent_id and entry["retries_attempted"] == 0
    assert await fleet.api.count(tables.work_orders) == 0
    shown = await fleet.get(order["id"])
    assert shown["status"] == "COMPLETED" and shown["last_error"] is None
    assert shown["max_retries"] == 0 and shown["updated_at"] == entry["completed_at"]
    log = await fleet.api.client.get(
        "/api/v1/work-order-log",
        params={"success": "true", "agent_id": fleet.agent_id, "work_type": "build"},
        headers=fleet.api.admin,
    )
    assert [e["id"] for e in log.json()] == [order["id"]]
    again = await fleet.complete(order["id"], success=True)
    assert_error(again, 404, "work_order_not_found")
    assert [a["action"] for a in await fleet.api.audit(resource_type="work_order")] == [
        "work_order.completed",
        "work_order.claimed",
        "work_order.created",
    ]


async def test_permanent_failure_is_logged_at_once(fleet: Fleet) -> None:
    order = await fleet.create(max_retries=3)
    await fleet.claim(order["id"])
    done = await fleet.complete(order["id"], success=False, retryable=False, message="forbidden")
    assert done.status_code == 200, done.text
    assert done.json()["success"] is False and done.json()["retries_attempted"] == 0
    shown = await fleet.get(order["id"])
    assert (shown["status"], shown["last_error"]) == ("FAILED", "forbidden")


async def test_retryable_failure_is_retried_with_backoff_then_logged(fleet: Fleet) -> None:
    order = await fleet.create(max_retries=2, backoff_seconds=10)
    for attempt, wait in ((1, 20), (2, 40)):
        await fleet.claim(order["id"])
        response = await fleet.complete(order["id"], success=False, message=f"boom {attempt}")
        assert response.status_code == 202, response.text
        assert response.json() == {"status": "retry_scheduled"}
        waiting = await fleet.get(order["id"])
        assert waiting["status"] == "RETRY_PENDING" and waiting["retry_count"] == attempt
        assert waiting["claimed_by"] is None and waiting["last_error"] == f"boom {attempt}"
        due = stamp(waiting["next_retry_after"])
        assert due - stamp(waiting["last_error_at"]) == timedelta(seconds=wait)
        assert_error(await fleet.claim(order["id"]), 404, "work_order_not_claimable")
        await work_orders.maintain(at(fleet.api, due - timedelta(seconds=1)))
        assert (await fleet.get(order["id"]))["status"] == "RETRY_PENDING"
        await work_orders.maintain(at(fleet.api, due))
        assert (await fleet.get(order["id"]))["status"] == "PENDING"
    await fleet.claim(order["id"])
    final = await fleet.complete(order["id"], success=False, message="boom 3")
    assert final.status_code == 200, final.text
    assert final.json()["success"] is False and final.json()["retries_attempted"] == 2
    assert final.json()["result_message"] == "boom 3"


async def test_stale_claim_is_released_counted_and_the_late_complete_refused(
    fleet: Fleet,
) -> None:
    order = await fleet.create(claim_timeout_seconds=60, max_retries=1)
    claimed = (await fleet.claim(order["id"])).json()
    expiry = stamp(claimed["claimed_at"]) + timedelta(seconds=60)
    assert await work_orders.maintain(at(fleet.api, expiry)) == (0, 0)
    assert await work_orders.maintain(at(fleet.api, expiry + timedelta(seconds=1))) == (0, 1)
    released = await fleet.get(order["id"])
    assert released["status"] == "PENDING" and released["retry_count"] == 1
    assert released["claimed_by"] is None and "expired" in released["last_error"]
    late = await fleet.complete(order["id"], success=True)
    assert_error(late, 403, "work_order_not_claimed_by_agent")
    assert await fleet.api.count(tables.work_order_log) == 0
    # The second stale claim spends the last attempt: the order is logged as failed.
    again = (await fleet.claim(order["id"], "admin")).json()
    later = stamp(again["claimed_at"]) + timedelta(seconds=61)
    assert await work_orders.maintain(at(fleet.api, later)) == (0, 1)
    entry = (
        await fleet.api.client.get(f"/api/v1/work-order-log/{order['id']}", headers=fleet.api.admin)
    ).json()
    assert entry["success"] is False and entry["retries_attempted"] == 1
    released_audits = await fleet.api.audit(action="work_order.claim_released")
    assert len(released_audits) == 1 and released_audits[0]["actor_type"] == "system"


async def test_only_a_claimed_order_is_completed(fleet: Fleet) -> None:
    order = await fleet.create()
    response = await fleet.complete(order["id"], "admin", success=True)
    assert_error(response, 409, "work_order_not_claimed")
    assert (await fleet.get(order["id"]))["status"] == "PENDING"


async def test_delete_cancels_an_active_order_only(fleet: Fleet) -> None:
    order = await fleet.create()
    url = f"/api/v1/work-orders/{order['id']}"
    assert (await fleet.api.client.delete(url, headers=fleet.api.admin)).status_code == 204
    assert await fleet.api.count(tables.work_order_targets) == 0
    missing = await fleet.api.client.delete(url, headers=fleet.api.admin)
    assert_error(missing, 404, "work_order_not_found")
    unknown = await fleet.api.client.get(
        f"/api/v1/work-orders/{uuid.uuid4()}", headers=fleet.api.admin
    )
    assert_error(unknown, 404, "work_order_not_found")


async def test_list_filters_by_status_and_type(fleet: Fleet) -> None:
    first = await fleet.create()
    second = await fleet.create(work_type="build")
    await fleet.claim(first["id"])
    client, admin = fleet.api.client, fleet.api.admin
    everything = await client.get("/api/v1/work-orders", headers=admin)
    assert [o["id"] for o in everything.json()] == [second["id"], first["id"]]
    claimed = await client.get("/api/v1/work-orders", params={"status": "CLAIMED"}, headers=admin)
    assert [o["id"] for o in claimed.json()] == [first["id"]]
    builds = await client.get("/api/v1/work-orders", params={"work_type": "build"}, headers=admin)
    assert [o["id"] for o in builds.json()] == [second["id"]]


# --- bad input --------------------------------------------------------------------------------


async def rejected(fleet: Fleet, body: dict[str, Any], status: int, code: str) -> dict[str, Any]:
    response = await fleet.api.client.post(
        "/api/v1/work-orders", json=body, headers=fleet.api.admin
    )
    error = assert_error(response, status, code)
    assert await fleet.api.count(tables.work_orders) == 0
    assert await fleet.api.count(tables.work_order_targets) == 0
    assert await fleet.api.audit(action="work_order.created") == []
    return error


async def test_invalid_targeting_entries_are_listed_and_nothing_is_created(fleet: Fleet) -> None:
    body = {
        "work_type": "custom",
        "yaml_content": JOB,
        "targeting": {
            "labels": ["ok", "has space", "", "x" * 65],
            "annotations": {"zone": "eu", "bad key": "v", "k": ""},
        },
    }
    error = await rejected(fleet, body, 422, "invalid_targeting")
    assert error["details"]["labels"] == ["has space", "", "x" * 65]
    assert error["details"]["annotations"] == {"bad key": "v", "k": ""}


async def test_unknown_agent_ids_are_a_422_and_nothing_is_created(fleet: Fleet) -> None:
    ghost = str(uuid.uuid4())
    body = {
        "work_type": "custom",
        "yaml_content": JOB,
        "targeting": {"agent_ids": [fleet.agent_id], "labels": ["gpu"]},
        "target_agent_ids": [ghost],
    }
    error = await rejected(fleet, body, 422, "unknown_target_agents")
    assert error["details"]["agent_ids"] == [ghost]
    assert await fleet.api.count(tables.work_order_labels) == 0


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"target_agent_ids": None}, 400, "no_targeting_specified"),
        ({"target_agent_ids": [], "targeting": {"labels": []}}, 400, "no_targeting_specified"),
        ({"work_type": "  "}, 400, "invalid_work_order"),
        ({"work_type": "x" * 51}, 400, "invalid_work_order"),
        ({"yaml_content": "\n"}, 400, "invalid_work_order"),
        ({"max_retries": -1}, 400, "invalid_work_order"),
        ({"backoff_seconds": 0}, 400, "invalid_work_order"),
        ({"claim_timeout_seconds": 0}, 400, "invalid_work_order"),
        ({"target_agent_ids": [str(uuid.UUID(int=0))]}, 422, "invalid_targeting"),
        ({"target_agent_ids": ["not-a-uuid"]}, 400, None),
        ({"work_type": 5}, 400, None),
    ],
)
async def test_bad_create_bodies_change_nothing(
    fleet: Fleet, change: dict[str, Any], status: int, code: str | None
) -> None:
    body = {"work_type": "custom", "yaml_content": JOB, "target_agent_ids": [fleet.agent_id]}
    response = await fleet.api.client.post(
        "/api/v1/work-orders", json={**body, **change}, headers=fleet.api.admin
    )
    assert response.status_code in ({status} if code else {400, 422}), response.text
    assert_error(response, response.status_code, code)
    assert await fleet.api.count(tables.work_orders) == 0


async def test_bad_claim_and_complete_bodies(fleet: Fleet) -> None:
    order = await fleet.create()
    client, admin = fleet.api.client, fleet.api.admin
    for body in ({}, {"agent_id": "nope"}):
        response = await client.post(
            f"/api/v1/work-orders/{order['id']}/claim", json=body, headers=admin
        )
        assert response.status_code in (400, 422)
        assert_error(response, response.status_code)
    await fleet.claim(order["id"])
    for body in ({}, {"success": "yes"}):
        response = await fleet.complete(order["id"], **body)
        assert response.status_code in (400, 422)
        assert_error(response, response.status_code)
    assert (await fleet.get(order["id"]))["status"] == "CLAIMED"
    assert_error(await client.get("/api/v1/work-orders/not-a-uuid", headers=admin), 400)


async def test_log_limit_has_a_default_and_a_maximum(fleet: Fleet) -> None:
    for _ in range(3):
        order = await fleet.create()
        await fleet.claim(order["id"])
        await fleet.complete(order["id"], success=True)
    client, admin = fleet.api.client, fleet.api.admin
    with limits(fleet.api, work_order_log_default_limit=2, work_order_log_max_limit=3):
        assert len((await client.get("/api/v1/work-order-log", headers=admin)).json()) == 2
        three = await client.get("/api/v1/work-order-log", params={"limit": 3}, headers=admin)
        assert len(three.json()) == 3
        for bad in ("4", "0", "-1"):
            response = await client.get(
                "/api/v1/work-order-log", params={"limit": bad}, headers=admin
            )
            assert_error(response, 400, "invalid_parameter")
    missing = await client.get(f"/api/v1/work-order-log/{uuid.uuid4()}", headers=admin)
    assert_error(missing, 404, "work_order_log_entry_not_found")


# --- concurrency ------------------------------------------------------------------------------


async def test_two_agents_racing_for_one_order_exactly_one_wins(fleet: Fleet) -> None:
    api = fleet.api
    for agent_id in (fleet.agent_id, fleet.other_id):
        await api.client.post(
            f"/api/v1/agents/{agent_id}/labels", json={"label": "builders"}, headers=api.admin
        )
    for _ in range(200):
        order = await fleet.create(target_agent_ids=None, targeting={"labels": ["builders"]})
        first, second = await asyncio.gather(
            fleet.claim(order["id"], "agent"), fleet.claim(order["id"], "other")
        )
        statuses = sorted([first.status_code, second.status_code])
        assert statuses == [200, 404], (first.text, second.text)
        loser = first if first.status_code == 404 else second
        assert_error(loser, 404, "work_order_not_claimable")
    assert await api.count(tables.work_orders, tables.work_orders.c.status == "CLAIMED") == 200
    assert len(await api.audit(action="work_order.claimed", limit="1000")) == 200
