"""Periodic jobs run once per turn per database (jobs/periodic.py, services/job_schedule.py), on
SQLite and PostgreSQL.

Covers: of several broker processes (each its own pool and instance id) running the same job,
exactly one runs each turn, and the job runs again, once, when its next turn falls due (counted
by the job and by ``job_schedule.runs``); concurrent claims of one due turn have one winner; a
per-server job (the fleet gauges) has one turn per ``brokkr serve``, shared by its workers; a
loop whose claim fails logs it and keeps claiming; the broker's own jobs use the keys they say;
and retention forgets the turns of servers gone for a day.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from brokkr.broker import db
from brokkr.broker.db import tables
from brokkr.broker.jobs.periodic import Periodic
from brokkr.broker.jobs.retention import Retention
from brokkr.broker.services import job_schedule
from brokkr.broker.services.context import Context
from tests.agent.waiting import eventually
from tests.broker.conftest import Api

_s = tables.job_schedule
# Short, so losers claim again many times while the test clock stands still.
INTERVAL = 0.05
# Long enough for every loop to have claimed (and lost) several times.
SETTLE = 0.4


class Counting(Periodic):
    name = "test-counting"

    def __init__(self, ctx: Context, *, interval: float = INTERVAL) -> None:
        super().__init__(ctx)
        self._interval = interval
        self.runs = 0

    def interval(self) -> float:
        return self._interval

    async def run_once(self) -> None:
        self.runs += 1


class CountingPerServer(Counting):
    name = "test-counting-per-server"
    per_server = True


class Clock:
    """The brokers' shared wall clock, moved only by the test: turns fall due when it says."""

    def __init__(self, start: datetime) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@dataclasses.dataclass
class Brokers:
    clock: Clock
    make: Callable[..., Context]


@pytest.fixture
async def brokers(api: Api) -> AsyncIterator[Brokers]:
    """Contexts of separate broker processes on the test database: each its own pool and instance
    id, all on one clock (``server_id`` as given, else a server of its own)."""
    base: Context = api.broker.app.state.ctx
    clock = Clock(base.now())
    settings = api.broker.settings
    pools: list[db.Database] = []

    def make(server_id: uuid.UUID | None = None) -> Context:
        database = db.create(
            settings.database_url, pool_size=2, timeouts=settings.database.timeouts()
        )
        pools.append(database)
        return dataclasses.replace(
            base,
            database=database,
            now=clock,
            instance_id=uuid.uuid4(),
            server_id=server_id or uuid.uuid4(),
        )

    try:
        yield Brokers(clock=clock, make=make)
    finally:
        for database in pools:
            await database.dispose()


async def schedule(api: Api) -> dict[str, Any]:
    async with api.broker.database.read() as tx:
        rows = await tx.execute(sa.select(_s))
        return {row.job: row for row in rows}


def running(*jobs: Periodic) -> None:
    for job in jobs:
        job.start()


async def stopped(*jobs: Periodic) -> None:
    for job in jobs:
        await job.stop()


async def total_runs_reach(jobs: Sequence[Counting], count: int) -> None:
    await eventually(lambda: sum(job.runs for job in jobs) >= count, what=f"{count} runs")
    # Every loop claims again several times; none of those claims may win.
    await asyncio.sleep(SETTLE)


async def test_several_brokers_run_each_turn_once(api: Api, brokers: Brokers) -> None:
    contexts = [brokers.make() for _ in range(3)]
    jobs = [Counting(ctx) for ctx in contexts]
    running(*jobs)
    try:
        await total_runs_reach(jobs, 1)
        assert sum(job.runs for job in jobs) == 1
        row = (await schedule(api))["test-counting"]
        assert row.runs == 1
        winner = next(ctx for ctx, job in zip(contexts, jobs, strict=True) if job.runs)
        assert row.holder == str(winner.instance_id)
        assert row.last_run_at == brokers.clock()
        assert row.due_at == brokers.clock() + timedelta(seconds=INTERVAL)

        brokers.clock.advance(INTERVAL)
        await total_runs_reach(jobs, 2)
        assert sum(job.runs for job in jobs) == 2
        assert (await schedule(api))["test-counting"].runs == 2
    finally:
        await stopped(*jobs)


async def test_concurrent_claims_of_a_due_turn_have_one_winner(api: Api, brokers: Brokers) -> None:
    contexts = [brokers.make() for _ in range(2)]
    claims: list[Awaitable[job_schedule.Turn]] = [
        job_schedule.claim(ctx, "test-race", interval=60) for ctx in contexts for _ in range(5)
    ]
    turns = await asyncio.gather(*claims)
    assert sum(turn.won for turn in turns) == 1
    assert {turn.due_in for turn in turns} == {60.0}
    assert (await schedule(api))["test-race"].runs == 1


async def test_a_per_server_job_runs_once_per_server(api: Api, brokers: Brokers) -> None:
    server, other = uuid.uuid4(), uuid.uuid4()
    workers = [CountingPerServer(brokers.make(server)) for _ in range(2)]
    elsewhere = CountingPerServer(brokers.make(other))
    jobs = [*workers, elsewhere]
    running(*jobs)
    try:
        await total_runs_reach(jobs, 2)
        assert sum(job.runs for job in workers) == 1
        assert elsewhere.runs == 1
        rows = await schedule(api)
        assert {job: row.runs for job, row in rows.items() if job.startswith("test-")} == {
            f"test-counting-per-server@{server}": 1,
            f"test-counting-per-server@{other}": 1,
        }
    finally:
        await stopped(*jobs)


async def test_a_failed_claim_is_logged_and_claimed_again(
    api: Api, brokers: Brokers, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = job_schedule.claim
    failures = 0

    async def flaky(ctx: Context, job: str, *, interval: float) -> job_schedule.Turn:
        nonlocal failures
        if failures < 3:
            failures += 1
            raise RuntimeError("database away")
        return await real(ctx, job, interval=interval)

    monkeypatch.setattr(job_schedule, "claim", flaky)
    job = Counting(brokers.make(), interval=0.01)
    with caplog.at_level("WARNING", logger=Counting.__module__):
        running(job)
        try:
            await eventually(lambda: job.runs == 1, what="a run after the failed claims")
        finally:
            await stopped(job)
    assert failures == 3
    assert [r.getMessage() for r in caplog.records].count(
        "test-counting could not claim its turn; retrying in 0.01s"
    ) == 3


def test_the_broker_jobs_claim_per_database_and_the_gauges_per_server(api: Api) -> None:
    runtime = api.broker.app.state.runtime
    ctx: Context = api.broker.app.state.ctx
    assert runtime.retention.turn_key() == "brokkr-retention"
    assert runtime.work_orders.turn_key() == "brokkr-work-order-maintenance"
    assert runtime.diagnostics.turn_key() == "brokkr-diagnostic-maintenance"
    assert runtime.gauges.turn_key() == f"brokkr-gauge-refresh@{ctx.server_id}"


async def test_retention_forgets_the_turns_of_servers_gone_for_a_day(
    api: Api, brokers: Brokers
) -> None:
    gone = brokers.make()
    await job_schedule.claim(gone, "brokkr-gauge-refresh@gone", interval=15)
    brokers.clock.advance(timedelta(days=1, seconds=16).total_seconds())
    here = brokers.make()
    await job_schedule.claim(here, "brokkr-gauge-refresh@here", interval=15)
    await Retention(here).run_once()
    rows = await schedule(api)
    assert "brokkr-gauge-refresh@gone" not in rows
    assert "brokkr-gauge-refresh@here" in rows
