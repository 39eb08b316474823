"""Work-order rules (D17): what a valid order is, who may claim it, and when it is retried.
Pure functions, no I/O."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import msgspec

from brokkr.broker.domain import errors
from brokkr.common import wire
from brokkr.common.wire.types import Label

PENDING = "PENDING"
CLAIMED = "CLAIMED"
RETRY_PENDING = "RETRY_PENDING"
# Shown only when a logged order is read by id.
COMPLETED = "COMPLETED"
FAILED = "FAILED"

WORK_TYPE_LENGTH = 50
DEFAULT_MAX_RETRIES = 3
DEFAULT_BACKOFF_SECONDS = 60
DEFAULT_CLAIM_TIMEOUT_SECONDS = 3600
# Large enough for any real job, small enough that backoff × 2^retries stays a sane datetime.
MAX_RETRIES = 20
MAX_SECONDS = 30 * 24 * 3600
UNKNOWN_ERROR = "Unknown error"


@dataclass(frozen=True, kw_only=True)
class NewOrder:
    """A create request that passed every rule: targeting de-duplicated, labels in NFC."""

    work_type: str
    yaml_content: str
    max_retries: int
    backoff_seconds: int
    claim_timeout_seconds: int
    agent_ids: list[UUID]
    labels: list[str]
    annotations: list[tuple[str, str]]


def _is_label(text: str) -> bool:
    try:
        msgspec.convert(text, Label)
    except msgspec.ValidationError:
        return False
    return True


def _bounded(name: str, value: int | None, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    if not low <= value <= high:
        raise errors.InvalidWorkOrder(name, f"{name} must be between {low} and {high}")
    return value


def validate(request: wire.CreateWorkOrderRequest) -> NewOrder:
    """Every rule of a create request; targeting problems are reported all at once (422)."""
    targeting = request.targeting or wire.WorkOrderTargeting()
    agent_ids = [*(targeting.agent_ids or []), *(request.target_agent_ids or [])]
    labels = targeting.labels or []
    annotations = targeting.annotations or {}
    if not (agent_ids or labels or annotations):
        raise errors.NoTargetingSpecified()
    work_type = request.work_type.strip()
    if not work_type or len(work_type) > WORK_TYPE_LENGTH or "\x00" in work_type:
        message = f"work_type must be 1-{WORK_TYPE_LENGTH} characters, not blank"
        raise errors.InvalidWorkOrder("work_type", message)
    if not request.yaml_content.strip() or "\x00" in request.yaml_content:
        raise errors.InvalidWorkOrder("yaml_content", "yaml_content cannot be empty")
    max_retries = _bounded("max_retries", request.max_retries, DEFAULT_MAX_RETRIES, 0, MAX_RETRIES)
    backoff = _bounded(
        "backoff_seconds", request.backoff_seconds, DEFAULT_BACKOFF_SECONDS, 1, MAX_SECONDS
    )
    claim_timeout = _bounded(
        "claim_timeout_seconds",
        request.claim_timeout_seconds,
        DEFAULT_CLAIM_TIMEOUT_SECONDS,
        1,
        MAX_SECONDS,
    )
    bad_labels = [label for label in labels if not _is_label(label)]
    bad_annotations = {
        key: value
        for key, value in annotations.items()
        if not (_is_label(key) and _is_label(value))
    }
    nil = [str(agent_id) for agent_id in agent_ids if agent_id.int == 0]
    if bad_labels or bad_annotations or nil:
        raise errors.InvalidTargeting(labels=bad_labels, annotations=bad_annotations, agent_ids=nil)
    return NewOrder(
        work_type=work_type,
        yaml_content=request.yaml_content,
        max_retries=max_retries,
        backoff_seconds=backoff,
        claim_timeout_seconds=claim_timeout,
        agent_ids=list(dict.fromkeys(agent_ids)),
        labels=list(dict.fromkeys(unicodedata.normalize("NFC", label) for label in labels)),
        annotations=list(
            dict.fromkeys(
                (unicodedata.normalize("NFC", key), unicodedata.normalize("NFC", value))
                for key, value in annotations.items()
            )
        ),
    )


def retry_delay(backoff_seconds: int, retry_count: int) -> timedelta:
    """The reference backoff: the n-th retry waits ``backoff × 2^n`` (the first one 2 × backoff)."""
    return timedelta(seconds=backoff_seconds * 2**retry_count)


def retries_left(order: wire.WorkOrder) -> bool:
    return order.retry_count + 1 <= order.max_retries


def claim_expired(order: wire.WorkOrder, now: datetime) -> bool:
    return (
        order.status == CLAIMED
        and order.claimed_at is not None
        and order.claimed_at + timedelta(seconds=order.claim_timeout_seconds) < now
    )


def as_order(entry: wire.WorkOrderLog) -> wire.WorkOrder:
    """A logged order read by id: the reference's synthesized COMPLETED/FAILED view."""
    return wire.WorkOrder(
        id=entry.id,
        created_at=entry.created_at,
        updated_at=entry.completed_at,
        work_type=entry.work_type,
        yaml_content=entry.yaml_content,
        status=COMPLETED if entry.success else FAILED,
        claimed_by=entry.claimed_by,
        claimed_at=entry.claimed_at,
        claim_timeout_seconds=0,
        max_retries=0,
        retry_count=entry.retries_attempted,
        backoff_seconds=0,
        next_retry_after=None,
        last_error=None if entry.success else entry.result_message,
        last_error_at=None if entry.success else entry.completed_at,
    )
