"""The agent's probe server over real HTTP on 127.0.0.1 (§15, D23).

Covers: /healthz is always 200 ``OK``; /readyz needs the Kubernetes API at the last check AND a
broker contact within 3 polling intervals, else 503 JSON naming the reason; /health reports
status, agent id, broker, Kubernetes, last reconcile and counts (503 while unhealthy); /metrics
is Prometheus text with the reference content type and ``brokkr_agent_*`` names; unknown paths
are 404, other methods 405, a malformed request 400. The loop tests cover the probes staying up
while the broker is down.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from brokkr.agent.probes import Health, Metrics, ProbeServer


@pytest.fixture
async def probes() -> AsyncIterator[tuple[Health, Metrics, httpx.AsyncClient]]:
    health = Health(polling_interval=0.1)
    metrics = Metrics()
    server = ProbeServer(health, metrics, host="127.0.0.1", port=0)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            yield health, metrics, http
    finally:
        await server.aclose()


async def test_healthz_is_ok_whatever_the_state(
    probes: tuple[Health, Metrics, httpx.AsyncClient],
) -> None:
    _, _, http = probes
    response = await http.get("/healthz")
    assert (response.status_code, response.text) == (200, "OK")
    assert (await http.head("/healthz")).status_code == 200
    assert (await http.get("/nope")).status_code == 404
    assert (await http.post("/healthz")).status_code == 405


async def test_readyz_needs_kubernetes_and_a_recent_broker_contact(
    probes: tuple[Health, Metrics, httpx.AsyncClient],
) -> None:
    health, _, http = probes
    response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"ready": False, "reason": "Kubernetes API unavailable"}

    health.kubernetes_reachable = True
    health.broker_failed("connection refused")
    response = await http.get("/readyz")
    assert response.status_code == 503
    assert "broker not reached" in response.json()["reason"]
    assert "connection refused" in response.json()["reason"]

    health.broker_reached()
    response = await http.get("/readyz")
    assert (response.status_code, response.text) == (200, "Ready")

    # Three polling intervals (0.3 s) without contact: not ready any more.
    await asyncio.sleep(0.4)
    assert (await http.get("/readyz")).status_code == 503


async def test_health_reports_the_agent(probes: tuple[Health, Metrics, httpx.AsyncClient]) -> None:
    health, _, http = probes
    response = await http.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["agent_id"] is None
    assert body["broker"] == {"connected": False}
    assert body["kubernetes"] == {"connected": False}
    assert isinstance(body["uptime_seconds"], int)
    assert isinstance(body["version"], str)
    assert isinstance(body["timestamp"], str)

    agent_id = uuid.uuid4()
    health.agent_id = agent_id
    health.kubernetes_reachable = True
    health.broker_reached()
    health.last_reconcile_at = datetime.now(UTC)
    health.counts["applied"] += 2
    response = await http.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["agent_id"] == str(agent_id)
    assert body["broker"]["connected"] is True
    assert body["broker"]["last_contact"].endswith("Z")
    assert body["last_reconcile"].endswith("Z")
    assert body["counts"]["applied"] == 2


async def test_metrics_use_the_reference_names(
    probes: tuple[Health, Metrics, httpx.AsyncClient],
) -> None:
    _, metrics, http = probes
    metrics.poll_requests.labels(status="success").inc()
    metrics.poll_duration.observe(0.02)
    metrics.heartbeats.inc()
    metrics.last_successful_poll.set_to_current_time()
    metrics.kubernetes_operations.labels(operation="reconcile").inc()
    metrics.kubernetes_operation_duration.labels(operation="reconcile").observe(0.3)
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4"
    text = response.text
    for line in (
        'brokkr_agent_poll_requests_total{status="success"} 1.0',
        "brokkr_agent_poll_duration_seconds_count 1.0",
        "brokkr_agent_heartbeat_sent_total 1.0",
        'brokkr_agent_kubernetes_operations_total{operation="reconcile"} 1.0',
        'brokkr_agent_kubernetes_operation_duration_seconds_count{operation="reconcile"} 1.0',
    ):
        assert line in text
    assert "brokkr_agent_last_successful_poll_timestamp " in text


async def test_malformed_requests_get_400(
    probes: tuple[Health, Metrics, httpx.AsyncClient],
) -> None:
    _, _, http = probes
    port = http.base_url.port
    assert port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"NONSENSE\r\n\r\n")
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    assert answer.startswith(b"HTTP/1.1 400 ")
