"""Alembic migrations (D19): the same revisions serve SQLite and PostgreSQL.

Covers, on an empty SQLite file and an empty PostgreSQL database: upgrading to head produces
exactly the schema of ``brokkr.broker.db.tables.metadata`` (autogenerate finds no differences),
upgrading again is a no-op, and ``alembic_version`` holds ``migrations.head()``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from brokkr.broker import db, migrations
from brokkr.broker.db import tables
from tests.conftest import create_postgres_database, drop_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[db.Database]:
    pg_url = ""
    if request.param == "postgresql":
        pg_url = await create_postgres_database()
        url = pg_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'brokkr.db'}"
    database = db.create(url, pool_size=2)
    try:
        yield database
    finally:
        await database.dispose()
        if pg_url:
            await drop_postgres_database(pg_url)


def _differences(connection: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection=connection, opts={"compare_type": True, "render_as_batch": True}
    )
    return list(compare_metadata(context, tables.metadata))


async def schema_differences(database: db.Database) -> list[Any]:
    async with database.engine.connect() as conn:
        return await conn.run_sync(_differences)


async def table_names(database: db.Database) -> set[str]:
    async with database.engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))


async def versions(database: db.Database) -> list[str]:
    async with database.read() as conn:
        rows = await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
        return [row[0] for row in rows]


async def test_empty_database_has_no_tables_before_upgrade(empty_database: db.Database) -> None:
    assert await table_names(empty_database) == set()


async def test_upgrade_creates_exactly_the_declared_schema(empty_database: db.Database) -> None:
    await migrations.upgrade(empty_database)
    assert await schema_differences(empty_database) == []
    assert await table_names(empty_database) == set(tables.metadata.tables) | {"alembic_version"}


async def test_database_is_at_head_after_upgrade(empty_database: db.Database) -> None:
    await migrations.upgrade(empty_database)
    assert await versions(empty_database) == [migrations.head()]
    assert await db.schema_version.current(empty_database) == migrations.head()


async def test_upgrading_twice_is_a_no_op(empty_database: db.Database) -> None:
    await migrations.upgrade(empty_database)
    async with empty_database.transaction() as tx:
        await tx.execute(
            tables.auth_revocations.insert().values(
                pak_hash="a" * 64, created_at=sa.func.current_timestamp()
            )
        )
    await migrations.upgrade(empty_database)
    assert await versions(empty_database) == [migrations.head()]
    assert await schema_differences(empty_database) == []
    async with empty_database.read() as conn:
        kept = await conn.execute(sa.select(sa.func.count()).select_from(tables.auth_revocations))
        assert kept.scalar_one() == 1


async def test_fresh_database_reports_no_revision(empty_database: db.Database) -> None:
    assert await db.schema_version.current(empty_database) is None
