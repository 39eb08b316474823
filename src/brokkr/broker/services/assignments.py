"""Unassignment is explicit (D13 extended to live stacks, issue 10).

A change that may end or start associations (a target, a label or an annotation, on an agent or
a stack) runs inside ``of_agent`` or ``of_stack``: the associations are read before and after
the change in its own transaction. An agent that lost a live stack is owed a deletion marker of
that stack until it reports SUCCESS, exactly like an agent of a deleted stack, so it removes the
stack's objects; an agent that gained one back stops owing its markers and is served the stack's
current object again. Deactivation changes no association: an inactive agent only pauses.

Callers still announce their own change (the agent, or every agent for a stack's labels) beyond
the pairs settled here: two concurrent changes on either side each miss the other's uncommitted
half, so neither sees the association change, and only that announcement keeps a stale ETag from
being answered 304.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from uuid import UUID

from brokkr.broker import db
from brokkr.broker.domain import hints, manifests
from brokkr.broker.services.work import Work

# (agent id, stack id)
Pair = tuple[UUID, UUID]


def of_agent(w: Work, agent_id: UUID) -> AbstractAsyncContextManager[None]:
    """Settle the associations of one agent changed inside the block."""

    async def pairs() -> set[Pair]:
        stack_ids = await db.targeting.associated_live_stack_ids(w.tx, agent_id)
        return {(agent_id, stack_id) for stack_id in stack_ids}

    return _settling(w, pairs)


def of_stack(w: Work, stack_id: UUID) -> AbstractAsyncContextManager[None]:
    """Settle the associations of one live stack changed inside the block."""

    async def pairs() -> set[Pair]:
        agent_ids = await db.targeting.associated_agents(w.tx, stack_id)
        return {(agent_id, stack_id) for agent_id in agent_ids}

    return _settling(w, pairs)


@asynccontextmanager
async def _settling(w: Work, pairs: Callable[[], Awaitable[set[Pair]]]) -> AsyncIterator[None]:
    before = await pairs()
    yield
    after = await pairs()
    await _unassign(w, before - after)
    await _reassign(w, after - before)
    await _hint(w, before ^ after)


def _grouped(pairs: Iterable[Pair], *, by_stack: bool) -> dict[UUID, list[UUID]]:
    groups: dict[UUID, list[UUID]] = {}
    for agent_id, stack_id in sorted(pairs):
        key, member = (stack_id, agent_id) if by_stack else (agent_id, stack_id)
        groups.setdefault(key, []).append(member)
    return groups


async def _unassign(w: Work, lost: set[Pair]) -> None:
    """One marker per stack for all the agents that lost it in this change. A stack without a
    revision put nothing on any cluster, so it owes nothing."""
    agents_by_stack = _grouped(lost, by_stack=True)
    held = await db.deployment_objects.stacks_with_revisions(w.tx, agents_by_stack)
    for stack_id in sorted(held):
        agent_ids = agents_by_stack[stack_id]
        marker = await db.deployment_objects.insert(
            w.tx,
            stack_id=stack_id,
            yaml_content=manifests.MARKER_CONTENT,
            yaml_checksum=manifests.checksum(manifests.MARKER_CONTENT),
            is_deletion_marker=True,
            owed_only=True,
            now=w.now,
        )
        await db.target_state.owe_marker(w.tx, marker.id, agent_ids, now=w.now)
        details = {
            "agent_ids": [str(agent_id) for agent_id in agent_ids],
            "deletion_marker_id": str(marker.id),
        }
        await w.audit("stack.unassigned", "stack", stack_id, details)
        await w.state_changed(agent_ids)


async def _hint(w: Work, changed: set[Pair]) -> None:
    """Agents on the channel that gained or lost a stack ask for their target state now. The
    agents are named: one that lost the stack is no longer found through it after the commit."""
    for stack_id, agent_ids in _grouped(changed, by_stack=True).items():
        await w.hint(hints.Hint(kind="stack_changed", ref=stack_id, agents=tuple(agent_ids)))


async def _reassign(w: Work, gained: set[Pair]) -> None:
    for agent_id, stack_ids in _grouped(gained, by_stack=False).items():
        await db.target_state.cancel_markers(w.tx, agent_id, stack_ids)
        await w.state_changed(agent_id)
