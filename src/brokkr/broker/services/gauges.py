"""The fleet gauges of /metrics (domain.gauges), counted in one read."""

from __future__ import annotations

from brokkr.broker import db
from brokkr.broker.domain import gauges
from brokkr.broker.services.context import Context


async def snapshot(ctx: Context) -> gauges.Snapshot:
    async with ctx.database.read() as tx:
        return await db.gauges.snapshot(tx, ctx.now())
