"""/agents/{id}/events and /agent-events."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Request, Response, Router, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from brokkr.broker import services
from brokkr.broker.api import responses, security
from brokkr.broker.api.dependencies import CallerDep, ContextDep
from brokkr.broker.domain import paging
from brokkr.broker.services.agent_events import DEFAULT_LIMIT
from brokkr.common import wire

Limit = Annotated[
    int,
    QueryParameter(
        ge=1, le=paging.MAX_OFFSET, description="Page size (default 100, capped at 1000)."
    ),
]


@post(
    "/agents/{id:uuid}/events",
    operation_id="create_event",
    summary="Report the outcome of applying a deployment object",
    description=(
        "Only the agent itself, about a deployment object it is served; `status` is `SUCCESS` or "
        "`FAILURE`. A SUCCESS removes the object from the agent's incremental target state."
    ),
    security=security.AGENT,
    responses=responses.errors(422),
    tags=["agent-events"],
)
async def create_event(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID], data: JSONBody[wire.NewAgentEvent]
) -> wire.AgentEvent:
    return await services.agent_events.record(ctx, caller=caller, agent_id=id, new=data)


@get(
    "/agents/{id:uuid}/events",
    operation_id="list_events",
    summary="An agent's events, newest first",
    description="A page ends at `limit` or at the byte budget (`X-Next-Offset` gives the rest).",
    security=security.ADMIN_AGENT,
    responses=responses.errors(400, 404),
    response_headers=responses.PAGE_HEADERS,
    tags=["agent-events"],
)
async def list_events(
    request: Request[Any, Any, Any],
    ctx: ContextDep,
    caller: CallerDep,
    id: FromPath[UUID],
    limit: Limit = DEFAULT_LIMIT,
    offset: responses.Offset = 0,
) -> Response[list[wire.AgentEvent]]:
    found = await services.agent_events.list_for_agent(
        ctx, caller=caller, agent_id=id, limit=limit, offset=offset
    )
    return responses.page(request, found)


@get(
    "/agent-events",
    operation_id="list_agent_events",
    summary="Agent events, newest first",
    description=(
        "Admins see all events, agents their own, generators those about their stacks. A page "
        "ends at `limit` or at the byte budget (`X-Next-Offset` gives the rest)."
    ),
    security=security.ANY,
    responses=responses.errors(400),
    response_headers=responses.PAGE_HEADERS,
    tags=["agent-events"],
)
async def list_agent_events(
    request: Request[Any, Any, Any],
    ctx: ContextDep,
    caller: CallerDep,
    agent_id: FromQuery[UUID | None] = None,
    deployment_object_id: FromQuery[UUID | None] = None,
    limit: Limit = DEFAULT_LIMIT,
    offset: responses.Offset = 0,
) -> Response[list[wire.AgentEvent]]:
    found = await services.agent_events.search(
        ctx,
        caller=caller,
        agent_id=agent_id,
        deployment_object_id=deployment_object_id,
        limit=limit,
        offset=offset,
    )
    return responses.page(request, found)


@get(
    "/agent-events/{id:uuid}",
    operation_id="get_agent_event",
    summary="Get an agent event",
    security=security.ANY,
    responses=responses.errors(404),
    tags=["agent-events"],
)
async def get_agent_event(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> wire.AgentEvent:
    return await services.agent_events.get(ctx, caller=caller, event_id=id)


router = Router(
    path="/", route_handlers=[create_event, list_events, list_agent_events, get_agent_event]
)
