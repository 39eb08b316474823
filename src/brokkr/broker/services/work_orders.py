"""Work orders (D17): create, route, claim, complete and retry one-shot jobs; the log of
finished ones; and the maintenance run that returns due retries and stale claims to the queue."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from brokkr.broker import db
from brokkr.broker.domain import access, errors, events, hints
from brokkr.broker.domain import work_orders as rules
from brokkr.broker.services.context import Context
from brokkr.broker.services.work import Work
from brokkr.common import wire

log = logging.getLogger(__name__)

RESOURCE = "work_order"


async def create(
    ctx: Context, *, caller: access.Caller, request: wire.CreateWorkOrderRequest
) -> wire.WorkOrder:
    """The order, its targeting and its audit record commit together or not at all."""
    access.require_admin(caller)
    new = rules.validate(request)
    async with ctx.work(caller) as w:
        if new.agent_ids:
            live = {agent.id for agent in await db.agents.list_by_ids(w.tx, new.agent_ids)}
            unknown = [agent_id for agent_id in new.agent_ids if agent_id not in live]
            if unknown:
                raise errors.UnknownTargetAgents(unknown)
        order = await db.work_orders.insert(w.tx, new, now=w.now)
        details: dict[str, Any] = {
            "work_type": order.work_type,
            "agent_ids": [str(agent_id) for agent_id in new.agent_ids],
            "labels": new.labels,
            "annotations": dict(new.annotations),
        }
        await w.audit("work_order.created", RESOURCE, order.id, details)
        await w.hint(hints.Hint(kind="work_order", ref=order.id))
        await w.emit(
            events.Event(
                event_type="workorder.created",
                data={
                    "work_order_id": str(order.id),
                    "work_type": order.work_type,
                    "status": order.status,
                    "created_at": order.created_at,
                },
            )
        )
    return order


async def list_orders(
    ctx: Context, *, caller: access.Caller, status: str | None, work_type: str | None
) -> list[wire.WorkOrder]:
    access.require_admin(caller)
    async with ctx.database.read() as tx:
        return await db.work_orders.list_orders(tx, status=status, work_type=work_type)


async def get(ctx: Context, *, caller: access.Caller, order_id: UUID) -> wire.WorkOrder:
    """An active order, or a logged one shown as COMPLETED/FAILED."""
    access.require_admin(caller)
    async with ctx.database.read() as tx:
        order = await db.work_orders.get(tx, order_id)
        if order is not None:
            return order
        entry = await db.work_orders.get_log_entry(tx, order_id)
    if entry is None:
        raise errors.WorkOrderNotFound(order_id)
    return rules.as_order(entry)


async def delete(ctx: Context, *, caller: access.Caller, order_id: UUID) -> None:
    access.require_admin(caller)
    async with ctx.work(caller) as w:
        if not await db.work_orders.delete(w.tx, order_id):
            raise errors.WorkOrderNotFound(order_id)
        await w.audit("work_order.deleted", RESOURCE, order_id)


async def list_pending(
    ctx: Context, *, caller: access.Caller, agent_id: UUID, work_type: str | None
) -> list[wire.WorkOrder]:
    access.require_admin_or_agent(caller, agent_id)
    async with ctx.database.read() as tx:
        return await db.work_orders.list_pending(tx, agent_id, work_type=work_type)


async def claim(
    ctx: Context, *, caller: access.Caller, order_id: UUID, request: wire.ClaimWorkOrderRequest
) -> wire.WorkOrder:
    access.require_admin_or_agent(caller, request.agent_id)
    async with ctx.work(caller) as w:
        order = await db.work_orders.claim(w.tx, order_id, request.agent_id, now=w.now)
        if order is None:
            raise errors.WorkOrderNotClaimable(order_id)
        await w.audit("work_order.claimed", RESOURCE, order.id, {"agent_id": str(order.claimed_by)})
        await w.emit(
            events.Event(
                event_type="workorder.claimed",
                data={
                    "work_order_id": str(order.id),
                    "work_type": order.work_type,
                    "agent_id": str(request.agent_id),
                    "claimed_at": w.now,
                },
            )
        )
    return order


async def complete(
    ctx: Context,
    *,
    caller: access.Caller,
    order_id: UUID,
    request: wire.CompleteWorkOrderRequest,
) -> wire.WorkOrderLog | wire.WorkOrderRetryScheduled:
    """Only the claiming agent (or an admin) completes, and only while CLAIMED (D17). A
    retryable failure with retries left goes back to the queue after the reference backoff."""
    async with ctx.work(caller) as w:
        order = await db.work_orders.get(w.tx, order_id, for_update=True)
        if order is None:
            raise errors.WorkOrderNotFound(order_id)
        if not (caller.is_admin or (order.claimed_by and caller.is_agent(order.claimed_by))):
            raise errors.WorkOrderNotClaimedByAgent()
        if order.status != rules.CLAIMED:
            raise errors.WorkOrderNotClaimed(order.status)
        if request.success:
            return await _finish(w, order, success=True, message=request.message)
        message = request.message or rules.UNKNOWN_ERROR
        if not (request.retryable and rules.retries_left(order)):
            return await _finish(w, order, success=False, message=message)
        retry_after = w.now + rules.retry_delay(order.backoff_seconds, order.retry_count + 1)
        await db.work_orders.schedule_retry(
            w.tx, order, error=message, retry_after=retry_after, now=w.now
        )
        details = {"retry_count": order.retry_count + 1, "retry_after": retry_after.isoformat()}
        await w.audit("work_order.retry_scheduled", RESOURCE, order.id, details)
    return wire.WorkOrderRetryScheduled()


async def _finish(
    w: Work, order: wire.WorkOrder, *, success: bool, message: str | None
) -> wire.WorkOrderLog:
    entry = await db.work_orders.move_to_log(
        w.tx, order, success=success, message=message, now=w.now
    )
    outcome = "completed" if success else "failed"
    details = {"retries_attempted": entry.retries_attempted, "success": success}
    await w.audit(f"work_order.{outcome}", RESOURCE, order.id, details)
    await w.emit(
        events.Event(
            event_type=f"workorder.{outcome}",
            data={
                "work_order_log_id": str(entry.id),
                "work_type": entry.work_type,
                "success": success,
                "result_message": entry.result_message,
                "agent_id": None if entry.claimed_by is None else str(entry.claimed_by),
                "completed_at": entry.completed_at,
            },
        )
    )
    return entry


async def list_log(
    ctx: Context,
    *,
    caller: access.Caller,
    work_type: str | None,
    success: bool | None,
    agent_id: UUID | None,
    limit: int | None,
) -> list[wire.WorkOrderLog]:
    access.require_admin(caller)
    limits = ctx.settings.current.limits
    if limit is None:
        limit = min(limits.work_order_log_default_limit, limits.work_order_log_max_limit)
    elif not 1 <= limit <= limits.work_order_log_max_limit:
        bound = f"must be between 1 and {limits.work_order_log_max_limit}"
        raise errors.InvalidParameter({"limit": bound})
    async with ctx.database.read() as tx:
        return await db.work_orders.list_log(
            tx, work_type=work_type, success=success, agent_id=agent_id, limit=limit
        )


async def get_log_entry(
    ctx: Context, *, caller: access.Caller, entry_id: UUID
) -> wire.WorkOrderLog:
    access.require_admin(caller)
    async with ctx.database.read() as tx:
        entry = await db.work_orders.get_log_entry(tx, entry_id)
    if entry is None:
        raise errors.WorkOrderLogEntryNotFound(entry_id)
    return entry


async def maintain(ctx: Context) -> tuple[int, int]:
    """One maintenance run: due retries become PENDING; stale claims are released, each
    counted as an attempt (D17), or logged as failed once no retry is left. Safe with several
    brokers on one database: claimed rows are locked with SKIP LOCKED (PostgreSQL) or under
    SQLite's single writer. Returns (retries promoted, claims released)."""
    async with ctx.work(None) as w:
        promoted = await db.work_orders.promote_due_retries(w.tx, now=w.now)
        released = 0
        for order in await db.work_orders.lock_claimed(w.tx):
            if not rules.claim_expired(order, w.now):
                continue
            released += 1
            error = (
                f"claim by agent {order.claimed_by} expired after {order.claim_timeout_seconds}s"
            )
            if rules.retries_left(order):
                await db.work_orders.release_claim(w.tx, order, error=error, now=w.now)
                await w.audit(
                    "work_order.claim_released",
                    RESOURCE,
                    order.id,
                    {"agent_id": str(order.claimed_by), "retry_count": order.retry_count + 1},
                )
            else:
                await _finish(w, order, success=False, message=error)
    if promoted or released:
        log.info("work orders: %d retries due, %d stale claims released", promoted, released)
    return promoted, released
