"""The agent's channel to the broker: one WebSocket (``/internal/ws/agent``, agent.md §14) kept
open while the agent is ACTIVE, for the broker's pushes and the agent's uplink.

REST stays authoritative and is the fallback: a push (``target_changed``, ``stack_changed``,
``work_order``) only wakes the matching poll now, and the poll reads what changed; an uplink frame
that matters (a heartbeat, a deploy event, a health entry) is sent with a ``ref`` and counts as
delivered only once the broker acknowledges it (``send_acked``); without the ack the caller sends
it over REST. Telemetry (Kubernetes events, pod log lines) has no REST path: ``offer`` queues it
or drops it, and what was dropped is counted per stack and reported in one ``log_gap`` frame per
stack and reason once the channel is up with room again (true counts, flaw 16).

Fixing flaw 15: inbound frames are handled as they arrive and never wait for anyone (a push only
sets an event, so many pushes coalesce into one poll); both outbound lanes are bounded, control
frames (heartbeats, events, health) go before telemetry, and a frame awaiting an ack whose socket
died is reported as not delivered rather than assumed sent.

States (§14.2): ``Down`` until connected, ``Up`` while connected, ``ForceRestOnly`` with
``ws_force_rest`` (never dials), ``AuthRejected`` after 5 consecutive upgrades refused with 401 or
403 (until restart; the runtime confirms first that the agent is still ACTIVE, since the broker
refuses an inactive agent with 403 too). Reconnection waits 1, 2, 4 ... 60 s, +/- 20 %, from 1 s
again after each successful connection.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import logging
import random
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

import brokkr
from brokkr.agent import backoff
from brokkr.agent.settings import AgentSection
from brokkr.client import tls
from brokkr.common import wire
from brokkr.common.wire import channel as frames

log = logging.getLogger(__name__)

PATH = "/internal/ws/agent"
# Consecutive 401/403 upgrade refusals after which the agent stops dialling (§14.3).
AUTH_REJECTIONS = 5
# Frames each outbound lane holds (§14.4): control (heartbeats, events, health) and telemetry.
QUEUE_FRAMES = 256
FIRST_DELAY = 1.0
MAX_DELAY = 60.0
JITTER = 0.2
# The library pings this often and closes a connection whose pong is this late: a dead broker
# (or a silently dropped NAT mapping) is noticed within a minute, not at the next send.
PING_INTERVAL = 20.0
PING_TIMEOUT = 20.0
OPEN_TIMEOUT = 10.0
CLOSE_TIMEOUT = 2.0
# A pushed work order carries its YAML (2 MiB by the broker's default limit, more once
# JSON-escaped); a larger frame closes the connection, and the poll still finds the order.
MAX_INBOUND_BYTES = 8 * 1024 * 1024
# Stacks whose dropped telemetry is counted for a gap frame; past it drops are only counted in
# the metric (the shipper only offers the stacks this agent runs, far fewer).
MAX_GAPS = 4096


class State(enum.StrEnum):
    DOWN = "Down"
    UP = "Up"
    FORCE_REST_ONLY = "ForceRestOnly"
    AUTH_REJECTED = "AuthRejected"


class Observer(Protocol):
    """What the channel does, for the agent's metrics and ``/health``."""

    def state_changed(self, state: State) -> None: ...

    def frame(self, direction: str, type_: str) -> None:
        """A frame written (``out``) or received and understood (``in``)."""
        ...

    def dropped(self, reason: str) -> None:
        """A frame refused or discarded (``disconnected``, ``buffer_full``, ``binary`` ...)."""
        ...

    def reconnected(self) -> None:
        """A connection established after an earlier one was lost."""
        ...


class _Unobserved:
    def state_changed(self, state: State) -> None:
        pass

    def frame(self, direction: str, type_: str) -> None:
        pass

    def dropped(self, reason: str) -> None:
        pass

    def reconnected(self) -> None:
        pass


def url_of(broker_url: str, ws_url: str | None = None) -> str:
    """``ws_url`` when set, else ``broker_url`` with https -> wss, http -> ws (any other form
    gets ``ws://`` in front), trailing ``/`` stripped, and the channel's path appended."""
    if ws_url:
        return ws_url
    base = broker_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base.removeprefix("https://")
    elif base.startswith("http://"):
        base = "ws://" + base.removeprefix("http://")
    else:
        base = "ws://" + base
    return base + PATH


@dataclass(slots=True, eq=False)
class _Outgoing:
    type: str
    frame: bytes


class _PeekBody(msgspec.Struct):
    stack_id: UUID | None = None
    # A dropped log_gap frame loses the lines it counted too.
    dropped_count: int = 0


