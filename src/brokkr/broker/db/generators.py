"""Generators: their queries are the shared ones in ``records``."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from brokkr.broker.db import tables
from brokkr.broker.db.engine import Tx
from brokkr.broker.db.records import Records
from brokkr.common import wire

_rows = Records(tables.generators, wire.Generator)
insert = _rows.insert
get = _rows.get
get_including_deleted = _rows.get_including_deleted
get_credential = _rows.get_credential
list_live = _rows.list_live
update = _rows.update
soft_delete = _rows.soft_delete


async def record_activity(tx: Tx, generator_id: UUID, *, now: datetime) -> None:
    """Set ``last_active_at`` alone: using a PAK is not an edit, so ``updated_at`` stays."""
    table = tables.generators
    await tx.execute(
        table.update()
        .where(table.c.id == generator_id, table.c.deleted_at.is_(None))
        .values(last_active_at=now)
    )
