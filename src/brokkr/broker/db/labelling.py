"""Labels and annotations of one kind of owner (agents, stacks, templates): hard-deleted rows, a
label at most once and one value per annotation key for each owner (a second is ``integrity``'s
conflict). Rows are read as the wire Struct, from the columns it names."""

from __future__ import annotations

import uuid
from typing import Any, Generic, TypeVar
from uuid import UUID

import msgspec
import sqlalchemy as sa

from brokkr.broker.db.engine import Tx

R = TypeVar("R", bound=msgspec.Struct)


class _Tags(Generic[R]):
    """The rows of ``table`` an owner holds, one per value of the ``key`` column."""

    def __init__(self, table: sa.Table, *, owner: str, record: type[R], key: str) -> None:
        self._t = table
        self._owner = table.c[owner]
        self._record = record
        self._key = table.c[key]
        self._columns = [table.c[name] for name in record.__struct_fields__]

    async def list(self, tx: Tx, owner_id: UUID) -> list[R]:
        rows = await tx.execute(
            sa.select(*self._columns).where(self._owner == owner_id).order_by(self._key)
        )
        return [self._record(**row._mapping) for row in rows]

    async def _add(self, tx: Tx, owner_id: UUID, **values: Any) -> R:
        row = {"id": uuid.uuid4(), self._owner.name: owner_id, **values}
        await tx.execute(self._t.insert().values(row))
        return self._record(**row)

    async def remove(self, tx: Tx, owner_id: UUID, key: str) -> bool:
        result = await tx.execute(self._t.delete().where(self._owner == owner_id, self._key == key))
        return result.rowcount > 0


class Labels(_Tags[R]):
    def __init__(self, table: sa.Table, *, owner: str, record: type[R]) -> None:
        super().__init__(table, owner=owner, record=record, key="label")

    async def add(self, tx: Tx, owner_id: UUID, label: str) -> R:
        return await self._add(tx, owner_id, label=label)


class Annotations(_Tags[R]):
    def __init__(self, table: sa.Table, *, owner: str, record: type[R]) -> None:
        super().__init__(table, owner=owner, record=record, key="key")

    async def add(self, tx: Tx, owner_id: UUID, key: str, value: str) -> R:
        return await self._add(tx, owner_id, key=key, value=value)
