"""Diagnostic request rules: what a valid request and a valid result are, and how a request's
life reads. Pure functions, no I/O.

A request is ``pending`` until its agent claims it (``claimed``) and then ``completed`` by the
agent's result. An unclaimed request ends ``expired`` at ``expires_at``; a claim left without a
result ends ``failed``. ``completed_at`` is when a request ended, whichever way it did, so one
column keys retention.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import msgspec

from brokkr.broker.domain import errors
from brokkr.common import wire

PENDING = "pending"
CLAIMED = "claimed"
COMPLETED = "completed"
FAILED = "failed"
EXPIRED = "expired"

DEFAULT_RETENTION_MINUTES = 60
MAX_RETENTION_MINUTES = 24 * 60
REQUESTED_BY_LENGTH = 255
# An agent's clock may run ahead of the broker's; a collection time further ahead than this is
# no clock skew but a wrong value.
COLLECTED_AT_SKEW = timedelta(hours=1)

EXPIRED_REASON = "not claimed before it expired"


@dataclass(frozen=True, kw_only=True)
class NewRequest:
    agent_id: UUID
    requested_by: str | None
    # How long the request waits to be claimed.
    retention: timedelta


def validate_request(request: wire.CreateDiagnosticRequest) -> NewRequest:
    retention = request.retention_minutes
    if retention is None:
        retention = DEFAULT_RETENTION_MINUTES
    elif not 1 <= retention <= MAX_RETENTION_MINUTES:
        message = f"Retention must be between 1 and {MAX_RETENTION_MINUTES} minutes"
        raise errors.InvalidDiagnosticRequest("retention_minutes", message)
    requested_by = request.requested_by
    if requested_by is not None and (
        len(requested_by) > REQUESTED_BY_LENGTH or "\x00" in requested_by
    ):
        message = f"requested_by must be at most {REQUESTED_BY_LENGTH} characters, without NUL"
        raise errors.InvalidDiagnosticRequest("requested_by", message)
    return NewRequest(
        agent_id=request.agent_id,
        requested_by=requested_by,
        retention=timedelta(minutes=retention),
    )


def validate_result(
    result: wire.SubmitDiagnosticResult, *, now: datetime, limit_bytes: int
) -> None:
    """The documents are opaque to the broker but must be JSON, since the CLI and SDKs parse
    them; ``pod_statuses`` and ``events`` may not be empty (the reference's rule)."""
    documents = {
        "pod_statuses": result.pod_statuses,
        "events": result.events,
        "log_tails": result.log_tails,
    }
    size = sum(len(text.encode("utf-8", "surrogatepass")) for text in documents.values() if text)
    if size > limit_bytes:
        raise errors.DiagnosticResultTooLarge(limit_bytes)
    for field, text in documents.items():
        if text is None:
            continue
        if not text.strip():
            raise errors.InvalidDiagnosticResult(field, f"{field} cannot be empty")
        if not _is_json(text):
            raise errors.InvalidDiagnosticResult(field, f"{field} is not a JSON document")
    collected_at = result.collected_at
    if collected_at.tzinfo is None:
        message = "collected_at must carry a UTC offset (e.g. 2025-01-02T10:00:00Z)"
        raise errors.InvalidDiagnosticResult("collected_at", message)
    if collected_at.astimezone(UTC) > now + COLLECTED_AT_SKEW:
        raise errors.InvalidDiagnosticResult("collected_at", "collected_at is in the future")


def _is_json(text: str) -> bool:
    try:
        msgspec.json.decode(text)
    except (msgspec.MsgspecError, RecursionError):
        return False
    return True


def claim_refusal(request: wire.DiagnosticRequest, now: datetime) -> str:
    """The status a claim of this (unclaimable) request is refused with: a pending request
    past its expiry already counts as expired, although maintenance has not marked it yet."""
    if request.status == PENDING and request.expires_at <= now:
        return EXPIRED
    return request.status


def unanswered_reason(timeout_seconds: int) -> str:
    return f"the agent claimed it but sent no result within {timeout_seconds} s"
