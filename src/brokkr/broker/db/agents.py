"""Queries on agents. Reads see live rows only unless the name says otherwise."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import sqlalchemy as sa

from brokkr.broker.db import prepared, tables
from brokkr.broker.db.engine import Database, Tx
from brokkr.broker.db.integrity import violated_constraint
from brokkr.broker.domain import errors
from brokkr.common import wire

_t = tables.agents
_COLUMNS = (
    _t.c.id,
    _t.c.created_at,
    _t.c.updated_at,
    _t.c.deleted_at,
    _t.c.name,
    _t.c.cluster_name,
    _t.c.last_heartbeat,
    _t.c.status,
)


class Credential(msgspec.Struct, frozen=True):
    """An agent's current key hash: what must be revoked when it changes."""

    agent: wire.Agent
    pak_hash: str | None


def _agent(row: sa.Row[*tuple[Any, ...]]) -> wire.Agent:
    return wire.Agent(**dict(row._mapping))


def _name_taken(exc: sa.exc.IntegrityError) -> errors.BrokerError:
    if violated_constraint(exc) == "unique_agent_cluster":
        return errors.Conflict(
            "an agent with this name already exists in this cluster",
            code="agent_name_taken",
            details={"constraint": "unique_agent_cluster"},
        )
    return errors.Unprocessable(
        "the agent violates a database constraint", code="constraint_violation"
    )


async def insert(
    tx: Tx,
    *,
    agent_id: UUID,
    name: str,
    cluster_name: str,
    pak_hash: str,
    key_id: str,
    now: datetime,
) -> wire.Agent:
    try:
        row = (
            await tx.execute(
                _t.insert()
                .values(
                    id=agent_id,
                    name=name,
                    cluster_name=cluster_name,
                    status="INACTIVE",
                    pak_hash=pak_hash,
                    key_id=key_id,
                    created_at=now,
                    updated_at=now,
                )
                .returning(*_COLUMNS)
            )
        ).one()
    except sa.exc.IntegrityError as exc:
        raise _name_taken(exc) from exc
    return _agent(row)


async def get(tx: Tx, agent_id: UUID) -> wire.Agent | None:
    row = (
        await tx.execute(sa.select(*_COLUMNS).where(_t.c.id == agent_id, _t.c.deleted_at.is_(None)))
    ).first()
    return _agent(row) if row else None


_LOAD = prepared.Read(
    sa.select(*_COLUMNS).where(_t.c.id == sa.bindparam("agent_id"), _t.c.deleted_at.is_(None))
)


async def load(database: Database, agent_id: UUID) -> wire.Agent | None:
    """``get`` outside any transaction, on the fast read path (agents poll this)."""
    row = await _LOAD.first(database, agent_id=agent_id)
    return wire.Agent(**row) if row else None


async def get_credential(tx: Tx, agent_id: UUID, *, for_update: bool = False) -> Credential | None:
    query = sa.select(*_COLUMNS, _t.c.pak_hash).where(
        _t.c.id == agent_id, _t.c.deleted_at.is_(None)
    )
    if for_update:
        query = query.with_for_update()
    row = (await tx.execute(query)).first()
    if row is None:
        return None
    values = dict(row._mapping)
    pak_hash = values.pop("pak_hash")
    return Credential(agent=wire.Agent(**values), pak_hash=pak_hash)


async def exists_including_deleted(tx: Tx, agent_id: UUID) -> bool:
    return (await tx.execute(sa.select(_t.c.id).where(_t.c.id == agent_id))).first() is not None


async def list_live(tx: Tx) -> list[wire.Agent]:
    rows = await tx.execute(
        sa.select(*_COLUMNS).where(_t.c.deleted_at.is_(None)).order_by(_t.c.created_at, _t.c.id)
    )
    return [_agent(row) for row in rows]


async def find_by_name(tx: Tx, *, name: str, cluster_name: str) -> wire.Agent | None:
    row = (
        await tx.execute(
            sa.select(*_COLUMNS).where(
                _t.c.name == name, _t.c.cluster_name == cluster_name, _t.c.deleted_at.is_(None)
            )
        )
    ).first()
    return _agent(row) if row else None


async def update(
    tx: Tx,
    agent_id: UUID,
    *,
    now: datetime,
    name: str | None = None,
    cluster_name: str | None = None,
    status: str | None = None,
) -> wire.Agent | None:
    values: dict[str, object] = {"updated_at": now}
    if name is not None:
        values["name"] = name
    if cluster_name is not None:
        values["cluster_name"] = cluster_name
    if status is not None:
        values["status"] = status
    try:
        row = (
            await tx.execute(
                _t.update()
                .where(_t.c.id == agent_id, _t.c.deleted_at.is_(None))
                .values(**values)
                .returning(*_COLUMNS)
            )
        ).first()
    except sa.exc.IntegrityError as exc:
        raise _name_taken(exc) from exc
    return _agent(row) if row else None


async def set_pak(
    tx: Tx, agent_id: UUID, *, pak_hash: str, key_id: str, now: datetime
) -> wire.Agent | None:
    row = (
        await tx.execute(
            _t.update()
            .where(_t.c.id == agent_id, _t.c.deleted_at.is_(None))
            .values(pak_hash=pak_hash, key_id=key_id, updated_at=now)
            .returning(*_COLUMNS)
        )
    ).first()
    return _agent(row) if row else None


async def soft_delete(tx: Tx, agent_id: UUID, *, now: datetime) -> bool:
    """Mark a live agent deleted; False when it was not live (already deleted or unknown)."""
    result = await tx.execute(
        _t.update()
        .where(_t.c.id == agent_id, _t.c.deleted_at.is_(None))
        .values(deleted_at=now, updated_at=now)
    )
    return result.rowcount == 1


async def record_heartbeat(tx: Tx, agent_id: UUID, *, now: datetime) -> bool:
    result = await tx.execute(
        _t.update()
        .where(_t.c.id == agent_id, _t.c.deleted_at.is_(None))
        .values(last_heartbeat=now, updated_at=now)
    )
    return result.rowcount == 1


async def list_by_ids(tx: Tx, agent_ids: list[UUID]) -> list[wire.Agent]:
    if not agent_ids:
        return []
    rows = await tx.execute(
        sa.select(*_COLUMNS)
        .where(_t.c.id.in_(agent_ids), _t.c.deleted_at.is_(None))
        .order_by(_t.c.name, _t.c.cluster_name)
    )
    return [_agent(row) for row in rows]
