"""Deployment objects: immutable revisions of a stack's desired state."""

from __future__ import annotations

from uuid import UUID

from brokkr.broker import db
from brokkr.broker.domain import access, errors, manifests
from brokkr.broker.services import stacks
from brokkr.broker.services.context import Context
from brokkr.broker.services.work import EVERYONE
from brokkr.common import wire

MAX_LIST_LIMIT = 1000


async def create(
    ctx: Context,
    *,
    caller: access.Caller,
    stack_id: UUID,
    request: wire.CreateDeploymentObjectRequest,
) -> wire.DeploymentObject:
    """Store a new revision. Content is validated unless it is an explicit deletion marker."""
    content = request.yaml_content
    async with ctx.work(caller) as w:
        # Who may write comes first: a foreign caller learns nothing about content rules.
        await stacks.owned(w.tx, caller, stack_id, for_update=True)
        if content.strip() or not request.is_deletion_marker:
            manifests.validate(content)
        created = await db.deployment_objects.insert(
            w.tx,
            stack_id=stack_id,
            yaml_content=content,
            yaml_checksum=manifests.checksum(content),
            is_deletion_marker=request.is_deletion_marker,
            now=w.now,
        )
        await w.audit(
            "deployment.created",
            "deployment_object",
            created.id,
            {
                "stack_id": str(stack_id),
                "sequence_id": created.sequence_id,
                "yaml_checksum": created.yaml_checksum,
                "is_deletion_marker": created.is_deletion_marker,
            },
        )
        await w.state_changed(EVERYONE)
    return created


async def list_for_stack(
    ctx: Context, *, caller: access.Caller, stack_id: UUID, limit: int
) -> list[wire.DeploymentObject]:
    async with ctx.database.read() as tx:
        await stacks.owned(tx, caller, stack_id)
        return await db.deployment_objects.list_for_stack(
            tx, stack_id, limit=min(limit, MAX_LIST_LIMIT)
        )


async def get(ctx: Context, *, caller: access.Caller, object_id: UUID) -> wire.DeploymentObject:
    """Readable by admins, the owning generator, and any agent the object is served to."""
    async with ctx.database.read() as tx:
        found = await db.deployment_objects.get(tx, object_id)
        if found is not None and await _may_read(tx, caller, found):
            return found
    # Callers who may not read it learn nothing about whether it exists.
    raise errors.DeploymentObjectNotFound(object_id)


async def _may_read(tx: db.Tx, caller: access.Caller, found: wire.DeploymentObject) -> bool:
    if caller.is_admin:
        return True
    if caller.role is access.Role.GENERATOR:
        stack = await db.stacks.get_including_deleted(tx, found.stack_id)
        return stack is not None and caller.is_generator(stack.generator_id)
    return caller.id is not None and await db.target_state.is_served(tx, caller.id, found.id)
