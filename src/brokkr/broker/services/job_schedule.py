"""Turns of the periodic jobs (``jobs.periodic``): of all the broker processes on one database
(the workers of every ``brokkr serve``), one runs a job each time it falls due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from brokkr.broker import db
from brokkr.broker.services.context import Context

# A job nobody claimed for this long after it fell due belongs to a server that is gone.
IDLE = timedelta(days=1)


@dataclass(frozen=True, kw_only=True)
class Turn:
    won: bool
    # Seconds until the job is due again (whoever won it).
    due_in: float


async def claim(ctx: Context, job: str, *, interval: float) -> Turn:
    """Take ``job``'s turn if it is due; the winner runs it, and it is due again ``interval``
    seconds later."""
    async with ctx.work(None) as w:
        claimed = await db.job_schedule.claim_turn(
            w.tx,
            job,
            holder=str(ctx.instance_id),
            now=w.now,
            interval=timedelta(seconds=interval),
        )
    return Turn(won=claimed.won, due_in=(claimed.due_at - w.now).total_seconds())


async def forget_idle(ctx: Context) -> int:
    """Drop the turns of jobs idle for ``IDLE`` (those of servers that stopped); how many."""
    async with ctx.work(None) as w:
        return await db.job_schedule.forget_idle(w.tx, due_before=w.now - IDLE)