class _Peek(msgspec.Struct):
    """What ``offer`` reads of a telemetry frame: its type and, for a drop, the stack."""

    type: str
    body: _PeekBody = msgspec.field(default_factory=_PeekBody)


@dataclass(slots=True)
class _Gap:
    since: datetime
    count: int


_peek = msgspec.json.Decoder(_Peek)
_envelope = msgspec.json.Decoder(frames.Envelope)
_ack = msgspec.json.Decoder(frames.AckBody)
_refusal = msgspec.json.Decoder(wire.ErrorBody)


class Channel:
    """One agent's channel; ``run`` keeps it connected, the rest is safe to call any time."""

    def __init__(
        self,
        url: str,
        pak: str,
        *,
        force_rest: bool = False,
        ack_timeout: float = 5.0,
        first_delay: float = FIRST_DELAY,
        max_delay: float = MAX_DELAY,
        queue_frames: int = QUEUE_FRAMES,
        open_timeout: float = OPEN_TIMEOUT,
        ping_interval: float = PING_INTERVAL,
        rand: Callable[[float, float], float] = random.uniform,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.url = url
        # For wss:// only (websockets refuses a context for ws://); None trusts the system CAs.
        self._ssl = ssl_context if url.startswith("wss://") else None
        self._pak = pak
        self.ack_timeout = ack_timeout
        self._first_delay = first_delay
        self._max_delay = max_delay
        self._queue_frames = queue_frames
        self._open_timeout = open_timeout
        self._ping_interval = ping_interval
        self._rand = rand
        self.observer: Observer = _Unobserved()
        self._state = State.FORCE_REST_ONLY if force_rest else State.DOWN
        # Set by a push: the runtime's incremental poll and work-order poll run at once.
        self.poll_wake = asyncio.Event()
        self.work_orders_wake = asyncio.Event()
        self._control: collections.deque[_Outgoing] = collections.deque()
        self._telemetry: collections.deque[_Outgoing] = collections.deque()
        self._ready = asyncio.Event()
        self._waiters: dict[str, asyncio.Future[bool]] = {}
        self._refs = 0
        self._gaps: dict[tuple[UUID, frames.GapReason], _Gap] = {}
        self._agent_id: UUID | None = None
        # Consecutive connection failures (the backoff exponent) and 401/403 refusals.
        self.failures = 0
        self.rejections = 0
        self._connected_before = False

    @classmethod
    def of(cls, config: AgentSection) -> Channel:
        """The channel the settings describe; raises ``BrokkrError`` when the CA bundle cannot
        be read."""
        return cls(
            url_of(config.broker_url, config.ws_url),
            config.pak,
            force_rest=config.ws_force_rest,
            ack_timeout=config.ws_ack_timeout,
            ssl_context=tls.context(config.ca_bundle or True),
        )

    def observe(self, observer: Observer) -> None:
        """Report to ``observer`` from now on, starting with the current state."""
        self.observer = observer
        observer.state_changed(self._state)

    @property
    def state(self) -> State:
        return self._state

    @property
    def up(self) -> bool:
        return self._state is State.UP

    def _set_state(self, state: State) -> None:
        if state is not self._state:
            self._state = state
            self.observer.state_changed(state)

    # --- the connection loop -----------------------------------------------------------------

    async def run(
        self,
        *,
        agent_id: UUID,
        active: asyncio.Event,
        still_active: Callable[[], Awaitable[bool]],
        stop: asyncio.Event,
    ) -> None:
        """Keep the channel connected until ``stop``, dialling only while ``active`` is set;
        returns at once when force-REST, and for good once ``AuthRejected``. A 401/403 refusal
        counts towards ``AuthRejected`` only when ``still_active()`` (the runtime re-reading its
        agent record) says the agent is still ACTIVE: else the runtime clears ``active``."""
        if self._state is State.FORCE_REST_ONLY:
            return
        self._agent_id = agent_id
        while not stop.is_set():
            if not active.is_set():
                await _first(active, stop)
                continue
            await self._connect_once(stop, still_active)
            if self._state is State.AUTH_REJECTED or stop.is_set():
                return
            self.failures += 1
            delay = backoff.spread(
                self.failures,
                minimum=self._first_delay,
                maximum=self._max_delay,
                jitter=JITTER,
                rand=self._rand,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    async def _connect_once(
        self, stop: asyncio.Event, still_active: Callable[[], Awaitable[bool]]
    ) -> None:
        try:
            async with connect(
                self.url,
                additional_headers={"Authorization": f"Bearer {self._pak}"},
                user_agent_header=f"brokkr-agent/{brokkr.__version__}",
                # Frames are small JSON; a deflate context per connection would cost the broker
                # memory for each of thousands of agents.
                compression=None,
                open_timeout=self._open_timeout,
                ping_interval=self._ping_interval,
                ping_timeout=PING_TIMEOUT,
                close_timeout=CLOSE_TIMEOUT,
                max_size=MAX_INBOUND_BYTES,
                ssl=self._ssl,
            ) as socket:
                self.failures = 0
                self.rejections = 0
                if self._connected_before:
                    self.observer.reconnected()
                self._connected_before = True
                log.info("broker channel up (%s)", self.url)
                await self._serve(socket, stop)
        except InvalidStatus as exc:
            await self._refused(exc, still_active)
        except (OSError, TimeoutError, WebSocketException) as exc:
            self.rejections = 0
            self._failed(f"{type(exc).__name__}: {exc}")
        except Exception:  # noqa: BLE001 - a bug must not end the channel (REST still works)
            self.rejections = 0
            log.exception("broker channel failed unexpectedly; reconnecting")

    async def _refused(
        self, exc: InvalidStatus, still_active: Callable[[], Awaitable[bool]]
    ) -> None:
        status = exc.response.status_code
        reason = _reason(exc)
        if status not in (401, 403):
            self.rejections = 0
            self._failed(f"HTTP {status}{reason}")
            return
        if not await still_active():
            log.info("broker channel refused (HTTP %d%s): agent not ACTIVE", status, reason)
            return
        self.rejections += 1
        if self.rejections < AUTH_REJECTIONS:
            self._failed(f"HTTP {status}{reason}")
            return
        self._set_state(State.AUTH_REJECTED)
        log.error(
            "the broker refused this agent's channel %d times in a row (HTTP %d%s): the PAK is "
            "rejected (revoked or rotated?) or not an agent PAK; set BROKKR__AGENT__PAK and "
            "restart the agent. The channel stays off until then; REST is used meanwhile.",
            self.rejections,
            status,
            reason,
        )

    def _failed(self, what: str) -> None:
        # The first failure of a row is worth a warning; its repetitions, every minute at
        # most, only at debug (REST carries on meanwhile).
        level = logging.WARNING if self.failures == 0 else logging.DEBUG
        log.log(level, "broker channel to %s not connected (%s); retrying", self.url, what)

    async def _serve(self, socket: ClientConnection, stop: asyncio.Event) -> None:
        self._set_state(State.UP)
        self._flush_gaps()
        if self._control or self._telemetry:
            self._ready.set()
        tasks = [
            asyncio.create_task(self._read(socket), name="channel-read"),
            asyncio.create_task(self._write(socket), name="channel-write"),
            asyncio.create_task(stop.wait(), name="channel-stop"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._set_state(State.DOWN)
            # Their socket is gone: nobody will acknowledge them now.
            for waiter in self._waiters.values():
                if not waiter.done():
                    waiter.set_result(False)
        for task in done:
            error = None if task.cancelled() else task.exception()
            if error is not None and not isinstance(error, ConnectionClosed):
                log.error("broker channel failed: %r", error)
        if not stop.is_set():
            log.warning("broker channel down (%s); reconnecting", _closed_reason(socket))

    # --- outbound ----------------------------------------------------------------------------

    def offer(self, frame: bytes) -> bool:
        """Queue one telemetry frame (``wire.channel.frame``) without waiting; False when it was
        dropped (not Up, or the telemetry lane full), and then counted for its stack's gap."""
        try:
            peek = _peek.decode(frame)
        except msgspec.DecodeError:
            self.observer.dropped("invalid")
            return False
        if self._state is not State.UP:
            self._drop(peek, "disconnected")
            return False
        if self._gaps:
            self._flush_gaps()
        if len(self._telemetry) >= self._queue_frames:
            self._drop(peek, "buffer_full")
            return False
        self._telemetry.append(_Outgoing(peek.type, frame))
        self._ready.set()
        return True

    async def send_acked(self, type_: str, body: object) -> bool:
        """Send one control frame with a fresh ``ref`` and wait up to ``ack_timeout`` for the
        broker's ack; True only when it says ``ok``. False at once when not Up or the control
        lane is full, and when the socket dies before the ack: the caller uses REST."""
        if self._state is not State.UP or len(self._control) >= self._queue_frames:
            return False
        self._refs += 1
        ref = format(self._refs, "x")
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        item = _Outgoing(type_, frames.frame(type_, body, ref=ref))
        self._waiters[ref] = waiter
        self._control.append(item)
        self._ready.set()
        try:
            return await asyncio.wait_for(waiter, timeout=self.ack_timeout)
        except TimeoutError:
            log.debug("no ack for %s %s within %.1f s", type_, ref, self.ack_timeout)
            self.observer.dropped("ack_timeout")
            return False
        finally:
            del self._waiters[ref]
            # Not written yet: withdrawn, so it is not sent as well as its REST replacement.
            with contextlib.suppress(ValueError):
                self._control.remove(item)

    def _drop(self, peek: _Peek, reason: frames.GapReason) -> None:
        self.observer.dropped(reason)
        stack_id = peek.body.stack_id
        if stack_id is None:
            return
        lost = 1 if peek.type != frames.LOG_GAP else peek.body.dropped_count
        gap = self._gaps.get((stack_id, reason))
        if gap is not None:
            gap.count += lost
        elif len(self._gaps) < MAX_GAPS:
            self._gaps[stack_id, reason] = _Gap(since=datetime.now(UTC), count=lost)

    def _flush_gaps(self) -> None:
        """Queue the pending gap frames, oldest first, while the telemetry lane has room."""
        if self._agent_id is None:
            return
        while self._gaps and len(self._telemetry) < self._queue_frames:
            (stack_id, reason), gap = next(iter(self._gaps.items()))
            del self._gaps[stack_id, reason]
            body = frames.LogGapBody(
                agent_id=self._agent_id,
                stack_id=stack_id,
                since_ts=gap.since,
                dropped_count=gap.count,
                reason=reason,
            )
            self._telemetry.append(_Outgoing(frames.LOG_GAP, frames.frame(frames.LOG_GAP, body)))
            self._ready.set()

    def _next(self) -> _Outgoing | None:
        if self._control:
            return self._control.popleft()
        if self._telemetry:
            return self._telemetry.popleft()
        return None

    async def _write(self, socket: ClientConnection) -> None:
        while True:
            item = self._next()
            if item is None:
                self._ready.clear()
                await self._ready.wait()
                continue
            try:
                await socket.send(item.frame, text=True)
            except ConnectionClosed:
                if item.type in frames.TELEMETRY_TYPES:
                    self._drop(_peek.decode(item.frame), "disconnected")
                raise
            self.observer.frame("out", item.type)
            if self._gaps:
                self._flush_gaps()

    # --- inbound -----------------------------------------------------------------------------

    async def _read(self, socket: ClientConnection) -> None:
        async for message in socket:
            self._received(message)

    def _received(self, message: str | bytes) -> None:
        """Handle one inbound frame at once: nothing here waits (flaw 15)."""
        if isinstance(message, bytes):
            log.debug("binary frame from the broker ignored")
            self.observer.dropped("binary")
            return
        try:
            envelope = _envelope.decode(message)
        except msgspec.DecodeError as exc:
            log.debug("undecodable frame from the broker ignored: %s", exc)
            self.observer.dropped("undecodable")
            return
        kind = envelope.type
        if kind == frames.ACK:
            try:
                ack = _ack.decode(envelope.body)
            except msgspec.DecodeError as exc:
                log.debug("undecodable ack ignored: %s", exc)
                self.observer.dropped("undecodable")
                return
            waiter = self._waiters.get(ack.ref)
            if waiter is None or waiter.done():
                log.debug("ack for %s came too late", ack.ref)
                self.observer.dropped("late_ack")
                return
            if not ack.ok:
                log.warning("the broker refused an uplink frame: %s", ack.error)
            waiter.set_result(ack.ok)
        elif kind in (frames.TARGET_CHANGED, frames.STACK_CHANGED):
            self.poll_wake.set()
        elif kind == frames.WORK_ORDER:
            self.work_orders_wake.set()
        else:
            log.debug("frame of unknown type %r from the broker ignored", kind[:64])
            self.observer.dropped("unknown_type")
            return
        self.observer.frame("in", kind)


async def _first(*events: asyncio.Event) -> None:
    """Return once any of ``events`` is set."""
    waits = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


def _reason(exc: InvalidStatus) -> str:
    """``: <code>: <message>`` of a D2 refusal body, or nothing."""
    try:
        body = _refusal.decode(exc.response.body or b"")
    except msgspec.DecodeError:
        return ""
    return f": {body.code}: {body.message[:200]}"


def _closed_reason(socket: ClientConnection) -> str:
    if socket.close_code is None:
        return "connection lost"
    return f"closed {socket.close_code} {socket.close_reason or ''}".rstrip()
