"""Queries on stacks (the shared ones in ``records``). Reads see live rows only unless the name
says otherwise."""

from __future__ import annotations

from collections.abc import Collection
from uuid import UUID

import sqlalchemy as sa

from brokkr.broker.db import tables
from brokkr.broker.db.engine import Tx
from brokkr.broker.db.records import Records
from brokkr.common import wire

_t = tables.stacks
_rows = Records(_t, wire.Stack)
COLUMNS = _rows.columns
to_wire = _rows.to_record
insert = _rows.insert
get = _rows.get
get_including_deleted = _rows.get_including_deleted
update = _rows.update
soft_delete = _rows.soft_delete


async def list_live(
    tx: Tx, *, generator_id: UUID | None = None, limit: int, offset: int = 0
) -> list[wire.Stack]:
    """Live stacks, or those of ``generator_id``, oldest first."""
    owned = [] if generator_id is None else [_t.c.generator_id == generator_id]
    return await _rows.list_live(tx, *owned, limit=limit, offset=offset)


async def live_ids_of_generator(tx: Tx, generator_id: UUID) -> list[UUID]:
    rows = await tx.execute(
        sa.select(_t.c.id)
        .where(_t.c.generator_id == generator_id, _t.c.deleted_at.is_(None))
        .order_by(_t.c.id)
        .with_for_update()
    )
    return [row.id for row in rows]


async def live_among(tx: Tx, stack_ids: Collection[UUID]) -> set[UUID]:
    """Which of ``stack_ids`` are live stacks."""
    if not stack_ids:
        return set()
    rows = await tx.execute(
        sa.select(_t.c.id).where(_t.c.id.in_(list(stack_ids)), _t.c.deleted_at.is_(None))
    )
    return {row.id for row in rows}
