"""The webhook delivery worker (D18, D21) against a real HTTP receiver, on both databases: what
a delivery POSTs, retries of a receiver that is down or failing, dead deliveries (410, 4xx,
unreadable secrets, retries spent), per-subscription timeouts with the API answering meanwhile,
several workers delivering each delivery once, and outcomes of expired claims not stored.

The broker under test runs its own worker (started with the app); the settings it reads are
swapped per test (short intervals and backoff), as a configuration reload would.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa

from brokkr.broker import db
from brokkr.broker.db import tables
from brokkr.broker.domain import events
from brokkr.broker.domain import webhook_delivery as rules
from brokkr.broker.jobs.webhook_delivery import WebhookDelivery
from brokkr.broker.services import webhook_deliveries
from brokkr.broker.services.context import Context
from tests.agent.waiting import eventually
from tests.broker.conftest import Api
from tests.fakes.webhook_receiver import Reply, WebhookReceiver

SECRET = "a-signing-secret-of-some-length"
_d = tables.webhook_deliveries


@contextmanager
def fast(api: Api, **changed: Any) -> Iterator[Context]:
    """The broker's worker wakes often and retries soon (plus ``changed``) during the block."""
    ctx: Context = api.broker.app.state.ctx
    live = ctx.settings
    before = live.current
    values = {
        "webhook_delivery_interval_seconds": 0.05,
        "webhook_retry_base_seconds": 0.1,
        **changed,
    }
    live.current = msgspec.structs.replace(
        before, broker=msgspec.structs.replace(before.broker, **values)
    )
    # The worker may be in a long wait taken under the old settings.
    ctx.webhooks_due.set()
    try:
        yield ctx
    finally:
        live.current = before


@asynccontextmanager
async def paused(api: Api) -> AsyncIterator[Context]:
    """The broker's own worker is stopped during the block: the test claims by itself."""
    worker: WebhookDelivery = api.broker.app.state.runtime.webhooks
    await worker.stop()
    try:
        yield api.broker.app.state.ctx
    finally:
        worker.start()


@pytest.fixture
async def receiver() -> Any:
    async with WebhookReceiver() as server:
        yield server


async def subscribe(api: Api, url: str, **body: Any) -> str:
    body = {"name": "ops", "url": url, "event_types": ["*"], "secret": SECRET, **body}
    response = await api.client.post("/api/v1/webhooks", json=body, headers=api.admin)
    assert response.status_code == 201, response.text
    subscription_id: str = response.json()["id"]
    return subscription_id


async def emit(ctx: Context, event_type: str = "stack.created", **data: Any) -> None:
    async with ctx.work(None) as w:
        await w.emit(events.Event(event_type=event_type, data=data))


async def rows(api: Api) -> list[dict[str, Any]]:
    async with api.broker.database.read() as tx:
        found = await tx.execute(sa.select(_d).order_by(_d.c.created_at, _d.c.id))
        return [dict(row._mapping) for row in found]


async def settled(api: Api, status: str, count: int = 1) -> list[dict[str, Any]]:
    """Wait until ``count`` deliveries exist and all are in ``status``."""

    async def check() -> list[dict[str, Any]] | None:
        found = await rows(api)
        done = len(found) == count and all(row["status"] == status for row in found)
        return found if done else None

    result: list[dict[str, Any]] = await eventually(check, what=f"{count} deliveries {status}")
    return result


async def test_a_delivery_posts_the_envelope_signed_with_every_header(
    api: Api, receiver: WebhookReceiver
) -> None:
    with fast(api) as ctx:
        await subscribe(api, receiver.url, auth_header="Bearer t0ken")
        await emit(ctx, "stack.created", stack_id="s-1", name="web")
        (row,) = await settled(api, "success")
    (request,) = receiver.requests
    envelope = request.envelope()
    assert envelope["event_type"] == "stack.created"
    assert envelope["data"] == {"stack_id": "s-1", "name": "web"}
    assert envelope["id"] == str(row["event_id"])
    assert request.body == row["payload"].encode()
    assert request.signed_with(SECRET)
    assert request.headers["x-brokkr-event"] == "stack.created"
    assert request.headers["x-brokkr-delivery-id"] == str(row["id"])
    assert request.headers["authorization"] == "Bearer t0ken"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("brokkr-broker/")
    assert row["attempts"] == 1 and row["completed_at"] is not None
    assert row["last_error"] is None and row["acquired_until"] is None


