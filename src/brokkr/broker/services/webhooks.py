"""Webhook subscriptions (D10, D18): create, read, change, delete and test them (admins only).

URL, auth header and signing secret are encrypted before they reach the database and are
never answered nor audited. A request is checked whole before any transaction opens; ids
named in its filters must name live agents and stacks.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import httpx
import msgspec

import brokkr
from brokkr.broker import db
from brokkr.broker.domain import access, errors, events, secrets
from brokkr.broker.domain import webhooks as rules
from brokkr.broker.services.context import Context
from brokkr.common import signing, wire

log = logging.getLogger(__name__)

RESOURCE = "webhook"
# Columns holding ciphertext, by the request field whose plaintext they hold.
_ENCRYPTED = {
    "url": "url_encrypted",
    "auth_header": "auth_header_encrypted",
    "secret": "secret_encrypted",
}
TEST_MESSAGE = "This is a test webhook delivery from Brokkr"
# How much of a refusing endpoint's answer the test shows (and reads).
_BODY_SHOWN = 500
USER_AGENT = f"brokkr-broker/{brokkr.__version__}"


def event_types(caller: access.Caller) -> list[str]:
    access.require_admin(caller)
    return list(events.CATALOGUE)


def _networks(ctx: Context) -> list[rules.Network]:
    return rules.parse_networks(ctx.settings.current.broker.webhook_denied_networks)


async def _check_filters(tx: db.Tx, filters: wire.WebhookFilters | None) -> None:
    problems: dict[str, str] = {}
    if filters is None:
        return
    if filters.agent_id is not None and await db.agents.get(tx, filters.agent_id) is None:
        problems["filters.agent_id"] = "names no live agent"
    if filters.stack_id is not None and await db.stacks.get(tx, filters.stack_id) is None:
        problems["filters.stack_id"] = "names no live stack"
    if problems:
        raise errors.ValidationFailed(problems)


def _encrypted(ctx: Context, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with URL, auth header and secret replaced by their ciphertext columns."""
    stored = {key: value for key, value in values.items() if key not in _ENCRYPTED}
    for field, column in _ENCRYPTED.items():
        if field in values:
            plaintext = values[field]
            stored[column] = None if plaintext is None else ctx.secrets.encrypt(plaintext)
    return stored


async def create(
    ctx: Context, *, caller: access.Caller, request: wire.CreateWebhookRequest
) -> wire.WebhookResponse:
    access.require_admin(caller)
    new = rules.validate_create(request, _networks(ctx))
    values = _encrypted(
        ctx,
        {
            "name": new.name,
            "url": new.url,
            "auth_header": new.auth_header,
            "secret": new.secret,
            "event_types": new.event_types,
            "filters": new.filters,
            "target_labels": new.target_labels,
            "max_retries": new.max_retries,
            "timeout_seconds": new.timeout_seconds,
        },
    )
    async with ctx.work(caller) as w:
        await _check_filters(w.tx, new.filters)
        created = await db.webhooks.insert(w.tx, values, created_by=caller.role.value, now=w.now)
        details = {"name": new.name, "event_types": new.event_types}
        await w.audit("webhook.created", RESOURCE, created.id, details)
    return created.response()


async def list_all(ctx: Context, *, caller: access.Caller) -> list[wire.WebhookResponse]:
    access.require_admin(caller)
    async with ctx.database.read() as tx:
        return [subscription.response() for subscription in await db.webhooks.list_all(tx)]


async def get(
    ctx: Context, *, caller: access.Caller, subscription_id: UUID
) -> wire.WebhookResponse:
    access.require_admin(caller)
    async with ctx.database.read() as tx:
        subscription = await db.webhooks.get(tx, subscription_id)
    if subscription is None:
        raise errors.WebhookNotFound(subscription_id)
    return subscription.response()


async def update(
    ctx: Context,
    *,
    caller: access.Caller,
    subscription_id: UUID,
    request: wire.UpdateWebhookRequest,
) -> wire.WebhookResponse:
    """Only the fields sent change; ``null`` clears auth header, secret, filters and target
    labels. An empty body changes nothing (and still answers the subscription)."""
    access.require_admin(caller)
    changes = rules.validate_update(request, _networks(ctx))
    stored = _encrypted(ctx, changes)
    async with ctx.work(caller) as w:
        updated = await db.webhooks.get(w.tx, subscription_id, for_update=True)
        if updated is None:
            raise errors.WebhookNotFound(subscription_id)
        await _check_filters(w.tx, changes.get("filters"))
        if stored:
            updated = await db.webhooks.update(w.tx, subscription_id, stored, now=w.now)
        if updated is None:  # deleted meanwhile (SQLite takes no row lock)
            raise errors.WebhookNotFound(subscription_id)
        await w.audit("webhook.updated", RESOURCE, subscription_id, {"fields": sorted(changes)})
    return updated.response()


