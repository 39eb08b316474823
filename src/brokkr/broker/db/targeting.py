"""Which stacks an agent is associated with (D12): an explicit target, any shared label, or
any shared annotation key=value. Computed in SQL on every call; nothing is materialised."""

from __future__ import annotations

import uuid
from uuid import UUID

import sqlalchemy as sa

from brokkr.broker.db import stacks, tables
from brokkr.broker.db.engine import Tx
from brokkr.common import wire

_targets = tables.agent_targets
_al, _sl = tables.agent_labels, tables.stack_labels
_aa, _sa = tables.agent_annotations, tables.stack_annotations


def associated_stack_ids(agent_id: sa.ColumnElement[UUID] | UUID) -> sa.CompoundSelect[UUID]:
    """Ids of every stack (live or not) an agent reaches by target, label or annotation."""
    return sa.union(
        sa.select(_targets.c.stack_id).where(_targets.c.agent_id == agent_id),
        sa.select(_sl.c.stack_id)
        .join(_al, _al.c.label == _sl.c.label)
        .where(_al.c.agent_id == agent_id),
        sa.select(_sa.c.stack_id)
        .join(_aa, sa.and_(_aa.c.key == _sa.c.key, _aa.c.value == _sa.c.value))
        .where(_aa.c.agent_id == agent_id),
    )


async def associated_stacks(tx: Tx, agent_id: UUID) -> list[wire.Stack]:
    s = tables.stacks
    rows = await tx.execute(
        sa.select(*stacks.COLUMNS)
        .where(s.c.id.in_(associated_stack_ids(agent_id)), s.c.deleted_at.is_(None))
        .order_by(s.c.id)
    )
    return [stacks.to_wire(row) for row in rows]


async def associated_live_stack_ids(tx: Tx, agent_id: UUID) -> set[UUID]:
    s = tables.stacks
    rows = await tx.execute(
        sa.select(s.c.id).where(
            s.c.id.in_(associated_stack_ids(agent_id)), s.c.deleted_at.is_(None)
        )
    )
    return {row.id for row in rows}


async def is_associated(tx: Tx, agent_id: UUID, stack_id: UUID) -> bool:
    ids = associated_stack_ids(agent_id).subquery()
    row = (await tx.execute(sa.select(ids.c.stack_id).where(ids.c.stack_id == stack_id))).first()
    return row is not None


async def associated_agents(tx: Tx, stack_id: UUID) -> list[UUID]:
    """Live agents that reach ``stack_id`` by any path."""
    agents = tables.agents
    reaching = sa.union(
        sa.select(_targets.c.agent_id).where(_targets.c.stack_id == stack_id),
        sa.select(_al.c.agent_id)
        .join(_sl, _sl.c.label == _al.c.label)
        .where(_sl.c.stack_id == stack_id),
        sa.select(_aa.c.agent_id)
        .join(_sa, sa.and_(_sa.c.key == _aa.c.key, _sa.c.value == _aa.c.value))
        .where(_sa.c.stack_id == stack_id),
    )
    rows = await tx.execute(
        sa.select(agents.c.id)
        .where(agents.c.id.in_(reaching), agents.c.deleted_at.is_(None))
        .order_by(agents.c.id)
    )
    return [row.id for row in rows]


async def list_targets(tx: Tx, agent_id: UUID) -> list[wire.AgentTarget]:
    rows = await tx.execute(
        sa.select(_targets.c.id, _targets.c.agent_id, _targets.c.stack_id)
        .where(_targets.c.agent_id == agent_id)
        .order_by(_targets.c.stack_id)
    )
    return [wire.AgentTarget(id=r.id, agent_id=r.agent_id, stack_id=r.stack_id) for r in rows]


async def add_target(tx: Tx, agent_id: UUID, stack_id: UUID) -> wire.AgentTarget:
    target_id = uuid.uuid4()
    await tx.execute(_targets.insert().values(id=target_id, agent_id=agent_id, stack_id=stack_id))
    return wire.AgentTarget(id=target_id, agent_id=agent_id, stack_id=stack_id)


async def remove_target(tx: Tx, agent_id: UUID, stack_id: UUID) -> bool:
    result = await tx.execute(
        _targets.delete().where(_targets.c.agent_id == agent_id, _targets.c.stack_id == stack_id)
    )
    return result.rowcount > 0
