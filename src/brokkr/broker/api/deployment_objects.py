"""/stacks/{id}/deployment-objects and /deployment-objects/{id}."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.params import FromPath, QueryParameter

from brokkr.broker import services
from brokkr.broker.api import bodies, responses, security
from brokkr.broker.api.dependencies import CallerDep, ContextDep
from brokkr.broker.domain import errors, paging
from brokkr.broker.services.context import Context
from brokkr.common import wire

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
# Room in a body beyond its object's size limit: the JSON envelope, and escapes (a newline
# travels as two characters) in a YAML of many short lines.
_ENVELOPE_BYTES = 64 * 1024


async def _read_body(request: Request[Any, Any, Any], ctx: Context) -> bytes:
    """The body, refused (413) as soon as it is bigger than any object within the limit in force
    could be: read from the stream, so that a reload of the limit applies to the next upload."""
    limit = ctx.settings.current.limits.max_deployment_object_bytes
    return await bodies.read_limited(
        request,
        allowed=2 * limit + _ENVELOPE_BYTES,
        too_large=lambda: errors.DeploymentObjectTooLarge(limit),
    )


def _request_body(
    ctx: Context, content_type: str, body: bytes
) -> wire.CreateDeploymentObjectRequest:
    """The reference JSON envelope, or the manifests themselves as a raw YAML body."""
    media_type = bodies.media_type(content_type)
    if media_type in YAML_TYPES:
        try:
            return wire.CreateDeploymentObjectRequest(yaml_content=body.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise errors.InvalidEncoding() from exc
    # Like every JSON route (and the reference), a missing Content-Type is a 415.
    if not bodies.is_json(content_type):
        raise errors.UnsupportedContentType(media_type, accepted=("application/json", *YAML_TYPES))
    bodies.ensure_shallow(ctx, body)
    try:
        return msgspec.json.decode(body, type=wire.CreateDeploymentObjectRequest)
    except msgspec.ValidationError as exc:
        raise errors.ValidationFailed({"body": str(exc)}) from exc
    except msgspec.DecodeError as exc:
        raise errors.InvalidJson(exc) from exc


@post(
    "/stacks/{id:uuid}/deployment-objects",
    operation_id="create_deployment_object",
    summary="Add a deployment object to a stack",
    description=(
        "Body: the JSON envelope `{yaml_content, is_deletion_marker}`, or the manifests themselves "
        "with `Content-Type: application/yaml`. The content must hold one or more Kubernetes "
        "objects, each with `apiVersion`, `kind` and `metadata.name`; the error names the "
        "document index otherwise. Objects are immutable and numbered by a global `sequence_id`. "
        "Content over `limits.max_deployment_object_bytes` is a 413 before it is parsed; YAML "
        "nested deeper than `limits.max_yaml_depth`, with a scalar over "
        "`limits.max_yaml_scalar_chars`, or whose aliases expand it more than "
        "`limits.max_yaml_expansion` times is a 422 `yaml_limit_exceeded` naming the limit."
    ),
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404, 413, 422, 503),
    # The limit in force is read when the upload arrives (_read_body), not fixed at start.
    request_max_body_size=None,
    tags=["deployment-objects"],
)
async def create_deployment_object(
    request: Request[Any, Any, Any], ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> wire.DeploymentObject:
    body = await _read_body(request, ctx)
    payload = _request_body(ctx, request.headers.get("content-type", ""), body)
    return await services.deployment_objects.create(
        ctx, caller=caller, stack_id=id, request=payload
    )


@get(
    "/stacks/{id:uuid}/deployment-objects",
    operation_id="list_deployment_objects",
    summary="List a stack's deployment objects",
    description=(
        "Newest first; `limit` defaults to 100 and is capped at 1000. A page also ends before "
        "its JSON passes the broker's byte budget; `X-Next-Offset` then gives the next `offset`."
    ),
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(400, 404),
    response_headers=responses.PAGE_HEADERS,
    tags=["deployment-objects"],
)
async def list_deployment_objects(
    request: Request[Any, Any, Any],
    ctx: ContextDep,
    caller: CallerDep,
    id: FromPath[UUID],
    limit: Annotated[int, QueryParameter(ge=1, le=paging.MAX_OFFSET)] = 100,
    offset: responses.Offset = 0,
) -> Response[list[wire.DeploymentObject]]:
    found = await services.deployment_objects.list_for_stack(
        ctx, caller=caller, stack_id=id, limit=limit, offset=offset
    )
    return responses.page(request, found)


@get(
    "/deployment-objects/{id:uuid}",
    operation_id="get_deployment_object",
    summary="Get a deployment object",
    description="Readable by admins, the owning generator and any agent it is served to.",
    security=security.ANY,
    responses=responses.errors(404),
    tags=["deployment-objects"],
)
async def get_deployment_object(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> wire.DeploymentObject:
    return await services.deployment_objects.get(ctx, caller=caller, object_id=id)


router = Router(
    path="/",
    route_handlers=[create_deployment_object, list_deployment_objects, get_deployment_object],
)
