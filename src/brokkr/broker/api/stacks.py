"""/stacks: the units of desired state that generators own."""

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
    "/stacks",
    operation_id="list_stacks",
    summary="List stacks",
    description=(
        "Admins see every live stack (optionally one generator's); generators their own. Oldest "
        "first; a page ends at `limit` or at the byte budget (`X-Next-Offset` gives the rest)."
    ),
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(400),
    response_headers=responses.PAGE_HEADERS,
    tags=["stacks"],
)
async def list_stacks(
    request: Request[Any, Any, Any],
    ctx: ContextDep,
    caller: CallerDep,
    generator_id: FromQuery[UUID | None] = None,
    limit: responses.WholeLimit = paging.MAX_LIMIT,
    offset: responses.Offset = 0,
) -> Response[list[wire.Stack]]:
    found = await services.stacks.list_all(
        ctx, caller=caller, generator_id=generator_id, limit=limit, offset=offset
    )
    return responses.page(request, found)


@post(
    "/stacks",
    operation_id="create_stack",
    summary="Create a stack",
    description=(
        "Names are unique among live stacks. A generator creates stacks for itself only; "
        "`generator_id` defaults to the caller (admins: the `admin-generator`)."
    ),
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(409, 422),
    tags=["stacks"],
)
async def create_stack(
    ctx: ContextDep, caller: CallerDep, data: JSONBody[wire.NewStack]
) -> wire.Stack:
    return await services.stacks.create(ctx, caller=caller, new=data)


@get(
    "/stacks/{id:uuid}",
    operation_id="get_stack",
    summary="Get a stack",
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404),
    tags=["stacks"],
)
async def get_stack(ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]) -> wire.Stack:
    return await services.stacks.get(ctx, caller=caller, stack_id=id)


@put(
    "/stacks/{id:uuid}",
    operation_id="update_stack",
    summary="Update a stack",
    description=(
        "Partial update of `name` and `description`. A full reference Stack body is accepted: "
        "`id` must equal the path and `generator_id` cannot change (403); timestamps are ignored."
    ),
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404, 409, 422),
    tags=["stacks"],
)
async def update_stack(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID], data: JSONBody[wire.StackUpdate]
) -> wire.Stack:
    return await services.stacks.update(ctx, caller=caller, stack_id=id, update=data)


@delete(
    "/stacks/{id:uuid}",
    operation_id="delete_stack",
    summary="Delete a stack",
    description=(
        "Soft delete. Every agent associated with the stack keeps receiving its deletion marker "
        "in its target state until it reports SUCCESS for it. Deleting twice is a no-op."
    ),
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404),
    tags=["stacks"],
)
async def delete_stack(ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]) -> None:
    await services.stacks.delete(ctx, caller=caller, stack_id=id)


@get(
    "/stacks/{id:uuid}/agents",
    operation_id="list_stack_agents",
    summary="Agents the stack reaches",
    description=(
        "Live agents associated with the stack by explicit target, shared label or shared "
        "annotation: the agents expected to apply its deployment objects. Not in the reference "
        "API; `brokkr deploy --wait` uses it."
    ),
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404),
    tags=["stacks"],
)
async def list_stack_agents(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> list[wire.Agent]:
    return await services.targets.stack_agents(ctx, caller=caller, stack_id=id)


router = Router(
    path="/",
    route_handlers=[
        list_stacks,
        create_stack,
        get_stack,
        update_stack,
        delete_stack,
        list_stack_agents,
    ],
)
