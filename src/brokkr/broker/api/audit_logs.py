"""/admin/audit-logs: query the audit trail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Request, Response, Router, get
from litestar.params import FromQuery, QueryParameter

from brokkr.broker import services
from brokkr.broker.api import responses, security
from brokkr.broker.api.dependencies import CallerDep, ContextDep
from brokkr.broker.domain import audit, errors, paging
from brokkr.common import wire


def _utc(name: str, moment: datetime | None) -> datetime | None:
    """A query bound in UTC; one that leaves the representable years when shifted is a 400."""
    try:
        utc = audit.as_utc(moment)
        return None if utc is None else utc.astimezone(UTC)
    except OverflowError:
        raise errors.InvalidParameter({name: "out of range"}) from None


@get(
    "/admin/audit-logs",
    operation_id="list_audit_logs",
    summary="Query the audit trail",
    description=(
        "Newest first. `action` matches exactly, or by prefix when it ends with `*` (`agent.*`). "
        "`from` is inclusive, `to` exclusive. `limit` defaults to 100 and is capped at 1000. "
        "Timestamps without an offset are UTC. A page also ends before its JSON passes the "
        "broker's byte budget; `X-Next-Offset` then gives the next `offset`."
    ),
    security=security.ADMIN,
    responses=responses.errors(400),
    response_headers=responses.PAGE_HEADERS,
    tags=["admin"],
)
async def list_audit_logs(
    request: Request[Any, Any, Any],
    ctx: ContextDep,
    caller: CallerDep,
    actor_type: FromQuery[str | None] = None,
    actor_id: FromQuery[UUID | None] = None,
    action: FromQuery[str | None] = None,
    resource_type: FromQuery[str | None] = None,
    resource_id: FromQuery[UUID | None] = None,
    since: Annotated[datetime | None, QueryParameter(name="from")] = None,
    until: Annotated[datetime | None, QueryParameter(name="to")] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=paging.MAX_OFFSET)] = audit.DEFAULT_LIMIT,
    offset: responses.Offset = 0,
) -> Response[wire.AuditLogList]:
    query = audit.Query(
        actor_type=actor_type,
        actor_id=actor_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        since=_utc("from", since),
        until=_utc("to", until),
        limit=min(limit, audit.MAX_LIMIT),
        offset=offset,
    )
    found = await services.audit.search(ctx, caller=caller, query=query)
    served = found.offset + found.count
    next_offset = served if served < found.total else None
    return Response(found, headers=responses.next_page(request, next_offset))


router = Router(path="/", route_handlers=[list_audit_logs])
