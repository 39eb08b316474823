"""/admin/audit-logs: the audit trail (admins only)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, TypedDict, Unpack
from uuid import UUID

from brokkr.client.blocking import Blocking, blocking, collecting
from brokkr.client.http import Http
from brokkr.common import wire

PAGE = 100


class AuditLogFilter(TypedDict, total=False):
    """The filters of ``AuditLogs.list``, for ``AuditLogs.iterate``."""

    actor_type: str | None
    actor_id: UUID | None
    action: str | None
    resource_type: str | None
    resource_id: UUID | None
    since: datetime | None
    until: datetime | None


class AuditLogs:
    def __init__(self, http: Http) -> None:
        self._http = http

    async def list(
        self,
        *,
        actor_type: str | None = None,
        actor_id: UUID | None = None,
        action: str | None = None,
        resource_type: str | None = None,
        resource_id: UUID | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = PAGE,
        offset: int = 0,
    ) -> wire.AuditLogList:
        params: dict[str, Any] = {
            "actor_type": actor_type,
            "actor_id": actor_id,
            "action": action,
            "resource_type": resource_type,
            "resource_id": resource_id,
            "from": since,
            "to": until,
            "limit": limit,
            "offset": offset,
        }
        return await self._http.call(
            "GET", "/api/v1/admin/audit-logs", wire.AuditLogList, params=params
        )

    async def iterate(
        self, *, page: int = PAGE, **filters: Unpack[AuditLogFilter]
    ) -> AsyncIterator[wire.AuditLog]:
        """Every matching record, newest first, fetched page by page."""
        offset = 0
        while True:
            batch = await self.list(limit=page, offset=offset, **filters)
            for record in batch.logs:
                yield record
            offset += batch.count
            if batch.count == 0 or offset >= batch.total:
                return


class BlockingAuditLogs(Blocking[AuditLogs]):
    list = blocking(AuditLogs.list)
    iterate = collecting(AuditLogs.iterate)
