"""Deployment health rows: one per (agent, deployment object), replaced by each report."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from uuid import UUID

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from brokkr.broker.db import tables
from brokkr.broker.db.engine import Tx
from brokkr.common import wire

_h = tables.deployment_health
_d = tables.deployment_objects
_a = tables.agents
_COLUMNS = (
    _h.c.id,
    _h.c.agent_id,
    _h.c.deployment_object_id,
    _h.c.status,
    _h.c.summary,
    _h.c.checked_at,
    _h.c.created_at,
    _h.c.updated_at,
)


class Report(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of a checked report, its summary already encoded as stored."""

    deployment_object_id: UUID
    status: str
    summary: str | None
    checked_at: datetime


class ObjectCounts(msgspec.Struct, frozen=True, kw_only=True):
    """A stack's object with its count of fresh rows per status."""

    id: UUID
    healthy: int
    degraded: int
    failing: int


async def object_liveness(tx: Tx, object_ids: Collection[UUID]) -> dict[UUID, bool]:
    """Which of ``object_ids`` exist, each mapped to whether it is live (not soft-deleted)."""
    if not object_ids:
        return {}
    rows = await tx.execute(
        sa.select(_d.c.id, _d.c.deleted_at.is_(None).label("live")).where(
            _d.c.id.in_(list(object_ids))
        )
    )
    return {row.id: bool(row.live) for row in rows}


async def upsert(tx: Tx, agent_id: UUID, reports: list[Report], *, now: datetime) -> None:
    """One statement for the whole batch, keyed by (agent, object)."""
    if not reports:
        return
    dialect = postgresql if tx.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(_h).values(
        [
            {
                "id": uuid.uuid4(),
                "agent_id": agent_id,
                "deployment_object_id": report.deployment_object_id,
                "status": report.status,
                "summary": report.summary,
                "checked_at": report.checked_at,
                "created_at": now,
                "updated_at": now,
            }
            # The same order in every batch: concurrent reports of one agent lock its rows in
            # one order and so cannot deadlock each other (PostgreSQL).
            for report in sorted(reports, key=lambda r: r.deployment_object_id)
        ]
    )
    await tx.execute(
        statement.on_conflict_do_update(
            index_elements=[_h.c.agent_id, _h.c.deployment_object_id],
            set_={
                "status": statement.excluded.status,
                "summary": statement.excluded.summary,
                "checked_at": statement.excluded.checked_at,
                "updated_at": statement.excluded.updated_at,
            },
        )
    )


async def for_object(tx: Tx, object_id: UUID) -> list[wire.DeploymentHealth]:
    """The object's rows from live agents, latest check first."""
    rows = await tx.execute(
        sa.select(*_COLUMNS)
        .select_from(_h.join(_a, _a.c.id == _h.c.agent_id))
        .where(_h.c.deployment_object_id == object_id, _a.c.deleted_at.is_(None))
        .order_by(_h.c.checked_at.desc(), _h.c.agent_id)
    )
    return [wire.DeploymentHealth(**row._mapping) for row in rows]


def _fresh_count(status: str, fresh: datetime | None) -> sa.ColumnElement[int]:
    condition = _h.c.status == status
    if fresh is not None:
        condition = sa.and_(condition, _h.c.updated_at >= fresh)
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


async def counts_for_stack(tx: Tx, stack_id: UUID, *, fresh: datetime | None) -> list[ObjectCounts]:
    """The stack's live objects that have a row from a live agent, newest revision first, with
    their rows counted per status; rows received before ``fresh`` count for nothing."""
    rows = await tx.execute(
        sa.select(
            _d.c.id,
            _fresh_count("healthy", fresh).label("healthy"),
            _fresh_count("degraded", fresh).label("degraded"),
            _fresh_count("failing", fresh).label("failing"),
        )
        .select_from(
            _h.join(_d, _d.c.id == _h.c.deployment_object_id).join(_a, _a.c.id == _h.c.agent_id)
        )
        .where(_d.c.stack_id == stack_id, _d.c.deleted_at.is_(None), _a.c.deleted_at.is_(None))
        .group_by(_d.c.id, _d.c.sequence_id)
        .order_by(_d.c.sequence_id.desc())
    )
    return [
        ObjectCounts(
            id=row.id,
            healthy=int(row.healthy),
            degraded=int(row.degraded),
            failing=int(row.failing),
        )
        for row in rows
    ]
