"""The ``brokkr`` command as a user runs it (README, D5, D7, D19, D22), as real subprocesses.

Covers ``brokkr serve`` with nothing but a data dir (SQLite): it becomes ready, prints the
generated admin PAK once in a banner, saves it to ``<data_dir>/admin.pak`` (0600), the key
works, SIGTERM stops it with status 0, and a restart prints no banner and keeps the key;
``brokkr admin rotate-pak`` against a running broker on SQLite and on PostgreSQL (the old key,
cached just before, is refused within 3 s; the new one works; stderr names the database);
``admin rotate-pak`` refusing, in one line naming the database, a SQLite file that does not
exist (creating nothing) and a PostgreSQL database without the broker's schema (changing
nothing); ``serve`` and ``db upgrade`` on a PostgreSQL database that does not exist: one error
line with the driver's cause, no traceback, no password; ``brokkr db upgrade`` printing the
revision; and the help of ``brokkr``, ``serve`` and ``admin rotate-pak``.
"""

from __future__ import annotations

import asyncio
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from typer.testing import CliRunner

from brokkr.broker import migrations
from brokkr.broker.domain import paks
from brokkr.cli.main import app
from tests.cli.serving import environment, run_cli, running_broker
from tests.conftest import POSTGRES_URL, create_postgres_database, drop_postgres_database

BANNER = "BROKKR ADMIN PAK"
# Well under the 5 s auth-cache TTL, so only the revocation notice can explain a refusal; loose
# enough for a loaded machine.
REVOCATION_DEADLINE = 3.0


def verify(client: httpx.Client, pak: str) -> int:
    response = client.post("/api/v1/auth/pak", headers={"Authorization": f"Bearer {pak}"})
    if response.status_code == 200:
        assert response.json() == {"admin": True, "agent": None, "generator": None}
    return response.status_code


def read_pak(data_dir: Path) -> str:
    return (data_dir / "admin.pak").read_text(encoding="utf-8").strip()


def test_serve_with_only_a_data_dir_generates_admin_pak_once_and_keeps_it(tmp_path: Path) -> None:
    data = tmp_path / "data"

    with running_broker(data, tmp_path / "first") as server:
        pak_file = data / "admin.pak"
        assert pak_file.exists()
        assert stat.S_IMODE(pak_file.stat().st_mode) == 0o600
        pak = read_pak(data)
        assert paks.is_well_formed(pak)
        assert (data / "brokkr.db").exists()
        with httpx.Client(base_url=server.url) as client:
            assert verify(client, pak) == 200
            assert verify(client, paks.generate().plaintext) == 401
        started = time.monotonic()
        assert server.terminate(timeout=10) == 0
        assert time.monotonic() - started < 10
    stdout = server.stdout()
    assert stdout.count(BANNER) == 1
    assert stdout.count(pak) == 1
    assert str(pak_file) in stdout
    assert pak not in server.stderr(), "the admin PAK must never reach the logs"

    with running_broker(data, tmp_path / "second") as again:
        with httpx.Client(base_url=again.url) as client:
            assert verify(client, pak) == 200
        assert again.terminate(timeout=10) == 0
    assert BANNER not in again.stdout()
    assert pak not in again.stdout() + again.stderr()
    assert read_pak(data) == pak


