"""An in-test broker channel: a real WebSocket server at ``/internal/ws/agent`` that the test
controls (refuse upgrades with a status, acknowledge or not, push frames, stop and start again on
the same port), recording what the agent sends."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from tests.agent.waiting import eventually
from tests.cli.serving import HOST, free_port

PATH = "/internal/ws/agent"


class ChannelServer:
    def __init__(self) -> None:
        self.port = free_port()
        # Statuses the next upgrades are refused with, in order (then accepted).
        self.refusals: list[int] = []
        # "ok": acknowledge every frame with a ref; "refuse": ok false; "never": no ack.
        self.acks = "ok"
        self.attempts = 0
        self.authorizations: list[str | None] = []
        self.paths: list[str] = []
        self.received: list[dict[str, Any]] = []
        self.connections: list[ServerConnection] = []
        self._server: Server | None = None

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self.port}{PATH}"

    @property
    def connected(self) -> bool:
        return any(c.state is State.OPEN for c in self.connections)

    async def start(self) -> None:
        self._server = await serve(self._handle, HOST, self.port, process_request=self._upgrade)

    async def stop(self) -> None:
        """Close the server and every connection (a broker going away)."""
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> ChannelServer:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._server is not None:
            await self.stop()

    def _upgrade(self, connection: ServerConnection, request: Request) -> Response | None:
        self.attempts += 1
        self.paths.append(request.path)
        self.authorizations.append(request.headers.get("Authorization"))
        if self.refusals:
            status = self.refusals.pop(0)
            body = json.dumps({"error": "no", "code": "refused", "message": "refused by test"})
            return Response(
                status, "Refused", Headers({"Content-Type": "application/json"}), body.encode()
            )
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        self.connections.append(connection)
        # An agent that goes away without a close frame is no error here.
        with contextlib.suppress(ConnectionClosed):
            await self._serve(connection)

    async def _serve(self, connection: ServerConnection) -> None:
        async for message in connection:
            frame = json.loads(message)
            self.received.append(frame)
            ref = frame.get("ref")
            if ref is None or self.acks == "never":
                continue
            ok = self.acks == "ok"
            body: dict[str, Any] = {"ref": ref, "ok": ok}
            if not ok:
                body["error"] = "refused by test"
            await connection.send(json.dumps({"type": "ack", "body": body}))

    async def push(self, message: str | bytes) -> None:
        for connection in self.connections:
            if connection.state is State.OPEN:
                await connection.send(message)

    async def push_frame(self, type_: str, body: dict[str, Any]) -> None:
        await self.push(json.dumps({"type": type_, "body": body}))

    async def drop_connections(self) -> None:
        """Kill the open connections without a close handshake (a broker that died)."""
        for connection in self.connections:
            connection.transport.abort()

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [frame for frame in self.received if frame["type"] == type_]

    async def wait_connected(self, timeout: float = 10.0) -> None:
        await eventually(lambda: self.connected, timeout=timeout, what="agent connected")
