"""Which Alembic revision the database is at (for ``/readyz``)."""

from __future__ import annotations

import sqlalchemy as sa

from brokkr.broker.db.engine import Database


async def current(database: Database) -> str | None:
    """The applied revision, or None before the first migration. Raises ``Unavailable`` when
    the database cannot be reached."""
    async with database.read() as conn:
        try:
            return (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar()
        except sa.exc.ProgrammingError:
            return None
        except sa.exc.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise
