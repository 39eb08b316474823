"""Suite-wide fixtures: a fresh PostgreSQL database per session (a missing PostgreSQL fails the run,
it never skips), and quiet, deterministic settings."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

POSTGRES_URL = os.environ.get(
    "BROKKR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


async def create_postgres_database() -> str:
    """Create an empty database and return its URL; fails the test run if PostgreSQL is down."""
    name = f"brokkr_test_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL is required for the test suite and is not reachable at {POSTGRES_URL}: "
            f"{exc}. Start it (see README) or set BROKKR_TEST_POSTGRES_URL.",
            pytrace=False,
        )
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _with_database(POSTGRES_URL, name)


async def drop_postgres_database(url: str) -> None:
    name = url.rpartition("/")[2]
    conn = await asyncpg.connect(POSTGRES_URL, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str]:
    url = await create_postgres_database()
    yield url
    await drop_postgres_database(url)


@pytest.fixture(autouse=True)
def _no_brokkr_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests build settings explicitly; a developer's BROKKR__* variables must not leak in."""
    for name in list(os.environ):
        if name.startswith(("BROKKR__", "BROKKR_CONFIG_FILE")):
            monkeypatch.delenv(name)
    yield
