"""Agent labels and annotations: what label and annotation targeting matches on."""

from __future__ import annotations

from uuid import UUID

from brokkr.broker import db
from brokkr.broker.domain import access, errors
from brokkr.broker.services import agents, assignments
from brokkr.broker.services.context import Context
from brokkr.common import wire


async def list_labels(
    ctx: Context, *, caller: access.Caller, agent_id: UUID
) -> list[wire.AgentLabel]:
    access.require_admin_or_agent(caller, agent_id)
    async with ctx.database.read() as tx:
        await agents.require_live(tx, agent_id)
        return await db.agent_metadata.labels.list(tx, agent_id)


async def add_label(
    ctx: Context, *, caller: access.Caller, agent_id: UUID, new: wire.NewAgentLabel
) -> wire.AgentLabel:
    access.require_admin(caller)
    access.require_same_id(new.agent_id, agent_id, errors.AgentIdMismatch)
    async with ctx.work(caller) as w:
        await agents.require_live(w.tx, agent_id)
        async with assignments.of_agent(w, agent_id):
            label = await db.agent_metadata.labels.add(w.tx, agent_id, new.label)
        await w.audit("agent.label_added", "agent", agent_id, {"label": new.label})
        await w.state_changed(agent_id)
    return label


async def remove_label(ctx: Context, *, caller: access.Caller, agent_id: UUID, label: str) -> None:
    access.require_admin(caller)
    async with ctx.work(caller) as w:
        await agents.require_live(w.tx, agent_id)
        async with assignments.of_agent(w, agent_id):
            if not await db.agent_metadata.labels.remove(w.tx, agent_id, label):
                raise errors.AgentLabelNotFound(label)
        await w.audit("agent.label_removed", "agent", agent_id, {"label": label})
        await w.state_changed(agent_id)


async def list_annotations(
    ctx: Context, *, caller: access.Caller, agent_id: UUID
) -> list[wire.AgentAnnotation]:
    access.require_admin_or_agent(caller, agent_id)
    async with ctx.database.read() as tx:
        await agents.require_live(tx, agent_id)
        return await db.agent_metadata.annotations.list(tx, agent_id)


async def add_annotation(
    ctx: Context, *, caller: access.Caller, agent_id: UUID, new: wire.NewAgentAnnotation
) -> wire.AgentAnnotation:
    access.require_admin(caller)
    access.require_same_id(new.agent_id, agent_id, errors.AgentIdMismatch)
    async with ctx.work(caller) as w:
        await agents.require_live(w.tx, agent_id)
        async with assignments.of_agent(w, agent_id):
            annotation = await db.agent_metadata.annotations.add(w.tx, agent_id, new.key, new.value)
        await w.audit(
            "agent.annotation_added", "agent", agent_id, {"key": new.key, "value": new.value}
        )
        await w.state_changed(agent_id)
    return annotation


async def remove_annotation(
    ctx: Context, *, caller: access.Caller, agent_id: UUID, key: str
) -> None:
    access.require_admin(caller)
    async with ctx.work(caller) as w:
        await agents.require_live(w.tx, agent_id)
        async with assignments.of_agent(w, agent_id):
            if not await db.agent_metadata.annotations.remove(w.tx, agent_id, key):
                raise errors.AgentAnnotationNotFound(key)
        await w.audit("agent.annotation_removed", "agent", agent_id, {"key": key})
        await w.state_changed(agent_id)
