"""/templates, instantiation (/stacks/{id}/deployment-objects/from-template) and the template
extensions: rendering without storing, and a deployment object's provenance."""

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

_CHECKS = (
    "`template_content` must compile (422 `invalid_template_syntax` with line and column) and "
    "be at most `limits.template_max_bytes` (413); `parameters_schema` is a JSON Schema sent "
    "as a string (draft from `$schema`, default 2020-12, draft-07 accepted; remote or file "
    "`$ref`s are never fetched: 422 `invalid_parameters_schema`)."
)


@get(
    "/templates",
    operation_id="list_templates",
    summary="List templates",
    description=(
        "Every live version. Admins see all; a generator the system templates (admin-created, "
        "`generator_id` null) followed by its own. Oldest first; a page ends at `limit` or at "
        "the byte budget (`X-Next-Offset` gives the rest)."
    ),
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(400),
    response_headers=responses.PAGE_HEADERS,
    tags=["templates"],
)
async def list_templates(
    request: Request[Any, Any, Any],
    ctx: ContextDep,
    caller: CallerDep,
    limit: responses.WholeLimit = paging.MAX_LIMIT,
    offset: responses.Offset = 0,
) -> Response[list[wire.StackTemplate]]:
    found = await services.templates.list_all(ctx, caller=caller, limit=limit, offset=offset)
    return responses.page(request, found)


@post(
    "/templates",
    operation_id="create_template",
    summary="Create a template (or the next version of one)",
    description=(
        "An admin creates a system template, a generator its own. Re-posting a name makes the "
        f"family's next version. {_CHECKS}"
    ),
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(413, 422),
    tags=["templates"],
)
async def create_template(
    ctx: ContextDep, caller: CallerDep, data: JSONBody[wire.CreateTemplateRequest]
) -> wire.StackTemplate:
    return await services.templates.create(ctx, caller=caller, new=data)


@get(
    "/templates/{id:uuid}",
    operation_id="get_template",
    summary="Get a template version",
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404),
    tags=["templates"],
)
async def get_template(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> wire.StackTemplate:
    return await services.templates.get(ctx, caller=caller, template_id=id)


@put(
    "/templates/{id:uuid}",
    operation_id="update_template",
    summary="Make a new version of a template",
    description=(
        "Inserts the family's next version, carrying over the labels and annotations of the "
        "addressed one, which stays as it is (and instantiable). A null or absent `description` "
        f"keeps the addressed version's. Only admins change system templates. {_CHECKS}"
    ),
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404, 413, 422),
    tags=["templates"],
)
async def update_template(
    ctx: ContextDep,
    caller: CallerDep,
    id: FromPath[UUID],
    data: JSONBody[wire.UpdateTemplateRequest],
) -> wire.StackTemplate:
    return await services.templates.update(ctx, caller=caller, template_id=id, update=data)


@delete(
    "/templates/{id:uuid}",
    operation_id="delete_template",
    summary="Delete a template version",
    description="Soft-deletes this version only; objects rendered from it keep their provenance.",
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404),
    tags=["templates"],
)
async def delete_template(ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]) -> None:
    await services.templates.delete(ctx, caller=caller, template_id=id)


@post(
    "/templates/{id:uuid}/render",
    operation_id="render_template",
    summary="Render a template version without storing it",
    description=(
        "Not in the reference API. Validates the parameters and renders exactly as "
        "instantiation would (400 `invalid_parameters`, 422 for a render failure or a "
        "template limit), and answers the output with whether it would be accepted as a "
        "deployment object (`valid`, `validation_error`). Stores nothing."
    ),
    status_code=200,
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(400, 404, 422, 503),
    tags=["templates"],
)
async def render_template(
    ctx: ContextDep,
    caller: CallerDep,
    id: FromPath[UUID],
    data: JSONBody[wire.TemplateRenderRequest],
) -> wire.TemplateRenderResult:
    return await services.templates.render(
        ctx, caller=caller, template_id=id, parameters=data.parameters
    )


@post(
    "/stacks/{stack_id:uuid}/deployment-objects/from-template",
    operation_id="instantiate_template",
    summary="Add a deployment object rendered from a template",
    description=(
        "Checks in order: the stack is the caller's (404); the template version is readable "
        "by the caller, its own or a system one (404); the stack carries all of the "
        "template's labels and annotations (422 `template_stack_mismatch`); the parameters "
        "satisfy its schema (400 `invalid_parameters`, every violation in `details`); the "
        "template renders within `limits.template_fuel` and `limits.template_max_output_bytes` "
        "(422); the output is a valid deployment object, exactly as for a pushed one. The "
        "object and its provenance (`GET /deployment-objects/{id}/provenance`) are stored "
        "together."
    ),
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(400, 404, 413, 422, 503),
    tags=["stacks"],
)
async def instantiate_template(
    ctx: ContextDep,
    caller: CallerDep,
    stack_id: FromPath[UUID],
    data: JSONBody[wire.TemplateInstantiationRequest],
) -> wire.DeploymentObject:
    return await services.templates.instantiate(ctx, caller=caller, stack_id=stack_id, request=data)


@get(
    "/deployment-objects/{id:uuid}/provenance",
    operation_id="get_deployment_object_provenance",
    summary="The template a deployment object was rendered from",
    description=(
        "Not in the reference API. The template version and the parameters (keys sorted) of "
        "an object made through from-template; 404 `provenance_not_found` for a pushed one. "
        "Readable by whoever may read the object."
    ),
    security=security.ANY,
    responses=responses.errors(404),
    tags=["deployment-objects"],
)
async def get_provenance(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> wire.TemplateProvenance:
    return await services.templates.provenance(ctx, caller=caller, object_id=id)


router = Router(
    path="/",
    route_handlers=[
        list_templates,
        create_template,
        get_template,
        update_template,
        delete_template,
        render_template,
        instantiate_template,
        get_provenance,
    ],
)
