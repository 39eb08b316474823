"""On-demand diagnostics: an admin asks one agent about one deployment object it is served; the
agent claims the request (once) and answers it with the pods, events and log tails it collected.
Maintenance expires unclaimed requests, fails unanswered claims and forgets old requests.

Who sees what (D8, flaw 16): admins everything; an agent its own requests; a request that is
not the caller's answers 404 exactly like a missing one.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from uuid import UUID

from brokkr.broker import db
from brokkr.broker.domain import access, errors, paging
from brokkr.broker.domain import diagnostics as rules
from brokkr.broker.services.context import Context
from brokkr.common import wire

log = logging.getLogger(__name__)

RESOURCE = "diagnostic"
DEFAULT_LIMIT = 100
# The pending list an agent polls is short: it claims what it gets and sees the rest next time.
PENDING_LIMIT = 100
# Rows one maintenance transaction changes or deletes, so no run holds locks for long.
MAINTENANCE_BATCH = 500


async def create(
    ctx: Context,
    *,
    caller: access.Caller,
    deployment_object_id: UUID,
    request: wire.CreateDiagnosticRequest,
) -> wire.DiagnosticRequest:
    """Only for an agent the object is served to: the agent collects the resources it applied."""
    access.require_admin(caller)
    new = rules.validate_request(request)
    async with ctx.work(caller) as w:
        if await db.deployment_objects.get(w.tx, deployment_object_id) is None:
            raise errors.DeploymentObjectNotFound(deployment_object_id)
        if await db.agents.get(w.tx, new.agent_id) is None:
            raise errors.DiagnosticAgentNotFound()
        if not await db.target_state.is_served(w.tx, new.agent_id, deployment_object_id):
            raise errors.DiagnosticAgentNotServed()
        created = await db.diagnostics.insert(
            w.tx,
            deployment_object_id=deployment_object_id,
            agent_id=new.agent_id,
            requested_by=new.requested_by,
            expires_at=w.now + new.retention,
            now=w.now,
        )
        details = {
            "deployment_object_id": str(deployment_object_id),
            "agent_id": str(new.agent_id),
            "expires_at": created.expires_at.isoformat(),
        }
        await w.audit("diagnostic.requested", RESOURCE, created.id, details)
    return created


async def list_for_object(
    ctx: Context, *, caller: access.Caller, deployment_object_id: UUID, limit: int, offset: int
) -> paging.Page[wire.DiagnosticRequest]:
    access.require_admin(caller)
    limit = min(limit, paging.MAX_LIMIT)
    async with ctx.database.read() as tx:
        if not await db.diagnostics.object_exists(tx, deployment_object_id):
            raise errors.DeploymentObjectNotFound(deployment_object_id)
        rows = await db.diagnostics.list_for_object(
            tx, deployment_object_id, limit=limit + 1, offset=offset
        )
    budget = ctx.settings.current.limits.list_page_bytes
    return paging.page(rows[:limit], budget=budget, offset=offset, available=len(rows))


def _visible(caller: access.Caller, request: wire.DiagnosticRequest) -> bool:
    return caller.is_admin or caller.is_agent(request.agent_id)


async def get(ctx: Context, *, caller: access.Caller, request_id: UUID) -> wire.DiagnosticResponse:
    async with ctx.database.read() as tx:
        found = await db.diagnostics.get(tx, request_id)
        if found is None:
            raise errors.DiagnosticNotFound(request_id)
        if not _visible(caller, found):
            raise errors.DiagnosticNotOwned(request_id)
        result = await db.diagnostics.get_result(tx, request_id)
    return wire.DiagnosticResponse(request=found, result=result)


async def list_pending(
    ctx: Context, *, caller: access.Caller, agent_id: UUID
) -> list[wire.DiagnosticRequest]:
    access.require_admin_or_agent(caller, agent_id)
    async with ctx.database.read() as tx:
        if await db.agents.get(tx, agent_id) is None:
            raise errors.AgentNotFound(agent_id)
        return await db.diagnostics.list_pending(tx, agent_id, now=ctx.now(), limit=PENDING_LIMIT)


async def claim(ctx: Context, *, caller: access.Caller, request_id: UUID) -> wire.DiagnosticRequest:
    """The agent the request is for, or an admin on its behalf; atomic, so of concurrent claims
    exactly one succeeds and the others are told the request is already claimed."""
    async with ctx.work(caller) as w:
        agent_id = None if caller.is_admin else caller.id
        claimed = await db.diagnostics.claim(w.tx, request_id, agent_id=agent_id, now=w.now)
        if claimed is None:
            found = await db.diagnostics.get(w.tx, request_id)
            if found is None:
                raise errors.DiagnosticNotFound(request_id)
            if not _visible(caller, found):
                raise errors.DiagnosticNotOwned(request_id)
            raise errors.DiagnosticAlreadyClaimed(rules.claim_refusal(found, w.now))
        await w.audit(
            "diagnostic.claimed", RESOURCE, claimed.id, {"agent_id": str(claimed.agent_id)}
        )
    return claimed


async def submit(
    ctx: Context, *, caller: access.Caller, request_id: UUID, result: wire.SubmitDiagnosticResult
) -> wire.DiagnosticResult:
    """Only the agent the request is for answers it, only while claimed, and only once: the
    result and the request's completion commit together."""
    if caller.is_admin:
        raise errors.DiagnosticSubmitDenied()
    limit = ctx.settings.current.limits.diagnostic_result_max_bytes
    rules.validate_result(result, now=ctx.now(), limit_bytes=limit)
    async with ctx.work(caller) as w:
        completed = None
        if caller.role is access.Role.AGENT and caller.id is not None:
            completed = await db.diagnostics.complete(
                w.tx, request_id, agent_id=caller.id, now=w.now
            )
        if completed is None:
            found = await db.diagnostics.get(w.tx, request_id)
            if found is None:
                raise errors.DiagnosticNotFound(request_id)
            if not caller.is_agent(found.agent_id):
                raise errors.DiagnosticNotOwned(request_id)
            raise errors.DiagnosticNotClaimed(found.status)
        stored = await db.diagnostics.insert_result(w.tx, request_id, result, now=w.now)
        details = {
            "deployment_object_id": str(completed.deployment_object_id),
            "collected_at": result.collected_at.isoformat(),
        }
        await w.audit("diagnostic.completed", RESOURCE, request_id, details)
    return stored


