"""Deployment health: agents report what they find running for the objects they applied;
admins and the owning generator read it per deployment object and per stack."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from brokkr.broker import db
from brokkr.broker.domain import access, errors
from brokkr.broker.domain import health as rules
from brokkr.broker.services import agents, stacks
from brokkr.broker.services.context import Context
from brokkr.common import wire

UNKNOWN_OBJECT = "unknown deployment object"
DELETED_OBJECT = "deployment object deleted"
NOT_SERVED = "not served to this agent"


async def report(
    ctx: Context, *, caller: access.Caller, agent_id: UUID, update: wire.HealthStatusUpdate
) -> None:
    """Upsert the agent's latest health per object, all entries or none. Not audited: this is
    telemetry sent every reporting interval, and the rows themselves say who reported what."""
    access.require_admin_or_agent(caller, agent_id)
    max_entries = ctx.settings.current.limits.health_report_max_entries
    problems = rules.check_report(update, max_entries=max_entries, now=ctx.now())
    if problems:
        raise errors.InvalidHealthReport([problem.as_details() for problem in problems])
    entries = update.deployment_objects
    async with ctx.work(caller) as w:
        await agents.require_live(w.tx, agent_id)
        ids = [entry.id for entry in entries]
        liveness = await db.health.object_liveness(w.tx, ids)
        served = await db.target_state.served_among(
            w.tx, agent_id, [id_ for id_ in ids if liveness.get(id_)]
        )
        refused = [
            rules.Problem(index, entry.id, reason)
            for index, entry in enumerate(entries)
            if (reason := _refusal(liveness.get(entry.id), entry.id in served))
        ]
        if refused:
            raise errors.InvalidHealthReport([problem.as_details() for problem in refused])
        reports = [
            db.health.Report(
                deployment_object_id=entry.id,
                status=entry.status,
                summary=None if entry.summary is None else rules.encode_summary(entry.summary),
                checked_at=entry.checked_at,
            )
            for entry in entries
        ]
        await db.health.upsert(w.tx, agent_id, reports, now=w.now)


def _refusal(live: bool | None, served: bool) -> str | None:
    if live is None:
        return UNKNOWN_OBJECT
    if not live:
        return DELETED_OBJECT
    return None if served else NOT_SERVED


def _require_reader(caller: access.Caller) -> None:
    if caller.role is access.Role.AGENT:
        raise errors.HealthReadDenied()


async def for_deployment_object(
    ctx: Context, *, caller: access.Caller, object_id: UUID
) -> wire.DeploymentHealthResponse:
    """Every live agent's row, stale ones read as ``unknown``; a foreign or unknown object is
    404 (the reference answers 200 ``unknown`` for any id, flaw 17)."""
    _require_reader(caller)
    async with ctx.database.read() as tx:
        found = await db.deployment_objects.get(tx, object_id)
        if found is None or not await _owns(tx, caller, found.stack_id):
            raise errors.DeploymentObjectNotFound(object_id)
        records = await db.health.for_object(tx, object_id)
    fresh = _fresh_since(ctx)
    read = [rules.as_read(record, fresh) for record in records]
    return wire.DeploymentHealthResponse(
        deployment_object_id=object_id,
        health_records=read,
        overall_status=rules.overall(record.status for record in read),
    )


async def _owns(tx: db.Tx, caller: access.Caller, stack_id: UUID) -> bool:
    if caller.is_admin:
        return True
    # A deletion marker outlives its stack: its owner is still whoever owned the stack.
    stack = await db.stacks.get_including_deleted(tx, stack_id)
    return stack is not None and caller.is_generator(stack.generator_id)


async def for_stack(
    ctx: Context, *, caller: access.Caller, stack_id: UUID
) -> wire.StackHealthResponse:
    """The stack's live objects that have rows, newest revision first."""
    _require_reader(caller)
    fresh = _fresh_since(ctx)
    async with ctx.database.read() as tx:
        await stacks.owned(tx, caller, stack_id)
        counts = await db.health.counts_for_stack(tx, stack_id, fresh=fresh)
    objects = [
        rules.object_summary(c.id, healthy=c.healthy, degraded=c.degraded, failing=c.failing)
        for c in counts
    ]
    return wire.StackHealthResponse(
        stack_id=stack_id,
        overall_status=rules.overall(o.status for o in objects),
        deployment_objects=objects,
    )


def _fresh_since(ctx: Context) -> datetime | None:
    return rules.fresh_since(ctx.now(), ctx.settings.current.broker.health_stale_after_seconds)
