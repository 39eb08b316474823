"""/agents: registration, search, lookup, update, deletion, heartbeat and PAK rotation."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, Response, Router, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from brokkr.broker import services
from brokkr.broker.api import responses, security
from brokkr.broker.api.dependencies import CallerDep, ContextDep
from brokkr.broker.domain import paging
from brokkr.common import wire


@get(
    "/agents",
    operation_id="list_agents",
    summary="List agents, or find one by name and cluster",
    description=(
        "`GET /agents` lists every live agent (admin). `GET /agents/?name=…&cluster_name=…` "
        "(note the trailing slash, as in the reference) returns the one agent with that name "
        "in that cluster: admins see any agent, an agent only itself. Agents use it at "
        "start-up to find their id. The list is oldest first; a page ends at `limit` or at "
        "the byte budget (`X-Next-Offset` gives the rest)."
    ),
    security=security.ADMIN_AGENT,
    responses=responses.errors(400, 404),
    response_headers=responses.PAGE_HEADERS,
    tags=["agents"],
)
async def list_or_search_agents(
    request: Request[Any, Any, Any],
    ctx: ContextDep,
    caller: CallerDep,
    name: FromQuery[str | None] = None,
    cluster_name: FromQuery[str | None] = None,
    limit: responses.WholeLimit = paging.MAX_LIMIT,
    offset: responses.Offset = 0,
) -> Response[list[wire.Agent] | wire.Agent]:
    if request.scope.get("raw_path", b"").endswith(b"/"):
        found_one = await services.agents.search(
            ctx, caller=caller, name=name, cluster_name=cluster_name
        )
        return Response(found_one)
    found = await services.agents.list_all(ctx, caller=caller, limit=limit, offset=offset)
    return Response(found.items, headers=responses.next_page(request, found.next_offset))


@post(
    "/agents",
    operation_id="create_agent",
    summary="Register an agent",
    description="Creates an INACTIVE agent and returns its PAK once (`initial_pak`). Admin only.",
    security=security.ADMIN,
    responses=responses.errors(409, 422),
    tags=["agents"],
)
async def create_agent(
    ctx: ContextDep, caller: CallerDep, data: JSONBody[wire.NewAgent]
) -> wire.CreateAgentResponse:
    return await services.agents.create(ctx, caller=caller, new=data)


@get(
    "/agents/{id:uuid}",
    operation_id="get_agent",
    summary="Get an agent",
    security=security.ADMIN_AGENT,
    responses=responses.errors(404),
    tags=["agents"],
)
async def get_agent(ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]) -> wire.Agent:
    return await services.agents.get(ctx, caller=caller, agent_id=id)


@put(
    "/agents/{id:uuid}",
    operation_id="update_agent",
    summary="Update an agent",
    description=(
        "Partial update of `name`, `cluster_name`, `status` (`ACTIVE`/`INACTIVE`). Only admins may "
        "change them; an agent sending its own current values is a no-op. Other fields are ignored."
    ),
    security=security.ADMIN_AGENT,
    responses=responses.errors(404, 409, 422),
    tags=["agents"],
)
async def update_agent(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID], data: JSONBody[wire.AgentUpdate]
) -> wire.Agent:
    return await services.agents.update(ctx, caller=caller, agent_id=id, update=data)


@delete(
    "/agents/{id:uuid}",
    operation_id="delete_agent",
    summary="Delete an agent",
    description="Soft delete; the agent's PAK stops working at once. Deleting twice is a no-op.",
    security=security.ADMIN,
    responses=responses.errors(404),
    tags=["agents"],
)
async def delete_agent(ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]) -> None:
    await services.agents.delete(ctx, caller=caller, agent_id=id)


@post(
    "/agents/{id:uuid}/heartbeat",
    operation_id="record_heartbeat",
    summary="Record a heartbeat",
    description="Sets `last_heartbeat`. Only the agent itself may call it.",
    status_code=204,
    security=security.AGENT,
    responses=responses.errors(404),
    tags=["agents"],
)
async def record_heartbeat(ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]) -> None:
    await services.agents.record_heartbeat(ctx, caller=caller, agent_id=id)


@post(
    "/agents/{id:uuid}/rotate-pak",
    operation_id="rotate_agent_pak",
    summary="Rotate an agent's PAK",
    description=(
        "Returns the new PAK once; the old one stops working at once. "
        "Answers 200, as the reference."
    ),
    status_code=200,
    security=security.ADMIN_AGENT,
    responses=responses.errors(404),
    tags=["agents"],
)
async def rotate_agent_pak(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> wire.RotateAgentPakResponse:
    return await services.agents.rotate_pak(ctx, caller=caller, agent_id=id)


router = Router(
    path="/",
    route_handlers=[
        list_or_search_agents,
        create_agent,
        get_agent,
        update_agent,
        delete_agent,
        record_heartbeat,
        rotate_agent_pak,
    ],
)
