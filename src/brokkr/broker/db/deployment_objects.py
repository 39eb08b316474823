"""Queries on deployment objects: immutable revisions, numbered by one global sequence."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from brokkr.broker.db import tables
from brokkr.broker.db.engine import Tx
from brokkr.common import wire

_t = tables.deployment_objects
COLUMNS = (
    _t.c.id,
    _t.c.created_at,
    _t.c.updated_at,
    _t.c.deleted_at,
    _t.c.sequence_id,
    _t.c.stack_id,
    _t.c.yaml_content,
    _t.c.yaml_checksum,
    _t.c.submitted_at,
    _t.c.is_deletion_marker,
)
_SEQUENCE = "deployment_objects"


def to_wire(row: sa.Row[*tuple[Any, ...]]) -> wire.DeploymentObject:
    return wire.DeploymentObject(**dict(row._mapping))


async def _next_sequence_id(tx: Tx) -> int:
    counters = tables.sequence_counters
    value = (
        await tx.execute(
            counters.update()
            .where(counters.c.name == _SEQUENCE)
            .values(value=counters.c.value + 1)
            .returning(counters.c.value)
        )
    ).scalar_one()
    return int(value)


async def insert(
    tx: Tx,
    *,
    stack_id: UUID,
    yaml_content: str,
    yaml_checksum: str,
    is_deletion_marker: bool,
    now: datetime,
    owed_only: bool = False,
) -> wire.DeploymentObject:
    """``owed_only``: an unassignment marker, served only to the agents it is owed to."""
    row = (
        await tx.execute(
            _t.insert()
            .values(
                id=uuid.uuid4(),
                sequence_id=await _next_sequence_id(tx),
                stack_id=stack_id,
                yaml_content=yaml_content,
                yaml_checksum=yaml_checksum,
                is_deletion_marker=is_deletion_marker,
                owed_only=owed_only,
                submitted_at=now,
                created_at=now,
                updated_at=now,
            )
            .returning(*COLUMNS)
        )
    ).one()
    return to_wire(row)


async def get(tx: Tx, object_id: UUID) -> wire.DeploymentObject | None:
    """A live object, or a deletion marker (markers stay readable after their stack is gone)."""
    row = (
        await tx.execute(sa.select(*COLUMNS).where(_t.c.id == object_id, _t.c.deleted_at.is_(None)))
    ).first()
    return to_wire(row) if row else None


async def stack_of(tx: Tx, object_id: UUID) -> UUID | None:
    """The stack of an object, deleted or not (what an agent's report about it concerns)."""
    return (
        await tx.execute(sa.select(_t.c.stack_id).where(_t.c.id == object_id))
    ).scalar_one_or_none()


async def content_sizes(
    tx: Tx, stack_id: UUID, *, limit: int, offset: int
) -> list[tuple[UUID, int]]:
    """Ids and YAML lengths (in characters, so never above the bytes) of a stack's live objects,
    newest first: what a page can hold is decided before any content is read."""
    rows = await tx.execute(
        sa.select(_t.c.id, sa.func.length(_t.c.yaml_content))
        .where(_t.c.stack_id == stack_id, _t.c.deleted_at.is_(None), _t.c.owed_only.is_(False))
        .order_by(_t.c.sequence_id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [(row[0], int(row[1])) for row in rows]


async def content_sizes_of(tx: Tx, object_ids: Iterable[UUID]) -> list[tuple[UUID, int]]:
    """Ids and YAML lengths (characters) of these objects, without reading their content."""
    ids = list(object_ids)
    if not ids:
        return []
    rows = await tx.execute(
        sa.select(_t.c.id, sa.func.length(_t.c.yaml_content)).where(_t.c.id.in_(ids))
    )
    return [(row[0], int(row[1])) for row in rows]


async def list_by_ids(tx: Tx, object_ids: Iterable[UUID]) -> list[wire.DeploymentObject]:
    ids = list(object_ids)
    if not ids:
        return []
    rows = await tx.execute(
        sa.select(*COLUMNS).where(_t.c.id.in_(ids)).order_by(_t.c.sequence_id.desc())
    )
    return [to_wire(row) for row in rows]


async def stacks_with_revisions(tx: Tx, stack_ids: Iterable[UUID]) -> set[UUID]:
    """Those of ``stack_ids`` with a live revision: the only stacks an agent can hold objects of."""
    ids = list(stack_ids)
    if not ids:
        return set()
    rows = await tx.execute(
        sa.select(_t.c.stack_id)
        .where(_t.c.stack_id.in_(ids), _t.c.deleted_at.is_(None), _t.c.owed_only.is_(False))
        .distinct()
    )
    return {row.stack_id for row in rows}


async def retire_stack_objects(tx: Tx, stack_id: UUID, *, now: datetime) -> None:
    """Soft-delete every live revision of a stack (its deletion marker is inserted after).
    Unassignment markers stay: agents still owed one keep reading it."""
    await tx.execute(
        _t.update()
        .where(_t.c.stack_id == stack_id, _t.c.deleted_at.is_(None), _t.c.owed_only.is_(False))
        .values(deleted_at=now, updated_at=now)
    )
