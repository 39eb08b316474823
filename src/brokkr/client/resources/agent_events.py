"""/agent-events: what agents reported, scoped to the caller."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from uuid import UUID

from brokkr.client.blocking import Blocking, blocking, collecting
from brokkr.client.http import Http
from brokkr.common import wire

PAGE = 100


class AgentEvents:
    def __init__(self, http: Http) -> None:
        self._http = http

    async def list(
        self,
        *,
        agent_id: UUID | None = None,
        deployment_object_id: UUID | None = None,
        limit: int = PAGE,
        offset: int = 0,
    ) -> builtins.list[wire.AgentEvent]:
        params = {
            "agent_id": agent_id,
            "deployment_object_id": deployment_object_id,
            "limit": limit,
            "offset": offset,
        }
        return await self._http.call(
            "GET", "/api/v1/agent-events", builtins.list[wire.AgentEvent], params=params
        )

    async def iterate(
        self,
        *,
        agent_id: UUID | None = None,
        deployment_object_id: UUID | None = None,
        page: int = PAGE,
    ) -> AsyncIterator[wire.AgentEvent]:
        """Every matching event, newest first, fetched page by page."""
        params = {"agent_id": agent_id, "deployment_object_id": deployment_object_id, "limit": page}
        async for batch in self._http.pages(
            "/api/v1/agent-events", builtins.list[wire.AgentEvent], params=params
        ):
            for event in batch:
                yield event

    async def get(self, event_id: UUID) -> wire.AgentEvent:
        return await self._http.call("GET", f"/api/v1/agent-events/{event_id}", wire.AgentEvent)


class BlockingAgentEvents(Blocking[AgentEvents]):
    list = blocking(AgentEvents.list)
    iterate = collecting(AgentEvents.iterate)
    get = blocking(AgentEvents.get)
