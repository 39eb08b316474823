"""Cross-process news that a PAK hash was revoked (D7).

PostgreSQL: ``NOTIFY`` inside the revoking transaction (delivered on commit) and a dedicated
``LISTEN`` connection per broker. SQLite: a row in ``auth_revocations`` that every broker polls.
Either way a revoked key stops working on every broker within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import sqlalchemy as sa

from brokkr.broker.db import tables
from brokkr.broker.db.engine import Database, Tx

CHANNEL = "brokkr_pak_revoked"
_POLL_SECONDS = 0.25
_KEEP_ROWS = timedelta(minutes=10)

log = logging.getLogger(__name__)

OnRevoked = Callable[[str | None], None]
"""Called with a revoked hash, or with None when news may have been missed (drop everything)."""


async def publish_revoked(tx: Tx, pak_hash: str) -> None:
    if tx.dialect.name == "postgresql":
        await tx.execute(
            sa.text("SELECT pg_notify(:channel, :hash)"), {"channel": CHANNEL, "hash": pak_hash}
        )
    else:
        await tx.execute(
            tables.auth_revocations.insert().values(pak_hash=pak_hash, created_at=datetime.now(UTC))
        )


class RevocationListener:
    """Background task feeding revocations from other processes to ``on_revoked``."""

    def __init__(self, database: Database, on_revoked: OnRevoked) -> None:
        self._database = database
        self._on_revoked = on_revoked
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        run = self._listen_postgres if self._database.is_postgres else self._poll_sqlite
        self._task = asyncio.create_task(run(), name="pak-revocation-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen_postgres(self) -> None:
        url = self._database.engine.url.set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        delay = 0.5
        while True:
            try:
                connection = await asyncpg.connect(dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("revocation listener cannot connect, retrying: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            delay = 0.5
            lost = asyncio.Event()

            def on_lost(_conn: Any, event: asyncio.Event = lost) -> None:
                event.set()

            def _notified(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
                self._on_revoked(payload)

            try:
                connection.add_termination_listener(on_lost)
                await connection.add_listener(CHANNEL, _notified)
                # Anything revoked while we were not listening is unknown: start clean.
                self._on_revoked(None)
                await lost.wait()
                log.warning("revocation listener lost its connection; reconnecting")
            finally:
                with contextlib.suppress(Exception):
                    await connection.close()

    async def _poll_sqlite(self) -> None:
        async with self._database.read() as conn:
            last = (
                await conn.execute(sa.select(sa.func.max(tables.auth_revocations.c.id)))
            ).scalar()
        last = last or 0
        polls = 0
        while True:
            await asyncio.sleep(_POLL_SECONDS)
            try:
                last = await self._poll_once(last, prune=polls % 240 == 0)
            except sa.exc.SQLAlchemyError as exc:
                log.warning("revocation poll failed: %s", exc)
                self._on_revoked(None)
            polls += 1

    async def _poll_once(self, last: int, *, prune: bool) -> int:
        table = tables.auth_revocations
        async with self._database.read() as conn:
            rows = (
                await conn.execute(
                    sa.select(table.c.id, table.c.pak_hash)
                    .where(table.c.id > last)
                    .order_by(table.c.id)
                )
            ).all()
        for row in rows:
            self._on_revoked(row.pak_hash)
            last = row.id
        if prune:
            async with self._database.transaction() as tx:
                await tx.execute(
                    table.delete().where(table.c.created_at < datetime.now(UTC) - _KEEP_ROWS)
                )
        return last
