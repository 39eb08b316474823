"""Webhook deliveries: claiming due ones, recording attempts, listing a subscription's.

A claim is one UPDATE of rows picked with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite's
single writer serialises the whole transaction), re-checking that each is still due, with
RETURNING: of concurrent claimers (brokers, agents) each gets a disjoint set. A claim's
``acquired_until`` is also its fencing token: an outcome is recorded only while the row still
carries the claim it was sent under, so a claim that expired and was taken over is not
overwritten by the late first sender.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import sqlalchemy as sa

from brokkr.broker.db import tables
from brokkr.broker.db.engine import Tx
from brokkr.broker.domain.webhook_delivery import ACQUIRED, FAILED, MAX_TIMEOUT_SECONDS, PENDING
from brokkr.common import wire

_d = tables.webhook_deliveries
_s = tables.webhook_subscriptions
_al = tables.agent_labels

_COLUMNS = [_d.c[field] for field in wire.WebhookDelivery.__struct_fields__]
# When a claim of a subscription with this timeout_seconds ends.
Lease = Callable[[int], datetime]


class Claimed(msgspec.Struct, frozen=True, kw_only=True):
    """A claimed delivery with what sending it takes (secrets still encrypted)."""

    id: UUID
    subscription_id: UUID
    event_type: str
    payload: str
    attempts: int
    acquired_until: datetime
    url_encrypted: bytes
    auth_header_encrypted: bytes | None
    secret_encrypted: bytes | None
    timeout_seconds: int
    max_retries: int


class Held(msgspec.Struct, frozen=True, kw_only=True):
    """A delivery as its outcome report finds it (row locked)."""

    id: UUID
    status: str
    acquired_by: UUID | None
    acquired_until: datetime | None
    attempts: int
    max_retries: int


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt's result, to be stored if the row still carries ``lease``."""

    id: UUID
    lease: datetime
    status: str
    attempts: int
    last_attempt_at: datetime
    next_retry_at: datetime | None
    completed_at: datetime | None
    last_error: str | None


_CLAIM_COLUMNS = [
    _d.c.id,
    _d.c.subscription_id,
    _d.c.event_type,
    _d.c.payload,
    _d.c.attempts,
    _d.c.acquired_until,
    _s.c.url_encrypted,
    _s.c.auth_header_encrypted,
    _s.c.secret_encrypted,
    _s.c.timeout_seconds,
    _s.c.max_retries,
]


def _due(now: datetime) -> sa.ColumnElement[bool]:
    """New, a retry whose wait is over, or a claim that expired (its holder is gone)."""
    return sa.or_(
        _d.c.status == PENDING,
        sa.and_(_d.c.status == FAILED, _d.c.next_retry_at <= now),
        sa.and_(_d.c.status == ACQUIRED, _d.c.acquired_until < now),
    )


def _broker_delivers() -> sa.ColumnElement[bool]:
    """No target labels: SQL NULL, a JSON null or an empty list (flaw 8: never both)."""
    as_text = sa.cast(_d.c.target_labels, sa.Text)
    return sa.or_(_d.c.target_labels.is_(None), as_text.in_(("null", "[]")))


async def _claim(
    tx: Tx, picked: sa.Select[Any], *, now: datetime, lease: Lease, agent_id: UUID | None
) -> list[Claimed]:
    """Claim the still-due rows of ``picked``; each is held until ``lease(its subscription's
    timeout_seconds)``."""
    longest = lease(MAX_TIMEOUT_SECONDS)
    ids = [
        row.id
        for row in await tx.execute(
            _d.update()
            .where(_d.c.id.in_(picked.scalar_subquery()), _due(now))
            .values(status=ACQUIRED, acquired_by=agent_id, acquired_until=longest)
            .returning(_d.c.id)
        )
    ]
    if not ids:
        return []
    rows = [
        dict(row._mapping)
        for row in await tx.execute(
            sa.select(*_CLAIM_COLUMNS)
            .join(_s, _s.c.id == _d.c.subscription_id)
            .where(_d.c.id.in_(ids))
            .order_by(_d.c.created_at, _d.c.id)
        )
    ]
    # Shorter timeouts, shorter claims: a crashed holder's deliveries are sent again sooner.
    by_timeout: dict[int, list[UUID]] = {}
    for row in rows:
        by_timeout.setdefault(row["timeout_seconds"], []).append(row["id"])
    for timeout, held in by_timeout.items():
        until = lease(timeout)
        if until != longest:
            await tx.execute(_d.update().where(_d.c.id.in_(held)).values(acquired_until=until))
    return [Claimed(**{**row, "acquired_until": lease(row["timeout_seconds"])}) for row in rows]


