"""First-start admin bootstrap (D5).

Covers two brokers starting together on one empty database (PostgreSQL, and one shared SQLite
file) creating exactly one admin identity, one ``admin.pak`` file and one ``admin-generator``,
with the generated key working on both brokers; a configured ``broker.admin_pak`` being used
as is (no file, no banner); and a configured ``broker.admin_pak_hash`` accepting the key whose
SHA-256 it is.
"""

from __future__ import annotations

import asyncio
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from litestar import Litestar

from brokkr.broker.app import create_app
from brokkr.broker.db import tables
from brokkr.broker.domain import paks
from brokkr.broker.settings import load
from tests.broker.conftest import auth
from tests.conftest import create_postgres_database, drop_postgres_database

BANNER = "BROKKR ADMIN PAK"


@asynccontextmanager
async def fresh_postgres() -> AsyncIterator[str]:
    url = await create_postgres_database()
    try:
        yield url
    finally:
        await drop_postgres_database(url)


@asynccontextmanager
async def started(*apps: Litestar) -> AsyncIterator[None]:
    """Start every app's runtime concurrently, like replicas booting together."""
    results = await asyncio.gather(
        *(app.state.runtime.start() for app in apps), return_exceptions=True
    )
    try:
        failures = [r for r in results if isinstance(r, BaseException)]
        assert not failures, failures
        yield
    finally:
        for app in apps:
            await app.state.runtime.stop()


def broker_app(data_dir: Path, database_url: str = "", **broker: str) -> Litestar:
    environ = {"BROKKR__DATA_DIR": str(data_dir)}
    if database_url:
        environ["BROKKR__DATABASE__URL"] = database_url
    for key, value in broker.items():
        environ[f"BROKKR__BROKER__{key.upper()}"] = value
    return create_app(load(environ=environ))


async def verify(app: Litestar, pak: str) -> int:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # Litestar's TypedDict scopes
    async with httpx.AsyncClient(transport=transport, base_url="http://broker.test") as client:
        response = await client.post("/api/v1/auth/pak", headers=auth(pak))
    if response.status_code == 200:
        assert response.json() == {"admin": True, "agent": None, "generator": None}
    return response.status_code


async def count(app: Litestar, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    async with app.state.ctx.database.read() as conn:
        query = sa.select(sa.func.count()).select_from(table).where(*where)
        return int((await conn.execute(query)).scalar_one())


async def assert_one_admin_created(
    first: Litestar, second: Litestar, data_dirs: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert await count(first, tables.admin_role) == 1
    generators = tables.generators
    assert await count(first, generators, generators.c.name == "admin-generator") == 1

    pak_files = [d / "admin.pak" for d in data_dirs if (d / "admin.pak").exists()]
    assert len(pak_files) == 1, pak_files
    [pak_file] = pak_files
    assert stat.S_IMODE(pak_file.stat().st_mode) == 0o600
    pak = pak_file.read_text().strip()
    assert paks.is_well_formed(pak)

    assert await verify(first, pak) == 200
    assert await verify(second, pak) == 200
    assert await verify(second, paks.generate().plaintext) == 401

    out = capsys.readouterr().out
    assert out.count(BANNER) == 1
    assert out.count(pak) == 1


async def test_two_brokers_on_one_empty_postgres_database_create_one_admin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with fresh_postgres() as url:
        dirs = [tmp_path / "one", tmp_path / "two"]
        first, second = (broker_app(d, url) for d in dirs)
        async with started(first, second):
            await assert_one_admin_created(first, second, dirs, capsys)


async def test_two_brokers_on_one_sqlite_file_create_one_admin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    dirs = [tmp_path / "one", tmp_path / "two"]
    first, second = (broker_app(d, url) for d in dirs)
    async with started(first, second):
        await assert_one_admin_created(first, second, dirs, capsys)


async def test_second_start_keeps_the_admin_and_prints_no_banner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with started(broker_app(tmp_path)):
        pass
    pak = (tmp_path / "admin.pak").read_text().strip()
    assert capsys.readouterr().out.count(BANNER) == 1
    again = broker_app(tmp_path)
    async with started(again):
        assert await verify(again, pak) == 200
        assert await count(again, tables.admin_role) == 1
    assert BANNER not in capsys.readouterr().out
    assert (tmp_path / "admin.pak").read_text().strip() == pak


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_configured_admin_pak_is_used_without_file_or_banner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], backend: str
) -> None:
    pak = paks.generate().plaintext
    async with fresh_postgres() as pg_url:
        url = pg_url if backend == "postgresql" else ""
        app = broker_app(tmp_path, url, admin_pak=pak)
        async with started(app):
            assert await verify(app, pak) == 200
            assert await verify(app, paks.generate().plaintext) == 401
            assert await count(app, tables.admin_role) == 1
    assert not (tmp_path / "admin.pak").exists()
    out = capsys.readouterr().out
    assert BANNER not in out and pak not in out


async def test_configured_admin_pak_hash_accepts_the_matching_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pak = paks.generate()
    app = broker_app(tmp_path, admin_pak_hash=pak.hash.upper())
    async with started(app):
        assert await verify(app, pak.plaintext) == 200
        assert await verify(app, paks.generate().plaintext) == 401
    assert not (tmp_path / "admin.pak").exists()
    assert BANNER not in capsys.readouterr().out


async def test_configuration_is_ignored_once_an_admin_exists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first_key = paks.generate().plaintext
    async with started(broker_app(tmp_path, admin_pak=first_key)):
        pass
    later_key = paks.generate().plaintext
    app = broker_app(tmp_path, admin_pak=later_key)
    async with started(app):
        assert await verify(app, first_key) == 200
        assert await verify(app, later_key) == 401
    assert BANNER not in capsys.readouterr().out
