"""Queries on agent labels and annotations (hard-deleted rows, unique per agent)."""

from __future__ import annotations

import uuid
from uuid import UUID

import sqlalchemy as sa

from brokkr.broker.db import tables
from brokkr.broker.db.engine import Tx
from brokkr.broker.db.integrity import violated_constraint
from brokkr.broker.domain import errors
from brokkr.common import wire

_labels = tables.agent_labels
_annotations = tables.agent_annotations


async def list_labels(tx: Tx, agent_id: UUID) -> list[wire.AgentLabel]:
    rows = await tx.execute(
        sa.select(_labels.c.id, _labels.c.agent_id, _labels.c.label)
        .where(_labels.c.agent_id == agent_id)
        .order_by(_labels.c.label)
    )
    return [wire.AgentLabel(id=r.id, agent_id=r.agent_id, label=r.label) for r in rows]


async def add_label(tx: Tx, agent_id: UUID, label: str) -> wire.AgentLabel:
    label_id = uuid.uuid4()
    try:
        await tx.execute(_labels.insert().values(id=label_id, agent_id=agent_id, label=label))
    except sa.exc.IntegrityError as exc:
        if violated_constraint(exc) == "unique_agent_label":
            raise errors.Conflict(
                "the agent already has this label",
                code="agent_label_exists",
                details={"label": label},
            ) from exc
        raise
    return wire.AgentLabel(id=label_id, agent_id=agent_id, label=label)


async def remove_label(tx: Tx, agent_id: UUID, label: str) -> bool:
    result = await tx.execute(
        _labels.delete().where(_labels.c.agent_id == agent_id, _labels.c.label == label)
    )
    return result.rowcount > 0


async def list_annotations(tx: Tx, agent_id: UUID) -> list[wire.AgentAnnotation]:
    rows = await tx.execute(
        sa.select(
            _annotations.c.id, _annotations.c.agent_id, _annotations.c.key, _annotations.c.value
        )
        .where(_annotations.c.agent_id == agent_id)
        .order_by(_annotations.c.key)
    )
    return [
        wire.AgentAnnotation(id=r.id, agent_id=r.agent_id, key=r.key, value=r.value) for r in rows
    ]


async def add_annotation(tx: Tx, agent_id: UUID, key: str, value: str) -> wire.AgentAnnotation:
    annotation_id = uuid.uuid4()
    try:
        await tx.execute(
            _annotations.insert().values(id=annotation_id, agent_id=agent_id, key=key, value=value)
        )
    except sa.exc.IntegrityError as exc:
        if violated_constraint(exc) == "unique_agent_annotation_key":
            raise errors.Conflict(
                "the agent already has an annotation with this key",
                code="agent_annotation_exists",
                details={"key": key},
            ) from exc
        raise
    return wire.AgentAnnotation(id=annotation_id, agent_id=agent_id, key=key, value=value)


async def remove_annotation(tx: Tx, agent_id: UUID, key: str) -> bool:
    result = await tx.execute(
        _annotations.delete().where(_annotations.c.agent_id == agent_id, _annotations.c.key == key)
    )
    return result.rowcount > 0
