"""Retention: rows past their age are deleted in short batches, each its own transaction, by one
broker at a time per table (an advisory lock on PostgreSQL; SQLite has a single writer anyway).
The ages are read from the settings in force at every run, so a reload applies to the next one;
an age of 0 keeps everything. Stack telemetry (Kubernetes events, pod log lines) is kept for
``broker.telemetry_retention_seconds``; its passes and deleted rows are counted (metrics)."""

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
    max_age: Callable[[BrokerSection], timedelta]
    # Stack telemetry: its deleted rows are counted per table.
    telemetry: bool = False


def _days(days: int) -> timedelta:
    return timedelta(days=days)


AUDIT_LOGS = Policy(db.retention.AUDIT_LOGS, lambda b: _days(b.audit_log_retention_days))
WEBHOOK_DELIVERIES = Policy(
    db.retention.WEBHOOK_DELIVERIES, lambda b: _days(b.webhook_cleanup_retention_days)
)
AGENT_EVENTS = Policy(db.retention.AGENT_EVENTS, lambda b: _days(b.agent_event_retention_days))
K8S_EVENTS = Policy(
    db.retention.K8S_EVENTS,
    lambda b: timedelta(seconds=b.telemetry_retention_seconds),
    telemetry=True,
)
POD_LOGS = Policy(
    db.retention.POD_LOGS,
    lambda b: timedelta(seconds=b.telemetry_retention_seconds),
    telemetry=True,
)
POLICIES = (AUDIT_LOGS, WEBHOOK_DELIVERIES, AGENT_EVENTS, K8S_EVENTS, POD_LOGS)


async def purge(ctx: Context, policy: Policy, *, batch: int = BATCH) -> int:
    """Delete ``policy``'s rows older than its retention, batch after batch until none is left,
    or until another broker turns out to be purging the same table (it finishes the job).
    Returns how many rows this call deleted."""
    max_age = policy.max_age(ctx.settings.current.broker)
    if not max_age:
        return 0
    cutoff = ctx.now() - max_age
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
        log.info("deleted %d %s older than %s", deleted, policy.rule.name, max_age)
    if policy.telemetry:
        ctx.telemetry.observer.telemetry_evicted(policy.rule.table.name, deleted)
    return deleted


async def purge_all(ctx: Context, *, batch: int = BATCH) -> dict[str, int]:
    """Every policy in turn; one that fails (logged) does not keep the others from running."""
    deleted: dict[str, int] = {}
    ctx.telemetry.observer.telemetry_eviction_run()
    for policy in POLICIES:
        try:
            deleted[policy.rule.name] = await purge(ctx, policy, batch=batch)
        except Exception:  # noqa: BLE001 - the next run retries; the other tables still shrink
            log.warning("retention of %s failed", policy.rule.name, exc_info=True)
    return deleted
