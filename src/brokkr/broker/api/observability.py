"""Outermost ASGI layer: request id, access log and request metrics for every request,
including 404s that never reach a route, and D2 bodies for refused CORS pre-flights. Metrics
are labelled by route template, never by raw path, so their cardinality stays bounded."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from brokkr.broker.api import preflight, telemetry, websockets
from brokkr.broker.metrics import Metrics
from brokkr.common.logging import request_id

log = logging.getLogger("brokkr.access")

# Plain ASGI shapes: this layer also sees lifespan scopes, which Litestar's types leave out.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]

_UNMATCHED = "<unmatched>"
_SKIP = {"/metrics"}


class Observability:
    def __init__(self, app: ASGIApp, metrics: Metrics, *, worker: int | None = None) -> None:
        """``worker``: this process's index among the workers of ``brokkr serve --workers N``
        (N > 1), told in every answer's ``X-Brokkr-Worker`` header; None tells nothing."""
        self.app = app
        self.metrics = metrics
        self._worker_header = (
            [(b"x-brokkr-worker", str(worker).encode())] if worker is not None else []
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and self._worker_header:
            await self.app(scope, receive, self._telling_worker(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _incoming_request_id(scope) or uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                headers.extend(self._worker_header)
                message = {**message, "headers": headers}
            await send(message)

        try:
            if scope["method"] == "OPTIONS":
                await self.app(scope, receive, preflight.json_refusals(send_with_id))
            elif telemetry.is_live_path(scope["path"]):
                await websockets.refuse_plain_http(scope, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            path = scope["path"]
            if path not in _SKIP:
                endpoint = str(scope.get("path_template") or _UNMATCHED)
                self.metrics.observe(
                    endpoint=endpoint, method=scope["method"], status=status, seconds=elapsed
                )
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "%s %s %s",
                    scope["method"],
                    path,
                    status,
                    extra={"fields": {"status": status, "duration_ms": round(elapsed * 1000, 2)}},
                )
            request_id.reset(token)

    def _telling_worker(self, send: Send) -> Send:
        """A WebSocket's handshake answer (accepted or refused) names the worker too."""

        async def send_with_worker(message: Message) -> None:
            if message["type"] in _HANDSHAKE_ANSWERS:
                headers = [*message.get("headers", []), *self._worker_header]
                message = {**message, "headers": headers}
            await send(message)

        return send_with_worker


_HANDSHAKE_ANSWERS = frozenset({"websocket.accept", "websocket.http.response.start"})


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text: str = value.decode("latin-1").strip()
            # Only short, printable ids are echoed back into logs and headers.
            if 0 < len(text) <= 64 and text.isprintable():
                return text
    return None
