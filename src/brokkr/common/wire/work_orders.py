"""Work orders: one-shot jobs routed to agents, their targeting, and the log of finished ones.

Targeting entries and scalar limits are plain types here: the broker checks them itself so it
can answer with every invalid entry listed at once instead of the first one msgspec meets.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec


class WorkOrder(msgspec.Struct, kw_only=True, frozen=True):
    """An order in the active queue; read by id, a logged order is shown as COMPLETED/FAILED."""

    id: UUID
    created_at: datetime
    updated_at: datetime
    work_type: str
    yaml_content: str
    status: str
    claimed_by: UUID | None = None
    claimed_at: datetime | None = None
    claim_timeout_seconds: int
    max_retries: int
    retry_count: int
    backoff_seconds: int
    next_retry_after: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None


class WorkOrderLog(msgspec.Struct, kw_only=True, frozen=True):
    """A finished order: moved out of the queue with the same id."""

    id: UUID
    work_type: str
    created_at: datetime
    claimed_at: datetime | None = None
    completed_at: datetime
    claimed_by: UUID | None = None
    success: bool
    retries_attempted: int
    result_message: str | None = None
    yaml_content: str


class WorkOrderTargeting(msgspec.Struct, kw_only=True, frozen=True):
    """Who may claim the order: any listed agent, or any agent with one of the labels or
    annotation pairs (OR)."""

    agent_ids: list[UUID] | None = None
    labels: list[str] | None = None
    annotations: dict[str, str] | None = None


class CreateWorkOrderRequest(msgspec.Struct, kw_only=True, frozen=True):
    """``target_agent_ids`` is the reference's legacy alias, merged after
    ``targeting.agent_ids``."""

    work_type: str
    yaml_content: str
    max_retries: int | None = None
    backoff_seconds: int | None = None
    claim_timeout_seconds: int | None = None
    targeting: WorkOrderTargeting | None = None
    target_agent_ids: list[UUID] | None = None


class ClaimWorkOrderRequest(msgspec.Struct, kw_only=True, frozen=True):
    agent_id: UUID


class CompleteWorkOrderRequest(msgspec.Struct, kw_only=True, frozen=True):
    """``retryable`` matters only for a failure; a retryable failure with retries left is
    answered ``202 {"status": "retry_scheduled"}``."""

    success: bool
    message: str | None = None
    retryable: bool = True


class WorkOrderRetryScheduled(msgspec.Struct, kw_only=True, frozen=True):
    """The 202 body of a completion that put the order back in the queue for a retry."""

    status: Literal["retry_scheduled"] = "retry_scheduled"
