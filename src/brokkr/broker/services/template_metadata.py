"""Template labels and annotations: what a stack must carry for the template to be
instantiated into it (api-core §10.4). Each belongs to one version and is carried over to the
versions made from it (D16)."""

from __future__ import annotations

from uuid import UUID

from brokkr.broker import db
from brokkr.broker.domain import access, errors
from brokkr.broker.services import templates
from brokkr.broker.services.context import Context
from brokkr.common import wire


async def list_labels(
    ctx: Context, *, caller: access.Caller, template_id: UUID
) -> list[wire.TemplateLabel]:
    async with ctx.database.read() as tx:
        await templates.readable(tx, caller, template_id)
        return await db.templates.labels.list(tx, template_id)


async def add_label(
    ctx: Context, *, caller: access.Caller, template_id: UUID, new: wire.NewTemplateLabel
) -> wire.TemplateLabel:
    access.require_same_id(new.template_id, template_id, errors.IdMismatch)
    async with ctx.work(caller) as w:
        await templates.modifiable(w.tx, caller, template_id, for_update=True)
        label = await db.templates.labels.add_at(w.tx, template_id, new.label, now=w.now)
        await w.audit("template.label_added", "template", template_id, {"label": new.label})
    return label


async def remove_label(
    ctx: Context, *, caller: access.Caller, template_id: UUID, label: str
) -> None:
    async with ctx.work(caller) as w:
        await templates.modifiable(w.tx, caller, template_id, for_update=True)
        if not await db.templates.labels.remove(w.tx, template_id, label):
            raise errors.TemplateLabelNotFound(label)
        await w.audit("template.label_removed", "template", template_id, {"label": label})


async def list_annotations(
    ctx: Context, *, caller: access.Caller, template_id: UUID
) -> list[wire.TemplateAnnotation]:
    async with ctx.database.read() as tx:
        await templates.readable(tx, caller, template_id)
        return await db.templates.annotations.list(tx, template_id)


async def add_annotation(
    ctx: Context, *, caller: access.Caller, template_id: UUID, new: wire.NewTemplateAnnotation
) -> wire.TemplateAnnotation:
    access.require_same_id(new.template_id, template_id, errors.IdMismatch)
    async with ctx.work(caller) as w:
        await templates.modifiable(w.tx, caller, template_id, for_update=True)
        annotation = await db.templates.annotations.add_at(
            w.tx, template_id, new.key, new.value, now=w.now
        )
        details = {"key": new.key, "value": new.value}
        await w.audit("template.annotation_added", "template", template_id, details)
    return annotation


async def remove_annotation(
    ctx: Context, *, caller: access.Caller, template_id: UUID, key: str
) -> None:
    async with ctx.work(caller) as w:
        await templates.modifiable(w.tx, caller, template_id, for_update=True)
        if not await db.templates.annotations.remove(w.tx, template_id, key):
            raise errors.TemplateAnnotationNotFound(key)
        await w.audit("template.annotation_removed", "template", template_id, {"key": key})
