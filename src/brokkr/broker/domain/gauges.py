"""The fleet-wide numbers /metrics exports as gauges, counted from the database by a background
job (never by a scrape) and summarised here. Pure, no I/O.

Heartbeat ages are summarised by quantiles over the active agents that have sent one, never one
series per agent: the label values stay the same four whatever the size of the fleet."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import msgspec

from brokkr.broker.domain import work_orders

WORK_ORDER_STATUSES = (work_orders.PENDING, work_orders.CLAIMED, work_orders.RETRY_PENDING)
# "1" is the oldest heartbeat: the agent closest to being lost.
HEARTBEAT_QUANTILES = ("0.5", "0.9", "0.99", "1")


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    active_agents: int
    # Quantile label -> seconds; empty when no active agent has sent a heartbeat yet.
    heartbeat_age_seconds: Mapping[str, float]
    stacks: int
    # Every status of WORK_ORDER_STATUSES, 0 when none is in it.
    work_orders: Mapping[str, int]
    # Webhook deliveries still owed: pending, claimed or failed (waiting for a retry).
    outbox_depth: int


def quantiles(ages: Iterable[float]) -> dict[str, float]:
    """Nearest-rank quantiles of ``ages`` (seconds), keyed by their label value."""
    ordered = sorted(ages)
    if not ordered:
        return {}
    return {
        label: ordered[max(math.ceil(float(label) * len(ordered)), 1) - 1]
        for label in HEARTBEAT_QUANTILES
    }


def by_status(counts: Mapping[str, int]) -> dict[str, int]:
    return {status: counts.get(status, 0) for status in WORK_ORDER_STATUSES}
