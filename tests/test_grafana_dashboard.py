"""deploy/grafana/brokkr-broker.json queries only what the broker exports.

Every panel target's PromQL is scanned for metric names (``brokkr_*``, the only metrics it may
use); each must be a sample name on the /metrics of a broker started in-process after some
traffic (so histograms' ``_bucket``/``_sum``/``_count`` and counters' ``_total`` are checked as
served), and every label a selector filters on must be one of that metric's labels.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from brokkr.broker.api.observability import Observability
from brokkr.broker.app import create_app
from brokkr.broker.db import tables
from tests.broker.conftest import ADMIN_PAK, auth, settings_for

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "brokkr-broker.json"
METRIC = re.compile(r"\b(brokkr_[a-z0-9_]+)\b")
SELECTOR = re.compile(r"\b(brokkr_[a-z0-9_]+)\{([^}]*)\}")
MATCHER = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)")


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        target["expr"]
        for panel in panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]


@pytest.fixture
async def exported(tmp_path: Path) -> AsyncIterator[dict[str, set[str]]]:
    """Sample name -> label names on /metrics, after requests, an active agent's heartbeat
    and a gauge refresh."""
    app = create_app(settings_for("sqlite", tmp_path, postgres_url=""))
    await app.state.runtime.start()
    transport = httpx.ASGITransport(app=Observability(app, app.state.metrics))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://broker.test") as client:
            admin = auth(ADMIN_PAK)
            created = await client.post(
                "/api/v1/agents", json={"name": "a", "cluster_name": "c"}, headers=admin
            )
            assert created.status_code == 201
            async with app.state.ctx.database.transaction() as tx:
                await tx.execute(
                    tables.agents.update().values(status="ACTIVE", last_heartbeat=datetime.now(UTC))
                )
            assert (await client.get("/api/v1/agents", headers=admin)).status_code == 200
            assert (await client.get("/api/v1/agents")).status_code == 401
            await app.state.runtime.gauges.run_once()
            # The agent channel needs a real server (tests/broker/channel): its labelled series
            # are observed here as the channel and the telemetry writer observe them.
            metrics = app.state.metrics
            metrics.ws_message("in", "heartbeat")
            metrics.ws_dropped("not_json")
            metrics.telemetry_dropped("agent_pod_logs", 1)
            metrics.telemetry_evicted("agent_pod_logs", 1)
            text = (await client.get("/metrics")).text
    finally:
        await app.state.runtime.stop()
    samples: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, set()).update(sample.labels)
    yield samples


def test_the_dashboard_has_queries() -> None:
    found = expressions()
    assert len(found) >= 10
    assert all(METRIC.search(expr) for expr in found), "a query uses no brokkr metric"


async def test_every_queried_metric_is_exported(exported: dict[str, set[str]]) -> None:
    used = {name for expr in expressions() for name in METRIC.findall(expr)}
    assert used, "no metric names found in the dashboard"
    assert used <= set(exported), sorted(used - set(exported))
    # Panels for every area the broker reports on.
    for area in ("http_requests", "database_pool", "webhook_deliveries", "work_orders", "ws_"):
        assert any(area in name for name in used), area
    for name in ("brokkr_webhook_outbox_depth", "brokkr_active_agents"):
        assert name in used
    assert any(name.startswith("brokkr_agent_heartbeat_age") for name in used)


async def test_every_filtered_label_exists(exported: dict[str, set[str]]) -> None:
    for expr in expressions():
        for name, matchers in SELECTOR.findall(expr):
            for label, _operator in MATCHER.findall(matchers):
                assert label in exported.get(name, set()), f"{name} has no label {label}: {expr}"
