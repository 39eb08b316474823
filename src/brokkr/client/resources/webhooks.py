"""/webhooks: subscriptions to the broker's events, their deliveries, and the agent-side
delivery exchange (an agent claims the deliveries addressed to its labels and reports each
outcome)."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Sequence
from typing import Any
from uuid import UUID

from brokkr.client.blocking import Blocking, blocking, collecting
from brokkr.client.http import Http
from brokkr.common import wire

PATH = "/api/v1/webhooks"
PAGE = 50


class Webhooks:
    def __init__(self, http: Http) -> None:
        self._http = http

    async def list(self) -> builtins.list[wire.WebhookResponse]:
        """Every subscription (enabled or not), newest first (admins)."""
        return await self._http.call("GET", PATH, builtins.list[wire.WebhookResponse])

    async def create(
        self,
        *,
        name: str,
        url: str,
        event_types: Sequence[str],
        auth_header: str | None = None,
        secret: str | None = None,
        filters: wire.WebhookFilters | None = None,
        target_labels: Sequence[str] | None = None,
        max_retries: int | None = None,
        timeout_seconds: int | None = None,
    ) -> wire.WebhookResponse:
        """Subscribe ``url`` to the events matching any of ``event_types`` (``*``, ``stack.*``
        or exact names). ``secret`` signs every delivery; ``target_labels`` hands delivery to
        agents carrying all those labels. URL, auth header and secret are never returned."""
        body = wire.CreateWebhookRequest(
            name=name,
            url=url,
            event_types=builtins.list(event_types),
            auth_header=auth_header,
            secret=secret,
            filters=filters,
            target_labels=builtins.list(target_labels) if target_labels is not None else None,
            max_retries=max_retries,
            timeout_seconds=timeout_seconds,
        )
        return await self._http.call("POST", PATH, wire.WebhookResponse, json=body)

    async def get(self, webhook_id: UUID) -> wire.WebhookResponse:
        return await self._http.call("GET", f"{PATH}/{webhook_id}", wire.WebhookResponse)

    async def update(
        self,
        webhook_id: UUID,
        *,
        name: str | None = None,
        url: str | None = None,
        event_types: Sequence[str] | None = None,
        auth_header: str | None = None,
        secret: str | None = None,
        filters: wire.WebhookFilters | None = None,
        target_labels: Sequence[str] | None = None,
        enabled: bool | None = None,
        max_retries: int | None = None,
        timeout_seconds: int | None = None,
        clear_auth_header: bool = False,
        clear_secret: bool = False,
        clear_filters: bool = False,
        clear_target_labels: bool = False,
    ) -> wire.WebhookResponse:
        """Change only what is given (None leaves a field as it is); ``clear_*`` removes the
        auth header, the signing secret, the filters or the target labels."""
        changes: dict[str, Any] = {
            "name": name,
            "url": url,
            "event_types": builtins.list(event_types) if event_types is not None else None,
            "enabled": enabled,
            "max_retries": max_retries,
            "timeout_seconds": timeout_seconds,
        }
        clearable: dict[str, tuple[Any, bool]] = {
            "auth_header": (auth_header, clear_auth_header),
            "secret": (secret, clear_secret),
            "filters": (filters, clear_filters),
            "target_labels": (
                builtins.list(target_labels) if target_labels is not None else None,
                clear_target_labels,
            ),
        }
        fields = {key: value for key, value in changes.items() if value is not None}
        for key, (value, clear) in clearable.items():
            if clear and value is not None:
                raise ValueError(f"{key} given and cleared at once")
            if clear:
                fields[key] = None
            elif value is not None:
                fields[key] = value
        body = wire.UpdateWebhookRequest(**fields)
        return await self._http.call("PUT", f"{PATH}/{webhook_id}", wire.WebhookResponse, json=body)

    async def delete(self, webhook_id: UUID) -> None:
        """Delete the subscription and every delivery of it."""
        await self._http.send("DELETE", f"{PATH}/{webhook_id}")

    async def event_types(self) -> builtins.list[str]:
        """The catalogue of event types a subscription may name."""
        return await self._http.call("GET", f"{PATH}/event-types", builtins.list[str])

    async def test(self, webhook_id: UUID) -> wire.WebhookTestResponse:
        """POST a ``webhook.test`` envelope to the subscription's URL now; a receiver that
        answers other than 2xx (or not at all) raises ``BadRequest`` naming what it said."""
        return await self._http.call("POST", f"{PATH}/{webhook_id}/test", wire.WebhookTestResponse)

    async def deliveries(
        self,
        webhook_id: UUID,
        *,
        status: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> builtins.list[wire.WebhookDelivery]:
        """One page of the subscription's deliveries, newest first, optionally of one
        ``status`` (pending, acquired, success, failed, dead)."""
        params = {"status": status, "limit": limit, "offset": offset}
        return await self._http.call(
            "GET",
            f"{PATH}/{webhook_id}/deliveries",
            builtins.list[wire.WebhookDelivery],
            params=params,
        )

    async def iterate_deliveries(
        self, webhook_id: UUID, *, status: str | None = None, page: int = PAGE
    ) -> AsyncIterator[wire.WebhookDelivery]:
        """Every delivery of the subscription, newest first, fetched page by page."""
        async for batch in self._http.pages(
            f"{PATH}/{webhook_id}/deliveries",
            builtins.list[wire.WebhookDelivery],
            params={"status": status, "limit": page},
        ):
            for delivery in batch:
                yield delivery

    async def pending(self, agent_id: UUID) -> builtins.list[wire.PendingWebhookDelivery]:
        """Agents: claim the deliveries addressed to this agent's labels (each is this agent's
        to POST and report until its claim expires)."""
        return await self._http.call(
            "GET",
            f"/api/v1/agents/{agent_id}/webhooks/pending",
            builtins.list[wire.PendingWebhookDelivery],
        )

    async def report_result(
        self,
        delivery_id: UUID,
        *,
        success: bool,
        status_code: int | None = None,
        error: str | None = None,
        duration_ms: int | None = None,
    ) -> wire.DeliveryResultResponse:
        """Agents: the outcome of POSTing a claimed delivery; the broker schedules any retry."""
        body = wire.DeliveryResultRequest(
            success=success, status_code=status_code, error=error, duration_ms=duration_ms
        )
        return await self._http.call(
            "POST",
            f"/api/v1/webhook-deliveries/{delivery_id}/result",
            wire.DeliveryResultResponse,
            json=body,
        )


class BlockingWebhooks(Blocking[Webhooks]):
    list = blocking(Webhooks.list)
    create = blocking(Webhooks.create)
    get = blocking(Webhooks.get)
    update = blocking(Webhooks.update)
    delete = blocking(Webhooks.delete)
    event_types = blocking(Webhooks.event_types)
    test = blocking(Webhooks.test)
    deliveries = blocking(Webhooks.deliveries)
    iterate_deliveries = collecting(Webhooks.iterate_deliveries)
    pending = blocking(Webhooks.pending)
    report_result = blocking(Webhooks.report_result)
