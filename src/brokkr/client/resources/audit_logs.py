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
PATH = "/api/v1/admin/audit-logs"


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
        filters = AuditLogFilter(
            actor_type=actor_type,
            actor_id=actor_id,
            action=action,
            resource_type=resource_type,
            resource_id=resource_id,
            since=since,
            until=until,
        )
        params = _query(filters, limit=limit, offset=offset)
        return await self._http.call("GET", PATH, wire.AuditLogList, params=params)

    async def iterate(
        self, *, page: int = PAGE, **filters: Unpack[AuditLogFilter]
    ) -> AsyncIterator[wire.AuditLog]:
        """Every matching record, newest first, fetched page by page."""
        params = _query(filters, limit=page)
        async for batch in self._http.pages(PATH, wire.AuditLogList, params=params):
            for record in batch.logs:
                yield record


def _query(filters: AuditLogFilter, **paging: int) -> dict[str, Any]:
    """The query of a search: ``since`` and ``until`` are sent as ``from`` and ``to``."""
    query: dict[str, Any] = {k: v for k, v in filters.items() if k not in ("since", "until")}
    return query | {"from": filters.get("since"), "to": filters.get("until")} | paging


class BlockingAuditLogs(Blocking[AuditLogs]):
    list = blocking(AuditLogs.list)
    iterate = collecting(AuditLogs.iterate)
