"""Queries on agents (the shared ones in ``records``). Reads see live rows only unless the name
says otherwise."""

from __future__ import annotations

from uuid import UUID

import msgspec
import sqlalchemy as sa

from brokkr.broker.db import prepared, tables
from brokkr.broker.db.engine import Database, Tx
from brokkr.broker.db.records import Records
from brokkr.common import wire

_t = tables.agents
_rows = Records(_t, wire.Agent)
insert = _rows.insert
get = _rows.get
get_including_deleted = _rows.get_including_deleted
get_credential = _rows.get_credential
list_live = _rows.list_live
update = _rows.update
soft_delete = _rows.soft_delete

_LOAD = prepared.Read(
    sa.select(*_rows.columns).where(_t.c.id == sa.bindparam("agent_id"), _t.c.deleted_at.is_(None))
)


async def load(database: Database, agent_id: UUID) -> wire.Agent | None:
    """``get`` outside any transaction, on the fast read path (agents poll this)."""
    row = await _LOAD.first(database, agent_id=agent_id)
    return wire.Agent(**row) if row else None


async def find_by_name(tx: Tx, *, name: str, cluster_name: str) -> wire.Agent | None:
    row = (
        await tx.execute(
            sa.select(*_rows.columns).where(
                _t.c.name == name, _t.c.cluster_name == cluster_name, _t.c.deleted_at.is_(None)
            )
        )
    ).first()
    return _rows.to_record(row) if row else None


async def list_by_ids(tx: Tx, agent_ids: list[UUID]) -> list[wire.Agent]:
    if not agent_ids:
        return []
    rows = await tx.execute(
        sa.select(*_rows.columns)
        .where(_t.c.id.in_(agent_ids), _t.c.deleted_at.is_(None))
        .order_by(_t.c.name, _t.c.cluster_name)
    )
    return [_rows.to_record(row) for row in rows]


class Standing(msgspec.Struct, frozen=True, kw_only=True):
    """What decides whether a live agent may keep its channel open."""

    status: str
    pak_hash: str


async def standings(tx: Tx, agent_ids: list[UUID]) -> dict[UUID, Standing]:
    """The standing of those of ``agent_ids`` that are live (deleted or unknown ones are absent)."""
    if not agent_ids:
        return {}
    rows = await tx.execute(
        sa.select(_t.c.id, _t.c.status, _t.c.pak_hash).where(
            _t.c.id.in_(agent_ids), _t.c.deleted_at.is_(None)
        )
    )
    return {row.id: Standing(status=row.status, pak_hash=row.pak_hash) for row in rows}
