"""The database stops answering (issue #9, finding 5): the broker answers 503 instead of hanging,
and recovers by itself.

Covers a PostgreSQL behind a TCP proxy that freezes (keeps every connection open, forwards
nothing, like a network partition): /readyz, reads and writes answer 503 ``database_unavailable``
instead of hanging, /healthz stays 200, and once the proxy forwards again the same broker is
ready and serves without a restart. On both databases, a statement running past
``database.statement_timeout_seconds`` is stopped (503) and the next one runs. How fast the 503s
come (/readyz within 2 s) is measured by bench/hostile.py, not asserted here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa

from brokkr.broker.api.observability import Observability
from brokkr.broker.app import create_app
from brokkr.broker.domain import errors
from tests.broker.conftest import ADMIN_PAK, Broker, assert_error, auth, settings_for
from tests.conftest import create_postgres_database, drop_postgres_database

TIMEOUT = 1.0
ADMIN = auth(ADMIN_PAK)


class FreezableProxy:
    """Forwards TCP to ``upstream``; ``freeze()`` stops forwarding without closing anything."""

    def __init__(self, host: str, port: int) -> None:
        self._upstream = (host, port)
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def __aenter__(self) -> FreezableProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.close()
            return
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while True:
                await self._flowing.wait()
                data = await source.read(65536)
                await self._flowing.wait()
                if not data:
                    break
                sink.write(data)
                await sink.drain()
        except OSError:
            pass
        finally:
            sink.close()


@pytest.fixture
async def fresh_postgres() -> AsyncIterator[str]:
    url = await create_postgres_database()
    yield url
    await drop_postgres_database(url)


# Without the timeouts a request waits for the whole partition: this only stops such a test from
# hanging (how fast the 503s come is measured by bench/hostile.py, not asserted here).
HANG = 30.0


async def answered(request: Awaitable[httpx.Response]) -> httpx.Response:
    return await asyncio.wait_for(request, HANG)


async def test_frozen_postgres_gives_fast_503s_and_recovery_without_restart(
    tmp_path: Path, fresh_postgres: str
) -> None:
    target = urlsplit(fresh_postgres)
    async with FreezableProxy(target.hostname or "127.0.0.1", target.port or 5432) as proxy:
        proxied = fresh_postgres.replace(target.netloc, f"{target.username}@127.0.0.1:{proxy.port}")
        settings = settings_for(
            "postgresql",
            tmp_path,
            proxied,
            database={
                "connect_timeout_seconds": TIMEOUT,
                "acquire_timeout_seconds": TIMEOUT,
                "statement_timeout_seconds": TIMEOUT,
            },
        )
        app = create_app(settings)
        await app.state.runtime.start()
        transport = httpx.ASGITransport(app=Observability(app, app.state.metrics))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://b.test") as client:
                assert (await client.get("/readyz")).status_code == 200
                assert (await client.get("/api/v1/agents", headers=ADMIN)).status_code == 200

                proxy.freeze()
                assert_error(await answered(client.get("/readyz")), 503, "database_unavailable")
                agents = await answered(client.get("/api/v1/agents", headers=ADMIN))
                assert_error(agents, 503, "database_unavailable")
                created = await answered(
                    client.post("/api/v1/generators", json={"name": "during"}, headers=ADMIN)
                )
                assert_error(created, 503, "database_unavailable")
                assert (await client.get("/healthz")).status_code == 200

                proxy.thaw()
                deadline = time.monotonic() + 10
                while (await client.get("/readyz")).status_code != 200:
                    assert time.monotonic() < deadline, "no recovery after the partition"
                    await asyncio.sleep(0.1)
                listed = await client.get("/api/v1/agents", headers=ADMIN)
                assert listed.status_code == 200, listed.text
                created = await client.post(
                    "/api/v1/generators", json={"name": "after"}, headers=ADMIN
                )
                assert created.status_code == 201, created.text
        finally:
            proxy.thaw()
            await app.state.runtime.stop()


async def test_a_statement_past_its_timeout_is_stopped_and_the_next_one_runs(
    broker: Broker, tmp_path: Path, postgres_url: str
) -> None:
    settings = settings_for(
        broker.backend,
        tmp_path,
        postgres_url,
        database={"statement_timeout_seconds": 0.5},
    )
    database = create_app(settings).state.ctx.database
    # Counts to a billion: minutes of work on either database.
    endless = sa.text(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000000) "
        "SELECT count(*) FROM n"
    )
    try:
        with pytest.raises(errors.DatabaseUnavailable):
            async with database.read() as conn:
                await asyncio.wait_for(conn.execute(endless), HANG)
        async with database.transaction() as tx:
            assert (await tx.execute(sa.text("SELECT 1"))).scalar_one() == 1
    finally:
        await database.dispose()
