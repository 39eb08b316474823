"""Capped exponential backoff with full jitter, and the per-key retry tracker (pure).

Covers the ceiling doubling from the minimum and capping at the maximum (also for huge attempt
counts), jitter spanning [0, ceiling] through an injected random source, and the tracker's
next-attempt times, growth per failure, reset on success, forgetting stale keys, and whether
any failing key's retry is due.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from brokkr.agent import backoff

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(0, 1.0), (1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (10_000, 60.0)],
)
def test_ceiling_doubles_and_caps(attempt: int, expected: float) -> None:
    assert backoff.ceiling(attempt, minimum=1.0, maximum=60.0) == expected


@pytest.mark.parametrize(("rand", "expected"), [(0.0, 0.0), (0.5, 2.0), (0.999, 3.996)])
def test_delay_is_full_jitter_below_the_ceiling(rand: float, expected: float) -> None:
    wait = backoff.delay(3, minimum=1.0, maximum=60.0, rand=lambda: rand)
    assert wait == pytest.approx(expected)


def test_tracker_backs_off_per_key_and_resets_on_success() -> None:
    tracker: backoff.RetryTracker[str] = backoff.RetryTracker(
        minimum=10.0, maximum=25.0, rand=lambda: 1.0
    )
    assert tracker.is_due("a", now=NOW) and tracker.next_attempt("a") is None
    waits = [tracker.failed("a", now=NOW) - NOW for _ in range(3)]
    assert waits == [timedelta(seconds=10), timedelta(seconds=20), timedelta(seconds=25)]
    assert tracker.failures("a") == 3
    assert not tracker.is_due("a", now=NOW + timedelta(seconds=24))
    assert tracker.is_due("a", now=NOW + timedelta(seconds=25))
    assert tracker.is_due("b", now=NOW)
    tracker.succeeded("a")
    assert tracker.failures("a") == 0 and tracker.is_due("a", now=NOW)


def test_tracker_forgets_keys_no_longer_relevant() -> None:
    tracker: backoff.RetryTracker[str] = backoff.RetryTracker(minimum=1.0, maximum=2.0)
    for key in ("old", "current"):
        tracker.failed(key, now=NOW)
    tracker.retain(["current"])
    assert (tracker.failures("old"), tracker.failures("current")) == (0, 1)


def test_any_due_counts_only_failing_keys() -> None:
    tracker: backoff.RetryTracker[str] = backoff.RetryTracker(
        minimum=10.0, maximum=10.0, rand=lambda: 1.0
    )
    assert not tracker.any_due(now=NOW)
    tracker.failed("a", now=NOW)
    assert not tracker.any_due(now=NOW + timedelta(seconds=9))
    assert tracker.any_due(now=NOW + timedelta(seconds=10))
    tracker.succeeded("a")
    assert not tracker.any_due(now=NOW + timedelta(seconds=10))
