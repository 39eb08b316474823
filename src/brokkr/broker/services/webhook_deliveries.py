"""Webhook deliveries (D18): claiming due ones for the broker's worker and for agents, recording
what each attempt did, and listing a subscription's deliveries.

Each step is its own short transaction (claim, then record after the POSTs), so no database
connection is held while a receiver answers. A delivery whose subscription's secrets this key
cannot read is dead at once: retrying cannot help, and the error says which setting to check.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from uuid import UUID

from brokkr.broker import db
from brokkr.broker.domain import access, errors, paging
from brokkr.broker.domain import webhook_delivery as rules
from brokkr.broker.domain.secrets import SecretUnreadable
from brokkr.broker.services.context import Context
from brokkr.broker.services.work import Work
from brokkr.common import signing, wire

log = logging.getLogger(__name__)

RESOURCE = "webhook_delivery"
DEFAULT_LIMIT = 50
# Due agent deliveries looked at per poll to find the agent's: the labels are matched here,
# the same way on both databases.
_AGENT_CANDIDATES = 500
_UNREADABLE = (
    "cannot decrypt the subscription's {what} (broker.webhook_encryption_key differs from "
    "the key that stored it): {error}"
)


@dataclass(frozen=True, kw_only=True)
class Dispatch:
    """A claimed delivery, ready to POST: the body as stored and the headers to send."""

    id: UUID
    event_type: str
    url: str
    body: bytes
    headers: dict[str, str]
    timeout: float
    lease: datetime
    attempts: int
    max_retries: int


@dataclass(frozen=True, kw_only=True)
class Opened:
    """A claimed delivery's secrets in the clear."""

    url: str
    auth_header: str | None
    signature: str | None


def _open(ctx: Context, claimed: db.webhook_deliveries.Claimed) -> Opened:
    """Raises ``SecretUnreadable`` with the field named."""
    what = "URL"
    try:
        url = ctx.secrets.decrypt(claimed.url_encrypted)
        what = "auth header"
        auth = claimed.auth_header_encrypted
        auth_header = None if auth is None else ctx.secrets.decrypt(auth)
        what = "signing secret"
        secret = claimed.secret_encrypted
        signature = (
            None
            if secret is None
            else signing.sign(ctx.secrets.decrypt(secret), claimed.payload.encode())
        )
    except SecretUnreadable as exc:
        raise SecretUnreadable(_UNREADABLE.format(what=what, error=exc)) from exc
    return Opened(url=url, auth_header=auth_header, signature=signature)


async def _open_all(
    w: Work, ctx: Context, claimed: list[db.webhook_deliveries.Claimed]
) -> list[tuple[db.webhook_deliveries.Claimed, Opened]]:
    """The claimed deliveries whose secrets this key reads; the others are dead (no retry can
    read them either), recorded in the same transaction."""
    opened: list[tuple[db.webhook_deliveries.Claimed, Opened]] = []
    unreadable: list[tuple[UUID, datetime, int, int, rules.Outcome]] = []
    for row in claimed:
        try:
            opened.append((row, _open(ctx, row)))
        except SecretUnreadable as exc:
            log.error("webhook delivery %s is dead: %s", row.id, exc)
            failure = rules.Outcome(success=False, error=str(exc), final=True)
            unreadable.append((row.id, row.acquired_until, row.attempts, row.max_retries, failure))
    if unreadable:
        await _store(w, ctx, unreadable)
    return opened


def _backoff(ctx: Context) -> rules.Backoff:
    broker = ctx.settings.current.broker
    return rules.Backoff(
        base=broker.webhook_retry_base_seconds, maximum=broker.webhook_retry_max_seconds
    )


async def _store(
    w: Work,
    ctx: Context,
    results: Sequence[tuple[UUID, datetime, int, int, rules.Outcome]],
) -> list[rules.Verdict]:
    """Judge and store attempts given as (id, lease, attempts before, max_retries, outcome);
    a delivery that became dead is audited (the system's action unless an agent reported)."""
    backoff = _backoff(ctx)
    verdicts: list[rules.Verdict] = []
    attempts: list[db.webhook_deliveries.Attempt] = []
    for delivery_id, lease, made, max_retries, outcome in results:
        verdict = rules.judge(
            outcome, attempts=made, max_retries=max_retries, backoff=backoff, now=w.now
        )
        verdicts.append(verdict)
        attempts.append(
            db.webhook_deliveries.Attempt(
                id=delivery_id,
                lease=lease,
                status=verdict.status,
                attempts=verdict.attempts,
                last_attempt_at=w.now,
                next_retry_at=verdict.next_retry_at,
                completed_at=verdict.completed_at,
                last_error=verdict.last_error,
            )
        )
    await db.webhook_deliveries.record(w.tx, attempts)
    for (delivery_id, *_), verdict in zip(results, verdicts, strict=True):
        if verdict.status == rules.DEAD:
            details = {"attempts": verdict.attempts, "error": verdict.last_error}
            await w.audit("webhook.delivery_failed", RESOURCE, delivery_id, details)
    return verdicts


async def claim(ctx: Context, *, limit: int) -> list[Dispatch]:
    """Claim up to ``limit`` due deliveries for this broker to send (atomic across brokers)."""
    async with ctx.work(None) as w:
        claimed = await db.webhook_deliveries.claim_for_broker(
            w.tx, now=w.now, lease=partial(rules.claimed_until, w.now), limit=limit
        )
        return [
            Dispatch(
                id=row.id,
                event_type=row.event_type,
                url=opened.url,
                body=row.payload.encode(),
                headers=rules.headers(
                    event_type=row.event_type,
                    delivery_id=row.id,
                    signature=opened.signature,
                    auth_header=opened.auth_header,
                ),
                timeout=rules.timeout_of(row.timeout_seconds),
                lease=row.acquired_until,
                attempts=row.attempts,
                max_retries=row.max_retries,
            )
            for row, opened in await _open_all(w, ctx, claimed)
        ]


