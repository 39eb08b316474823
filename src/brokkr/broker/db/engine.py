"""Engine creation and transactions on PostgreSQL (production) and SQLite (embedded default).

SQLite gets WAL, foreign keys and a busy timeout on every connection; write transactions start
with ``BEGIN IMMEDIATE`` so concurrent writers queue instead of failing on lock upgrade. Every
failed statement passes through ``integrity.translate`` first (both engines, reads and writes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from brokkr.broker.db import integrity
from brokkr.broker.domain import errors

# Services hold this as an opaque handle and pass it back to the query modules.
Tx = AsyncConnection

_WRITE = "brokkr_write"


class Database:
    def __init__(
        self, engine: AsyncEngine, *, pool_size: int = 10, connect_timeout: float = 10.0
    ) -> None:
        self.engine = engine
        event.listen(engine.sync_engine, "handle_error", integrity.translate)
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        # PostgreSQL only, opened by ``open_fast_pool``: bare asyncpg for ``prepared.Read``.
        self.fast_pool: asyncpg.Pool | None = None
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout

    async def open_fast_pool(self) -> None:
        if not self.is_postgres or self.fast_pool is not None:
            return
        dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.fast_pool = await asyncpg.create_pool(
            dsn,
            min_size=1,
            max_size=self._pool_size,
            timeout=self._connect_timeout,
            server_settings={"application_name": "brokkr-broker"},
            # Only single read-only statements run here: no session state to reset on release.
            reset=_no_reset,
        )

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """One atomic unit of work: committed when the block exits normally, else rolled back."""
        async with self._connect(self.engine) as conn:
            conn = await conn.execution_options(**{_WRITE: True})
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        """Autocommit reads: no BEGIN/COMMIT round trips on the hot paths."""
        async with self._connect(self._autocommit) as conn:
            yield conn

    @asynccontextmanager
    async def _connect(self, engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        try:
            conn = await engine.connect()
        except (
            sa.exc.OperationalError,
            sa.exc.InterfaceError,
            sa.exc.TimeoutError,
            OSError,
        ) as exc:
            raise errors.DatabaseUnavailable() from exc
        try:
            yield conn
        finally:
            await conn.close()

    async def ping(self) -> None:
        async with self.read() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        if self.fast_pool is not None:
            await self.fast_pool.close()
            self.fast_pool = None
        await self.engine.dispose()


async def _no_reset(_connection: asyncpg.Connection) -> None:
    return None


def create(url: str, *, pool_size: int = 20, connect_timeout: float = 10.0) -> Database:
    if url.startswith("sqlite"):
        return Database(_sqlite_engine(url, pool_size=pool_size, connect_timeout=connect_timeout))
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size // 2,
        pool_timeout=connect_timeout,
        pool_recycle=1800,
        connect_args={
            "timeout": connect_timeout,
            "server_settings": {"application_name": "brokkr-broker"},
        },
    )
    return Database(engine, pool_size=pool_size, connect_timeout=connect_timeout)


def _sqlite_engine(url: str, *, pool_size: int, connect_timeout: float) -> AsyncEngine:
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        url, pool_size=pool_size, connect_args={"timeout": connect_timeout}
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Transactions are begun explicitly below, not by the driver.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(connect_timeout * 1000)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        if conn.get_execution_options().get(_WRITE):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine
