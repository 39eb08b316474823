"""Every mutating route writes its audit record and, where it changes what an agent should run,
invalidates that agent's remembered target-state ETag right after its commit; where it revokes a
PAK, the key stops working on the very next request.

Table-driven over the app's routes: a mutating route missing from ``CASES`` fails
``test_every_mutating_route_has_a_case``, so a new endpoint cannot skip these guarantees. An
ETag the broker still trusts after a change is served as a stale 304, which is what the
state cases look for. Also covers the unit of work itself: nothing it declares survives a
rollback (audit, outbox) and nothing is forgotten before a commit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

import httpx
import pytest
import sqlalchemy as sa

from brokkr.broker.db import tables
from brokkr.broker.domain import events
from brokkr.broker.services.context import Context
from tests.broker.conftest import Api, auth
from tests.fakes.webhook_receiver import WebhookReceiver

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class World:
    """A generator with a stack holding one object, and an agent watching its target state."""

    api: Api
    generator_id: str
    generator_pak: str
    stack_id: str
    object_id: str
    agent_id: str
    agent_pak: str

    async def send(
        self, method: str, path: str, *, json: Any = None, pak: str | None = None
    ) -> httpx.Response:
        headers = self.api.admin if pak is None else auth(pak)
        return await self.api.client.request(method, f"/api/v1{path}", json=json, headers=headers)

    async def ok(self, method: str, path: str, *, json: Any = None) -> None:
        response = await self.send(method, path, json=json)
        assert response.status_code < 300, response.text

    async def poll(self, etag: str | None = None) -> httpx.Response:
        headers = auth(self.agent_pak)
        if etag is not None:
            headers["If-None-Match"] = etag
        return await self.api.client.get(
            f"/api/v1/agents/{self.agent_id}/target-state", headers=headers
        )


async def make_world(api: Api) -> World:
    generator, generator_pak = await api.create_generator()
    agent, agent_pak = await api.create_agent()
    stack = await api.client.post(
        "/api/v1/stacks", json={"name": "web"}, headers=auth(generator_pak)
    )
    assert stack.status_code == 201, stack.text
    created = await api.client.post(
        f"/api/v1/stacks/{stack.json()['id']}/deployment-objects",
        json={"yaml_content": CONFIGMAP.format(name="app")},
        headers=auth(generator_pak),
    )
    assert created.status_code == 201, created.text
    return World(
        api=api,
        generator_id=generator["id"],
        generator_pak=generator_pak,
        stack_id=stack.json()["id"],
        object_id=created.json()["id"],
        agent_id=agent["id"],
        agent_pak=agent_pak,
    )


Step = Callable[[World], Awaitable[Any]]


async def nothing(_: World) -> None:
    return None


async def associate_by_target(w: World) -> None:
    await w.ok("POST", f"/agents/{w.agent_id}/targets", json={"stack_id": w.stack_id})


async def label_both(w: World) -> None:
    await w.ok("POST", f"/agents/{w.agent_id}/labels", json={"label": "env:prod"})
    await w.ok("POST", f"/stacks/{w.stack_id}/labels", json={"label": "env:prod"})


async def annotate_both(w: World) -> None:
    await w.ok("POST", f"/agents/{w.agent_id}/annotations", json={"key": "tier", "value": "web"})
    await w.ok("POST", f"/stacks/{w.stack_id}/annotations", json={"key": "tier", "value": "web"})


async def label_agent(w: World) -> None:
    await w.ok("POST", f"/agents/{w.agent_id}/labels", json={"label": "env:prod"})


async def label_stack(w: World) -> None:
    await w.ok("POST", f"/stacks/{w.stack_id}/labels", json={"label": "env:prod"})


async def annotate_agent(w: World) -> None:
    await w.ok("POST", f"/agents/{w.agent_id}/annotations", json={"key": "tier", "value": "web"})


async def annotate_stack(w: World) -> None:
    await w.ok("POST", f"/stacks/{w.stack_id}/annotations", json={"key": "tier", "value": "web"})


TEMPLATE = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ name }}\n"


async def with_template(w: World) -> None:
    """A system template "tpl" carrying a label and an annotation."""
    body = {"name": "tpl", "template_content": TEMPLATE, "parameters_schema": "{}"}
    await w.ok("POST", "/templates", json=body)
    template_id = await find_template(w)
    await w.ok("POST", f"/templates/{template_id}/labels", json="env:prod")
    await w.ok("POST", f"/templates/{template_id}/annotations", json={"key": "k", "value": "v"})


async def with_instantiable_template(w: World) -> None:
    await associate_by_target(w)
    body = {"name": "tpl", "template_content": TEMPLATE, "parameters_schema": "{}"}
    await w.ok("POST", "/templates", json=body)


async def find_template(w: World) -> str:
    found = await w.send("GET", "/templates")
    template_id: str = next(t["id"] for t in found.json() if t["name"] == "tpl")
    return template_id


async def on_template(w: World, method: str, suffix: str = "", json: Any = None) -> httpx.Response:
    return await w.send(method, f"/templates/{await find_template(w)}{suffix}", json=json)


async def instantiate(w: World) -> httpx.Response:
    body = {"template_id": await find_template(w), "parameters": {"name": "rendered"}}
    return await w.send("POST", f"/stacks/{w.stack_id}/deployment-objects/from-template", json=body)


async def create_work_order(w: World) -> httpx.Response:
    body = {"work_type": "custom", "yaml_content": "kind: Job", "target_agent_ids": [w.agent_id]}
    return await w.send("POST", "/work-orders", json=body)


async def find_work_order(w: World) -> str:
    found = await w.send("GET", "/work-orders")
    order_id: str = found.json()[0]["id"]
    return order_id


async def with_work_order(w: World) -> None:
    assert (await create_work_order(w)).status_code == 201


async def with_claimed_work_order(w: World) -> None:
    await with_work_order(w)
    claim = {"agent_id": w.agent_id}
    await w.ok("POST", f"/work-orders/{await find_work_order(w)}/claim", json=claim)


async def on_work_order(
    w: World, method: str, suffix: str = "", json: Any = None
) -> httpx.Response:
    return await w.send(method, f"/work-orders/{await find_work_order(w)}{suffix}", json=json)


async def request_diagnostic(w: World) -> httpx.Response:
    body = {"agent_id": w.agent_id, "requested_by": "oncall"}
    return await w.send("POST", f"/deployment-objects/{w.object_id}/diagnostics", json=body)


async def with_diagnostic(w: World) -> None:
    await associate_by_target(w)
    assert (await request_diagnostic(w)).status_code == 201


async def with_claimed_diagnostic(w: World) -> None:
    await with_diagnostic(w)
    assert (await on_diagnostic(w, "/claim")).status_code == 200


async def on_diagnostic(w: World, suffix: str, json: Any = None) -> httpx.Response:
    """``suffix`` of the world's one diagnostic request, called by the world's agent."""
    found = await w.send("GET", f"/deployment-objects/{w.object_id}/diagnostics")
    request_id = found.json()[0]["id"]
    return await w.send("POST", f"/diagnostics/{request_id}{suffix}", json=json, pak=w.agent_pak)


async def create_webhook(w: World, url: str = "http://127.0.0.1:9/hook") -> httpx.Response:
    body = {"name": "chat", "url": url, "event_types": ["stack.*"], "secret": "s" * 16}
    return await w.send("POST", "/webhooks", json=body)


async def with_webhook(w: World) -> None:
    assert (await create_webhook(w)).status_code == 201


async def on_webhook(w: World, method: str, suffix: str = "", json: Any = None) -> httpx.Response:
    found = await w.send("GET", "/webhooks")
    return await w.send(method, f"/webhooks/{found.json()[0]['id']}{suffix}", json=json)


async def send_test_delivery(w: World) -> httpx.Response:
    """A subscription whose URL answers: the test delivery succeeds (and is audited)."""
    async with WebhookReceiver() as receiver:
        created = await create_webhook(w, receiver.url)
        assert created.status_code == 201, created.text
        return await w.send("POST", f"/webhooks/{created.json()['id']}/test")


async def report_delivery(w: World) -> httpx.Response:
    """The world's agent claims a delivery meant for its label and reports it delivered."""
    await w.ok("POST", f"/agents/{w.agent_id}/labels", json={"label": "edge"})
    ctx: Context = w.api.broker.app.state.ctx
    now = ctx.now()
    subscription_id, event_id = uuid.uuid4(), uuid.uuid4()
    async with ctx.database.transaction() as tx:
        await tx.execute(
            tables.webhook_subscriptions.insert().values(
                id=subscription_id,
                created_at=now,
                updated_at=now,
                name="edge-hook",
                url_encrypted=ctx.secrets.encrypt("http://127.0.0.1:9/hook"),
                event_types=["*"],
                target_labels=["edge"],
                enabled=True,
                max_retries=5,
                timeout_seconds=5,
            )
        )
        await tx.execute(
            tables.webhook_deliveries.insert().values(
                id=uuid.uuid4(),
                subscription_id=subscription_id,
                event_type="stack.created",
                event_id=event_id,
                payload=json.dumps({"id": str(event_id)}),
                target_labels=["edge"],
                status="pending",
                attempts=0,
                created_at=now,
            )
        )
    pending = await w.send("GET", f"/agents/{w.agent_id}/webhooks/pending", pak=w.agent_pak)
    (delivery,) = pending.json()
    result = {"success": True, "status_code": 204}
    return await w.send(
        "POST", f"/webhook-deliveries/{delivery['id']}/result", json=result, pak=w.agent_pak
    )