async def record(
    ctx: Context, results: Sequence[tuple[Dispatch, rules.Outcome]]
) -> list[rules.Verdict]:
    """Store what the broker's POSTs did, in one transaction. An outcome whose claim expired
    meanwhile (the delivery was taken over) is not stored."""
    async with ctx.work(None) as w:
        return await _store(
            w,
            ctx,
            [(d.id, d.lease, d.attempts, d.max_retries, outcome) for d, outcome in results],
        )


async def pending_for_agent(
    ctx: Context, *, caller: access.Caller, agent_id: UUID
) -> list[wire.PendingWebhookDelivery]:
    """Claims (GET with a side effect, as in the reference) up to 10 due deliveries whose
    target labels the agent all carries, oldest first, for the agent to send."""
    access.require_admin_or_agent(caller, agent_id)
    async with ctx.work(caller) as w:
        if await db.agents.get(w.tx, agent_id) is None:
            raise errors.AgentNotFound(agent_id)
        carried = await db.webhook_deliveries.agent_labels(w.tx, agent_id)
        candidates = await db.webhook_deliveries.due_for_agents(
            w.tx, now=w.now, limit=_AGENT_CANDIDATES
        )
        mine = [delivery_id for delivery_id, wanted in candidates if set(wanted) <= carried]
        claimed = await db.webhook_deliveries.claim_for_agent(
            w.tx,
            mine,
            agent_id,
            now=w.now,
            lease=partial(rules.claimed_until, w.now),
            limit=rules.AGENT_BATCH,
        )
        handed = [
            wire.PendingWebhookDelivery(
                id=row.id,
                subscription_id=row.subscription_id,
                event_type=row.event_type,
                payload=row.payload,
                url=opened.url,
                auth_header=opened.auth_header,
                signature=opened.signature,
                timeout_seconds=int(rules.timeout_of(row.timeout_seconds)),
                max_retries=row.max_retries,
                attempts=row.attempts,
            )
            for row, opened in await _open_all(w, ctx, claimed)
        ]
        if handed:
            details = {"agent_id": str(agent_id), "deliveries": [str(d.id) for d in handed]}
            await w.audit("webhook.deliveries_claimed", RESOURCE, None, details)
    return handed


def _check_report(request: wire.DeliveryResultRequest) -> None:
    bad: dict[str, str] = {}
    if request.status_code is not None and not 100 <= request.status_code <= 599:
        bad["status_code"] = "must be an HTTP status code (100-599)"
    if request.error is not None and len(request.error) > rules.MAX_REPORTED_ERROR_CHARS:
        bad["error"] = f"must be at most {rules.MAX_REPORTED_ERROR_CHARS} characters"
    if request.duration_ms is not None and request.duration_ms < 0:
        bad["duration_ms"] = "must not be negative"
    if bad:
        raise errors.ValidationFailed(bad)


async def report(
    ctx: Context, *, caller: access.Caller, delivery_id: UUID, request: wire.DeliveryResultRequest
) -> wire.DeliveryResultResponse:
    """Only the agent holding an unexpired claim reports; the same retry rules as the broker's
    own deliveries apply (``status_code`` decides whether a failure is worth retrying)."""
    if caller.role is not access.Role.AGENT or caller.id is None:
        raise errors.AgentPakRequired()
    _check_report(request)
    async with ctx.work(caller) as w:
        held = await db.webhook_deliveries.hold(w.tx, delivery_id)
        if held is None:
            raise errors.DeliveryNotFound(delivery_id)
        if (
            held.status != rules.ACQUIRED
            or held.acquired_by != caller.id
            or held.acquired_until is None
            or held.acquired_until < w.now
        ):
            raise errors.DeliveryNotAcquiredByAgent()
        outcome = rules.Outcome(
            success=request.success,
            status_code=request.status_code,
            error=request.error or (f"HTTP {request.status_code}" if request.status_code else None),
        )
        stored = (held.id, held.acquired_until, held.attempts, held.max_retries, outcome)
        (verdict,) = await _store(w, ctx, [stored])
        details = {
            "status": verdict.status,
            "attempts": verdict.attempts,
            "status_code": request.status_code,
        }
        await w.audit("webhook.delivery_reported", RESOURCE, delivery_id, details)
    if verdict.status == rules.SUCCESS:
        return wire.DeliveryResultResponse(status=verdict.status, delivery_id=delivery_id)
    return wire.DeliveryResultResponse(
        status=verdict.status,
        delivery_id=delivery_id,
        attempts=verdict.attempts,
        next_retry_at=verdict.next_retry_at,
    )


async def list_for_subscription(
    ctx: Context,
    *,
    caller: access.Caller,
    subscription_id: UUID,
    status: str | None,
    limit: int,
    offset: int,
) -> paging.Page[wire.WebhookDelivery]:
    access.require_admin(caller)
    if status is not None and status not in rules.STATUSES:
        raise errors.InvalidParameter({"status": f"must be one of {', '.join(rules.STATUSES)}"})
    limit = min(limit, paging.MAX_LIMIT)
    async with ctx.database.read() as tx:
        if not await db.webhook_deliveries.subscription_exists(tx, subscription_id):
            raise errors.WebhookNotFound(subscription_id)
        rows = await db.webhook_deliveries.list_for_subscription(
            tx, subscription_id, status=status, limit=limit + 1, offset=offset
        )
    budget = ctx.settings.current.limits.list_page_bytes
    return paging.page(rows[:limit], budget=budget, offset=offset, available=len(rows))
