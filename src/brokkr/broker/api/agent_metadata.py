"""/agents/{id}/labels and /agents/{id}/annotations."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from litestar import Router, delete, get, post
from litestar.params import FromPath, JSONBody

from brokkr.broker import services
from brokkr.broker.api import paths, responses, security
from brokkr.broker.api.dependencies import CallerDep, ContextDep
from brokkr.common import wire

_BODY_ID = "`agent_id` may be omitted; when sent it must equal the `{id}` in the path (else 403)."


@get(
    "/agents/{id:uuid}/labels",
    operation_id="agents_list_labels",
    summary="List an agent's labels",
    security=security.ADMIN_AGENT,
    responses=responses.errors(404),
    tags=["agent-labels"],
)
async def list_labels(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> list[wire.AgentLabel]:
    return await services.agent_metadata.list_labels(ctx, caller=caller, agent_id=id)


@post(
    "/agents/{id:uuid}/labels",
    operation_id="agents_add_label",
    summary="Add a label to an agent",
    description=f"Labels are 1–64 characters without whitespace. {_BODY_ID}",
    security=security.ADMIN,
    responses=responses.errors(404, 409, 422),
    tags=["agent-labels"],
)
async def add_label(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID], data: JSONBody[wire.NewAgentLabel]
) -> wire.AgentLabel:
    return await services.agent_metadata.add_label(ctx, caller=caller, agent_id=id, new=data)


@delete(
    "/agents/{id:uuid}/labels/{label:path}",
    operation_id="agents_remove_label",
    summary="Remove a label from an agent",
    security=security.ADMIN,
    responses=responses.errors(404),
    tags=["agent-labels"],
)
async def remove_label(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID], label: FromPath[Path]
) -> None:
    await services.agent_metadata.remove_label(
        ctx, caller=caller, agent_id=id, label=paths.rest_of_path(label)
    )


@get(
    "/agents/{id:uuid}/annotations",
    operation_id="agents_list_annotations",
    summary="List an agent's annotations",
    security=security.ADMIN_AGENT,
    responses=responses.errors(404),
    tags=["agent-annotations"],
)
async def list_annotations(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> list[wire.AgentAnnotation]:
    return await services.agent_metadata.list_annotations(ctx, caller=caller, agent_id=id)


@post(
    "/agents/{id:uuid}/annotations",
    operation_id="agents_add_annotation",
    summary="Add an annotation to an agent",
    description=(
        f"One value per key; keys and values are 1–64 characters without whitespace. {_BODY_ID}"
    ),
    security=security.ADMIN,
    responses=responses.errors(404, 409, 422),
    tags=["agent-annotations"],
)
async def add_annotation(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID], data: JSONBody[wire.NewAgentAnnotation]
) -> wire.AgentAnnotation:
    return await services.agent_metadata.add_annotation(ctx, caller=caller, agent_id=id, new=data)


@delete(
    "/agents/{id:uuid}/annotations/{key:path}",
    operation_id="agents_remove_annotation",
    summary="Remove an annotation from an agent",
    security=security.ADMIN,
    responses=responses.errors(404),
    tags=["agent-annotations"],
)
async def remove_annotation(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID], key: FromPath[Path]
) -> None:
    await services.agent_metadata.remove_annotation(
        ctx, caller=caller, agent_id=id, key=paths.rest_of_path(key)
    )


router = Router(
    path="/",
    route_handlers=[
        list_labels,
        add_label,
        remove_label,
        list_annotations,
        add_annotation,
        remove_annotation,
    ],
)
