"""Work-order maintenance (D17, D21): two brokers on one database (PostgreSQL, or one SQLite
file) release each stale claim exactly once, and the job keeps running through a failed run."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta

import sqlalchemy as sa

from brokkr.broker import db
from brokkr.broker.db import tables
from brokkr.broker.jobs.work_orders import WorkOrderMaintenance
from brokkr.broker.services import work_orders
from brokkr.broker.services.context import Context
from tests.broker.conftest import Api, auth, limits

JOB = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n"
ORDERS = 30


async def claimed_orders(api: Api, count: int) -> list[str]:
    agent, pak = await api.create_agent()
    ids = []
    for _ in range(count):
        body = {
            "work_type": "custom",
            "yaml_content": JOB,
            "target_agent_ids": [agent["id"]],
            "claim_timeout_seconds": 60,
        }
        created = await api.client.post("/api/v1/work-orders", json=body, headers=api.admin)
        order_id = created.json()["id"]
        claim = await api.client.post(
            f"/api/v1/work-orders/{order_id}/claim",
            json={"agent_id": agent["id"]},
            headers=auth(pak),
        )
        assert claim.status_code == 200, claim.text
        ids.append(order_id)
    return ids


async def test_two_brokers_never_release_a_claim_twice(api: Api) -> None:
    await claimed_orders(api, ORDERS)
    ctx: Context = api.broker.app.state.ctx
    later = ctx.now() + timedelta(minutes=5)
    settings = api.broker.settings
    second = db.create(settings.database_url, pool_size=4, timeouts=settings.database.timeouts())
    try:
        one = dataclasses.replace(ctx, now=lambda: later)
        two = dataclasses.replace(ctx, database=second, now=lambda: later)
        results = await asyncio.gather(
            work_orders.maintain(one), work_orders.maintain(two), work_orders.maintain(one)
        )
    finally:
        await second.dispose()
    assert sum(released for _, released in results) == ORDERS
    q = tables.work_orders
    assert await api.count(q, q.c.status == "PENDING", q.c.retry_count == 1) == ORDERS
    assert len(await api.audit(action="work_order.claim_released", limit="1000")) == ORDERS


async def test_maintenance_job_runs_on_its_interval_and_survives_failures(api: Api) -> None:
    await claimed_orders(api, 1)
    ctx: Context = api.broker.app.state.ctx
    calls = 0
    real = ctx.now

    def clock() -> datetime:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("first run fails")
        return real() + timedelta(minutes=5)

    job = WorkOrderMaintenance(dataclasses.replace(ctx, now=clock))
    with limits(api, work_order_maintenance_interval_seconds=0.01):
        job.start()
        try:
            for _ in range(500):
                q = tables.work_orders
                if await api.count(q, q.c.status == "PENDING", q.c.retry_count == 1):
                    break
                await asyncio.sleep(0.01)
        finally:
            await job.stop()
    assert calls >= 2
    async with api.broker.database.read() as tx:
        status = (await tx.execute(sa.select(tables.work_orders.c.status))).scalar_one()
    assert status == "PENDING"
