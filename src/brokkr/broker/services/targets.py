"""Explicit agent → stack targets, and the stacks an agent is associated with."""

from __future__ import annotations

from uuid import UUID

from brokkr.broker import db
from brokkr.broker.domain import access, errors, hints
from brokkr.broker.services import agents, assignments, stacks
from brokkr.broker.services.context import Context
from brokkr.common import wire


async def _may_change_targets(
    tx: db.Tx, caller: access.Caller, stack_id: UUID, *, deleted_ok: bool = False
) -> None:
    """Admins, and the generator owning the stack; never agents (D8). New targets need a live
    stack; a target left pointing at a deleted stack can still be removed. A foreign stack is
    as missing as an unknown one (no existence oracle)."""
    if caller.role is access.Role.AGENT:
        raise errors.TargetCreateDenied()
    if deleted_ok:
        stack = await db.stacks.get_including_deleted(tx, stack_id)
    else:
        stack = await db.stacks.get(tx, stack_id)
    if stack is None:
        raise errors.StackNotFound(stack_id)
    if not (caller.is_admin or caller.is_generator(stack.generator_id)):
        raise errors.StackNotOwned(stack_id)


async def list_targets(
    ctx: Context, *, caller: access.Caller, agent_id: UUID
) -> list[wire.AgentTarget]:
    access.require_admin_or_agent(caller, agent_id)
    async with ctx.database.read() as tx:
        await agents.require_live(tx, agent_id)
        return await db.targeting.list_targets(tx, agent_id)


async def add_target(
    ctx: Context, *, caller: access.Caller, agent_id: UUID, new: wire.NewAgentTarget
) -> wire.AgentTarget:
    access.require_same_id(new.agent_id, agent_id, errors.AgentIdMismatch)
    async with ctx.work(caller) as w:
        await _may_change_targets(w.tx, caller, new.stack_id)
        await agents.require_live(w.tx, agent_id)
        async with assignments.of_agent(w, agent_id):
            target = await db.targeting.add_target(w.tx, agent_id, new.stack_id)
        await w.audit("agent.target_added", "agent", agent_id, {"stack_id": str(new.stack_id)})
        await w.state_changed(agent_id)
        await w.hint(
            hints.Hint(
                kind="target_changed", ref=target.id, agent_id=agent_id, stack_id=new.stack_id
            )
        )
    return target


async def remove_target(
    ctx: Context, *, caller: access.Caller, agent_id: UUID, stack_id: UUID
) -> None:
    async with ctx.work(caller) as w:
        await _may_change_targets(w.tx, caller, stack_id, deleted_ok=True)
        async with assignments.of_agent(w, agent_id):
            if not await db.targeting.remove_target(w.tx, agent_id, stack_id):
                raise errors.AgentTargetNotFound(stack_id)
        await w.audit("agent.target_removed", "agent", agent_id, {"stack_id": str(stack_id)})
        await w.state_changed(agent_id)


async def associated_stacks(
    ctx: Context, *, caller: access.Caller, agent_id: UUID
) -> list[wire.Stack]:
    access.require_admin_or_agent(caller, agent_id)
    async with ctx.database.read() as tx:
        await agents.require_live(tx, agent_id)
        return await db.targeting.associated_stacks(tx, agent_id)


async def stack_agents(ctx: Context, *, caller: access.Caller, stack_id: UUID) -> list[wire.Agent]:
    """The live agents a stack reaches (by target, label or annotation): who should report."""
    async with ctx.database.read() as tx:
        await stacks.owned(tx, caller, stack_id)
        return await db.agents.list_by_ids(tx, await db.targeting.associated_agents(tx, stack_id))