async def claim_for_broker(tx: Tx, *, now: datetime, lease: Lease, limit: int) -> list[Claimed]:
    """Up to ``limit`` due deliveries without target labels, oldest first, held by the broker
    (``acquired_by`` null)."""
    picked = (
        sa.select(_d.c.id)
        .where(_due(now), _broker_delivers())
        .order_by(_d.c.created_at, _d.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return await _claim(tx, picked, now=now, lease=lease, agent_id=None)


async def due_for_agents(tx: Tx, *, now: datetime, limit: int) -> list[tuple[UUID, list[str]]]:
    """Up to ``limit`` due deliveries with target labels, oldest first: (id, labels)."""
    rows = await tx.execute(
        sa.select(_d.c.id, _d.c.target_labels)
        .where(_due(now), sa.not_(_broker_delivers()))
        .order_by(_d.c.created_at, _d.c.id)
        .limit(limit)
    )
    return [(row.id, list(row.target_labels)) for row in rows]


async def claim_for_agent(
    tx: Tx, ids: list[UUID], agent_id: UUID, *, now: datetime, lease: Lease, limit: int
) -> list[Claimed]:
    """Up to ``limit`` of ``ids`` still due, oldest first, held by the agent; rows another
    claimer holds right now are skipped, so concurrent claimers take the next ones."""
    if not ids:
        return []
    picked = (
        sa.select(_d.c.id)
        .where(_d.c.id.in_(ids), _due(now))
        .order_by(_d.c.created_at, _d.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return await _claim(tx, picked, now=now, lease=lease, agent_id=agent_id)


async def agent_labels(tx: Tx, agent_id: UUID) -> set[str]:
    rows = await tx.execute(sa.select(_al.c.label).where(_al.c.agent_id == agent_id))
    return {row.label for row in rows}


async def record(tx: Tx, attempts: list[Attempt]) -> None:
    """Store each attempt whose delivery still carries its claim (one statement for all)."""
    if not attempts:
        return
    await tx.execute(
        _d.update()
        .where(
            _d.c.id == sa.bindparam("attempt_id"),
            _d.c.status == ACQUIRED,
            _d.c.acquired_until == sa.bindparam("lease"),
        )
        .values(
            status=sa.bindparam("new_status"),
            attempts=sa.bindparam("new_attempts"),
            last_attempt_at=sa.bindparam("attempted_at"),
            next_retry_at=sa.bindparam("retry_at"),
            completed_at=sa.bindparam("done_at"),
            last_error=sa.bindparam("error"),
            acquired_by=None,
            acquired_until=None,
        ),
        [
            {
                "attempt_id": a.id,
                "lease": a.lease,
                "new_status": a.status,
                "new_attempts": a.attempts,
                "attempted_at": a.last_attempt_at,
                "retry_at": a.next_retry_at,
                "done_at": a.completed_at,
                "error": a.last_error,
            }
            for a in attempts
        ],
    )


async def hold(tx: Tx, delivery_id: UUID) -> Held | None:
    """The delivery and its subscription's retry budget, locked until the transaction ends."""
    row = (
        await tx.execute(
            sa.select(
                _d.c.id,
                _d.c.status,
                _d.c.acquired_by,
                _d.c.acquired_until,
                _d.c.attempts,
                _s.c.max_retries,
            )
            .join(_s, _s.c.id == _d.c.subscription_id)
            .where(_d.c.id == delivery_id)
            .with_for_update(of=_d)
        )
    ).first()
    return Held(**row._mapping) if row else None


async def subscription_exists(tx: Tx, subscription_id: UUID) -> bool:
    found = await tx.execute(sa.select(sa.exists().where(_s.c.id == subscription_id)))
    return bool(found.scalar_one())


async def list_for_subscription(
    tx: Tx, subscription_id: UUID, *, status: str | None, limit: int, offset: int
) -> list[wire.WebhookDelivery]:
    """Newest first."""
    query = (
        sa.select(*_COLUMNS)
        .where(_d.c.subscription_id == subscription_id)
        .order_by(_d.c.created_at.desc(), _d.c.id)
        .limit(limit)
        .offset(offset)
    )
    if status is not None:
        query = query.where(_d.c.status == status)
    return [wire.WebhookDelivery(**row._mapping) for row in await tx.execute(query)]
