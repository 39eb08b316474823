"""Shared by the template API tests: a small Deployment template, its schema, and a world of
an admin, an owning generator with a stack, another generator, and an agent."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from tests.broker.conftest import Api, auth

CONTENT = (
    "apiVersion: v1\n"
    "kind: ConfigMap\n"
    "metadata:\n"
    "  name: {{ name }}\n"
    "data:\n"
    '  replicas: "{{ replicas | default(value=1) }}"\n'
)
SCHEMA = json.dumps(
    {
        "type": "object",
        "properties": {"name": {"type": "string"}, "replicas": {"type": "integer", "minimum": 1}},
        "required": ["name"],
    }
)
ROLES = ("admin", "owner", "other-generator", "agent", "nobody")


def template_body(name: str = "web", **overrides: Any) -> dict[str, Any]:
    return {"name": name, "template_content": CONTENT, "parameters_schema": SCHEMA, **overrides}


@dataclass
class World:
    api: Api
    owner_id: str
    owner_pak: str
    other_pak: str
    agent_pak: str
    stack_id: str

    def headers(self, who: str) -> dict[str, str]:
        return {
            "admin": self.api.admin,
            "owner": auth(self.owner_pak),
            "other-generator": auth(self.other_pak),
            "agent": auth(self.agent_pak),
            "nobody": {},
        }[who]

    async def send(self, who: str, method: str, path: str, *, json: Any = None) -> httpx.Response:
        return await self.api.client.request(
            method, f"/api/v1{path}", json=json, headers=self.headers(who)
        )

    async def template(self, who: str = "owner", **body: Any) -> dict[str, Any]:
        response = await self.send(who, "POST", "/templates", json=template_body(**body))
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created


async def make_world(api: Api) -> World:
    owner, owner_pak = await api.create_generator("owner")
    _, other_pak = await api.create_generator("other")
    _, agent_pak = await api.create_agent()
    stack = await api.client.post("/api/v1/stacks", json={"name": "web"}, headers=auth(owner_pak))
    assert stack.status_code == 201, stack.text
    return World(
        api=api,
        owner_id=owner["id"],
        owner_pak=owner_pak,
        other_pak=other_pak,
        agent_pak=agent_pak,
        stack_id=stack.json()["id"],
    )
