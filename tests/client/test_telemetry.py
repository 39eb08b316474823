"""Stack telemetry through the client against a real broker process (SQLite and PostgreSQL):
``stacks.events`` and ``stacks.logs`` (typed history answers, ``since`` and ``limit``),
``stacks.live`` (frames for rows written after it opened, by whichever broker; a refused
upgrade raises the REST error types: 404 for a foreign stack, 401 without a PAK; the stream's
end when the stack is deleted raises NotFound), its blocking twin (an iterator), and
``agents.connections`` (admins; a generator gets Forbidden).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from brokkr.client import BrokkrClient, Forbidden, NotFound, Retry, Unauthorized
from brokkr.common import wire
from tests.client.conftest import LiveBroker, unique
from tests.client.telemetry_rows import insert_event, insert_lines

DEADLINE = 10.0


async def owned_stack(live_broker: LiveBroker) -> tuple[str, wire.Stack]:
    async with live_broker.client(live_broker.admin_pak) as admin:
        pak = (await admin.generators.create(name=unique("ci"))).pak
    async with live_broker.client(pak) as ci:
        return pak, await ci.stacks.create(name=unique("web"))


async def subscribers(live_broker: LiveBroker) -> int:
    async with live_broker.client(live_broker.admin_pak) as admin:
        return (await admin.agents.connections()).live_subscribers


async def opened(live_broker: LiveBroker, before: int) -> None:
    """Wait until the broker serves one more live stream than ``before``."""
    async with asyncio.timeout(DEADLINE):
        while await subscribers(live_broker) <= before:
            await asyncio.sleep(0.02)


async def test_history_reads_return_typed_answers(live_broker: LiveBroker) -> None:
    pak, stack = await owned_stack(live_broker)
    await insert_lines(live_broker.database_url, stack.id, "old", age=timedelta(hours=1))
    await insert_lines(live_broker.database_url, stack.id, "one", "two")
    await insert_event(live_broker.database_url, stack.id, reason="BackOff", message="restarting")

    async with live_broker.client(pak) as ci:
        logs = await ci.stacks.logs(stack.id)
        recent = await ci.stacks.logs(stack.id, since=datetime.now(UTC) - timedelta(minutes=5))
        newest = await ci.stacks.logs(stack.id, limit=1)
        events = await ci.stacks.events(stack.id)

    assert isinstance(logs, wire.PodLogHistoryResponse)
    assert [entry.line for entry in logs.lines] == ["two", "one", "old"]
    assert [entry.line for entry in recent.lines] == ["two", "one"]
    assert [entry.line for entry in newest.lines] == ["two"]
    assert logs.retention.oldest_available_ts == logs.lines[-1].created_at
    assert [(e.reason, e.message) for e in events.events] == [("BackOff", "restarting")]
    assert events.retention.retention_ceiling_seconds == wire.RETENTION_CEILING_SECONDS


async def test_live_yields_rows_written_after_it_opened(live_broker: LiveBroker) -> None:
    pak, stack = await owned_stack(live_broker)
    await insert_lines(live_broker.database_url, stack.id, "before")
    before = await subscribers(live_broker)
    async with live_broker.client(pak) as ci:
        stream = ci.stacks.live(stack.id)
        first = asyncio.ensure_future(anext(stream))
        await opened(live_broker, before)
        await insert_lines(live_broker.database_url, stack.id, "after")
        frame = await asyncio.wait_for(first, DEADLINE)
        await stream.aclose()  # type: ignore[attr-defined]

    assert isinstance(frame, wire.AgentPodLog) and frame.line == "after"


async def test_a_refused_upgrade_raises_the_rest_error(live_broker: LiveBroker) -> None:
    _, stack = await owned_stack(live_broker)
    async with live_broker.client(live_broker.admin_pak) as admin:
        other = (await admin.generators.create(name=unique("other"))).pak
    for pak, error in ((other, NotFound), (None, Unauthorized)):
        async with live_broker.client(pak) as client:
            with pytest.raises(error):
                await anext(client.stacks.live(stack.id))


async def test_the_stream_of_a_deleted_stack_raises_not_found(live_broker: LiveBroker) -> None:
    pak, stack = await owned_stack(live_broker)
    before = await subscribers(live_broker)
    async with live_broker.client(pak) as ci:
        stream = ci.stacks.live(stack.id)
        first = asyncio.ensure_future(anext(stream))
        await opened(live_broker, before)
        await ci.stacks.delete(stack.id)
        with pytest.raises(NotFound):
            await asyncio.wait_for(first, DEADLINE)


async def test_the_blocking_live_stream_is_an_iterator(live_broker: LiveBroker) -> None:
    pak, stack = await owned_stack(live_broker)

    def first_frame() -> object:
        with BrokkrClient(live_broker.url, pak, retry=Retry(attempts=1)) as ci:
            stream = ci.stacks.live(stack.id)
            frame = next(stream)
            stream.close()
            return frame

    before = await subscribers(live_broker)
    reading = asyncio.ensure_future(asyncio.to_thread(first_frame))
    await opened(live_broker, before)
    await insert_lines(live_broker.database_url, stack.id, "later")
    frame = await asyncio.wait_for(reading, DEADLINE)

    assert isinstance(frame, wire.AgentPodLog) and frame.line == "later"


async def test_connections_are_for_admins(live_broker: LiveBroker) -> None:
    pak, _ = await owned_stack(live_broker)
    async with live_broker.client(live_broker.admin_pak) as admin:
        found = await admin.agents.connections()
    async with live_broker.client(pak) as ci:
        with pytest.raises(Forbidden):
            await ci.agents.connections()

    assert isinstance(found, wire.WsConnectionsResponse)
    assert found.connected_agents == len(found.connections)
