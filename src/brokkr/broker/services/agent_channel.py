"""One agent's connection on the channel (``/internal/ws/agent``, agent.md §14.5): who may open
one, and what the agent's frames do.

A frame does exactly what its REST twin does, through the same use case (a deploy event over
the channel is audited and announced to webhooks like one over REST, unlike the reference's,
flaw 15). The connection's authenticated agent is the only one a frame may speak for. A bad
frame (not JSON, binary, too large, unknown or broker-only type, wrong shape, another agent's,
telemetry of a stack the agent is not associated with, over the telemetry rate) is dropped and
counted, answered ``ok: false`` when it carried a ``ref``, and never ends the connection.
Frames are handled one at a time: while one is, the agent's socket is not read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import msgspec

from brokkr.broker import db
from brokkr.broker.domain import access, errors
from brokkr.broker.services import agent_events, agents, health
from brokkr.broker.services.channel import Connection
from brokkr.broker.services.context import Context
from brokkr.broker.services.downlink import Close, Downlink, Send
from brokkr.common import wire
from brokkr.common.wire import channel

log = logging.getLogger(__name__)

Receive = Callable[[], Awaitable[str | bytes | None]]

# The stacks an agent may send telemetry about are re-read at least this often (besides when
# a hint or a change concerning the agent says they may have changed).
STACKS_REFRESH_SECONDS = 30.0
# A connection finding the telemetry buffer full waits at most this long for room.
_ROOM_WAIT_SECONDS = 1.0
# A connection dropping frames says so in the log at most this often.
_WARN_INTERVAL_SECONDS = 60.0

_ENVELOPE = msgspec.json.Decoder(channel.Envelope)
_BODIES: dict[str, msgspec.json.Decoder[Any]] = {
    channel.HEARTBEAT: msgspec.json.Decoder(channel.Heartbeat),
    channel.AGENT_EVENT: msgspec.json.Decoder(channel.AgentEventBody),
    channel.AGENT_HEALTH: msgspec.json.Decoder(channel.AgentHealthBody),
    channel.K8S_EVENT: msgspec.json.Decoder(channel.K8sEventBody),
    channel.POD_LOG_LINE: msgspec.json.Decoder(channel.PodLogLineBody),
    channel.LOG_GAP: msgspec.json.Decoder(channel.LogGapBody),
}
_SUMMARY = msgspec.json.Decoder(wire.HealthSummary)


class Admission(msgspec.Struct, frozen=True, kw_only=True):
    caller: access.Caller
    agent_id: UUID
    stacks: frozenset[UUID]


async def admit(ctx: Context, *, caller: access.Caller) -> Admission:
    """Agents only (D8), active ones, within the broker's connection limit."""
    if caller.role is not access.Role.AGENT or caller.id is None:
        raise errors.AgentPakRequired()
    if len(ctx.hub) >= ctx.settings.current.limits.ws_max_agent_connections:
        raise errors.AgentChannelFull()
    async with ctx.database.read() as tx:
        agent = await db.agents.get(tx, caller.id)
        stacks = await db.targeting.associated_live_stack_ids(tx, caller.id)
    if agent is None:
        raise errors.AgentPakRequired()
    if agent.status != "ACTIVE":
        raise errors.AgentNotActive()
    return Admission(caller=caller, agent_id=caller.id, stacks=frozenset(stacks))


async def serve(
    ctx: Context, admission: Admission, *, receive: Receive, send: Send, close: Close
) -> None:
    """Run an accepted connection until the agent leaves or the hub closes it."""
    hub = ctx.hub
    downlink = Downlink(
        send=send,
        close=close,
        capacity=ctx.settings.current.limits.ws_send_queue_frames,
        sent=lambda type_: hub.metrics.ws_message("out", type_),
        dropped=hub.metrics.ws_dropped,
    )
    connection = Connection(
        agent_id=admission.agent_id,
        pak_hash=admission.caller.pak_hash,
        connected_since=ctx.now(),
        downlink=downlink,
    )
    reader = _Reader(ctx, admission, connection)
    hub.register(connection)
    writer = asyncio.create_task(downlink.run(), name=f"channel-writer-{admission.agent_id}")
    try:
        while not downlink.closing:
            frame = await receive()
            if frame is None:
                break
            await reader.handle(frame)
    finally:
        hub.unregister(connection)
        downlink.close(1000, "")
        await _finish(writer)


