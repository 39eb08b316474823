"""The live stack stream ``GET /api/v1/stacks/{id}/live`` (WebSocket) on a real server (uvicorn
in this process, serving the session's broker app as ``brokkr serve`` does), read through the
client's ``stacks.live``; SQLite and PostgreSQL.

Covers: roles at the upgrade (owner and admin stream; another generator and agents get 404, no
PAK 401, before any handshake); log lines, events and agent gaps arrive as frames; a slow
subscriber loses frames and gets one ``log_gap`` with the true count (and the metric); the
subscriber limit (503); the stream ends when the stack is deleted (close 4404) or the PAK is
rotated (4403); a plain GET is 426; frames committed by another broker on the same PostgreSQL
database arrive (cross-broker).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn

from brokkr.broker.api.observability import Observability
from brokkr.broker.app import create_app
from brokkr.client import AsyncBrokkrClient, NotFound, Retry, ServerError, Unauthorized
from brokkr.client.streams import LiveFrame
from brokkr.common import wire
from brokkr.common.wire import channel
from tests.broker.api.test_telemetry import World, context, line, metric
from tests.broker.conftest import Api, Broker, limits

DEADLINE = 10.0


@pytest.fixture(scope="session")
async def served(broker: Broker) -> AsyncIterator[str]:
    """The session's broker app on a free port of 127.0.0.1 (its lifespan already ran)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        Observability(broker.app, broker.app.state.metrics),
        lifespan="off",
        log_config=None,
        access_log=False,
        ws="wsproto",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    server.force_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture
async def world(api: Api) -> World:
    return await World(api).build()


@contextlib.asynccontextmanager
async def client(url: str, pak: str | None) -> AsyncIterator[AsyncBrokkrClient]:
    async with AsyncBrokkrClient(url, pak, retry=Retry(attempts=1), timeout=5) as brokkr:
        yield brokkr


class Stream:
    """A live stream read in the background into ``frames``."""

    def __init__(self, frames: AsyncIterator[LiveFrame]) -> None:
        self.frames: list[LiveFrame] = []
        self.error: BaseException | None = None
        self._source = frames
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for frame in self._source:
                self.frames.append(frame)
        except Exception as exc:  # noqa: BLE001 - kept for the test to assert on
            self.error = exc

    async def until(self, done: Any, what: str) -> None:
        async with asyncio.timeout(DEADLINE):
            while not done():
                assert self.error is None or done(), self.error
                await asyncio.sleep(0.02)
        assert done(), what

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def open_stream(api: Api, url: str, pak: str, stack_id: str) -> Stream:
    brokkr = AsyncBrokkrClient(url, pak, retry=Retry(attempts=1), timeout=5)
    iterator = brokkr.stacks.live(uuid.UUID(stack_id))
    stream = Stream(iterator)
    ctx = context(api)
    before = ctx.telemetry.live_subscribers()
    async with asyncio.timeout(DEADLINE):
        while ctx.telemetry.live_subscribers() == before and stream.error is None:
            await asyncio.sleep(0.01)
    if stream.error is not None:
        raise stream.error
    return stream


def lines_of(stream: Stream) -> list[str]:
    return [f.line for f in stream.frames if isinstance(f, wire.AgentPodLog)]


async def test_owner_receives_log_lines_events_and_gaps(
    api: Api, served: str, world: World
) -> None:
    stream = await open_stream(api, served, world.generator_pak, world.stack["id"])
    try:
        await world.log("hello", "world")
        await world.events("Pulled")
        context(api).telemetry.accept_gap(
            uuid.UUID(world.agent["id"]),
            channel.LogGapBody(
                agent_id=uuid.UUID(world.agent["id"]),
                stack_id=uuid.UUID(world.stack["id"]),
                since_ts=datetime.now(UTC),
                dropped_count=7,
                reason="rate_limit",
            ),
        )

        await stream.until(lambda: len(stream.frames) >= 4, "two lines, an event and a gap")
        assert lines_of(stream) == ["hello", "world"]
        events = [f for f in stream.frames if isinstance(f, wire.AgentK8sEvent)]
        assert [e.reason for e in events] == ["Pulled"]
        gaps = [f for f in stream.frames if isinstance(f, channel.LogGapBody)]
        assert [(g.dropped_count, g.reason) for g in gaps] == [(7, "rate_limit")]
    finally:
        await stream.close()