@dataclass(frozen=True)
class Case:
    method: str
    route: str
    # The audit action the call must record; None: deliberately not audited (say why).
    action: str | None
    call: Callable[[World], Awaitable[httpx.Response]]
    # Brings the world to where the call changes the agent's target state (when ``changes``).
    given: Step = nothing
    # True: the watching agent's remembered ETag must not answer 304 after the call.
    changes: bool = False
    # Whose PAK must stop working on the next request.
    revokes: Literal["agent", "generator"] | None = None


CASES = [
    Case(
        "POST",
        "/api/v1/agents",
        "agent.created",
        lambda w: w.send("POST", "/agents", json={"name": "edge-2", "cluster_name": "c"}),
    ),
    Case(
        "PUT",
        "/api/v1/agents/{id:uuid}",
        "agent.updated",
        lambda w: w.send("PUT", f"/agents/{w.agent_id}", json={"status": "ACTIVE"}),
    ),
    Case(
        "DELETE",
        "/api/v1/agents/{id:uuid}",
        "agent.deleted",
        lambda w: w.send("DELETE", f"/agents/{w.agent_id}"),
        revokes="agent",
    ),
    # Liveness only: auditing heartbeats would drown the trail.
    Case(
        "POST",
        "/api/v1/agents/{id:uuid}/heartbeat",
        None,
        lambda w: w.send("POST", f"/agents/{w.agent_id}/heartbeat", pak=w.agent_pak),
    ),
    Case(
        "POST",
        "/api/v1/agents/{id:uuid}/rotate-pak",
        "pak.rotated",
        lambda w: w.send("POST", f"/agents/{w.agent_id}/rotate-pak"),
        revokes="agent",
    ),
    Case(
        "POST",
        "/api/v1/agents/{id:uuid}/labels",
        "agent.label_added",
        lambda w: w.send("POST", f"/agents/{w.agent_id}/labels", json={"label": "env:prod"}),
        given=label_stack,
        changes=True,
    ),
    Case(
        "DELETE",
        "/api/v1/agents/{id:uuid}/labels/{label:path}",
        "agent.label_removed",
        lambda w: w.send("DELETE", f"/agents/{w.agent_id}/labels/env:prod"),
        given=label_both,
        changes=True,
    ),
    Case(
        "POST",
        "/api/v1/agents/{id:uuid}/annotations",
        "agent.annotation_added",
        lambda w: w.send(
            "POST", f"/agents/{w.agent_id}/annotations", json={"key": "tier", "value": "web"}
        ),
        given=annotate_stack,
        changes=True,
    ),
    Case(
        "DELETE",
        "/api/v1/agents/{id:uuid}/annotations/{key:path}",
        "agent.annotation_removed",
        lambda w: w.send("DELETE", f"/agents/{w.agent_id}/annotations/tier"),
        given=annotate_both,
        changes=True,
    ),
    Case(
        "POST",
        "/api/v1/agents/{id:uuid}/targets",
        "agent.target_added",
        lambda w: w.send("POST", f"/agents/{w.agent_id}/targets", json={"stack_id": w.stack_id}),
        changes=True,
    ),
    Case(
        "DELETE",
        "/api/v1/agents/{id:uuid}/targets/{stack_id:uuid}",
        "agent.target_removed",
        lambda w: w.send("DELETE", f"/agents/{w.agent_id}/targets/{w.stack_id}"),
        given=associate_by_target,
        changes=True,
    ),
    Case(
        "POST",
        "/api/v1/agents/{id:uuid}/events",
        "agent_event.created",
        lambda w: w.send(
            "POST",
            f"/agents/{w.agent_id}/events",
            json={"deployment_object_id": w.object_id, "status": "SUCCESS"},
            pak=w.agent_pak,
        ),
        given=associate_by_target,
        changes=True,
    ),
    Case(
        "POST",
        "/api/v1/generators",
        "generator.created",
        lambda w: w.send("POST", "/generators", json={"name": "other-ci"}),
    ),
    Case(
        "PUT",
        "/api/v1/generators/{id:uuid}",
        "generator.updated",
        lambda w: w.send("PUT", f"/generators/{w.generator_id}", json={"is_active": False}),
        revokes="generator",
    ),
    Case(
        "DELETE",
        "/api/v1/generators/{id:uuid}",
        "generator.deleted",
        lambda w: w.send("DELETE", f"/generators/{w.generator_id}"),
        given=associate_by_target,
        changes=True,
        revokes="generator",
    ),
    Case(
        "POST",
        "/api/v1/generators/{id:uuid}/rotate-pak",
        "pak.rotated",
        lambda w: w.send("POST", f"/generators/{w.generator_id}/rotate-pak"),
        revokes="generator",
    ),
    Case(
        "POST",
        "/api/v1/stacks",
        "stack.created",
        lambda w: w.send("POST", "/stacks", json={"name": "api"}, pak=w.generator_pak),
    ),
    Case(
        "PUT",
        "/api/v1/stacks/{id:uuid}",
        "stack.updated",
        lambda w: w.send("PUT", f"/stacks/{w.stack_id}", json={"description": "the web tier"}),
    ),
    Case(
        "DELETE",
        "/api/v1/stacks/{id:uuid}",
        "stack.deleted",
        lambda w: w.send("DELETE", f"/stacks/{w.stack_id}"),
        given=associate_by_target,
        changes=True,
    ),
    Case(
        "POST",
        "/api/v1/stacks/{id:uuid}/labels",
        "stack.label_added",
        lambda w: w.send("POST", f"/stacks/{w.stack_id}/labels", json={"label": "env:prod"}),
        given=label_agent,
        changes=True,
    ),
    Case(
        "DELETE",
        "/api/v1/stacks/{id:uuid}/labels/{label:path}",
        "stack.label_removed",
        lambda w: w.send("DELETE", f"/stacks/{w.stack_id}/labels/env:prod"),
        given=label_both,
        changes=True,
    ),
    Case(
        "POST",
        "/api/v1/stacks/{id:uuid}/annotations",
        "stack.annotation_added",
        lambda w: w.send(
            "POST", f"/stacks/{w.stack_id}/annotations", json={"key": "tier", "value": "web"}
        ),
        given=annotate_agent,
        changes=True,
    ),
    Case(
        "DELETE",
        "/api/v1/stacks/{id:uuid}/annotations/{key:path}",
        "stack.annotation_removed",
        lambda w: w.send("DELETE", f"/stacks/{w.stack_id}/annotations/tier"),
        given=annotate_both,
        changes=True,
    ),
    Case(
        "POST",
        "/api/v1/stacks/{id:uuid}/deployment-objects",
        "deployment.created",
        lambda w: w.send(
            "POST",
            f"/stacks/{w.stack_id}/deployment-objects",
            json={"yaml_content": CONFIGMAP.format(name="app-2")},
            pak=w.generator_pak,
        ),
        given=associate_by_target,
        changes=True,
    ),
    # Re-reads the (here empty) configuration: nothing hot differs, the audit row is written.
    Case(
        "POST",
        "/api/v1/admin/config/reload",
        "config.reloaded",
        lambda w: w.send("POST", "/admin/config/reload"),
    ),
    Case(
        "POST",
        "/api/v1/templates",
        "template.created",
        lambda w: w.send(
            "POST",
            "/templates",
            json={"name": "t", "template_content": "a: 1\n", "parameters_schema": "{}"},
            pak=w.generator_pak,
        ),
    ),
    Case(
        "PUT",
        "/api/v1/templates/{id:uuid}",
        "template.updated",
        lambda w: on_template(
            w, "PUT", json={"template_content": "a: 2\n", "parameters_schema": "{}"}
        ),
        given=with_template,
    ),
    Case(
        "DELETE",
        "/api/v1/templates/{id:uuid}",
        "template.deleted",
        lambda w: on_template(w, "DELETE"),
        given=with_template,
    ),
    Case(
        "POST",
        "/api/v1/templates/{id:uuid}/labels",
        "template.label_added",
        lambda w: on_template(w, "POST", "/labels", json="tier:web"),
        given=with_template,
    ),
    Case(
        "DELETE",
        "/api/v1/templates/{id:uuid}/labels/{label:path}",
        "template.label_removed",
        lambda w: on_template(w, "DELETE", "/labels/env:prod"),
        given=with_template,
    ),
    Case(
        "POST",
        "/api/v1/templates/{id:uuid}/annotations",
        "template.annotation_added",
        lambda w: on_template(w, "POST", "/annotations", json={"key": "k2", "value": "v"}),
        given=with_template,
    ),
    Case(
        "DELETE",
        "/api/v1/templates/{id:uuid}/annotations/{key:path}",
        "template.annotation_removed",
        lambda w: on_template(w, "DELETE", "/annotations/k"),
        given=with_template,
    ),
    # Renders without storing anything: a read that is a POST because it carries parameters.
    Case(
        "POST",
        "/api/v1/templates/{id:uuid}/render",
        None,
        lambda w: on_template(w, "POST", "/render", json={"parameters": {"name": "x"}}),
        given=with_template,
    ),
    Case(
        "POST",
        "/api/v1/stacks/{stack_id:uuid}/deployment-objects/from-template",
        "deployment.created",
        instantiate,
        given=with_instantiable_template,
        changes=True,
    ),
    Case("POST", "/api/v1/work-orders", "work_order.created", create_work_order),
    Case(
        "DELETE",
        "/api/v1/work-orders/{id:uuid}",
        "work_order.deleted",
        lambda w: on_work_order(w, "DELETE"),
        given=with_work_order,
    ),
    Case(
        "POST",
        "/api/v1/work-orders/{id:uuid}/claim",
        "work_order.claimed",
        lambda w: on_work_order(w, "POST", "/claim", json={"agent_id": w.agent_id}),
        given=with_work_order,
    ),
    Case(
        "POST",
        "/api/v1/work-orders/{id:uuid}/complete",
        "work_order.completed",
        lambda w: on_work_order(w, "POST", "/complete", json={"success": True}),
        given=with_claimed_work_order,
    ),
    Case("POST", "/api/v1/webhooks", "webhook.created", create_webhook),
    Case(
        "PUT",
        "/api/v1/webhooks/{id:uuid}",
        "webhook.updated",
        lambda w: on_webhook(w, "PUT", json={"enabled": False}),
        given=with_webhook,
    ),
    Case(
        "DELETE",
        "/api/v1/webhooks/{id:uuid}",
        "webhook.deleted",
        lambda w: on_webhook(w, "DELETE"),
        given=with_webhook,
    ),
    Case("POST", "/api/v1/webhooks/{id:uuid}/test", "webhook.tested", send_test_delivery),
    Case(
        "POST",
        "/api/v1/deployment-objects/{id:uuid}/diagnostics",
        "diagnostic.requested",
        request_diagnostic,
        given=associate_by_target,
    ),
    Case(
        "POST",
        "/api/v1/diagnostics/{id:uuid}/claim",
        "diagnostic.claimed",
        lambda w: on_diagnostic(w, "/claim"),
        given=with_diagnostic,
    ),
    Case(
        "POST",
        "/api/v1/diagnostics/{id:uuid}/result",
        "diagnostic.completed",
        lambda w: on_diagnostic(
            w,
            "/result",
            json={"pod_statuses": "[]", "events": "[]", "collected_at": "2025-01-02T10:00:00Z"},
        ),
        given=with_claimed_diagnostic,
    ),
    # Telemetry sent every reporting interval: auditing it would drown the trail, and the health
    # row itself records which agent said what and when.
    Case(
        "PATCH",
        "/api/v1/agents/{id:uuid}/health-status",
        None,
        lambda w: w.send(
            "PATCH",
            f"/agents/{w.agent_id}/health-status",
            json={
                "deployment_objects": [
                    {"id": w.object_id, "status": "healthy", "checked_at": "2025-01-02T10:00:00Z"}
                ]
            },
            pak=w.agent_pak,
        ),
        given=associate_by_target,
    ),
    Case(
        "POST",
        "/api/v1/webhook-deliveries/{id:uuid}/result",
        "webhook.delivery_reported",
        report_delivery,
    ),
    # Verifies a key and changes nothing: a read that happens to be a POST in the contract.
    Case(
        "POST",
        "/api/v1/auth/pak",
        None,
        lambda w: w.send("POST", "/auth/pak", pak=w.agent_pak),
    ),
]