async def test_without_a_secret_no_signature_is_sent(api: Api, receiver: WebhookReceiver) -> None:
    with fast(api) as ctx:
        await subscribe(api, receiver.url, secret=None)
        await emit(ctx)
        await settled(api, "success")
    (request,) = receiver.requests
    assert "x-brokkr-signature" not in request.headers
    assert "authorization" not in request.headers


async def test_each_event_reaches_each_subscription_once(
    api: Api, receiver: WebhookReceiver
) -> None:
    with fast(api) as ctx:
        await subscribe(api, receiver.url)
        await subscribe(api, receiver.url, event_types=["workorder.*"])
        for n in range(20):
            await emit(ctx, "stack.created", n=n)
        await emit(ctx, "workorder.created", n=20)
        await settled(api, "success", 22)
    received = [(r.headers["x-brokkr-delivery-id"], r.envelope()["id"]) for r in receiver.requests]
    assert len(received) == 22 and len(set(received)) == 22
    assert len({event_id for _, event_id in received}) == 21


async def test_a_receiver_that_is_down_is_retried_until_it_returns(api: Api) -> None:
    receiver = WebhookReceiver()
    await receiver.start()
    url = receiver.url
    await receiver.stop()  # the port is known, nobody listens on it
    with fast(api) as ctx:
        await subscribe(api, url, max_retries=20)

        async def retried() -> bool:
            return any(
                row["status"] == "failed" and row["attempts"] >= 2 for row in await rows(api)
            )

        await emit(ctx)
        await eventually(retried, what="two failed attempts")
        (row,) = await rows(api)
        assert "connection failed" in row["last_error"]
        await receiver.start()
        try:
            (row,) = await settled(api, "success")
        finally:
            await receiver.stop()
    assert row["attempts"] >= 3
    assert len(receiver.requests) == 1


async def test_failures_are_retried_with_growing_delays(
    api: Api, receiver: WebhookReceiver
) -> None:
    failures = 4
    receiver.answer = lambda _: Reply(status=503 if len(receiver.requests) <= failures else 204)
    base = 0.2
    with fast(api, webhook_retry_base_seconds=base) as ctx:
        await subscribe(api, receiver.url)
        await emit(ctx)
        (row,) = await settled(api, "success")
    assert row["attempts"] == failures + 1
    arrivals = [request.at for request in receiver.requests]
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:], strict=False)]
    # The n-th retry waits at least half of base x 2^(n-1): 0.1, 0.2, 0.4, 0.8 s.
    for retry, gap in enumerate(gaps, start=1):
        assert gap >= base * 2 ** (retry - 1) / 2, gaps


async def test_gone_is_dead_at_once(api: Api, receiver: WebhookReceiver) -> None:
    receiver.answer = lambda _: Reply(status=410)
    with fast(api) as ctx:
        subscription_id = await subscribe(api, receiver.url, max_retries=10)
        await emit(ctx)
        (row,) = await settled(api, "dead")
    assert row["attempts"] == 1 and row["next_retry_at"] is None
    assert row["last_error"].startswith("HTTP 410 Gone")
    assert len(receiver.requests) == 1
    listed = await api.client.get(
        f"/api/v1/webhooks/{subscription_id}/deliveries",
        params={"status": "dead"},
        headers=api.admin,
    )
    assert [d["id"] for d in listed.json()] == [str(row["id"])]
    (audited,) = await api.audit(action="webhook.delivery_failed")
    assert audited["resource_id"] == str(row["id"]) and audited["actor_type"] == "system"


@pytest.mark.parametrize(("status", "outcome"), [(400, "dead"), (429, "failed"), (500, "failed")])
async def test_client_errors_are_dead_and_others_retried(
    api: Api, receiver: WebhookReceiver, status: int, outcome: str
) -> None:
    receiver.answer = lambda _: Reply(status=status)
    # Retries wait long enough for the first outcome to be seen.
    with fast(api, webhook_retry_base_seconds=60) as ctx:
        await subscribe(api, receiver.url)
        await emit(ctx)
        (row,) = await settled(api, outcome)
    assert row["attempts"] == 1
    assert row["last_error"].startswith(f"HTTP {status}")


async def test_a_delivery_is_dead_after_its_retries(api: Api, receiver: WebhookReceiver) -> None:
    receiver.answer = lambda _: Reply(status=500)
    with fast(api, webhook_retry_base_seconds=0.01) as ctx:
        await subscribe(api, receiver.url, max_retries=2)
        await emit(ctx)
        (row,) = await settled(api, "dead")
    assert row["attempts"] == 3 and len(receiver.requests) == 3


