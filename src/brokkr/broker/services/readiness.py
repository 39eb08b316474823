"""Is this broker ready to serve (D22): database reachable and schema at the expected revision."""

from __future__ import annotations

import asyncio

from brokkr.broker import db
from brokkr.broker.domain import errors
from brokkr.broker.services.context import Context

# Orchestrators probe with short timeouts (often 1-2 s): answer 503 before they give up, however
# slowly (or not at all) the database answers.
READY_WITHIN_SECONDS = 1.5


async def check(ctx: Context, *, expected_revision: str) -> None:
    """Raises ``MigrationsPending`` unless the database answers and is at ``expected_revision``,
    ``DatabaseUnavailable`` when it does not answer within ``READY_WITHIN_SECONDS``."""
    try:
        async with asyncio.timeout(READY_WITHIN_SECONDS):
            revision = await db.schema_version.current(ctx.database)
    except TimeoutError as exc:
        raise errors.DatabaseUnavailable() from exc
    if revision != expected_revision:
        raise errors.MigrationsPending(revision, expected_revision)
