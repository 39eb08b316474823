"""Alembic migrations: every revision runs on SQLite and PostgreSQL. Applied at start-up and by
``brokkr db upgrade``; concurrent brokers serialise on an advisory lock."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from brokkr.broker.db import Database, locking

_HERE = Path(__file__).parent


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
    async with database.engine.connect() as conn:
        await locking.acquire_session(conn, locking.MIGRATION_LOCK)
        await conn.commit()
        try:
            await conn.run_sync(lambda sync: command.upgrade(config(sync), "head"))
            await conn.commit()
        finally:
            await locking.release_session(conn, locking.MIGRATION_LOCK)
            await conn.commit()
