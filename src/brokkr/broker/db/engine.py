"""Engine creation and transactions on PostgreSQL (production) and SQLite (embedded default).

SQLite gets WAL, foreign keys and a busy timeout on every connection; write transactions start
with ``BEGIN IMMEDIATE`` and are serialised inside the process (one writer at a time, the rest
queue) so concurrent writers wait their turn instead of failing "database is locked". Every
failed statement passes through ``integrity.translate`` first (both engines, reads and writes).

Nothing waits on the database unboundedly (a frozen network included): getting a connection is
bounded by ``acquire_timeout``, each statement by ``statement_timeout``, and a connection whose
statement timed out or was cancelled is killed on the spot rather than rolled back over a silent
network. Each such failure is ``DatabaseUnavailable`` (503); new connections replace the killed
ones, so the broker recovers by itself when the database answers again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.util.concurrency import await_

from brokkr.broker import private_files
from brokkr.broker.db import integrity
from brokkr.broker.domain import errors

# Services hold this as an opaque handle and pass it back to the query modules.
Tx = AsyncConnection

_WRITE = "brokkr_write"
# Set on maintenance connections (migrations): no statement deadline there.
_UNBOUNDED = "brokkr_unbounded"
# PostgreSQL cancels a slow statement itself at ``statement_timeout`` (a clean error, and the
# connection stays usable); the client gives up this much later, when only a silent network
# can explain the missing answer.
_CLIENT_GRACE_SECONDS = 0.5
# SQLite checks its statement deadline every this many virtual-machine steps (~1 ms of work).
_SQLITE_PROGRESS_STEPS = 10_000


@dataclass(frozen=True, kw_only=True)
class Timeouts:
    """How long the broker waits on the database before answering 503 (seconds)."""

    connect: float = 10.0
    # Pool checkout including a new connection's handshake.
    acquire: float = 5.0
    statement: float = 10.0
    # SQLite: waiting for this process's single writer.
    write_wait: float = 30.0


class Database:
    def __init__(
        self, engine: AsyncEngine, *, pool_size: int = 10, timeouts: Timeouts = Timeouts()
    ) -> None:
        self.engine = engine
        event.listen(engine.sync_engine, "handle_error", integrity.translate)
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        # PostgreSQL only, opened by ``open_fast_pool``: bare asyncpg for ``prepared.Read``.
        self.fast_pool: asyncpg.Pool | None = None
        self._pool_size = pool_size
        self.timeouts = timeouts
        # Told (kind, seconds) of every statement run outside the engine (``prepared.Read`` on
        # the fast pool); ``instrumentation.watch_queries`` sets it along with the engine's.
        self.observe_query: Callable[[str, float], None] | None = None
        # SQLite has one writer per file: queue writers here, where waiting costs nothing,
        # rather than in SQLite's busy handler, which gives up with "database is locked".
        self._writer = None if self.is_postgres else asyncio.Lock()

    async def open_fast_pool(self) -> None:
        if not self.is_postgres or self.fast_pool is not None:
            return
        self.fast_pool = await asyncpg.create_pool(
            self.dsn(),
            min_size=1,
            max_size=self._pool_size,
            timeout=self.timeouts.connect,
            command_timeout=self.timeouts.statement + _CLIENT_GRACE_SECONDS,
            server_settings=_server_settings(self.timeouts),
            # Only single read-only statements run here: no session state to reset on release.
            reset=_no_reset,
        )

    @asynccontextmanager
    async def fast_connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection of the fast pool (open) for one read, with the same bounds as the rest."""
        pool = self.fast_pool
        if pool is None:
            raise RuntimeError("the fast pool is not open")
        try:
            connection = await pool.acquire(timeout=self.timeouts.acquire)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise errors.DatabaseUnavailable() from exc
        try:
            yield connection
        except asyncpg.QueryCanceledError as exc:
            raise errors.DatabaseUnavailable() from exc
        except BaseException as exc:
            if _lost(exc):
                # Releasing would first wait for the cancel request to reach a silent server.
                connection.terminate()
                if isinstance(exc, Exception):
                    raise errors.DatabaseUnavailable() from exc
            raise
        finally:
            await pool.release(connection)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """One atomic unit of work: committed when the block exits normally, else rolled back."""
        async with self._write_turn(), self._connect(self.engine) as conn:
            conn = await conn.execution_options(**{_WRITE: True})
            await conn.begin()
            yield conn
            await conn.commit()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        """Autocommit reads: no BEGIN/COMMIT round trips on the hot paths."""
        async with self._connect(self._autocommit) as conn:
            yield conn

    @asynccontextmanager
    async def maintenance(self) -> AsyncIterator[AsyncConnection]:
        """A connection without statement deadlines, for migrations (they may rightly run long,
        or wait for another broker's migration lock). PostgreSQL: its own short-lived one."""
        if not self.is_postgres:
            async with self.engine.connect() as conn:
                yield await conn.execution_options(**{_UNBOUNDED: True})
            return
        engine = create_async_engine(
            self.engine.url,
            poolclass=NullPool,
            connect_args={
                "timeout": self.timeouts.connect,
                "server_settings": {"application_name": "brokkr-broker"},
            },
        )
        event.listen(engine.sync_engine, "handle_error", integrity.translate)
        try:
            async with engine.connect() as conn:
                yield conn
        finally:
            await engine.dispose()

    @asynccontextmanager
    async def _write_turn(self) -> AsyncIterator[None]:
        if self._writer is None:
            yield
            return
        try:
            async with asyncio.timeout(self.timeouts.write_wait):
                await self._writer.acquire()
        except TimeoutError as exc:
            raise errors.DatabaseUnavailable() from exc
        try:
            yield
        finally:
            self._writer.release()

    @asynccontextmanager
    async def _connect(self, engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        try:
            async with asyncio.timeout(self.timeouts.acquire):
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
        except BaseException as exc:
            if not _lost(exc):
                raise
            if self.is_postgres:
                # A rollback would wait for a silent server: kill the connection instead.
                await _kill(conn)
            if isinstance(exc, errors.DatabaseUnavailable) or not isinstance(exc, Exception):
                raise
            raise errors.DatabaseUnavailable() from exc
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

    def dsn(self) -> str:
        """The PostgreSQL URL for bare asyncpg (the fast pool, the change listener)."""
        return self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def _lost(exc: BaseException) -> bool:
    """Does ``exc`` mean the connection's state is unknown (no answer, or cancelled mid-way)?"""
    return isinstance(
        exc,
        TimeoutError
        | OSError
        | asyncio.CancelledError
        | errors.DatabaseUnavailable
        | sa.exc.OperationalError
        | sa.exc.InterfaceError
        | asyncpg.InterfaceError,
    )


async def _kill(conn: AsyncConnection) -> None:
    if conn.sync_connection is not None and not conn.invalidated:
        raw = conn.sync_connection.connection.driver_connection
        if isinstance(raw, asyncpg.Connection):
            raw.terminate()
    await conn.invalidate()


def _server_settings(timeouts: Timeouts) -> dict[str, str]:
    return {
        "application_name": "brokkr-broker",
        "statement_timeout": str(int(timeouts.statement * 1000)),
    }


async def _no_reset(_connection: asyncpg.Connection) -> None:
    return None


def create(url: str, *, pool_size: int = 20, timeouts: Timeouts = Timeouts()) -> Database:
    if url.startswith("sqlite"):
        engine = _sqlite_engine(url, pool_size=pool_size, timeouts=timeouts)
        return Database(engine, pool_size=pool_size, timeouts=timeouts)
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size // 2,
        pool_timeout=timeouts.acquire,
        pool_recycle=1800,
        connect_args={
            "timeout": timeouts.connect,
            "command_timeout": timeouts.statement + _CLIENT_GRACE_SECONDS,
            "server_settings": _server_settings(timeouts),
        },
    )
    event.listen(engine.sync_engine, "handle_error", _abort_unanswered)
    return Database(engine, pool_size=pool_size, timeouts=timeouts)


