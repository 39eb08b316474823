"""Queries on stacks. Reads see live rows only unless the name says otherwise."""

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

_t = tables.stacks
COLUMNS = (
    _t.c.id,
    _t.c.created_at,
    _t.c.updated_at,
    _t.c.deleted_at,
    _t.c.name,
    _t.c.description,
    _t.c.generator_id,
)


def to_wire(row: sa.Row[*tuple[Any, ...]]) -> wire.Stack:
    return wire.Stack(**dict(row._mapping))


def _name_taken(exc: sa.exc.IntegrityError) -> errors.BrokerError:
    if violated_constraint(exc) == "unique_stack_name":
        return errors.Conflict(
            "a stack with this name already exists",
            code="stack_name_taken",
            details={"constraint": "unique_stack_name"},
        )
    return errors.Unprocessable(
        "the stack violates a database constraint", code="constraint_violation"
    )


async def insert(
    tx: Tx,
    *,
    stack_id: UUID,
    name: str,
    description: str | None,
    generator_id: UUID,
    now: datetime,
) -> wire.Stack:
    try:
        row = (
            await tx.execute(
                _t.insert()
                .values(
                    id=stack_id,
                    name=name,
                    description=description,
                    generator_id=generator_id,
                    created_at=now,
                    updated_at=now,
                )
                .returning(*COLUMNS)
            )
        ).one()
    except sa.exc.IntegrityError as exc:
        raise _name_taken(exc) from exc
    return to_wire(row)


async def get(tx: Tx, stack_id: UUID, *, for_update: bool = False) -> wire.Stack | None:
    query = sa.select(*COLUMNS).where(_t.c.id == stack_id, _t.c.deleted_at.is_(None))
    if for_update:
        query = query.with_for_update()
    row = (await tx.execute(query)).first()
    return to_wire(row) if row else None


async def get_including_deleted(tx: Tx, stack_id: UUID) -> wire.Stack | None:
    row = (await tx.execute(sa.select(*COLUMNS).where(_t.c.id == stack_id))).first()
    return to_wire(row) if row else None


async def list_live(tx: Tx, *, generator_id: UUID | None = None) -> list[wire.Stack]:
    query = sa.select(*COLUMNS).where(_t.c.deleted_at.is_(None))
    if generator_id is not None:
        query = query.where(_t.c.generator_id == generator_id)
    rows = await tx.execute(query.order_by(_t.c.created_at, _t.c.id))
    return [to_wire(row) for row in rows]


async def live_ids_of_generator(tx: Tx, generator_id: UUID) -> list[UUID]:
    rows = await tx.execute(
        sa.select(_t.c.id)
        .where(_t.c.generator_id == generator_id, _t.c.deleted_at.is_(None))
        .order_by(_t.c.id)
        .with_for_update()
    )
    return [row.id for row in rows]


async def update(
    tx: Tx,
    stack_id: UUID,
    *,
    now: datetime,
    name: str | None = None,
    description: str | None | msgspec.UnsetType = msgspec.UNSET,
) -> wire.Stack | None:
    values: dict[str, object] = {"updated_at": now}
    if name is not None:
        values["name"] = name
    if description is not msgspec.UNSET:
        values["description"] = description
    try:
        row = (
            await tx.execute(
                _t.update()
                .where(_t.c.id == stack_id, _t.c.deleted_at.is_(None))
                .values(**values)
                .returning(*COLUMNS)
            )
        ).first()
    except sa.exc.IntegrityError as exc:
        raise _name_taken(exc) from exc
    return to_wire(row) if row else None


async def soft_delete(tx: Tx, stack_id: UUID, *, now: datetime) -> bool:
    result = await tx.execute(
        _t.update()
        .where(_t.c.id == stack_id, _t.c.deleted_at.is_(None))
        .values(deleted_at=now, updated_at=now)
    )
    return result.rowcount == 1