def test_every_mutating_route_has_a_case(api: Api) -> None:
    served = {
        (method, route.path)
        for route in api.broker.app.routes
        for method in getattr(route, "methods", ())
        if method in MUTATING
    }
    covered = [(case.method, case.route) for case in CASES]
    assert len(covered) == len(set(covered)), "one case per route"
    assert served == set(covered)


async def audit_count(w: World, action: str) -> int:
    return len(await w.api.audit(action=action))


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.method} {c.route}")
async def test_mutating_route_audits_invalidates_and_revokes(api: Api, case: Case) -> None:
    w = await make_world(api)
    await case.given(w)
    before = await w.poll()
    assert before.status_code == 200, before.text
    # Both keys are verified (and so cached) before the call.
    assert (await w.send("POST", "/auth/pak", pak=w.generator_pak)).status_code == 200
    audited_before = 0 if case.action is None else await audit_count(w, case.action)
    trail_before = await api.count(tables.audit_logs)

    response = await case.call(w)

    assert response.status_code < 300, response.text
    if case.action is None:
        assert await api.count(tables.audit_logs) == trail_before
    else:
        assert await audit_count(w, case.action) == audited_before + 1
    if case.changes:
        after = await w.poll(etag=before.headers["etag"])
        assert after.status_code == 200, "a stale ETag was answered 304 after the change"
        assert after.headers["etag"] != before.headers["etag"]
    if case.revokes is not None:
        pak = w.agent_pak if case.revokes == "agent" else w.generator_pak
        assert (await w.send("POST", "/auth/pak", pak=pak)).status_code == 401


