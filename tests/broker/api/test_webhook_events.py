"""The transactional outbox (D18), on both databases: every event of the catalogue, caused
through the API, queues one delivery per matching enabled subscription in the transaction of
its change; a change that fails queues nothing; filters, disabled subscriptions and target
labels are applied at emission.

Subscriptions here carry a target label no agent has, so the broker's own worker never
touches their deliveries: the rows stay exactly as emission wrote them.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import sqlalchemy as sa

from brokkr.broker.db import tables
from tests.agent.waiting import eventually
from tests.broker.conftest import Api, assert_error, auth
from tests.broker.jobs.test_webhook_delivery import SECRET, fast
from tests.fakes.webhook_receiver import WebhookReceiver

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n"
TEMPLATE = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ name }}\n"
PARKED = ["parked-for-the-test"]
_d = tables.webhook_deliveries


async def subscribe(api: Api, **body: Any) -> str:
    body = {"name": "all", "url": "http://127.0.0.1:9/h", "event_types": ["*"], **body}
    body.setdefault("target_labels", PARKED)
    response = await api.client.post("/api/v1/webhooks", json=body, headers=api.admin)
    assert response.status_code == 201, response.text
    subscription_id: str = response.json()["id"]
    return subscription_id


async def deliveries(api: Api) -> list[dict[str, Any]]:
    async with api.broker.database.read() as tx:
        rows = await tx.execute(sa.select(_d).order_by(_d.c.created_at, _d.c.event_type))
        return [dict(row._mapping) for row in rows]


async def envelopes(api: Api, subscription_id: str | None = None) -> list[dict[str, Any]]:
    return [
        json.loads(row["payload"])
        for row in await deliveries(api)
        if subscription_id is None or str(row["subscription_id"]) == subscription_id
    ]


async def ok(api: Api, method: str, path: str, json: Any = None, pak: str | None = None) -> Any:
    headers = api.admin if pak is None else auth(pak)
    response = await api.client.request(method, f"/api/v1{path}", json=json, headers=headers)
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


async def cause_every_event(api: Api) -> dict[str, Any]:
    """Cause each event of the catalogue through the API; what was made, by name."""
    agent, agent_pak = await api.create_agent()
    _, generator_pak = await api.create_generator()
    stack = await ok(api, "POST", "/stacks", {"name": "web"}, pak=generator_pak)
    pushed = await ok(
        api,
        "POST",
        f"/stacks/{stack['id']}/deployment-objects",
        {"yaml_content": CONFIGMAP},
        pak=generator_pak,
    )
    template = await ok(
        api,
        "POST",
        "/templates",
        {"name": "tpl", "template_content": TEMPLATE, "parameters_schema": "{}"},
    )
    newer = await ok(
        api,
        "PUT",
        f"/templates/{template['id']}",
        {"template_content": TEMPLATE, "parameters_schema": "{}"},
    )
    rendered = await ok(
        api,
        "POST",
        f"/stacks/{stack['id']}/deployment-objects/from-template",
        {"template_id": newer["id"], "parameters": {"name": "x"}},
    )
    await ok(api, "DELETE", f"/templates/{template['id']}")
    await ok(api, "POST", f"/agents/{agent['id']}/targets", {"stack_id": stack["id"]})
    for status in ("SUCCESS", "FAILURE"):
        await ok(
            api,
            "POST",
            f"/agents/{agent['id']}/events",
            {"deployment_object_id": rendered["id"], "status": status, "message": status},
            pak=agent_pak,
        )
    for success in (True, False):
        order = await ok(
            api,
            "POST",
            "/work-orders",
            {"work_type": "custom", "yaml_content": "kind: Job", "target_agent_ids": [agent["id"]]},
        )
        await ok(
            api, "POST", f"/work-orders/{order['id']}/claim", {"agent_id": agent["id"]}, agent_pak
        )
        await ok(
            api,
            "POST",
            f"/work-orders/{order['id']}/complete",
            {"success": success, "retryable": False, "message": "done"},
            agent_pak,
        )
    await ok(api, "DELETE", f"/stacks/{stack['id']}", pak=generator_pak)
    state = await ok(api, "GET", f"/agents/{agent['id']}/target-state", pak=agent_pak)
    [marker] = [item for item in state if item["is_deletion_marker"]]
    await ok(
        api,
        "POST",
        f"/agents/{agent['id']}/events",
        {"deployment_object_id": marker["id"], "status": "SUCCESS"},
        pak=agent_pak,
    )
    await ok(api, "DELETE", f"/agents/{agent['id']}")

    return {
        "agent": agent,
        "stack": stack,
        "pushed": pushed,
        "template": template,
        "rendered": rendered,
        "marker": marker,
    }


async def test_every_catalogue_event_is_queued_with_its_data(api: Api) -> None:
    await subscribe(api)
    made = await cause_every_event(api)
    agent, stack, pushed, template = made["agent"], made["stack"], made["pushed"], made["template"]
    rendered, marker = made["rendered"], made["marker"]

    found = await envelopes(api)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for envelope in found:
        by_type.setdefault(envelope["event_type"], []).append(envelope["data"])
    catalogue = await ok(api, "GET", "/webhooks/event-types")
    assert set(by_type) == set(catalogue)
    assert len({envelope["id"] for envelope in found}) == len(found)
    rows = await deliveries(api)
    assert all(
        (row["status"], row["attempts"], row["next_retry_at"], row["target_labels"])
        == ("pending", 0, None, PARKED)
        for row in rows
    )
    assert all(str(row["event_id"]) == json.loads(row["payload"])["id"] for row in rows)

    agent_id, stack_id = agent["id"], stack["id"]
    [registered] = by_type["agent.registered"]
    assert registered == {
        "agent_id": agent_id,
        "name": "agent-1",
        "cluster_name": "cluster-1",
        "status": "INACTIVE",
        "created_at": agent["created_at"],
    }
    assert set(by_type["agent.deregistered"][0]) == {"agent_id", "deleted_at"}
    assert by_type["stack.created"] == [
        {
            "stack_id": stack_id,
            "name": "web",
            "description": None,
            "created_at": stack["created_at"],
        }
    ]
    assert [data["stack_id"] for data in by_type["stack.deleted"]] == [stack_id]
    assert by_type["deployment.created"] == [
        {
            "deployment_object_id": made["id"],
            "stack_id": stack_id,
            "sequence_id": made["sequence_id"],
            "created_at": made["created_at"],
        }
        for made in (pushed, rendered)
    ]
    applied = by_type["deployment.applied"]
    assert [data["deployment_object_id"] for data in applied] == [rendered["id"], marker["id"]]
    assert set(applied[0]) == {
        "agent_event_id",
        "agent_id",
        "deployment_object_id",
        "stack_id",
        "event_type",
        "status",
        "message",
        "created_at",
    }
    assert (applied[0]["status"], applied[0]["stack_id"]) == ("SUCCESS", stack_id)
    [failed] = by_type["deployment.failed"]
    assert (failed["status"], failed["message"], failed["agent_id"]) == (
        "FAILURE",
        "FAILURE",
        agent_id,
    )
    # The stack's deletion, then this agent's acknowledgement of its marker.
    assert [
        (data["deployment_object_id"], data["agent_id"]) for data in by_type["deployment.deleted"]
    ] == [(marker["id"], None), (marker["id"], agent_id)]
    assert all(data["stack_id"] == stack_id for data in by_type["deployment.deleted"])
    assert len(by_type["workorder.created"]) == 2
    assert [data["agent_id"] for data in by_type["workorder.claimed"]] == [agent_id, agent_id]
    [completed] = by_type["workorder.completed"]
    [failed_order] = by_type["workorder.failed"]
    assert (completed["success"], failed_order["success"]) == (True, False)
    assert completed["result_message"] == "done" and completed["agent_id"] == agent_id
    # The real completion time, not the order's creation time (flaw 9).
    assert completed["completed_at"] > by_type["workorder.created"][0]["created_at"]
    assert [data["template_id"] for data in by_type["template.created"]] == [template["id"]]
    assert [data["version"] for data in by_type["template.updated"]] == [2]
    assert [data["template_id"] for data in by_type["template.deleted"]] == [template["id"]]


async def test_a_change_that_fails_queues_nothing(api: Api) -> None:
    await subscribe(api)
    _, generator_pak = await api.create_generator()
    await ok(api, "POST", "/stacks", {"name": "web"}, pak=generator_pak)
    before = await deliveries(api)
    taken = await api.client.post(
        "/api/v1/stacks", json={"name": "web"}, headers=auth(generator_pak)
    )
    assert_error(taken, 409)
    assert await deliveries(api) == before


async def test_patterns_filters_and_enabled_decide_who_receives(api: Api) -> None:
    web_agent, _ = await api.create_agent("web-agent")
    other_agent, _ = await api.create_agent("other-agent")
    await ok(api, "POST", f"/agents/{web_agent['id']}/annotations", {"key": "env", "value": "p"})
    by_id = await subscribe(api, event_types=["agent.*"], filters={"agent_id": web_agent["id"]})
    by_label = await subscribe(api, event_types=["agent.*"], filters={"labels": {"env": "p"}})
    stacks_only = await subscribe(api, event_types=["stack.*"])
    disabled = await subscribe(api, event_types=["*"])
    await ok(api, "PUT", f"/webhooks/{disabled}", {"enabled": False})
    broker_side = await subscribe(api, event_types=["agent.deregistered"], target_labels=[])

    for agent in (web_agent, other_agent):
        await ok(api, "DELETE", f"/agents/{agent['id']}")

    assert [e["data"]["agent_id"] for e in await envelopes(api, by_id)] == [web_agent["id"]]
    assert [e["data"]["agent_id"] for e in await envelopes(api, by_label)] == [web_agent["id"]]
    assert await envelopes(api, stacks_only) == []
    assert await envelopes(api, disabled) == []
    queued = [row for row in await deliveries(api) if str(row["subscription_id"]) == broker_side]
    assert len(queued) == 2 and all(row["target_labels"] is None for row in queued)


async def test_one_event_has_one_id_for_every_subscription(api: Api) -> None:
    first = await subscribe(api, event_types=["agent.registered"])
    second = await subscribe(api, event_types=["agent.*"], target_labels=["a", "b"])
    await api.create_agent()
    rows = await deliveries(api)
    assert {str(row["subscription_id"]) for row in rows} == {first, second}
    assert len({row["event_id"] for row in rows}) == 1
    assert len({row["payload"] for row in rows}) == 1
    assert {tuple(row["target_labels"]) for row in rows} == {tuple(PARKED), ("a", "b")}
    uuid.UUID(json.loads(rows[0]["payload"])["id"])


async def test_a_receiver_gets_every_event_type_once_signed(api: Api) -> None:
    """Delivered by the broker's own worker to a real HTTP receiver: each event exactly once,
    each with a valid signature, every type of the catalogue among them."""
    async with WebhookReceiver() as receiver:
        with fast(api):
            await subscribe(api, url=receiver.url, secret=SECRET, target_labels=None)
            await cause_every_event(api)
            queued = len(await deliveries(api))

            async def delivered() -> bool:
                rows = await deliveries(api)
                return all(row["status"] == "success" for row in rows)

            await eventually(delivered, what="every delivery made")
        received = list(receiver.requests)
    catalogue = await ok(api, "GET", "/webhooks/event-types")
    event_ids = [request.envelope()["id"] for request in received]
    assert len(received) == queued
    assert len(set(event_ids)) == len(event_ids)
    assert {request.envelope()["event_type"] for request in received} == set(catalogue)
    assert all(request.signed_with(SECRET) for request in received)
