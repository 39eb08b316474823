"""Stack telemetry on this broker: the batch writer of the Kubernetes events and pod log lines
agents stream, the history reads, and (``services.live_streams``) the live streams of stacks.

Accepting a frame costs a dict and an append: rows wait in a bounded buffer and one task writes
them in batches, one executemany per table, outside any request. A full buffer drops the frame
(counted); a batch that fails is logged, counted and dropped, never retried. The channel only
hands over rows about stacks the agent reaches (``services.agent_channel``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol
from uuid import UUID, uuid4

from brokkr.broker import db
from brokkr.broker.domain import telemetry as rules
from brokkr.broker.services import live_streams
from brokkr.broker.settings import LimitsSettings
from brokkr.common.wire import channel

if TYPE_CHECKING:
    from brokkr.broker.services.context import Context

log = logging.getLogger(__name__)

EVENTS = db.telemetry.EVENTS
LOGS = db.telemetry.LOGS
_DEFAULT_LIMITS = LimitsSettings()


class Observer(Protocol):
    """What telemetry tells the metrics (``broker.metrics.Metrics`` implements it)."""

    def telemetry_dropped(self, table: str, rows: int) -> None: ...

    def telemetry_write_failed(self, table: str, rows: int) -> None: ...

    def telemetry_evicted(self, table: str, rows: int) -> None: ...

    def telemetry_eviction_run(self) -> None: ...

    def live_frames_dropped(self, frames: int) -> None: ...


class _Unobserved:
    def telemetry_dropped(self, table: str, rows: int) -> None:
        pass

    def telemetry_write_failed(self, table: str, rows: int) -> None:
        pass

    def telemetry_evicted(self, table: str, rows: int) -> None:
        pass

    def telemetry_eviction_run(self) -> None:
        pass

    def live_frames_dropped(self, frames: int) -> None:
        pass


class Telemetry:
    """Built with the context (idle); ``start(ctx)`` binds it and starts the writer."""

    def __init__(self, *, observer: Observer | None = None) -> None:
        self.observer: Observer = observer or _Unobserved()
        self.live = live_streams.LiveStreams(observer=self.observer)
        self._ctx: Context | None = None
        self._events: list[db.telemetry.Row] = []
        self._logs: list[db.telemetry.Row] = []
        self._due = asyncio.Event()
        self._has_room = asyncio.Event()
        self._has_room.set()
        self._writer: asyncio.Task[None] | None = None
        self._stopping = False

    def accept_event(self, agent_id: UUID, event: channel.K8sEventBody) -> bool:
        """Queue one event for its batch insert and the stack's live streams; False when it was
        dropped (the buffer is full) and counted."""
        if not self._room(EVENTS):
            return False
        involved = event.involved_object
        self._events.append(
            {
                "id": uuid4(),
                "agent_id": agent_id,
                "stack_id": event.stack_id,
                "observed_at": event.observed_at,
                "reason": rules.cut(event.reason, rules.MAX_NAME),
                "message": rules.cut(event.message, rules.MAX_MESSAGE),
                "event_type": rules.cut(event.event_type, 64),
                "source": rules.cut_optional(event.source, rules.MAX_NAME),
                "involved_object": {
                    "api_version": rules.cut(involved.api_version, rules.MAX_NAME),
                    "kind": rules.cut(involved.kind, rules.MAX_NAME),
                    "namespace": rules.cut_optional(involved.namespace, rules.MAX_NAME),
                    "name": rules.cut(involved.name, rules.MAX_NAME),
                    "uid": rules.cut(involved.uid, rules.MAX_NAME),
                },
                "created_at": self._now(),
            }
        )
        self._queued()
        return True

    def accept_log_line(self, agent_id: UUID, line: channel.PodLogLineBody) -> bool:
        """Queue one log line like ``accept_event``."""
        if not self._room(LOGS):
            return False
        self._logs.append(
            {
                "id": uuid4(),
                "agent_id": agent_id,
                "stack_id": line.stack_id,
                "namespace": rules.cut(line.namespace, rules.MAX_NAME),
                "pod": rules.cut(line.pod, rules.MAX_NAME),
                "container": rules.cut(line.container, rules.MAX_NAME),
                "ts": line.ts,
                "line": rules.cut(line.line, rules.MAX_LINE),
                "created_at": self._now(),
            }
        )
        self._queued()
        return True

    def accept_gap(self, agent_id: UUID, gap: channel.LogGapBody) -> None:
        """Tell the stack's live streams on this broker that the agent dropped lines (gaps are
        not stored, nor told to other brokers' streams)."""
        self.live.gap(gap.stack_id, channel.frame(channel.LOG_GAP, gap))

    def live_subscribers(self) -> int:
        """Live streams open on this broker."""
        return self.live.count()

    def buffered(self) -> int:
        return len(self._events) + len(self._logs)

    def full(self) -> bool:
        """Whether the next row would be dropped; the writer is told to write at once."""
        limits = self._ctx.settings.current.limits if self._ctx else _DEFAULT_LIMITS
        if self.buffered() < limits.telemetry_buffer_rows:
            return False
        self._has_room.clear()
        self._due.set()
        return True

    async def room(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) until the writer has taken the buffered rows: a
        channel connection waits here instead of reading, so a flood is pushed back to the
        agents over TCP and the event loop is left to the writer."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._has_room.wait(), timeout)

    def _room(self, table: str) -> bool:
        if not self.full():
            return True
        self.observer.telemetry_dropped(table, 1)
        return False

    def _queued(self) -> None:
        if self._ctx is not None and self.buffered() >= self._batch_rows():
            self._due.set()

    def _now(self) -> datetime:
        return self._ctx.now() if self._ctx else datetime.now(UTC)

    def _batch_rows(self) -> int:
        assert self._ctx is not None  # noqa: S101 - only called once started
        return self._ctx.settings.current.broker.telemetry_batch_rows

    async def start(self, ctx: Context) -> None:
        self._ctx = ctx
        self.live.start(ctx)
        self._writer = asyncio.create_task(self._write_forever(), name="brokkr-telemetry-writer")

    async def stop(self) -> None:
        """Stop the writer and write what is still buffered; end the live streams."""
        if self._writer is not None:
            # Not cancelled: a batch being written is finished, not lost.
            self._stopping = True
            self._due.set()
            await self._writer
            self._writer = None
        if self._ctx is not None:
            await self.flush()
        await self.live.stop()

    async def _write_forever(self) -> None:
        assert self._ctx is not None  # noqa: S101 - started with its context
        while not self._stopping:
            interval = self._ctx.settings.current.broker.telemetry_flush_interval_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._due.wait(), interval)
            self._due.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write every buffered row now, in batches; wakes this broker's live streams."""
        ctx = self._ctx
        assert ctx is not None  # noqa: S101 - started with its context
        events, self._events = self._events, []
        logs, self._logs = self._logs, []
        self._has_room.set()
        if not events and not logs:
            return
        batch = self._batch_rows()
        for table, rows, insert in (
            (EVENTS, events, db.telemetry.insert_events),
            (LOGS, logs, db.telemetry.insert_logs),
        ):
            for start in range(0, len(rows), batch):
                chunk = rows[start : start + batch]
                try:
                    async with ctx.database.transaction() as tx:
                        await insert(tx, chunk)
                except Exception:  # noqa: BLE001 - one failed batch is lost, not the writer
                    log.warning("telemetry batch of %d %s rows dropped", len(chunk), table)
                    self.observer.telemetry_write_failed(table, len(chunk))
        self.live.written()