class Boom(Exception):
    pass


def watched(api: Api, etag: str) -> tuple[Context, UUID, list[str]]:
    """The broker's context, an agent whose ETag it trusts, and the PAK hashes it forgets."""
    ctx: Context = api.broker.app.state.ctx
    agent_id = uuid.uuid4()
    ctx.versions.remember(agent_id, full=False, etag=etag, token=ctx.versions.token(agent_id))
    forgotten: list[str] = []
    spied = dataclasses.replace(ctx, forget_pak=forgotten.append)
    return spied, agent_id, forgotten


async def subscribe_to_everything(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/webhooks",
        json={"name": "all", "url": "http://127.0.0.1:9/hook", "event_types": ["*"]},
        headers=api.admin,
    )
    assert response.status_code == 201, response.text


async def test_nothing_declared_in_a_rolled_back_unit_of_work_survives(api: Api) -> None:
    await subscribe_to_everything(api)
    ctx, agent_id, forgotten = watched(api, '"kept"')
    # An event no delivery worker waits on (the broker's own one clears it when it wakes).
    ctx = dataclasses.replace(ctx, webhooks_due=asyncio.Event())
    with pytest.raises(Boom):
        async with ctx.work(None) as w:
            await w.audit("test.rolled_back", "test", None)
            await w.emit(events.Event(event_type="stack.created", data={"name": "web"}))
            await w.state_changed(agent_id)
            await w.revoked("0" * 64)
            raise Boom
    assert await api.count(tables.audit_logs, tables.audit_logs.c.action == "test.rolled_back") == 0
    assert await api.count(tables.webhook_deliveries) == 0
    assert not ctx.webhooks_due.is_set()
    assert ctx.versions.etag(agent_id, full=False) == '"kept"'
    assert forgotten == []


