"""Cross-process news: a PAK hash was revoked (D7), some agent's target state changed, webhook
deliveries were queued (D18), or agents on the channel have a hint due (``domain.hints``).

PostgreSQL: ``NOTIFY`` inside the changing transaction (delivered on commit) and one dedicated
``LISTEN`` connection per broker. SQLite: rows in ``auth_revocations`` / ``state_changes`` that
every broker polls. Either way other brokers hear of a change within a second; the broker that
made it updates itself right after its commit. Queued webhook deliveries are only announced on
PostgreSQL (several brokers share the work); on SQLite the one broker wakes its own worker.
Hints travel as their encoded notice (the listener hands over the payload text undecoded).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import sqlalchemy as sa

from brokkr.broker.db import tables
from brokkr.broker.db.engine import Database, Tx

REVOKED = "brokkr_pak_revoked"
STATE_CHANGED = "brokkr_state_changed"
WEBHOOKS_DUE = "brokkr_webhooks_due"
AGENT_HINT = "brokkr_agent_hint"
_ANY_AGENT = "*"
_POLL_SECONDS = 0.25
_KEEP_ROWS = timedelta(minutes=10)

log = logging.getLogger(__name__)

OnRevoked = Callable[[str | None], None]
"""Called with a revoked hash, or with None when news may have been missed (drop everything)."""
OnStateChanged = Callable[[UUID | None], None]
"""Called with the affected agent, or None for "any agent" (also when news may have been missed)."""
OnWebhooksDue = Callable[[], None]
"""Called when deliveries were queued (also when news may have been missed)."""
OnHint = Callable[[str], None]
"""Called with an encoded hint notice (``domain.hints.decode_notice``), this broker's own too."""


async def publish_revoked(tx: Tx, pak_hash: str) -> None:
    if tx.dialect.name == "postgresql":
        await _notify(tx, REVOKED, pak_hash)
    else:
        await tx.execute(
            tables.auth_revocations.insert().values(pak_hash=pak_hash, created_at=datetime.now(UTC))
        )


async def publish_state_change(tx: Tx, agent_id: UUID | None = None) -> None:
    """Some agent's target state (or, with None, possibly every agent's) changed in ``tx``."""
    if tx.dialect.name == "postgresql":
        await _notify(tx, STATE_CHANGED, str(agent_id) if agent_id else _ANY_AGENT)
    else:
        await tx.execute(
            tables.state_changes.insert().values(agent_id=agent_id, created_at=datetime.now(UTC))
        )


async def publish_webhooks_due(tx: Tx) -> None:
    """Deliveries were queued in ``tx``: the other brokers' workers wake on commit."""
    if tx.dialect.name == "postgresql":
        await _notify(tx, WEBHOOKS_DUE, "")


async def publish_hint(tx: Tx, notice: str) -> None:
    """An encoded hint notice for every broker's channel, delivered on commit."""
    if tx.dialect.name == "postgresql":
        await _notify(tx, AGENT_HINT, notice)
    else:
        await tx.execute(
            tables.agent_hints.insert().values(payload=notice, created_at=datetime.now(UTC))
        )


async def _notify(tx: Tx, channel: str, payload: str) -> None:
    await tx.execute(
        sa.text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload}
    )


def _agent_of(payload: str) -> UUID | None:
    try:
        return None if payload == _ANY_AGENT else uuid.UUID(payload)
    except ValueError:
        return None


