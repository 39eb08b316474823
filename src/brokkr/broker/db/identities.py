"""Resolve a PAK hash to the identity holding it: the hot path of every request (D6, D8).

One indexed round trip: the admin row, live agents, live active generators. Hashes are unique
among live rows, so at most one row matches.
"""

from __future__ import annotations

import sqlalchemy as sa

from brokkr.broker.db import prepared, tables
from brokkr.broker.db.engine import Database
from brokkr.broker.domain.access import Identity, Role

_hash = sa.bindparam("pak_hash", type_=sa.String)

_LOOKUP = sa.union_all(
    sa.select(
        sa.literal("admin").label("role"),
        sa.cast(sa.null(), sa.Uuid).label("id"),
        tables.admin_role.c.key_id,
    ).where(tables.admin_role.c.pak_hash == _hash),
    sa.select(sa.literal("agent"), tables.agents.c.id, tables.agents.c.key_id).where(
        tables.agents.c.pak_hash == _hash, tables.agents.c.deleted_at.is_(None)
    ),
    sa.select(sa.literal("generator"), tables.generators.c.id, tables.generators.c.key_id).where(
        tables.generators.c.pak_hash == _hash,
        tables.generators.c.deleted_at.is_(None),
        tables.generators.c.is_active.is_(True),
    ),
)


_FIND = prepared.Read(_LOOKUP)


async def find(database: Database, pak_hash: str) -> Identity | None:
    row = await _FIND.first(database, pak_hash=pak_hash)
    if row is None:
        return None
    return Identity(role=Role(row["role"]), id=row["id"], key_id=row["key_id"])
