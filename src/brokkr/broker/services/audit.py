"""The audit trail: failed authentications, denied writes and the admin query (D11); its
retention is ``services.retention``.

Failures are recorded at a bounded rate (``limits.audit_failures_per_minute`` per source address
and per key id, ``limits.audit_failures_per_minute_total`` in all); what is not recorded is
counted by ``ctx.audit_dropped`` (a Prometheus counter), so a flood cannot grow the database.
"""

from __future__ import annotations

import time
from uuid import UUID

from brokkr.broker import db
from brokkr.broker.domain import access, audit, paging
from brokkr.broker.services.context import Context
from brokkr.common import wire


async def record_auth_failure(
    ctx: Context,
    *,
    reason: str,
    key_id: str | None,
    ip_address: str | None,
    user_agent: str | None,
    path: str,
) -> None:
    entry = audit.Entry(
        actor_type="system",
        actor_id=None,
        key_id=key_id,
        action="auth.failed",
        resource_type="pak",
        resource_id=None,
        outcome="failure",
        details={"reason": reason, "path": path},
        ip_address=ip_address,
        user_agent=user_agent,
    )
    await _record_failure(ctx, entry)


async def record_denial(
    ctx: Context,
    *,
    caller: access.Caller,
    code: str,
    method: str,
    route: str,
    path: str,
    resource_type: str,
    resource_id: UUID | None,
) -> None:
    """A write the caller was refused (D11: every write call is audited, with its outcome)."""
    entry = audit.denied(
        caller,
        code=code,
        method=method,
        route=route,
        path=path,
        resource_type=resource_type,
        resource_id=resource_id,
    )
    await _record_failure(ctx, entry)


async def _record_failure(ctx: Context, entry: audit.Entry) -> None:
    limits = ctx.settings.current.limits
    allowed = ctx.audit_throttle.allow(
        audit.failure_keys(entry),
        now=time.monotonic(),
        per_minute=limits.audit_failures_per_minute,
        per_minute_total=limits.audit_failures_per_minute_total,
        max_keys=limits.audit_failure_sources,
    )
    if not allowed:
        ctx.audit_dropped(entry.action)
        return
    async with ctx.work(None) as w:
        await w.record(entry)


async def search(ctx: Context, *, caller: access.Caller, query: audit.Query) -> wire.AuditLogList:
    """One page: at most ``query.limit`` records and ``limits.list_page_bytes`` of JSON."""
    access.require_admin(caller)
    async with ctx.database.read() as tx:
        logs, total = await db.audit.search(tx, query)
    budget = ctx.settings.current.limits.list_page_bytes
    found = paging.page(logs, budget=budget, offset=query.offset, available=total - query.offset)
    return wire.AuditLogList(
        logs=found.items,
        total=total,
        count=len(found.items),
        limit=query.limit,
        offset=query.offset,
    )
