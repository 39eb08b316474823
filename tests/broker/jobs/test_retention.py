"""Audit retention: `broker.audit_log_retention_days` (default 90, 0 keeps everything).

Covers what is deleted (records older than the retention, by their timestamp) and kept, batches
that each commit on their own, two brokers purging at once (every old row deleted exactly once,
no error), the retention read from the settings in force at each run (a reload applies), and the
background job: it runs at start and stops with the broker.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import msgspec

from brokkr.broker.db import tables
from brokkr.broker.jobs.retention import AuditRetention
from brokkr.broker.services import audit as audit_service
from brokkr.broker.services.context import Context
from brokkr.broker.settings import Settings
from tests.broker.conftest import Api


def test_retention_defaults_to_90_days() -> None:
    assert Settings().broker.audit_log_retention_days == 90


def context(api: Api) -> Context:
    ctx: Context = api.broker.app.state.ctx
    return ctx


@contextmanager
def retention_days(api: Api, days: int) -> Iterator[None]:
    live = context(api).settings
    before = live.current
    live.current = msgspec.structs.replace(
        before, broker=msgspec.structs.replace(before.broker, audit_log_retention_days=days)
    )
    try:
        yield
    finally:
        live.current = before


async def insert_aged(api: Api, *ages_in_days: float) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "id": uuid.uuid4(),
            "timestamp": now - timedelta(days=age),
            "created_at": now - timedelta(days=age),
            "actor_type": "system",
            "actor_id": None,
            "key_id": None,
            "action": "test.aged",
            "resource_type": "test",
            "resource_id": None,
            "outcome": "success",
            "details": {"age": age},
            "ip_address": None,
            "user_agent": None,
        }
        for age in ages_in_days
    ]
    async with api.broker.database.transaction() as tx:
        await tx.execute(tables.audit_logs.insert(), rows)


async def ages_left(api: Api) -> list[float]:
    return sorted(log["details"]["age"] for log in await api.audit(action="test.aged"))


async def test_records_older_than_the_retention_are_deleted(api: Api) -> None:
    await insert_aged(api, 1, 29.9, 30.1, 45, 400)
    with retention_days(api, 30):
        assert await audit_service.purge_expired(context(api)) == 3
    assert await ages_left(api) == [1, 29.9]


async def test_zero_keeps_every_record(api: Api) -> None:
    await insert_aged(api, 1, 400, 4000)
    with retention_days(api, 0):
        assert await audit_service.purge_expired(context(api)) == 0
    assert await ages_left(api) == [1, 400, 4000]


async def test_deletes_in_batches_until_nothing_old_is_left(api: Api) -> None:
    await insert_aged(api, *[100 + index for index in range(23)], 5)
    with retention_days(api, 90):
        assert await audit_service.purge_expired(context(api), batch=4) == 23
    assert await ages_left(api) == [5]


async def test_two_brokers_purging_together_delete_each_row_once(api: Api) -> None:
    await insert_aged(api, *[100 + index for index in range(40)], 2)
    with retention_days(api, 90):
        counts = await asyncio.gather(
            audit_service.purge_expired(context(api), batch=5),
            audit_service.purge_expired(context(api), batch=5),
        )
    assert sum(counts) == 40
    assert await ages_left(api) == [2]


async def test_the_job_runs_at_start_and_stops_cleanly(api: Api) -> None:
    await insert_aged(api, 200, 3)
    job = AuditRetention(context(api), interval=0.01)
    with retention_days(api, 90):
        job.start()
        for _ in range(200):
            if await ages_left(api) == [3]:
                break
            await asyncio.sleep(0.01)
        await job.stop()
    assert await ages_left(api) == [3]
