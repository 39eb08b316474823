"""Turns of the periodic jobs: one row per job, claimed by whichever broker process finds it due
first. The claim is one conditional update, so of several processes claiming at once exactly
one wins (PostgreSQL re-checks the condition on the row the winner committed; SQLite runs one
write transaction at a time)."""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from brokkr.broker.db import tables
from brokkr.broker.db.engine import Tx

_s = tables.job_schedule


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    won: bool
    # When the job is next due: ``now + interval`` for the winner, else the winner's due time.
    due_at: datetime


async def claim_turn(tx: Tx, job: str, *, holder: str, now: datetime, interval: timedelta) -> Claim:
    """Take ``job``'s turn if it is due at ``now`` (a job never seen before is due at once),
    making it due again ``interval`` later."""
    dialect = postgresql if tx.dialect.name == "postgresql" else sqlite
    await tx.execute(
        dialect.insert(_s)
        .values(job=job, due_at=now, runs=0)
        .on_conflict_do_nothing(index_elements=[_s.c.job])
    )
    due_at = now + interval
    claimed = await tx.execute(
        _s.update()
        .where(_s.c.job == job, _s.c.due_at <= now)
        .values(due_at=due_at, runs=_s.c.runs + 1, holder=holder, last_run_at=now)
    )
    if claimed.rowcount == 1:
        return Claim(won=True, due_at=due_at)
    row = await tx.execute(sa.select(_s.c.due_at).where(_s.c.job == job))
    return Claim(won=False, due_at=row.scalar_one())


async def forget_idle(tx: Tx, *, due_before: datetime) -> int:
    """Delete the rows of jobs nobody claimed since ``due_before`` (those of servers long gone)
    and say how many; a job still running just starts a new row at its next claim."""
    result = await tx.execute(_s.delete().where(_s.c.due_at < due_before))
    return int(result.rowcount)
