"""A scriptable webhook receiver for delivery tests: a real HTTP server (uvicorn) on 127.0.0.1 in
the test's own event loop. Every request is recorded with when it arrived; ``answer`` decides
each reply (status, and a delay to play a slow receiver), and may be swapped at any time.
``stop`` and ``start`` again on the same port play a receiver that is down for a while.

    async with WebhookReceiver() as receiver:
        receiver.answer = lambda request: Reply(status=410)
        ... await eventually(lambda: receiver.requests) ...
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import msgspec
import uvicorn

from brokkr.common import signing

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it arrived

    def envelope(self) -> dict[str, Any]:
        decoded: dict[str, Any] = msgspec.json.decode(self.body)
        return decoded

    def signed_with(self, secret: str) -> bool:
        return signing.verify(secret, self.body, self.headers.get(signing.HEADER.lower()))


@dataclass(frozen=True)
class Reply:
    status: int = 204
    delay: float = 0.0


@dataclass
class WebhookReceiver:
    answer: Callable[[Received], Reply] = field(default=lambda _: Reply())
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/hook"

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, self.port))
        self.port = sock.getsockname()[1]
        # A bound method is not detected as ASGI 3 by uvicorn: say so.
        config = uvicorn.Config(
            self._app, interface="asgi3", log_level="warning", lifespan="off", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        # Slow requests in flight are abandoned, as a crashing receiver would.
        self._server.force_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._server = self._task = None

    async def __aenter__(self) -> WebhookReceiver:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.requests if r.headers.get("x-brokkr-event") == event_type]

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        received = Received(headers=headers, body=body, at=time.monotonic())
        self.requests.append(received)
        reply = self.answer(received)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        answer = f"answered {reply.status}".encode()
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [(b"content-length", str(len(answer)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": answer})
