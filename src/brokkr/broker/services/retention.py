"""Retention: rows past their age are deleted in short batches, each its own transaction, by one
broker at a time per table (an advisory lock on PostgreSQL; SQLite has a single writer anyway).
The ages are read from the settings in force at every run, so a reload applies to the next one;
an age of 0 keeps everything."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from brokkr.broker import db
from brokkr.broker.services.context import Context
from brokkr.broker.settings import BrokerSection

log = logging.getLogger(__name__)

# Rows deleted per transaction: short transactions that never hold the table for long.
BATCH = 1000


@dataclass(frozen=True)
class Policy:
    rule: db.retention.Rule
    days: Callable[[BrokerSection], int]


AUDIT_LOGS = Policy(db.retention.AUDIT_LOGS, lambda broker: broker.audit_log_retention_days)
WEBHOOK_DELIVERIES = Policy(
    db.retention.WEBHOOK_DELIVERIES, lambda broker: broker.webhook_cleanup_retention_days
)
AGENT_EVENTS = Policy(db.retention.AGENT_EVENTS, lambda broker: broker.agent_event_retention_days)
POLICIES = (AUDIT_LOGS, WEBHOOK_DELIVERIES, AGENT_EVENTS)


async def purge(ctx: Context, policy: Policy, *, batch: int = BATCH) -> int:
    """Delete ``policy``'s rows older than its retention, batch after batch until none is left,
    or until another broker turns out to be purging the same table (it finishes the job).
    Returns how many rows this call deleted."""
    days = policy.days(ctx.settings.current.broker)
    if days == 0:
        return 0
    cutoff = ctx.now() - timedelta(days=days)
    deleted = 0
    while True:
        async with ctx.work(None) as w:
            count = await db.retention.delete_batch(w.tx, policy.rule, cutoff, limit=batch)
        if count is None:
            break
        deleted += count
        if count < batch:
            break
    if deleted:
        log.info("deleted %d %s older than %d days", deleted, policy.rule.name, days)
    return deleted


async def purge_all(ctx: Context, *, batch: int = BATCH) -> dict[str, int]:
    """Every policy in turn; one that fails (logged) does not keep the others from running."""
    deleted: dict[str, int] = {}
    for policy in POLICIES:
        try:
            deleted[policy.rule.name] = await purge(ctx, policy, batch=batch)
        except Exception:  # noqa: BLE001 - the next run retries; the other tables still shrink
            log.warning("retention of %s failed", policy.rule.name, exc_info=True)
    return deleted
