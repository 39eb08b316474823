"""Diagnostic maintenance on both databases: unclaimed requests expire, unanswered claims fail,
requests are forgotten by when they ended (not when they were made), two brokers running it
together change each request once, and the job runs at start and keeps running."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta

import msgspec
import pytest

from brokkr.broker import db
from brokkr.broker.db import tables
from brokkr.broker.jobs.diagnostics import DiagnosticMaintenance
from brokkr.broker.services import diagnostics
from brokkr.broker.services.context import Context
from tests.agent.waiting import eventually
from tests.broker.api.diagnosing import World, at, make_world, stamp
from tests.broker.conftest import Api

_q, _res = tables.diagnostic_requests, tables.diagnostic_results


@pytest.fixture
async def world(api: Api) -> World:
    return await make_world(api)


def now(api: Api) -> datetime:
    ctx: Context = api.broker.app.state.ctx
    return ctx.now()


async def test_unclaimed_requests_expire_when_their_time_is_up(world: World) -> None:
    due = await world.request(retention_minutes=1)
    later = await world.request(retention_minutes=10)
    moment = stamp(due["expires_at"])  # expiry is inclusive: claims need expires_at > now

    assert await diagnostics.maintain(at(world.api, moment)) == (1, 0, 0)

    expired = await world.row(due["id"])
    assert expired["status"] == "expired"
    assert expired["failure_reason"] == "not claimed before it expired"
    assert expired["completed_at"] == moment
    assert (await world.row(later["id"]))["status"] == "pending"
    shown = (await world.get(due["id"])).json()["request"]
    assert (shown["status"], shown["failure_reason"]) == ("expired", expired["failure_reason"])
    trail = await world.api.audit(action="diagnostic.expired")
    assert [(e["resource_id"], e["actor_type"]) for e in trail] == [(due["id"], "system")]
    assert await diagnostics.maintain(at(world.api, moment)) == (0, 0, 0)


async def test_claims_left_unanswered_fail(world: World) -> None:
    stuck = await world.claimed()
    recent = await world.claimed()
    answered = await world.claimed()
    await world.submit(answered["id"])
    claimed_at = stamp(stuck["claimed_at"])
    await world.set(recent["id"], claimed_at=claimed_at + timedelta(seconds=30))
    moment = claimed_at + timedelta(seconds=300)

    assert await diagnostics.maintain(at(world.api, moment)) == (0, 1, 0)

    failed = await world.row(stuck["id"])
    assert failed["status"] == "failed" and failed["completed_at"] == moment
    assert failed["failure_reason"] == "the agent claimed it but sent no result within 300 s"
    assert (await world.row(recent["id"]))["status"] == "claimed"
    assert (await world.row(answered["id"]))["status"] == "completed"
    # Too late: the request ended, its result is refused.
    late = await world.submit(stuck["id"])
    assert late.status_code == 409
    assert late.json()["message"] == "request status is failed, expected 'claimed'"
    trail = await world.api.audit(action="diagnostic.failed")
    assert [e["resource_id"] for e in trail] == [stuck["id"]]


async def test_the_claim_timeout_is_read_from_the_settings_in_force(world: World) -> None:
    stuck = await world.claimed()
    live = world.api.broker.app.state.ctx.settings
    before = live.current
    live.current = msgspec.structs.replace(
        before, broker=msgspec.structs.replace(before.broker, diagnostic_claim_timeout_seconds=10)
    )
    try:
        moment = stamp(stuck["claimed_at"]) + timedelta(seconds=10)
        assert await diagnostics.maintain(at(world.api, moment)) == (0, 1, 0)
    finally:
        live.current = before
    assert "within 10 s" in (await world.row(stuck["id"]))["failure_reason"]


async def test_requests_are_forgotten_by_when_they_ended(world: World) -> None:
    moment = now(world.api)
    long_ago = moment - timedelta(hours=48)
    # Made long ago but answered just now: kept, with its result.
    kept = await world.claimed()
    await world.submit(kept["id"])
    await world.set(kept["id"], created_at=long_ago, claimed_at=long_ago)
    # Answered 25 hours ago: deleted, its result with it.
    old = await world.claimed()
    await world.submit(old["id"])
    await world.set(old["id"], completed_at=moment - timedelta(hours=25))
    # Expired and failed ones go the same way.
    gone_expired = await world.request()
    await world.set(
        gone_expired["id"], status="expired", completed_at=moment - timedelta(hours=24, seconds=1)
    )
    # Still waiting, however old: never deleted.
    waiting = await world.request()
    await world.set(waiting["id"], created_at=long_ago)

    assert await diagnostics.maintain(at(world.api, moment)) == (0, 0, 2)

    remaining = await world.api.count(_q)
    assert remaining == 2
    assert (await world.get(kept["id"])).json()["result"]["request_id"] == kept["id"]
    assert (await world.get(old["id"])).status_code == 404
    assert (await world.get(waiting["id"])).status_code == 200
    assert await world.api.count(_res) == 1


async def test_deletion_goes_in_batches(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diagnostics, "MAINTENANCE_BATCH", 2)
    moment = now(world.api)
    for _ in range(5):
        created = await world.request()
        await world.set(created["id"], status="expired", completed_at=moment - timedelta(hours=30))
    assert await diagnostics.maintain(at(world.api, moment)) == (0, 0, 5)
    assert await world.api.count(_q) == 0


async def test_two_brokers_end_each_request_once(world: World) -> None:
    ids = [(await world.request(retention_minutes=1))["id"] for _ in range(25)]
    api = world.api
    moment = now(api) + timedelta(minutes=2)
    settings = api.broker.settings
    second = db.create(settings.database_url, pool_size=4, timeouts=settings.database.timeouts())
    try:
        one = at(api, moment)
        two = dataclasses.replace(one, database=second)
        results = await asyncio.gather(
            diagnostics.maintain(one), diagnostics.maintain(two), diagnostics.maintain(one)
        )
    finally:
        await second.dispose()
    assert sum(expired for expired, _, _ in results) == len(ids)
    assert await api.count(_q, _q.c.status == "expired") == len(ids)
    assert len(await api.audit(action="diagnostic.expired", limit="1000")) == len(ids)


async def test_the_job_runs_at_start_and_keeps_running(world: World) -> None:
    created = await world.request(retention_minutes=1)
    ctx: Context = world.api.broker.app.state.ctx
    calls = 0

    def clock() -> datetime:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("first run fails")
        return ctx.now() + timedelta(minutes=2)

    live = ctx.settings
    before = live.current
    live.current = msgspec.structs.replace(
        before,
        broker=msgspec.structs.replace(before.broker, diagnostic_cleanup_interval_seconds=0.01),
    )
    job = DiagnosticMaintenance(dataclasses.replace(ctx, now=clock))
    job.start()
    try:

        async def expired() -> bool:
            status: str = (await world.row(created["id"]))["status"]
            return status == "expired"

        await eventually(expired, what="the request expired by the job")
    finally:
        await job.stop()
        live.current = before
    assert calls >= 2
