"""Queries on stack telemetry (``agent_k8s_events``, ``agent_pod_logs``): batch inserts, the
history reads (newest first) and the live tail (oldest first after a cursor)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from brokkr.broker.db import tables
from brokkr.broker.db.engine import Tx
from brokkr.common import wire

EVENTS = tables.agent_k8s_events.name
LOGS = tables.agent_pod_logs.name

_e = tables.agent_k8s_events
_l = tables.agent_pod_logs
Row = dict[str, Any]
# Where a tail stands: the (created_at, id) of the last row it read; rows after it come next.
Cursor = tuple[datetime, UUID]


async def insert_events(tx: Tx, rows: Sequence[Row]) -> None:
    """Rows with every column of ``agent_k8s_events`` (one executemany)."""
    if rows:
        await tx.execute(_e.insert(), list(rows))


async def insert_logs(tx: Tx, rows: Sequence[Row]) -> None:
    """Rows with every column of ``agent_pod_logs`` (one executemany)."""
    if rows:
        await tx.execute(_l.insert(), list(rows))


def _event(row: sa.Row[Any]) -> wire.AgentK8sEvent:
    return wire.AgentK8sEvent(**row._mapping)


def _line(row: sa.Row[Any]) -> wire.AgentPodLog:
    return wire.AgentPodLog(**row._mapping)


async def _recent(
    tx: Tx, table: sa.Table, stack_id: UUID, *, since: datetime, limit: int
) -> sa.CursorResult[Any]:
    """Rows of a telemetry table for the stack created at or after ``since``, newest first."""
    return await tx.execute(
        sa.select(table)
        .where(table.c.stack_id == stack_id, table.c.created_at >= since)
        .order_by(table.c.created_at.desc(), table.c.id.desc())
        .limit(limit)
    )


async def recent_events(
    tx: Tx, stack_id: UUID, *, since: datetime, limit: int
) -> list[wire.AgentK8sEvent]:
    """The stack's events created at or after ``since``, newest first."""
    return [_event(row) for row in await _recent(tx, _e, stack_id, since=since, limit=limit)]


async def recent_logs(
    tx: Tx, stack_id: UUID, *, since: datetime, limit: int
) -> list[wire.AgentPodLog]:
    """The stack's log lines created at or after ``since``, newest first."""
    return [_line(row) for row in await _recent(tx, _l, stack_id, since=since, limit=limit)]


def _after(table: sa.Table, stack_id: UUID, cursor: Cursor, limit: int) -> sa.Select[Any]:
    return (
        sa.select(table)
        .where(
            table.c.stack_id == stack_id,
            sa.or_(
                table.c.created_at > cursor[0],
                sa.and_(table.c.created_at == cursor[0], table.c.id > cursor[1]),
            ),
        )
        .order_by(table.c.created_at, table.c.id)
        .limit(limit)
    )


async def events_after(
    tx: Tx, stack_id: UUID, cursor: Cursor, *, limit: int
) -> list[wire.AgentK8sEvent]:
    """The stack's events after ``cursor``, oldest first."""
    return [_event(row) for row in await tx.execute(_after(_e, stack_id, cursor, limit))]


async def logs_after(
    tx: Tx, stack_id: UUID, cursor: Cursor, *, limit: int
) -> list[wire.AgentPodLog]:
    """The stack's log lines after ``cursor``, oldest first."""
    return [_line(row) for row in await tx.execute(_after(_l, stack_id, cursor, limit))]