async def test_a_slow_receiver_times_out_per_subscription_while_the_api_answers(
    api: Api, receiver: WebhookReceiver
) -> None:
    receiver.answer = lambda _: Reply(delay=30)
    with fast(api) as ctx:
        await subscribe(api, receiver.url, timeout_seconds=1, max_retries=0)
        await emit(ctx)
        await eventually(lambda: receiver.requests, what="the request in flight")
        # The request is in flight: the API answers meanwhile.
        listed = await api.client.get("/api/v1/webhooks", headers=api.admin)
        assert listed.status_code == 200
        assert [row["status"] for row in await rows(api)] == ["acquired"]
        (row,) = await settled(api, "dead")
    assert row["last_error"] == "request timed out after 1s"


async def test_unreadable_secrets_make_a_delivery_dead(api: Api, receiver: WebhookReceiver) -> None:
    with fast(api) as ctx:
        subscription_id = await subscribe(api, receiver.url)
        async with ctx.database.transaction() as tx:
            subscriptions = tables.webhook_subscriptions
            await tx.execute(
                subscriptions.update()
                .where(subscriptions.c.id == uuid.UUID(subscription_id))
                .values(secret_encrypted=b"\x01" + bytes(40))
            )
        await emit(ctx)
        (row,) = await settled(api, "dead")
    assert "signing secret" in row["last_error"]
    assert "broker.webhook_encryption_key" in row["last_error"]
    assert receiver.requests == []


async def test_several_workers_deliver_each_delivery_once(
    api: Api, receiver: WebhookReceiver
) -> None:
    events_count = 200
    settings = api.broker.settings
    second = db.create(settings.database_url, pool_size=4, timeouts=settings.database.timeouts())
    with fast(api, webhook_delivery_batch_size=7, webhook_delivery_concurrency=5) as ctx:
        others = [
            WebhookDelivery(dataclasses.replace(ctx, webhooks_due=asyncio.Event())),
            WebhookDelivery(
                dataclasses.replace(ctx, database=second, webhooks_due=asyncio.Event())
            ),
        ]
        for worker in others:
            worker.start()
        try:
            await subscribe(api, receiver.url)
            for n in range(events_count):
                await emit(ctx, n=n)
            await settled(api, "success", events_count)
        finally:
            for worker in others:
                await worker.stop()
            await second.dispose()
    ids = [request.headers["x-brokkr-delivery-id"] for request in receiver.requests]
    assert len(ids) == events_count and len(set(ids)) == events_count


async def test_an_outcome_is_not_stored_once_its_claim_was_taken_over(
    api: Api, receiver: WebhookReceiver
) -> None:
    async with paused(api) as ctx:
        await subscribe(api, receiver.url)
        await emit(ctx)
        (first,) = await webhook_deliveries.claim(ctx, limit=10)
        later = dataclasses.replace(
            ctx, now=lambda: ctx.now() + timedelta(seconds=rules.CLAIM_SECONDS + 1)
        )
        (second,) = await webhook_deliveries.claim(later, limit=10)
        assert second.id == first.id and second.lease != first.lease
        await webhook_deliveries.record(ctx, [(first, rules.Outcome(success=True))])
        (row,) = await rows(api)
        assert row["status"] == "acquired" and row["attempts"] == 0
        await webhook_deliveries.record(later, [(second, rules.Outcome(success=True))])
        (row,) = await rows(api)
        assert row["status"] == "success" and row["attempts"] == 1


async def test_stopping_lets_requests_in_flight_finish_and_records_them(
    api: Api, receiver: WebhookReceiver
) -> None:
    receiver.answer = lambda _: Reply(delay=0.5)
    async with paused(api) as ctx:
        await subscribe(api, receiver.url)
        await emit(ctx)
        worker = WebhookDelivery(ctx)
        worker.start()
        await eventually(lambda: receiver.requests, what="the request in flight")
        await worker.stop()
        (row,) = await rows(api)
    assert row["status"] == "success" and row["attempts"] == 1


async def test_a_host_name_resolving_into_a_denied_network_is_dead_unsent(
    api: Api, receiver: WebhookReceiver
) -> None:
    """The deny-list is applied when sending: ``localhost`` passes the create-time check (no
    literal address) but resolves into 127.0.0.0/8."""
    url = receiver.url.replace("127.0.0.1", "localhost")
    await subscribe(api, url)
    with fast(api, webhook_denied_networks=["127.0.0.0/8", "::1/128"]) as ctx:
        await emit(ctx)
        (row,) = await settled(api, "dead")
    assert "webhook_denied_networks" in row["last_error"]
    assert receiver.requests == []
