"""What an agent should run (D12, D13): the newest live object of every associated stack, plus
the deletion markers still owed to it (of deleted stacks, and of live stacks it stopped being
associated with), in one statement. The digest variant returns only ids and checksums, so
checking an ETag never reads YAML."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import sqlalchemy as sa

from brokkr.broker.db import prepared, tables, targeting
from brokkr.broker.db.engine import Database, Tx

_d = tables.deployment_objects
_s = tables.stacks
_e = tables.agent_events
_r = tables.deletion_recipients
_agent = sa.bindparam("agent_id", type_=sa.Uuid)


class Entry(msgspec.Struct, frozen=True):
    id: UUID
    sequence_id: int
    yaml_checksum: str


def _statement(columns: tuple[sa.ColumnElement[Any], ...], *, full: bool) -> sa.CompoundSelect[Any]:
    """Both halves start from this agent's own rows, so the work grows with the stacks it is
    associated with, not with the fleet. Constants are literals so that generic prepared plans
    can still use the partial indexes."""
    associated = targeting.associated_stack_ids(_agent).subquery("associated")
    newer = _d.alias("newer")
    newest_sequence = (
        sa.select(sa.func.max(newer.c.sequence_id))
        .where(
            newer.c.stack_id == _s.c.id,
            newer.c.deleted_at.is_(None),
            newer.c.owed_only == sa.false(),
        )
        .correlate(_s)
        .scalar_subquery()
    )
    newest_revisions = (
        sa.select(*columns)
        .select_from(
            associated.join(_s, _s.c.id == associated.c.stack_id).join(
                _d, _d.c.sequence_id == newest_sequence
            )
        )
        .where(_s.c.deleted_at.is_(None))
    )
    owed_markers = (
        sa.select(*columns)
        .select_from(_r.join(_d, _d.c.id == _r.c.deployment_object_id))
        .where(_r.c.agent_id == _agent)
    )
    if not full:
        # D12: only a SUCCESS hides an object; a FAILURE keeps it in the incremental state.
        applied = sa.exists().where(
            _e.c.agent_id == _agent,
            _e.c.deployment_object_id == _d.c.id,
            _e.c.status == sa.literal_column("'SUCCESS'"),
            _e.c.deleted_at.is_(None),
            ~_undone_since(_e.c.created_at),
        )
        newest_revisions = newest_revisions.where(~applied)
        owed_markers = owed_markers.where(~applied)
    # Disjoint halves: a deleted stack has no newest revision, and an agent is owed a live
    # stack's unassignment marker only while it is not associated with that stack.
    return sa.union_all(newest_revisions, owed_markers).order_by(sa.desc("sequence_id"))


def _undone_since(applied_at: sa.ColumnElement[Any]) -> sa.Exists:
    """The agent acknowledged an unassignment marker of the object's stack after applying it:
    it removed the objects, so a re-associated agent is served the object again. Only markers
    newer than the object qualify, a short scan of the live-revisions index."""
    marker, ack = _d.alias("unassignment"), _e.alias("acknowledgement")
    return sa.exists().where(
        marker.c.stack_id == _d.c.stack_id,
        marker.c.sequence_id > _d.c.sequence_id,
        marker.c.deleted_at.is_(None),
        marker.c.owed_only == sa.true(),
        ack.c.agent_id == _agent,
        ack.c.deployment_object_id == marker.c.id,
        ack.c.status == sa.literal_column("'SUCCESS'"),
        ack.c.deleted_at.is_(None),
        ack.c.created_at > applied_at,
    )


_DIGEST_COLUMNS = (_d.c.id, _d.c.sequence_id, _d.c.yaml_checksum)
_DIGEST = {full: prepared.Read(_statement(_DIGEST_COLUMNS, full=full)) for full in (True, False)}


async def digest(database: Database, agent_id: UUID, *, full: bool) -> list[Entry]:
    """Ids and checksums only: enough to compute the ETag."""
    rows = await _DIGEST[full].all(database, agent_id=agent_id)
    return [Entry(row["id"], row["sequence_id"], row["yaml_checksum"]) for row in rows]


def _served(agent_id: UUID, object_id: sa.ColumnElement[UUID]) -> sa.ColumnElement[bool]:
    """Is ``object_id`` one the agent is (or was) given: a live revision of an associated live
    stack, a deletion marker still owed to it, or one it already reported on."""
    owed = sa.exists().where(_r.c.agent_id == agent_id, _r.c.deployment_object_id == object_id)
    # An object the agent already reported on stays "served" to it, so a retried report of an
    # acknowledged deletion marker is accepted rather than refused.
    reported = sa.exists().where(
        _e.c.agent_id == agent_id, _e.c.deployment_object_id == object_id, _e.c.deleted_at.is_(None)
    )
    live = sa.exists().where(
        _d.c.id == object_id,
        _d.c.deleted_at.is_(None),
        _s.c.id == _d.c.stack_id,
        _s.c.deleted_at.is_(None),
        _s.c.id.in_(targeting.associated_stack_ids(agent_id)),
    )
    return sa.or_(owed, reported, live)


async def is_served(tx: Tx, agent_id: UUID, object_id: UUID) -> bool:
    # One round trip: event ingestion asks this inside its write transaction.
    served = _served(agent_id, sa.literal(object_id, sa.Uuid))
    return bool((await tx.execute(sa.select(served))).scalar_one())


async def served_among(tx: Tx, agent_id: UUID, object_ids: Collection[UUID]) -> set[UUID]:
    """Those of ``object_ids`` that ``is_served`` to the agent, in one statement."""
    if not object_ids:
        return set()
    # Aliased so that the subqueries on deployment_objects in ``_served`` stay uncorrelated.
    candidate = _d.alias("candidate")
    rows = await tx.execute(
        sa.select(candidate.c.id).where(
            candidate.c.id.in_(list(object_ids)), _served(agent_id, candidate.c.id)
        )
    )
    return {row.id for row in rows}


async def owe_marker(tx: Tx, marker_id: UUID, agent_ids: list[UUID], *, now: datetime) -> None:
    if agent_ids:
        await tx.execute(
            _r.insert(),
            [
                {"agent_id": a, "deployment_object_id": marker_id, "created_at": now}
                for a in agent_ids
            ],
        )


async def cancel_markers(tx: Tx, agent_id: UUID, stack_ids: Iterable[UUID]) -> None:
    """The agent is associated with these stacks again: it no longer owes their markers."""
    ids = list(stack_ids)
    if ids:
        markers = sa.select(_d.c.id).where(_d.c.stack_id.in_(ids), _d.c.is_deletion_marker)
        await tx.execute(
            _r.delete().where(_r.c.agent_id == agent_id, _r.c.deployment_object_id.in_(markers))
        )


async def acknowledge_marker(tx: Tx, agent_id: UUID, object_id: UUID) -> bool:
    """Whether the agent owed ``object_id`` (a deletion marker) and no longer does."""
    result = await tx.execute(
        _r.delete().where(_r.c.agent_id == agent_id, _r.c.deployment_object_id == object_id)
    )
    return bool(result.rowcount)
