"""Stack telemetry history (S15, S16): the retained events and log lines of a stack, newest
first, within the retention window."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from brokkr.broker import db
from brokkr.broker.domain import access
from brokkr.broker.domain import telemetry as rules
from brokkr.broker.services import stacks
from brokkr.broker.services.context import Context
from brokkr.common import wire


def _retention(ctx: Context, oldest: datetime | None) -> wire.RetentionInfo:
    return wire.RetentionInfo(
        retention_ceiling_seconds=wire.RETENTION_CEILING_SECONDS,
        effective_retention_seconds=ctx.settings.current.broker.telemetry_retention_seconds,
        oldest_available_ts=oldest,
        long_term_sink_hint=rules.LONG_TERM_SINK_HINT,
    )


def _window_start(ctx: Context, since: datetime | None) -> datetime:
    retention = ctx.settings.current.broker.telemetry_retention_seconds
    return rules.window_start(since, now=ctx.now(), retention_seconds=retention)


async def events(
    ctx: Context,
    *,
    caller: access.Caller,
    stack_id: UUID,
    since: datetime | None = None,
    limit: int | None = None,
) -> wire.K8sEventHistoryResponse:
    """The stack's events created since ``since`` (clamped to the window), newest first."""
    start = _window_start(ctx, since)
    async with ctx.database.read() as tx:
        await stacks.owned(tx, caller, stack_id)
        found = await db.telemetry.recent_events(
            tx, stack_id, since=start, limit=rules.page_size(limit)
        )
    oldest = found[-1].created_at if found else None
    return wire.K8sEventHistoryResponse(retention=_retention(ctx, oldest), events=found)


async def logs(
    ctx: Context,
    *,
    caller: access.Caller,
    stack_id: UUID,
    since: datetime | None = None,
    limit: int | None = None,
) -> wire.PodLogHistoryResponse:
    """The stack's log lines created since ``since`` (clamped to the window), newest first."""
    start = _window_start(ctx, since)
    async with ctx.database.read() as tx:
        await stacks.owned(tx, caller, stack_id)
        found = await db.telemetry.recent_logs(
            tx, stack_id, since=start, limit=rules.page_size(limit)
        )
    oldest = found[-1].created_at if found else None
    return wire.PodLogHistoryResponse(retention=_retention(ctx, oldest), lines=found)
