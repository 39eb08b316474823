"""Prometheus collectors of one broker process (reference metric names where the reference has
one), in their own registry. Every label takes a bounded set of values: route templates (never
raw paths), known HTTP methods, statement kinds, delivery outcomes, work-order states, pool names
and heartbeat quantiles; nothing is labelled per agent, stack or delivery.

Fleet-wide gauges (agents, stacks, work orders, outbox) are counted by a background job
(``jobs.gauges``) and only read here, so a scrape never waits on the database.

The workers of one ``brokkr serve --workers N`` are one server to Prometheus: the supervisor sets
``PROMETHEUS_MULTIPROC_DIR`` before it starts them, so prometheus_client (choosing when it is
imported) keeps every value in a per-process file of that directory, and whichever worker serves
a scrape merges all the files. Every gauge says how its values merge (``multiprocess_mode``; a
single process ignores it), and the two per-worker figures, pool use and connected agents, carry
a ``worker`` label so each worker's series stays apart and vanishes when the supervisor marks
the worker dead."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from brokkr.broker.db.instrumentation import QUERY_TYPES, PoolUsage
from brokkr.broker.domain import gauges

BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Webhook receivers are remote and may take up to their subscription's timeout.
DELIVERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST
# Any other method a client sends is counted as "OTHER".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
DELIVERY_OUTCOMES = ("success", "failed", "dead")
# The rate-limited audit actions (services.audit).
AUDITED_FAILURES = ("auth.failed", "access.denied")
TELEMETRY_TABLES = ("agent_k8s_events", "agent_pod_logs")
# How often a worker of a multiprocess broker writes its pools' use to its file, for scrapes
# another worker serves: a scrape (every 15 s or so) sees figures at most this old, and a worker
# pays six memory writes every two seconds, nothing on the path of a statement.
POOL_REFRESH_SECONDS = 2.0


def multiprocess() -> bool:
    """Whether prometheus_client keeps its values in the files the workers of ``brokkr serve``
    share (``PROMETHEUS_MULTIPROC_DIR`` was set when this process first imported it)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


