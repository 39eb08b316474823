"""Deployment health: agents report what runs; admins and owning generators read it."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from brokkr.client.blocking import Blocking, blocking
from brokkr.client.http import Http
from brokkr.common import wire


class Health:
    def __init__(self, http: Http) -> None:
        self._http = http

    async def report(
        self, agent_id: UUID, updates: Sequence[wire.DeploymentObjectHealthUpdate]
    ) -> None:
        """Agents: replace this agent's latest health of each deployment object in ``updates``."""
        body = wire.HealthStatusUpdate(deployment_objects=list(updates))
        await self._http.send("PATCH", f"/api/v1/agents/{agent_id}/health-status", json=body)

    async def for_deployment_object(
        self, deployment_object_id: UUID
    ) -> wire.DeploymentHealthResponse:
        """Every agent's latest report for one deployment object, newest first."""
        return await self._http.call(
            "GET",
            f"/api/v1/deployment-objects/{deployment_object_id}/health",
            wire.DeploymentHealthResponse,
        )

    async def for_stack(self, stack_id: UUID) -> wire.StackHealthResponse:
        """Health per live deployment object of the stack, counted per agent."""
        return await self._http.call(
            "GET", f"/api/v1/stacks/{stack_id}/health", wire.StackHealthResponse
        )


class BlockingHealth(Blocking[Health]):
    report = blocking(Health.report)
    for_deployment_object = blocking(Health.for_deployment_object)
    for_stack = blocking(Health.for_stack)
