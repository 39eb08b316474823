"""Is this broker ready to serve (D22): database reachable and schema at the expected revision."""

from __future__ import annotations

from brokkr.broker import db
from brokkr.broker.domain import errors
from brokkr.broker.services.context import Context


async def check(ctx: Context, *, expected_revision: str) -> None:
    """Raises ``MigrationsPending`` unless the database answers and is at ``expected_revision``."""
    revision = await db.schema_version.current(ctx.database)
    if revision != expected_revision:
        raise errors.MigrationsPending(revision, expected_revision)
