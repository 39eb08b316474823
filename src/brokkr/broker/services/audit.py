"""The audit trail: failed authentications and the admin query (D11)."""

from __future__ import annotations

from brokkr.broker import db
from brokkr.broker.domain import access, audit
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
    async with ctx.work(None) as w:
        await w.record(entry)


async def search(ctx: Context, *, caller: access.Caller, query: audit.Query) -> wire.AuditLogList:
    access.require_admin(caller)
    async with ctx.database.read() as tx:
        logs, total = await db.audit.search(tx, query)
    return wire.AuditLogList(
        logs=logs, total=total, count=len(logs), limit=query.limit, offset=query.offset
    )
