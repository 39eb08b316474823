"""The counts behind the fleet gauges of /metrics: a handful of aggregate reads, each on an
index, run by a background job every few seconds, never by a scrape."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from brokkr.broker.db import tables
from brokkr.broker.db.engine import Tx
from brokkr.broker.domain import gauges

_agents, _stacks = tables.agents, tables.stacks
_orders, _deliveries = tables.work_orders, tables.webhook_deliveries
_OWED = ("pending", "acquired", "failed")


async def snapshot(tx: Tx, now: datetime) -> gauges.Snapshot:
    heartbeats = (
        await tx.execute(
            sa.select(_agents.c.last_heartbeat).where(
                _agents.c.status == "ACTIVE", _agents.c.deleted_at.is_(None)
            )
        )
    ).scalars()
    active = 0
    ages: list[float] = []
    for heartbeat in heartbeats:
        active += 1
        if heartbeat is not None:
            # An agent's clock is not ours: a heartbeat "from the future" is 0 s old.
            ages.append(max((now - heartbeat).total_seconds(), 0.0))
    stacks = (
        await tx.execute(
            sa.select(sa.func.count()).select_from(_stacks).where(_stacks.c.deleted_at.is_(None))
        )
    ).scalar_one()
    orders = await tx.execute(
        sa.select(_orders.c.status, sa.func.count()).group_by(_orders.c.status)
    )
    owed = (
        await tx.execute(
            sa.select(sa.func.count())
            .select_from(_deliveries)
            .where(_deliveries.c.status.in_(_OWED))
        )
    ).scalar_one()
    return gauges.Snapshot(
        active_agents=active,
        heartbeat_age_seconds=gauges.quantiles(ages),
        stacks=int(stacks),
        work_orders=gauges.by_status({status: int(count) for status, count in orders}),
        outbox_depth=int(owed),
    )
