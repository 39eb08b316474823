"""Webhook subscriptions over HTTP (D10, D18), on both databases: admins only, every bad input
named and changing nothing, secrets never answered nor stored in plain text, partial updates,
deletes that take queued deliveries along, and test deliveries to a real local receiver."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import httpx
import msgspec
import pytest
import sqlalchemy as sa

from brokkr.broker.db import tables
from brokkr.broker.domain import events
from brokkr.common import signing
from tests.broker.conftest import Api, assert_error, auth
from tests.broker.test_ops import closed_port
from tests.fakes.webhook_receiver import Reply, WebhookReceiver

URL = "https://hooks.example/brokkr?token=url-secret-token"
AUTH = "Bearer auth-header-secret-value"
SECRET = "signing-secret-value-1234"
_s = tables.webhook_subscriptions


@dataclasses.dataclass
class Fleet:
    api: Api
    agent_id: str
    agent_pak: str
    generator_pak: str

    def headers(self, role: str) -> dict[str, str]:
        return {
            "admin": self.api.admin,
            "agent": auth(self.agent_pak),
            "generator": auth(self.generator_pak),
        }[role]

    async def create(self, **body: Any) -> dict[str, Any]:
        response = await self.send("POST", "/webhooks", json=body_of(**body))
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def send(
        self, method: str, path: str, *, role: str = "admin", json: Any = None
    ) -> httpx.Response:
        return await self.api.client.request(
            method, f"/api/v1{path}", json=json, headers=self.headers(role)
        )

    async def stored(self) -> list[dict[str, Any]]:
        async with self.api.broker.database.read() as tx:
            return [dict(row._mapping) for row in await tx.execute(sa.select(_s))]


def body_of(**fields: Any) -> dict[str, Any]:
    return {"name": "chat", "url": URL, "event_types": ["stack.*"], **fields}


@pytest.fixture
async def fleet(api: Api) -> Fleet:
    agent, agent_pak = await api.create_agent("edge-1")
    _, generator_pak = await api.create_generator()
    return Fleet(api, agent["id"], agent_pak, generator_pak)


ROUTES = [
    ("GET", "/webhooks"),
    ("POST", "/webhooks"),
    ("GET", "/webhooks/event-types"),
    ("GET", "/webhooks/{id}"),
    ("PUT", "/webhooks/{id}"),
    ("DELETE", "/webhooks/{id}"),
    ("POST", "/webhooks/{id}/test"),
]


@pytest.mark.parametrize("role", ["agent", "generator"])
@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_only_admins_may_call(fleet: Fleet, role: str, method: str, path: str) -> None:
    created = await fleet.create(auth_header=AUTH, secret=SECRET)
    before = await fleet.stored()
    json = {"name": "x"} if method == "PUT" else body_of() if method == "POST" else None
    response = await fleet.send(method, path.format(id=created["id"]), role=role, json=json)
    assert_error(response, 403, "admin_required")
    assert await fleet.stored() == before


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_anonymous_callers_are_refused(api: Api, method: str, path: str) -> None:
    response = await api.client.request(method, "/api/v1" + path.format(id=uuid.uuid4()))
    assert_error(response, 401)


async def test_event_types_are_the_catalogue(fleet: Fleet) -> None:
    response = await fleet.send("GET", "/webhooks/event-types")
    assert response.status_code == 200
    # The order itself is pinned in tests/broker/domain/test_webhook_matching.py.
    assert response.json() == list(events.CATALOGUE)


async def test_create_answers_no_secret_and_stores_none_in_plain_text(fleet: Fleet) -> None:
    created = await fleet.create(auth_header=AUTH, secret=SECRET, event_types=["*"])
    assert created["has_url"] and created["has_auth_header"] and created["has_secret"]
    assert "filters" not in created  # the published SDK cannot parse a null
    assert created["target_labels"] is None
    assert (created["enabled"], created["max_retries"], created["timeout_seconds"]) == (
        True,
        5,
        30,
    )
    assert created["created_by"] == "admin"
    listed = (await fleet.send("GET", "/webhooks")).json()
    got = (await fleet.send("GET", f"/webhooks/{created['id']}")).json()
    assert listed == [created] and got == created
    for answer in (created, listed, got):
        text = str(answer)
        assert "url-secret-token" not in text and "auth-header-secret" not in text
        assert SECRET not in text
    [row] = await fleet.stored()
    for column, plaintext in (
        ("url_encrypted", URL),
        ("auth_header_encrypted", AUTH),
        ("secret_encrypted", SECRET),
    ):
        assert plaintext.encode() not in row[column]
        assert row[column][0] == 0x01  # the versioned AES-GCM blob
    trail = await fleet.api.audit(action="webhook.created")
    assert [entry["resource_id"] for entry in trail] == [created["id"]]
    assert "url-secret-token" not in str(trail) and SECRET not in str(trail)


async def test_filters_and_target_labels_are_answered_when_set(fleet: Fleet) -> None:
    stack = await fleet.api.client.post(
        "/api/v1/stacks", json={"name": "web"}, headers=fleet.api.admin
    )
    filters = {"agent_id": fleet.agent_id, "stack_id": stack.json()["id"], "labels": {"env": "p"}}
    created = await fleet.create(filters=filters, target_labels=["edge", "edge"])
    assert created["filters"] == filters
    assert created["target_labels"] == ["edge"]
    only_labels = await fleet.create(filters={"labels": {"env": "p"}})
    assert only_labels["filters"] == {"labels": {"env": "p"}}


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"name": ""}, "name"),
        ({"url": "ftp://hooks.example/x"}, "url"),
        ({"url": "https://"}, "url"),
        ({"event_types": []}, "event_types"),
        ({"event_types": ["health.*"]}, "event_types"),
        ({"auth_header": "a\nb"}, "auth_header"),
        ({"secret": "too-short"}, "secret"),
        ({"filters": {"labels": {"k": "v w"}}}, "filters.labels"),
        ({"target_labels": [""]}, "target_labels"),
        ({"max_retries": 21}, "max_retries"),
        ({"timeout_seconds": 61}, "timeout_seconds"),
        ({"filters": {"agent_id": str(uuid.uuid4())}}, "filters.agent_id"),
        ({"filters": {"stack_id": str(uuid.uuid4())}}, "filters.stack_id"),
    ],
)
async def test_bad_input_is_named_and_changes_nothing(
    fleet: Fleet, fields: dict[str, Any], named: str
) -> None:
    response = await fleet.send("POST", "/webhooks", json=body_of(**fields))
    body = assert_error(response, 422, "validation_failed")
    assert named in body["details"]["fields"]
    assert await fleet.stored() == []
    assert await fleet.api.audit(action="webhook.created") == []


async def test_every_problem_is_reported_at_once(fleet: Fleet) -> None:
    response = await fleet.send(
        "POST", "/webhooks", json=body_of(name=" ", url="x", event_types=["nope"], secret="s")
    )
    body = assert_error(response, 422, "validation_failed")
    assert set(body["details"]["fields"]) == {"name", "url", "event_types", "secret"}


@pytest.mark.parametrize(
    "body",
    [
        {"url": URL, "event_types": ["*"]},  # no name
        {"name": "x", "url": URL, "event_types": "stack.*"},
        {"name": "x", "url": URL, "event_types": ["*"], "secret": 1234567890123456789},
        {"name": "x", "url": URL, "event_types": ["*"], "filters": {"agent_id": "nope"}},
    ],
)
async def test_malformed_bodies_are_refused(fleet: Fleet, body: dict[str, Any]) -> None:
    response = await fleet.send("POST", "/webhooks", json=body)
    assert response.status_code in (400, 422), response.text
    assert await fleet.stored() == []


async def test_denied_networks_apply_to_literal_addresses(fleet: Fleet) -> None:
    live = fleet.api.broker.app.state.ctx.settings
    before = live.current
    live.current = msgspec.structs.replace(
        before,
        broker=msgspec.structs.replace(before.broker, webhook_denied_networks=["10.0.0.0/8"]),
    )
    try:
        refused = await fleet.send("POST", "/webhooks", json=body_of(url="http://10.9.8.7/h"))
        body = assert_error(refused, 422, "validation_failed")
        assert "denied" in body["details"]["fields"]["url"]
        await fleet.create(url="http://192.168.1.1/h")
    finally:
        live.current = before
    await fleet.create(url="http://10.9.8.7/h")


async def test_unknown_subscriptions_are_404(fleet: Fleet) -> None:
    missing = uuid.uuid4()
    for method, path in ROUTES[3:]:
        json: dict[str, Any] | None = {} if method == "PUT" else None
        response = await fleet.send(method, path.format(id=missing), json=json)
        assert_error(response, 404, "webhook_not_found")


async def test_update_changes_only_what_is_sent(fleet: Fleet) -> None:
    created = await fleet.create(auth_header=AUTH, secret=SECRET, target_labels=["edge"])
    path = f"/webhooks/{created['id']}"
    unchanged = await fleet.send("PUT", path, json={})
    assert unchanged.status_code == 200 and unchanged.json() == created
    [before] = await fleet.stored()

    renamed = await fleet.send(
        "PUT", path, json={"name": "ops", "enabled": False, "timeout_seconds": 5}
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json() | {"updated_at": None} == created | {
        "name": "ops",
        "enabled": False,
        "timeout_seconds": 5,
        "updated_at": None,
    }
    [after] = await fleet.stored()
    assert after["url_encrypted"] == before["url_encrypted"]

    cleared = await fleet.send(
        "PUT", path, json={"auth_header": None, "secret": None, "target_labels": None}
    )
    assert cleared.status_code == 200
    answer = cleared.json()
    assert (answer["has_auth_header"], answer["has_secret"], answer["target_labels"]) == (
        False,
        False,
        None,
    )
    [row] = await fleet.stored()
    assert row["auth_header_encrypted"] is None and row["secret_encrypted"] is None

    moved = await fleet.send("PUT", path, json={"url": "https://elsewhere.example/x"})
    assert moved.status_code == 200
    [row] = await fleet.stored()
    assert row["url_encrypted"] != before["url_encrypted"]
    assert b"elsewhere" not in row["url_encrypted"]
    trail = await fleet.api.audit(action="webhook.updated")
    assert len(trail) == 4
    assert "elsewhere" not in str(trail)


async def test_filters_can_be_set_and_cleared(fleet: Fleet) -> None:
    created = await fleet.create()
    path = f"/webhooks/{created['id']}"
    set_ = await fleet.send("PUT", path, json={"filters": {"agent_id": fleet.agent_id}})
    assert set_.json()["filters"] == {"agent_id": fleet.agent_id}
    cleared = await fleet.send("PUT", path, json={"filters": None})
    assert "filters" not in cleared.json()


async def test_a_bad_update_changes_nothing(fleet: Fleet) -> None:
    created = await fleet.create()
    [before] = await fleet.stored()
    response = await fleet.send(
        "PUT",
        f"/webhooks/{created['id']}",
        json={"name": "ok", "url": "ftp://x", "event_types": [], "max_retries": -1},
    )
    body = assert_error(response, 422, "validation_failed")
    assert set(body["details"]["fields"]) == {"url", "event_types", "max_retries"}
    assert await fleet.stored() == [before]
    unknown = await fleet.send(
        "PUT", f"/webhooks/{created['id']}", json={"filters": {"stack_id": str(uuid.uuid4())}}
    )
    assert_error(unknown, 422, "validation_failed")
    assert await fleet.stored() == [before]
    assert await fleet.api.audit(action="webhook.updated") == []


async def test_delete_takes_queued_deliveries_along(fleet: Fleet) -> None:
    created = await fleet.create(event_types=["stack.*"], target_labels=["nobody-has-this"])
    stack = await fleet.api.client.post(
        "/api/v1/stacks", json={"name": "web"}, headers=fleet.api.admin
    )
    assert stack.status_code == 201
    assert await fleet.api.count(tables.webhook_deliveries) == 1
    response = await fleet.send("DELETE", f"/webhooks/{created['id']}")
    assert response.status_code == 204
    assert await fleet.stored() == []
    assert await fleet.api.count(tables.webhook_deliveries) == 0
    again = await fleet.send("DELETE", f"/webhooks/{created['id']}")
    assert_error(again, 404, "webhook_not_found")
    assert len(await fleet.api.audit(action="webhook.deleted")) == 1


async def test_a_test_delivery_carries_every_header_and_queues_nothing(fleet: Fleet) -> None:
    async with WebhookReceiver() as receiver:
        created = await fleet.create(url=receiver.url, auth_header=AUTH, secret=SECRET)
        disabled = await fleet.send("PUT", f"/webhooks/{created['id']}", json={"enabled": False})
        assert disabled.status_code == 200
        response = await fleet.send("POST", f"/webhooks/{created['id']}/test")
        assert response.status_code == 200, response.text
        assert response.json() == {
            "success": True,
            "status_code": 204,
            "message": "Test delivery successful",
        }
        [received] = receiver.requests
    envelope = received.envelope()
    assert envelope["event_type"] == "webhook.test"
    assert envelope["data"] == {
        "message": "This is a test webhook delivery from Brokkr",
        "subscription_id": created["id"],
    }
    assert received.headers["x-brokkr-event"] == "webhook.test"
    uuid.UUID(received.headers["x-brokkr-delivery-id"])
    assert received.headers["authorization"] == AUTH
    assert received.headers["content-type"] == "application/json"
    assert received.signed_with(SECRET)
    assert await fleet.api.count(tables.webhook_deliveries) == 0
    trail = await fleet.api.audit(action="webhook.tested")
    assert [entry["details"] for entry in trail] == [{"success": True, "status_code": 204}]


async def test_without_a_secret_a_test_delivery_is_not_signed(fleet: Fleet) -> None:
    async with WebhookReceiver() as receiver:
        created = await fleet.create(url=receiver.url)
        response = await fleet.send("POST", f"/webhooks/{created['id']}/test")
        assert response.status_code == 200
        [received] = receiver.requests
    assert signing.HEADER.lower() not in received.headers
    assert "authorization" not in received.headers


@pytest.mark.parametrize("status", [302, 410, 500])
async def test_a_refused_test_delivery_is_400_with_the_answer(fleet: Fleet, status: int) -> None:
    async with WebhookReceiver(answer=lambda _: Reply(status=status)) as receiver:
        created = await fleet.create(url=receiver.url)
        response = await fleet.send("POST", f"/webhooks/{created['id']}/test")
        assert len(receiver.requests) == 1  # a redirect is not followed
    body = assert_error(response, 400, "webhook_test_failed")
    assert body["message"].startswith(f"endpoint returned HTTP {status}")
    assert body["details"] == {"status_code": status, "body": f"answered {status}"}
    trail = await fleet.api.audit(action="webhook.tested")
    assert [entry["details"] for entry in trail] == [{"success": False, "status_code": status}]


async def test_an_unreachable_endpoint_fails_the_test(fleet: Fleet) -> None:
    created = await fleet.create(url=f"http://127.0.0.1:{closed_port()}/hook")
    response = await fleet.send("POST", f"/webhooks/{created['id']}/test")
    body = assert_error(response, 400, "webhook_test_failed")
    assert body["message"].startswith("request failed:")
    assert "details" not in body or body["details"] is None


async def test_a_slow_endpoint_times_out_per_subscription(fleet: Fleet) -> None:
    async with WebhookReceiver(answer=lambda _: Reply(delay=5)) as receiver:
        created = await fleet.create(url=receiver.url, timeout_seconds=1)
        response = await fleet.send("POST", f"/webhooks/{created['id']}/test")
    body = assert_error(response, 400, "webhook_test_failed")
    assert body["message"] == "request failed: no answer within 1 s"
