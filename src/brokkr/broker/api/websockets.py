"""WebSocket endpoints as plain ASGI: the upgrade request is authenticated and refused with a D2
JSON answer (401, 403, 404, 503 ...) before any handshake, or accepted; then text frames flow.

Litestar's WebSocket layer would accept first and refuse with a close code, which a client
cannot tell from a network failure; the ASGI "websocket.http.response" extension (served by
uvicorn) lets a refusal be an ordinary HTTP answer that clients read like any other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec

from brokkr.broker.api import errors as api_errors
from brokkr.broker.auth.authenticator import Authenticator
from brokkr.broker.domain import errors
from brokkr.broker.domain.access import Caller

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_DENIAL_EXTENSION = "websocket.http.response"


class Socket:
    """One WebSocket connection, from its upgrade request to its close."""

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        self.closed = False

    def header(self, name: bytes) -> str | None:
        for key, value in self.scope.get("headers", []):
            if key == name:
                text: str = value.decode("latin-1")
                return text
        return None

    @property
    def path_params(self) -> dict[str, Any]:
        params: dict[str, Any] = self.scope.get("path_params", {})
        return params

    @property
    def client_host(self) -> str | None:
        client = self.scope.get("client")
        return str(client[0]) if client else None

    async def opened(self) -> bool:
        """Wait for the client's connect message; False when it left before."""
        message = await self._receive()
        return bool(message["type"] == "websocket.connect")

    async def refuse(self, error: errors.BrokerError) -> None:
        """Answer the upgrade request with ``error`` as a D2 JSON response (no handshake)."""
        body = msgspec.json.encode(api_errors.body_of(error))
        self.closed = True
        if _DENIAL_EXTENSION not in self.scope.get("extensions", {}):
            # A server without the extension answers a close before accept with a bare 403.
            await self._send({"type": "websocket.close", "code": 1008})
            return
        headers = [(b"content-type", b"application/json")]
        if error.status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="brokkr"'))
        await self._send(
            {"type": "websocket.http.response.start", "status": error.status, "headers": headers}
        )
        await self._send({"type": "websocket.http.response.body", "body": body})

    async def accept(self) -> None:
        await self._send({"type": "websocket.accept"})

    async def receive(self) -> str | bytes | None:
        """The next frame (text as str, binary as bytes); None once the peer has gone."""
        while True:
            message = await self._receive()
            kind = message["type"]
            if kind == "websocket.receive":
                text: str | None = message.get("text")
                if text is not None:
                    return text
                data: bytes = message.get("bytes") or b""
                return data
            if kind == "websocket.disconnect":
                self.closed = True
                return None

    async def send_text(self, frame: bytes | str) -> None:
        text = frame.decode() if isinstance(frame, bytes) else frame
        await self._send({"type": "websocket.send", "text": text})

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed:
            return
        self.closed = True
        await self._send({"type": "websocket.close", "code": code, "reason": reason})


async def refuse_plain_http(scope: Scope, send: Send) -> None:
    """A GET without the upgrade: 426 with a D2 body, as any other refused request."""
    error = errors.UpgradeRequired()
    body = msgspec.json.encode(api_errors.body_of(error))
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [(b"content-type", b"application/json"), (b"upgrade", b"websocket")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def identify(socket: Socket, authenticator: Authenticator) -> Caller:
    """The caller the upgrade request's ``Authorization`` header names; raises the 401 (audited
    like any failed authentication) otherwise."""
    return await authenticator.identify(
        socket.header(b"authorization"),
        ip_address=socket.client_host,
        user_agent=socket.header(b"user-agent"),
        path=str(socket.scope.get("path", "")),
    )