async def test_admin_may_stream_and_others_are_refused_before_the_handshake(
    api: Api, served: str, world: World
) -> None:
    stream = await open_stream(api, served, api.admin_pak, world.stack["id"])
    await stream.close()
    stack_id = uuid.UUID(world.stack["id"])
    for pak, error, code in (
        (world.other_pak, NotFound, "stack_not_found"),
        (world.agent_pak, NotFound, "stack_not_found"),
        (None, Unauthorized, None),
    ):
        async with client(served, pak) as brokkr:
            with pytest.raises(error) as refused:
                async for _ in brokkr.stacks.live(stack_id):
                    pass
        if code is not None:
            assert refused.value.code == code


async def test_a_plain_get_is_426(api: Api, served: str, world: World) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{served}/api/v1/stacks/{world.stack['id']}/live")

    assert response.status_code == 426
    assert response.json()["code"] == "upgrade_required"


async def test_a_slow_subscriber_gets_one_gap_with_the_true_count(
    api: Api, served: str, world: World
) -> None:
    dropped = metric(api, "brokkr_ws_live_frames_dropped_total")
    with limits(api, ws_send_queue_frames=16):
        stream = await open_stream(api, served, world.generator_pak, world.stack["id"])
        try:
            # One batch: the tail reads all 100 at once, faster than any socket drains.
            await world.log(*(str(i) for i in range(100)))
            await stream.until(
                lambda: any(isinstance(f, channel.LogGapBody) for f in stream.frames), "a gap"
            )
        finally:
            await stream.close()

    gaps = [f for f in stream.frames if isinstance(f, channel.LogGapBody)]
    assert [(g.reason, g.agent_id) for g in gaps] == [("buffer_full", uuid.UUID(int=0))]
    assert len(lines_of(stream)) + gaps[0].dropped_count == 100
    assert lines_of(stream) == [str(i) for i in range(len(lines_of(stream)))]
    assert metric(api, "brokkr_ws_live_frames_dropped_total") == dropped + gaps[0].dropped_count


async def test_subscribers_beyond_the_limit_get_503(api: Api, served: str, world: World) -> None:
    with limits(api, ws_max_live_subscribers=1):
        stream = await open_stream(api, served, world.generator_pak, world.stack["id"])
        try:
            async with client(served, api.admin_pak) as brokkr:
                with pytest.raises(ServerError) as refused:
                    async for _ in brokkr.stacks.live(uuid.UUID(world.stack["id"])):
                        pass
        finally:
            await stream.close()

    assert (refused.value.status, refused.value.code) == (503, "live_streams_full")


async def test_the_stream_ends_when_the_stack_is_deleted(
    api: Api, served: str, world: World
) -> None:
    stream = await open_stream(api, served, world.generator_pak, world.stack["id"])
    response = await api.client.delete(f"/api/v1/stacks/{world.stack['id']}", headers=api.admin)
    assert response.status_code == 204, response.text

    await stream.until(lambda: stream.error is not None, "the stream ended")
    assert isinstance(stream.error, NotFound)
    await stream.close()


async def test_the_stream_ends_when_the_pak_is_rotated(api: Api, served: str, world: World) -> None:
    stream = await open_stream(api, served, world.generator_pak, world.stack["id"])
    owner = world.stack["generator_id"]
    rotated = await api.client.post(f"/api/v1/generators/{owner}/rotate-pak", headers=api.admin)
    assert rotated.status_code == 201, rotated.text

    await stream.until(lambda: stream.error is not None, "the stream ended")
    assert isinstance(stream.error, Unauthorized)
    await stream.close()
    assert context(api).telemetry.live_subscribers() == 0


@pytest.mark.parametrize("broker", ["postgresql"], indirect=True)
async def test_rows_written_by_another_broker_arrive(
    api: Api, served: str, world: World, broker: Broker
) -> None:
    other = create_app(broker.settings)
    await other.state.runtime.start()
    try:
        stream = await open_stream(api, served, world.generator_pak, world.stack["id"])
        try:
            telemetry = other.state.ctx.telemetry
            agent_id = uuid.UUID(world.agent["id"])
            assert telemetry.accept_log_line(
                agent_id, line(world.agent["id"], world.stack["id"], "from the other broker")
            )
            await telemetry.flush()
            await stream.until(lambda: lines_of(stream) == ["from the other broker"], "the line")
        finally:
            await stream.close()
    finally:
        await other.state.runtime.stop()
