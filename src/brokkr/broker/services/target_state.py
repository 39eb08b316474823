"""What an agent should run (D12, D13), with an ETag so idle polls cost one small query.

The answer is streamed: the JSON array is written one object at a time and objects missing from
memory are read in batches of ``limits.target_state_batch_bytes`` of YAML, so a poll holds a
bounded amount of memory however many stacks reach the agent, and the agent still gets them all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID

import msgspec

from brokkr.broker import db
from brokkr.broker.domain import access, errors, paging
from brokkr.broker.domain import target_state as rules
from brokkr.broker.services.context import Context
from brokkr.common import wire


class TargetState(msgspec.Struct, frozen=True, kw_only=True):
    etag: str
    # The objects to send, in order, in batches to read together (stream them with ``stream``);
    # None when the caller's If-None-Match already names this state (answer 304).
    batches: list[list[UUID]] | None


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
        return TargetState(etag=known, batches=None)
    token = ctx.versions.token(agent_id)
    entries = await db.target_state.digest(ctx.database, agent_id, full=full)
    etag = rules.etag(((entry.id, entry.yaml_checksum) for entry in entries), full=full)
    ctx.versions.remember(agent_id, full=full, etag=etag, token=token)
    if rules.matches(if_none_match, etag):
        return TargetState(etag=etag, batches=None)
    return TargetState(etag=etag, batches=await _batches(ctx, [entry.id for entry in entries]))


async def _batches(ctx: Context, object_ids: list[UUID]) -> list[list[UUID]]:
    """Groups of at most ``limits.target_state_batch_bytes`` of YAML not already in memory.
    Sized before the answer starts, so a database failure here is still a clean error."""
    budget = ctx.settings.current.limits.target_state_batch_bytes
    missing = [object_id for object_id in object_ids if ctx.objects.get(object_id) is None]
    sizes: dict[UUID, int] = {}
    if missing:
        async with ctx.database.read() as tx:
            sizes = dict(await db.deployment_objects.content_sizes_of(tx, missing))
    return paging.batches([(i, sizes.get(i, 0)) for i in object_ids], budget)


async def stream(ctx: Context, batches: list[list[UUID]]) -> AsyncIterator[bytes]:
    """The JSON array of these objects, one object per chunk. An object deleted since the digest
    is left out. A database failure mid-way ends the connection before the chunked body's end,
    which HTTP clients report as an incomplete answer: the agent keeps its state and retries."""
    separator = b"["
    for batch in batches:
        for item in await _objects(ctx, batch):
            yield separator + msgspec.json.encode(item)
            separator = b","
    yield b"[]" if separator == b"[" else b"]"


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