class _Dropped(Exception):
    def __init__(self, reason: str, error: str) -> None:
        super().__init__(error)
        self.reason = reason
        self.error = error


class _Bucket:
    """Telemetry frames per second, with bursts of twice that."""

    def __init__(self, rate: int) -> None:
        self._tokens = 2.0 * rate
        self._stamp = time.monotonic()

    def take(self, rate: int) -> bool:
        now = time.monotonic()
        self._tokens = min(2.0 * rate, self._tokens + (now - self._stamp) * rate)
        self._stamp = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class _Reader:
    def __init__(self, ctx: Context, admission: Admission, connection: Connection) -> None:
        self._ctx = ctx
        self._caller = admission.caller
        self._agent_id = admission.agent_id
        self._connection = connection
        self._metrics = ctx.hub.metrics
        self._stacks = set(admission.stacks)
        self._stacks_read_at = time.monotonic()
        self._bucket = _Bucket(ctx.settings.current.limits.ws_telemetry_frames_per_second)
        self._warned_at = -_WARN_INTERVAL_SECONDS
        self._dropped_since_warning = 0
        self._handlers: dict[str, Callable[[Any], Awaitable[None]]] = {
            channel.HEARTBEAT: self._heartbeat,
            channel.AGENT_EVENT: self._agent_event,
            channel.AGENT_HEALTH: self._agent_health,
            channel.K8S_EVENT: self._k8s_event,
            channel.POD_LOG_LINE: self._pod_log_line,
            channel.LOG_GAP: self._log_gap,
        }

    async def handle(self, frame: str | bytes) -> None:
        self._connection.messages_in += 1
        try:
            envelope = self._envelope(frame)
        except _Dropped as dropped:
            self._drop(dropped)
            return
        try:
            await self._dispatch(envelope)
        except _Dropped as dropped:
            self._drop(dropped)
            await self._ack(envelope.ref, dropped.error)
            return
        await self._ack(envelope.ref, None)

    def _envelope(self, frame: str | bytes) -> channel.Envelope:
        if isinstance(frame, bytes):
            raise _Dropped("binary", "binary frames are not read")
        limit = self._ctx.settings.current.limits.ws_max_frame_bytes
        # A str of n characters is n to 4n bytes of UTF-8: encode only when it may matter.
        if len(frame) > limit or (len(frame) * 4 > limit and len(frame.encode()) > limit):
            raise _Dropped("oversized", f"frame larger than {limit} bytes")
        try:
            return _ENVELOPE.decode(frame)
        except msgspec.ValidationError as exc:
            raise _Dropped("invalid_envelope", f"not a frame: {exc}") from None
        except msgspec.DecodeError:
            raise _Dropped("not_json", "frame is not JSON") from None

    async def _dispatch(self, envelope: channel.Envelope) -> None:
        kind = envelope.type
        if kind in channel.DOWNLINK_TYPES:
            raise _Dropped("downlink_type", f"{kind} frames are sent by the broker only")
        handler = self._handlers.get(kind)
        if handler is None:
            raise _Dropped("unknown_type", "unknown frame type")
        self._metrics.ws_message("in", kind)
        if kind in channel.TELEMETRY_TYPES:
            rate = self._ctx.settings.current.limits.ws_telemetry_frames_per_second
            if not self._bucket.take(rate):
                raise _Dropped("rate_limited", "telemetry rate exceeded")
        try:
            body = _BODIES[kind].decode(envelope.body)
        except msgspec.DecodeError as exc:
            raise _Dropped("invalid_body", f"invalid {kind} body: {exc}") from None
        if body.agent_id != self._agent_id:
            raise _Dropped("foreign_agent", "agent_id is not this connection's agent")
        try:
            await handler(body)
        except errors.BrokerError as exc:
            raise _Dropped("refused", exc.message) from None
        except _Dropped:
            raise
        except Exception:
            # One frame's failure (the database away) must not end the agent's channel; it is
            # told (ok false) and sends again, or falls back to REST.
            log.exception("agent channel: a %s frame failed", kind)
            raise _Dropped("failed", "internal error") from None

    def _drop(self, dropped: _Dropped) -> None:
        self._metrics.ws_dropped(dropped.reason)
        log.debug("agent %s: frame dropped (%s): %s", self._agent_id, dropped.reason, dropped.error)
        self._dropped_since_warning += 1
        now = time.monotonic()
        if now - self._warned_at >= _WARN_INTERVAL_SECONDS:
            log.warning(
                "agent %s: %d channel frame(s) dropped, the last one: %s (%s)",
                self._agent_id,
                self._dropped_since_warning,
                dropped.reason,
                dropped.error,
            )
            self._warned_at = now
            self._dropped_since_warning = 0

    async def _ack(self, ref: str | None, error: str | None) -> None:
        if ref is None:
            return
        body = channel.AckBody(ref=ref, ok=error is None, error=error)
        await self._connection.downlink.ack(channel.frame(channel.ACK, body).decode())

    # --- control frames: the REST use cases ------------------------------------------------

    async def _heartbeat(self, _body: channel.Heartbeat) -> None:
        await agents.record_heartbeat(self._ctx, caller=self._caller, agent_id=self._agent_id)

    async def _agent_event(self, body: channel.AgentEventBody) -> None:
        fields = {
            "deployment_object_id": body.deployment_object_id,
            "status": body.status,
            "event_type": body.event_type,
            "message": body.message,
        }
        try:
            new = msgspec.convert(fields, wire.NewAgentEvent)
        except msgspec.ValidationError as exc:
            raise _Dropped("invalid_body", f"invalid agent_event body: {exc}") from None
        await agent_events.record(self._ctx, caller=self._caller, agent_id=self._agent_id, new=new)

    async def _agent_health(self, body: channel.AgentHealthBody) -> None:
        try:
            summary = None if body.summary is None else _SUMMARY.decode(body.summary)
        except msgspec.DecodeError as exc:
            raise _Dropped("invalid_body", f"unreadable health summary: {exc}") from None
        entry = wire.DeploymentObjectHealthUpdate(
            id=body.deployment_object_id,
            status=body.status,
            checked_at=body.checked_at,
            summary=summary,
        )
        update = wire.HealthStatusUpdate(deployment_objects=[entry])
        await health.report(self._ctx, caller=self._caller, agent_id=self._agent_id, update=update)

    # --- telemetry: handed to the batch writer ---------------------------------------------

    async def _k8s_event(self, body: channel.K8sEventBody) -> None:
        await self._require_associated(body.stack_id)
        await self._make_room()
        if not self._ctx.telemetry.accept_event(self._agent_id, body):
            raise _Dropped("buffer_full", "telemetry buffer full")

    async def _pod_log_line(self, body: channel.PodLogLineBody) -> None:
        await self._require_associated(body.stack_id)
        await self._make_room()
        if not self._ctx.telemetry.accept_log_line(self._agent_id, body):
            raise _Dropped("buffer_full", "telemetry buffer full")

    async def _make_room(self) -> None:
        # A full buffer holds this connection's reading (TCP pushes back to the agent, whose
        # own bounded queue then drops and counts) rather than every connection spending the
        # event loop on frames that would be dropped while the writer starves.
        telemetry = self._ctx.telemetry
        if telemetry.full():
            await telemetry.room(_ROOM_WAIT_SECONDS)

    async def _log_gap(self, body: channel.LogGapBody) -> None:
        await self._require_associated(body.stack_id)
        self._ctx.telemetry.accept_gap(self._agent_id, body)

    async def _require_associated(self, stack_id: UUID) -> None:
        """Least privilege on telemetry rows: only about stacks the agent is associated with."""
        now = time.monotonic()
        if self._connection.stale or now - self._stacks_read_at >= STACKS_REFRESH_SECONDS:
            self._connection.stale = False
            self._stacks_read_at = now
            async with self._ctx.database.read() as tx:
                self._stacks = await db.targeting.associated_live_stack_ids(tx, self._agent_id)
        if stack_id not in self._stacks:
            raise _Dropped("not_associated", "the agent is not associated with this stack")


async def _finish(writer: asyncio.Task[None]) -> None:
    # The writer sends the close; a peer that stopped reading cannot hold the handler for long.
    done, _ = await asyncio.wait({writer}, timeout=5.0)
    if not done:
        writer.cancel()


def connections(ctx: Context, *, caller: access.Caller) -> wire.WsConnectionsResponse:
    """This broker's channel connections and live streams (admins only)."""
    access.require_admin(caller)
    return ctx.hub.snapshot(ctx.telemetry.live_subscribers())
