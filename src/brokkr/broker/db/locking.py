"""Cross-process locks. PostgreSQL uses advisory locks; SQLite's single writer (BEGIN IMMEDIATE)
already serialises every write transaction, so there the lock is the transaction itself."""

from __future__ import annotations

import sqlalchemy as sa

from brokkr.broker.db.engine import Tx

# Arbitrary but fixed 64-bit keys, one per guarded job.
BOOTSTRAP_LOCK = 0x6272_6F6B_6B72_0001
MIGRATION_LOCK = 0x6272_6F6B_6B72_0002


async def hold_for_transaction(tx: Tx, key: int) -> None:
    """Block until this transaction holds ``key``; released at commit or rollback."""
    if tx.dialect.name == "postgresql":
        await tx.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


async def try_hold_for_transaction(tx: Tx, key: int) -> bool:
    """Take ``key`` for this transaction if nobody holds it; False (without waiting) otherwise.
    SQLite: always True, the write transaction already excludes every other writer."""
    if tx.dialect.name != "postgresql":
        return True
    taken = await tx.execute(sa.text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key})
    return bool(taken.scalar_one())


async def acquire_session(conn: Tx, key: int) -> None:
    """Block until this connection holds ``key`` until ``release_session``."""
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": key})


async def release_session(conn: Tx, key: int) -> None:
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
