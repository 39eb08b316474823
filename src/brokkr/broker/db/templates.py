"""Queries on stack templates (one row per version), their labels and annotations, and the
provenance of rendered deployment objects. Reads see live rows only unless the name says
otherwise.

No ``from __future__ import annotations`` here: this module exports a name ``annotations``."""

import hashlib
import uuid
from datetime import datetime
from typing import TypeVar
from uuid import UUID

import msgspec
import sqlalchemy as sa

from brokkr.broker.db import labelling, locking, tables
from brokkr.broker.db.engine import Tx
from brokkr.broker.db.records import Records
from brokkr.common import wire

_t = tables.stack_templates
_rows = Records(_t, wire.StackTemplate)
get = _rows.get
soft_delete = _rows.soft_delete

R = TypeVar("R", bound=msgspec.Struct)


class Labels(labelling.Labels[R]):
    """Template labels carry their creation time on the wire."""

    async def add_at(self, tx: Tx, owner_id: UUID, label: str, *, now: datetime) -> R:
        return await self._add(tx, owner_id, label=label, created_at=now)


class Annotations(labelling.Annotations[R]):
    async def add_at(self, tx: Tx, owner_id: UUID, key: str, value: str, *, now: datetime) -> R:
        return await self._add(tx, owner_id, key=key, value=value, created_at=now)


labels = Labels(tables.template_labels, owner="template_id", record=wire.TemplateLabel)
annotations = Annotations(
    tables.template_annotations, owner="template_id", record=wire.TemplateAnnotation
)


def _family_lock_key(generator_id: UUID | None, name: str) -> int:
    """A 64-bit advisory lock key for one family; a collision only serialises two families."""
    family = f"brokkr-template:{generator_id}:{name}".encode()
    return int.from_bytes(hashlib.sha256(family).digest()[:8], "big", signed=True)


def _family(generator_id: UUID | None, name: str) -> sa.ColumnElement[bool]:
    owner = (
        _t.c.generator_id.is_(None) if generator_id is None else _t.c.generator_id == generator_id
    )
    return sa.and_(owner, _t.c.name == name)


async def insert_next_version(
    tx: Tx,
    *,
    generator_id: UUID | None,
    name: str,
    description: str | None,
    template_content: str,
    parameters_schema: str,
    checksum: str,
    now: datetime,
) -> wire.StackTemplate:
    """The family's next version: 1 + the highest live version (1 for a new family). The family
    lock (PostgreSQL) or the single writer (SQLite) makes concurrent versions consecutive."""
    await locking.hold_for_transaction(tx, _family_lock_key(generator_id, name))
    highest = (
        await tx.execute(
            sa.select(sa.func.max(_t.c.version)).where(
                _family(generator_id, name), _t.c.deleted_at.is_(None)
            )
        )
    ).scalar_one()
    return await _rows.insert(
        tx,
        now=now,
        generator_id=generator_id,
        name=name,
        description=description,
        version=(highest or 0) + 1,
        template_content=template_content,
        parameters_schema=parameters_schema,
        checksum=checksum,
    )


async def list_live(
    tx: Tx, *, generator_id: UUID | None, limit: int, offset: int = 0
) -> list[wire.StackTemplate]:
    """Every live version (admins: ``generator_id`` None), or a generator's view: the system
    templates followed by its own; oldest first within each."""
    if generator_id is None:
        return await _rows.list_live(tx, limit=limit, offset=offset)
    query = (
        sa.select(*_rows.columns)
        .where(
            _t.c.deleted_at.is_(None),
            sa.or_(_t.c.generator_id.is_(None), _t.c.generator_id == generator_id),
        )
        .order_by(_t.c.generator_id.is_not(None), _t.c.created_at, _t.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [_rows.to_record(row) for row in await tx.execute(query)]


async def copy_metadata(tx: Tx, *, source_id: UUID, target_id: UUID, now: datetime) -> None:
    """Carry a version's labels and annotations over to its successor (D16)."""
    for table, keys in (
        (tables.template_labels, ("label",)),
        (tables.template_annotations, ("key", "value")),
    ):
        rows = await tx.execute(
            sa.select(*(table.c[k] for k in keys)).where(table.c.template_id == source_id)
        )
        copies = [
            {"id": uuid.uuid4(), "template_id": target_id, "created_at": now, **row._mapping}
            for row in rows
        ]
        if copies:
            await tx.execute(table.insert(), copies)


async def insert_provenance(
    tx: Tx,
    *,
    deployment_object_id: UUID,
    template_id: UUID,
    template_version: int,
    parameters_json: str,
    now: datetime,
) -> None:
    await tx.execute(
        tables.rendered_deployment_objects.insert().values(
            deployment_object_id=deployment_object_id,
            template_id=template_id,
            template_version=template_version,
            template_parameters=parameters_json,
            created_at=now,
        )
    )


async def get_provenance(tx: Tx, deployment_object_id: UUID) -> wire.TemplateProvenance | None:
    p = tables.rendered_deployment_objects
    row = (
        await tx.execute(sa.select(p).where(p.c.deployment_object_id == deployment_object_id))
    ).first()
    if row is None:
        return None
    return wire.TemplateProvenance(
        deployment_object_id=row.deployment_object_id,
        template_id=row.template_id,
        template_version=row.template_version,
        parameters=msgspec.json.decode(row.template_parameters),
        created_at=row.created_at,
    )
