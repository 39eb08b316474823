"""Stack labels and annotations: what label and annotation targeting matches on."""

from __future__ import annotations

from uuid import UUID

import msgspec

from brokkr.broker import db
from brokkr.broker.domain import access, audit, errors
from brokkr.broker.services import stacks
from brokkr.broker.services.context import Context
from brokkr.common import wire


async def _readable(tx: db.Tx, caller: access.Caller, stack_id: UUID) -> None:
    """Admins, the owning generator, and agents associated with the stack by any path."""
    stack = await db.stacks.get(tx, stack_id)
    if stack is None:
        raise stacks.not_found(stack_id)
    if caller.is_admin or caller.is_generator(stack.generator_id):
        return
    agent_id = caller.id if caller.role is access.Role.AGENT else None
    if agent_id is not None and await db.targeting.is_associated(tx, agent_id, stack_id):
        return
    raise errors.Forbidden("the stack is not accessible to the caller", code="stack_not_accessible")


def _body_stack(body_stack_id: UUID | msgspec.UnsetType, stack_id: UUID) -> None:
    access.require_same_id(
        None if body_stack_id is msgspec.UNSET else body_stack_id, stack_id, field="stack_id"
    )


async def list_labels(
    ctx: Context, *, caller: access.Caller, stack_id: UUID
) -> list[wire.StackLabel]:
    async with ctx.database.read() as tx:
        await _readable(tx, caller, stack_id)
        return await db.stack_metadata.labels.list(tx, stack_id)


async def add_label(
    ctx: Context, *, caller: access.Caller, stack_id: UUID, new: wire.NewStackLabel
) -> wire.StackLabel:
    _body_stack(new.stack_id, stack_id)
    now = ctx.now()
    async with ctx.database.transaction() as tx:
        await stacks.owned(tx, caller, stack_id)
        label = await db.stack_metadata.labels.add(tx, stack_id, new.label)
        entry = audit.by(
            caller,
            action="stack.label_added",
            resource_type="stack",
            resource_id=stack_id,
            details={"label": new.label},
        )
        await db.audit.insert(tx, entry, now=now)
        await db.notify.publish_state_change(tx)
    ctx.versions.changed(None)
    return label


async def remove_label(ctx: Context, *, caller: access.Caller, stack_id: UUID, label: str) -> None:
    now = ctx.now()
    async with ctx.database.transaction() as tx:
        await stacks.owned(tx, caller, stack_id)
        if not await db.stack_metadata.labels.remove(tx, stack_id, label):
            raise errors.NotFound(
                "the stack has no such label",
                code="stack_label_not_found",
                details={"label": label},
            )
        entry = audit.by(
            caller,
            action="stack.label_removed",
            resource_type="stack",
            resource_id=stack_id,
            details={"label": label},
        )
        await db.audit.insert(tx, entry, now=now)
        await db.notify.publish_state_change(tx)
    ctx.versions.changed(None)


async def list_annotations(
    ctx: Context, *, caller: access.Caller, stack_id: UUID
) -> list[wire.StackAnnotation]:
    async with ctx.database.read() as tx:
        await _readable(tx, caller, stack_id)
        return await db.stack_metadata.annotations.list(tx, stack_id)


async def add_annotation(
    ctx: Context, *, caller: access.Caller, stack_id: UUID, new: wire.NewStackAnnotation
) -> wire.StackAnnotation:
    _body_stack(new.stack_id, stack_id)
    now = ctx.now()
    async with ctx.database.transaction() as tx:
        await stacks.owned(tx, caller, stack_id)
        annotation = await db.stack_metadata.annotations.add(tx, stack_id, new.key, new.value)
        entry = audit.by(
            caller,
            action="stack.annotation_added",
            resource_type="stack",
            resource_id=stack_id,
            details={"key": new.key, "value": new.value},
        )
        await db.audit.insert(tx, entry, now=now)
        await db.notify.publish_state_change(tx)
    ctx.versions.changed(None)
    return annotation


async def remove_annotation(
    ctx: Context, *, caller: access.Caller, stack_id: UUID, key: str
) -> None:
    now = ctx.now()
    async with ctx.database.transaction() as tx:
        await stacks.owned(tx, caller, stack_id)
        if not await db.stack_metadata.annotations.remove(tx, stack_id, key):
            raise errors.NotFound(
                "the stack has no annotation with this key",
                code="stack_annotation_not_found",
                details={"key": key},
            )
        entry = audit.by(
            caller,
            action="stack.annotation_removed",
            resource_type="stack",
            resource_id=stack_id,
            details={"key": key},
        )
        await db.audit.insert(tx, entry, now=now)
        await db.notify.publish_state_change(tx)
    ctx.versions.changed(None)
