"""The soft-deleted resources (agents, generators, stacks): their shared reads and writes.

A row is live until ``deleted_at`` is set; reads see live rows only unless the name says
otherwise. Rows are read as the resource's wire Struct, from the columns it names; a PAK hash
only through ``get_credential``. Name clashes are ``integrity``'s to report.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

import msgspec
import sqlalchemy as sa

from brokkr.broker.db.engine import Tx

W = TypeVar("W", bound=msgspec.Struct)


class Credential(msgspec.Struct, Generic[W], frozen=True):
    """A record with its current key hash: what must be revoked when it changes."""

    record: W
    pak_hash: str | None


class Records(Generic[W]):
    def __init__(self, table: sa.Table, record: type[W]) -> None:
        self.table = table
        self.record = record
        self.columns = tuple(table.c[name] for name in record.__struct_fields__)
        self._live = table.c.deleted_at.is_(None)

    def to_record(self, row: sa.Row[Any]) -> W:
        return self.record(**row._mapping)

    async def insert(self, tx: Tx, *, now: datetime, **values: Any) -> W:
        """A new live row with a fresh id."""
        statement = self.table.insert().values(
            id=uuid.uuid4(), created_at=now, updated_at=now, **values
        )
        return self.to_record((await tx.execute(statement.returning(*self.columns))).one())

    async def get(self, tx: Tx, record_id: UUID, *, for_update: bool = False) -> W | None:
        query = sa.select(*self.columns).where(self.table.c.id == record_id, self._live)
        row = (await tx.execute(query.with_for_update() if for_update else query)).first()
        return self.to_record(row) if row else None

    async def get_including_deleted(self, tx: Tx, record_id: UUID) -> W | None:
        row = (
            await tx.execute(sa.select(*self.columns).where(self.table.c.id == record_id))
        ).first()
        return self.to_record(row) if row else None

    async def get_credential(self, tx: Tx, record_id: UUID) -> Credential[W] | None:
        """The live record and its key hash, locked until the transaction ends."""
        query = sa.select(*self.columns, self.table.c.pak_hash).where(
            self.table.c.id == record_id, self._live
        )
        row = (await tx.execute(query.with_for_update())).first()
        if row is None:
            return None
        values = dict(row._mapping)
        pak_hash = values.pop("pak_hash")
        return Credential(record=self.record(**values), pak_hash=pak_hash)

    async def list_live(
        self, tx: Tx, *where: sa.ColumnElement[bool], limit: int, offset: int = 0
    ) -> list[W]:
        """Oldest first, so that offsets stay put while rows are added."""
        query = sa.select(*self.columns).where(self._live, *where)
        query = query.order_by(self.table.c.created_at, self.table.c.id)
        rows = await tx.execute(query.limit(limit).offset(offset))
        return [self.to_record(row) for row in rows]

    async def update(self, tx: Tx, record_id: UUID, *, now: datetime, **values: Any) -> W | None:
        """Set ``values`` (a rename, a new PAK, ...) on a live row; None when it is not live."""
        statement = (
            self.table.update()
            .where(self.table.c.id == record_id, self._live)
            .values(updated_at=now, **values)
        )
        row = (await tx.execute(statement.returning(*self.columns))).first()
        return self.to_record(row) if row else None

    async def soft_delete(self, tx: Tx, record_id: UUID, *, now: datetime) -> bool:
        """Mark a live row deleted; False when it was not live (already deleted or unknown)."""
        return await self.update(tx, record_id, now=now, deleted_at=now) is not None
