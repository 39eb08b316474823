"""One agent connection's way out: a bounded queue of frames and the one task that writes them.

Everything sent to an agent is a control frame (a hint or an acknowledgement). A hint never
waits: identical pending hints coalesce, and on a full queue the oldest pending hint is dropped
and counted (hints only make the agent ask sooner; its polls still find everything). An
acknowledgement waits for room instead, which stops reading that agent's frames until its own
socket drains: a slow agent slows itself, never the hub or another connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from uuid import UUID

from brokkr.common.wire import channel

Send = Callable[[str], Awaitable[None]]
Close = Callable[[int, str], Awaitable[None]]
# What a failed send raises once the peer is gone (uvicorn's ClientDisconnected is an OSError;
# a send after the close was sent is a RuntimeError).
_GONE = (OSError, RuntimeError)


class Downlink:
    def __init__(
        self,
        *,
        send: Send,
        close: Close,
        capacity: int,
        sent: Callable[[str], None],
        dropped: Callable[[str], None],
    ) -> None:
        self._send = send
        self._close = close
        self._capacity = capacity
        self._sent = sent
        self._dropped = dropped
        # (frame type, hint key or None for an acknowledgement, frame text)
        self._queue: deque[tuple[str, UUID | None, str]] = deque()
        self._pending: set[tuple[str, UUID]] = set()
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._closing: tuple[int, str] | None = None
        self._ended = False
        self.messages_out = 0

    @property
    def closing(self) -> bool:
        return self._closing is not None or self._ended

    def hint(self, type_: str, key: UUID, text: str) -> None:
        """Queue a hint frame; ``key`` (what it points at) coalesces identical pending hints."""
        if self.closing or (type_, key) in self._pending:
            return
        if len(self._queue) >= self._capacity and not self._drop_oldest_hint():
            self._dropped("queue_full")
            return
        self._queue.append((type_, key, text))
        self._pending.add((type_, key))
        self._ready.set()

    def _drop_oldest_hint(self) -> bool:
        for index, (type_, key, _text) in enumerate(self._queue):
            if key is not None:
                del self._queue[index]
                self._pending.discard((type_, key))
                self._dropped("queue_full")
                return True
        return False

    async def ack(self, text: str) -> None:
        """Queue an acknowledgement, waiting for room (the caller stops reading meanwhile)."""
        while len(self._queue) >= self._capacity and not self.closing:
            self._room.clear()
            await self._room.wait()
        if self.closing:
            return
        self._queue.append((channel.ACK, None, text))
        self._ready.set()

    def close(self, code: int, reason: str) -> None:
        """End the connection: what is still queued is dropped, the writer sends the close."""
        if self.closing:
            return
        self._closing = (code, reason)
        self._queue.clear()
        self._pending.clear()
        self._ready.set()
        self._room.set()

    async def run(self) -> None:
        """The writer: sends queued frames in order until the connection closes or is gone."""
        try:
            while True:
                await self._ready.wait()
                if self._closing is not None:
                    code, reason = self._closing
                    with contextlib.suppress(*_GONE):
                        await self._close(code, reason)
                    return
                if not self._queue:
                    self._ready.clear()
                    continue
                type_, key, text = self._queue.popleft()
                if key is not None:
                    self._pending.discard((type_, key))
                self._room.set()
                try:
                    await self._send(text)
                except _GONE:
                    return
                self.messages_out += 1
                self._sent(type_)
        finally:
            self._ended = True
            self._room.set()