async def test_a_committed_unit_of_work_writes_everything_then_forgets(api: Api) -> None:
    await subscribe_to_everything(api)
    ctx, agent_id, forgotten = watched(api, '"old"')
    ctx = dataclasses.replace(ctx, webhooks_due=asyncio.Event())
    async with ctx.work(None) as w:
        await w.audit("test.committed", "test", None, {"n": 1})
        await w.emit(events.Event(event_type="stack.created", data={"name": "web"}))
        await w.state_changed(agent_id)
        await w.revoked("a" * 64)
        await w.revoked("a" * 64)
        await w.revoked(None)
        # Nothing is forgotten (nor announced) while the transaction may still roll back.
        assert forgotten == []
        assert ctx.versions.etag(agent_id, full=False) == '"old"'
        assert not ctx.webhooks_due.is_set()
    assert forgotten == ["a" * 64]
    assert ctx.versions.etag(agent_id, full=False) is None
    trail = await api.audit(action="test.committed")
    assert [(entry["actor_type"], entry["details"]) for entry in trail] == [("system", {"n": 1})]
    assert ctx.webhooks_due.is_set()
    deliveries = tables.webhook_deliveries
    async with ctx.database.read() as conn:
        rows = (await conn.execute(sa.select(deliveries.c.event_type, deliveries.c.payload))).all()
    assert [(row.event_type, json.loads(row.payload)["data"]) for row in rows] == [
        ("stack.created", {"name": "web"})
    ]
