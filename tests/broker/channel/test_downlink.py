"""One connection's send queue (``services.downlink``) towards a peer that reads slowly: hints
never wait, identical pending hints coalesce, a full queue drops the oldest pending hint (counted)
and keeps acknowledgements, which wait for room instead; a close drops what is queued."""

from __future__ import annotations

import asyncio
import uuid

from brokkr.broker.services.downlink import Downlink

CAPACITY = 16


class SlowPeer:
    def __init__(self) -> None:
        self.received: list[str] = []
        self.closed: tuple[int, str] | None = None
        self.reading = asyncio.Event()
        self.dropped: list[str] = []

    async def send(self, text: str) -> None:
        await self.reading.wait()
        self.received.append(text)

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def downlink(self) -> Downlink:
        return Downlink(
            send=self.send,
            close=self.close,
            capacity=CAPACITY,
            sent=lambda type_: None,
            dropped=self.dropped.append,
        )


async def drained(peer: SlowPeer, count: int) -> None:
    async with asyncio.timeout(5):
        while len(peer.received) < count:
            await asyncio.sleep(0.001)


async def test_hints_coalesce_and_a_full_queue_drops_the_oldest_hint() -> None:
    peer = SlowPeer()
    downlink = peer.downlink()
    writer = asyncio.create_task(downlink.run())
    keys = [uuid.uuid4() for _ in range(CAPACITY + 3)]
    # Queued without the writer running: the three oldest hints make room for the newest.
    for key in keys:
        downlink.hint("stack_changed", key, f"hint {key}")
        downlink.hint("stack_changed", key, f"hint {key} again")
    # The queue is full of hints: the ack waits until the writer takes one.
    await asyncio.wait_for(downlink.ack("ack 1"), 1)
    peer.reading.set()
    expected = 1 + CAPACITY
    await drained(peer, expected)
    downlink.close(1000, "done")
    await asyncio.wait_for(writer, 5)
    assert peer.received[-1] == "ack 1"
    assert peer.received[0] == f"hint {keys[3]}"
    assert "again" not in " ".join(peer.received)
    assert len(peer.received) == expected and peer.dropped == ["queue_full"] * 3
    assert downlink.messages_out == expected and peer.closed == (1000, "done")


async def test_acks_wait_for_room_and_a_close_drops_what_is_queued() -> None:
    peer = SlowPeer()
    downlink = peer.downlink()
    writer = asyncio.create_task(downlink.run())
    for index in range(CAPACITY + 1):
        await asyncio.wait_for(downlink.ack(f"ack {index}"), 1)
    waiting = asyncio.create_task(downlink.ack("one too many"))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    downlink.close(4401, "PAK revoked")
    await asyncio.wait_for(waiting, 1)
    peer.reading.set()
    await asyncio.wait_for(writer, 5)
    assert peer.closed == (4401, "PAK revoked")
    assert len(peer.received) <= 1
