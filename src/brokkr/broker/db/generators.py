"""Queries on generators. Reads see live rows only unless the name says otherwise."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import sqlalchemy as sa

from brokkr.broker.db import tables
from brokkr.broker.db.engine import Tx
from brokkr.broker.db.integrity import violated_constraint
from brokkr.broker.domain import errors
from brokkr.common import wire

_t = tables.generators
_COLUMNS = (
    _t.c.id,
    _t.c.created_at,
    _t.c.updated_at,
    _t.c.deleted_at,
    _t.c.name,
    _t.c.description,
    _t.c.last_active_at,
    _t.c.is_active,
)


class Credential(msgspec.Struct, frozen=True):
    generator: wire.Generator
    pak_hash: str | None


def _generator(row: sa.Row[*tuple[Any, ...]]) -> wire.Generator:
    return wire.Generator(**dict(row._mapping))


def _name_taken(exc: sa.exc.IntegrityError) -> errors.BrokerError:
    if violated_constraint(exc) == "unique_generator_name":
        return errors.Conflict(
            "a generator with this name already exists",
            code="generator_name_taken",
            details={"constraint": "unique_generator_name"},
        )
    return errors.Unprocessable(
        "the generator violates a database constraint", code="constraint_violation"
    )


async def insert(
    tx: Tx,
    *,
    generator_id: UUID,
    name: str,
    description: str | None,
    pak_hash: str,
    key_id: str,
    now: datetime,
) -> wire.Generator:
    try:
        row = (
            await tx.execute(
                _t.insert()
                .values(
                    id=generator_id,
                    name=name,
                    description=description,
                    pak_hash=pak_hash,
                    key_id=key_id,
                    is_active=True,
                    created_at=now,
                    updated_at=now,
                )
                .returning(*_COLUMNS)
            )
        ).one()
    except sa.exc.IntegrityError as exc:
        raise _name_taken(exc) from exc
    return _generator(row)


async def get(tx: Tx, generator_id: UUID) -> wire.Generator | None:
    row = (
        await tx.execute(
            sa.select(*_COLUMNS).where(_t.c.id == generator_id, _t.c.deleted_at.is_(None))
        )
    ).first()
    return _generator(row) if row else None


async def get_credential(
    tx: Tx, generator_id: UUID, *, for_update: bool = False
) -> Credential | None:
    query = sa.select(*_COLUMNS, _t.c.pak_hash).where(
        _t.c.id == generator_id, _t.c.deleted_at.is_(None)
    )
    if for_update:
        query = query.with_for_update()
    row = (await tx.execute(query)).first()
    if row is None:
        return None
    values = dict(row._mapping)
    pak_hash = values.pop("pak_hash")
    return Credential(generator=wire.Generator(**values), pak_hash=pak_hash)


async def list_live(tx: Tx) -> list[wire.Generator]:
    rows = await tx.execute(
        sa.select(*_COLUMNS).where(_t.c.deleted_at.is_(None)).order_by(_t.c.created_at, _t.c.id)
    )
    return [_generator(row) for row in rows]


async def update(
    tx: Tx,
    generator_id: UUID,
    *,
    now: datetime,
    name: str | None = None,
    description: str | None | msgspec.UnsetType = msgspec.UNSET,
    is_active: bool | None = None,
) -> wire.Generator | None:
    values: dict[str, object] = {"updated_at": now}
    if name is not None:
        values["name"] = name
    if description is not msgspec.UNSET:
        values["description"] = description
    if is_active is not None:
        values["is_active"] = is_active
    try:
        row = (
            await tx.execute(
                _t.update()
                .where(_t.c.id == generator_id, _t.c.deleted_at.is_(None))
                .values(**values)
                .returning(*_COLUMNS)
            )
        ).first()
    except sa.exc.IntegrityError as exc:
        raise _name_taken(exc) from exc
    return _generator(row) if row else None


async def set_pak(
    tx: Tx, generator_id: UUID, *, pak_hash: str, key_id: str, now: datetime
) -> wire.Generator | None:
    row = (
        await tx.execute(
            _t.update()
            .where(_t.c.id == generator_id, _t.c.deleted_at.is_(None))
            .values(pak_hash=pak_hash, key_id=key_id, updated_at=now)
            .returning(*_COLUMNS)
        )
    ).first()
    return _generator(row) if row else None


async def soft_delete(tx: Tx, generator_id: UUID, *, now: datetime) -> bool:
    result = await tx.execute(
        _t.update()
        .where(_t.c.id == generator_id, _t.c.deleted_at.is_(None))
        .values(deleted_at=now, updated_at=now)
    )
    return result.rowcount == 1


async def exists_including_deleted(tx: Tx, generator_id: UUID) -> bool:
    return (await tx.execute(sa.select(_t.c.id).where(_t.c.id == generator_id))).first() is not None
