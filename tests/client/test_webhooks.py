"""``client.webhooks`` against a real broker process, on SQLite and on PostgreSQL.

Covers: event_types (the catalogue); create with every field, get, list; the URL, auth header
and secret never read back (only ``has_*``), ``filters`` left out when none; update changes
only what is given, ``clear_*`` clears the auth header, secret, filters and target labels, and
a value given with its clear flag is refused before any request; delete (then NotFound);
deliveries of a subscription with target labels (so the broker leaves them to agents): the
``status`` filter, ``limit``/``offset`` and ``iterate_deliveries`` across pages; the agent side:
``pending`` with the agent's PAK claims them with the decrypted URL and auth header and the
broker-computed signature, ``report_result`` success, failure (retry scheduled) and 410 (dead);
``test`` against a local receiver (2xx, and a 500 raised as ``BadRequest`` naming it); and the
typed errors of a generator's PAK, an unknown id and a bad event type.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import msgspec
import pytest

from brokkr.client import (
    AsyncBrokkrClient,
    BadRequest,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from brokkr.common import signing, wire
from tests.client.conftest import LiveBroker, unique
from tests.fakes.webhook_receiver import Reply, WebhookReceiver

SECRET = "client-test-secret-0123456789"
URL = "https://hooks.example/brokkr"


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as running:
        yield running


async def stack_created(admin: AsyncBrokkrClient) -> wire.Stack:
    generator = await admin.generators.create(name=unique("gen"))
    return await admin.stacks.create(name=unique("stack"), generator_id=generator.generator.id)


async def test_create_get_list_update_and_delete(admin: AsyncBrokkrClient) -> None:
    assert (await admin.webhooks.event_types())[:3] == [
        "agent.registered",
        "agent.deregistered",
        "stack.created",
    ]
    agent = await admin.agents.create(name=unique("agent"), cluster_name=unique("cluster"))
    agent_id = agent.agent.id
    created = await admin.webhooks.create(
        name=unique("hook"),
        url=URL,
        event_types=["stack.*", "deployment.applied"],
        auth_header="Bearer token",
        secret=SECRET,
        filters=wire.WebhookFilters(agent_id=agent_id, labels={"team": "web"}),
        target_labels=["edge"],
        max_retries=3,
        timeout_seconds=10,
    )

    assert (created.has_url, created.has_auth_header, created.has_secret) == (True, True, True)
    assert created.event_types == ["stack.*", "deployment.applied"]
    assert created.filters == wire.WebhookFilters(agent_id=agent_id, labels={"team": "web"})
    assert (created.target_labels, created.enabled) == (["edge"], True)
    assert (created.max_retries, created.timeout_seconds) == (3, 10)
    assert await admin.webhooks.get(created.id) == created
    assert created in await admin.webhooks.list()
    assert b"token" not in msgspec.json.encode(created) and SECRET not in repr(created)

    renamed = await admin.webhooks.update(created.id, name="renamed", enabled=False)
    assert (renamed.name, renamed.enabled) == ("renamed", False)
    assert (renamed.has_secret, renamed.filters, renamed.target_labels) == (
        True,
        created.filters,
        ["edge"],
    )

    cleared = await admin.webhooks.update(
        created.id,
        clear_auth_header=True,
        clear_secret=True,
        clear_filters=True,
        clear_target_labels=True,
    )
    assert (cleared.has_auth_header, cleared.has_secret) == (False, False)
    assert cleared.filters is msgspec.UNSET  # left out of the response, not null
    assert cleared.target_labels is None
    assert (cleared.name, cleared.event_types) == ("renamed", created.event_types)

    with pytest.raises(ValueError, match="secret"):
        await admin.webhooks.update(created.id, secret=SECRET, clear_secret=True)

    await admin.webhooks.delete(created.id)
    with pytest.raises(NotFound) as missing:
        await admin.webhooks.get(created.id)
    assert missing.value.code == "webhook_not_found"


async def test_deliveries_are_listed_filtered_and_paged(admin: AsyncBrokkrClient) -> None:
    subscription = await admin.webhooks.create(
        name=unique("hook"), url=URL, event_types=["stack.created"], target_labels=[unique("l")]
    )
    stacks = [await stack_created(admin) for _ in range(3)]

    listed = await admin.webhooks.deliveries(subscription.id)
    assert [msgspec.json.decode(d.payload)["data"]["stack_id"] for d in listed] == [
        str(stack.id) for stack in reversed(stacks)
    ]
    assert {(d.status, d.event_type, d.attempts) for d in listed} == {
        ("pending", "stack.created", 0)
    }
    assert await admin.webhooks.deliveries(subscription.id, status="pending") == listed
    assert await admin.webhooks.deliveries(subscription.id, status="success") == []
    first = await admin.webhooks.deliveries(subscription.id, limit=2)
    rest = await admin.webhooks.deliveries(subscription.id, limit=2, offset=2)
    assert first + rest == listed
    paged = [d async for d in admin.webhooks.iterate_deliveries(subscription.id, page=2)]
    assert paged == listed


async def test_an_agent_claims_posts_and_reports(
    admin: AsyncBrokkrClient, live_broker: LiveBroker
) -> None:
    label = unique("edge")
    agent = await admin.agents.create(name=unique("agent"), cluster_name=unique("cluster"))
    await admin.agents.add_label(agent.agent.id, label)
    subscription = await admin.webhooks.create(
        name=unique("hook"),
        url=URL,
        event_types=["stack.created"],
        auth_header="Bearer token",
        secret=SECRET,
        target_labels=[label],
    )
    for _ in range(3):
        await stack_created(admin)

    async with live_broker.client(agent.initial_pak) as client:
        pending = await client.webhooks.pending(agent.agent.id)
        assert len(pending) == 3
        assert {(p.url, p.auth_header, p.subscription_id) for p in pending} == {
            (URL, "Bearer token", subscription.id)
        }
        for claimed in pending:
            assert claimed.signature == signing.sign(SECRET, claimed.payload.encode())
        assert await client.webhooks.pending(agent.agent.id) == []  # claimed already

        delivered, retried, gone = pending
        ok = await client.webhooks.report_result(
            delivered.id, success=True, status_code=204, duration_ms=12
        )
        failed = await client.webhooks.report_result(
            retried.id, success=False, status_code=503, error="HTTP 503: busy", duration_ms=7
        )
        dead = await client.webhooks.report_result(
            gone.id, success=False, status_code=410, error="HTTP 410: gone"
        )

    assert (ok.status, ok.delivery_id) == ("success", delivered.id)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert failed.next_retry_at is not None
    assert dead.status == "dead"
    statuses = {d.id: d.status for d in await admin.webhooks.deliveries(subscription.id)}
    assert statuses == {delivered.id: "success", retried.id: "failed", gone.id: "dead"}


async def test_a_test_delivery_reaches_the_receiver(
    admin: AsyncBrokkrClient, receiver: WebhookReceiver
) -> None:
    subscription = await admin.webhooks.create(
        name=unique("hook"), url=receiver.url, event_types=["*"], secret=SECRET
    )

    answered = await admin.webhooks.test(subscription.id)

    assert (answered.success, answered.status_code) == (True, 204)
    [request] = receiver.requests
    assert msgspec.json.decode(request.body)["event_type"] == "webhook.test"
    receiver.answer = lambda _: Reply(status=500)
    with pytest.raises(BadRequest) as refused:
        await admin.webhooks.test(subscription.id)
    assert refused.value.code == "webhook_test_failed"
    assert refused.value.details["status_code"] == 500
    assert await admin.webhooks.deliveries(subscription.id) == []  # a test is not recorded


async def test_typed_errors(admin: AsyncBrokkrClient, live_broker: LiveBroker) -> None:
    generator = await admin.generators.create(name=unique("gen"))
    async with live_broker.client(generator.pak) as ci:
        with pytest.raises(Forbidden) as forbidden:
            await ci.webhooks.list()
    assert forbidden.value.code == "admin_required"
    with pytest.raises(NotFound):
        await admin.webhooks.deliveries(uuid.uuid4())
    with pytest.raises(ValidationFailed) as invalid:
        await admin.webhooks.create(name=unique("hook"), url=URL, event_types=["stack.exploded"])
    assert "event_types" in invalid.value.details["fields"]
