"""/internal/ws/agent: the agent channel (agent.md §14). Agent PAKs only: the upgrade request is
refused with a D2 answer (401, 403, 503) before any handshake; then ``services.agent_channel``
runs the connection."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, asgi

from brokkr.broker import services
from brokkr.broker.api import websockets
from brokkr.broker.auth.authenticator import Authenticator
from brokkr.broker.domain import errors
from brokkr.broker.services.context import Context


@asgi("/internal/ws/agent", is_mount=False, copy_scope=False, include_in_schema=False)
async def agent_channel(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "websocket":
        await websockets.refuse_plain_http(scope, send)
        return
    app: Litestar = scope["app"]
    ctx: Context = app.state.ctx
    authenticator: Authenticator = app.state.authenticator
    socket = websockets.Socket(scope, receive, send)
    if not await socket.opened():
        return
    try:
        caller = await websockets.identify(socket, authenticator)
        admission = await services.agent_channel.admit(ctx, caller=caller)
    except errors.BrokerError as exc:
        await socket.refuse(exc)
        return
    await socket.accept()
    await services.agent_channel.serve(
        ctx, admission, receive=socket.receive, send=socket.send_text, close=socket.close
    )
