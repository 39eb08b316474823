"""/metrics beyond request counting (test_ops.py has the route-template labels), on SQLite and
PostgreSQL: every metric appears with its labels, and moves when its thing happens.

Covers HTTP methods a client invents collapsing to "OTHER" and unmatched paths to one label value;
statements counted and timed by kind; the database pools' size and use read at scrape time; the
webhook delivery recording API (outcomes, latency; an unknown outcome refused); and the fleet
gauges (active agents, heartbeat-age quantiles, NaN while no agent sent a heartbeat, stacks,
work orders by status, outbox depth), counted by the background job and only read by a scrape.
tests/broker/test_metrics_multiprocess.py has the workers of one server.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from brokkr.broker.db import tables
from brokkr.broker.metrics import Metrics
from tests.broker.conftest import Api
from tests.broker.jobs.test_retention import insert_delivery, insert_subscription

Labels = dict[str, str]


async def scrape(api: Api) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def label_values(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, label: str
) -> set[str]:
    return {dict(labels)[label] for sample, labels in samples if sample == name}


def metrics(api: Api) -> Metrics:
    collectors: Metrics = api.broker.app.state.metrics
    return collectors


# --- HTTP ---------------------------------------------------------------------------------------


async def test_invented_methods_and_unmatched_paths_have_one_label_value_each(api: Api) -> None:
    before = await scrape(api)
    for path in (f"/nowhere/{uuid.uuid4()}", "/api/v1/no-such-thing", "/x" * 50):
        assert (await api.client.get(path)).status_code == 404
    await api.client.request("BREW", "/healthz")
    after = await scrape(api)
    unmatched = dict(endpoint="<unmatched>", method="GET", status="404")
    assert (
        value(after, "brokkr_http_requests_total", **unmatched)
        - value(before, "brokkr_http_requests_total", **unmatched)
        == 3
    )
    methods = label_values(after, "brokkr_http_requests_total", "method")
    assert "BREW" not in methods and "OTHER" in methods
    endpoints = label_values(after, "brokkr_http_requests_total", "endpoint")
    assert not any("nowhere" in e or "no-such-thing" in e or "/x/x" in e for e in endpoints)
    # Litestar matches no route for a method no route has (405): one label value again.
    brewed = dict(endpoint="<unmatched>", method="OTHER", status="405")
    assert value(after, "brokkr_http_requests_total", **brewed) >= 1


# --- database -----------------------------------------------------------------------------------


async def test_statements_are_counted_and_timed_by_kind(api: Api) -> None:
    before = await scrape(api)
    await api.create_agent("counted")
    assert (await api.client.get("/api/v1/agents", headers=api.admin)).status_code == 200
    after = await scrape(api)
    assert label_values(after, "brokkr_database_queries_total", "query_type") == {
        "select",
        "insert",
        "update",
        "delete",
        "other",
    }
    for kind in ("select", "insert"):
        assert value(after, "brokkr_database_queries_total", query_type=kind) > value(
            before, "brokkr_database_queries_total", query_type=kind
        )
        assert value(
            after, "brokkr_database_query_duration_seconds_count", query_type=kind
        ) > value(before, "brokkr_database_query_duration_seconds_count", query_type=kind)


async def test_pool_sizes_are_read_at_scrape_time(api: Api) -> None:
    samples = await scrape(api)
    pools = label_values(samples, "brokkr_database_pool_size", "pool")
    # PostgreSQL's hot-path reads have their own pool.
    assert pools == ({"main", "fast"} if api.broker.backend == "postgresql" else {"main"})
    # Each worker of `brokkr serve` has its own pools; a single-process broker is worker 0.
    assert label_values(samples, "brokkr_database_pool_size", "worker") == {"0"}
    size = api.broker.settings.database.pool_size
    assert value(samples, "brokkr_database_pool_size", pool="main", worker="0") == size
    for pool in pools:
        in_use = value(samples, "brokkr_database_pool_checked_out", pool=pool, worker="0")
        opened = value(samples, "brokkr_database_pool_open", pool=pool, worker="0")
        assert 0 <= in_use <= opened


# --- webhook deliveries -------------------------------------------------------------------------


async def test_delivery_outcomes_are_counted_and_timed(api: Api) -> None:
    before = await scrape(api)
    for outcome in ("success", "failed", "dead"):
        assert ("brokkr_webhook_deliveries_total", frozenset({("outcome", outcome)})) in before
    ctx = api.broker.app.state.ctx
    ctx.webhook_delivered("success", 0.02)
    ctx.webhook_delivered("success", 0.03)
    ctx.webhook_delivered("dead", 45.0)
    after = await scrape(api)

    def moved(name: str, outcome: str) -> float:
        return value(after, name, outcome=outcome) - value(before, name, outcome=outcome)

    assert moved("brokkr_webhook_deliveries_total", "success") == 2
    assert moved("brokkr_webhook_deliveries_total", "dead") == 1
    assert moved("brokkr_webhook_deliveries_total", "failed") == 0
    assert moved("brokkr_webhook_delivery_duration_seconds_count", "success") == 2
    assert moved("brokkr_webhook_delivery_duration_seconds_sum", "dead") == pytest.approx(45.0)
    assert (
        value(after, "brokkr_webhook_delivery_duration_seconds_bucket", outcome="dead", le="30.0")
        - value(
            before, "brokkr_webhook_delivery_duration_seconds_bucket", outcome="dead", le="30.0"
        )
        == 0
    )


def test_an_unknown_outcome_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown webhook delivery outcome"):
        Metrics().webhook_delivered("delivered", 1.0)


# --- fleet gauges -------------------------------------------------------------------------------


async def refresh(api: Api) -> None:
    await api.broker.app.state.runtime.gauges.run_once()


async def activate(api: Api, agent_id: str, heartbeat_seconds_ago: float | None) -> None:
    agents = tables.agents
    heartbeat = (
        None
        if heartbeat_seconds_ago is None
        else datetime.now(UTC) - timedelta(seconds=heartbeat_seconds_ago)
    )
    async with api.broker.database.transaction() as tx:
        await tx.execute(
            agents.update()
            .where(agents.c.id == uuid.UUID(agent_id))
            .values(status="ACTIVE", last_heartbeat=heartbeat)
        )


async def test_fleet_gauges_follow_the_database_after_a_refresh(api: Api) -> None:
    await refresh(api)
    empty = await scrape(api)
    assert value(empty, "brokkr_active_agents") == 0
    assert value(empty, "brokkr_stacks_total") == 0
    assert value(empty, "brokkr_webhook_outbox_depth") == 0
    assert label_values(empty, "brokkr_work_orders", "status") == {
        "PENDING",
        "CLAIMED",
        "RETRY_PENDING",
    }
    # No heartbeat at all: NaN quantiles rather than a reassuring 0.
    assert label_values(empty, "brokkr_agent_heartbeat_age_seconds", "quantile") == {
        "0.5",
        "0.9",
        "0.99",
        "1",
    }
    for quantile in ("0.5", "0.9", "0.99", "1"):
        age = value(empty, "brokkr_agent_heartbeat_age_seconds", quantile=quantile)
        assert math.isnan(age)

    agents = [await api.create_agent(f"edge-{n}", f"cluster-{n}") for n in range(5)]
    for (agent, _), age in zip(agents, (100, 200, 300, 4000), strict=False):
        await activate(api, agent["id"], age)
    inactive, _ = await api.create_agent("idle", "cluster-idle")
    await activate(api, agents[4][0]["id"], None)
    async with api.broker.database.transaction() as tx:
        await tx.execute(
            tables.agents.update()
            .where(tables.agents.c.id == uuid.UUID(inactive["id"]))
            .values(status="INACTIVE", last_heartbeat=datetime.now(UTC))
        )
    _, generator_pak = await api.create_generator()
    for name in ("web", "db"):
        created = await api.client.post(
            "/api/v1/stacks",
            json={"name": name},
            headers={"Authorization": f"Bearer {generator_pak}"},
        )
        assert created.status_code == 201
    order = await api.client.post(
        "/api/v1/work-orders",
        json={
            "work_type": "custom",
            "yaml_content": "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: x\n",
            "target_agent_ids": [agents[0][0]["id"]],
        },
        headers=api.admin,
    )
    assert order.status_code == 201, order.text
    subscription = await insert_subscription(api)
    for status in ("pending", "acquired", "failed", "success", "dead"):
        await insert_delivery(api, subscription, status, completed_days_ago=None)

    unrefreshed = await scrape(api)
    assert value(unrefreshed, "brokkr_active_agents") == 0  # a scrape only reads the last counts
    await refresh(api)
    samples = await scrape(api)
    assert value(samples, "brokkr_active_agents") == 5
    assert value(samples, "brokkr_stacks_total") == 2
    assert value(samples, "brokkr_work_orders", status="PENDING") == 1
    assert value(samples, "brokkr_work_orders", status="CLAIMED") == 0
    assert value(samples, "brokkr_webhook_outbox_depth") == 3
    quantiles = {
        q: value(samples, "brokkr_agent_heartbeat_age_seconds", quantile=q)
        for q in label_values(samples, "brokkr_agent_heartbeat_age_seconds", "quantile")
    }
    assert set(quantiles) == {"0.5", "0.9", "0.99", "1"}
    # Nearest rank over 100, 200, 300 and 4000 seconds (plus the seconds this test took).
    for quantile, expected in {"0.5": 200, "0.9": 4000, "1": 4000}.items():
        assert expected <= quantiles[quantile] < expected + 60


async def test_deleted_agents_and_stacks_are_not_counted(api: Api) -> None:
    agent, _ = await api.create_agent("gone")
    await activate(api, agent["id"], 10)
    deleted = await api.client.delete(f"/api/v1/agents/{agent['id']}", headers=api.admin)
    assert deleted.status_code == 204, deleted.text
    async with api.broker.database.read() as tx:
        row = (
            await tx.execute(
                sa.select(tables.agents.c.deleted_at).where(
                    tables.agents.c.id == uuid.UUID(agent["id"])
                )
            )
        ).first()
    assert row is None or row.deleted_at is not None
    await refresh(api)
    assert value(await scrape(api), "brokkr_active_agents") == 0
