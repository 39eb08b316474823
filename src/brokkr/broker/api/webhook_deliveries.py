"""/webhooks/{id}/deliveries and the agent side of webhook delivery (D18):
/agents/{agent_id}/webhooks/pending and /webhook-deliveries/{id}/result."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Request, Response, Router, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from brokkr.broker import services
from brokkr.broker.api import responses, security
from brokkr.broker.api.dependencies import CallerDep, ContextDep
from brokkr.broker.domain import paging
from brokkr.broker.domain import webhook_delivery as rules
from brokkr.broker.services.webhook_deliveries import DEFAULT_LIMIT
from brokkr.common import wire

TAGS = ["webhooks"]

Limit = Annotated[
    int,
    QueryParameter(
        ge=1,
        le=paging.MAX_OFFSET,
        description=f"Page size (default {DEFAULT_LIMIT}, capped at {paging.MAX_LIMIT}).",
    ),
]
Status = Annotated[
    str | None,
    QueryParameter(description=f"Only deliveries in this status: {', '.join(rules.STATUSES)}."),
]


@get(
    "/webhooks/{id:uuid}/deliveries",
    operation_id="list_deliveries",
    summary="A subscription's deliveries, newest first",
    description=(
        "An unknown `status` is 400 `invalid_parameter`; an unknown subscription 404 "
        "`webhook_not_found`. A page ends at `limit` or at the byte budget (`X-Next-Offset` "
        "gives the rest). `payload` is the envelope exactly as sent."
    ),
    security=security.ADMIN,
    responses=responses.errors(400, 404),
    response_headers=responses.PAGE_HEADERS,
    tags=TAGS,
)
async def list_webhook_deliveries(
    request: Request[Any, Any, Any],
    ctx: ContextDep,
    caller: CallerDep,
    id: FromPath[UUID],
    status: Status = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: responses.Offset = 0,
) -> Response[list[wire.WebhookDelivery]]:
    found = await services.webhook_deliveries.list_for_subscription(
        ctx, caller=caller, subscription_id=id, status=status, limit=limit, offset=offset
    )
    return responses.page(request, found)


@get(
    "/agents/{agent_id:uuid}/webhooks/pending",
    operation_id="get_pending_agent_webhooks",
    summary="Claim the webhook deliveries this agent is to send",
    description=(
        "Not a plain read: atomically claims up to 10 due deliveries (new, retries whose wait "
        "is over, or claims that expired) of subscriptions whose `target_labels` the agent all "
        "carries, oldest first, for the subscription's `timeout_seconds` plus "
        f"{rules.CLAIM_MARGIN_SECONDS} s. Concurrent callers get disjoint "
        "deliveries. The answer is the only place a subscription's URL and auth header leave "
        "the broker; `signature` is the `X-Brokkr-Signature` value to send (null without a "
        "secret). The agent itself or an admin on its behalf (else 403 "
        "`agent_pak_mismatch`); an unknown agent is 404 `agent_not_found`."
    ),
    security=security.ADMIN_AGENT,
    responses=responses.errors(404),
    tags=TAGS,
)
async def claim_pending_webhook_deliveries(
    ctx: ContextDep, caller: CallerDep, agent_id: FromPath[UUID]
) -> list[wire.PendingWebhookDelivery]:
    return await services.webhook_deliveries.pending_for_agent(
        ctx, caller=caller, agent_id=agent_id
    )


@post(
    "/webhook-deliveries/{id:uuid}/result",
    operation_id="report_delivery_result",
    summary="Report what sending a claimed delivery did",
    description=(
        "Only the agent holding the delivery's unexpired claim (others 403 "
        "`delivery_not_acquired_by_agent`; admins and generators 403 `agent_pak_required`; "
        "unknown 404 `delivery_not_found`). A failure is retried with exponential backoff and "
        "jitter until the subscription's `max_retries` retries are spent; a 4xx "
        "`status_code` other than 408 and 429 is dead at once. `status_code` 100-599, "
        f"`error` at most {rules.MAX_REPORTED_ERROR_CHARS} characters, `duration_ms` not "
        "negative (else 422 `validation_failed`)."
    ),
    status_code=200,
    security=security.AGENT,
    responses=responses.errors(404, 422),
    tags=TAGS,
)
async def report_webhook_delivery_result(
    ctx: ContextDep,
    caller: CallerDep,
    id: FromPath[UUID],
    data: JSONBody[wire.DeliveryResultRequest],
) -> wire.DeliveryResultResponse:
    return await services.webhook_deliveries.report(
        ctx, caller=caller, delivery_id=id, request=data
    )


router = Router(
    path="/",
    route_handlers=[
        list_webhook_deliveries,
        claim_pending_webhook_deliveries,
        report_webhook_delivery_result,
    ],
)
