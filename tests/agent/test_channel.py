"""The agent's broker channel (agent.md §14, §20.2) against an in-test WebSocket server.

Unit level: the URL derivation; the reconnection schedule (1, 2, 4 ... 60 s, +/- 20 %);
``ws_force_rest`` defaults off, and when on never dials. Against the server: Down -> Up; a
server that goes away -> Down, and back Up by itself once it returns; only 401/403 count as
auth rejections (500, 503 and a closed connection do not, and reset the count), 5 in a row ->
AuthRejected and no more dialling, unless the agent turns out not to be ACTIVE; ``offer`` refuses
when Down, ForceRestOnly or full, delivers when Up and follows the state; dropped telemetry comes
back as one ``log_gap`` per stack with the true count; acks: acked -> True, refused or none within
the timeout -> False, the socket dying while waiting -> False at once; pushes set the wake events
(coalesced), bad inbound frames are dropped and counted and never stall the socket (flaw 15).
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest

from brokkr.agent import backoff
from brokkr.agent.channel import JITTER, Channel, State, url_of
from brokkr.agent.settings import AgentSection
from brokkr.common.wire import channel as frames
from tests.agent.channel_server import ChannelServer
from tests.agent.waiting import eventually
from tests.cli.serving import HOST, free_port

AGENT = uuid.uuid4()
STACK_A = uuid.uuid4()
STACK_B = uuid.uuid4()


class Observed:
    """A channel ``Observer`` that records everything."""

    def __init__(self) -> None:
        self.states: list[State] = []
        self.frames: collections.Counter[tuple[str, str]] = collections.Counter()
        self.drops: collections.Counter[str] = collections.Counter()
        self.reconnects = 0

    def state_changed(self, state: State) -> None:
        self.states.append(state)

    def frame(self, direction: str, type_: str) -> None:
        self.frames[direction, type_] += 1

    def dropped(self, reason: str) -> None:
        self.drops[reason] += 1

    def reconnected(self) -> None:
        self.reconnects += 1


def observed(channel: Channel) -> Observed:
    seen = Observed()
    channel.observe(seen)
    return seen


def fast(
    url: str, *, force_rest: bool = False, ack_timeout: float = 5.0, queue_frames: int = 256
) -> Channel:
    """Reconnects within 20-100 ms, without jitter."""
    return Channel(
        url,
        "agent-pak",
        force_rest=force_rest,
        ack_timeout=ack_timeout,
        queue_frames=queue_frames,
        first_delay=0.02,
        max_delay=0.1,
        rand=lambda low, high: 1.0,
    )


async def always_active() -> bool:
    return True


@asynccontextmanager
async def running(
    channel: Channel,
    *,
    active: bool = True,
    still_active: Callable[[], Awaitable[bool]] = always_active,
) -> AsyncIterator[asyncio.Event]:
    """``channel.run`` in a task; yields its gate (set: the agent is ACTIVE)."""
    stop, gate = asyncio.Event(), asyncio.Event()
    if active:
        gate.set()
    task = asyncio.create_task(
        channel.run(agent_id=AGENT, active=gate, still_active=still_active, stop=stop)
    )
    try:
        yield gate
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


def log_line(stack_id: uuid.UUID, text: str = "hello") -> bytes:
    body = frames.PodLogLineBody(
        agent_id=AGENT,
        stack_id=stack_id,
        namespace="default",
        pod="web-1",
        container="web",
        ts=datetime.now(UTC),
        line=text,
    )
    return frames.frame(frames.POD_LOG_LINE, body)


def beat() -> frames.Heartbeat:
    return frames.Heartbeat(agent_id=AGENT, sent_at=datetime.now(UTC))


# --- unit level ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("broker_url", "expected"),
    [
        ("http://broker:3000", "ws://broker:3000/internal/ws/agent"),
        ("http://broker:3000/", "ws://broker:3000/internal/ws/agent"),
        ("https://broker.example.com", "wss://broker.example.com/internal/ws/agent"),
        ("https://broker.example.com/", "wss://broker.example.com/internal/ws/agent"),
        ("broker:3000", "ws://broker:3000/internal/ws/agent"),
    ],
)
def test_url_is_derived_from_the_broker_url(broker_url: str, expected: str) -> None:
    assert url_of(broker_url) == expected


def test_ws_url_wins_over_the_derived_one() -> None:
    assert url_of("http://broker:3000", "wss://elsewhere/ws") == "wss://elsewhere/ws"
    section = AgentSection(broker_url="https://b.example/", ws_url=None)
    assert Channel.of(section).url == "wss://b.example/internal/ws/agent"


def test_backoff_doubles_from_1_to_60_and_jitters_within_20_percent() -> None:
    def schedule(rand: Callable[[float, float], float]) -> list[float]:
        return [
            backoff.spread(n, minimum=1.0, maximum=60.0, jitter=JITTER, rand=rand)
            for n in range(1, 10)
        ]

    assert schedule(lambda low, high: 1.0) == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert schedule(lambda low, high: low) == pytest.approx(
        [0.8 * s for s in [1, 2, 4, 8, 16, 32, 60, 60, 60]]
    )
    assert schedule(lambda low, high: high) == pytest.approx(
        [1.2 * s for s in [1, 2, 4, 8, 16, 32, 60, 60, 60]]
    )
    draws = [
        backoff.spread(3, minimum=1.0, maximum=60.0, jitter=JITTER, rand=random.uniform)
        for _ in range(2000)
    ]
    assert all(3.2 <= d <= 4.8 for d in draws)
    assert min(draws) < 3.4 and max(draws) > 4.6  # spread over the whole band


def test_force_rest_defaults_off() -> None:
    assert AgentSection().ws_force_rest is False
    assert Channel.of(AgentSection()).state is State.DOWN


async def test_force_rest_never_dials_and_refuses_everything() -> None:
    async with ChannelServer() as server:
        channel = fast(server.url, force_rest=True)
        seen = observed(channel)
        assert channel.state is State.FORCE_REST_ONLY
        async with running(channel):
            await asyncio.sleep(0.3)  # long enough for several dials, were it dialling
            assert channel.state is State.FORCE_REST_ONLY
            assert channel.offer(log_line(STACK_A)) is False
            assert await channel.send_acked(frames.HEARTBEAT, beat()) is False
        assert server.attempts == 0
        assert seen.states == [State.FORCE_REST_ONLY]


async def test_force_rest_to_an_unreachable_address_stays_put() -> None:
    channel = Channel("ws://192.0.2.1:9/internal/ws/agent", "pak", force_rest=True)
    async with running(channel):
        assert channel.state is State.FORCE_REST_ONLY
    assert channel.state is State.FORCE_REST_ONLY


# --- connection loop ----------------------------------------------------------------------------


async def test_comes_up_with_the_pak_and_reconnects_by_itself_after_the_server_returns() -> None:
    server = ChannelServer()
    await server.start()
    channel = fast(server.url)
    seen = observed(channel)
    try:
        async with running(channel):
            await eventually(lambda: channel.state is State.UP, timeout=10)
            assert server.authorizations == ["Bearer agent-pak"]
            assert server.paths == ["/internal/ws/agent"]

            await server.stop()
            await eventually(lambda: channel.state is State.DOWN, timeout=5)
            await asyncio.sleep(0.2)  # it keeps dialling a closed port meanwhile
            await server.start()
            await eventually(lambda: channel.state is State.UP, timeout=10)
    finally:
        await server.stop()
    assert seen.states[:4] == [State.DOWN, State.UP, State.DOWN, State.UP]
    assert seen.reconnects == 1


async def test_a_broker_that_dies_without_closing_is_noticed() -> None:
    async with ChannelServer() as server:
        channel = fast(server.url)
        async with running(channel):
            await eventually(lambda: channel.state is State.UP)
            await server.drop_connections()
            await eventually(lambda: channel.state is State.DOWN or server.attempts > 1)
            await eventually(lambda: channel.state is State.UP and server.attempts == 2)


async def test_does_not_dial_while_the_agent_is_inactive() -> None:
    async with ChannelServer() as server:
        channel = fast(server.url)
        async with running(channel, active=False) as gate:
            await asyncio.sleep(0.2)
            assert server.attempts == 0
            assert channel.state is State.DOWN
            gate.set()
            await eventually(lambda: channel.state is State.UP)


@pytest.mark.parametrize("status", [401, 403])
async def test_five_auth_refusals_in_a_row_stop_the_dialling(status: int) -> None:
    async with ChannelServer() as server:
        server.refusals = [status] * 10
        channel = fast(server.url)
        async with running(channel):
            await eventually(lambda: channel.state is State.AUTH_REJECTED)
            await asyncio.sleep(0.3)
            assert server.attempts == 5
            assert channel.offer(log_line(STACK_A)) is False


@pytest.mark.parametrize("status", [500, 503, 404])
async def test_other_refusals_never_reject_and_reset_the_count(status: int) -> None:
    async with ChannelServer() as server:
        # 4 auth refusals, another failure, then 4 more: never 5 in a row.
        server.refusals = [401] * 4 + [status] + [403] * 4
        channel = fast(server.url)
        async with running(channel):
            await eventually(lambda: channel.state is State.UP)
        assert server.attempts == 10


async def test_closed_connections_never_reject_and_reset_the_count() -> None:
    port = free_port()
    closed = 0

    async def hang_up(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal closed
        closed += 1
        writer.close()

    listener = await asyncio.start_server(hang_up, HOST, port)
    try:
        channel = fast(f"ws://{HOST}:{port}/internal/ws/agent")
        channel.rejections = 4  # four refusals before: the next failure is not one
        async with running(channel):
            await eventually(lambda: closed >= 8)
            assert channel.state is State.DOWN
            assert channel.rejections == 0
    finally:
        listener.close()
        await listener.wait_closed()


async def test_a_refusal_of_an_inactive_agent_does_not_count() -> None:
    async with ChannelServer() as server:
        server.refusals = [403] * 10
        channel = fast(server.url)
        rechecks = 0
        gate_box: list[asyncio.Event] = []

        async def deactivated() -> bool:
            nonlocal rechecks
            rechecks += 1
            gate_box[0].clear()
            return False

        async with running(channel, still_active=deactivated) as gate:
            gate_box.append(gate)
            await eventually(lambda: rechecks == 1)
            await asyncio.sleep(0.3)
            assert server.attempts == 1
            assert channel.rejections == 0
            assert channel.state is State.DOWN


# --- outbound -----------------------------------------------------------------------------------


async def test_offer_follows_the_state() -> None:
    server = ChannelServer()
    channel = fast(server.url)
    assert channel.offer(log_line(STACK_A, "while down")) is False
    await server.start()
    try:
        async with running(channel):
            await eventually(lambda: channel.state is State.UP)
            assert channel.offer(log_line(STACK_A, "up")) is True
            await eventually(lambda: server.of_type(frames.POD_LOG_LINE))
            await server.stop()
            await eventually(lambda: channel.state is State.DOWN)
            assert channel.offer(log_line(STACK_A, "down again")) is False
            await server.start()
            await eventually(lambda: channel.state is State.UP)
            assert channel.offer(log_line(STACK_A, "up again")) is True
            await eventually(lambda: len(server.of_type(frames.POD_LOG_LINE)) == 2)
    finally:
        await server.stop()
    lines = [frame["body"]["line"] for frame in server.of_type(frames.POD_LOG_LINE)]
    assert lines == ["up", "up again"]


async def test_dropped_telemetry_comes_back_as_one_gap_per_stack_with_true_counts() -> None:
    server = ChannelServer()
    channel = fast(server.url)
    seen = observed(channel)
    async with running(channel):
        for _ in range(3):
            assert channel.offer(log_line(STACK_A)) is False
        for _ in range(2):
            assert channel.offer(log_line(STACK_B)) is False
        rate_gap = frames.LogGapBody(
            agent_id=AGENT,
            stack_id=STACK_B,
            since_ts=datetime.now(UTC),
            dropped_count=10,
            reason="rate_limit",
        )
        # A dropped gap frame loses the lines it counted.
        assert channel.offer(frames.frame(frames.LOG_GAP, rate_gap)) is False
        await server.start()
        try:
            await eventually(lambda: len(server.of_type(frames.LOG_GAP)) == 2)
        finally:
            await server.stop()
    gaps = {frame["body"]["stack_id"]: frame["body"] for frame in server.of_type(frames.LOG_GAP)}
    assert gaps[str(STACK_A)]["dropped_count"] == 3
    assert gaps[str(STACK_B)]["dropped_count"] == 12
    assert {gap["reason"] for gap in gaps.values()} == {"disconnected"}
    assert all(gap["agent_id"] == str(AGENT) for gap in gaps.values())
    assert seen.drops["disconnected"] == 6


async def test_a_full_lane_refuses_and_reports_a_buffer_full_gap() -> None:
    async with ChannelServer() as server:
        channel = fast(server.url, queue_frames=2)
        async with running(channel):
            await eventually(lambda: channel.state is State.UP)
            # No await in between: the writer cannot drain the lane meanwhile.
            accepted = [channel.offer(log_line(STACK_A, f"l{n}")) for n in range(5)]
            assert accepted == [True, True, False, False, False]
            await eventually(lambda: server.of_type(frames.LOG_GAP))
            assert channel.offer(log_line(STACK_A, "after")) is True
            await eventually(lambda: len(server.of_type(frames.POD_LOG_LINE)) == 3)
    [gap] = server.of_type(frames.LOG_GAP)
    assert (gap["body"]["dropped_count"], gap["body"]["reason"]) == (3, "buffer_full")
    lines = [frame["body"]["line"] for frame in server.of_type(frames.POD_LOG_LINE)]
    assert lines == ["l0", "l1", "after"]


async def test_control_frames_go_before_telemetry() -> None:
    async with ChannelServer() as server:
        channel = fast(server.url)
        async with running(channel):
            await eventually(lambda: channel.state is State.UP)
            for n in range(20):
                channel.offer(log_line(STACK_A, f"l{n}"))
            assert await channel.send_acked(frames.HEARTBEAT, beat()) is True
    types = [frame["type"] for frame in server.received]
    assert types.index(frames.HEARTBEAT) == 0


async def test_acked_frames() -> None:
    async with ChannelServer() as server:
        channel = fast(server.url, ack_timeout=0.3)
        seen = observed(channel)
        assert await channel.send_acked(frames.HEARTBEAT, beat()) is False  # not Up
        async with running(channel):
            await eventually(lambda: channel.state is State.UP)
            assert await channel.send_acked(frames.HEARTBEAT, beat()) is True
            server.acks = "refuse"
            assert await channel.send_acked(frames.HEARTBEAT, beat()) is False
            server.acks = "never"
            assert await channel.send_acked(frames.HEARTBEAT, beat()) is False
    sent = server.of_type(frames.HEARTBEAT)
    assert len(sent) == 3
    assert len({frame["ref"] for frame in sent}) == 3
    assert sent[0]["body"]["agent_id"] == str(AGENT)
    assert seen.drops["ack_timeout"] == 1
    assert seen.frames["out", frames.HEARTBEAT] == 3
    assert seen.frames["in", frames.ACK] == 2


async def test_a_socket_dying_while_awaiting_the_ack_is_not_delivered() -> None:
    async with ChannelServer() as server:
        server.acks = "never"
        channel = fast(server.url, ack_timeout=30.0)
        async with running(channel):
            await eventually(lambda: channel.state is State.UP)
            started = time.monotonic()
            waiting = asyncio.create_task(channel.send_acked(frames.AGENT_EVENT, beat()))
            await eventually(lambda: server.of_type(frames.AGENT_EVENT))
            await server.drop_connections()
            assert await waiting is False
            assert time.monotonic() - started < 20.0  # the socket's end, not the timeout


# --- inbound ------------------------------------------------------------------------------------


async def test_pushes_set_the_wake_events_and_bad_frames_are_dropped_and_counted() -> None:
    async with ChannelServer() as server:
        channel = fast(server.url)
        seen = observed(channel)
        async with running(channel):
            await eventually(lambda: channel.state is State.UP)
            target = {"id": str(uuid.uuid4()), "agent_id": str(AGENT), "stack_id": str(STACK_A)}
            await server.push_frame(frames.TARGET_CHANGED, target)
            await eventually(lambda: channel.poll_wake.is_set())
            assert not channel.work_orders_wake.is_set()
            channel.poll_wake.clear()
            await server.push_frame(frames.WORK_ORDER, {"id": str(uuid.uuid4())})
            await eventually(lambda: channel.work_orders_wake.is_set())
            await server.push(b"\x00binary")
            await server.push("not json")
            await server.push_frame("surprise", {})
            await server.push(json.dumps({"type": "ack", "body": {"ref": "nope", "ok": True}}))
            await server.push_frame(frames.STACK_CHANGED, {"id": str(STACK_A)})
            await eventually(lambda: channel.poll_wake.is_set())
            assert channel.state is State.UP
    assert seen.drops == {"binary": 1, "undecodable": 1, "unknown_type": 1, "late_ack": 1}
    assert seen.frames["in", frames.TARGET_CHANGED] == 1
    assert seen.frames["in", frames.STACK_CHANGED] == 1
    assert seen.frames["in", frames.WORK_ORDER] == 1


async def test_a_flood_of_pushes_never_stalls_the_socket() -> None:
    """Flaw 15: the reference stopped reading after 256 unconsumed pushes."""
    async with ChannelServer() as server:
        channel = fast(server.url)
        async with running(channel):
            await eventually(lambda: channel.state is State.UP)
            body = {"id": str(STACK_A)}
            for _ in range(1000):
                await server.push_frame(frames.STACK_CHANGED, body)
            assert await channel.send_acked(frames.HEARTBEAT, beat()) is True
            assert channel.poll_wake.is_set()
