"""/work-orders, /work-order-log and an agent's pending orders: one-shot jobs routed to agents."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from uuid import UUID

import msgspec

from brokkr.client.blocking import Blocking, blocking
from brokkr.client.http import Http
from brokkr.common import wire

RETRY_SCHEDULED = 202


class WorkOrders:
    def __init__(self, http: Http) -> None:
        self._http = http

    async def list(
        self, *, status: str | None = None, work_type: str | None = None
    ) -> builtins.list[wire.WorkOrder]:
        """The active queue (admins), newest first; finished orders are in ``list_log``."""
        params = {"status": status, "work_type": work_type}
        return await self._http.call(
            "GET", "/api/v1/work-orders", builtins.list[wire.WorkOrder], params=params
        )

    async def create(
        self,
        *,
        work_type: str,
        yaml_content: str,
        agent_ids: Sequence[UUID] | None = None,
        labels: Sequence[str] | None = None,
        annotations: Mapping[str, str] | None = None,
        max_retries: int | None = None,
        backoff_seconds: int | None = None,
        claim_timeout_seconds: int | None = None,
    ) -> wire.WorkOrder:
        """Queue an order for any of ``agent_ids``, or any agent with one of ``labels`` or of
        the ``annotations`` pairs; limits left None take the broker's defaults."""
        targeting = wire.WorkOrderTargeting(
            agent_ids=builtins.list(agent_ids) if agent_ids else None,
            labels=builtins.list(labels) if labels else None,
            annotations=dict(annotations) if annotations else None,
        )
        body = wire.CreateWorkOrderRequest(
            work_type=work_type,
            yaml_content=yaml_content,
            max_retries=max_retries,
            backoff_seconds=backoff_seconds,
            claim_timeout_seconds=claim_timeout_seconds,
            targeting=targeting,
        )
        return await self._http.call("POST", "/api/v1/work-orders", wire.WorkOrder, json=body)

    async def get(self, work_order_id: UUID) -> wire.WorkOrder:
        """An active order, or a finished one with status COMPLETED or FAILED."""
        return await self._http.call("GET", f"/api/v1/work-orders/{work_order_id}", wire.WorkOrder)

    async def delete(self, work_order_id: UUID) -> None:
        """Cancel an active order in any state; a finished one is NotFound."""
        await self._http.send("DELETE", f"/api/v1/work-orders/{work_order_id}")

    async def list_pending(
        self, agent_id: UUID, *, work_type: str | None = None
    ) -> builtins.list[wire.WorkOrder]:
        """The PENDING orders ``agent_id`` may claim, oldest first."""
        return await self._http.call(
            "GET",
            f"/api/v1/agents/{agent_id}/work-orders/pending",
            builtins.list[wire.WorkOrder],
            params={"work_type": work_type},
        )

    async def claim(self, work_order_id: UUID, agent_id: UUID) -> wire.WorkOrder:
        """Claim for ``agent_id``; NotFound (``work_order_not_claimable``) if another agent won,
        the order is not PENDING or not for this agent."""
        body = wire.ClaimWorkOrderRequest(agent_id=agent_id)
        return await self._http.call(
            "POST", f"/api/v1/work-orders/{work_order_id}/claim", wire.WorkOrder, json=body
        )

    async def complete(
        self,
        work_order_id: UUID,
        *,
        success: bool,
        message: str | None = None,
        retryable: bool = True,
    ) -> wire.WorkOrderLog | wire.WorkOrderRetryScheduled:
        """Report the outcome of a claimed order: its log entry once it is finished, or
        ``WorkOrderRetryScheduled`` when a retryable failure put it back in the queue."""
        body = wire.CompleteWorkOrderRequest(success=success, message=message, retryable=retryable)
        response = await self._http.send(
            "POST",
            f"/api/v1/work-orders/{work_order_id}/complete",
            json=body,
            ok=(200, RETRY_SCHEDULED),
        )
        if response.status_code == RETRY_SCHEDULED:
            return msgspec.json.decode(response.content, type=wire.WorkOrderRetryScheduled)
        return msgspec.json.decode(response.content, type=wire.WorkOrderLog)

    async def list_log(
        self,
        *,
        work_type: str | None = None,
        success: bool | None = None,
        agent_id: UUID | None = None,
        limit: int | None = None,
    ) -> builtins.list[wire.WorkOrderLog]:
        """Finished orders (admins), newest first; without ``limit`` the broker's default."""
        params = {"work_type": work_type, "success": success, "agent_id": agent_id, "limit": limit}
        return await self._http.call(
            "GET", "/api/v1/work-order-log", builtins.list[wire.WorkOrderLog], params=params
        )

    async def get_log(self, work_order_id: UUID) -> wire.WorkOrderLog:
        return await self._http.call(
            "GET", f"/api/v1/work-order-log/{work_order_id}", wire.WorkOrderLog
        )


class BlockingWorkOrders(Blocking[WorkOrders]):
    list = blocking(WorkOrders.list)
    create = blocking(WorkOrders.create)
    get = blocking(WorkOrders.get)
    delete = blocking(WorkOrders.delete)
    list_pending = blocking(WorkOrders.list_pending)
    claim = blocking(WorkOrders.claim)
    complete = blocking(WorkOrders.complete)
    list_log = blocking(WorkOrders.list_log)
    get_log = blocking(WorkOrders.get_log)