def rotate_while_serving(workdir: Path, extra_env: dict[str, str]) -> None:
    data = workdir / "data"
    with (
        running_broker(data, workdir, extra_env=extra_env) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        old = read_pak(data)
        assert verify(client, old) == 200  # now in the broker's auth cache (TTL 5 s)
        assert verify(client, old) == 200

        result = run_cli("admin", "rotate-pak", env=environment(data, extra_env))
        rotated_at = time.monotonic()
        assert result.returncode == 0, result.stderr
        kind = "PostgreSQL database brokkr_test_" if extra_env else f"SQLite database {data}"
        assert f"rotated the admin PAK in the {kind}" in result.stderr
        new = result.stdout.strip()
        assert paks.is_well_formed(new) and new != old
        assert read_pak(data) == new  # the saved copy follows the rotation

        while (status := verify(client, old)) != 401:
            assert status == 200
            assert time.monotonic() - rotated_at < REVOCATION_DEADLINE, (
                "the old admin PAK still works on the running broker"
            )
            time.sleep(0.05)
        assert verify(client, new) == 200
        assert server.terminate() == 0


async def test_rotate_pak_revokes_old_key_on_running_sqlite_broker(tmp_path: Path) -> None:
    await asyncio.to_thread(rotate_while_serving, tmp_path, {})


@pytest.fixture
async def fresh_postgres_url() -> AsyncIterator[str]:
    url = await create_postgres_database()
    yield url
    await drop_postgres_database(url)


async def test_rotate_pak_revokes_old_key_on_running_postgres_broker(
    tmp_path: Path, fresh_postgres_url: str
) -> None:
    env = {"BROKKR__DATABASE__URL": fresh_postgres_url}
    await asyncio.to_thread(rotate_while_serving, tmp_path, env)


async def test_rotate_pak_refuses_a_missing_sqlite_database_and_creates_nothing(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    result = await asyncio.to_thread(run_cli, "admin", "rotate-pak", env=environment(data))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == f"error: SQLite database {data / 'brokkr.db'} does not exist"
    assert not data.exists()


async def test_rotate_pak_refuses_a_postgres_database_without_the_broker_schema(
    tmp_path: Path, fresh_postgres_url: str
) -> None:
    name = fresh_postgres_url.rpartition("/")[2]
    env = environment(tmp_path / "data", {"BROKKR__DATABASE__URL": fresh_postgres_url})
    result = await asyncio.to_thread(run_cli, "admin", "rotate-pak", env=env)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: PostgreSQL database {name} on 127.0.0.1:5432")
    assert "holds no Brokkr schema" in lines[0]
    assert not (tmp_path / "data" / "admin.pak").exists()
    conn = await asyncpg.connect(fresh_postgres_url)
    try:
        assert (
            await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
        )
    finally:
        await conn.close()


@pytest.mark.parametrize("args", [("db", "upgrade"), ("serve", "--port", "1")])
async def test_a_missing_postgres_database_is_one_line_naming_the_cause(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    base = POSTGRES_URL.rpartition("/")[0].replace("postgres@", "postgres:s3cret@")
    env = environment(tmp_path / "data", {"BROKKR__DATABASE__URL": f"{base}/brokkr_no_such_db"})
    result = await asyncio.to_thread(run_cli, *args, env=env)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert lines == [
        "error: cannot use the PostgreSQL database brokkr_no_such_db on 127.0.0.1:5432 as "
        'postgres: database "brokkr_no_such_db" does not exist'
    ], result.stderr
    assert "Traceback" not in result.stderr and "s3cret" not in result.stderr


def test_db_upgrade_prints_the_revision_and_is_repeatable(tmp_path: Path) -> None:
    env = environment(tmp_path / "data")
    for _ in range(2):
        result = run_cli("db", "upgrade", env=env)
        assert result.returncode == 0, result.stderr
        assert migrations.head() in result.stdout
    assert (tmp_path / "data" / "brokkr.db").exists()
    assert not (tmp_path / "data" / "admin.pak").exists()  # only serve bootstraps the admin


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        ([], ["serve", "db", "admin"]),
        (["serve"], ["--host", "--port", "--config", "Example", "BROKKR__DATABASE__URL"]),
        (["db", "upgrade"], ["--config", "Example"]),
        (["admin", "rotate-pak"], ["--config", "Example", "old key stops working"]),
    ],
)
def test_help_describes_options_and_examples(args: list[str], mentions: list[str]) -> None:
    result = CliRunner().invoke(app, [*args, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for text in mentions:
        assert text in result.output, (text, result.output)


def test_bare_command_shows_help_instead_of_doing_anything() -> None:
    result = CliRunner().invoke(app, [])
    assert "serve" in result.output and "Usage" in result.output


@pytest.mark.parametrize(
    ("args", "extra"),
    [(("--workers", "2"), {}), ((), {"BROKKR__BROKER__WORKERS": "2"})],
    ids=["flag", "setting"],
)
def test_serve_refuses_several_workers_on_sqlite_naming_the_reason(
    tmp_path: Path, args: tuple[str, ...], extra: dict[str, str]
) -> None:
    env = environment(tmp_path / "data", extra)
    result = run_cli("serve", "--host", "127.0.0.1", "--port", "1", *args, env=env)
    assert result.returncode == 1
    assert "2 workers need a PostgreSQL database" in result.stderr
    assert "SQLite allows one writer at a time" in result.stderr
    # Refused before anything was created.
    assert not (tmp_path / "data").exists()
