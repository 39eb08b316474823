"""Live stack streams on this broker: subscribers of a stack get its new events and log lines
as frames, whichever broker the agent streams to.

Per stack with subscribers here, ONE tail reads the rows committed after the last it saw (all
brokers write to the shared database), woken early by this broker's own batch writes and at
least every ``TICK_SECONDS``. Rows are stamped when a broker accepts them and committed by its
next batch, so each read looks back an overlap window (the flush interval plus a grace) and
skips the ids it already sent: a row committed late is neither missed nor sent twice.

Each subscriber has a bounded queue; a slow one loses frames and then gets one ``log_gap``
(``reason`` "buffer_full", the true ``dropped_count``, ``agent_id`` the nil UUID: the broker
dropped them, not an agent). It never slows the tail or other subscribers. Gaps that agents
report reach the subscribers of the broker they stream to only (gaps are not stored).

Every ``CHECK_SECONDS`` a tail checks that its stack is still live (else its streams end with
close code 4404) and that each subscriber's PAK still names someone (else 4403: revoked,
rotated, deleted or deactivated).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

from brokkr.broker import db
from brokkr.broker.domain import errors
from brokkr.common import wire
from brokkr.common.wire import channel

if TYPE_CHECKING:
    from brokkr.broker.domain import access
    from brokkr.broker.services.context import Context

log = logging.getLogger(__name__)

TICK_SECONDS = 0.5
CHECK_SECONDS = 1.0
# Beyond the flush interval: how late after its stamp a row may still commit and be streamed.
OVERLAP_GRACE_SECONDS = 2.0
PAGE_ROWS = 1000
# Rows one tick reads per table at most; the rest follow at the next tick.
MAX_PAGES = 10
STACK_DELETED = 4404
ACCESS_REVOKED = 4403
GOING_AWAY = 1001
# A gap the broker made (a slow subscriber), not one an agent reported.
BROKER = UUID(int=0)


class Observer(Protocol):
    def live_frames_dropped(self, frames: int) -> None: ...


class Subscriber:
    """One open live stream: a bounded queue of frames and, once dropped frames, a gap."""

    def __init__(
        self, *, stack_id: UUID, pak_hash: str | None, capacity: int, observer: Observer
    ) -> None:
        self.stack_id = stack_id
        self.pak_hash = pak_hash
        self.close_code: int | None = None
        self._capacity = capacity
        self._observer = observer
        self._frames: deque[bytes] = deque()
        self._dropped = 0
        self._dropped_since: datetime | None = None
        self._ready = asyncio.Event()

    def offer(self, frame: bytes) -> None:
        """Queue ``frame``, or drop and count it when the queue is full (never waits)."""
        if self.close_code is not None:
            return
        if len(self._frames) >= self._capacity:
            if not self._dropped:
                self._dropped_since = datetime.now(UTC)
            self._dropped += 1
            self._observer.live_frames_dropped(1)
            return
        if self._dropped:
            # In its place: after what was queued before the loss, before what came after.
            self._frames.append(self._gap())
        self._frames.append(frame)
        self._ready.set()

    def end(self, code: int) -> None:
        self.close_code = code
        self._ready.set()

    async def next_frame(self) -> bytes | None:
        """The next frame to send; None once the stream was ended (``close_code``)."""
        while self.close_code is None:
            if self._frames:
                return self._frames.popleft()
            if self._dropped:
                return self._gap()
            self._ready.clear()
            await self._ready.wait()
        return None

    def _gap(self) -> bytes:
        body = channel.LogGapBody(
            agent_id=BROKER,
            stack_id=self.stack_id,
            since_ts=self._dropped_since or datetime.now(UTC),
            dropped_count=self._dropped,
            reason="buffer_full",
        )
        self._dropped, self._dropped_since = 0, None
        return channel.frame(channel.LOG_GAP, body)


class _Table:
    """One table's read position in a tail: the newest stamp seen, and the ids seen since the
    overlap window's start."""

    def __init__(
        self,
        *,
        kind: str,
        read: Callable[..., Awaitable[Sequence[wire.AgentK8sEvent | wire.AgentPodLog]]],
        start: datetime,
    ) -> None:
        self.kind = kind
        self.read = read
        self.newest = start
        self.seen: dict[UUID, datetime] = {}


class _Tail:
    def __init__(self, stack_id: UUID, start: datetime) -> None:
        self.stack_id = stack_id
        self.subscribers: set[Subscriber] = set()
        self.wake = asyncio.Event()
        # Rows stamped before the tail started are history (the REST reads), never streamed.
        self.start = start
        self.tables = (
            _Table(kind=channel.K8S_EVENT, read=db.telemetry.events_after, start=start),
            _Table(kind=channel.POD_LOG_LINE, read=db.telemetry.logs_after, start=start),
        )
        self.task: asyncio.Task[None] | None = None


