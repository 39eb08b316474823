"""Deployment health rules: what a valid report is, how a stored row reads once it is stale, and
how rows combine into one status (failing > degraded > healthy > unknown). Pure functions.

A report is checked whole before anything is written: every problem is named by the entry's
index and id, so an agent can drop those entries and send the rest again (flaw 17: the
reference silently drops bad statuses and fails a whole batch on one duplicate).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec

from brokkr.common import wire

# Bounds on one entry. A summary is the agent's digest of a few workloads and their pods, not
# a pod listing: the agent names the resources that explain the status and stops there.
MAX_NAME_CHARS = 253  # a Kubernetes object name (DNS subdomain); kind and namespace are shorter
MAX_MESSAGE_CHARS = 1024
MAX_CONDITIONS = 64
MAX_CONDITION_CHARS = 256
MAX_RESOURCES = 100
# The summary as stored (compact JSON), whatever its parts: a report of the most entries at this
# size, sent compactly, fits the report's body limit (``REPORT_BODY_BYTES``, about 8.5 MiB).
MAX_SUMMARY_BYTES = 8 * 1024
MAX_POD_COUNT = 2**31 - 1  # the reference's i32
# An agent's clock may run this far ahead of the broker's before its checked_at is refused.
MAX_CLOCK_SKEW = timedelta(minutes=5)
# Nothing was checked before this; it also keeps year-1 times with an offset (which have no UTC
# equivalent) away from the database.
EARLIEST_CHECK = datetime(2000, 1, 1, tzinfo=UTC)
# What one entry takes in a request beyond its summary: id, status, checked_at and JSON keys
# (about 150 bytes), with room for whitespace.
_ENTRY_OVERHEAD_BYTES = 512
# The most entries ``limits.health_report_max_entries`` may allow: one upsert binds 8 values
# per entry, well below both databases' limits on bound parameters.
MAX_REPORT_ENTRIES = 1000
REPORT_BODY_BYTES = MAX_REPORT_ENTRIES * (MAX_SUMMARY_BYTES + _ENTRY_OVERHEAD_BYTES)

UNKNOWN = "unknown"
# Worst first: the first status present among a set of rows is theirs.
_PRECEDENCE = ("failing", "degraded", "healthy")


@dataclass(frozen=True)
class Problem:
    """What is wrong with entry ``index`` (None: with the batch as a whole)."""

    index: int | None
    id: UUID | None
    reason: str

    def as_details(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "id": None if self.id is None else str(self.id),
            "reason": self.reason,
        }


def check_report(
    report: wire.HealthStatusUpdate, *, max_entries: int, now: datetime
) -> list[Problem]:
    """Every problem of the report; none means every entry may be written (if the objects are
    the agent's, which only the database can tell)."""
    entries = report.deployment_objects
    if len(entries) > max_entries:
        reason = f"the report holds {len(entries)} entries; at most {max_entries} are accepted"
        return [Problem(None, None, reason)]
    problems: list[Problem] = []
    first_index: dict[UUID, int] = {}
    for index, entry in enumerate(entries):
        seen = first_index.setdefault(entry.id, index)
        if seen != index:
            problems.append(Problem(index, entry.id, f"duplicate of entry {seen}"))
        problems.extend(Problem(index, entry.id, reason) for reason in _entry_problems(entry, now))
    return problems


def _entry_problems(entry: wire.DeploymentObjectHealthUpdate, now: datetime) -> Iterable[str]:
    if entry.status not in wire.HEALTH_STATUSES:
        yield f"status must be one of {', '.join(wire.HEALTH_STATUSES)}"
    if entry.checked_at.tzinfo is None:
        yield "checked_at must carry a time zone"
    elif entry.checked_at - now > MAX_CLOCK_SKEW:
        yield f"checked_at is more than {MAX_CLOCK_SKEW.seconds // 60} minutes in the future"
    elif entry.checked_at < EARLIEST_CHECK:
        yield f"checked_at is before {EARLIEST_CHECK.year}"
    if entry.summary is not None:
        yield from _summary_problems(entry.summary)


def _summary_problems(summary: wire.HealthSummary) -> Iterable[str]:
    for field in ("pods_ready", "pods_total"):
        count = getattr(summary, field)
        if not 0 <= count <= MAX_POD_COUNT:
            yield f"summary.{field} must be between 0 and {MAX_POD_COUNT}"
    if summary.pods_ready > summary.pods_total:
        yield "summary.pods_ready exceeds summary.pods_total"
    if len(summary.conditions) > MAX_CONDITIONS:
        yield f"summary.conditions holds more than {MAX_CONDITIONS} items"
    if any(len(condition) > MAX_CONDITION_CHARS for condition in summary.conditions):
        yield f"a summary condition is longer than {MAX_CONDITION_CHARS} characters"
    yield from _resource_problems(summary.resources or [])
    if len(encode_summary(summary)) > MAX_SUMMARY_BYTES:
        yield f"summary is larger than {MAX_SUMMARY_BYTES} bytes as JSON"


def _resource_problems(resources: list[wire.ResourceHealth]) -> Iterable[str]:
    if len(resources) > MAX_RESOURCES:
        yield f"summary.resources holds more than {MAX_RESOURCES} items"
    for position, resource in enumerate(resources):
        for field in ("kind", "name", "namespace"):
            if len(getattr(resource, field)) > MAX_NAME_CHARS:
                yield f"summary.resources[{position}].{field} is longer than {MAX_NAME_CHARS}"
        if resource.message is not None and len(resource.message) > MAX_MESSAGE_CHARS:
            yield f"summary.resources[{position}].message is longer than {MAX_MESSAGE_CHARS}"


def encode_summary(summary: wire.HealthSummary) -> str:
    """The summary as stored and served: compact JSON that always holds ``conditions`` (the
    reference's readers require it) and holds ``resources`` only when there are any."""
    document: dict[str, Any] = {
        "pods_ready": summary.pods_ready,
        "pods_total": summary.pods_total,
        "conditions": summary.conditions,
    }
    if summary.resources is not None:
        document["resources"] = summary.resources
    return msgspec.json.encode(document).decode()


def fresh_since(now: datetime, stale_after_seconds: float) -> datetime | None:
    """Rows received before this instant are stale; None: staleness is off (0 seconds)."""
    if stale_after_seconds <= 0:
        return None
    return now - timedelta(seconds=stale_after_seconds)


def as_read(record: wire.DeploymentHealth, fresh: datetime | None) -> wire.DeploymentHealth:
    """A stale row reads ``unknown``, keeping what the agent said in ``reported_status``.
    Staleness counts from ``updated_at``, the broker's time of receipt, so an agent whose clock
    runs ahead cannot keep its rows fresh with future ``checked_at`` values."""
    if fresh is None or record.updated_at >= fresh:
        return record
    return msgspec.structs.replace(
        record, status=UNKNOWN, stale=True, reported_status=record.status
    )


def overall(statuses: Iterable[str]) -> str:
    present = set(statuses)
    return next((status for status in _PRECEDENCE if status in present), UNKNOWN)


def object_summary(
    object_id: UUID, *, healthy: int, degraded: int, failing: int
) -> wire.DeploymentObjectHealthSummary:
    """One object of a stack from its fresh rows' counts (unknown and stale rows count for
    nothing, so an object with only those reads ``unknown``)."""
    counts = {"failing": failing, "degraded": degraded, "healthy": healthy}
    return wire.DeploymentObjectHealthSummary(
        id=object_id,
        status=overall(status for status, count in counts.items() if count),
        healthy_agents=healthy,
        degraded_agents=degraded,
        failing_agents=failing,
    )
