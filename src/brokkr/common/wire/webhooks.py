"""Webhooks (D10, D18): subscriptions, their deliveries, and the agent-side delivery exchange.

Request bodies keep plain types where the broker checks values itself (URL scheme, event-type
patterns, ranges) so one answer names every bad field. Secrets (URL, auth header, signing
secret) are write-only: responses only say whether they are set.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec


class WebhookFilters(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """An event reaches the subscription only when it concerns this agent, this stack, and/or
    an agent or stack carrying every one of these labels; absent keys do not filter."""

    agent_id: UUID | None = None
    stack_id: UUID | None = None
    labels: dict[str, str] | None = None


class CreateWebhookRequest(msgspec.Struct, kw_only=True, frozen=True):
    """``secret`` signs every delivery (``X-Brokkr-Signature: sha256=<hex HMAC>``); ``validate``
    is accepted for compatibility."""

    name: str
    url: str
    event_types: list[str]
    auth_header: str | None = None
    secret: str | None = None
    filters: WebhookFilters | None = None
    target_labels: list[str] | None = None
    max_retries: int | None = None
    timeout_seconds: int | None = None
    validate: bool = False


class UpdateWebhookRequest(msgspec.Struct, kw_only=True, frozen=True):
    """Absent fields stay as they are; ``null`` clears ``auth_header``, ``secret``, ``filters``
    and ``target_labels``."""

    name: str | msgspec.UnsetType = msgspec.UNSET
    url: str | msgspec.UnsetType = msgspec.UNSET
    event_types: list[str] | msgspec.UnsetType = msgspec.UNSET
    auth_header: str | None | msgspec.UnsetType = msgspec.UNSET
    secret: str | None | msgspec.UnsetType = msgspec.UNSET
    filters: WebhookFilters | None | msgspec.UnsetType = msgspec.UNSET
    target_labels: list[str] | None | msgspec.UnsetType = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET
    max_retries: int | msgspec.UnsetType = msgspec.UNSET
    timeout_seconds: int | msgspec.UnsetType = msgspec.UNSET


class WebhookResponse(msgspec.Struct, kw_only=True, frozen=True):
    """``filters`` is left out when there are none (the published SDK cannot parse a null)."""

    id: UUID
    name: str
    has_url: bool
    has_auth_header: bool
    has_secret: bool = False
    event_types: list[str]
    filters: WebhookFilters | msgspec.UnsetType = msgspec.UNSET
    target_labels: list[str] | None = None
    enabled: bool
    max_retries: int
    timeout_seconds: int
    created_at: datetime
    updated_at: datetime
    created_by: str | None = None


class WebhookDelivery(msgspec.Struct, kw_only=True, frozen=True):
    """``payload`` is the envelope exactly as sent; ``event_id`` its ``id``."""

    id: UUID
    subscription_id: UUID
    event_type: str
    event_id: UUID
    payload: str
    target_labels: list[str] | None = None
    status: str
    acquired_by: UUID | None = None
    acquired_until: datetime | None = None
    attempts: int
    last_attempt_at: datetime | None = None
    next_retry_at: datetime | None = None
    last_error: str | None = None
    created_at: datetime
    completed_at: datetime | None = None


class WebhookEnvelope(msgspec.Struct, kw_only=True, frozen=True):
    """The body every delivery POSTs."""

    id: UUID
    event_type: str
    timestamp: datetime
    data: dict[str, Any]


class PendingWebhookDelivery(msgspec.Struct, kw_only=True, frozen=True):
    """A delivery an agent claimed: the only place the decrypted URL and auth header leave the
    broker. ``signature`` is the ``X-Brokkr-Signature`` value to send (the broker signs, so the
    secret never leaves it); null when the subscription has no secret."""

    id: UUID
    subscription_id: UUID
    event_type: str
    payload: str
    url: str
    auth_header: str | None = None
    signature: str | None = None
    timeout_seconds: int
    max_retries: int
    attempts: int


class DeliveryResultRequest(msgspec.Struct, kw_only=True, frozen=True):
    success: bool
    status_code: int | None = None
    error: str | None = None
    duration_ms: int | None = None


class DeliveryResultResponse(msgspec.Struct, kw_only=True, frozen=True):
    """``status``: success, failed (retried at ``next_retry_at``) or dead."""

    status: str
    delivery_id: UUID
    attempts: int | msgspec.UnsetType = msgspec.UNSET
    next_retry_at: datetime | None | msgspec.UnsetType = msgspec.UNSET


class WebhookTestResponse(msgspec.Struct, kw_only=True, frozen=True):
    success: bool
    status_code: int
    message: str
