"""The agent's own HTTP endpoints: ``/healthz``, ``/readyz``, ``/health`` and ``/metrics`` (§15).

The server starts before the agent first contacts the broker and keeps serving through broker
outages (flaw 18): liveness never depends on the broker. Readiness does (unlike the reference,
which checked Kubernetes only): an agent that cannot reach its broker cannot do its job.

A plain asyncio server answering one GET per connection: four fixed endpoints need no web
framework, and uvicorn would take over the process's SIGTERM handler, which the agent owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from uuid import UUID

import prometheus_client as prom

import brokkr

log = logging.getLogger(__name__)

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4"
# Readiness tolerates this many missed polling intervals before blaming the broker.
BROKER_STALE_INTERVALS = 3
# A client that has not sent its request head by then is dropped (no slow-loris pile-up).
_REQUEST_TIMEOUT = 5.0
_MAX_HEAD = 8192
_POLL_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_KUBE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The broker channel's states (``brokkr.agent.channel.State``).
CHANNEL_STATES = ("Down", "Up", "ForceRestOnly", "AuthRejected")


class Metrics:
    """The reference's ``brokkr_agent_*`` metrics, in a registry of their own (not the global
    one, so several agents in one test process do not collide).

    Semantics fixed (flaw 22): the heartbeat counter counts delivered heartbeats and the
    last-successful-poll gauge is set by successful target-state polls.
    """

    def __init__(self) -> None:
        self.registry = prom.CollectorRegistry(auto_describe=True)
        self.poll_requests = prom.Counter(
            "brokkr_agent_poll_requests_total",
            "Target-state polls by result.",
            ["status"],
            registry=self.registry,
        )
        self.poll_duration = prom.Histogram(
            "brokkr_agent_poll_duration_seconds",
            "Duration of target-state polls.",
            buckets=_POLL_BUCKETS,
            registry=self.registry,
        )
        self.kubernetes_operations = prom.Counter(
            "brokkr_agent_kubernetes_operations_total",
            "Kubernetes operations by kind.",
            ["operation"],
            registry=self.registry,
        )
        self.kubernetes_operation_duration = prom.Histogram(
            "brokkr_agent_kubernetes_operation_duration_seconds",
            "Duration of Kubernetes operations.",
            ["operation"],
            buckets=_KUBE_BUCKETS,
            registry=self.registry,
        )
        self.heartbeats = prom.Counter(
            "brokkr_agent_heartbeat_sent_total",
            "Heartbeats delivered to the broker.",
            registry=self.registry,
        )
        self.last_successful_poll = prom.Gauge(
            "brokkr_agent_last_successful_poll_timestamp",
            "Unix time of the last successful target-state poll.",
            registry=self.registry,
        )
        self.health_reports = prom.Counter(
            "brokkr_agent_health_reports_total",
            "Deployment-object health entries the broker accepted.",
            registry=self.registry,
        )
        self.health_tracked = prom.Gauge(
            "brokkr_agent_health_objects_tracked",
            "Deployment objects whose health the agent reports.",
            registry=self.registry,
        )
        self.ws_state = prom.Enum(
            "brokkr_agent_ws_state",
            "State of the broker channel (WebSocket).",
            states=list(CHANNEL_STATES),
            registry=self.registry,
        )
        self.ws_frames = prom.Counter(
            "brokkr_agent_ws_frames_total",
            "Broker channel frames written (out) or received and understood (in), by type.",
            ["direction", "type"],
            registry=self.registry,
        )
        self.ws_dropped = prom.Counter(
            "brokkr_agent_ws_dropped_total",
            "Broker channel frames dropped or refused, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.ws_reconnects = prom.Counter(
            "brokkr_agent_ws_reconnects_total",
            "Broker channel connections established after an earlier one was lost.",
            registry=self.registry,
        )

    def render(self) -> bytes:
        return prom.generate_latest(self.registry)


@dataclass
class Health:
    """What the loop knows about its surroundings; the probes only read it.

    Monotonic times decide readiness (immune to clock steps); wall times are for display.
    """

    polling_interval: float
    agent_id: UUID | None = None
    started: float = field(default_factory=time.monotonic)
    broker_contact: float | None = None
    broker_contact_at: datetime | None = None
    broker_error: str | None = None
    kubernetes_reachable: bool = False
    last_reconcile_at: datetime | None = None
    # The broker channel's state, once the runtime has one.
    channel: str | None = None
    counts: dict[str, int] = field(
        default_factory=lambda: {"polls": 0, "heartbeats": 0, "applied": 0, "failed": 0}
    )

    def broker_reached(self) -> None:
        self.broker_contact = time.monotonic()
        self.broker_contact_at = datetime.now(UTC)
        self.broker_error = None

    def broker_failed(self, error: str) -> None:
        self.broker_error = error

    def broker_recent(self) -> bool:
        if self.broker_contact is None:
            return False
        age = time.monotonic() - self.broker_contact
        return age <= BROKER_STALE_INTERVALS * self.polling_interval

    def not_ready_reason(self) -> str | None:
        if not self.kubernetes_reachable:
            return "Kubernetes API unavailable"
        if not self.broker_recent():
            detail = f": {self.broker_error}" if self.broker_error else ""
            return f"broker not reached in the last {BROKER_STALE_INTERVALS} polls{detail}"
        return None

    def report(self) -> dict[str, object]:
        broker: dict[str, object] = {"connected": self.broker_recent()}
        if self.broker_contact_at is not None:
            broker["last_contact"] = _timestamp(self.broker_contact_at)
        if self.broker_error is not None:
            broker["error"] = self.broker_error
        if self.channel is not None:
            broker["channel"] = self.channel
        return {
            "status": "healthy" if self.not_ready_reason() is None else "unhealthy",
            "agent_id": str(self.agent_id) if self.agent_id else None,
            "broker": broker,
            "kubernetes": {"connected": self.kubernetes_reachable},
            "last_reconcile": _timestamp(self.last_reconcile_at),
            "counts": dict(self.counts),
            "uptime_seconds": int(time.monotonic() - self.started),
            "version": brokkr.__version__,
            "timestamp": _timestamp(datetime.now(UTC)),
        }


class ChannelProbe:
    """Shows what the broker channel does (``brokkr.agent.channel.Observer``) on ``/health``
    and ``/metrics``."""

    def __init__(self, health: Health, metrics: Metrics) -> None:
        self._health = health
        self._metrics = metrics

    def state_changed(self, state: str) -> None:
        self._health.channel = state
        self._metrics.ws_state.state(state)

    def frame(self, direction: str, type_: str) -> None:
        self._metrics.ws_frames.labels(direction=direction, type=type_).inc()

    def dropped(self, reason: str) -> None:
        self._metrics.ws_dropped.labels(reason=reason).inc()

    def reconnected(self) -> None:
        self._metrics.ws_reconnects.inc()


def _timestamp(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


@dataclass(frozen=True)
class Response:
    status: HTTPStatus
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


def respond(path: str, health: Health, metrics: Metrics) -> Response:
    """The answer to ``GET path``."""
    if path == "/healthz":
        return Response(HTTPStatus.OK, b"OK")
    if path == "/readyz":
        reason = health.not_ready_reason()
        if reason is None:
            return Response(HTTPStatus.OK, b"Ready")
        return _json(HTTPStatus.SERVICE_UNAVAILABLE, {"ready": False, "reason": reason})
    if path == "/health":
        report = health.report()
        healthy = report["status"] == "healthy"
        return _json(HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE, report)
    if path == "/metrics":
        return Response(HTTPStatus.OK, metrics.render(), METRICS_CONTENT_TYPE)
    return Response(HTTPStatus.NOT_FOUND, b"Not Found")


def _json(status: HTTPStatus, payload: dict[str, object]) -> Response:
    return Response(status, json.dumps(payload).encode(), "application/json")


class ProbeServer:
    """Serves ``respond`` on ``host:port`` (port 0 picks a free one, see ``port``)."""

    def __init__(self, health: Health, metrics: Metrics, *, host: str, port: int) -> None:
        self._health = health
        self._metrics = metrics
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)
        log.info("agent probes listening on %s:%d", self._host, self.port)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the probe server is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _REQUEST_TIMEOUT)
            method, target = _request_line(head)
            if method not in ("GET", "HEAD"):
                response = Response(HTTPStatus.METHOD_NOT_ALLOWED, b"Method Not Allowed")
            else:
                response = respond(target.split("?", 1)[0], self._health, self._metrics)
            writer.write(_encode(response, with_body=method != "HEAD"))
            await writer.drain()
        except (
            TimeoutError,
            ConnectionError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ):
            pass  # a client that went away, stalled or sent too much gets nothing
        except ValueError:
            writer.write(_encode(Response(HTTPStatus.BAD_REQUEST, b"Bad Request")))
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def _request_line(head: bytes) -> tuple[str, str]:
    if len(head) > _MAX_HEAD:
        raise ValueError("request head too large")
    parts = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise ValueError("malformed request line")
    return parts[0], parts[1]


def _encode(response: Response, *, with_body: bool = True) -> bytes:
    head = (
        f"HTTP/1.1 {response.status.value} {response.status.phrase}\r\n"
        f"Content-Type: {response.content_type}\r\n"
        f"Content-Length: {len(response.body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + (response.body if with_body else b"")
