"""Webhook delivery rules (D18): backoff with jitter, what an attempt's outcome makes of a
delivery, the headers sent and stored errors kept short."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from brokkr.broker.domain import webhook_delivery as rules
from brokkr.common import signing

NOW = datetime(2025, 1, 2, 10, 0, tzinfo=UTC)
BACKOFF = rules.Backoff(base=1.0, maximum=3600.0)


def test_each_retry_waits_between_half_and_all_of_a_doubling_delay() -> None:
    rng = random.Random(7)
    for retry in range(1, 12):
        full = min(3600.0, 2.0 ** (retry - 1))
        for _ in range(50):
            assert full / 2 <= BACKOFF.delay(retry, rng) <= full


def test_delays_are_capped() -> None:
    assert BACKOFF.delay(500) <= 3600.0


def test_success_completes() -> None:
    verdict = rules.judge(
        rules.Outcome(success=True, status_code=200),
        attempts=2,
        max_retries=5,
        backoff=BACKOFF,
        now=NOW,
    )
    assert verdict == rules.Verdict(
        status="success", attempts=3, next_retry_at=None, completed_at=NOW, last_error=None
    )


@pytest.mark.parametrize(
    ("status_code", "status"),
    [
        (500, "failed"),
        (503, "failed"),
        (408, "failed"),
        (429, "failed"),
        (None, "failed"),
        (400, "dead"),
        (401, "dead"),
        (404, "dead"),
        (410, "dead"),
        (422, "dead"),
    ],
)
def test_client_errors_other_than_408_and_429_are_dead_at_once(
    status_code: int | None, status: str
) -> None:
    outcome = rules.Outcome(success=False, status_code=status_code, error="no")
    verdict = rules.judge(outcome, attempts=0, max_retries=5, backoff=BACKOFF, now=NOW)
    assert verdict.status == status and verdict.attempts == 1
    if status == "failed":
        assert verdict.next_retry_at is not None
        assert NOW + timedelta(seconds=0.5) <= verdict.next_retry_at <= NOW + timedelta(seconds=1)
    else:
        assert verdict.next_retry_at is None and verdict.completed_at == NOW


@pytest.mark.parametrize(("attempts", "status"), [(0, "failed"), (2, "failed"), (3, "dead")])
def test_max_retries_counts_retries_after_the_first_attempt(attempts: int, status: str) -> None:
    outcome = rules.Outcome(success=False, status_code=500, error="boom")
    verdict = rules.judge(outcome, attempts=attempts, max_retries=3, backoff=BACKOFF, now=NOW)
    assert verdict.status == status


def test_a_final_failure_is_dead_whatever_the_budget() -> None:
    outcome = rules.Outcome(success=False, error="unreadable", final=True)
    verdict = rules.judge(outcome, attempts=0, max_retries=20, backoff=BACKOFF, now=NOW)
    assert verdict.status == "dead" and verdict.last_error == "unreadable"


def test_errors_are_stored_short() -> None:
    outcome = rules.Outcome(success=False, error="x" * 10_000)
    verdict = rules.judge(outcome, attempts=0, max_retries=1, backoff=BACKOFF, now=NOW)
    assert verdict.last_error is not None and len(verdict.last_error) == rules.MAX_ERROR_CHARS


def test_headers() -> None:
    delivery_id = uuid.uuid4()
    sent = rules.headers(
        event_type="stack.created",
        delivery_id=delivery_id,
        signature="sha256=ab",
        auth_header="Bearer t",
    )
    assert sent["X-Brokkr-Event"] == "stack.created"
    assert sent["X-Brokkr-Delivery-Id"] == str(delivery_id)
    assert sent[signing.HEADER] == "sha256=ab" and sent["Authorization"] == "Bearer t"
    bare = rules.headers(
        event_type="stack.created", delivery_id=delivery_id, signature=None, auth_header=None
    )
    assert signing.HEADER not in bare and "Authorization" not in bare


def test_claims_last_the_timeout_plus_a_margin() -> None:
    assert rules.claimed_until(NOW, 5) == NOW + timedelta(seconds=5 + rules.CLAIM_MARGIN_SECONDS)
    assert rules.claimed_until(NOW, 600) == NOW + timedelta(seconds=rules.CLAIM_SECONDS)
