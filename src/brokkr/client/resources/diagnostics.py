"""On-demand diagnostics: an admin asks one agent about one deployment object; the agent claims
the request, collects pods, events and log tails in its cluster, and submits them."""

from __future__ import annotations

import builtins
from datetime import datetime
from uuid import UUID

from brokkr.client.blocking import Blocking, blocking
from brokkr.client.http import Http
from brokkr.common import wire


class Diagnostics:
    def __init__(self, http: Http) -> None:
        self._http = http

    async def request(
        self,
        deployment_object_id: UUID,
        *,
        agent_id: UUID,
        requested_by: str | None = None,
        retention_minutes: int | None = None,
    ) -> wire.DiagnosticRequest:
        """Ask ``agent_id`` for diagnostics; unclaimed after ``retention_minutes`` (default 60)
        the request expires."""
        body = wire.CreateDiagnosticRequest(
            agent_id=agent_id, requested_by=requested_by, retention_minutes=retention_minutes
        )
        return await self._http.call(
            "POST",
            f"/api/v1/deployment-objects/{deployment_object_id}/diagnostics",
            wire.DiagnosticRequest,
            json=body,
        )

    async def get(self, request_id: UUID) -> wire.DiagnosticResponse:
        """The request and, once the agent submitted it, its result."""
        return await self._http.call(
            "GET", f"/api/v1/diagnostics/{request_id}", wire.DiagnosticResponse
        )

    async def list_for_deployment_object(
        self, deployment_object_id: UUID
    ) -> builtins.list[wire.DiagnosticRequest]:
        """The requests made for one deployment object, newest first."""
        return await self._http.call(
            "GET",
            f"/api/v1/deployment-objects/{deployment_object_id}/diagnostics",
            builtins.list[wire.DiagnosticRequest],
        )

    async def list_pending(self, agent_id: UUID) -> builtins.list[wire.DiagnosticRequest]:
        """Agents: the requests waiting for this agent, oldest first."""
        return await self._http.call(
            "GET",
            f"/api/v1/agents/{agent_id}/diagnostics/pending",
            builtins.list[wire.DiagnosticRequest],
        )

    async def claim(self, request_id: UUID) -> wire.DiagnosticRequest:
        """Agents: take a pending request; Conflict when it is no longer pending."""
        return await self._http.call(
            "POST", f"/api/v1/diagnostics/{request_id}/claim", wire.DiagnosticRequest
        )

    async def submit(
        self,
        request_id: UUID,
        *,
        pod_statuses: str,
        events: str,
        log_tails: str | None,
        collected_at: datetime,
    ) -> wire.DiagnosticResult:
        """Agents: answer a claimed request with the collected JSON documents."""
        body = wire.SubmitDiagnosticResult(
            pod_statuses=pod_statuses,
            events=events,
            log_tails=log_tails,
            collected_at=collected_at,
        )
        return await self._http.call(
            "POST", f"/api/v1/diagnostics/{request_id}/result", wire.DiagnosticResult, json=body
        )


class BlockingDiagnostics(Blocking[Diagnostics]):
    request = blocking(Diagnostics.request)
    get = blocking(Diagnostics.get)
    list_for_deployment_object = blocking(Diagnostics.list_for_deployment_object)
    list_pending = blocking(Diagnostics.list_pending)
    claim = blocking(Diagnostics.claim)
    submit = blocking(Diagnostics.submit)
