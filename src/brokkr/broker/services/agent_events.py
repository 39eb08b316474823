"""Agent events: the outcome of applying a deployment object, reported by the agent itself."""

from __future__ import annotations

from uuid import UUID

from brokkr.broker import db
from brokkr.broker.domain import access, errors, events, paging
from brokkr.broker.services import agents
from brokkr.broker.services.context import Context
from brokkr.common import wire

DEFAULT_LIMIT = 100


async def record(
    ctx: Context, *, caller: access.Caller, agent_id: UUID, new: wire.NewAgentEvent
) -> wire.AgentEvent:
    """Only the agent itself reports, and only about objects it is served (D8, flaw 7)."""
    access.require_agent_itself(caller, agent_id)
    access.require_same_id(new.agent_id, agent_id, errors.AgentIdMismatch)
    async with ctx.work(caller) as w:
        if not await db.target_state.is_served(w.tx, agent_id, new.deployment_object_id):
            raise errors.DeploymentObjectNotServed()
        event = await db.agent_events.insert(
            w.tx,
            agent_id=agent_id,
            deployment_object_id=new.deployment_object_id,
            event_type=new.event_type,
            status=new.status,
            message=new.message,
            now=w.now,
        )
        stack_id = await db.deployment_objects.stack_of(w.tx, new.deployment_object_id)
        assert stack_id is not None  # noqa: S101 - served above, and objects are never erased
        # D18: every report is announced, whatever path brought it.
        await w.emit(events.deployment_reported(event, stack_id=stack_id))
        if new.status == "SUCCESS":
            # D13: an acknowledged deletion marker is no longer owed, and the stack is gone
            # from this agent's cluster.
            if await db.target_state.acknowledge_marker(w.tx, agent_id, new.deployment_object_id):
                await w.emit(
                    events.deployment_deleted(
                        new.deployment_object_id,
                        stack_id=stack_id,
                        agent_id=agent_id,
                        deleted_at=w.now,
                    )
                )
            await w.state_changed(agent_id)
        details = {
            "event_id": str(event.id),
            "status": event.status,
            "event_type": event.event_type,
        }
        await w.audit("agent_event.created", "deployment_object", new.deployment_object_id, details)
    return event


def _scope(caller: access.Caller) -> dict[str, UUID | None]:
    if caller.is_admin:
        return {"agent_id": None, "generator_id": None}
    if caller.role is access.Role.AGENT:
        return {"agent_id": caller.id, "generator_id": None}
    return {"agent_id": None, "generator_id": caller.id}


async def list_for_agent(
    ctx: Context, *, caller: access.Caller, agent_id: UUID, limit: int, offset: int
) -> paging.Page[wire.AgentEvent]:
    access.require_admin_or_agent(caller, agent_id)
    limit = min(limit, paging.MAX_LIMIT)
    async with ctx.database.read() as tx:
        await agents.require_live(tx, agent_id)
        rows = await db.agent_events.search(tx, agent_id=agent_id, limit=limit + 1, offset=offset)
    budget = ctx.settings.current.limits.list_page_bytes
    return paging.page(rows[:limit], budget=budget, offset=offset, available=len(rows))


async def search(
    ctx: Context,
    *,
    caller: access.Caller,
    agent_id: UUID | None,
    deployment_object_id: UUID | None,
    limit: int,
    offset: int,
) -> paging.Page[wire.AgentEvent]:
    """Admins see every event, agents their own, generators those about their stacks."""
    scope = _scope(caller)
    if agent_id is not None and scope["agent_id"] not in (None, agent_id):
        return paging.Page(items=[], next_offset=None)
    limit = min(limit, paging.MAX_LIMIT)
    async with ctx.database.read() as tx:
        rows = await db.agent_events.search(
            tx,
            agent_id=agent_id or scope["agent_id"],
            generator_id=scope["generator_id"],
            deployment_object_id=deployment_object_id,
            limit=limit + 1,
            offset=offset,
        )
    budget = ctx.settings.current.limits.list_page_bytes
    return paging.page(rows[:limit], budget=budget, offset=offset, available=len(rows))


async def get(ctx: Context, *, caller: access.Caller, event_id: UUID) -> wire.AgentEvent:
    async with ctx.database.read() as tx:
        event = await db.agent_events.get(tx, event_id, **_scope(caller))
    if event is None:
        raise errors.AgentEventNotFound(event_id)
    return event
