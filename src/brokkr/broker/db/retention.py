"""What each retention deletes: one declaration per table (its age column, the rows that may go,
its lock), and the batched delete they all share. How old is too old is the services' business
(settings); here a cutoff arrives as a timestamp.

Stack telemetry (``agent_k8s_events``, ``agent_pod_logs``) goes by ``created_at`` like the rest
(both tables have an index on it). Diagnostic requests have their own cleanup
(``services.diagnostics.maintain``): ending a request emits events, which is not a plain delete.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from brokkr.broker.db import locking, tables
from brokkr.broker.db.engine import Tx

Condition = Callable[[sa.FromClause], sa.ColumnElement[bool]]


@dataclass(frozen=True, kw_only=True)
class Rule:
    name: str
    table: sa.Table
    age_column: str
    # One advisory lock per rule: two brokers never purge the same table at once.
    lock: int
    # Which rows older than the cutoff may go (None: all of them).
    deletable: Condition | None = None


def _finished_delivery(t: sa.FromClause) -> sa.ColumnElement[bool]:
    # Pending, acquired and failed deliveries are still owed to their receivers, however old.
    return t.c.status.in_(("success", "dead"))


def _superseded_event(t: sa.FromClause) -> sa.ColumnElement[bool]:
    """An event may go once a newer live event of the same agent, object and status exists, or
    when it is soft-deleted (nothing reads those). The newest SUCCESS per (agent, object) is what
    the incremental target state reads ("applied", and "acknowledged" for deletion markers: only
    the newest matters, as the check is "any SUCCESS newer than ...") and the newest event of
    either status makes a retried report acceptable ("already reported on"); both are kept, so
    retention never changes what an agent is served or may report."""
    newer = t.alias("newer")
    return sa.or_(
        t.c.deleted_at.is_not(None),
        sa.exists().where(
            newer.c.agent_id == t.c.agent_id,
            newer.c.deployment_object_id == t.c.deployment_object_id,
            newer.c.status == t.c.status,
            newer.c.deleted_at.is_(None),
            sa.or_(
                newer.c.created_at > t.c.created_at,
                sa.and_(newer.c.created_at == t.c.created_at, newer.c.id > t.c.id),
            ),
        ),
    )


# Arbitrary but fixed keys next to those of db.locking.
AUDIT_LOGS = Rule(
    name="audit records",
    table=tables.audit_logs,
    age_column="timestamp",
    lock=0x6272_6F6B_6B72_0101,
)
WEBHOOK_DELIVERIES = Rule(
    name="webhook deliveries",
    table=tables.webhook_deliveries,
    age_column="completed_at",
    lock=0x6272_6F6B_6B72_0102,
    deletable=_finished_delivery,
)
AGENT_EVENTS = Rule(
    name="agent events",
    table=tables.agent_events,
    age_column="created_at",
    lock=0x6272_6F6B_6B72_0103,
    deletable=_superseded_event,
)

K8S_EVENTS = Rule(
    name="kubernetes events",
    table=tables.agent_k8s_events,
    age_column="created_at",
    lock=0x6272_6F6B_6B72_0104,
)
POD_LOGS = Rule(
    name="pod log lines",
    table=tables.agent_pod_logs,
    age_column="created_at",
    lock=0x6272_6F6B_6B72_0105,
)


async def delete_batch(tx: Tx, rule: Rule, cutoff: datetime, *, limit: int) -> int | None:
    """Delete up to ``limit`` of ``rule``'s rows older than ``cutoff``, oldest first, and say how
    many; None when another broker holds the rule's lock (it is purging this table right now)."""
    if not await locking.try_hold_for_transaction(tx, rule.lock):
        return None
    # Aliased, so the subquery never correlates with the table being deleted from.
    aged = rule.table.alias("aged")
    age = aged.c[rule.age_column]
    conditions: list[sa.ColumnElement[Any]] = [age < cutoff]
    if rule.deletable is not None:
        conditions.append(rule.deletable(aged))
    doomed = sa.select(aged.c.id).where(*conditions).order_by(age).limit(limit)
    table = rule.table
    result = await tx.execute(table.delete().where(table.c.id.in_(doomed.scalar_subquery())))
    return int(result.rowcount)
