"""/agents: registration, lookup, status, labels, annotations, targets, heartbeat, PAKs."""

from __future__ import annotations

import builtins
from uuid import UUID

import msgspec

from brokkr.client.blocking import Blocking, blocking
from brokkr.client.http import Http, segment
from brokkr.common import wire


class TargetState(msgspec.Struct, frozen=True):
    """``objects`` is None when the broker answered 304 (nothing changed since ``etag``)."""

    etag: str | None
    objects: builtins.list[wire.DeploymentObject] | None


class Agents:
    def __init__(self, http: Http) -> None:
        self._http = http

    async def list(self) -> builtins.list[wire.Agent]:
        """Every live agent, however many pages the broker serves them in."""
        return await self._http.collect("/api/v1/agents", builtins.list[wire.Agent])

    async def search(self, *, name: str, cluster_name: str) -> wire.Agent:
        params = {"name": name, "cluster_name": cluster_name}
        return await self._http.call("GET", "/api/v1/agents/", wire.Agent, params=params)

    async def get(self, agent_id: UUID) -> wire.Agent:
        return await self._http.call("GET", f"/api/v1/agents/{agent_id}", wire.Agent)

    async def create(self, *, name: str, cluster_name: str) -> wire.CreateAgentResponse:
        body = wire.NewAgent(name=name, cluster_name=cluster_name)
        return await self._http.call("POST", "/api/v1/agents", wire.CreateAgentResponse, json=body)

    async def update(
        self,
        agent_id: UUID,
        *,
        name: str | None = None,
        cluster_name: str | None = None,
        status: wire.AgentStatus | None = None,
    ) -> wire.Agent:
        body = wire.AgentUpdate(
            name=msgspec.UNSET if name is None else name,
            cluster_name=msgspec.UNSET if cluster_name is None else cluster_name,
            status=msgspec.UNSET if status is None else status,
        )
        return await self._http.call("PUT", f"/api/v1/agents/{agent_id}", wire.Agent, json=body)

    async def activate(self, agent_id: UUID) -> wire.Agent:
        return await self.update(agent_id, status="ACTIVE")

    async def deactivate(self, agent_id: UUID) -> wire.Agent:
        return await self.update(agent_id, status="INACTIVE")

    async def delete(self, agent_id: UUID) -> None:
        await self._http.send("DELETE", f"/api/v1/agents/{agent_id}")

    async def heartbeat(self, agent_id: UUID) -> None:
        await self._http.send("POST", f"/api/v1/agents/{agent_id}/heartbeat")

    async def rotate_pak(self, agent_id: UUID) -> wire.RotateAgentPakResponse:
        return await self._http.call(
            "POST", f"/api/v1/agents/{agent_id}/rotate-pak", wire.RotateAgentPakResponse
        )

    async def list_labels(self, agent_id: UUID) -> builtins.list[wire.AgentLabel]:
        return await self._http.call(
            "GET", f"/api/v1/agents/{agent_id}/labels", builtins.list[wire.AgentLabel]
        )

    async def add_label(self, agent_id: UUID, label: str) -> wire.AgentLabel:
        return await self._http.call(
            "POST",
            f"/api/v1/agents/{agent_id}/labels",
            wire.AgentLabel,
            json=wire.NewAgentLabel(label=label, agent_id=agent_id),
        )

    async def remove_label(self, agent_id: UUID, label: str) -> None:
        await self._http.send("DELETE", f"/api/v1/agents/{agent_id}/labels/{segment(label)}")

    async def list_annotations(self, agent_id: UUID) -> builtins.list[wire.AgentAnnotation]:
        return await self._http.call(
            "GET", f"/api/v1/agents/{agent_id}/annotations", builtins.list[wire.AgentAnnotation]
        )

    async def add_annotation(self, agent_id: UUID, key: str, value: str) -> wire.AgentAnnotation:
        return await self._http.call(
            "POST",
            f"/api/v1/agents/{agent_id}/annotations",
            wire.AgentAnnotation,
            json=wire.NewAgentAnnotation(key=key, value=value, agent_id=agent_id),
        )

    async def remove_annotation(self, agent_id: UUID, key: str) -> None:
        await self._http.send("DELETE", f"/api/v1/agents/{agent_id}/annotations/{segment(key)}")

    async def list_targets(self, agent_id: UUID) -> builtins.list[wire.AgentTarget]:
        return await self._http.call(
            "GET", f"/api/v1/agents/{agent_id}/targets", builtins.list[wire.AgentTarget]
        )

    async def add_target(self, agent_id: UUID, stack_id: UUID) -> wire.AgentTarget:
        return await self._http.call(
            "POST",
            f"/api/v1/agents/{agent_id}/targets",
            wire.AgentTarget,
            json=wire.NewAgentTarget(stack_id=stack_id, agent_id=agent_id),
        )

    async def remove_target(self, agent_id: UUID, stack_id: UUID) -> None:
        await self._http.send("DELETE", f"/api/v1/agents/{agent_id}/targets/{stack_id}")

    async def stacks(self, agent_id: UUID) -> builtins.list[wire.Stack]:
        return await self._http.call(
            "GET", f"/api/v1/agents/{agent_id}/stacks", builtins.list[wire.Stack]
        )

    async def target_state(
        self, agent_id: UUID, *, full: bool = False, etag: str | None = None
    ) -> TargetState:
        """Poll what the agent should run; pass the previous ``etag`` to get ``objects=None``
        (HTTP 304) while nothing changed."""
        response = await self._http.send(
            "GET",
            f"/api/v1/agents/{agent_id}/target-state",
            params={"mode": "full" if full else "incremental"},
            headers={"If-None-Match": etag} if etag else None,
            ok=(200, 304),
        )
        new_etag = response.headers.get("etag")
        if response.status_code == 304:
            return TargetState(etag=new_etag or etag, objects=None)
        objects = msgspec.json.decode(response.content, type=builtins.list[wire.DeploymentObject])
        return TargetState(etag=new_etag, objects=objects)

    async def events(
        self, agent_id: UUID, *, limit: int = 100, offset: int = 0
    ) -> builtins.list[wire.AgentEvent]:
        return await self._http.call(
            "GET",
            f"/api/v1/agents/{agent_id}/events",
            builtins.list[wire.AgentEvent],
            params={"limit": limit, "offset": offset},
        )

    async def report_event(
        self,
        agent_id: UUID,
        *,
        deployment_object_id: UUID,
        status: wire.EventStatus,
        message: str | None = None,
        event_type: str = "DEPLOY",
    ) -> wire.AgentEvent:
        body = wire.NewAgentEvent(
            deployment_object_id=deployment_object_id,
            status=status,
            event_type=event_type,
            message=message,
            agent_id=agent_id,
        )
        return await self._http.call(
            "POST", f"/api/v1/agents/{agent_id}/events", wire.AgentEvent, json=body
        )

    async def connections(self) -> wire.WsConnectionsResponse:
        """Agents on this broker's channel and its live-stream subscribers (admins)."""
        return await self._http.call(
            "GET", "/api/v1/admin/ws/connections", wire.WsConnectionsResponse
        )


class BlockingAgents(Blocking[Agents]):
    list = blocking(Agents.list)
    search = blocking(Agents.search)
    get = blocking(Agents.get)
    create = blocking(Agents.create)
    update = blocking(Agents.update)
    activate = blocking(Agents.activate)
    deactivate = blocking(Agents.deactivate)
    delete = blocking(Agents.delete)
    heartbeat = blocking(Agents.heartbeat)
    rotate_pak = blocking(Agents.rotate_pak)
    list_labels = blocking(Agents.list_labels)
    add_label = blocking(Agents.add_label)
    remove_label = blocking(Agents.remove_label)
    list_annotations = blocking(Agents.list_annotations)
    add_annotation = blocking(Agents.add_annotation)
    remove_annotation = blocking(Agents.remove_annotation)
    list_targets = blocking(Agents.list_targets)
    add_target = blocking(Agents.add_target)
    remove_target = blocking(Agents.remove_target)
    stacks = blocking(Agents.stacks)
    target_state = blocking(Agents.target_state)
    events = blocking(Agents.events)
    report_event = blocking(Agents.report_event)
    connections = blocking(Agents.connections)