def _abort_unanswered(context: sa.engine.ExceptionContext) -> None:
    """A statement that timed out or was cancelled: close the socket now. SQLAlchemy then
    discards the connection, and its graceful close finds nothing left to wait for (it would
    otherwise wait two seconds for a silent server)."""
    if context.connection is None:
        return
    if not isinstance(context.original_exception, TimeoutError | asyncio.CancelledError):
        return
    raw = context.connection.connection.driver_connection
    if isinstance(raw, asyncpg.Connection):
        raw.terminate()


class _Deadline:
    """When the running statement of one SQLite connection must stop (None: no limit)."""

    def __init__(self) -> None:
        self.at: float | None = None

    def passed(self) -> int:
        # SQLite aborts the statement ("interrupted") when the progress handler returns non-zero.
        return int(self.at is not None and time.monotonic() > self.at)


def _sqlite_engine(url: str, *, pool_size: int, timeouts: Timeouts) -> AsyncEngine:
    path = url.split("///", 1)[1] if "///" in url else ""
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        pool_timeout=timeouts.acquire,
        connect_args={"timeout": timeouts.connect},
    )
    if path and path != ":memory:":
        _keep_private(engine, Path(path))
    _bound_statements(engine, timeouts.statement)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Transactions are begun explicitly below, not by the driver.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(timeouts.connect * 1000)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        if conn.get_execution_options().get(_WRITE):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def _keep_private(engine: AsyncEngine, file: Path) -> None:
    @event.listens_for(engine.sync_engine, "do_connect")
    def _before_connect(*_args: Any) -> None:
        # Before SQLite opens (or creates) the file: owner-only, -wal and -shm included (SQLite
        # gives them the database file's mode).
        private_files.create_dir(file.parent)
        private_files.restrict(file, create=True)
        for suffix in ("-wal", "-shm"):
            private_files.restrict(file.with_name(file.name + suffix))


def _bound_statements(engine: AsyncEngine, seconds: float) -> None:
    """SQLite has no statement timeout: a progress handler stops a statement past its deadline."""

    @event.listens_for(engine.sync_engine, "connect")
    def _install(dbapi_connection: Any, record: Any) -> None:
        deadline = record.info["deadline"] = _Deadline()
        await_(
            dbapi_connection.driver_connection.set_progress_handler(
                deadline.passed, _SQLITE_PROGRESS_STEPS
            )
        )

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _start_statement(conn: sa.Connection, *_args: Any) -> None:
        deadline: _Deadline | None = conn.info.get("deadline")
        if deadline is not None:
            unbounded = conn.get_execution_options().get(_UNBOUNDED)
            deadline.at = None if unbounded else time.monotonic() + seconds

    # The deadline covers one statement only, never the COMMIT or ROLLBACK that follows it.
    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def _end_statement(conn: sa.Connection, *_args: Any) -> None:
        _clear_deadline(conn)

    @event.listens_for(engine.sync_engine, "handle_error")
    def _end_failed_statement(context: sa.engine.ExceptionContext) -> None:
        if context.connection is not None:
            _clear_deadline(context.connection)


def _clear_deadline(conn: sa.Connection) -> None:
    deadline: _Deadline | None = conn.info.get("deadline")
    if deadline is not None:
        deadline.at = None
