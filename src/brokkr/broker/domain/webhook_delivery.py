"""Webhook delivery rules (D18): the states of a delivery, the headers a POST carries, and what
an attempt's outcome makes of the delivery (delivered, retried after a backoff, or dead). Pure.

Delivery is at least once: a claim that outlives a crashed broker or agent expires and the
delivery is sent again, so receivers deduplicate by the envelope ``id`` (the same for every
delivery of one event) or the ``X-Brokkr-Delivery-Id`` header (the same for every attempt).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import brokkr
from brokkr.common import signing

PENDING = "pending"
ACQUIRED = "acquired"
SUCCESS = "success"
FAILED = "failed"
DEAD = "dead"
STATUSES = (PENDING, ACQUIRED, SUCCESS, FAILED, DEAD)

# A subscription's timeout is at most this (the API's bound). A claim lasts the subscription's
# timeout plus a margin for recording the outcome, so a live claim never expires mid-request,
# and a crashed holder's deliveries are sent again soon after.
MAX_TIMEOUT_SECONDS = 60
CLAIM_MARGIN_SECONDS = 10
CLAIM_SECONDS = MAX_TIMEOUT_SECONDS + CLAIM_MARGIN_SECONDS
# Deliveries one agent claims per poll (the reference's batch).
AGENT_BATCH = 10
# Stored errors are cut to this many characters (a receiver's error page can be any size).
MAX_ERROR_CHARS = 1024
# What an agent may report (checked before anything is stored).
MAX_REPORTED_ERROR_CHARS = 4096

EVENT_HEADER = "X-Brokkr-Event"
DELIVERY_HEADER = "X-Brokkr-Delivery-Id"
USER_AGENT = f"brokkr-broker/{brokkr.__version__}"


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """The wait before the n-th retry is ``base × 2^(n-1)`` seconds capped at ``maximum``, of
    which a random half is taken off (equal jitter): retries of many deliveries spread out,
    yet every wait is longer than the last one's shortest."""

    base: float
    maximum: float

    def delay(self, retry: int, rng: random.Random | None = None) -> float:
        full = min(self.maximum, self.base * 2.0 ** min(retry - 1, 64))
        return full / 2 + (rng or random).uniform(0, full / 2)


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What one attempt did: ``status_code`` is None when no HTTP answer came back."""

    success: bool
    status_code: int | None = None
    error: str | None = None
    # No retry can succeed (the subscription's secrets cannot be read): dead at once.
    final: bool = False


@dataclass(frozen=True, kw_only=True)
class Verdict:
    status: str
    attempts: int
    next_retry_at: datetime | None
    completed_at: datetime | None
    last_error: str | None


def judge(
    outcome: Outcome, *, attempts: int, max_retries: int, backoff: Backoff, now: datetime
) -> Verdict:
    """The delivery after one more attempt. ``attempts``: those made before this one.
    ``max_retries`` counts retries after the first attempt (D18). A 4xx other than 408 (timeout)
    and 429 (rate limited) will not change on retry, so it is dead at once; 410 Gone in
    particular says the receiver is gone for good."""
    made = attempts + 1
    if outcome.success:
        return Verdict(
            status=SUCCESS, attempts=made, next_retry_at=None, completed_at=now, last_error=None
        )
    error = bounded(outcome.error or "unknown error")
    if made > max_retries or outcome.final or permanent(outcome.status_code):
        return Verdict(
            status=DEAD, attempts=made, next_retry_at=None, completed_at=now, last_error=error
        )
    retry_at = now + timedelta(seconds=backoff.delay(made))
    return Verdict(
        status=FAILED, attempts=made, next_retry_at=retry_at, completed_at=None, last_error=error
    )


def permanent(status_code: int | None) -> bool:
    return status_code is not None and 400 <= status_code < 500 and status_code not in (408, 429)


def bounded(error: str) -> str:
    return error if len(error) <= MAX_ERROR_CHARS else error[: MAX_ERROR_CHARS - 1] + "…"


def headers(
    *, event_type: str, delivery_id: UUID, signature: str | None, auth_header: str | None
) -> dict[str, str]:
    """What every delivery POST (broker or agent) and a test delivery carry."""
    sent = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: event_type,
        DELIVERY_HEADER: str(delivery_id),
    }
    if signature is not None:
        sent[signing.HEADER] = signature
    if auth_header is not None:
        sent["Authorization"] = auth_header
    return sent


def http_error(status_code: int, reason: str, body: str) -> str:
    """The stored error of a non-2xx answer: its status line and the start of its body."""
    return bounded(f"HTTP {status_code} {reason}: {body[:200]}".rstrip(": "))


def timeout_of(timeout_seconds: int) -> float:
    """The request timeout actually applied: the claim covers no longer one."""
    return float(min(max(timeout_seconds, 1), MAX_TIMEOUT_SECONDS))


def claimed_until(now: datetime, timeout_seconds: int) -> datetime:
    """When a claim taken ``now`` on a subscription with this timeout ends."""
    return now + timedelta(seconds=timeout_of(timeout_seconds) + CLAIM_MARGIN_SECONDS)
