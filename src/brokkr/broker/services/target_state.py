"""What an agent should run (D12, D13), with an ETag so idle polls cost one small query."""

from __future__ import annotations

from uuid import UUID

import msgspec

from brokkr.broker import db
from brokkr.broker.domain import access, errors
from brokkr.broker.domain import target_state as rules
from brokkr.broker.services.context import Context
from brokkr.common import wire


class TargetState(msgspec.Struct, frozen=True, kw_only=True):
    etag: str
    # None when the caller's If-None-Match already names this state (answer 304).
    objects: list[wire.DeploymentObject] | None


async def get(
    ctx: Context, *, caller: access.Caller, agent_id: UUID, full: bool, if_none_match: str | None
) -> TargetState:
    """304 when ``if_none_match`` names the current state: from memory when no change was
    announced since it was computed (no query), else from the digest (no YAML read)."""
    access.require_admin_or_agent(caller, agent_id)
    if caller.is_admin and await db.agents.load(ctx.database, agent_id) is None:
        raise errors.AgentNotFound(agent_id)
    known = ctx.versions.etag(agent_id, full=full)
    if known is not None and rules.matches(if_none_match, known):
        return TargetState(etag=known, objects=None)
    token = ctx.versions.token(agent_id)
    entries = await db.target_state.digest(ctx.database, agent_id, full=full)
    etag = rules.etag(((entry.id, entry.yaml_checksum) for entry in entries), full=full)
    ctx.versions.remember(agent_id, full=full, etag=etag, token=token)
    if rules.matches(if_none_match, etag):
        return TargetState(etag=etag, objects=None)
    return TargetState(etag=etag, objects=await _objects(ctx, [entry.id for entry in entries]))


async def _objects(ctx: Context, ids: list[UUID]) -> list[wire.DeploymentObject]:
    """The objects in ``ids`` order, from memory where possible (they are immutable)."""
    known = {object_id: ctx.objects.get(object_id) for object_id in ids}
    missing = [object_id for object_id, item in known.items() if item is None]
    if missing:
        async with ctx.database.read() as tx:
            fetched = await db.deployment_objects.list_by_ids(tx, missing)
        ctx.objects.put_all(fetched)
        known.update((item.id, item) for item in fetched)
    return [item for item in (known[object_id] for object_id in ids) if item is not None]
