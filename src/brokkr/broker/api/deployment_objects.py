"""/stacks/{id}/deployment-objects and /deployment-objects/{id}."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Router, get, post
from litestar.params import FromPath, QueryParameter

from brokkr.broker import services
from brokkr.broker.api import responses, security
from brokkr.broker.api.dependencies import CallerDep, ContextDep
from brokkr.broker.domain import errors
from brokkr.common import wire

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


def _request_body(content_type: str, body: bytes) -> wire.CreateDeploymentObjectRequest:
    """The reference JSON envelope, or the manifests themselves as a raw YAML body."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in YAML_TYPES:
        try:
            return wire.CreateDeploymentObjectRequest(yaml_content=body.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise errors.InvalidEncoding() from exc
    if media_type not in ("application/json", ""):
        raise errors.UnsupportedContentType(media_type)
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
        "document index otherwise. Objects are immutable and numbered by a global `sequence_id`."
    ),
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404, 422),
    tags=["deployment-objects"],
)
async def create_deployment_object(
    request: Request[Any, Any, Any], ctx: ContextDep, caller: CallerDep, id: FromPath[UUID]
) -> wire.DeploymentObject:
    payload = _request_body(request.headers.get("content-type", ""), await request.body())
    return await services.deployment_objects.create(
        ctx, caller=caller, stack_id=id, request=payload
    )


@get(
    "/stacks/{id:uuid}/deployment-objects",
    operation_id="list_deployment_objects",
    summary="List a stack's deployment objects",
    description="Newest first; `limit` defaults to 100 and is capped at 1000.",
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(404),
    tags=["deployment-objects"],
)
async def list_deployment_objects(
    ctx: ContextDep,
    caller: CallerDep,
    id: FromPath[UUID],
    limit: Annotated[int, QueryParameter(ge=1)] = 100,
) -> list[wire.DeploymentObject]:
    return await services.deployment_objects.list_for_stack(
        ctx, caller=caller, stack_id=id, limit=limit
    )


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
