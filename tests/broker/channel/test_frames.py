"""What an agent's frames do, in the reference agent's shapes (agent.md §14.5): heartbeat,
agent_event (the REST use case: audit and webhook deliveries included), agent_health,
k8s_event, pod_log_line, log_gap; acknowledgements (ok, and ok false with the reason); bad
frames dropped and counted while the same and another agent's connections keep working."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from brokkr.broker.db import tables
from tests.broker.api.test_webhook_events import deliveries, subscribe
from tests.broker.channel.conftest import Agent, Fleet, acked, eventually, next_frame, send
from tests.broker.conftest import limits

NIL = "00000000-0000-0000-0000-000000000000"
NOW = "2025-06-01T12:00:00Z"


def fresh() -> str:
    return datetime.now(UTC).isoformat()


def agent_event(agent: Agent, object_id: str, status: str = "SUCCESS") -> dict[str, Any]:
    return {
        "id": NIL,
        "created_at": NOW,
        "updated_at": NOW,
        "deleted_at": None,
        "agent_id": agent.id,
        "deployment_object_id": object_id,
        "event_type": "DEPLOY",
        "status": status,
        "message": "applied",
    }


def k8s_event(agent: Agent, stack_id: str) -> dict[str, Any]:
    return {
        "agent_id": agent.id,
        "stack_id": stack_id,
        "observed_at": fresh(),
        "reason": "Pulled",
        "message": "image pulled",
        "event_type": "Normal",
        "source": "kubelet",
        "involved_object": {
            "api_version": "v1",
            "kind": "Pod",
            "namespace": "default",
            "name": "web-0",
            "uid": str(uuid.uuid4()),
        },
    }


def log_line(agent: Agent, stack_id: str, line: str = "hello") -> dict[str, Any]:
    return {
        "agent_id": agent.id,
        "stack_id": stack_id,
        "namespace": "default",
        "pod": "web-0",
        "container": "app",
        "ts": fresh(),
        "line": line,
    }


def dropped(fleet: Fleet, reason: str) -> float:
    metrics = fleet.api.broker.app.state.metrics
    value = metrics.registry.get_sample_value("brokkr_ws_frames_dropped_total", {"reason": reason})
    return float(value or 0.0)


async def served_agent(fleet: Fleet, name: str = "edge-1") -> tuple[Agent, str, str]:
    agent = await fleet.agent(name)
    stack_id = await fleet.stack(f"web-{name}")
    object_id = await fleet.post_object(stack_id)
    await fleet.target(agent, stack_id)
    return agent, stack_id, object_id


async def test_heartbeat_records_the_heartbeat(fleet: Fleet) -> None:
    agent = await fleet.agent("edge-1")
    async with fleet.dial(agent) as ws:
        await ws.send(send("heartbeat", {"agent_id": agent.id, "sent_at": NOW}, ref="1"))
        assert (await acked(ws, "1"))["ok"] is True
    response = await fleet.api.client.get(f"/api/v1/agents/{agent.id}", headers=fleet.api.admin)
    assert response.json()["last_heartbeat"] is not None


async def test_agent_event_is_the_rest_report_with_audit_and_webhooks(fleet: Fleet) -> None:
    await subscribe(fleet.api, event_types=["deployment.applied"], target_labels=None)
    agent, stack_id, object_id = await served_agent(fleet)
    async with fleet.dial(agent) as ws:
        await ws.send(send("agent_event", agent_event(agent, object_id), ref="e1"))
        assert await acked(ws, "e1") == {"ref": "e1", "ok": True}
    events = await fleet.api.client.get(
        f"/api/v1/agents/{agent.id}/events", headers=fleet.api.admin
    )
    [event] = events.json()
    assert (event["status"], event["message"], event["id"]) == ("SUCCESS", "applied", event["id"])
    assert event["id"] != NIL
    audit = await fleet.api.audit(action="agent_event.created")
    assert [entry["resource_id"] for entry in audit] == [object_id]
    applied = [
        row for row in await deliveries(fleet.api) if row["event_type"] == "deployment.applied"
    ]
    assert len(applied) == 1
    assert json.loads(applied[0]["payload"])["data"]["stack_id"] == stack_id


async def test_refused_agent_event_is_acked_false_and_stores_nothing(fleet: Fleet) -> None:
    agent, _, _ = await served_agent(fleet)
    unknown = str(uuid.uuid4())
    async with fleet.dial(agent) as ws:
        await ws.send(send("agent_event", agent_event(agent, unknown), ref="x"))
        ack = await acked(ws, "x")
        await ws.send(
            send("agent_event", {**agent_event(agent, unknown), "status": "MAYBE"}, ref="y")
        )
        invalid = await acked(ws, "y")
    assert ack["ok"] is False and "served" in ack["error"]
    assert invalid["ok"] is False and invalid["error"]
    assert await fleet.api.count(tables.agent_events) == 0


async def test_agent_health_upserts_the_health_row(fleet: Fleet) -> None:
    agent, _, object_id = await served_agent(fleet)
    summary = json.dumps({"pods_ready": 1, "pods_total": 2, "conditions": ["ImagePullBackOff"]})
    body = {
        "id": NIL,
        "agent_id": agent.id,
        "deployment_object_id": object_id,
        "status": "degraded",
        "summary": summary,
        "checked_at": fresh(),
        "created_at": NOW,
        "updated_at": NOW,
    }
    async with fleet.dial(agent) as ws:
        await ws.send(send("agent_health", body, ref="h"))
        assert (await acked(ws, "h"))["ok"] is True
        await ws.send(send("agent_health", {**body, "summary": "{not json"}, ref="bad"))
        assert (await acked(ws, "bad"))["ok"] is False
    response = await fleet.api.client.get(
        f"/api/v1/deployment-objects/{object_id}/health", headers=fleet.api.admin
    )
    [row] = response.json()["health_records"]
    assert row["status"] == "degraded"
    assert json.loads(row["summary"])["conditions"] == ["ImagePullBackOff"]


async def test_telemetry_frames_are_stored(fleet: Fleet) -> None:
    agent, stack_id, _ = await served_agent(fleet)
    gap = {
        "agent_id": agent.id,
        "stack_id": stack_id,
        "since_ts": fresh(),
        "dropped_count": 3,
        "reason": "rate_limit",
    }
    async with fleet.dial(agent) as ws:
        await ws.send(send("k8s_event", k8s_event(agent, stack_id), ref="k"))
        assert (await acked(ws, "k"))["ok"] is True
        await ws.send(send("pod_log_line", log_line(agent, stack_id), ref="l"))
        assert (await acked(ws, "l"))["ok"] is True
        await ws.send(send("log_gap", gap, ref="g"))
        assert (await acked(ws, "g"))["ok"] is True

    async def stored() -> bool:
        events = await fleet.api.count(tables.agent_k8s_events)
        lines = await fleet.api.count(tables.agent_pod_logs)
        return (events, lines) == (1, 1)

    await eventually(stored)
    async with fleet.api.broker.database.read() as tx:
        row = (await tx.execute(sa.select(tables.agent_pod_logs))).one()
    assert (str(row.stack_id), row.pod, row.line) == (stack_id, "web-0", "hello")


async def test_bad_frames_are_dropped_and_counted_and_the_connections_stay(fleet: Fleet) -> None:
    agent, stack_id, _ = await served_agent(fleet)
    other, _, _ = await served_agent(fleet, "edge-2")
    foreign_stack = await fleet.stack("not-mine")
    heartbeat = {"agent_id": agent.id, "sent_at": NOW}
    bad: list[tuple[str, str | bytes]] = [
        ("not_json", "{nope"),
        ("binary", b"\x00\x01"),
        ("oversized", send("heartbeat", {**heartbeat, "pad": "x" * 2048})),
        ("invalid_envelope", json.dumps({"type": 5, "body": {}})),
        ("unknown_type", send("reboot", {})),
        ("downlink_type", send("work_order", {"id": NIL})),
        ("invalid_body", send("heartbeat", {"agent_id": "nope", "sent_at": NOW})),
        ("foreign_agent", send("heartbeat", {"agent_id": other.id, "sent_at": NOW})),
        ("not_associated", send("pod_log_line", log_line(agent, foreign_stack))),
    ]
    before = {reason: dropped(fleet, reason) for reason, _ in bad}
    with limits(fleet.api, ws_max_frame_bytes=1024):
        async with fleet.dial(agent) as ws, fleet.dial(other) as ws2:
            for _, frame in bad:
                await ws.send(frame)
            await ws.send(send("heartbeat", heartbeat, ref="after"))
            assert (await acked(ws, "after"))["ok"] is True
            await ws2.send(send("heartbeat", {"agent_id": other.id, "sent_at": NOW}, ref="o"))
            assert (await acked(ws2, "o"))["ok"] is True
    assert {reason: dropped(fleet, reason) - before[reason] for reason, _ in bad} == {
        reason: 1.0 for reason, _ in bad
    }
    assert await fleet.api.count(tables.agent_pod_logs) == 0


async def test_a_dropped_frame_with_a_ref_is_acked_false(fleet: Fleet) -> None:
    agent, _, _ = await served_agent(fleet)
    other = await fleet.agent("edge-2")
    async with fleet.dial(agent) as ws:
        await ws.send(send("heartbeat", {"agent_id": other.id, "sent_at": NOW}, ref="f"))
        ack = await acked(ws, "f")
    assert ack["ok"] is False and "agent_id" in ack["error"]


async def test_telemetry_over_the_rate_is_dropped(fleet: Fleet) -> None:
    agent, stack_id, _ = await served_agent(fleet)
    before = dropped(fleet, "rate_limited")
    with limits(fleet.api, ws_telemetry_frames_per_second=1):
        async with fleet.dial(agent) as ws:
            for index in range(5):
                await ws.send(send("pod_log_line", log_line(agent, stack_id, f"line {index}")))
            await ws.send(send("heartbeat", {"agent_id": agent.id, "sent_at": NOW}, ref="s"))
            await acked(ws, "s")
    # A burst of twice the rate passes, the rest is dropped.
    assert dropped(fleet, "rate_limited") - before == 3


async def test_frames_are_counted_by_type(fleet: Fleet) -> None:
    agent = await fleet.agent("edge-1")
    metrics = fleet.api.broker.app.state.metrics

    def count(direction: str, type_: str) -> float:
        labels = {"direction": direction, "type": type_}
        return float(metrics.registry.get_sample_value("brokkr_ws_messages_total", labels) or 0)

    before = (count("in", "heartbeat"), count("out", "ack"))
    async with fleet.dial(agent) as ws:
        await ws.send(send("heartbeat", {"agent_id": agent.id, "sent_at": NOW}, ref="c"))
        await next_frame(ws)
    assert (count("in", "heartbeat") - before[0], count("out", "ack") - before[1]) == (1, 1)
