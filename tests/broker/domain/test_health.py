"""Health rules without a database: report checks, the stored summary, staleness and the
failing > degraded > healthy > unknown aggregation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest

from brokkr.broker.domain import health as rules
from brokkr.common import wire

NOW = datetime(2025, 1, 2, 10, 0, tzinfo=UTC)


def entry(**changed: Any) -> wire.DeploymentObjectHealthUpdate:
    values: dict[str, Any] = {"id": uuid.uuid4(), "status": "healthy", "checked_at": NOW}
    return wire.DeploymentObjectHealthUpdate(**(values | changed))


def summary(**changed: Any) -> wire.HealthSummary:
    return wire.HealthSummary(**({"pods_ready": 1, "pods_total": 1} | changed))


def resource(**changed: Any) -> wire.ResourceHealth:
    values: dict[str, Any] = {"kind": "Pod", "name": "web-1", "namespace": "apps", "ready": True}
    return wire.ResourceHealth(**(values | changed))


def reasons(*entries: wire.DeploymentObjectHealthUpdate, max_entries: int = 10) -> list[str]:
    report = wire.HealthStatusUpdate(deployment_objects=list(entries))
    return [p.reason for p in rules.check_report(report, max_entries=max_entries, now=NOW)]


def test_a_valid_report_has_no_problems() -> None:
    full = summary(
        pods_ready=2,
        pods_total=3,
        conditions=["ImagePullBackOff"],
        resources=[resource(ready=False, message="Back-off pulling image")],
    )
    assert reasons(entry(), entry(status="unknown", summary=full)) == []
    # Every status is accepted, and a clock up to the skew bound ahead is tolerated.
    ahead = NOW + rules.MAX_CLOCK_SKEW
    assert reasons(*(entry(status=s, checked_at=ahead) for s in wire.HEALTH_STATUSES)) == []


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (entry(status="ok"), "status must be one of healthy, degraded, failing, unknown"),
        (entry(checked_at=NOW.replace(tzinfo=None)), "checked_at must carry a time zone"),
        (
            entry(checked_at=NOW + rules.MAX_CLOCK_SKEW + timedelta(seconds=1)),
            "checked_at is more than 5 minutes in the future",
        ),
        (
            entry(checked_at=datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))),
            "checked_at is before 2000",
        ),
        (entry(summary=summary(pods_ready=-1)), "summary.pods_ready must be between 0 and"),
        (entry(summary=summary(pods_total=2**31)), "summary.pods_total must be between 0 and"),
        (entry(summary=summary(pods_ready=2)), "summary.pods_ready exceeds summary.pods_total"),
        (
            entry(summary=summary(conditions=["x"] * (rules.MAX_CONDITIONS + 1))),
            "summary.conditions holds more than 64 items",
        ),
        (
            entry(summary=summary(conditions=["x" * (rules.MAX_CONDITION_CHARS + 1)])),
            "a summary condition is longer than 256 characters",
        ),
        (
            entry(summary=summary(resources=[resource()] * (rules.MAX_RESOURCES + 1))),
            "summary.resources holds more than 100 items",
        ),
        (
            entry(summary=summary(resources=[resource(name="n" * (rules.MAX_NAME_CHARS + 1))])),
            "summary.resources[0].name is longer than 253",
        ),
        (
            entry(summary=summary(resources=[resource(), resource(kind="K" * 254)])),
            "summary.resources[1].kind is longer than 253",
        ),
        (
            entry(summary=summary(resources=[resource(namespace="n" * 254)])),
            "summary.resources[0].namespace is longer than 253",
        ),
        (
            entry(summary=summary(resources=[resource(message="m" * 1025)])),
            "summary.resources[0].message is longer than 1024",
        ),
        (
            entry(summary=summary(resources=[resource(message="m" * 1000)] * 9)),
            "summary is larger than 8192 bytes as JSON",
        ),
    ],
)
def test_each_bad_entry_is_named(bad: wire.DeploymentObjectHealthUpdate, reason: str) -> None:
    found = reasons(entry(), bad)
    assert len(found) == 1 and found[0].startswith(reason), found


def test_every_problem_is_collected_with_index_and_id() -> None:
    first, second = entry(), entry(status="ok", summary=summary(pods_ready=-1))
    duplicate = entry(id=first.id)
    report = wire.HealthStatusUpdate(deployment_objects=[first, second, duplicate])
    problems = rules.check_report(report, max_entries=10, now=NOW)
    assert [(p.index, p.id) for p in problems] == [
        (1, second.id),
        (1, second.id),
        (2, first.id),
    ]
    assert problems[2].reason == "duplicate of entry 0"
    assert problems[2].as_details() == {
        "index": 2,
        "id": str(first.id),
        "reason": "duplicate of entry 0",
    }


def test_too_many_entries_is_one_problem_of_the_batch() -> None:
    report = wire.HealthStatusUpdate(deployment_objects=[entry(status="ok") for _ in range(3)])
    problems = rules.check_report(report, max_entries=2, now=NOW)
    assert [p.as_details() for p in problems] == [
        {
            "index": None,
            "id": None,
            "reason": "the report holds 3 entries; at most 2 are accepted",
        }
    ]


def test_a_report_of_the_most_entries_at_the_largest_size_fits_the_body_limit() -> None:
    biggest = wire.HealthStatusUpdate(
        deployment_objects=[
            entry(summary=summary(conditions=["c" * (rules.MAX_SUMMARY_BYTES - 60)]))
            for _ in range(rules.MAX_REPORT_ENTRIES)
        ]
    )
    assert all(
        len(rules.encode_summary(e.summary)) <= rules.MAX_SUMMARY_BYTES
        for e in biggest.deployment_objects
        if e.summary is not None
    )
    assert len(msgspec.json.encode(biggest)) <= rules.REPORT_BODY_BYTES


def test_the_stored_summary_always_holds_conditions_and_resources_only_when_sent() -> None:
    assert rules.encode_summary(summary()) == '{"pods_ready":1,"pods_total":1,"conditions":[]}'
    detailed = rules.encode_summary(summary(pods_ready=0, resources=[resource(ready=False)]))
    assert msgspec.json.decode(detailed) == {
        "pods_ready": 0,
        "pods_total": 1,
        "conditions": [],
        "resources": [
            {"kind": "Pod", "name": "web-1", "namespace": "apps", "ready": False, "message": None}
        ],
    }
    assert wire.decode_summary(detailed) == summary(pods_ready=0, resources=[resource(ready=False)])


def record(status: str, received: datetime) -> wire.DeploymentHealth:
    return wire.DeploymentHealth(
        id=uuid.uuid4(),
        agent_id=uuid.uuid4(),
        deployment_object_id=uuid.uuid4(),
        status=status,
        checked_at=NOW + timedelta(days=1),  # an agent clock far ahead keeps nothing fresh
        created_at=received,
        updated_at=received,
    )


def test_a_row_received_before_the_bound_reads_unknown_and_stale() -> None:
    fresh = rules.fresh_since(NOW, 180)
    assert fresh == NOW - timedelta(seconds=180)
    kept = record("failing", NOW - timedelta(seconds=180))
    assert rules.as_read(kept, fresh) is kept
    stale = rules.as_read(record("failing", NOW - timedelta(seconds=181)), fresh)
    assert (stale.status, stale.stale, stale.reported_status) == ("unknown", True, "failing")


def test_zero_seconds_turns_staleness_off() -> None:
    assert rules.fresh_since(NOW, 0) is None
    old = record("healthy", NOW - timedelta(days=365))
    assert rules.as_read(old, None) is old


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], "unknown"),
        (["unknown"], "unknown"),
        (["unknown", "healthy"], "healthy"),
        (["healthy", "degraded", "healthy"], "degraded"),
        (["degraded", "failing", "healthy", "unknown"], "failing"),
    ],
)
def test_the_worst_status_wins(statuses: list[str], expected: str) -> None:
    assert rules.overall(statuses) == expected


def test_an_object_summary_counts_only_fresh_known_rows() -> None:
    object_id = uuid.uuid4()
    assert rules.object_summary(object_id, healthy=2, degraded=1, failing=0).status == "degraded"
    nothing = rules.object_summary(object_id, healthy=0, degraded=0, failing=0)
    assert (nothing.status, nothing.healthy_agents) == ("unknown", 0)
