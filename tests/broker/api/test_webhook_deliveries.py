"""Webhook deliveries over HTTP, on both databases: listing a subscription's deliveries, and the
agent side (claim pending deliveries by labels, report results): who may call what, bad input
changing nothing, atomic claims, and the retry rules applied to reported outcomes.

Deliveries here carry target labels (agent deliveries), so the broker's own worker, running in
the background, never touches them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest
import sqlalchemy as sa

from brokkr.broker.db import tables
from brokkr.broker.domain import webhook_delivery as rules
from brokkr.broker.services.context import Context
from brokkr.common import signing
from tests.broker.conftest import Api, assert_error, auth

SECRET = "a-signing-secret-of-some-length"
URL = "http://receiver.test/hook"
_d = tables.webhook_deliveries


@dataclasses.dataclass
class Fleet:
    api: Api
    agent_id: str
    agent_pak: str
    other_id: str
    other_pak: str
    generator_pak: str
    subscription_id: uuid.UUID

    def headers(self, role: str) -> dict[str, str]:
        return {
            "admin": self.api.admin,
            "agent": auth(self.agent_pak),
            "other": auth(self.other_pak),
            "generator": auth(self.generator_pak),
        }[role]

    @property
    def ctx(self) -> Context:
        ctx: Context = self.api.broker.app.state.ctx
        return ctx

    async def deliveries(
        self, count: int, *, labels: list[str] | None = None, **values: Any
    ) -> list[uuid.UUID]:
        """Queued deliveries of one event each (inserted as the outbox does)."""
        now = datetime.now(UTC)
        rows = []
        for n in range(count):
            event_id = uuid.uuid4()
            envelope = {"id": str(event_id), "event_type": "stack.created", "data": {"n": n}}
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "subscription_id": self.subscription_id,
                    "event_type": "stack.created",
                    "event_id": event_id,
                    "payload": msgspec.json.encode(envelope).decode(),
                    "target_labels": ["edge"] if labels is None else labels,
                    "status": "pending",
                    "attempts": 0,
                    "created_at": now + timedelta(microseconds=n),
                    **values,
                }
            )
        async with self.api.broker.database.transaction() as tx:
            await tx.execute(_d.insert(), rows)
        return [row["id"] for row in rows]

    async def row(self, delivery_id: uuid.UUID) -> dict[str, Any]:
        async with self.api.broker.database.read() as tx:
            found = (await tx.execute(sa.select(_d).where(_d.c.id == delivery_id))).one()
        return dict(found._mapping)

    async def pending(self, role: str = "agent", agent_id: str | None = None) -> httpx.Response:
        return await self.api.client.get(
            f"/api/v1/agents/{agent_id or self.agent_id}/webhooks/pending",
            headers=self.headers(role),
        )

    async def report(
        self, delivery_id: uuid.UUID | str, role: str = "agent", **body: Any
    ) -> httpx.Response:
        return await self.api.client.post(
            f"/api/v1/webhook-deliveries/{delivery_id}/result",
            json=body,
            headers=self.headers(role),
        )

    async def claimed(self) -> list[dict[str, Any]]:
        response = await self.pending()
        assert response.status_code == 200, response.text
        body: list[dict[str, Any]] = response.json()
        return body


async def subscribe(
    api: Api, *, max_retries: int = 5, labels: list[str] | None = None
) -> uuid.UUID:
    ctx: Context = api.broker.app.state.ctx
    now = datetime.now(UTC)
    subscription_id = uuid.uuid4()
    async with api.broker.database.transaction() as tx:
        await tx.execute(
            tables.webhook_subscriptions.insert().values(
                id=subscription_id,
                created_at=now,
                updated_at=now,
                name="ops",
                url_encrypted=ctx.secrets.encrypt(URL),
                auth_header_encrypted=ctx.secrets.encrypt("Bearer t0ken"),
                secret_encrypted=ctx.secrets.encrypt(SECRET),
                event_types=["*"],
                target_labels=["edge"] if labels is None else labels,
                enabled=True,
                max_retries=max_retries,
                timeout_seconds=5,
            )
        )
    return subscription_id


@pytest.fixture
async def fleet(api: Api) -> Fleet:
    agent, agent_pak = await api.create_agent("edge-1")
    other, other_pak = await api.create_agent("edge-2")
    _, generator_pak = await api.create_generator()
    for agent_id in (agent["id"], other["id"]):
        added = await api.client.post(
            f"/api/v1/agents/{agent_id}/labels", json={"label": "edge"}, headers=api.admin
        )
        assert added.status_code == 201, added.text
    subscription_id = await subscribe(api)
    return Fleet(
        api, agent["id"], agent_pak, other["id"], other_pak, generator_pak, subscription_id
    )


# --- GET /webhooks/{id}/deliveries ------------------------------------------------------------


async def test_admin_lists_a_subscriptions_deliveries_newest_first_by_status(fleet: Fleet) -> None:
    ids = await fleet.deliveries(3)
    dead = await fleet.deliveries(1, status="dead", attempts=1, last_error="HTTP 410 Gone")
    response = await fleet.api.client.get(
        f"/api/v1/webhooks/{fleet.subscription_id}/deliveries", headers=fleet.api.admin
    )
    assert response.status_code == 200, response.text
    listed = response.json()
    assert [d["id"] for d in listed] == [str(i) for i in [*dead, *reversed(ids)]]
    first = listed[1]
    assert first["subscription_id"] == str(fleet.subscription_id)
    assert first["status"] == "pending" and first["attempts"] == 0
    assert msgspec.json.decode(first["payload"])["event_type"] == "stack.created"
    only_dead = await fleet.api.client.get(
        f"/api/v1/webhooks/{fleet.subscription_id}/deliveries",
        params={"status": "dead"},
        headers=fleet.api.admin,
    )
    assert [d["id"] for d in only_dead.json()] == [str(dead[0])]
    assert only_dead.json()[0]["last_error"] == "HTTP 410 Gone"


async def test_deliveries_are_paged(fleet: Fleet) -> None:
    ids = await fleet.deliveries(5)
    path = f"/api/v1/webhooks/{fleet.subscription_id}/deliveries"
    page = await fleet.api.client.get(path, params={"limit": 2}, headers=fleet.api.admin)
    assert [d["id"] for d in page.json()] == [str(i) for i in reversed(ids[3:])]
    assert page.headers["X-Next-Offset"] == "2"
    last = await fleet.api.client.get(
        path, params={"limit": 2, "offset": 4}, headers=fleet.api.admin
    )
    assert [d["id"] for d in last.json()] == [str(ids[0])]
    assert "X-Next-Offset" not in last.headers


@pytest.mark.parametrize("role", ["agent", "generator"])
async def test_only_admins_list_deliveries(fleet: Fleet, role: str) -> None:
    response = await fleet.api.client.get(
        f"/api/v1/webhooks/{fleet.subscription_id}/deliveries", headers=fleet.headers(role)
    )
    assert_error(response, 403, "admin_required")


@pytest.mark.parametrize(
    ("params", "field"),
    [({"status": "delivered"}, "status"), ({"limit": 0}, None), ({"offset": -1}, None)],
)
async def test_bad_listing_parameters_are_400(
    fleet: Fleet, params: dict[str, Any], field: str | None
) -> None:
    response = await fleet.api.client.get(
        f"/api/v1/webhooks/{fleet.subscription_id}/deliveries",
        params=params,
        headers=fleet.api.admin,
    )
    body = assert_error(response, 400)
    if field is not None:
        assert body["code"] == "invalid_parameter"
        assert field in body["details"]["fields"]


async def test_deliveries_of_an_unknown_subscription_are_404(fleet: Fleet) -> None:
    response = await fleet.api.client.get(
        f"/api/v1/webhooks/{uuid.uuid4()}/deliveries", headers=fleet.api.admin
    )
    assert_error(response, 404, "webhook_not_found")


# --- GET /agents/{id}/webhooks/pending ---------------------------------------------------------


async def test_an_agent_claims_its_deliveries_with_secrets_opened(fleet: Fleet) -> None:
    (delivery_id,) = await fleet.deliveries(1)
    (claimed,) = await fleet.claimed()
    assert claimed["id"] == str(delivery_id)
    assert claimed["subscription_id"] == str(fleet.subscription_id)
    assert claimed["url"] == URL and claimed["auth_header"] == "Bearer t0ken"
    assert claimed["event_type"] == "stack.created"
    assert claimed["timeout_seconds"] == 5 and claimed["max_retries"] == 5
    assert claimed["attempts"] == 0
    assert claimed["signature"] == signing.sign(SECRET, claimed["payload"].encode())
    row = await fleet.row(delivery_id)
    assert row["status"] == "acquired" and str(row["acquired_by"]) == fleet.agent_id
    # The subscription's timeout (5 s) plus the margin for reporting.
    lasts = timedelta(seconds=5 + rules.CLAIM_MARGIN_SECONDS)
    assert datetime.now(UTC) < row["acquired_until"] <= datetime.now(UTC) + lasts
    # Claimed: nobody gets it again while the claim lasts.
    assert await fleet.claimed() == []
    claims = await fleet.api.audit(action="webhook.deliveries_claimed")
    assert claims[0]["details"]["deliveries"] == [str(delivery_id)]


async def test_an_admin_claims_on_an_agents_behalf(fleet: Fleet) -> None:
    (delivery_id,) = await fleet.deliveries(1)
    response = await fleet.pending("admin")
    assert response.status_code == 200, response.text
    assert [d["id"] for d in response.json()] == [str(delivery_id)]
    assert str((await fleet.row(delivery_id))["acquired_by"]) == fleet.agent_id


async def test_agents_get_only_deliveries_whose_labels_they_all_carry(fleet: Fleet) -> None:
    mine = await fleet.deliveries(1, labels=["edge"])
    await fleet.deliveries(1, labels=["edge", "gpu"])
    added = await fleet.api.client.post(
        f"/api/v1/agents/{fleet.other_id}/labels", json={"label": "gpu"}, headers=fleet.api.admin
    )
    assert added.status_code == 201
    assert [d["id"] for d in await fleet.claimed()] == [str(mine[0])]
    assert await fleet.claimed() == []
    other = await fleet.pending("other", fleet.other_id)
    assert len(other.json()) == 1


async def test_broker_deliveries_are_never_handed_to_agents(fleet: Fleet) -> None:
    # Deliveries without target labels are the broker's own (here: never due, so its worker
    # leaves them alone too).
    later = datetime.now(UTC) + timedelta(hours=1)
    await fleet.deliveries(1, labels=[], status="failed", next_retry_at=later)
    await fleet.deliveries(1, labels=None, status="failed", next_retry_at=later)
    assert await fleet.claimed() == []


async def test_an_agent_claims_at_most_ten_oldest_first(fleet: Fleet) -> None:
    ids = await fleet.deliveries(12)
    assert [d["id"] for d in await fleet.claimed()] == [str(i) for i in ids[:10]]
    assert [d["id"] for d in await fleet.claimed()] == [str(i) for i in ids[10:]]


async def test_due_retries_and_expired_claims_are_claimed_again(fleet: Fleet) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    future = datetime.now(UTC) + timedelta(hours=1)
    due_retry = await fleet.deliveries(1, status="failed", attempts=1, next_retry_at=past)
    await fleet.deliveries(1, status="failed", attempts=1, next_retry_at=future)
    stale = await fleet.deliveries(
        1, status="acquired", acquired_by=uuid.UUID(fleet.other_id), acquired_until=past
    )
    await fleet.deliveries(
        1, status="acquired", acquired_by=uuid.UUID(fleet.other_id), acquired_until=future
    )
    await fleet.deliveries(1, status="success", attempts=1)
    await fleet.deliveries(1, status="dead", attempts=1)
    claimed = {d["id"] for d in await fleet.claimed()}
    assert claimed == {str(due_retry[0]), str(stale[0])}


async def test_concurrent_claims_get_disjoint_deliveries(fleet: Fleet) -> None:
    ids = await fleet.deliveries(30)
    answers = await asyncio.gather(
        *(
            fleet.pending(role, agent)
            for role, agent in [("agent", None), ("other", fleet.other_id)] * 3
        )
    )
    handed = [d["id"] for answer in answers for d in answer.json()]
    assert sorted(handed) == sorted(str(i) for i in ids)
    assert len(handed) == len(set(handed))


@pytest.mark.parametrize("role", ["other", "generator"])
async def test_only_the_agent_itself_or_an_admin_claims(fleet: Fleet, role: str) -> None:
    (delivery_id,) = await fleet.deliveries(1)
    assert_error(await fleet.pending(role), 403, "agent_pak_mismatch")
    assert (await fleet.row(delivery_id))["status"] == "pending"


async def test_claims_for_an_unknown_agent_are_404(fleet: Fleet) -> None:
    response = await fleet.pending("admin", str(uuid.uuid4()))
    assert_error(response, 404, "agent_not_found")


async def test_unreadable_secrets_make_a_delivery_dead_not_handed_out(fleet: Fleet) -> None:
    async with fleet.api.broker.database.transaction() as tx:
        await tx.execute(
            tables.webhook_subscriptions.update()
            .where(tables.webhook_subscriptions.c.id == fleet.subscription_id)
            .values(url_encrypted=b"\x01" + bytes(40))
        )
    (delivery_id,) = await fleet.deliveries(1)
    assert await fleet.claimed() == []
    row = await fleet.row(delivery_id)
    assert row["status"] == "dead" and row["completed_at"] is not None
    assert "webhook_encryption_key" in row["last_error"] and "URL" in row["last_error"]


# --- POST /webhook-deliveries/{id}/result ------------------------------------------------------


async def test_a_reported_success_completes_the_delivery(fleet: Fleet) -> None:
    (delivery_id,) = await fleet.deliveries(1)
    await fleet.claimed()
    response = await fleet.report(delivery_id, success=True, status_code=204, duration_ms=12)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "success", "delivery_id": str(delivery_id)}
    row = await fleet.row(delivery_id)
    assert row["status"] == "success" and row["attempts"] == 1
    assert row["completed_at"] is not None and row["acquired_by"] is None
    audited = await fleet.api.audit(action="webhook.delivery_reported")
    assert audited and audited[0]["resource_id"] == str(delivery_id)


async def test_a_reported_failure_is_retried_later(fleet: Fleet) -> None:
    (delivery_id,) = await fleet.deliveries(1)
    await fleet.claimed()
    before = datetime.now(UTC)
    response = await fleet.report(delivery_id, success=False, status_code=503, error="busy")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "failed" and body["attempts"] == 1
    retry_at = datetime.fromisoformat(body["next_retry_at"])
    # The first retry waits between half and all of the base delay (1 s by default).
    assert before + timedelta(seconds=0.5) <= retry_at <= datetime.now(UTC) + timedelta(seconds=1)
    row = await fleet.row(delivery_id)
    assert row["status"] == "failed" and row["last_error"] == "busy"
    assert row["acquired_by"] is None and row["completed_at"] is None


@pytest.mark.parametrize("status_code", [400, 404, 410])
async def test_a_client_error_is_dead_at_once(fleet: Fleet, status_code: int) -> None:
    (delivery_id,) = await fleet.deliveries(1)
    await fleet.claimed()
    response = await fleet.report(delivery_id, success=False, status_code=status_code)
    assert response.json()["status"] == "dead"
    assert response.json()["next_retry_at"] is None
    row = await fleet.row(delivery_id)
    assert row["status"] == "dead" and row["last_error"] == f"HTTP {status_code}"
    assert await fleet.api.audit(action="webhook.delivery_failed")


@pytest.mark.parametrize("status_code", [408, 429, None])
async def test_timeouts_rate_limits_and_transport_errors_are_retried(
    fleet: Fleet, status_code: int | None
) -> None:
    (delivery_id,) = await fleet.deliveries(1)
    await fleet.claimed()
    response = await fleet.report(
        delivery_id, success=False, status_code=status_code, error="no luck"
    )
    assert response.json()["status"] == "failed"


async def test_a_failure_after_the_last_retry_is_dead(fleet: Fleet) -> None:
    # max_retries 5: the first attempt and five retries, then dead.
    past = datetime.now(UTC) - timedelta(seconds=1)
    (delivery_id,) = await fleet.deliveries(1, status="failed", attempts=5, next_retry_at=past)
    await fleet.claimed()
    response = await fleet.report(delivery_id, success=False, status_code=500)
    assert response.json() == {
        "status": "dead",
        "delivery_id": str(delivery_id),
        "attempts": 6,
        "next_retry_at": None,
    }


@pytest.mark.parametrize(
    ("role", "status", "code"),
    [
        ("other", 403, "delivery_not_acquired_by_agent"),
        ("admin", 403, "agent_pak_required"),
        ("generator", 403, "agent_pak_required"),
    ],
)
async def test_only_the_holding_agent_reports(
    fleet: Fleet, role: str, status: int, code: str
) -> None:
    (delivery_id,) = await fleet.deliveries(1)
    await fleet.claimed()
    assert_error(await fleet.report(delivery_id, role, success=True), status, code)
    assert (await fleet.row(delivery_id))["status"] == "acquired"


async def test_an_expired_claim_is_no_longer_the_agents(fleet: Fleet) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    (delivery_id,) = await fleet.deliveries(
        1, status="acquired", acquired_by=uuid.UUID(fleet.agent_id), acquired_until=past
    )
    response = await fleet.report(delivery_id, success=True)
    assert_error(response, 403, "delivery_not_acquired_by_agent")
    assert (await fleet.row(delivery_id))["attempts"] == 0


async def test_a_result_is_reported_once(fleet: Fleet) -> None:
    (delivery_id,) = await fleet.deliveries(1)
    await fleet.claimed()
    assert (await fleet.report(delivery_id, success=True)).status_code == 200
    again = await fleet.report(delivery_id, success=True)
    assert_error(again, 403, "delivery_not_acquired_by_agent")
    assert (await fleet.row(delivery_id))["attempts"] == 1


async def test_results_of_unknown_deliveries_are_404(fleet: Fleet) -> None:
    assert_error(await fleet.report(uuid.uuid4(), success=True), 404, "delivery_not_found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"success": False, "status_code": 99}, "status_code"),
        ({"success": False, "status_code": 600}, "status_code"),
        ({"success": False, "error": "x" * (rules.MAX_REPORTED_ERROR_CHARS + 1)}, "error"),
        ({"success": True, "duration_ms": -1}, "duration_ms"),
    ],
)
async def test_bad_results_are_422_and_change_nothing(
    fleet: Fleet, body: dict[str, Any], field: str
) -> None:
    (delivery_id,) = await fleet.deliveries(1)
    await fleet.claimed()
    response = await fleet.report(delivery_id, **body)
    error = assert_error(response, 422, "validation_failed")
    assert field in error["details"]["fields"]
    row = await fleet.row(delivery_id)
    assert row["status"] == "acquired" and row["attempts"] == 0


@pytest.mark.parametrize("body", [{}, {"success": "yes"}, []])
async def test_malformed_results_are_refused(fleet: Fleet, body: Any) -> None:
    (delivery_id,) = await fleet.deliveries(1)
    await fleet.claimed()
    response = await fleet.api.client.post(
        f"/api/v1/webhook-deliveries/{delivery_id}/result",
        json=body,
        headers=fleet.headers("agent"),
    )
    assert response.status_code in (400, 422), response.text
    assert (await fleet.row(delivery_id))["status"] == "acquired"
