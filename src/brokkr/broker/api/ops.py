"""Unauthenticated operational routes: /healthz, /readyz, /metrics (D22)."""

from __future__ import annotations

from litestar import Response, Router, get
from litestar.datastructures import State

from brokkr.broker import metrics, services
from brokkr.broker.api.dependencies import ContextDep


@get(
    "/healthz",
    include_in_schema=True,
    summary="Liveness: the process is up",
    tags=["operations"],
    sync_to_thread=False,
)
def healthz() -> Response[str]:
    return Response("OK", media_type="text/plain")


@get(
    "/readyz",
    summary="Readiness: database reachable and migrations current (else 503)",
    tags=["operations"],
)
async def readyz(ctx: ContextDep, state: State) -> Response[str]:
    await services.readiness.check(ctx, expected_revision=state.schema_head)
    return Response("Ready", media_type="text/plain")


@get("/metrics", summary="Prometheus metrics", tags=["operations"])
async def prometheus_metrics(state: State) -> Response[bytes]:
    """Prometheus text format: requests by route template, database statements and pools,
    webhook deliveries and outbox depth, work orders, active agents and heartbeat ages (see
    docs/metrics.md). Never queries the database: fleet counts are refreshed in the background."""
    collectors: metrics.Metrics = state.metrics
    return Response(collectors.render(), media_type=metrics.CONTENT_TYPE)


router = Router(path="/", route_handlers=[healthz, readyz, prometheus_metrics])
