"""Stack labels and annotations: what label and annotation targeting matches on."""

from __future__ import annotations

from uuid import UUID

from brokkr.broker import db
from brokkr.broker.domain import access, errors
from brokkr.broker.services import assignments, stacks
from brokkr.broker.services.context import Context
from brokkr.broker.services.work import EVERYONE
from brokkr.common import wire


async def _readable(tx: db.Tx, caller: access.Caller, stack_id: UUID) -> None:
    """Admins, the owning generator, and agents associated with the stack by any path; to
    anyone else the stack is as missing as an unknown one (no existence oracle)."""
    stack = await db.stacks.get(tx, stack_id)
    if stack is None:
        raise errors.StackNotFound(stack_id)
    if caller.is_admin or caller.is_generator(stack.generator_id):
        return
    agent_id = caller.id if caller.role is access.Role.AGENT else None
    if agent_id is not None and await db.targeting.is_associated(tx, agent_id, stack_id):
        return
    raise errors.StackNotOwned(stack_id)


async def list_labels(
    ctx: Context, *, caller: access.Caller, stack_id: UUID
) -> list[wire.StackLabel]:
    async with ctx.database.read() as tx:
        await _readable(tx, caller, stack_id)
        return await db.stack_metadata.labels.list(tx, stack_id)


async def add_label(
    ctx: Context, *, caller: access.Caller, stack_id: UUID, new: wire.NewStackLabel
) -> wire.StackLabel:
    access.require_same_id(new.stack_id, stack_id, errors.StackIdMismatch)
    async with ctx.work(caller) as w:
        await stacks.owned(w.tx, caller, stack_id)
        async with assignments.of_stack(w, stack_id):
            label = await db.stack_metadata.labels.add(w.tx, stack_id, new.label)
        await w.audit("stack.label_added", "stack", stack_id, {"label": new.label})
        await w.state_changed(EVERYONE)
    return label


async def remove_label(ctx: Context, *, caller: access.Caller, stack_id: UUID, label: str) -> None:
    async with ctx.work(caller) as w:
        await stacks.owned(w.tx, caller, stack_id)
        async with assignments.of_stack(w, stack_id):
            if not await db.stack_metadata.labels.remove(w.tx, stack_id, label):
                raise errors.StackLabelNotFound(label)
        await w.audit("stack.label_removed", "stack", stack_id, {"label": label})
        await w.state_changed(EVERYONE)


async def list_annotations(
    ctx: Context, *, caller: access.Caller, stack_id: UUID
) -> list[wire.StackAnnotation]:
    async with ctx.database.read() as tx:
        await _readable(tx, caller, stack_id)
        return await db.stack_metadata.annotations.list(tx, stack_id)


async def add_annotation(
    ctx: Context, *, caller: access.Caller, stack_id: UUID, new: wire.NewStackAnnotation
) -> wire.StackAnnotation:
    access.require_same_id(new.stack_id, stack_id, errors.StackIdMismatch)
    async with ctx.work(caller) as w:
        await stacks.owned(w.tx, caller, stack_id)
        async with assignments.of_stack(w, stack_id):
            annotation = await db.stack_metadata.annotations.add(w.tx, stack_id, new.key, new.value)
        await w.audit(
            "stack.annotation_added", "stack", stack_id, {"key": new.key, "value": new.value}
        )
        await w.state_changed(EVERYONE)
    return annotation


async def remove_annotation(
    ctx: Context, *, caller: access.Caller, stack_id: UUID, key: str
) -> None:
    async with ctx.work(caller) as w:
        await stacks.owned(w.tx, caller, stack_id)
        async with assignments.of_stack(w, stack_id):
            if not await db.stack_metadata.annotations.remove(w.tx, stack_id, key):
                raise errors.StackAnnotationNotFound(key)
        await w.audit("stack.annotation_removed", "stack", stack_id, {"key": key})
        await w.state_changed(EVERYONE)
