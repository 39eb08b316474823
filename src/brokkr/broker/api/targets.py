"""/agents/{id}/targets, /agents/{id}/stacks and /agents/{id}/target-state."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from litestar import MediaType, Response, Router, delete, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.response import Stream

from brokkr.broker import services
from brokkr.broker.api import responses, security
from brokkr.broker.api.dependencies import CallerDep, ContextDep
from brokkr.common import wire


@get(
    "/agents/{id:uuid}/targets",
    operation_id="list_targets",
    summary="List an agent's explicit targets",
    security=security.ADMIN_AGENT,
    responses=responses.errors(404),
    tags=["agent-targets"],
)
async def list_targets(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> list[wire.AgentTarget]:
    return await services.targets.list_targets(ctx, caller=caller, agent_id=id)


@post(
    "/agents/{id:uuid}/targets",
    operation_id="add_target",
    summary="Target a stack at an agent",
    description=(
        "Admins, or the generator owning the stack (a foreign stack is 404 `stack_not_found`). "
        "`agent_id` may be omitted; when sent it must equal the path."
    ),
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404, 409, 422),
    tags=["agent-targets"],
)
async def add_target(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID], data: JSONBody[wire.NewAgentTarget]
) -> wire.AgentTarget:
    return await services.targets.add_target(ctx, caller=caller, agent_id=id, new=data)


@delete(
    "/agents/{id:uuid}/targets/{stack_id:uuid}",
    operation_id="remove_target",
    summary="Remove a target",
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404),
    tags=["agent-targets"],
)
async def remove_target(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID], stack_id: FromPath[UUID]
) -> None:
    await services.targets.remove_target(ctx, caller=caller, agent_id=id, stack_id=stack_id)


@get(
    "/agents/{id:uuid}/stacks",
    operation_id="get_associated_stacks",
    summary="Stacks associated with an agent",
    description="Explicit targets, plus stacks sharing a label or an annotation key=value.",
    security=security.ADMIN_AGENT,
    responses=responses.errors(404),
    tags=["agent-targets"],
)
async def associated_stacks(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> list[wire.Stack]:
    return await services.targets.associated_stacks(ctx, caller=caller, agent_id=id)


@get(
    "/agents/{id:uuid}/target-state",
    operation_id="get_target_state",
    summary="What the agent's cluster should run",
    description=(
        "The newest live deployment object of every associated stack, plus deletion markers of "
        "deleted stacks the agent has not yet acknowledged. `mode=incremental` (default) omits "
        "objects the agent reported SUCCESS for; `mode=full` returns everything. Send the "
        "returned `ETag` as `If-None-Match` to get `304` while nothing changed. The array is "
        "streamed one object at a time (no Content-Length), gzipped when the client accepts "
        "it; every object is always sent, however large the state. An answer cut short (the "
        "broker lost its database mid-way) ends without the chunked body's end: retry."
    ),
    security=security.ADMIN_AGENT,
    responses={
        200: ResponseSpec(
            data_container=list[wire.DeploymentObject],
            description="The target state",
            generate_examples=False,
        ),
        **responses.errors(400, 404),
    },
    tags=["agents"],
)
async def target_state(
    ctx: ContextDep,
    caller: CallerDep,
    id: FromPath[UUID],
    mode: Annotated[Literal["incremental", "full"], QueryParameter()] = "incremental",
    if_none_match: Annotated[str | None, HeaderParameter(name="If-None-Match")] = None,
) -> Response[bytes] | Stream:
    state = await services.target_state.get(
        ctx, caller=caller, agent_id=id, full=mode == "full", if_none_match=if_none_match
    )
    headers = {"ETag": state.etag, "Cache-Control": "no-cache"}
    if state.batches is None:
        return Response(b"", status_code=304, headers=headers)
    chunks = services.target_state.stream(ctx, state.batches)
    return Stream(chunks, headers=headers, media_type=MediaType.JSON)


router = Router(
    path="/",
    route_handlers=[list_targets, add_target, remove_target, associated_stacks, target_state],
)
