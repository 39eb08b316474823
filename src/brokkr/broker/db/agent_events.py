"""Queries on agent events."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from brokkr.broker.db import tables
from brokkr.broker.db.engine import Tx
from brokkr.common import wire

_e = tables.agent_events
COLUMNS = (
    _e.c.id,
    _e.c.created_at,
    _e.c.updated_at,
    _e.c.deleted_at,
    _e.c.agent_id,
    _e.c.deployment_object_id,
    _e.c.event_type,
    _e.c.status,
    _e.c.message,
)


def _to_wire(row: sa.Row[*tuple[Any, ...]]) -> wire.AgentEvent:
    return wire.AgentEvent(**dict(row._mapping))


async def insert(
    tx: Tx,
    *,
    agent_id: UUID,
    deployment_object_id: UUID,
    event_type: str,
    status: str,
    message: str | None,
    now: datetime,
) -> wire.AgentEvent:
    row = (
        await tx.execute(
            _e.insert()
            .values(
                id=uuid.uuid4(),
                agent_id=agent_id,
                deployment_object_id=deployment_object_id,
                event_type=event_type,
                status=status,
                message=message,
                created_at=now,
                updated_at=now,
            )
            .returning(*COLUMNS)
        )
    ).one()
    return _to_wire(row)


def _scoped(
    query: sa.Select[Any], *, agent_id: UUID | None, generator_id: UUID | None
) -> sa.Select[Any]:
    query = query.where(_e.c.deleted_at.is_(None))
    if agent_id is not None:
        query = query.where(_e.c.agent_id == agent_id)
    if generator_id is not None:
        d, s = tables.deployment_objects, tables.stacks
        owned = (
            sa.select(d.c.id)
            .join(s, s.c.id == d.c.stack_id)
            .where(s.c.generator_id == generator_id)
        )
        query = query.where(_e.c.deployment_object_id.in_(owned))
    return query


async def get(
    tx: Tx, event_id: UUID, *, agent_id: UUID | None = None, generator_id: UUID | None = None
) -> wire.AgentEvent | None:
    query = _scoped(
        sa.select(*COLUMNS).where(_e.c.id == event_id), agent_id=agent_id, generator_id=generator_id
    )
    row = (await tx.execute(query)).first()
    return _to_wire(row) if row else None


async def search(
    tx: Tx,
    *,
    agent_id: UUID | None = None,
    generator_id: UUID | None = None,
    deployment_object_id: UUID | None = None,
    limit: int,
    offset: int,
) -> list[wire.AgentEvent]:
    query = _scoped(sa.select(*COLUMNS), agent_id=agent_id, generator_id=generator_id)
    if deployment_object_id is not None:
        query = query.where(_e.c.deployment_object_id == deployment_object_id)
    rows = await tx.execute(
        query.order_by(_e.c.created_at.desc(), _e.c.id.desc()).limit(limit).offset(offset)
    )
    return [_to_wire(row) for row in rows]
