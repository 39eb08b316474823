"""/templates/{id}/labels and /templates/{id}/annotations."""

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

_READERS = "Readable by admins and, for a system or its own template, a generator."
_WRITERS = "Changed by admins and the owning generator (system templates: admins only)."


@get(
    "/templates/{id:uuid}/labels",
    operation_id="templates_list_labels",
    summary="List a template version's labels",
    description=_READERS,
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404),
    tags=["template-labels"],
)
async def list_labels(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> list[wire.TemplateLabel]:
    return await services.template_metadata.list_labels(ctx, caller=caller, template_id=id)


@post(
    "/templates/{id:uuid}/labels",
    operation_id="templates_add_label",
    summary="Add a label to a template version",
    description=(
        'The body is the label as a JSON string (`"env:prod"`, as the reference) or an object '
        '`{"label": "env:prod"}`. The template is then instantiable only into stacks carrying '
        f"it. {_WRITERS}"
    ),
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404, 409, 422),
    tags=["template-labels"],
)
async def add_label(
    ctx: ContextDep,
    caller: CallerDep,
    id: FromPath[UUID],
    data: JSONBody[Label | wire.NewTemplateLabel],
) -> wire.TemplateLabel:
    new = bodies.label_body(data, wire.NewTemplateLabel)
    return await services.template_metadata.add_label(ctx, caller=caller, template_id=id, new=new)


@delete(
    "/templates/{id:uuid}/labels/{label:path}",
    operation_id="templates_remove_label",
    summary="Remove a label from a template version",
    description=_WRITERS,
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404),
    tags=["template-labels"],
)
async def remove_label(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID], label: FromPath[Path]
) -> None:
    await services.template_metadata.remove_label(
        ctx, caller=caller, template_id=id, label=paths.rest_of_path(label)
    )


@get(
    "/templates/{id:uuid}/annotations",
    operation_id="templates_list_annotations",
    summary="List a template version's annotations",
    description=_READERS,
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404),
    tags=["template-annotations"],
)
async def list_annotations(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> list[wire.TemplateAnnotation]:
    return await services.template_metadata.list_annotations(ctx, caller=caller, template_id=id)


@post(
    "/templates/{id:uuid}/annotations",
    operation_id="templates_add_annotation",
    summary="Add an annotation to a template version",
    description=(
        "One value per key. The template is then instantiable only into stacks carrying the "
        f"same key=value. {_WRITERS}"
    ),
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404, 409, 422),
    tags=["template-annotations"],
)
async def add_annotation(
    ctx: ContextDep,
    caller: CallerDep,
    id: FromPath[UUID],
    data: JSONBody[wire.NewTemplateAnnotation],
) -> wire.TemplateAnnotation:
    return await services.template_metadata.add_annotation(
        ctx, caller=caller, template_id=id, new=data
    )


@delete(
    "/templates/{id:uuid}/annotations/{key:path}",
    operation_id="templates_remove_annotation",
    summary="Remove an annotation from a template version",
    description=_WRITERS,
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404),
    tags=["template-annotations"],
)
async def remove_annotation(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID], key: FromPath[Path]
) -> None:
    await services.template_metadata.remove_annotation(
        ctx, caller=caller, template_id=id, key=paths.rest_of_path(key)
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