class Metrics:
    def __init__(self, *, worker: int = 0) -> None:
        """``worker``: this process's index among the workers of ``brokkr serve``."""
        self.worker = worker
        self.registry = CollectorRegistry(auto_describe=True)
        # The files hold this process's values too: rendering self.registry as well would count
        # them twice.
        self._merged: CollectorRegistry | None = None
        if multiprocess():
            self._merged = CollectorRegistry(auto_describe=False)
            MultiProcessCollector(self._merged)  # type: ignore[no-untyped-call]
        self._pool_usage: Callable[[], list[PoolUsage]] = lambda: []
        self._pool_refresh: asyncio.Task[None] | None = None
        self.requests = Counter(
            "brokkr_http_requests_total",
            "HTTP requests by route template, method and status",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "brokkr_http_request_duration_seconds",
            "HTTP request latency by route template and method",
            ["endpoint", "method"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.audit_dropped_records = Counter(
            "brokkr_audit_records_dropped_total",
            "Failure audit records (auth.failed, access.denied) not written: rate limited",
            ["action"],
            registry=self.registry,
        )
        self.queries = Counter(
            "brokkr_database_queries_total",
            "SQL statements run, by kind (select, insert, update, delete, other)",
            ["query_type"],
            registry=self.registry,
        )
        self.query_latency = Histogram(
            "brokkr_database_query_duration_seconds",
            "SQL statement latency by kind, from sending it to its answer",
            ["query_type"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.deliveries = Counter(
            "brokkr_webhook_deliveries_total",
            "Webhook delivery attempts by outcome: success, failed (retried later), dead",
            ["outcome"],
            registry=self.registry,
        )
        self.delivery_latency = Histogram(
            "brokkr_webhook_delivery_duration_seconds",
            "Webhook delivery attempt latency (the receiver's answer or the timeout), by outcome",
            ["outcome"],
            buckets=DELIVERY_BUCKETS,
            registry=self.registry,
        )
        self._telemetry_metrics()
        # Bounded label sets are exported at 0 from the start, so rate() sees their first event.
        for kind in QUERY_TYPES:
            self.queries.labels(kind)
            self.query_latency.labels(kind)
        for outcome in DELIVERY_OUTCOMES:
            self.deliveries.labels(outcome)
            self.delivery_latency.labels(outcome)
        for action in AUDITED_FAILURES:
            self.audit_dropped_records.labels(action)
        self._fleet_gauges()
        self._channel_metrics()
        self._pool_gauges()

    def _telemetry_metrics(self) -> None:
        self.telemetry_dropped_rows = Counter(
            "brokkr_ws_telemetry_dropped_total",
            "Telemetry rows not stored: the write buffer was full, or the agent does not reach "
            "the stack it named",
            ["table"],
            registry=self.registry,
        )
        self.telemetry_write_failures = Counter(
            "brokkr_ws_telemetry_write_failed_total",
            "Telemetry rows lost because their batch insert failed",
            ["table"],
            registry=self.registry,
        )
        self.telemetry_eviction_runs = Counter(
            "brokkr_ws_log_eviction_runs_total",
            "Telemetry eviction passes (retention of agent_k8s_events and agent_pod_logs)",
            registry=self.registry,
        )
        self.telemetry_evicted_rows = Counter(
            "brokkr_ws_telemetry_evicted_total",
            "Telemetry rows deleted by retention",
            ["table"],
            registry=self.registry,
        )
        self.live_dropped_frames = Counter(
            "brokkr_ws_live_frames_dropped_total",
            "Live-stream frames dropped for subscribers that read too slowly (each told by a "
            "log_gap)",
            registry=self.registry,
        )
        for table in TELEMETRY_TABLES:
            self.telemetry_dropped_rows.labels(table)
            self.telemetry_write_failures.labels(table)
            self.telemetry_evicted_rows.labels(table)

    def telemetry_dropped(self, table: str, rows: int) -> None:
        self.telemetry_dropped_rows.labels(table).inc(rows)

    def telemetry_write_failed(self, table: str, rows: int) -> None:
        self.telemetry_write_failures.labels(table).inc(rows)

    def telemetry_evicted(self, table: str, rows: int) -> None:
        self.telemetry_evicted_rows.labels(table).inc(rows)

    def telemetry_eviction_run(self) -> None:
        self.telemetry_eviction_runs.inc()

    def live_frames_dropped(self, frames: int) -> None:
        self.live_dropped_frames.inc(frames)

    def _channel_metrics(self) -> None:
        # Per-worker series (here and the pools) are "livemostrecent": the worker label keeps
        # each worker's apart, "live" drops those of a worker the supervisor reaped, and a
        # replacement's figures win over any its predecessor left rather than adding to them.
        self.ws_connected_agents = Gauge(
            "brokkr_ws_connected_agents",
            "Agents connected to this broker's channel (/internal/ws/agent), by worker: a "
            "connection stays on the worker that accepted it",
            ["worker"],
            multiprocess_mode="livemostrecent",
            registry=self.registry,
        )
        self.ws_messages = Counter(
            "brokkr_ws_messages_total",
            "Agent channel frames by direction (in, out) and type (the frame tags)",
            ["direction", "type"],
            registry=self.registry,
        )
        self.ws_live_subscriber_count = Gauge(
            "brokkr_ws_live_subscribers",
            "Live-stream subscribers of this broker, as of the last GET /admin/ws/connections",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.ws_frames_dropped = Counter(
            "brokkr_ws_frames_dropped_total",
            "Agent channel frames dropped, by reason (docs/metrics.md lists them)",
            ["reason"],
            registry=self.registry,
        )
        self.ws_connected_agents.labels(str(self.worker)).set(0)

    def ws_connections(self, count: int) -> None:
        self.ws_connected_agents.labels(str(self.worker)).set(count)

    def ws_message(self, direction: str, type_: str) -> None:
        """``type_`` is one of the channel's frame tags (the caller drops unknown ones)."""
        self.ws_messages.labels(direction, type_).inc()

    def ws_dropped(self, reason: str) -> None:
        self.ws_frames_dropped.labels(reason).inc()

    def ws_live_subscribers(self, count: int) -> None:
        self.ws_live_subscriber_count.set(count)

    def _fleet_gauges(self) -> None:
        # One worker per server counts the fleet (jobs.gauges): its latest counts are the
        # server's, and stay after that worker dies, until another worker counts.
        self.active_agents = Gauge(
            "brokkr_active_agents",
            "Agents whose status is ACTIVE (not deleted)",
            multiprocess_mode="mostrecent",
            registry=self.registry,
        )
        self.heartbeat_age = Gauge(
            "brokkr_agent_heartbeat_age_seconds",
            "Age of the last heartbeat of active agents, as quantiles over the agents that sent"
            ' one ("1": the oldest); NaN while none did',
            ["quantile"],
            multiprocess_mode="mostrecent",
            registry=self.registry,
        )
        self.stacks = Gauge(
            "brokkr_stacks_total",
            "Stacks (not deleted)",
            multiprocess_mode="mostrecent",
            registry=self.registry,
        )
        self.work_orders = Gauge(
            "brokkr_work_orders",
            "Work orders in the queue by status (finished ones are in the work-order log)",
            ["status"],
            multiprocess_mode="mostrecent",
            registry=self.registry,
        )
        self.outbox_depth = Gauge(
            "brokkr_webhook_outbox_depth",
            "Webhook deliveries still owed: pending, claimed, or failed and waiting for a retry",
            multiprocess_mode="mostrecent",
            registry=self.registry,
        )
        for status in gauges.WORK_ORDER_STATUSES:
            self.work_orders.labels(status)

    def audit_dropped(self, action: str) -> None:
        self.audit_dropped_records.labels(action).inc()

    def observe(self, *, endpoint: str, method: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "OTHER"
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint, method).observe(seconds)

    def query(self, query_type: str, seconds: float) -> None:
        self.queries.labels(query_type).inc()
        self.query_latency.labels(query_type).observe(seconds)

    def webhook_delivered(self, outcome: str, seconds: float) -> None:
        """One delivery attempt ended: ``outcome`` is "success", "failed" (to be retried) or
        "dead" (given up); ``seconds`` from sending the request to its answer or timeout."""
        if outcome not in DELIVERY_OUTCOMES:
            raise ValueError(f"unknown webhook delivery outcome {outcome!r}")
        self.deliveries.labels(outcome).inc()
        self.delivery_latency.labels(outcome).observe(seconds)

    def publish(self, snapshot: gauges.Snapshot) -> None:
        """The fleet gauges from the latest counts (``jobs.gauges``)."""
        self.active_agents.set(snapshot.active_agents)
        # Quantiles of no agent at all are NaN, not 0 (0 would read as "all fresh"). They are not
        # removed either: a worker cannot take back a value another worker wrote to its file.
        for quantile in gauges.HEARTBEAT_QUANTILES:
            seconds = snapshot.heartbeat_age_seconds.get(quantile, math.nan)
            self.heartbeat_age.labels(quantile).set(seconds)
        self.stacks.set(snapshot.stacks)
        for status, count in snapshot.work_orders.items():
            self.work_orders.labels(status).set(count)
        self.outbox_depth.set(snapshot.outbox_depth)

    def _pool_gauges(self) -> None:
        help_texts = {
            "size": "Connections a database pool keeps at most (SQLAlchemy may open some more "
            "under load), by worker",
            "open": "Connections a database pool has open, by worker",
            "checked_out": "Connections of a database pool in use right now, by worker",
        }
        self.pools = {
            figure: Gauge(
                f"brokkr_database_pool_{figure}",
                text,
                ["pool", "worker"],
                multiprocess_mode="livemostrecent",
                registry=self.registry,
            )
            for figure, text in help_texts.items()
        }

    def watch_pools(self, usage: Callable[[], list[PoolUsage]]) -> None:
        """Export this process's database pools as ``usage`` reads them (counters in memory, no
        I/O): at every scrape it serves and, once ``start``ed in a multiprocess broker, every
        POOL_REFRESH_SECONDS for the scrapes other workers serve."""
        self._pool_usage = usage

    def start(self) -> None:
        """Keep this worker's pool figures fresh in its file (multiprocess mode only: a single
        process reads its pools at every scrape)."""
        if multiprocess() and self._pool_refresh is None:
            self._pool_refresh = asyncio.create_task(
                self._refresh_pools(), name="brokkr-pool-gauges"
            )

    async def stop(self) -> None:
        if self._pool_refresh is None:
            return
        self._pool_refresh.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pool_refresh
        self._pool_refresh = None

    async def _refresh_pools(self) -> None:
        while True:
            self._write_pools()
            await asyncio.sleep(POOL_REFRESH_SECONDS)

    def _write_pools(self) -> None:
        worker = str(self.worker)
        for pool in self._pool_usage():
            self.pools["size"].labels(pool.pool, worker).set(pool.size)
            self.pools["open"].labels(pool.pool, worker).set(pool.open)
            self.pools["checked_out"].labels(pool.pool, worker).set(pool.checked_out)

    def render(self) -> bytes:
        """Prometheus text of this process or, in a multiprocess broker, of all its workers."""
        self._write_pools()
        return generate_latest(self.registry if self._merged is None else self._merged)
