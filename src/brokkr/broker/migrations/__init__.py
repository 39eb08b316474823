"""Alembic migrations: every revision runs on SQLite and PostgreSQL. Applied at start-up and by
``brokkr db upgrade``; concurrent brokers serialise on an advisory lock."""

from __future__ import annotations

import asyncio
import weakref
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from brokkr.broker.db import Database, locking

_HERE = Path(__file__).parent

# Alembic's ``context`` is a process-wide proxy: one upgrade at a time per process (per loop).
_LOCAL_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    revision = ScriptDirectory.from_config(config()).get_current_head()
    if revision is None:
        raise RuntimeError("no migration revisions found")
    return revision


async def upgrade(database: Database) -> None:
    """Bring the schema to head; safe to call from several processes at once."""
    local_lock = _LOCAL_LOCKS.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with local_lock, database.maintenance() as conn:
        if not database.is_postgres:
            # SQLite has no advisory lock: take the write lock (BEGIN IMMEDIATE) before reading
            # alembic_version, so a concurrent broker waits instead of failing "database is locked".
            conn = await conn.execution_options(brokkr_write=True)
        await locking.acquire_session(conn, locking.MIGRATION_LOCK)
        await conn.commit()
        try:
            await conn.run_sync(lambda sync: command.upgrade(config(sync), "head"))
            await conn.commit()
        finally:
            await locking.release_session(conn, locking.MIGRATION_LOCK)
            await conn.commit()
