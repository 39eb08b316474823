"""Agent use cases: registration, lookup, updates, deletion, heartbeat and PAK rotation."""

from __future__ import annotations

import unicodedata
from uuid import UUID

from brokkr.broker import db
from brokkr.broker.domain import access, errors, events, paging, paks, updates
from brokkr.broker.services.context import Context
from brokkr.common import wire


async def require_live(tx: db.Tx, agent_id: UUID) -> None:
    """Raise ``AgentNotFound`` unless the agent exists and is not deleted."""
    if await db.agents.get(tx, agent_id) is None:
        raise errors.AgentNotFound(agent_id)


async def create(
    ctx: Context, *, caller: access.Caller, new: wire.NewAgent
) -> wire.CreateAgentResponse:
    access.require_admin(caller)
    pak = paks.generate()
    async with ctx.work(caller) as w:
        agent = await db.agents.insert(
            w.tx,
            name=new.name,
            cluster_name=new.cluster_name,
            status="INACTIVE",
            pak_hash=pak.hash,
            key_id=pak.key_id,
            now=w.now,
        )
        details = {"name": agent.name, "cluster_name": agent.cluster_name, "pak_key_id": pak.key_id}
        await w.audit("agent.created", "agent", agent.id, details)
        await w.emit(events.agent_registered(agent))
    return wire.CreateAgentResponse(agent=agent, initial_pak=pak.plaintext)


async def list_all(
    ctx: Context, *, caller: access.Caller, limit: int, offset: int
) -> paging.Page[wire.Agent]:
    access.require_admin(caller)
    limit = min(limit, paging.MAX_LIMIT)
    async with ctx.database.read() as tx:
        rows = await db.agents.list_live(tx, limit=limit + 1, offset=offset)
    budget = ctx.settings.current.limits.list_page_bytes
    return paging.page(rows[:limit], budget=budget, offset=offset, available=len(rows))


async def search(
    ctx: Context, *, caller: access.Caller, name: str | None, cluster_name: str | None
) -> wire.Agent:
    if not name or not cluster_name:
        raise errors.NameAndClusterRequired()
    if caller.role is access.Role.GENERATOR:
        access.require_admin(caller)
    # Names are stored in NFC (D14): any spelling of a name finds its agent.
    name, cluster_name = (unicodedata.normalize("NFC", text) for text in (name, cluster_name))
    async with ctx.database.read() as tx:
        agent = await db.agents.find_by_name(tx, name=name, cluster_name=cluster_name)
    # Non-admins learn nothing about agents other than themselves (no existence oracle).
    if caller.is_admin:
        if agent is None:
            raise errors.AgentNotFound()
        return agent
    if agent is None or not caller.is_agent(agent.id):
        raise errors.AgentPakMismatch()
    return agent


async def get(ctx: Context, *, caller: access.Caller, agent_id: UUID) -> wire.Agent:
    access.require_admin_or_agent(caller, agent_id)
    agent = await db.agents.load(ctx.database, agent_id)
    if agent is None:
        raise errors.AgentNotFound(agent_id)
    return agent


async def update(
    ctx: Context, *, caller: access.Caller, agent_id: UUID, update: wire.AgentUpdate
) -> wire.Agent:
    access.require_admin_or_agent(caller, agent_id)
    access.require_same_id(update.id, agent_id, errors.IdMismatch)
    async with ctx.work(caller) as w:
        current = await db.agents.get(w.tx, agent_id)
        if current is None:
            raise errors.AgentNotFound(agent_id)
        changes = updates.changes(current, update, ("name", "cluster_name", "status"))
        if changes and not caller.is_admin:
            # D8: an agent may neither activate nor rename itself.
            raise errors.AgentUpdateForbidden(sorted(changes))
        if not changes:
            return current
        agent = await db.agents.update(w.tx, agent_id, now=w.now, **changes)
        if agent is None:
            raise errors.AgentNotFound(agent_id)
        await w.audit("agent.updated", "agent", agent_id, changes)
        if "status" in changes:
            # An agent no longer active loses its channel connection (and pauses).
            await w.state_changed(agent_id)
    return agent


async def delete(ctx: Context, *, caller: access.Caller, agent_id: UUID) -> None:
    """Soft-delete; deleting an already deleted agent changes nothing (D15)."""
    access.require_admin(caller)
    async with ctx.work(caller) as w:
        credential = await db.agents.get_credential(w.tx, agent_id)
        if credential is None:
            if await db.agents.get_including_deleted(w.tx, agent_id) is not None:
                return
            raise errors.AgentNotFound(agent_id)
        await db.agents.soft_delete(w.tx, agent_id, now=w.now)
        await w.revoked(credential.pak_hash)
        await w.audit("agent.deleted", "agent", agent_id)
        await w.emit(events.agent_deregistered(agent_id, deleted_at=w.now))


async def record_heartbeat(ctx: Context, *, caller: access.Caller, agent_id: UUID) -> None:
    """Liveness only: not audited, or the trail would be mostly heartbeats."""
    access.require_agent_itself(caller, agent_id)
    async with ctx.work(caller) as w:
        if await db.agents.update(w.tx, agent_id, now=w.now, last_heartbeat=w.now) is None:
            raise errors.AgentNotFound(agent_id)


async def rotate_pak(
    ctx: Context, *, caller: access.Caller, agent_id: UUID
) -> wire.RotateAgentPakResponse:
    access.require_admin_or_agent(caller, agent_id)
    pak = paks.generate()
    async with ctx.work(caller) as w:
        credential = await db.agents.get_credential(w.tx, agent_id)
        if credential is None:
            raise errors.AgentNotFound(agent_id)
        if caller.is_agent(agent_id):
            access.require_key_still_held(caller, credential.pak_hash)
        agent = await db.agents.update(
            w.tx, agent_id, now=w.now, pak_hash=pak.hash, key_id=pak.key_id
        )
        if agent is None:
            raise errors.AgentNotFound(agent_id)
        await w.revoked(credential.pak_hash)
        details = {"agent_name": agent.name, "pak_key_id": pak.key_id}
        await w.audit("pak.rotated", "agent", agent_id, details)
    return wire.RotateAgentPakResponse(agent=agent, pak=pak.plaintext)
