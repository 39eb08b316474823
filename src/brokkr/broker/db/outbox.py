"""The transactional outbox: events stored with the change they announce."""

from __future__ import annotations

import uuid
from datetime import datetime

from brokkr.broker.db import tables
from brokkr.broker.db.engine import Tx
from brokkr.broker.domain import events


async def insert(tx: Tx, event: events.Event, *, now: datetime) -> uuid.UUID:
    event_id = uuid.uuid4()
    await tx.execute(
        tables.event_outbox.insert().values(
            id=event_id, event_type=event.event_type, data=event.data, created_at=now
        )
    )
    return event_id
