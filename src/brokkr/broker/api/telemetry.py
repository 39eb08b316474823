"""/stacks/{id}/events, /stacks/{id}/logs (stack telemetry history) and the live stream
/stacks/{id}/live (WebSocket; plain ASGI, outside the guarded router: see ``websockets``)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from litestar import Router, asgi, get
from litestar.params import FromPath, QueryParameter

from brokkr.broker import services
from brokkr.broker.api import responses, security, websockets
from brokkr.broker.api.dependencies import CallerDep, ContextDep
from brokkr.broker.domain import errors, paging
from brokkr.broker.domain import telemetry as rules
from brokkr.broker.services.context import Context
from brokkr.broker.services.live_streams import Subscriber
from brokkr.common import wire

_WINDOW = (
    "`since` (RFC 3339; without an offset: UTC) is the earliest `created_at` returned; absent or "
    "older than the retention window (`broker.telemetry_retention_seconds`, at most six hours), "
    f"the window's start. `limit` defaults to {rules.DEFAULT_LIMIT}; above {rules.MAX_LIMIT} it "
    "is clamped to it, below 1 it is a 400. Newest first; `retention.oldest_available_ts` is "
    "the oldest row of this answer."
)
Since = Annotated[datetime | None, QueryParameter(description="Earliest `created_at` (RFC 3339).")]
Limit = Annotated[
    int | None,
    QueryParameter(
        ge=1,
        le=paging.MAX_OFFSET,
        description=f"Rows (default {rules.DEFAULT_LIMIT}, at most {rules.MAX_LIMIT}).",
    ),
]


def _utc(moment: datetime | None) -> datetime | None:
    """A bound without an offset is UTC; one that leaves the representable years is a 400."""
    if moment is None:
        return None
    try:
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        raise errors.InvalidParameter({"since": "out of range"}) from None


@get(
    "/stacks/{id:uuid}/events",
    operation_id="list_telemetry_events",
    summary="Recent Kubernetes events of a stack",
    description=f"Events about the stack's objects (and the Pods they made). {_WINDOW}",
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(400, 404),
    tags=["stack-telemetry"],
)
async def list_events(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID], since: Since = None, limit: Limit = None
) -> wire.K8sEventHistoryResponse:
    return await services.telemetry_history.events(
        ctx, caller=caller, stack_id=id, since=_utc(since), limit=limit
    )


@get(
    "/stacks/{id:uuid}/logs",
    operation_id="list_telemetry_logs",
    summary="Recent pod log lines of a stack",
    description=f"Lines the agents shipped (pod log shipping is opt-in per agent). {_WINDOW}",
    security=security.ADMIN_GENERATOR,
    responses=responses.errors(400, 404),
    tags=["stack-telemetry"],
)
async def list_logs(
    ctx: ContextDep, caller: CallerDep, id: FromPath[UUID], since: Since = None, limit: Limit = None
) -> wire.PodLogHistoryResponse:
    return await services.telemetry_history.logs(
        ctx, caller=caller, stack_id=id, since=_utc(since), limit=limit
    )


router = Router(path="/", route_handlers=[list_events, list_logs])


LIVE_PATH = "/api/v1/stacks/{stack_id:uuid}/live"
_LIVE = re.compile(r"/api/v1/stacks/[^/]+/live")


def is_live_path(path: str) -> bool:
    """A live-stream path: Litestar cannot route a plain GET to an ASGI handler whose path has
    parameters (it fails with a 500), so ``Observability`` refuses those with the 426 itself."""
    return _LIVE.fullmatch(path) is not None


@asgi(LIVE_PATH, is_mount=False, copy_scope=False)
async def live(scope: websockets.Scope, receive: websockets.Receive, send: websockets.Send) -> None:
    """The stack's new events and log lines as frames (``k8s_event``, ``pod_log_line``,
    ``log_gap``) until the client leaves, the stack is deleted (close 4404) or the caller's
    PAK stops being valid (4403). Refused before the handshake (D2 JSON): 401, 404 (not the
    caller's stack), 503 (too many streams)."""
    if scope["type"] != "websocket":
        await websockets.refuse_plain_http(scope, send)
        return
    app = scope["litestar_app"]
    ctx: Context = app.state.ctx
    socket = websockets.Socket(scope, receive, send)
    if not await socket.opened():
        return
    try:
        caller = await websockets.identify(socket, app.state.authenticator)
        subscriber = await ctx.telemetry.live.subscribe(
            caller=caller, stack_id=socket.path_params["stack_id"]
        )
    except errors.BrokerError as exc:
        await socket.refuse(exc)
        return
    try:
        await socket.accept()
        await _stream(socket, subscriber)
    finally:
        ctx.telemetry.live.unsubscribe(subscriber)


async def _stream(socket: websockets.Socket, subscriber: Subscriber) -> None:
    """Send the subscriber's frames until it ends or the client leaves (whatever it sends is
    ignored: the stream is one-way)."""

    async def drain() -> None:
        while await socket.receive() is not None:
            pass

    listening = asyncio.create_task(drain())
    try:
        while not listening.done():
            sending = asyncio.ensure_future(subscriber.next_frame())
            await asyncio.wait({sending, listening}, return_when=asyncio.FIRST_COMPLETED)
            if not sending.done():
                sending.cancel()
                break
            frame = sending.result()
            if frame is None:
                break
            await socket.send_text(frame)
    finally:
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening
    if not socket.closed:
        await socket.close(subscriber.close_code or 1000)
