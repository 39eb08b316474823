"""/work-orders, /agents/{agent_id}/work-orders/pending and /work-order-log (D17)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Response, Router, delete, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from brokkr.broker import services
from brokkr.broker.api import responses, security
from brokkr.broker.api.dependencies import CallerDep, ContextDep
from brokkr.common import wire

WorkType = Annotated[str | None, QueryParameter(description="Only orders of this work type.")]
TAGS = ["work-orders"]


@get(
    "/work-orders",
    operation_id="list_work_orders",
    summary="The active queue, newest first",
    description="Orders that are PENDING, CLAIMED or RETRY_PENDING; finished ones are in the log.",
    security=security.ADMIN,
    responses=responses.errors(400),
    tags=TAGS,
)
async def list_work_orders(
    ctx: ContextDep,
    caller: CallerDep,
    status: Annotated[str | None, QueryParameter(description="Only orders in this status.")] = None,
    work_type: WorkType = None,
) -> list[wire.WorkOrder]:
    return await services.work_orders.list_orders(
        ctx, caller=caller, status=status, work_type=work_type
    )


@post(
    "/work-orders",
    operation_id="create_work_order",
    summary="Queue a work order",
    description=(
        "Routed by `targeting` (agent ids, labels, annotation pairs; any one match is enough) "
        "and the legacy `target_agent_ids`. No targeting is 400 `no_targeting_specified`; an "
        "invalid label or annotation (1-64 characters, no whitespace) is 422 "
        "`invalid_targeting` listing every one; an agent id naming no live agent is 422 "
        "`unknown_target_agents`. Defaults: `max_retries` 3 (0-20), `backoff_seconds` 60, "
        "`claim_timeout_seconds` 3600."
    ),
    status_code=201,
    security=security.ADMIN,
    responses=responses.errors(400, 422),
    tags=TAGS,
)
async def create_work_order(
    ctx: ContextDep, caller: CallerDep, data: JSONBody[wire.CreateWorkOrderRequest]
) -> wire.WorkOrder:
    return await services.work_orders.create(ctx, caller=caller, request=data)


@get(
    "/work-orders/{id:uuid}",
    operation_id="get_work_order",
    summary="One work order",
    description="A finished order is read from the log with status COMPLETED or FAILED.",
    security=security.ADMIN,
    responses=responses.errors(404),
    tags=TAGS,
)
async def get_work_order(ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]) -> wire.WorkOrder:
    return await services.work_orders.get(ctx, caller=caller, order_id=id)


@delete(
    "/work-orders/{id:uuid}",
    operation_id="delete_work_order",
    summary="Cancel a work order",
    description="Removes an active order in any state; finished orders stay in the log (404).",
    security=security.ADMIN,
    responses=responses.errors(404),
    tags=TAGS,
)
async def delete_work_order(ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]) -> None:
    await services.work_orders.delete(ctx, caller=caller, order_id=id)


@get(
    "/agents/{agent_id:uuid}/work-orders/pending",
    operation_id="list_pending_for_agent",
    summary="PENDING orders an agent may claim, oldest first",
    security=security.ADMIN_AGENT,
    responses=responses.errors(400),
    tags=TAGS,
)
async def list_pending_for_agent(
    ctx: ContextDep, caller: CallerDep, agent_id: FromPath[UUID], work_type: WorkType = None
) -> list[wire.WorkOrder]:
    return await services.work_orders.list_pending(
        ctx, caller=caller, agent_id=agent_id, work_type=work_type
    )


@post(
    "/work-orders/{id:uuid}/claim",
    operation_id="claim_work_order",
    summary="Claim a PENDING work order",
    description=(
        "The agent itself (or an admin on its behalf). Atomic: of concurrent claimers exactly "
        "one wins; the others, like an agent the order does not target or an order that is "
        "not PENDING, get 404 `work_order_not_claimable`."
    ),
    status_code=200,
    security=security.ADMIN_AGENT,
    responses=responses.errors(404, 422),
    tags=TAGS,
)
async def claim_work_order(
    ctx: ContextDep,
    caller: CallerDep,
    id: FromPath[UUID],
    data: JSONBody[wire.ClaimWorkOrderRequest],
) -> wire.WorkOrder:
    return await services.work_orders.claim(ctx, caller=caller, order_id=id, request=data)


@post(
    "/work-orders/{id:uuid}/complete",
    operation_id="complete_work_order",
    summary="Report a claimed work order's outcome",
    description=(
        "Only the agent holding the claim (or an admin), only while CLAIMED (409 "
        "`work_order_not_claimed`). Success or a final failure moves the order to the log "
        "(200, the log entry). A `retryable` failure (the default) with retries left answers "
        '`202 {"status": "retry_scheduled"}`: the order waits `backoff_seconds × 2^n` before '
        "the n-th retry. A claim released as stale is no longer this agent's (403)."
    ),
    status_code=200,
    security=security.ADMIN_AGENT,
    responses=responses.errors(404, 409, 422),
    tags=TAGS,
)
async def complete_work_order(
    ctx: ContextDep,
    caller: CallerDep,
    id: FromPath[UUID],
    data: JSONBody[wire.CompleteWorkOrderRequest],
) -> Response[wire.WorkOrderLog | wire.WorkOrderRetryScheduled]:
    outcome = await services.work_orders.complete(ctx, caller=caller, order_id=id, request=data)
    if isinstance(outcome, wire.WorkOrderRetryScheduled):
        return Response(outcome, status_code=202)
    return Response(outcome)


@get(
    "/work-order-log",
    operation_id="list_work_order_log",
    summary="Finished work orders, newest first",
    description=(
        "`limit` defaults to `limits.work_order_log_default_limit` (100) and may not exceed "
        "`limits.work_order_log_max_limit` (1000; 400 `invalid_parameter`)."
    ),
    security=security.ADMIN,
    responses=responses.errors(400),
    tags=TAGS,
)
async def list_work_order_log(
    ctx: ContextDep,
    caller: CallerDep,
    work_type: WorkType = None,
    success: Annotated[bool | None, QueryParameter(description="Only successes/failures.")] = None,
    agent_id: Annotated[
        UUID | None, QueryParameter(description="Only orders this agent completed.")
    ] = None,
    limit: Annotated[int | None, QueryParameter(description="At most this many entries.")] = None,
) -> list[wire.WorkOrderLog]:
    return await services.work_orders.list_log(
        ctx, caller=caller, work_type=work_type, success=success, agent_id=agent_id, limit=limit
    )


@get(
    "/work-order-log/{id:uuid}",
    operation_id="get_work_order_log",
    summary="One finished work order",
    security=security.ADMIN,
    responses=responses.errors(404),
    tags=TAGS,
)
async def get_work_order_log(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> wire.WorkOrderLog:
    return await services.work_orders.get_log_entry(ctx, caller=caller, entry_id=id)


router = Router(
    path="/",
    route_handlers=[
        list_work_orders,
        create_work_order,
        get_work_order,
        delete_work_order,
        list_pending_for_agent,
        claim_work_order,
        complete_work_order,
        list_work_order_log,
        get_work_order_log,
    ],
)
