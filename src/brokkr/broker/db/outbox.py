"""The transactional outbox (D18): an event's deliveries are written in the transaction of the
change that caused it, so there is no event without its change and no change without its event.

One ``pending`` row per enabled subscription whose patterns and filters match, due at once,
carrying the envelope encoded once (every delivery of the event sends the same bytes).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from brokkr.broker.db import tables, webhooks
from brokkr.broker.db.engine import Tx
from brokkr.broker.domain import events
from brokkr.broker.domain import webhooks as rules

PENDING = "pending"


async def insert(tx: Tx, event: events.Event, *, now: datetime) -> int:
    """Queue ``event`` for every subscription it reaches; returns how many deliveries."""
    candidates = [
        candidate
        for candidate in await webhooks.enabled(tx)
        if rules.wants(candidate.event_types, event.event_type)
    ]
    if not candidates:
        return 0
    annotations: list[dict[str, str]] = []
    if any(rules.needs_annotations(candidate.filters) for candidate in candidates):
        annotations = await _annotations_of_subjects(tx, event.data)
    reached = [
        candidate
        for candidate in candidates
        if rules.passes(candidate.filters, event.data, annotations)
    ]
    if not reached:
        return 0
    event_id = uuid.uuid4()
    payload = events.envelope(event, event_id=event_id, now=now).decode()
    await tx.execute(
        tables.webhook_deliveries.insert(),
        [
            {
                "id": uuid.uuid4(),
                "subscription_id": candidate.id,
                "event_type": event.event_type,
                "event_id": event_id,
                "payload": payload,
                "target_labels": candidate.target_labels or None,
                "status": PENDING,
                "acquired_by": None,
                "acquired_until": None,
                "attempts": 0,
                "last_attempt_at": None,
                "next_retry_at": None,
                "last_error": None,
                "created_at": now,
                "completed_at": None,
            }
            for candidate in reached
        ],
    )
    return len(reached)


async def _annotations_of_subjects(tx: Tx, data: dict[str, Any]) -> list[dict[str, str]]:
    """The annotations of the agent and of the stack the event names (each one that it does)."""
    found: list[dict[str, str]] = []
    for key, table, owner in (
        ("agent_id", tables.agent_annotations, "agent_id"),
        ("stack_id", tables.stack_annotations, "stack_id"),
    ):
        subject = _uuid(data.get(key))
        if subject is None:
            continue
        rows = await tx.execute(
            sa.select(table.c.key, table.c.value).where(table.c[owner] == subject)
        )
        found.append({row.key: row.value for row in rows})
    return found


def _uuid(value: object) -> UUID | None:
    if isinstance(value, UUID):
        return value
    try:
        return None if value is None else UUID(str(value))
    except ValueError:
        return None
