"""/stacks/{id}/labels and /stacks/{id}/annotations."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from litestar import Router, delete, get, post
from litestar.params import FromPath, JSONBody

from brokkr.broker import services
from brokkr.broker.api import bodies, paths, responses, security
from brokkr.broker.api.dependencies import CallerDep, ContextDep
from brokkr.common import wire
from brokkr.common.wire.types import Label

_READERS = "Readable by admins, the owning generator and agents associated with the stack."


@get(
    "/stacks/{id:uuid}/labels",
    operation_id="stacks_list_labels",
    summary="List a stack's labels",
    description=_READERS,
    security=security.ANY,
    responses=responses.errors(404),
    tags=["stack-labels"],
)
async def list_labels(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> list[wire.StackLabel]:
    return await services.stack_metadata.list_labels(ctx, caller=caller, stack_id=id)


@post(
    "/stacks/{id:uuid}/labels",
    operation_id="stacks_add_label",
    summary="Add a label to a stack",
    description=(
        'The body is the label as a JSON string (`"env:prod"`, as the reference) or an object '
        '`{"label": "env:prod"}`. Agents carrying the same label receive the stack.'
    ),
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404, 409, 422),
    tags=["stack-labels"],
)
async def add_label(
    ctx: ContextDep,
    caller: CallerDep,
    id: FromPath[UUID],
    data: JSONBody[Label | wire.NewStackLabel],
) -> wire.StackLabel:
    new = bodies.label_body(data, wire.NewStackLabel)
    return await services.stack_metadata.add_label(ctx, caller=caller, stack_id=id, new=new)


@delete(
    "/stacks/{id:uuid}/labels/{label:path}",
    operation_id="stacks_remove_label",
    summary="Remove a label from a stack",
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404),
    tags=["stack-labels"],
)
async def remove_label(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID], label: FromPath[Path]
) -> None:
    await services.stack_metadata.remove_label(
        ctx, caller=caller, stack_id=id, label=paths.rest_of_path(label)
    )


@get(
    "/stacks/{id:uuid}/annotations",
    operation_id="stacks_list_annotations",
    summary="List a stack's annotations",
    description=_READERS,
    security=security.ANY,
    responses=responses.errors(404),
    tags=["stack-annotations"],
)
async def list_annotations(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> list[wire.StackAnnotation]:
    return await services.stack_metadata.list_annotations(ctx, caller=caller, stack_id=id)


@post(
    "/stacks/{id:uuid}/annotations",
    operation_id="stacks_add_annotation",
    summary="Add an annotation to a stack",
    description=(
        "One value per key. Agents carrying the same key=value receive the stack. `stack_id` may "
        "be omitted; when sent it must equal the path."
    ),
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404, 409, 422),
    tags=["stack-annotations"],
)
async def add_annotation(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID], data: JSONBody[wire.NewStackAnnotation]
) -> wire.StackAnnotation:
    return await services.stack_metadata.add_annotation(ctx, caller=caller, stack_id=id, new=data)


@delete(
    "/stacks/{id:uuid}/annotations/{key:path}",
    operation_id="stacks_remove_annotation",
    summary="Remove an annotation from a stack",
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404),
    tags=["stack-annotations"],
)
async def remove_annotation(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID], key: FromPath[Path]
) -> None:
    await services.stack_metadata.remove_annotation(
        ctx, caller=caller, stack_id=id, key=paths.rest_of_path(key)
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
