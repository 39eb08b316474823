"""/deployment-objects/{id}/diagnostics, /diagnostics/{id} and the agent's
/agents/{id}/diagnostics/pending, /diagnostics/{id}/claim and /diagnostics/{id}/result."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Request, Response, Router, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from brokkr.broker import services
from brokkr.broker.api import bodies, responses, security
from brokkr.broker.api.dependencies import CallerDep, ContextDep
from brokkr.broker.domain import errors, paging
from brokkr.broker.services.diagnostics import DEFAULT_LIMIT
from brokkr.common import wire

TAGS = ["diagnostics"]
# Room in a result body beyond its documents' size limit: the JSON envelope, and the escapes a
# JSON document gains inside a JSON string (every quote travels as two characters).
_ENVELOPE_BYTES = 64 * 1024

Limit = Annotated[
    int,
    QueryParameter(
        ge=1, le=paging.MAX_OFFSET, description="Page size (default 100, capped at 1000)."
    ),
]


@post(
    "/deployment-objects/{id:uuid}/diagnostics",
    operation_id="create_diagnostic_request",
    summary="Ask an agent for a deployment object's diagnostics",
    description=(
        "The agent (`agent_id`) collects the pod statuses, recent events and log tails of the "
        "object's own resources in its cluster. The object must be live (404 "
        "`deployment_object_not_found`); the agent must exist (422 `agent_not_found`) and be "
        "served the object (422 `deployment_object_not_served`). The request waits "
        "`retention_minutes` (1-1440, default 60; else 400 `invalid_diagnostic_request`) to be "
        "claimed, then expires. `requested_by`: free text, at most 255 characters."
    ),
    status_code=201,
    security=security.ADMIN,
    responses=responses.errors(400, 404, 422),
    tags=TAGS,
)
async def create_diagnostic_request(
    ctx: ContextDep,
    caller: CallerDep,
    id: FromPath[UUID],
    data: JSONBody[wire.CreateDiagnosticRequest],
) -> wire.DiagnosticRequest:
    return await services.diagnostics.create(
        ctx, caller=caller, deployment_object_id=id, request=data
    )


@get(
    "/deployment-objects/{id:uuid}/diagnostics",
    operation_id="list_diagnostic_requests",
    summary="A deployment object's diagnostic requests, newest first",
    description=(
        "Also those of a deleted object. A page ends at `limit` or at the byte budget "
        "(`X-Next-Offset` gives the rest); results are read one by one with "
        "`GET /diagnostics/{id}`."
    ),
    security=security.ADMIN,
    responses=responses.errors(400, 404),
    response_headers=responses.PAGE_HEADERS,
    tags=TAGS,
)
async def list_diagnostic_requests(
    request: Request[Any, Any, Any],
    ctx: ContextDep,
    caller: CallerDep,
    id: FromPath[UUID],
    limit: Limit = DEFAULT_LIMIT,
    offset: responses.Offset = 0,
) -> Response[list[wire.DiagnosticRequest]]:
    found = await services.diagnostics.list_for_object(
        ctx, caller=caller, deployment_object_id=id, limit=limit, offset=offset
    )
    return responses.page(request, found)


@get(
    "/diagnostics/{id:uuid}",
    operation_id="get_diagnostic",
    summary="A diagnostic request and, once answered, its result",
    description=(
        "Admins, and the agent the request is for; to anyone else the request does not exist "
        "(404 `diagnostic_not_found`). `result` is left out until the agent answered. "
        "`completed_at` is when the request ended (completed, failed or expired); "
        "`failure_reason` says why a request failed or expired."
    ),
    security=security.ADMIN_AGENT,
    responses=responses.errors(404),
    tags=TAGS,
)
async def get_diagnostic(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> wire.DiagnosticResponse:
    return await services.diagnostics.get(ctx, caller=caller, request_id=id)


@get(
    "/agents/{id:uuid}/diagnostics/pending",
    operation_id="get_pending_diagnostics",
    summary="Diagnostic requests an agent may claim, oldest first",
    description="The agent itself or an admin; at most 100, unexpired and still pending.",
    security=security.ADMIN_AGENT,
    responses=responses.errors(404),
    tags=TAGS,
)
async def get_pending_diagnostics(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> list[wire.DiagnosticRequest]:
    return await services.diagnostics.list_pending(ctx, caller=caller, agent_id=id)


@post(
    "/diagnostics/{id:uuid}/claim",
    operation_id="claim_diagnostic",
    summary="Claim a pending diagnostic request",
    description=(
        "The agent the request is for (or an admin on its behalf). Atomic: of concurrent "
        "claims exactly one succeeds; the others, like a claim of a request that is no longer "
        "pending or has expired, get 409 `diagnostic_already_claimed` "
        '("request is already <status>").'
    ),
    status_code=200,
    security=security.ADMIN_AGENT,
    responses=responses.errors(404, 409),
    tags=TAGS,
)
async def claim_diagnostic(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> wire.DiagnosticRequest:
    return await services.diagnostics.claim(ctx, caller=caller, request_id=id)


@post(
    "/diagnostics/{id:uuid}/result",
    operation_id="submit_diagnostic_result",
    summary="Answer a claimed diagnostic request",
    description=(
        "Only the agent the request is for (an admin gets 403 `diagnostic_not_owned`), only "
        "while it is claimed and only once (409 `diagnostic_not_claimed`). `pod_statuses` and "
        "`events` are non-empty JSON documents, `log_tails` JSON or null (400 "
        "`invalid_diagnostic_result` naming the field); together at most "
        "`limits.diagnostic_result_max_bytes` (413 `diagnostic_result_too_large`); "
        "`collected_at` carries a UTC offset and is not in the future."
    ),
    status_code=201,
    security=security.AGENT,
    responses=responses.errors(400, 404, 409, 413, 422),
    # The limit in force is read when the result arrives (bodies.read_json), not fixed at start.
    request_max_body_size=None,
    tags=TAGS,
)
async def submit_diagnostic_result(
    request: Request[Any, Any, Any], ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> wire.DiagnosticResult:
    limit = ctx.settings.current.limits.diagnostic_result_max_bytes
    result = await bodies.read_json(
        request,
        ctx,
        wire.SubmitDiagnosticResult,
        allowed=2 * limit + _ENVELOPE_BYTES,
        too_large=lambda: errors.DiagnosticResultTooLarge(limit),
    )
    return await services.diagnostics.submit(ctx, caller=caller, request_id=id, result=result)


router = Router(
    path="/",
    route_handlers=[
        create_diagnostic_request,
        list_diagnostic_requests,
        get_diagnostic,
        get_pending_diagnostics,
        claim_diagnostic,
        submit_diagnostic_result,
    ],
)
