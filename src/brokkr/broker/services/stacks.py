"""Stack use cases: create, read, update, delete (with deletion markers for the clusters, D13)."""

from __future__ import annotations

from uuid import UUID

import msgspec

from brokkr.broker import db
from brokkr.broker.domain import access, errors, events, hints, manifests, paging, updates
from brokkr.broker.services.context import Context
from brokkr.broker.services.work import EVERYONE, Work
from brokkr.common import wire


async def owned(
    tx: db.Tx, caller: access.Caller, stack_id: UUID, *, for_update: bool = False
) -> wire.Stack:
    """The live stack, if the caller is an admin or its owning generator; to anyone else a
    foreign stack is as missing as an unknown one (404 both: D8, no existence oracle)."""
    stack = await db.stacks.get(tx, stack_id, for_update=for_update)
    if stack is None:
        raise errors.StackNotFound(stack_id)
    if not (caller.is_admin or caller.is_generator(stack.generator_id)):
        raise errors.StackNotOwned(stack_id)
    return stack


async def retire(w: Work, stack: wire.Stack) -> wire.DeploymentObject:
    """Soft-delete a live stack and its revisions, and owe its deletion marker to every agent
    associated with it right now, until each reports SUCCESS for it (D13). Announces
    ``stack.deleted`` and one ``deployment.deleted`` (the marker, no agent yet); each agent's
    acknowledgement announces another ``deployment.deleted``, with its ``agent_id``."""
    tx, now = w.tx, w.now
    recipients = await db.targeting.associated_agents(tx, stack.id)
    await db.stacks.soft_delete(tx, stack.id, now=now)
    await db.deployment_objects.retire_stack_objects(tx, stack.id, now=now)
    marker = await db.deployment_objects.insert(
        tx,
        stack_id=stack.id,
        yaml_content=manifests.MARKER_CONTENT,
        yaml_checksum=manifests.checksum(manifests.MARKER_CONTENT),
        is_deletion_marker=True,
        now=now,
    )
    await db.target_state.owe_marker(tx, marker.id, recipients, now=now)
    # Every agent that might hold the stack re-reads; cheaper than one notice per recipient.
    await w.state_changed(EVERYONE)
    # Those associated right now, named: after the commit the database no longer says.
    await w.hint(hints.Hint(kind="stack_changed", ref=stack.id, agents=tuple(recipients)))
    await w.emit(events.stack_deleted(stack.id, deleted_at=now))
    await w.emit(
        events.deployment_deleted(marker.id, stack_id=stack.id, agent_id=None, deleted_at=now)
    )
    return marker


async def _owner_for_new_stack(tx: db.Tx, caller: access.Caller, new: wire.NewStack) -> UUID:
    requested = None if new.generator_id is msgspec.UNSET else new.generator_id
    if caller.role is access.Role.GENERATOR:
        if requested is not None and requested != caller.id:
            raise errors.StackGeneratorMismatch()
        assert caller.id is not None  # noqa: S101 - generators always carry their id
        return caller.id
    if not caller.is_admin:
        raise errors.StackCreateDenied()
    if requested is None:
        owner = await db.admins.admin_generator_id(tx)
        if owner is None:
            raise errors.GeneratorIdRequired()
        return owner
    if await db.generators.get(tx, requested) is None:
        raise errors.StackOwnerNotFound()
    return requested


async def create(ctx: Context, *, caller: access.Caller, new: wire.NewStack) -> wire.Stack:
    async with ctx.work(caller) as w:
        generator_id = await _owner_for_new_stack(w.tx, caller, new)
        stack = await db.stacks.insert(
            w.tx,
            name=new.name,
            description=new.description,
            generator_id=generator_id,
            now=w.now,
        )
        details = {"name": stack.name, "generator_id": str(generator_id)}
        await w.audit("stack.created", "stack", stack.id, details)
        await w.emit(events.stack_created(stack))
    return stack


async def list_all(
    ctx: Context,
    *,
    caller: access.Caller,
    generator_id: UUID | None = None,
    limit: int,
    offset: int,
) -> paging.Page[wire.Stack]:
    if caller.role is access.Role.GENERATOR:
        if generator_id is not None and generator_id != caller.id:
            raise errors.StacksListDenied(agent=False)
        generator_id = caller.id
    elif not caller.is_admin:
        raise errors.StacksListDenied(agent=True)
    limit = min(limit, paging.MAX_LIMIT)
    async with ctx.database.read() as tx:
        rows = await db.stacks.list_live(
            tx, generator_id=generator_id, limit=limit + 1, offset=offset
        )
    budget = ctx.settings.current.limits.list_page_bytes
    return paging.page(rows[:limit], budget=budget, offset=offset, available=len(rows))


async def get(ctx: Context, *, caller: access.Caller, stack_id: UUID) -> wire.Stack:
    async with ctx.database.read() as tx:
        return await owned(tx, caller, stack_id)


async def update(
    ctx: Context, *, caller: access.Caller, stack_id: UUID, update: wire.StackUpdate
) -> wire.Stack:
    async with ctx.work(caller) as w:
        current = await owned(w.tx, caller, stack_id, for_update=True)
        access.require_same_id(update.id, stack_id, errors.IdMismatch)
        if update.generator_id is not msgspec.UNSET and update.generator_id != current.generator_id:
            raise errors.StackOwnerImmutable()
        changes = updates.changes(current, update, ("name", "description"))
        if not changes:
            return current
        stack = await db.stacks.update(w.tx, stack_id, now=w.now, **changes)
        if stack is None:
            raise errors.StackNotFound(stack_id)
        await w.audit("stack.updated", "stack", stack_id, changes)
    return stack


async def delete(ctx: Context, *, caller: access.Caller, stack_id: UUID) -> None:
    """Soft delete; deleting an already deleted stack changes nothing (D15)."""
    async with ctx.work(caller) as w:
        stack = await db.stacks.get(w.tx, stack_id, for_update=True)
        stack = stack or await db.stacks.get_including_deleted(w.tx, stack_id)
        if stack is None:
            raise errors.StackNotFound(stack_id)
        if not (caller.is_admin or caller.is_generator(stack.generator_id)):
            raise errors.StackNotOwned(stack_id)
        if stack.deleted_at is not None:
            return
        marker = await retire(w, stack)
        details = {"name": stack.name, "deletion_marker_id": str(marker.id)}
        await w.audit("stack.deleted", "stack", stack_id, details)
