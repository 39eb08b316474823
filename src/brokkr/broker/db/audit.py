"""Writing and querying the audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa

from brokkr.broker.db import tables
from brokkr.broker.db.engine import Tx
from brokkr.broker.domain import audit
from brokkr.common import wire

_t = tables.audit_logs
_COLUMNS = (
    _t.c.id,
    _t.c.timestamp,
    _t.c.actor_type,
    _t.c.actor_id,
    _t.c.action,
    _t.c.resource_type,
    _t.c.resource_id,
    _t.c.details,
    _t.c.ip_address,
    _t.c.user_agent,
    _t.c.created_at,
    _t.c.key_id,
)


async def insert(tx: Tx, entry: audit.Entry, *, now: datetime) -> None:
    """Store ``entry`` with its client-controlled text clipped (``audit.clipped``)."""
    entry = audit.clipped(entry)
    await tx.execute(
        _t.insert().values(
            id=uuid.uuid4(),
            timestamp=now,
            created_at=now,
            actor_type=entry.actor_type,
            actor_id=entry.actor_id,
            key_id=entry.key_id,
            action=entry.action,
            resource_type=entry.resource_type,
            resource_id=entry.resource_id,
            outcome=entry.outcome,
            details=entry.details,
            ip_address=entry.ip_address,
            user_agent=entry.user_agent,
        )
    )


def _conditions(query: audit.Query) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if query.actor_type is not None:
        conditions.append(_t.c.actor_type == query.actor_type)
    if query.actor_id is not None:
        conditions.append(_t.c.actor_id == query.actor_id)
    if query.action is not None:
        text, is_prefix = audit.action_pattern(query.action)
        if is_prefix:
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conditions.append(_t.c.action.like(f"{escaped}%", escape="\\"))
        else:
            conditions.append(_t.c.action == text)
    if query.resource_type is not None:
        conditions.append(_t.c.resource_type == query.resource_type)
    if query.resource_id is not None:
        conditions.append(_t.c.resource_id == query.resource_id)
    if query.since is not None:
        conditions.append(_t.c.timestamp >= query.since)
    if query.until is not None:
        conditions.append(_t.c.timestamp < query.until)
    return conditions


async def search(tx: Tx, query: audit.Query) -> tuple[list[wire.AuditLog], int]:
    """One page of matching records, newest first, and the total number of matches."""
    conditions = _conditions(query)
    total = (
        await tx.execute(sa.select(sa.func.count()).select_from(_t).where(*conditions))
    ).scalar_one()
    rows = await tx.execute(
        sa.select(*_COLUMNS)
        .where(*conditions)
        .order_by(_t.c.timestamp.desc(), _t.c.id.desc())
        .limit(query.limit)
        .offset(query.offset)
    )
    return [wire.AuditLog(**dict(row._mapping)) for row in rows], total
