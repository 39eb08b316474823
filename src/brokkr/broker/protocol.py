"""The HTTP/1.1 protocol as served: uvicorn's httptools protocol plus read deadlines and D2 bodies.

uvicorn bounds only the idle time between requests (keep-alive). A client that trickles its
headers, or connects and sends nothing, would hold a connection open forever, and one that
trickles its body would hold a request task. Here a request's headers must be complete within
``limits.header_read_timeout_seconds`` of its first byte (or of the connection), and its body
within ``limits.body_read_timeout_seconds`` of its headers; otherwise the client gets a 408
(when no response has started) and the connection is closed. Both limits are read when a
deadline is armed, so a config reload applies to the next request. Bytes that are not HTTP get a
D2 JSON 400 instead of uvicorn's plain text.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from brokkr.broker.api import errors as api_errors
from brokkr.broker.domain import errors
from brokkr.broker.settings import LimitsSettings

_REASONS = {400: b"Bad Request", 408: b"Request Timeout"}


def error_response(error: errors.BrokerError) -> bytes:
    """A complete HTTP/1.1 response carrying the D2 body of ``error``; the connection closes."""
    body = msgspec.json.encode(api_errors.body_of(error))
    head = (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n" % (error.status, _REASONS[error.status], len(body))
    )
    return head + body


def with_deadlines(limits: Callable[[], LimitsSettings]) -> type[HttpToolsProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)``; ``limits`` gives the limits in force."""

    class Configured(DeadlineProtocol):
        current_limits = staticmethod(limits)

    return Configured


class DeadlineProtocol(HttpToolsProtocol):
    current_limits: Callable[[], LimitsSettings]
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_headers()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        seconds = self.current_limits().body_read_timeout_seconds
        self._deadline = self.loop.call_later(seconds, self._expire, "body", seconds)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        del msg  # uvicorn's plain-text reason; the D2 body says the same
        self._disarm()
        self.transport.write(error_response(errors.MalformedRequest()))
        self.transport.close()

    def _arm_headers(self) -> None:
        if self._deadline is None:
            seconds = self.current_limits().header_read_timeout_seconds
            self._deadline = self.loop.call_later(seconds, self._expire, "headers", seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, part: str, seconds: float) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if not self._answering(part):
            self.transport.write(error_response(errors.RequestTimedOut(part, seconds)))
        self.transport.close()

    def _answering(self, part: str) -> bool:
        """Whether a response has started that a 408 would corrupt: to this request (the body's
        deadline) or to the previous one, still being written (the next headers' deadline)."""
        cycle = self.cycle
        if cycle is None or not cycle.response_started:
            return False
        return part == "body" or not cycle.response_complete