class ChangeListener:
    """Background task feeding other processes' news to the callbacks."""

    def __init__(
        self,
        database: Database,
        *,
        on_revoked: OnRevoked,
        on_state_changed: OnStateChanged,
        on_webhooks_due: OnWebhooksDue | None = None,
        on_hint: OnHint | None = None,
    ) -> None:
        self._database = database
        self._on_revoked = on_revoked
        self._on_state_changed = on_state_changed
        self._on_webhooks_due = on_webhooks_due or (lambda: None)
        self._on_hint = on_hint or (lambda notice: None)
        self._task: asyncio.Task[None] | None = None
        # SQLite polling stops between polls: cancelling it inside a query leaks its connection.
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        run = self._listen_postgres if self._database.is_postgres else self._poll_sqlite
        self._task = asyncio.create_task(run(), name="broker-change-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping.set()
            if self._database.is_postgres:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _missed_news(self) -> None:
        self._on_revoked(None)
        self._on_state_changed(None)
        self._on_webhooks_due()

    async def _listen_postgres(self) -> None:
        dsn = self._database.dsn()
        delay = 0.5
        while True:
            try:
                connection = await asyncpg.connect(dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("change listener cannot connect, retrying: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            delay = 0.5
            lost = asyncio.Event()

            def on_lost(_conn: Any, event: asyncio.Event = lost) -> None:
                event.set()

            def revoked(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
                self._on_revoked(payload)

            def state_changed(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
                self._on_state_changed(_agent_of(payload))

            def webhooks_due(_conn: Any, _pid: int, _channel: str, _payload: str) -> None:
                self._on_webhooks_due()

            def hint(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
                self._on_hint(payload)

            try:
                connection.add_termination_listener(on_lost)
                await connection.add_listener(REVOKED, revoked)
                await connection.add_listener(STATE_CHANGED, state_changed)
                await connection.add_listener(WEBHOOKS_DUE, webhooks_due)
                await connection.add_listener(AGENT_HINT, hint)
                # Anything that happened while we were not listening is unknown: start clean.
                self._missed_news()
                await lost.wait()
                log.warning("change listener lost its connection; reconnecting")
            finally:
                with contextlib.suppress(Exception):
                    await connection.close()

    async def _poll_sqlite(self) -> None:
        revocations, changes = tables.auth_revocations, tables.state_changes
        async with self._database.read() as conn:
            last_revocation = (
                await conn.execute(sa.select(sa.func.max(revocations.c.id)))
            ).scalar() or 0
            last_change = (await conn.execute(sa.select(sa.func.max(changes.c.id)))).scalar() or 0
            last_hint = (
                await conn.execute(sa.select(sa.func.max(tables.agent_hints.c.id)))
            ).scalar() or 0
        polls = 0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), _POLL_SECONDS)
            if self._stopping.is_set():
                return
            try:
                last_revocation, last_change = await self._poll_once(last_revocation, last_change)
                last_hint = await self._poll_hints(last_hint)
                if polls % 240 == 0:
                    await self._prune()
            except sa.exc.SQLAlchemyError as exc:
                log.warning("change poll failed: %s", exc)
                self._missed_news()
            polls += 1

    async def _poll_once(self, last_revocation: int, last_change: int) -> tuple[int, int]:
        revocations, changes = tables.auth_revocations, tables.state_changes
        async with self._database.read() as conn:
            revoked = (
                await conn.execute(
                    sa.select(revocations.c.id, revocations.c.pak_hash)
                    .where(revocations.c.id > last_revocation)
                    .order_by(revocations.c.id)
                )
            ).all()
            changed = (
                await conn.execute(
                    sa.select(changes.c.id, changes.c.agent_id)
                    .where(changes.c.id > last_change)
                    .order_by(changes.c.id)
                )
            ).all()
        for row in revoked:
            self._on_revoked(row.pak_hash)
            last_revocation = row.id
        for row in changed:
            self._on_state_changed(row.agent_id)
            last_change = row.id
        return last_revocation, last_change

    async def _poll_hints(self, last_hint: int) -> int:
        hints = tables.agent_hints
        async with self._database.read() as conn:
            rows = (
                await conn.execute(
                    sa.select(hints.c.id, hints.c.payload)
                    .where(hints.c.id > last_hint)
                    .order_by(hints.c.id)
                )
            ).all()
        for row in rows:
            self._on_hint(row.payload)
            last_hint = row.id
        return last_hint

    async def _prune(self) -> None:
        cutoff = datetime.now(UTC) - _KEEP_ROWS
        async with self._database.transaction() as tx:
            await tx.execute(
                tables.auth_revocations.delete().where(
                    tables.auth_revocations.c.created_at < cutoff
                )
            )
            await tx.execute(
                tables.state_changes.delete().where(tables.state_changes.c.created_at < cutoff)
            )
            await tx.execute(
                tables.agent_hints.delete().where(tables.agent_hints.c.created_at < cutoff)
            )
