"""/agents/{id}/health-status, /deployment-objects/{id}/health and /stacks/{id}/health."""

from __future__ import annotations

from uuid import UUID

from litestar import Response, Router, get, patch
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody

from brokkr.broker import services
from brokkr.broker.api import responses, security
from brokkr.broker.api.dependencies import CallerDep, ContextDep
from brokkr.broker.domain import health as rules
from brokkr.common import wire

TAGS = ["health"]
_STALENESS = (
    "A row its agent has not refreshed for `broker.health_stale_after_seconds` (default 180 s, "
    "counted from when the broker received it; 0 disables) reads `status: unknown` with "
    "`stale: true` and the agent's word in `reported_status`."
)


@patch(
    "/agents/{id:uuid}/health-status",
    operation_id="update_health_status",
    summary="Report the agent's latest health per deployment object",
    description=(
        "The agent itself (or an admin for it). Each entry replaces the agent's row for that "
        "object; the answer is 200 with an empty body. The report is checked whole and written "
        "whole: any problem is one 422 `invalid_health_report` whose `details.entries` lists "
        'every problem as `{"index", "id", "reason"}` (`index` and `id` null for the batch as a '
        "whole), so the agent can drop those entries and resend the rest. Problems: `status` not "
        "healthy/degraded/failing/unknown; an id twice; more than "
        "`limits.health_report_max_entries` entries (default and maximum 1000); `checked_at` "
        "without time zone, before 2000 or more than 5 minutes ahead of the broker; negative "
        f"pod counts or `pods_ready` over `pods_total`; more than {rules.MAX_CONDITIONS} "
        "conditions or one "
        f"over {rules.MAX_CONDITION_CHARS} characters; more than {rules.MAX_RESOURCES} "
        f"resources, a kind/name/namespace over {rules.MAX_NAME_CHARS} or a message over "
        f"{rules.MAX_MESSAGE_CHARS} characters; a summary over {rules.MAX_SUMMARY_BYTES} bytes "
        "of compact JSON; an unknown or deleted deployment object, or one not served to this "
        f"agent. Bodies over {rules.REPORT_BODY_BYTES} bytes are a 413. Not audited (telemetry)."
    ),
    status_code=200,
    security=security.ADMIN_AGENT,
    responses={
        200: ResponseSpec(data_container=None, description="Recorded; the body is empty"),
        **responses.errors(404, 413, 422),
    },
    request_max_body_size=rules.REPORT_BODY_BYTES,
    tags=TAGS,
)
async def update_health_status(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID], data: JSONBody[wire.HealthStatusUpdate]
) -> Response[bytes]:
    await services.health.report(ctx, caller=caller, agent_id=id, update=data)
    # The reference answers 200 with no body at all (an empty body is no JSON document).
    return Response(b"", status_code=200, media_type="text/plain")


@get(
    "/deployment-objects/{id:uuid}/health",
    operation_id="get_deployment_health",
    summary="Health of one deployment object, per agent",
    description=(
        "Admins and the generator owning the object's stack; agents get 403 "
        "`health_read_denied`, and an unknown or foreign object is 404. Rows of live agents, "
        "latest `checked_at` first; `overall_status` is the worst of them (failing > degraded "
        "> healthy > unknown; no rows: unknown). " + _STALENESS
    ),
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404),
    tags=TAGS,
)
async def get_deployment_health(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> wire.DeploymentHealthResponse:
    return await services.health.for_deployment_object(ctx, caller=caller, object_id=id)


@get(
    "/stacks/{id:uuid}/health",
    operation_id="get_stack_health",
    summary="Health of a stack's deployment objects",
    description=(
        "Admins and the owning generator; agents get 403 `health_read_denied`, and an unknown, "
        "deleted or foreign stack is 404. One entry per live deployment object with at least "
        "one row from a live agent, newest revision first, counting the agents that report it "
        "healthy, degraded and failing; its `status` and the stack's `overall_status` are the "
        "worst present (failing > degraded > healthy > unknown). Unknown and stale rows are "
        "not counted. " + _STALENESS
    ),
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404),
    tags=TAGS,
)
async def get_stack_health(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> wire.StackHealthResponse:
    return await services.health.for_stack(ctx, caller=caller, stack_id=id)


router = Router(
    path="/", route_handlers=[update_health_status, get_deployment_health, get_stack_health]
)
