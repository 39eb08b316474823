"""Template use cases: versioned CRUD, rendering without storing, and instantiation into a
deployment object with its provenance (D9, D16, api-core §9, §10.4–10.6).

Who may see a template: admins every one, a generator the system templates (``generator_id``
null) and its own; another generator's template is as missing as an unknown one (D8, no
existence oracle). Who may change one: admins, and a generator its own. Agents neither.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import msgspec

from brokkr.broker import db, sandbox
from brokkr.broker.domain import (
    access,
    errors,
    events,
    manifests,
    paging,
    parameter_schemas,
    templating,
)
from brokkr.broker.services import deployment_objects, stacks
from brokkr.broker.services.context import Context
from brokkr.common import wire


def _require_template_role(caller: access.Caller) -> None:
    if caller.role is access.Role.AGENT:
        raise errors.TemplatesNotAccessible()


async def readable(tx: db.Tx, caller: access.Caller, template_id: UUID) -> wire.StackTemplate:
    """The live version, if the caller may read (and so instantiate) it."""
    _require_template_role(caller)
    template = await db.templates.get(tx, template_id)
    if template is None:
        raise errors.TemplateNotFound(template_id)
    if (
        caller.is_admin
        or template.generator_id is None
        or caller.is_generator(template.generator_id)
    ):
        return template
    raise errors.TemplateNotAccessible(template_id)


async def modifiable(
    tx: db.Tx, caller: access.Caller, template_id: UUID, *, for_update: bool = False
) -> wire.StackTemplate:
    """The live version, if the caller may change it: a system one only through an admin."""
    _require_template_role(caller)
    template = await db.templates.get(tx, template_id, for_update=for_update)
    if template is None:
        raise errors.TemplateNotFound(template_id)
    if caller.is_admin or (
        template.generator_id is not None and caller.is_generator(template.generator_id)
    ):
        return template
    if template.generator_id is None:
        raise errors.TemplateNotOwned(template_id)
    raise errors.TemplateNotAccessible(template_id)


def _check(content: str, schema_text: str) -> None:
    """Both halves of a version checked as create and update require: 422s that name the
    problem (line and column for the content)."""
    try:
        schema = msgspec.json.decode(schema_text)
    except msgspec.DecodeError as exc:
        raise errors.ParametersSchemaNotJson(str(exc)) from exc
    if not isinstance(schema, dict):
        raise errors.ParametersSchemaNotJson(f"found {type(schema).__name__}")
    templating.compile(content)
    parameter_schemas.compile_schema(schema)


async def _check_new(ctx: Context, content: str, schema_text: str) -> None:
    """Refuse an oversized template before any work, then compile off the event loop."""
    limit = ctx.settings.current.limits.template_max_bytes
    if templating.utf8_size_over(content, limit):
        raise errors.TemplateTooLarge(limit)
    await asyncio.to_thread(_check, content, schema_text)


async def _render(ctx: Context, template: wire.StackTemplate, parameters: Any) -> str:
    """Parameters validated against the schema (every violation listed), then rendered within
    the limits in force now, in the sandbox worker: a JSON object's keys are the context,
    anything else renders with none (api-core §10.6)."""
    limits = ctx.settings.current.limits
    version = sandbox.Version(
        id=template.id,
        content=template.template_content,
        schema_json=template.parameters_schema,
    )
    return await ctx.renderer.render(
        version,
        parameters,
        limits=templating.RenderLimits(
            fuel=limits.template_fuel, max_output_bytes=limits.template_max_output_bytes
        ),
        timeout_seconds=limits.template_render_timeout_seconds,
        memory_bytes=limits.template_render_memory_bytes,
    )


async def create(
    ctx: Context, *, caller: access.Caller, new: wire.CreateTemplateRequest
) -> wire.StackTemplate:
    """Version 1 of a new family, or the next version of an existing one. An admin creates
    system templates, a generator its own."""
    _require_template_role(caller)
    await _check_new(ctx, new.template_content, new.parameters_schema)
    async with ctx.work(caller) as w:
        template = await db.templates.insert_next_version(
            w.tx,
            generator_id=None if caller.is_admin else caller.id,
            name=new.name,
            description=new.description,
            template_content=new.template_content,
            parameters_schema=new.parameters_schema,
            checksum=manifests.checksum(new.template_content),
            now=w.now,
        )
        details = {"name": template.name, "version": template.version}
        await w.audit("template.created", "template", template.id, details)
        await w.emit(events.template_changed(template, "created"))
    return template


async def list_all(
    ctx: Context, *, caller: access.Caller, limit: int, offset: int
) -> paging.Page[wire.StackTemplate]:
    _require_template_role(caller)
    limit = min(limit, paging.MAX_LIMIT)
    async with ctx.database.read() as tx:
        rows = await db.templates.list_live(
            tx, generator_id=None if caller.is_admin else caller.id, limit=limit + 1, offset=offset
        )
    budget = ctx.settings.current.limits.list_page_bytes
    return paging.page(rows[:limit], budget=budget, offset=offset, available=len(rows))


async def get(ctx: Context, *, caller: access.Caller, template_id: UUID) -> wire.StackTemplate:
    async with ctx.database.read() as tx:
        return await readable(tx, caller, template_id)


async def update(
    ctx: Context, *, caller: access.Caller, template_id: UUID, update: wire.UpdateTemplateRequest
) -> wire.StackTemplate:
    """A new version of the addressed one's family, with its labels and annotations (D16); the
    addressed version stays as it is, and instantiable."""
    # Who may write comes first: a foreign caller learns nothing about content rules.
    async with ctx.database.read() as tx:
        await modifiable(tx, caller, template_id)
    await _check_new(ctx, update.template_content, update.parameters_schema)
    async with ctx.work(caller) as w:
        current = await modifiable(w.tx, caller, template_id, for_update=True)
        description = current.description if update.description is None else update.description
        template = await db.templates.insert_next_version(
            w.tx,
            generator_id=current.generator_id,
            name=current.name,
            description=description,
            template_content=update.template_content,
            parameters_schema=update.parameters_schema,
            checksum=manifests.checksum(update.template_content),
            now=w.now,
        )
        await db.templates.copy_metadata(
            w.tx, source_id=current.id, target_id=template.id, now=w.now
        )
        details = {"name": template.name, "version": template.version, "from_id": str(current.id)}
        await w.audit("template.updated", "template", template.id, details)
        await w.emit(events.template_changed(template, "updated"))
    return template


async def delete(ctx: Context, *, caller: access.Caller, template_id: UUID) -> None:
    """Soft-deletes this version only; its deployment objects keep their provenance."""
    async with ctx.work(caller) as w:
        template = await modifiable(w.tx, caller, template_id, for_update=True)
        await db.templates.soft_delete(w.tx, template_id, now=w.now)
        details = {"name": template.name, "version": template.version}
        await w.audit("template.deleted", "template", template_id, details)
        deleted = msgspec.structs.replace(template, deleted_at=w.now)
        await w.emit(events.template_changed(deleted, "deleted"))


async def render(
    ctx: Context, *, caller: access.Caller, template_id: UUID, parameters: Any
) -> wire.TemplateRenderResult:
    """What instantiating the version with ``parameters`` would store, and whether it would be
    accepted as a deployment object; stores nothing."""
    async with ctx.database.read() as tx:
        template = await readable(tx, caller, template_id)
    content = await _render(ctx, template, parameters)
    problem: wire.ErrorBody | None = None
    try:
        await deployment_objects.validate(ctx, content)
    except errors.BrokerError as exc:
        problem = wire.ErrorBody(
            error=exc.message,
            code=exc.code,
            message=exc.message,
            details=msgspec.UNSET if exc.details is None else exc.details,
        )
    return wire.TemplateRenderResult(
        template_id=template.id,
        template_version=template.version,
        yaml_content=content,
        yaml_checksum=manifests.checksum(content),
        valid=problem is None,
        validation_error=problem,
    )


def _missing_metadata(
    template_labels: list[wire.TemplateLabel],
    template_annotations: list[wire.TemplateAnnotation],
    stack_labels: list[wire.StackLabel],
    stack_annotations: list[wire.StackAnnotation],
) -> None:
    """A template fits a stack that carries all of its labels and annotations (§10.4)."""
    present = {label.label for label in stack_labels}
    pairs = {(a.key, a.value) for a in stack_annotations}
    missing_labels = [t.label for t in template_labels if t.label not in present]
    missing_annotations = [
        [a.key, a.value] for a in template_annotations if (a.key, a.value) not in pairs
    ]
    if missing_labels or missing_annotations:
        raise errors.TemplateStackMismatch(missing_labels, missing_annotations)


async def instantiate(
    ctx: Context,
    *,
    caller: access.Caller,
    stack_id: UUID,
    request: wire.TemplateInstantiationRequest,
) -> wire.DeploymentObject:
    """Checks in the reference order (stack, template, compatibility, parameters, render, the
    output as a pushed object), then the object and its provenance in one transaction (D15)."""
    async with ctx.database.read() as tx:
        await stacks.owned(tx, caller, stack_id)
        template = await readable(tx, caller, request.template_id)
        _missing_metadata(
            await db.templates.labels.list(tx, template.id),
            await db.templates.annotations.list(tx, template.id),
            await db.stack_metadata.labels.list(tx, stack_id),
            await db.stack_metadata.annotations.list(tx, stack_id),
        )
    content = await _render(ctx, template, request.parameters)
    await deployment_objects.validate(ctx, content)
    async with ctx.work(caller) as w:
        # Again under the row lock: the stack or the template may have gone meanwhile.
        await stacks.owned(w.tx, caller, stack_id, for_update=True)
        await readable(w.tx, caller, template.id)
        origin = {"template_id": str(template.id), "template_version": template.version}
        created = await deployment_objects.store(
            w, stack_id=stack_id, content=content, is_deletion_marker=False, origin=origin
        )
        await db.templates.insert_provenance(
            w.tx,
            deployment_object_id=created.id,
            template_id=template.id,
            template_version=template.version,
            parameters_json=msgspec.json.encode(request.parameters, order="sorted").decode(),
            now=w.now,
        )
    return created


async def provenance(
    ctx: Context, *, caller: access.Caller, object_id: UUID
) -> wire.TemplateProvenance:
    """Readable by whoever may read the deployment object itself."""
    await deployment_objects.get(ctx, caller=caller, object_id=object_id)
    async with ctx.database.read() as tx:
        found = await db.templates.get_provenance(tx, object_id)
    if found is None:
        raise errors.ProvenanceNotFound(object_id)
    return found
