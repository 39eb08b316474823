"""Shared by the diagnostics tests: a generator's stack holding one deployment object, two
agents it is served to (the one asked, and another), a third agent it is not served to, and
another generator; with calls that go through the API as any of them."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime
from typing import Any

import httpx
import sqlalchemy as sa

from brokkr.broker.db import tables
from brokkr.broker.services.context import Context
from tests.broker.conftest import Api, auth

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n"
# Who calls: "agent" is the agent a request is for, "other" another agent served the same
# object, "owner" the generator owning the stack, "generator" another generator.
ROLES = ("admin", "agent", "other", "owner", "generator")
RESULT = {
    "pod_statuses": '[{"name": "app-1", "namespace": "web", "phase": "Running"}]',
    "events": '[{"involved_object": "app-1", "reason": "Pulled"}]',
    "log_tails": '{"app-1/app": "ready\\n"}',
    "collected_at": "2025-01-02T10:00:00Z",
}


@dataclasses.dataclass
class World:
    api: Api
    object_id: str
    stack_id: str
    agent_id: str
    other_id: str
    unserved_id: str
    paks: dict[str, str]

    def headers(self, role: str) -> dict[str, str]:
        if role == "admin":
            return self.api.admin
        if role == "none":
            return {}
        return auth(self.paks[role])

    async def send(
        self,
        role: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        return await self.api.client.request(
            method,
            f"/api/v1{path}",
            json=json,
            headers={**self.headers(role), **(headers or {})},
            **kwargs,
        )

    async def create(self, role: str = "admin", **body: Any) -> httpx.Response:
        body.setdefault("agent_id", self.agent_id)
        return await self.send(
            role, "POST", f"/deployment-objects/{self.object_id}/diagnostics", json=body
        )

    async def request(self, **body: Any) -> dict[str, Any]:
        """A new pending request (by the admin) for the world's agent."""
        response = await self.create(**body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def claim(self, request_id: str, role: str = "agent") -> httpx.Response:
        return await self.send(role, "POST", f"/diagnostics/{request_id}/claim")

    async def claimed(self) -> dict[str, Any]:
        created = await self.request()
        response = await self.claim(created["id"])
        assert response.status_code == 200, response.text
        claimed: dict[str, Any] = response.json()
        return claimed

    async def submit(self, request_id: str, role: str = "agent", **body: Any) -> httpx.Response:
        return await self.send(
            role, "POST", f"/diagnostics/{request_id}/result", json={**RESULT, **body}
        )

    async def get(self, request_id: str, role: str = "admin") -> httpx.Response:
        return await self.send(role, "GET", f"/diagnostics/{request_id}")

    async def row(self, request_id: str) -> dict[str, Any]:
        """The request as stored."""
        q = tables.diagnostic_requests
        async with self.api.broker.database.read() as tx:
            found = (await tx.execute(sa.select(q).where(q.c.id == uuid.UUID(request_id)))).one()
        return dict(found._mapping)

    async def set(self, request_id: str, **values: Any) -> None:
        """Change a stored request behind the API's back (to age it)."""
        q = tables.diagnostic_requests
        async with self.api.broker.database.transaction() as tx:
            await tx.execute(q.update().where(q.c.id == uuid.UUID(request_id)).values(**values))


async def make_world(api: Api) -> World:
    _, owner_pak = await api.create_generator("owner")
    _, generator_pak = await api.create_generator("someone-else")
    agent, agent_pak = await api.create_agent("edge-1")
    other, other_pak = await api.create_agent("edge-2")
    unserved, unserved_pak = await api.create_agent("edge-3")
    stack = await api.client.post("/api/v1/stacks", json={"name": "web"}, headers=auth(owner_pak))
    assert stack.status_code == 201, stack.text
    stack_id = stack.json()["id"]
    created = await api.client.post(
        f"/api/v1/stacks/{stack_id}/deployment-objects",
        json={"yaml_content": CONFIGMAP},
        headers=auth(owner_pak),
    )
    assert created.status_code == 201, created.text
    for agent_id in (agent["id"], other["id"]):
        target = await api.client.post(
            f"/api/v1/agents/{agent_id}/targets", json={"stack_id": stack_id}, headers=api.admin
        )
        assert target.status_code < 300, target.text
    return World(
        api=api,
        object_id=created.json()["id"],
        stack_id=stack_id,
        agent_id=agent["id"],
        other_id=other["id"],
        unserved_id=unserved["id"],
        paks={
            "agent": agent_pak,
            "other": other_pak,
            "unserved": unserved_pak,
            "owner": owner_pak,
            "generator": generator_pak,
        },
    )


def at(api: Api, moment: datetime) -> Context:
    """The broker's context with its clock set to ``moment``."""
    ctx: Context = api.broker.app.state.ctx
    return dataclasses.replace(ctx, now=lambda: moment)


def stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
