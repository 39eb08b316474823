"""The embedded database holds every manifest (issue #9, finding 11): owner-only files.

Covers a first start on SQLite under umask 022: the data dir is created 0700 and brokkr.db,
brokkr.db-wal and brokkr.db-shm are 0600; and a start on a data dir and database left
world-readable (0755/0644) by an older version: both are tightened to 0700/0600.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from brokkr.broker.app import create_app
from tests.broker.conftest import settings_for

FILES = ("brokkr.db", "brokkr.db-wal", "brokkr.db-shm")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


async def start_and_write(data: Path) -> dict[str, int]:
    """Start a broker on ``data``, write once, and report the modes while it runs."""
    app = create_app(settings_for("sqlite", data, ""))
    await app.state.runtime.start()
    try:
        async with app.state.ctx.database.transaction():
            pass
        return {name: mode(data / name) for name in FILES if (data / name).exists()}
    finally:
        await app.state.runtime.stop()


async def test_first_start_creates_an_owner_only_data_dir_and_database(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    modes = await start_and_write(data)
    assert mode(data) == 0o700
    assert modes == dict.fromkeys(FILES, 0o600)


async def test_a_world_readable_data_dir_and_database_are_tightened(tmp_path: Path) -> None:
    data = tmp_path / "old"
    await start_and_write(data)
    data.chmod(0o755)
    for name in FILES:
        if (data / name).exists():
            (data / name).chmod(0o644)

    modes = await start_and_write(data)
    assert mode(data) == 0o700
    assert modes == dict.fromkeys(FILES, 0o600)
