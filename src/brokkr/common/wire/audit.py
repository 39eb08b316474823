"""Audit trail records and their paged listing (``GET /admin/audit-logs``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec


class AuditLog(msgspec.Struct, kw_only=True, frozen=True):
    id: UUID
    timestamp: datetime
    actor_type: str
    actor_id: UUID | None
    action: str
    resource_type: str
    resource_id: UUID | None
    details: Any
    ip_address: str | None
    user_agent: str | None
    created_at: datetime
    key_id: str | None = None


class AuditLogList(msgspec.Struct, kw_only=True, frozen=True):
    logs: list[AuditLog]
    total: int
    count: int
    limit: int
    offset: int