class LiveStreams:
    def __init__(self, *, observer: Observer) -> None:
        self._observer = observer
        self._ctx: Context | None = None
        self._tails: dict[UUID, _Tail] = {}

    def start(self, ctx: Context) -> None:
        self._ctx = ctx

    async def stop(self) -> None:
        tails, self._tails = list(self._tails.values()), {}
        for tail in tails:
            for subscriber in tail.subscribers:
                subscriber.end(GOING_AWAY)
            tail.subscribers.clear()
            tail.wake.set()
        # Not cancelled: a tail cancelled inside a SQLite read leaks its connection; each
        # returns once its read is done.
        await asyncio.gather(*(tail.task for tail in tails if tail.task is not None))

    def count(self) -> int:
        return sum(len(tail.subscribers) for tail in self._tails.values())

    def gap(self, stack_id: UUID, frame: bytes) -> None:
        tail = self._tails.get(stack_id)
        if tail is not None:
            for subscriber in tail.subscribers:
                subscriber.offer(frame)

    def written(self) -> None:
        """This broker committed telemetry: its tails read now rather than at their tick."""
        for tail in self._tails.values():
            tail.wake.set()

    async def subscribe(self, *, caller: access.Caller, stack_id: UUID) -> Subscriber:
        """Open a stream of ``stack_id`` for ``caller`` (admin or owning generator; others get
        the stack routes' 404), or 503 beyond ``limits.ws_max_live_subscribers``."""
        ctx = self._bound()
        async with ctx.database.read() as tx:
            stack = await db.stacks.get(tx, stack_id)
        # As services.stacks.owned (which imports the context, so not from here): D8.
        if stack is None:
            raise errors.StackNotFound(stack_id)
        if not (caller.is_admin or caller.is_generator(stack.generator_id)):
            raise errors.StackNotOwned(stack_id)
        limits = ctx.settings.current.limits
        if self.count() >= limits.ws_max_live_subscribers:
            raise errors.LiveStreamsFull(limits.ws_max_live_subscribers)
        subscriber = Subscriber(
            stack_id=stack_id,
            pak_hash=caller.pak_hash,
            capacity=limits.ws_send_queue_frames,
            observer=self._observer,
        )
        tail = self._tails.get(stack_id)
        if tail is None:
            tail = self._tails[stack_id] = _Tail(stack_id, ctx.now())
            tail.task = asyncio.create_task(self._follow(tail), name=f"brokkr-live-{stack_id}")
        tail.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        tail = self._tails.get(subscriber.stack_id)
        if tail is None:
            return
        tail.subscribers.discard(subscriber)
        if not tail.subscribers:
            del self._tails[subscriber.stack_id]
            tail.wake.set()  # the tail returns after its current read

    def _bound(self) -> Context:
        if self._ctx is None:
            raise errors.InternalError()
        return self._ctx

    async def _follow(self, tail: _Tail) -> None:
        ctx = self._bound()
        next_check = time.monotonic() + CHECK_SECONDS
        while tail.subscribers:
            tail.wake.clear()
            try:
                await self._read(ctx, tail)
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + CHECK_SECONDS
                    await self._check(ctx, tail)
            except Exception:  # noqa: BLE001 - a database outage pauses the streams only
                log.warning("live stream of stack %s: read failed", tail.stack_id, exc_info=True)
            if not tail.subscribers:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tail.wake.wait(), TICK_SECONDS)

    async def _read(self, ctx: Context, tail: _Tail) -> None:
        flush = ctx.settings.current.broker.telemetry_flush_interval_seconds
        overlap = timedelta(seconds=flush + OVERLAP_GRACE_SECONDS)
        async with ctx.database.read() as tx:
            for table in tail.tables:
                cursor: db.telemetry.Cursor = (table.newest - overlap, BROKER)
                for _ in range(MAX_PAGES):
                    rows = await table.read(tx, tail.stack_id, cursor, limit=PAGE_ROWS)
                    self._deliver(tail, table, rows)
                    if len(rows) < PAGE_ROWS:
                        break
                    cursor = (rows[-1].created_at, rows[-1].id)
                horizon = table.newest - overlap
                table.seen = {i: at for i, at in table.seen.items() if at > horizon}

    def _deliver(
        self, tail: _Tail, table: _Table, rows: Sequence[wire.AgentK8sEvent | wire.AgentPodLog]
    ) -> None:
        for row in rows:
            if row.id in table.seen:
                continue
            table.seen[row.id] = row.created_at
            table.newest = max(table.newest, row.created_at)
            if row.created_at >= tail.start:
                frame = channel.frame(table.kind, row)
                for subscriber in tail.subscribers:
                    subscriber.offer(frame)

    async def _check(self, ctx: Context, tail: _Tail) -> None:
        async with ctx.database.read() as tx:
            live = await db.stacks.live_among(tx, [tail.stack_id])
        if not live:
            for subscriber in list(tail.subscribers):
                subscriber.end(STACK_DELETED)
            return
        hashes = {s.pak_hash for s in tail.subscribers}
        revoked = {
            h for h in hashes if h is None or await db.identities.find(ctx.database, h) is None
        }
        for subscriber in list(tail.subscribers):
            if subscriber.pak_hash in revoked:
                subscriber.end(ACCESS_REVOKED)
