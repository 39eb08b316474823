"""/webhooks: subscriptions, the event catalogue and test deliveries (admins only, D10, D18)."""

from __future__ import annotations

from uuid import UUID

from litestar import Router, delete, get, post, put
from litestar.params import FromPath, JSONBody

from brokkr.broker import services
from brokkr.broker.api import responses, security
from brokkr.broker.api.dependencies import CallerDep, ContextDep
from brokkr.common import wire

TAGS = ["webhooks"]
_RULES = (
    "`name` 1-255 characters; `url` http(s) with a host, at most 2048 characters (a literal IP "
    "address inside `broker.webhook_denied_networks` is refused); `event_types` 1-50 patterns, "
    "each `*`, `<prefix>.*` of a catalogue family or a catalogue name (GET "
    "/webhooks/event-types); `auth_header` (sent as `Authorization`) at most 4096 characters "
    "without CR/LF; `secret` 16-512 characters, signs every delivery "
    "(`X-Brokkr-Signature: sha256=<hex HMAC-SHA256 of the body>`); `filters.agent_id` / "
    "`filters.stack_id` must name live ones, `filters.labels` (at most 20 key/value pairs) "
    "match annotations of the event's agent or stack; `target_labels` (at most 20) hand "
    "delivery to an agent carrying all of them; `max_retries` 0-20 retries after the first "
    "attempt (default 5); `timeout_seconds` 1-60 (default 30). Every problem is reported at "
    "once: 422 `validation_failed` naming the fields. URL, auth header and secret are stored "
    "encrypted and never answered (`has_url`, `has_auth_header`, `has_secret`)."
)


@get(
    "/webhooks",
    operation_id="list_webhooks",
    summary="Every webhook subscription, newest first",
    description="Enabled and disabled ones; `filters` is left out when a subscription has none.",
    security=security.ADMIN,
    responses=responses.errors(),
    tags=TAGS,
)
async def list_webhooks(ctx: ContextDep, caller: CallerDep) -> list[wire.WebhookResponse]:
    return await services.webhooks.list_all(ctx, caller=caller)


@post(
    "/webhooks",
    operation_id="create_webhook",
    summary="Subscribe a URL to events",
    description=f"{_RULES} `validate` is accepted and ignored (use the test endpoint).",
    status_code=201,
    security=security.ADMIN,
    responses=responses.errors(400, 422),
    tags=TAGS,
)
async def create_webhook(
    ctx: ContextDep, caller: CallerDep, data: JSONBody[wire.CreateWebhookRequest]
) -> wire.WebhookResponse:
    return await services.webhooks.create(ctx, caller=caller, request=data)


@get(
    "/webhooks/event-types",
    operation_id="list_event_types",
    summary="The event types a subscription may name",
    description=(
        "The reference's twelve in their order, then `template.created`, `template.updated` "
        "and `template.deleted`."
    ),
    security=security.ADMIN,
    responses=responses.errors(),
    tags=TAGS,
)
async def list_event_types(caller: CallerDep) -> list[str]:
    return services.webhooks.event_types(caller)


@get(
    "/webhooks/{id:uuid}",
    operation_id="get_webhook",
    summary="One webhook subscription",
    security=security.ADMIN,
    responses=responses.errors(404),
    tags=TAGS,
)
async def get_webhook(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> wire.WebhookResponse:
    return await services.webhooks.get(ctx, caller=caller, subscription_id=id)


@put(
    "/webhooks/{id:uuid}",
    operation_id="update_webhook",
    summary="Change a webhook subscription",
    description=(
        "Partial: absent fields stay as they are; `null` clears `auth_header`, `secret`, "
        "`filters` and `target_labels`; `{}` changes nothing. Fields sent follow the create "
        f"rules: {_RULES} Disabling keeps deliveries already queued."
    ),
    security=security.ADMIN,
    responses=responses.errors(400, 404, 422),
    tags=TAGS,
)
async def update_webhook(
    ctx: ContextDep,
    caller: CallerDep,
    id: FromPath[UUID],
    data: JSONBody[wire.UpdateWebhookRequest],
) -> wire.WebhookResponse:
    return await services.webhooks.update(ctx, caller=caller, subscription_id=id, request=data)


@delete(
    "/webhooks/{id:uuid}",
    operation_id="delete_webhook",
    summary="Delete a webhook subscription",
    description="Hard delete; deliveries still queued for it are deleted with it.",
    security=security.ADMIN,
    responses=responses.errors(404),
    tags=TAGS,
)
async def delete_webhook(ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]) -> None:
    await services.webhooks.delete(ctx, caller=caller, subscription_id=id)


@post(
    "/webhooks/{id:uuid}/test",
    operation_id="test_webhook",
    summary="Send a test delivery now",
    description=(
        "POSTs a `webhook.test` envelope (`data`: `message`, `subscription_id`) to the "
        "subscription's URL, even when disabled, with the headers of every delivery "
        "(`X-Brokkr-Event`, a fresh `X-Brokkr-Delivery-Id`, `X-Brokkr-Signature` when it has a "
        "secret, `Authorization` when it has an auth header) and its timeout; redirects are "
        "not followed and nothing is queued. A 2xx answers 200; anything else is 400 "
        "`webhook_test_failed` (`details.status_code` and the first 500 characters of "
        "`details.body` when the endpoint answered)."
    ),
    status_code=200,
    security=security.ADMIN,
    responses=responses.errors(400, 404),
    tags=TAGS,
)
async def test_webhook(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> wire.WebhookTestResponse:
    return await services.webhooks.test(ctx, caller=caller, subscription_id=id)


router = Router(
    path="/",
    route_handlers=[
        list_webhooks,
        create_webhook,
        list_event_types,
        get_webhook,
        update_webhook,
        delete_webhook,
        test_webhook,
    ],
)
