"""Hot-path reads compiled once. On PostgreSQL they run on a bare asyncpg pool with asyncpg's
prepared-statement cache, skipping SQLAlchemy's per-call work (authentication and agent polling
run on every request); elsewhere they go through the engine like any other query.

The statement stays the single definition of the query: the SQL text is SQLAlchemy's own
compilation of it for the asyncpg dialect.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import asyncpg as pg_asyncpg

from brokkr.broker.db.engine import Database

Statement = sa.Select[*tuple[Any, ...]] | sa.CompoundSelect[*tuple[Any, ...]]
_DIALECT = pg_asyncpg.dialect()  # type: ignore[no-untyped-call]


class Read:
    """A read-only SELECT."""

    def __init__(
        self,
        statement: sa.Select[*tuple[Any, ...]] | sa.CompoundSelect[*tuple[Any, ...]],
    ) -> None:
        self.statement = statement
        self._compiled = statement.compile(dialect=_DIALECT)
        self._sql = str(self._compiled)
        self._names = list(self._compiled.positiontup or ())

    async def first(self, database: Database, **params: Any) -> Mapping[str, Any] | None:
        rows = await self._run(database, params, first=True)
        return rows[0] if rows else None

    async def all(self, database: Database, **params: Any) -> list[Mapping[str, Any]]:
        return await self._run(database, params, first=False)

    async def _run(
        self, database: Database, params: dict[str, Any], *, first: bool
    ) -> list[Mapping[str, Any]]:
        if database.fast_pool is None:
            async with database.read() as conn:
                result = (await conn.execute(self.statement, params)).mappings()
                rows = [result.first()] if first else list(result)
            return [{str(key): value for key, value in row.items()} for row in rows if row]
        values = self._compiled.construct_params(params)
        arguments = [values[name] for name in self._names]
        async with database.fast_connection() as connection:
            started = time.perf_counter()
            if first:
                record = await connection.fetchrow(self._sql, *arguments)
                records: list[Mapping[str, Any]] = [record] if record is not None else []
            else:
                records = await connection.fetch(self._sql, *arguments)
        if database.observe_query is not None:
            database.observe_query("select", time.perf_counter() - started)
        return records
