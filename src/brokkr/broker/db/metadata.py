"""Labels and annotations of one kind of owner (agents, stacks): hard-deleted rows, a label at
most once and one value per annotation key for each owner."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Generic, TypeVar
from uuid import UUID

import sqlalchemy as sa

from brokkr.broker.db.engine import Tx
from brokkr.broker.db.integrity import violated_constraint
from brokkr.broker.domain import errors

Record = TypeVar("Record")


def _unique_constraint(table: sa.Table) -> str:
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint) and constraint.name:
            return str(constraint.name)
    raise LookupError(f"{table.name} has no named unique constraint")


class Labels(Generic[Record]):
    def __init__(
        self, table: sa.Table, *, owner: str, record: Callable[..., Record], noun: str
    ) -> None:
        self._t = table
        self._owner = table.c[owner]
        self._owner_field = owner
        self._record = record
        self._noun = noun
        self._unique = _unique_constraint(table)

    def _to_record(self, label_id: UUID, owner_id: UUID, label: str) -> Record:
        return self._record(id=label_id, label=label, **{self._owner_field: owner_id})

    async def list(self, tx: Tx, owner_id: UUID) -> list[Record]:
        rows = await tx.execute(
            sa.select(self._t.c.id, self._t.c.label)
            .where(self._owner == owner_id)
            .order_by(self._t.c.label)
        )
        return [self._to_record(row.id, owner_id, row.label) for row in rows]

    async def add(self, tx: Tx, owner_id: UUID, label: str) -> Record:
        label_id = uuid.uuid4()
        try:
            await tx.execute(
                self._t.insert().values({"id": label_id, self._owner: owner_id, "label": label})
            )
        except sa.exc.IntegrityError as exc:
            if violated_constraint(exc) == self._unique:
                raise errors.Conflict(
                    f"the {self._noun} already has this label",
                    code=f"{self._noun}_label_exists",
                    details={"label": label},
                ) from exc
            raise
        return self._to_record(label_id, owner_id, label)

    async def remove(self, tx: Tx, owner_id: UUID, label: str) -> bool:
        result = await tx.execute(
            self._t.delete().where(self._owner == owner_id, self._t.c.label == label)
        )
        return result.rowcount > 0


class Annotations(Generic[Record]):
    def __init__(
        self, table: sa.Table, *, owner: str, record: Callable[..., Record], noun: str
    ) -> None:
        self._t = table
        self._owner = table.c[owner]
        self._owner_field = owner
        self._record = record
        self._noun = noun
        self._unique = _unique_constraint(table)

    def _to_record(self, row_id: UUID, owner_id: UUID, key: str, value: str) -> Record:
        fields: dict[str, Any] = {self._owner_field: owner_id}
        return self._record(id=row_id, key=key, value=value, **fields)

    async def list(self, tx: Tx, owner_id: UUID) -> list[Record]:
        rows = await tx.execute(
            sa.select(self._t.c.id, self._t.c.key, self._t.c.value)
            .where(self._owner == owner_id)
            .order_by(self._t.c.key)
        )
        return [self._to_record(row.id, owner_id, row.key, row.value) for row in rows]

    async def add(self, tx: Tx, owner_id: UUID, key: str, value: str) -> Record:
        row_id = uuid.uuid4()
        try:
            await tx.execute(
                self._t.insert().values(
                    {"id": row_id, self._owner: owner_id, "key": key, "value": value}
                )
            )
        except sa.exc.IntegrityError as exc:
            if violated_constraint(exc) == self._unique:
                raise errors.Conflict(
                    f"the {self._noun} already has an annotation with this key",
                    code=f"{self._noun}_annotation_exists",
                    details={"key": key},
                ) from exc
            raise
        return self._to_record(row_id, owner_id, key, value)

    async def remove(self, tx: Tx, owner_id: UUID, key: str) -> bool:
        result = await tx.execute(
            self._t.delete().where(self._owner == owner_id, self._t.c.key == key)
        )
        return result.rowcount > 0
