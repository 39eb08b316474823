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
        raise errors.NotFound(
            "agent not found", code="agent_not_found", details={"id": str(agent_id)}
        )
    known = ctx.versions.etag(agent_id, full=full)
    if known is not None and rules.matches(if_none_match, known):
        return TargetState(etag=known, objects=None)
    token = ctx.versions.token(agent_id)
    if if_none_match:
        entries = await db.target_state.digest(ctx.database, agent_id, full=full)
        etag = rules.etag(((entry.id, entry.yaml_checksum) for entry in entries), full=full)
        ctx.versions.remember(agent_id, full=full, etag=etag, token=token)
        if rules.matches(if_none_match, etag):
            return TargetState(etag=etag, objects=None)
    objects = await db.target_state.objects(ctx.database, agent_id, full=full)
    etag = rules.etag(((item.id, item.yaml_checksum) for item in objects), full=full)
    ctx.versions.remember(agent_id, full=full, etag=etag, token=token)
    return TargetState(etag=etag, objects=objects)
