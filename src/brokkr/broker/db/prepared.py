"""Hot-path reads compiled once. On PostgreSQL they run on a bare asyncpg pool with asyncpg's
prepared-statement cache, skipping SQLAlchemy's per-call work (authentication and agent polling
run on every request); elsewhere they go through the engine like any other query.

The statement stays the single definition of the query: the SQL text is SQLAlchemy's own
compilation of it for the asyncpg dialect.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg

from brokkr.broker.db.engine import Database
from brokkr.broker.domain import errors

Statement = sa.Select[*tuple[Any, ...]] | sa.CompoundSelect[*tuple[Any, ...]]
_DIALECT = pg_asyncpg.dialect()  # type: ignore[no-untyped-call]


class Read:
    """A read-only SELECT returning at most one row."""

    def __init__(
        self,
        statement: sa.Select[*tuple[Any, ...]] | sa.CompoundSelect[*tuple[Any, ...]],
    ) -> None:
        self.statement = statement
        self._compiled = statement.compile(dialect=_DIALECT)
        self._sql = str(self._compiled)
        self._names = list(self._compiled.positiontup or ())

    async def first(self, database: Database, **params: Any) -> Mapping[str, Any] | None:
        pool = database.fast_pool
        if pool is None:
            async with database.read() as conn:
                row = (await conn.execute(self.statement, params)).mappings().first()
            return None if row is None else {str(key): value for key, value in row.items()}
        values = self._compiled.construct_params(params)
        arguments = [values[name] for name in self._names]
        try:
            async with pool.acquire() as connection:
                record: Mapping[str, Any] | None = await connection.fetchrow(self._sql, *arguments)
        except (OSError, asyncpg.exceptions.ConnectionDoesNotExistError, TimeoutError) as exc:
            raise errors.Unavailable("database unavailable", code="database_unavailable") from exc
        return record
