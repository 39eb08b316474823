"""Diagnostic requests and their results.

Every transition is one conditional UPDATE with RETURNING (a claim: ``status = 'pending'`` and
not expired), so of concurrent callers exactly one gets the row back, on either database.
Maintenance picks its rows with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL), so brokers running it
together neither wait on nor repeat each other's work; SQLite has one writer anyway.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from brokkr.broker.db import tables
from brokkr.broker.db.engine import Tx
from brokkr.broker.domain.diagnostics import CLAIMED, COMPLETED, EXPIRED, FAILED, PENDING
from brokkr.common import wire

_q = tables.diagnostic_requests
_res = tables.diagnostic_results
_d = tables.deployment_objects

_COLUMNS = [_q.c[field] for field in wire.DiagnosticRequest.__struct_fields__]
_RESULT_COLUMNS = [_res.c[field] for field in wire.DiagnosticResult.__struct_fields__]
_ENDED = (COMPLETED, FAILED, EXPIRED)


def _request(row: sa.Row[Any]) -> wire.DiagnosticRequest:
    return wire.DiagnosticRequest(**row._mapping)


async def insert(
    tx: Tx,
    *,
    deployment_object_id: UUID,
    agent_id: UUID,
    requested_by: str | None,
    expires_at: datetime,
    now: datetime,
) -> wire.DiagnosticRequest:
    row = (
        await tx.execute(
            _q.insert()
            .values(
                id=uuid.uuid4(),
                agent_id=agent_id,
                deployment_object_id=deployment_object_id,
                status=PENDING,
                requested_by=requested_by,
                created_at=now,
                expires_at=expires_at,
            )
            .returning(*_COLUMNS)
        )
    ).one()
    return _request(row)


async def get(tx: Tx, request_id: UUID) -> wire.DiagnosticRequest | None:
    row = (await tx.execute(sa.select(*_COLUMNS).where(_q.c.id == request_id))).first()
    return _request(row) if row else None


async def get_result(tx: Tx, request_id: UUID) -> wire.DiagnosticResult | None:
    row = (
        await tx.execute(sa.select(*_RESULT_COLUMNS).where(_res.c.request_id == request_id))
    ).first()
    return wire.DiagnosticResult(**row._mapping) if row else None


async def object_exists(tx: Tx, object_id: UUID) -> bool:
    """Whether the deployment object was ever stored: the requests about a deleted object are
    still listed."""
    found = await tx.execute(sa.select(sa.exists().where(_d.c.id == object_id)))
    return bool(found.scalar_one())


async def list_for_object(
    tx: Tx, object_id: UUID, *, limit: int, offset: int
) -> list[wire.DiagnosticRequest]:
    """Newest first."""
    rows = await tx.execute(
        sa.select(*_COLUMNS)
        .where(_q.c.deployment_object_id == object_id)
        .order_by(_q.c.created_at.desc(), _q.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [_request(row) for row in rows]


async def list_pending(
    tx: Tx, agent_id: UUID, *, now: datetime, limit: int
) -> list[wire.DiagnosticRequest]:
    """The agent's requests it may still claim, oldest first."""
    rows = await tx.execute(
        sa.select(*_COLUMNS)
        .where(_q.c.agent_id == agent_id, _q.c.status == PENDING, _q.c.expires_at > now)
        .order_by(_q.c.created_at, _q.c.id)
        .limit(limit)
    )
    return [_request(row) for row in rows]


async def claim(
    tx: Tx, request_id: UUID, *, agent_id: UUID | None, now: datetime
) -> wire.DiagnosticRequest | None:
    """``agent_id``: only a request for this agent (None: any, an admin claims). None when
    the request is unknown, someone else's, no longer pending or expired."""
    conditions = [_q.c.id == request_id, _q.c.status == PENDING, _q.c.expires_at > now]
    if agent_id is not None:
        conditions.append(_q.c.agent_id == agent_id)
    row = (
        await tx.execute(
            _q.update()
            .where(*conditions)
            .values(status=CLAIMED, claimed_at=now)
            .returning(*_COLUMNS)
        )
    ).first()
    return _request(row) if row else None


async def complete(
    tx: Tx, request_id: UUID, *, agent_id: UUID, now: datetime
) -> wire.DiagnosticRequest | None:
    """None when the request is unknown, another agent's, or not claimed."""
    row = (
        await tx.execute(
            _q.update()
            .where(_q.c.id == request_id, _q.c.agent_id == agent_id, _q.c.status == CLAIMED)
            .values(status=COMPLETED, completed_at=now)
            .returning(*_COLUMNS)
        )
    ).first()
    return _request(row) if row else None


async def insert_result(
    tx: Tx, request_id: UUID, result: wire.SubmitDiagnosticResult, *, now: datetime
) -> wire.DiagnosticResult:
    row = (
        await tx.execute(
            _res.insert()
            .values(
                id=uuid.uuid4(),
                request_id=request_id,
                pod_statuses=result.pod_statuses,
                events=result.events,
                log_tails=result.log_tails,
                collected_at=result.collected_at,
                created_at=now,
            )
            .returning(*_RESULT_COLUMNS)
        )
    ).one()
    return wire.DiagnosticResult(**row._mapping)


async def _end(
    tx: Tx,
    due: sa.ColumnElement[bool],
    *,
    status: str,
    reason: str,
    now: datetime,
    limit: int,
) -> list[UUID]:
    """End up to ``limit`` requests matching ``due`` with ``status``; their ids."""
    picked = sa.select(_q.c.id).where(due).limit(limit).with_for_update(skip_locked=True)
    rows = await tx.execute(
        _q.update()
        .where(_q.c.id.in_(picked), due)
        .values(status=status, completed_at=now, failure_reason=reason)
        .returning(_q.c.id)
    )
    return [row.id for row in rows]


async def expire_unclaimed(tx: Tx, *, now: datetime, reason: str, limit: int) -> list[UUID]:
    """Pending requests whose time is up become expired."""
    due = sa.and_(_q.c.status == PENDING, _q.c.expires_at <= now)
    return await _end(tx, due, status=EXPIRED, reason=reason, now=now, limit=limit)


async def fail_unanswered(
    tx: Tx, *, claimed_before: datetime, now: datetime, reason: str, limit: int
) -> list[UUID]:
    """Claimed requests without a result since ``claimed_before`` become failed."""
    due = sa.and_(_q.c.status == CLAIMED, _q.c.claimed_at <= claimed_before)
    return await _end(tx, due, status=FAILED, reason=reason, now=now, limit=limit)


async def delete_ended_before(tx: Tx, cutoff: datetime, *, limit: int) -> int:
    """Delete up to ``limit`` requests that ended before ``cutoff`` (results cascade)."""
    doomed = (
        sa.select(_q.c.id)
        .where(_q.c.status.in_(_ENDED), _q.c.completed_at < cutoff)
        .order_by(_q.c.completed_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = await tx.execute(_q.delete().where(_q.c.id.in_(doomed)))
    return int(result.rowcount)
