"""Prometheus collectors of one broker process (reference metric names), in their own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
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

    def audit_dropped(self, action: str) -> None:
        self.audit_dropped_records.labels(action).inc()

    def observe(self, *, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint, method).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
