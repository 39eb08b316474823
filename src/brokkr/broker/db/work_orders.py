"""Work orders: the active queue, its targeting tables and the log of finished orders.

A claim is one conditional UPDATE (``status = 'PENDING'`` and the agent matches) with RETURNING,
so of two concurrent claimers exactly one gets a row back, on either database.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from brokkr.broker.db import tables
from brokkr.broker.db.engine import Tx
from brokkr.broker.domain.work_orders import CLAIMED, PENDING, RETRY_PENDING, NewOrder
from brokkr.common import wire

_q = tables.work_orders
_log = tables.work_order_log
_targets, _labels, _annotations = (
    tables.work_order_targets,
    tables.work_order_labels,
    tables.work_order_annotations,
)
_al, _aa = tables.agent_labels, tables.agent_annotations

_COLUMNS = [_q.c[field] for field in wire.WorkOrder.__struct_fields__]
_LOG_COLUMNS = [_log.c[field] for field in wire.WorkOrderLog.__struct_fields__]


def _order(row: sa.Row[Any]) -> wire.WorkOrder:
    return wire.WorkOrder(**row._mapping)


def _entry(row: sa.Row[Any]) -> wire.WorkOrderLog:
    return wire.WorkOrderLog(**row._mapping)


def _reaches(agent_id: UUID) -> sa.ColumnElement[bool]:
    """The order targets the agent by id, by a shared label or by a shared annotation pair."""
    return sa.or_(
        sa.exists().where(_targets.c.work_order_id == _q.c.id, _targets.c.agent_id == agent_id),
        sa.exists().where(
            _labels.c.work_order_id == _q.c.id,
            _labels.c.label == _al.c.label,
            _al.c.agent_id == agent_id,
        ),
        sa.exists().where(
            _annotations.c.work_order_id == _q.c.id,
            _annotations.c.key == _aa.c.key,
            _annotations.c.value == _aa.c.value,
            _aa.c.agent_id == agent_id,
        ),
    )


async def insert(tx: Tx, new: NewOrder, *, now: datetime) -> wire.WorkOrder:
    order_id = uuid.uuid4()
    row = (
        await tx.execute(
            _q.insert()
            .values(
                id=order_id,
                created_at=now,
                updated_at=now,
                work_type=new.work_type,
                yaml_content=new.yaml_content,
                status=PENDING,
                claim_timeout_seconds=new.claim_timeout_seconds,
                max_retries=new.max_retries,
                retry_count=0,
                backoff_seconds=new.backoff_seconds,
            )
            .returning(*_COLUMNS)
        )
    ).one()
    if new.agent_ids:
        await tx.execute(
            _targets.insert(),
            [{"id": uuid.uuid4(), "work_order_id": order_id, "agent_id": a} for a in new.agent_ids],
        )
    if new.labels:
        await tx.execute(
            _labels.insert(),
            [{"id": uuid.uuid4(), "work_order_id": order_id, "label": lb} for lb in new.labels],
        )
    if new.annotations:
        await tx.execute(
            _annotations.insert(),
            [
                {"id": uuid.uuid4(), "work_order_id": order_id, "key": k, "value": v}
                for k, v in new.annotations
            ],
        )
    return _order(row)


async def get(tx: Tx, order_id: UUID, *, for_update: bool = False) -> wire.WorkOrder | None:
    """``for_update``: lock the row until the transaction ends (PostgreSQL; SQLite's writer lock
    already serialises write transactions)."""
    query = sa.select(*_COLUMNS).where(_q.c.id == order_id)
    if for_update:
        query = query.with_for_update()
    row = (await tx.execute(query)).first()
    return _order(row) if row else None


async def list_orders(tx: Tx, *, status: str | None, work_type: str | None) -> list[wire.WorkOrder]:
    query = sa.select(*_COLUMNS).order_by(_q.c.created_at.desc(), _q.c.id)
    if status is not None:
        query = query.where(_q.c.status == status)
    if work_type is not None:
        query = query.where(_q.c.work_type == work_type)
    return [_order(row) for row in await tx.execute(query)]


async def list_pending(tx: Tx, agent_id: UUID, *, work_type: str | None) -> list[wire.WorkOrder]:
    """PENDING orders the agent may claim, oldest first."""
    query = (
        sa.select(*_COLUMNS)
        .where(_q.c.status == PENDING, _reaches(agent_id))
        .order_by(_q.c.created_at, _q.c.id)
    )
    if work_type is not None:
        query = query.where(_q.c.work_type == work_type)
    return [_order(row) for row in await tx.execute(query)]


async def delete(tx: Tx, order_id: UUID) -> bool:
    result = await tx.execute(_q.delete().where(_q.c.id == order_id))
    return result.rowcount > 0


async def claim(tx: Tx, order_id: UUID, agent_id: UUID, *, now: datetime) -> wire.WorkOrder | None:
    """None: unknown, no longer PENDING, or not meant for this agent."""
    row = (
        await tx.execute(
            _q.update()
            .where(_q.c.id == order_id, _q.c.status == PENDING, _reaches(agent_id))
            .values(status=CLAIMED, claimed_by=agent_id, claimed_at=now, updated_at=now)
            .returning(*_COLUMNS)
        )
    ).first()
    return _order(row) if row else None


async def schedule_retry(
    tx: Tx, order: wire.WorkOrder, *, error: str, retry_after: datetime, now: datetime
) -> None:
    await tx.execute(
        _q.update()
        .where(_q.c.id == order.id)
        .values(
            status=RETRY_PENDING,
            retry_count=order.retry_count + 1,
            next_retry_after=retry_after,
            claimed_by=None,
            claimed_at=None,
            last_error=error,
            last_error_at=now,
            updated_at=now,
        )
    )


async def move_to_log(
    tx: Tx, order: wire.WorkOrder, *, success: bool, message: str | None, now: datetime
) -> wire.WorkOrderLog:
    entry = wire.WorkOrderLog(
        id=order.id,
        work_type=order.work_type,
        created_at=order.created_at,
        claimed_at=order.claimed_at,
        completed_at=now,
        claimed_by=order.claimed_by,
        success=success,
        retries_attempted=order.retry_count,
        result_message=message,
        yaml_content=order.yaml_content,
    )
    await tx.execute(_q.delete().where(_q.c.id == order.id))
    await tx.execute(
        _log.insert().values(**{field: getattr(entry, field) for field in entry.__struct_fields__})
    )
    return entry


async def get_log_entry(tx: Tx, entry_id: UUID) -> wire.WorkOrderLog | None:
    row = (await tx.execute(sa.select(*_LOG_COLUMNS).where(_log.c.id == entry_id))).first()
    return _entry(row) if row else None


async def list_log(
    tx: Tx,
    *,
    work_type: str | None,
    success: bool | None,
    agent_id: UUID | None,
    limit: int,
) -> list[wire.WorkOrderLog]:
    query = sa.select(*_LOG_COLUMNS).order_by(_log.c.completed_at.desc(), _log.c.id).limit(limit)
    if work_type is not None:
        query = query.where(_log.c.work_type == work_type)
    if success is not None:
        query = query.where(_log.c.success == success)
    if agent_id is not None:
        query = query.where(_log.c.claimed_by == agent_id)
    return [_entry(row) for row in await tx.execute(query)]


async def promote_due_retries(tx: Tx, *, now: datetime) -> int:
    """RETRY_PENDING orders whose wait is over become PENDING; retry count and error are kept."""
    result = await tx.execute(
        _q.update()
        .where(_q.c.status == RETRY_PENDING, _q.c.next_retry_after <= now)
        .values(status=PENDING, next_retry_after=None, updated_at=now)
    )
    return result.rowcount


async def lock_claimed(tx: Tx) -> list[wire.WorkOrder]:
    """Every CLAIMED order, locked; rows another broker holds are skipped, so two brokers never
    release the same claim (SQLite: its writer lock serialises the whole transaction)."""
    query = (
        sa.select(*_COLUMNS)
        .where(_q.c.status == CLAIMED)
        .order_by(_q.c.claimed_at, _q.c.id)
        .with_for_update(skip_locked=True)
    )
    return [_order(row) for row in await tx.execute(query)]


async def release_claim(tx: Tx, order: wire.WorkOrder, *, error: str, now: datetime) -> None:
    """A stale claim counts as an attempt (D17): back to PENDING with one more retry spent."""
    await tx.execute(
        _q.update()
        .where(_q.c.id == order.id, _q.c.status == CLAIMED, _q.c.claimed_by == order.claimed_by)
        .values(
            status=PENDING,
            claimed_by=None,
            claimed_at=None,
            retry_count=order.retry_count + 1,
            last_error=error,
            last_error_at=now,
            updated_at=now,
        )
    )


async def reached_agents(tx: Tx, order_id: UUID) -> set[UUID]:
    """Every agent the order targets: by id, by a shared label or by a shared annotation pair
    (deleted agents included: they are never connected)."""
    reaching = sa.union(
        sa.select(_targets.c.agent_id).where(_targets.c.work_order_id == order_id),
        sa.select(_al.c.agent_id)
        .join(_labels, _labels.c.label == _al.c.label)
        .where(_labels.c.work_order_id == order_id),
        sa.select(_aa.c.agent_id)
        .join(
            _annotations,
            sa.and_(_annotations.c.key == _aa.c.key, _annotations.c.value == _aa.c.value),
        )
        .where(_annotations.c.work_order_id == order_id),
    )
    return {row[0] for row in await tx.execute(reaching)}
