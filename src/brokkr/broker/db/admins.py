"""The single admin credential and the ``admin-generator`` that owns admin-created stacks."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa

from brokkr.broker.db import generators, tables
from brokkr.broker.db.engine import Tx

ADMIN_GENERATOR_NAME = "admin-generator"


async def current_hash(tx: Tx) -> str | None:
    return (
        await tx.execute(sa.select(tables.admin_role.c.pak_hash).where(tables.admin_role.c.id == 1))
    ).scalar()


async def insert(tx: Tx, *, pak_hash: str, key_id: str | None, now: datetime) -> None:
    await tx.execute(
        tables.admin_role.insert().values(
            id=1, pak_hash=pak_hash, key_id=key_id, created_at=now, updated_at=now
        )
    )


async def replace_hash(tx: Tx, *, pak_hash: str, key_id: str | None, now: datetime) -> bool:
    result = await tx.execute(
        tables.admin_role.update()
        .where(tables.admin_role.c.id == 1)
        .values(pak_hash=pak_hash, key_id=key_id, updated_at=now)
    )
    return result.rowcount == 1


async def ensure_admin_generator(tx: Tx, *, now: datetime) -> None:
    """Create the generator that owns stacks an admin creates. It has no PAK of its own, so it
    can never authenticate (unlike the reference, where it shared the admin's hash)."""
    if await admin_generator_id(tx) is None:
        await generators.insert(
            tx,
            name=ADMIN_GENERATOR_NAME,
            description="Owns stacks created with the admin PAK",
            pak_hash=None,
            is_active=True,
            now=now,
        )


async def admin_generator_id(tx: Tx) -> uuid.UUID | None:
    """The live ``admin-generator`` that owns stacks an admin creates without naming an owner."""
    return (
        await tx.execute(
            sa.select(tables.generators.c.id).where(
                tables.generators.c.name == ADMIN_GENERATOR_NAME,
                tables.generators.c.deleted_at.is_(None),
            )
        )
    ).scalar()