async def maintain(ctx: Context) -> tuple[int, int, int]:
    """One maintenance run: expire unclaimed requests past ``expires_at``, fail claims left
    unanswered for ``broker.diagnostic_claim_timeout_seconds``, delete requests that ended more
    than ``broker.diagnostic_max_age_hours`` ago. Each batch is its own transaction; brokers
    running this together skip each other's rows. Returns (expired, failed, deleted)."""
    broker = ctx.settings.current.broker
    timeout = broker.diagnostic_claim_timeout_seconds
    expired = await _end_in_batches(ctx, "diagnostic.expired", expired=True, timeout=timeout)
    failed = await _end_in_batches(ctx, "diagnostic.failed", expired=False, timeout=timeout)
    cutoff = ctx.now() - timedelta(hours=broker.diagnostic_max_age_hours)
    deleted = 0
    while True:
        async with ctx.work(None) as w:
            count = await db.diagnostics.delete_ended_before(w.tx, cutoff, limit=MAINTENANCE_BATCH)
        deleted += count
        if count < MAINTENANCE_BATCH:
            break
    if expired or failed or deleted:
        log.info(
            "diagnostics: %d expired, %d failed (unanswered), %d old requests deleted",
            expired,
            failed,
            deleted,
        )
    return expired, failed, deleted


async def _end_in_batches(ctx: Context, action: str, *, expired: bool, timeout: int) -> int:
    total = 0
    while True:
        async with ctx.work(None) as w:
            if expired:
                reason = rules.EXPIRED_REASON
                ended = await db.diagnostics.expire_unclaimed(
                    w.tx, now=w.now, reason=reason, limit=MAINTENANCE_BATCH
                )
            else:
                reason = rules.unanswered_reason(timeout)
                ended = await db.diagnostics.fail_unanswered(
                    w.tx,
                    claimed_before=w.now - timedelta(seconds=timeout),
                    now=w.now,
                    reason=reason,
                    limit=MAINTENANCE_BATCH,
                )
            for request_id in ended:
                await w.audit(action, RESOURCE, request_id, {"reason": reason})
        total += len(ended)
        if len(ended) < MAINTENANCE_BATCH:
            return total
