"""Retention (services/retention.py, jobs/retention.py), on SQLite and PostgreSQL.

Covers the defaults and, per table, what is deleted and what is kept: audit records by their
timestamp (`broker.audit_log_retention_days`); webhook deliveries that ended (`success`, `dead`)
by `completed_at` (`broker.webhook_cleanup_retention_days`), never those still owed (`pending`,
`acquired`, `failed`) however old; agent events by `created_at`
(`broker.agent_event_retention_days`) except the newest of each status per agent and deployment
object, so the incremental target state and an unassignment's acknowledgement read the same
after a purge. Also: 0 keeps everything, batches that each commit on their own, a table another
broker is purging is left to it (PostgreSQL advisory lock), two brokers purging at once delete
each row once, a failing table does not stop the others, the retention in force at each run
applies, and the job runs at start and stops cleanly.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa

from brokkr.broker.db import retention as rules
from brokkr.broker.db import tables
from brokkr.broker.jobs.retention import Retention
from brokkr.broker.services import retention
from brokkr.broker.services.context import Context
from brokkr.broker.settings import Settings
from tests.broker.api.test_target_state import (
    create_stack,
    post_object,
    report,
    state,
    target,
)
from tests.broker.conftest import Api, auth


def test_defaults() -> None:
    broker = Settings().broker
    assert broker.audit_log_retention_days == 90
    assert broker.webhook_cleanup_retention_days == 7
    assert broker.agent_event_retention_days == 30


def context(api: Api) -> Context:
    ctx: Context = api.broker.app.state.ctx
    return ctx


@contextmanager
def retention_days(api: Api, **days: int) -> Iterator[None]:
    live = context(api).settings
    before = live.current
    live.current = msgspec.structs.replace(
        before, broker=msgspec.structs.replace(before.broker, **days)
    )
    try:
        yield
    finally:
        live.current = before


def ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


# --- audit records ------------------------------------------------------------------------------


async def insert_audit(api: Api, *ages_in_days: float) -> None:
    rows = [
        {
            "id": uuid.uuid4(),
            "timestamp": ago(age),
            "created_at": ago(age),
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


async def audit_ages(api: Api) -> list[float]:
    return sorted(log["details"]["age"] for log in await api.audit(action="test.aged"))


async def test_audit_records_older_than_the_retention_are_deleted(api: Api) -> None:
    await insert_audit(api, 1, 29.9, 30.1, 45, 400)
    with retention_days(api, audit_log_retention_days=30):
        assert await retention.purge(context(api), retention.AUDIT_LOGS) == 3
    assert await audit_ages(api) == [1, 29.9]


async def test_zero_keeps_every_row(api: Api) -> None:
    await insert_audit(api, 1, 400, 4000)
    subscription = await insert_subscription(api)
    await insert_delivery(api, subscription, "success", completed_days_ago=400)
    with retention_days(
        api,
        audit_log_retention_days=0,
        webhook_cleanup_retention_days=0,
        agent_event_retention_days=0,
    ):
        assert await retention.purge_all(context(api)) == {
            "audit records": 0,
            "webhook deliveries": 0,
            "agent events": 0,
            "kubernetes events": 0,
            "pod log lines": 0,
        }
    assert await audit_ages(api) == [1, 400, 4000]
    assert await api.count(tables.webhook_deliveries) == 1


async def test_deletes_in_batches_until_nothing_old_is_left(api: Api) -> None:
    await insert_audit(api, *[100 + index for index in range(23)], 5)
    with retention_days(api, audit_log_retention_days=90):
        assert await retention.purge(context(api), retention.AUDIT_LOGS, batch=4) == 23
    assert await audit_ages(api) == [5]


async def test_two_brokers_purging_together_delete_each_row_once(api: Api) -> None:
    await insert_audit(api, *[100 + index for index in range(40)], 2)
    with retention_days(api, audit_log_retention_days=90):
        counts = await asyncio.gather(
            retention.purge(context(api), retention.AUDIT_LOGS, batch=5),
            retention.purge(context(api), retention.AUDIT_LOGS, batch=5),
        )
    # Whichever broker found the table locked left the rest to the other: nothing is left over.
    assert sum(counts) == 40
    assert await audit_ages(api) == [2]


# PostgreSQL only: on SQLite one process serves the file, and its single writer already excludes
# a second purge.
@pytest.mark.parametrize("broker", ["postgresql"], indirect=True)
async def test_a_table_another_broker_is_purging_is_left_to_it(api: Api) -> None:
    await insert_audit(api, 100, 200, 2)
    async with api.broker.database.transaction() as other_broker:
        await other_broker.execute(
            sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": rules.AUDIT_LOGS.lock}
        )
        with retention_days(api, audit_log_retention_days=90):
            assert await retention.purge(context(api), retention.AUDIT_LOGS) == 0
        assert await audit_ages(api) == [2, 100, 200]
    with retention_days(api, audit_log_retention_days=90):
        assert await retention.purge(context(api), retention.AUDIT_LOGS) == 2
    assert await audit_ages(api) == [2]


# --- webhook deliveries -------------------------------------------------------------------------


async def insert_subscription(api: Api) -> uuid.UUID:
    subscription = uuid.uuid4()
    now = datetime.now(UTC)
    async with api.broker.database.transaction() as tx:
        await tx.execute(
            tables.webhook_subscriptions.insert().values(
                id=subscription,
                created_at=now,
                updated_at=now,
                name="retention",
                url_encrypted=b"not a url",
                event_types=["*"],
                # Disabled, and its rows not due: no delivery worker touches them.
                enabled=False,
                max_retries=3,
                timeout_seconds=5,
            )
        )
    return subscription


async def insert_delivery(
    api: Api,
    subscription: uuid.UUID,
    status: str,
    *,
    created_days_ago: float = 400,
    completed_days_ago: float | None = None,
) -> uuid.UUID:
    delivery = uuid.uuid4()
    owed = status in ("pending", "acquired", "failed")
    async with api.broker.database.transaction() as tx:
        await tx.execute(
            tables.webhook_deliveries.insert().values(
                id=delivery,
                subscription_id=subscription,
                event_type="stack.created",
                event_id=uuid.uuid4(),
                payload="{}",
                status=status,
                attempts=1,
                acquired_until=ago(-365) if status == "acquired" else None,
                next_retry_at=ago(-365) if owed else None,
                created_at=ago(created_days_ago),
                completed_at=None if completed_days_ago is None else ago(completed_days_ago),
            )
        )
    return delivery


async def delivery_ids(api: Api) -> set[uuid.UUID]:
    async with api.broker.database.read() as tx:
        rows = await tx.execute(sa.select(tables.webhook_deliveries.c.id))
        return {row.id for row in rows}


async def test_finished_deliveries_go_by_completion_time_and_owed_ones_stay(api: Api) -> None:
    subscription = await insert_subscription(api)
    old_success = await insert_delivery(api, subscription, "success", completed_days_ago=8)
    old_dead = await insert_delivery(api, subscription, "dead", completed_days_ago=30)
    # Created long ago, finished recently: its age counts from the end.
    recent_success = await insert_delivery(api, subscription, "success", completed_days_ago=6)
    recent_dead = await insert_delivery(api, subscription, "dead", completed_days_ago=0.5)
    owed = {
        await insert_delivery(api, subscription, status) for status in ("pending", "acquired")
    } | {await insert_delivery(api, subscription, "failed", created_days_ago=1000)}
    with retention_days(api, webhook_cleanup_retention_days=7):
        assert await retention.purge(context(api), retention.WEBHOOK_DELIVERIES) == 2
    left = await delivery_ids(api)
    assert old_success not in left and old_dead not in left
    assert left == {recent_success, recent_dead} | owed


async def test_deliveries_are_purged_in_batches(api: Api) -> None:
    subscription = await insert_subscription(api)
    for age in range(10, 21):
        await insert_delivery(api, subscription, "success", completed_days_ago=age)
    kept = await insert_delivery(api, subscription, "dead", completed_days_ago=1)
    with retention_days(api, webhook_cleanup_retention_days=7):
        assert await retention.purge(context(api), retention.WEBHOOK_DELIVERIES, batch=3) == 11
    assert await delivery_ids(api) == {kept}


# --- agent events -------------------------------------------------------------------------------


async def insert_event(
    api: Api,
    agent_id: str,
    object_id: str,
    status: str,
    days_ago: float,
    *,
    deleted: bool = False,
) -> uuid.UUID:
    event = uuid.uuid4()
    async with api.broker.database.transaction() as tx:
        await tx.execute(
            tables.agent_events.insert().values(
                id=event,
                agent_id=uuid.UUID(agent_id),
                deployment_object_id=uuid.UUID(object_id),
                event_type="DEPLOY",
                status=status,
                message=None,
                created_at=ago(days_ago),
                updated_at=ago(days_ago),
                deleted_at=ago(days_ago) if deleted else None,
            )
        )
    return event


async def event_ids(api: Api) -> set[uuid.UUID]:
    async with api.broker.database.read() as tx:
        rows = await tx.execute(sa.select(tables.agent_events.c.id))
        return {row.id for row in rows}


async def two_objects(api: Api) -> tuple[str, str]:
    _, generator_pak = await api.create_generator()
    stack = await create_stack(api, generator_pak)
    first = await post_object(api, stack["id"], "first")
    second = await post_object(api, stack["id"], "second")
    return first["id"], second["id"]


async def test_old_agent_events_go_but_the_newest_of_each_status_per_object_stays(
    api: Api,
) -> None:
    first, second = await two_objects(api)
    agent, _ = await api.create_agent("agent-a")
    other, _ = await api.create_agent("agent-b", "cluster-2")
    a = agent["id"]
    superseded = {
        await insert_event(api, a, first, "SUCCESS", 100),
        await insert_event(api, a, first, "FAILURE", 70),
        await insert_event(api, a, second, "SUCCESS", 100),
        await insert_event(api, a, second, "SUCCESS", 90),
        # Soft-deleted (its agent was deleted): nothing reads it.
        await insert_event(api, other["id"], second, "SUCCESS", 40, deleted=True),
    }
    kept = {
        # The newest SUCCESS and the newest FAILURE of (agent-a, first), however old.
        await insert_event(api, a, first, "SUCCESS", 60),
        await insert_event(api, a, first, "FAILURE", 50),
        # Young: within the retention.
        await insert_event(api, a, second, "SUCCESS", 5),
        await insert_event(api, a, second, "FAILURE", 3),
        await insert_event(api, a, second, "FAILURE", 1),
        # The only event of (agent-b, first).
        await insert_event(api, other["id"], first, "FAILURE", 200),
        # Soft-deleted but young.
        await insert_event(api, other["id"], second, "FAILURE", 2, deleted=True),
    }
    with retention_days(api, agent_event_retention_days=30):
        assert await retention.purge(context(api), retention.AGENT_EVENTS, batch=2) == len(
            superseded
        )
    assert await event_ids(api) == kept


async def age_every_event(api: Api, days: float) -> None:
    """Move every event ``days`` back in time, keeping their order."""
    events = tables.agent_events
    async with api.broker.database.transaction() as tx:
        rows = (await tx.execute(sa.select(events.c.id, events.c.created_at))).all()
        for row in rows:
            await tx.execute(
                events.update()
                .where(events.c.id == row.id)
                .values(created_at=row.created_at - timedelta(days=days))
            )


async def listed_statuses(api: Api, agent_id: str) -> list[str]:
    response = await api.client.get(f"/api/v1/agents/{agent_id}/events", headers=api.admin)
    assert response.status_code == 200, response.text
    return [event["status"] for event in response.json()]


async def test_purged_events_change_nothing_an_agent_is_served(api: Api) -> None:
    _, generator_pak = await api.create_generator()
    agent, pak = await api.create_agent()
    stack = await create_stack(api, generator_pak)
    applied = await post_object(api, stack["id"], "applied")
    await target(api, agent["id"], stack["id"])
    for status in ("FAILURE", "SUCCESS", "FAILURE", "SUCCESS", "FAILURE"):
        await report(api, agent["id"], pak, applied["id"], status)
    assert await state(api, agent["id"], pak) == []
    await age_every_event(api, 100)
    with retention_days(api, agent_event_retention_days=30):
        assert await retention.purge(context(api), retention.AGENT_EVENTS) == 3
    assert await state(api, agent["id"], pak) == []
    assert sorted(await listed_statuses(api, agent["id"])) == ["FAILURE", "SUCCESS"]
    # A retried report of the object is still accepted.
    await report(api, agent["id"], pak, applied["id"], "SUCCESS")


async def test_purged_events_keep_an_acknowledged_unassignment(api: Api) -> None:
    """Applied, unassigned (marker acknowledged), assigned again: the object must be served
    again, which reads the newest SUCCESS of the object and of the marker."""
    _, generator_pak = await api.create_generator()
    agent, pak = await api.create_agent()
    stack = await create_stack(api, generator_pak)
    applied = await post_object(api, stack["id"], "applied")
    await target(api, agent["id"], stack["id"])
    await report(api, agent["id"], pak, applied["id"], "SUCCESS")
    await report(api, agent["id"], pak, applied["id"], "SUCCESS")
    untargeted = await api.client.delete(
        f"/api/v1/agents/{agent['id']}/targets/{stack['id']}", headers=auth(generator_pak)
    )
    assert untargeted.status_code == 204, untargeted.text
    [marker] = await state(api, agent["id"], pak)
    await report(api, agent["id"], pak, marker["id"], "FAILURE")
    await report(api, agent["id"], pak, marker["id"], "SUCCESS")
    await target(api, agent["id"], stack["id"])
    served: list[Any] = await state(api, agent["id"], pak)
    assert [o["id"] for o in served] == [applied["id"]]
    await age_every_event(api, 100)
    with retention_days(api, agent_event_retention_days=30):
        assert await retention.purge(context(api), retention.AGENT_EVENTS) == 1
    assert await state(api, agent["id"], pak) == served


# --- every table, the job -----------------------------------------------------------------------


async def test_a_failing_table_does_not_stop_the_others(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await insert_audit(api, 200, 3)

    def broken(_broker: Any) -> timedelta:
        raise RuntimeError("settings unreadable")

    monkeypatch.setattr(
        retention,
        "POLICIES",
        (retention.Policy(rules.WEBHOOK_DELIVERIES, broken), retention.AUDIT_LOGS),
    )
    with retention_days(api, audit_log_retention_days=90):
        assert await retention.purge_all(context(api)) == {"audit records": 1}
    assert await audit_ages(api) == [3]


async def test_the_job_runs_at_start_and_stops_cleanly(api: Api) -> None:
    await insert_audit(api, 200, 3)
    subscription = await insert_subscription(api)
    await insert_delivery(api, subscription, "dead", completed_days_ago=100)
    job = Retention(context(api), interval=0.01)
    with retention_days(api, audit_log_retention_days=90, webhook_cleanup_retention_days=7):
        job.start()
        for _ in range(200):
            if await audit_ages(api) == [3] and not await delivery_ids(api):
                break
            await asyncio.sleep(0.01)
        await job.stop()
    assert await audit_ages(api) == [3]
    assert await delivery_ids(api) == set()
