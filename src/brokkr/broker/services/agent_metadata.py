"""Agent labels and annotations: what label and annotation targeting matches on."""

from __future__ import annotations

from uuid import UUID

import msgspec

from brokkr.broker import db
from brokkr.broker.domain import access, audit, errors
from brokkr.broker.services.context import Context
from brokkr.common import wire


async def _require_live_agent(tx: db.Tx, agent_id: UUID) -> None:
    if await db.agents.get(tx, agent_id) is None:
        raise errors.NotFound(
            "agent not found", code="agent_not_found", details={"id": str(agent_id)}
        )


def _body_agent(body_agent_id: UUID | msgspec.UnsetType, agent_id: UUID) -> None:
    access.require_same_id(
        None if body_agent_id is msgspec.UNSET else body_agent_id, agent_id, field="agent_id"
    )


async def list_labels(
    ctx: Context, *, caller: access.Caller, agent_id: UUID
) -> list[wire.AgentLabel]:
    access.require_admin_or_agent(caller, agent_id)
    async with ctx.database.read() as tx:
        await _require_live_agent(tx, agent_id)
        return await db.agent_metadata.labels.list(tx, agent_id)


async def add_label(
    ctx: Context, *, caller: access.Caller, agent_id: UUID, new: wire.NewAgentLabel
) -> wire.AgentLabel:
    access.require_admin(caller)
    _body_agent(new.agent_id, agent_id)
    now = ctx.now()
    async with ctx.database.transaction() as tx:
        await _require_live_agent(tx, agent_id)
        label = await db.agent_metadata.labels.add(tx, agent_id, new.label)
        entry = audit.by(
            caller,
            action="agent.label_added",
            resource_type="agent",
            resource_id=agent_id,
            details={"label": new.label},
        )
        await db.audit.insert(tx, entry, now=now)
        await db.notify.publish_state_change(tx, agent_id)
    ctx.versions.changed(agent_id)
    return label


async def remove_label(ctx: Context, *, caller: access.Caller, agent_id: UUID, label: str) -> None:
    access.require_admin(caller)
    now = ctx.now()
    async with ctx.database.transaction() as tx:
        await _require_live_agent(tx, agent_id)
        if not await db.agent_metadata.labels.remove(tx, agent_id, label):
            raise errors.NotFound(
                "the agent has no such label",
                code="agent_label_not_found",
                details={"label": label},
            )
        entry = audit.by(
            caller,
            action="agent.label_removed",
            resource_type="agent",
            resource_id=agent_id,
            details={"label": label},
        )
        await db.audit.insert(tx, entry, now=now)
        await db.notify.publish_state_change(tx, agent_id)
    ctx.versions.changed(agent_id)


async def list_annotations(
    ctx: Context, *, caller: access.Caller, agent_id: UUID
) -> list[wire.AgentAnnotation]:
    access.require_admin_or_agent(caller, agent_id)
    async with ctx.database.read() as tx:
        await _require_live_agent(tx, agent_id)
        return await db.agent_metadata.annotations.list(tx, agent_id)


async def add_annotation(
    ctx: Context, *, caller: access.Caller, agent_id: UUID, new: wire.NewAgentAnnotation
) -> wire.AgentAnnotation:
    access.require_admin(caller)
    _body_agent(new.agent_id, agent_id)
    now = ctx.now()
    async with ctx.database.transaction() as tx:
        await _require_live_agent(tx, agent_id)
        annotation = await db.agent_metadata.annotations.add(tx, agent_id, new.key, new.value)
        entry = audit.by(
            caller,
            action="agent.annotation_added",
            resource_type="agent",
            resource_id=agent_id,
            details={"key": new.key, "value": new.value},
        )
        await db.audit.insert(tx, entry, now=now)
        await db.notify.publish_state_change(tx, agent_id)
    ctx.versions.changed(agent_id)
    return annotation


async def remove_annotation(
    ctx: Context, *, caller: access.Caller, agent_id: UUID, key: str
) -> None:
    access.require_admin(caller)
    now = ctx.now()
    async with ctx.database.transaction() as tx:
        await _require_live_agent(tx, agent_id)
        if not await db.agent_metadata.annotations.remove(tx, agent_id, key):
            raise errors.NotFound(
                "the agent has no annotation with this key",
                code="agent_annotation_not_found",
                details={"key": key},
            )
        entry = audit.by(
            caller,
            action="agent.annotation_removed",
            resource_type="agent",
            resource_id=agent_id,
            details={"key": key},
        )
        await db.audit.insert(tx, entry, now=now)
        await db.notify.publish_state_change(tx, agent_id)
    ctx.versions.changed(agent_id)