async def delete(ctx: Context, *, caller: access.Caller, subscription_id: UUID) -> None:
    """Gone at once with every delivery still queued for it."""
    access.require_admin(caller)
    async with ctx.work(caller) as w:
        if not await db.webhooks.delete(w.tx, subscription_id):
            raise errors.WebhookNotFound(subscription_id)
        await w.audit("webhook.deleted", RESOURCE, subscription_id)


async def test(
    ctx: Context, *, caller: access.Caller, subscription_id: UUID
) -> wire.WebhookTestResponse:
    """POST a ``webhook.test`` envelope to the subscription's URL now (even when disabled),
    with the headers every delivery carries; nothing is queued. The attempt is audited."""
    access.require_admin(caller)
    async with ctx.database.read() as tx:
        subscription = await db.webhooks.get(tx, subscription_id)
    if subscription is None:
        raise errors.WebhookNotFound(subscription_id)
    outcome: wire.WebhookTestResponse | errors.WebhookTestFailed
    try:
        outcome = await _send_test(ctx, subscription)
    except errors.WebhookTestFailed as failed:
        outcome = failed
    async with ctx.work(caller) as w:
        details: dict[str, Any] = {"success": isinstance(outcome, wire.WebhookTestResponse)}
        if isinstance(outcome, wire.WebhookTestResponse):
            details["status_code"] = outcome.status_code
        elif outcome.details is not None:
            details["status_code"] = outcome.details["status_code"]
        await w.audit("webhook.tested", RESOURCE, subscription_id, details)
    if isinstance(outcome, errors.WebhookTestFailed):
        raise outcome
    return outcome


async def denied_destination(ctx: Context, url: str) -> bool:
    """Whether ``url``'s host is, or resolves to, an address in a denied network (checked at
    sending time: a host name may resolve anywhere, and the deny-list may have changed)."""
    networks = _networks(ctx)
    host = urlsplit(url).hostname or ""
    if not networks or not host:
        return False
    if rules.denied(host, networks):
        return True
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False  # the request itself will fail and say so
    return any(rules.denied(str(info[4][0]), networks) for info in infos)


async def _send_test(
    ctx: Context, subscription: db.webhooks.Subscription
) -> wire.WebhookTestResponse:
    try:
        url = ctx.secrets.decrypt(subscription.url_encrypted)
        auth = _decrypt(ctx, subscription.auth_header_encrypted)
        secret = _decrypt(ctx, subscription.secret_encrypted)
    except secrets.SecretUnreadable as exc:
        raise errors.WebhookTestFailed(f"the subscription cannot be decrypted: {exc}") from None
    if await denied_destination(ctx, url):
        raise errors.WebhookTestFailed(
            "the URL points into a network denied by broker.webhook_denied_networks"
        )
    envelope = events.Envelope(
        id=uuid.uuid4(),
        event_type=events.TEST,
        timestamp=ctx.now(),
        data={"message": TEST_MESSAGE, "subscription_id": str(subscription.id)},
    )
    body = msgspec.json.encode(envelope)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Brokkr-Event": events.TEST,
        "X-Brokkr-Delivery-Id": str(uuid.uuid4()),
    }
    if secret is not None:
        headers[signing.HEADER] = signing.sign(secret, body)
    if auth is not None:
        headers["Authorization"] = auth
    seconds = subscription.timeout_seconds
    try:
        # The subscription's timeout bounds the whole exchange, not each read: a receiver
        # trickling its answer must not hold the request open.
        async with (
            asyncio.timeout(seconds),
            httpx.AsyncClient(timeout=seconds, follow_redirects=False) as client,
            client.stream("POST", url, content=body, headers=headers) as response,
        ):
            shown = await _start_of(response)
    except (TimeoutError, httpx.TimeoutException):
        raise errors.WebhookTestFailed(f"request failed: no answer within {seconds} s") from None
    except httpx.HTTPError as exc:
        problem = str(exc).replace(url, "<url>") or type(exc).__name__
        raise errors.WebhookTestFailed(f"request failed: {problem}") from None
    if not 200 <= response.status_code < 300:
        raise errors.WebhookTestFailed(
            f"endpoint returned HTTP {response.status_code} {response.reason_phrase}".rstrip(),
            status_code=response.status_code,
            body=shown,
        )
    return wire.WebhookTestResponse(
        success=True, status_code=response.status_code, message="Test delivery successful"
    )


def _decrypt(ctx: Context, blob: bytes | None) -> str | None:
    return None if blob is None else ctx.secrets.decrypt(blob)


async def _start_of(response: httpx.Response) -> str:
    """The first characters of the answer, reading no more of it than they need."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= _BODY_SHOWN * 4:
            break
    return b"".join(chunks).decode(errors="replace")[:_BODY_SHOWN]
