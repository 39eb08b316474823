"""Queries on stack labels and annotations (hard-deleted rows, unique per stack)."""

from __future__ import annotations

import uuid
from uuid import UUID

import sqlalchemy as sa

from brokkr.broker.db import tables
from brokkr.broker.db.engine import Tx
from brokkr.broker.db.integrity import violated_constraint
from brokkr.broker.domain import errors
from brokkr.common import wire

_labels = tables.stack_labels
_annotations = tables.stack_annotations


async def list_labels(tx: Tx, stack_id: UUID) -> list[wire.StackLabel]:
    rows = await tx.execute(
        sa.select(_labels.c.id, _labels.c.stack_id, _labels.c.label)
        .where(_labels.c.stack_id == stack_id)
        .order_by(_labels.c.label)
    )
    return [wire.StackLabel(id=r.id, stack_id=r.stack_id, label=r.label) for r in rows]


async def add_label(tx: Tx, stack_id: UUID, label: str) -> wire.StackLabel:
    label_id = uuid.uuid4()
    try:
        await tx.execute(_labels.insert().values(id=label_id, stack_id=stack_id, label=label))
    except sa.exc.IntegrityError as exc:
        if violated_constraint(exc) == "unique_stack_label":
            raise errors.Conflict(
                "the stack already has this label",
                code="stack_label_exists",
                details={"label": label},
            ) from exc
        raise
    return wire.StackLabel(id=label_id, stack_id=stack_id, label=label)


async def remove_label(tx: Tx, stack_id: UUID, label: str) -> bool:
    result = await tx.execute(
        _labels.delete().where(_labels.c.stack_id == stack_id, _labels.c.label == label)
    )
    return result.rowcount > 0


async def list_annotations(tx: Tx, stack_id: UUID) -> list[wire.StackAnnotation]:
    rows = await tx.execute(
        sa.select(
            _annotations.c.id, _annotations.c.stack_id, _annotations.c.key, _annotations.c.value
        )
        .where(_annotations.c.stack_id == stack_id)
        .order_by(_annotations.c.key)
    )
    return [
        wire.StackAnnotation(id=r.id, stack_id=r.stack_id, key=r.key, value=r.value) for r in rows
    ]


async def add_annotation(tx: Tx, stack_id: UUID, key: str, value: str) -> wire.StackAnnotation:
    annotation_id = uuid.uuid4()
    try:
        await tx.execute(
            _annotations.insert().values(id=annotation_id, stack_id=stack_id, key=key, value=value)
        )
    except sa.exc.IntegrityError as exc:
        if violated_constraint(exc) == "unique_stack_annotation_key":
            raise errors.Conflict(
                "the stack already has an annotation with this key",
                code="stack_annotation_exists",
                details={"key": key},
            ) from exc
        raise
    return wire.StackAnnotation(id=annotation_id, stack_id=stack_id, key=key, value=value)


async def remove_annotation(tx: Tx, stack_id: UUID, key: str) -> bool:
    result = await tx.execute(
        _annotations.delete().where(_annotations.c.stack_id == stack_id, _annotations.c.key == key)
    )
    return result.rowcount > 0
