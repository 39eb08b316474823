"""/generators: the identities that own stacks."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Request, Response, Router, delete, get, post, put
from litestar.params import FromPath, JSONBody

from brokkr.broker import services
from brokkr.broker.api import responses, security
from brokkr.broker.api.dependencies import CallerDep, ContextDep
from brokkr.broker.domain import paging
from brokkr.common import wire


@get(
    "/generators",
    operation_id="list_generators",
    summary="List generators",
    description="Oldest first; a page ends at `limit` or at the byte budget (`X-Next-Offset`).",
    security=security.ADMIN,
    responses=responses.errors(400),
    response_headers=responses.PAGE_HEADERS,
    tags=["generators"],
)
async def list_generators(
    request: Request[Any, Any, Any],
    ctx: ContextDep,
    caller: CallerDep,
    limit: responses.WholeLimit = paging.MAX_LIMIT,
    offset: responses.Offset = 0,
) -> Response[list[wire.Generator]]:
    found = await services.generators.list_all(ctx, caller=caller, limit=limit, offset=offset)
    return responses.page(request, found)


@post(
    "/generators",
    operation_id="create_generator",
    summary="Create a generator",
    description="Returns the generator's PAK once (`pak`). Names are unique among live generators.",
    security=security.ADMIN,
    responses=responses.errors(409, 422),
    tags=["generators"],
)
async def create_generator(
    ctx: ContextDep, caller: CallerDep, data: JSONBody[wire.NewGenerator]
) -> wire.CreateGeneratorResponse:
    return await services.generators.create(ctx, caller=caller, new=data)


@get(
    "/generators/{id:uuid}",
    operation_id="get_generator",
    summary="Get a generator",
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404),
    tags=["generators"],
)
async def get_generator(ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]) -> wire.Generator:
    return await services.generators.get(ctx, caller=caller, generator_id=id)


@put(
    "/generators/{id:uuid}",
    operation_id="update_generator",
    summary="Update a generator",
    description=(
        "Partial update of `name` and `description`; admins may also set `is_active` (an inactive "
        "generator's PAK stops working). A full reference Generator body is accepted: timestamps "
        "are ignored and `id`, if sent, must equal the path."
    ),
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404, 409, 422),
    tags=["generators"],
)
async def update_generator(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID], data: JSONBody[wire.GeneratorUpdate]
) -> wire.Generator:
    return await services.generators.update(ctx, caller=caller, generator_id=id, update=data)


@delete(
    "/generators/{id:uuid}",
    operation_id="delete_generator",
    summary="Delete a generator",
    description="Soft delete; its PAK stops working at once. Deleting twice is a no-op.",
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404),
    tags=["generators"],
)
async def delete_generator(ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]) -> None:
    await services.generators.delete(ctx, caller=caller, generator_id=id)


@post(
    "/generators/{id:uuid}/rotate-pak",
    operation_id="rotate_generator_pak",
    summary="Rotate a generator's PAK",
    description=(
        "Returns the new PAK once; the old one stops working at once. "
        "Answers 201, as the reference."
    ),
    status_code=201,
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404),
    tags=["generators"],
)
async def rotate_generator_pak(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> wire.CreateGeneratorResponse:
    return await services.generators.rotate_pak(ctx, caller=caller, generator_id=id)


router = Router(
    path="/",
    route_handlers=[
        list_generators,
        create_generator,
        get_generator,
        update_generator,
        delete_generator,
        rotate_generator_pak,
    ],
)
