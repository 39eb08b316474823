"""Deployment objects: immutable revisions of a stack's desired state."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

from brokkr.broker import db
from brokkr.broker.domain import access, errors, events, hints, manifests, paging
from brokkr.broker.services import stacks
from brokkr.broker.services.context import Context
from brokkr.broker.services.work import EVERYONE, Work
from brokkr.common import wire, yaml_guard

# Manifests are parsed here, off the event loop, so that /healthz and agent polls never wait on
# a big upload, and before any transaction opens, so that no write waits on parsing either.
# Parsing holds the GIL, so a second thread validates no faster and only takes turns from the
# loop (four parallel 2 MiB uploads: /healthz p99 177 ms with two, 60 ms with one); one bounds
# the memory of parses in flight to that of the largest object allowed. Started on first use.
_VALIDATION = ThreadPoolExecutor(max_workers=1, thread_name_prefix="brokkr-manifests")


async def create(
    ctx: Context,
    *,
    caller: access.Caller,
    stack_id: UUID,
    request: wire.CreateDeploymentObjectRequest,
) -> wire.DeploymentObject:
    """Store a new revision. Content is validated unless it is an explicit deletion marker."""
    content = request.yaml_content
    if content.strip() or not request.is_deletion_marker:
        # Who may write comes first: a foreign caller learns nothing about content rules.
        async with ctx.database.read() as tx:
            await stacks.owned(tx, caller, stack_id)
        await validate(ctx, content)
    async with ctx.work(caller) as w:
        # Again under the row lock: the stack may have been deleted while the content was parsed.
        await stacks.owned(w.tx, caller, stack_id, for_update=True)
        return await store(
            w, stack_id=stack_id, content=content, is_deletion_marker=request.is_deletion_marker
        )


async def store(
    w: Work,
    *,
    stack_id: UUID,
    content: str,
    is_deletion_marker: bool,
    origin: Mapping[str, Any] | None = None,
) -> wire.DeploymentObject:
    """Insert validated ``content`` as the stack's newest revision, audited (with ``origin``, what
    it was made from) and announced to every agent, in the caller's unit of work."""
    created = await db.deployment_objects.insert(
        w.tx,
        stack_id=stack_id,
        yaml_content=content,
        yaml_checksum=manifests.checksum(content),
        is_deletion_marker=is_deletion_marker,
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
            **(origin or {}),
        },
    )
    await w.state_changed(EVERYONE)
    await w.hint(hints.Hint(kind="stack_changed", ref=stack_id))
    await w.emit(events.deployment_created(created))
    return created


async def validate(ctx: Context, content: str) -> None:
    """``manifests.validate`` in a worker thread, within the limits in force now."""
    limits = ctx.settings.current.limits
    manifests.check_size(content, limit_bytes=limits.max_deployment_object_bytes)
    yaml_limits = yaml_guard.YamlLimits(
        max_depth=limits.max_yaml_depth,
        max_scalar_chars=limits.max_yaml_scalar_chars,
        max_expansion=limits.max_yaml_expansion,
    )
    validating = asyncio.wrap_future(_VALIDATION.submit(manifests.validate, content, yaml_limits))
    try:
        # A timeout cancels a validation still queued; one already running is bounded by the
        # size and YAML limits, and its result is dropped.
        await asyncio.wait_for(validating, timeout=limits.manifest_validation_timeout_seconds)
    except TimeoutError as exc:
        raise errors.ValidationTimedOut(limits.manifest_validation_timeout_seconds) from exc


async def list_for_stack(
    ctx: Context, *, caller: access.Caller, stack_id: UUID, limit: int, offset: int
) -> paging.Page[wire.DeploymentObject]:
    """Newest first, at most ``limit`` objects and ``limits.list_page_bytes`` of JSON."""
    budget = ctx.settings.current.limits.list_page_bytes
    limit = min(limit, paging.MAX_LIMIT)
    async with ctx.database.read() as tx:
        await stacks.owned(tx, caller, stack_id)
        # One row more than the page tells whether more follow; sizes first, so only the
        # objects that can fit are ever read (their JSON is at least their YAML's length).
        sizes = await db.deployment_objects.content_sizes(
            tx, stack_id, limit=limit + 1, offset=offset
        )
        fits = paging.fitting((size for _, size in sizes[:limit]), budget)
        objects = await db.deployment_objects.list_by_ids(tx, [id_ for id_, _ in sizes[:fits]])
    return paging.page(objects, budget=budget, offset=offset, available=len(sizes))


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
