"""The agent channel over a real server: the session's broker app (``tests/broker/conftest.py``,
SQLite and PostgreSQL) served by uvicorn in the test's event loop with ``broker/main.py``'s
WebSocket options, and agents speaking to it through ``websockets``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
import uvicorn
import websockets
from litestar import Litestar
from websockets.asyncio.client import ClientConnection, connect

from brokkr.broker.api.observability import Observability
from brokkr.broker.main import WS_PING_SECONDS
from tests.broker.api.test_agent_events import create_stack, post_object, target
from tests.broker.conftest import Api, Broker, auth
from tests.cli.serving import free_port

PATH = "/internal/ws/agent"
DEADLINE = 5.0


@asynccontextmanager
async def serving(app: Litestar) -> AsyncIterator[str]:
    """Serve an app whose runtime is already started; yields its ws:// base URL."""
    port = free_port()
    config = uvicorn.Config(
        Observability(app, app.state.metrics),
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_config=None,
        access_log=False,
        ws="wsproto",
        ws_max_size=app.state.ctx.settings.current.limits.ws_max_message_bytes,
        ws_ping_interval=WS_PING_SECONDS,
        ws_ping_timeout=WS_PING_SECONDS,
    )
    server = uvicorn.Server(config)
    # The test runner owns the process's signals.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + DEADLINE
    while not server.started:
        assert time.monotonic() < deadline and not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="session")
async def ws_base(broker: Broker) -> AsyncIterator[str]:
    async with serving(broker.app) as url:
        yield url


@asynccontextmanager
async def dial(base: str, pak: str | None) -> AsyncIterator[ClientConnection]:
    headers = auth(pak) if pak is not None else {}
    async with connect(base + PATH, additional_headers=headers, open_timeout=DEADLINE) as ws:
        yield ws


async def refused(base: str, pak: str | None) -> tuple[int, dict[str, Any]]:
    """The status and D2 body of a refused upgrade."""
    with pytest.raises(websockets.InvalidStatus) as refusal:
        async with dial(base, pak):
            pass
    response = refusal.value.response
    return response.status_code, msgspec.json.decode(response.body or b"{}")


async def next_frame(ws: ClientConnection, timeout: float = DEADLINE) -> dict[str, Any]:
    text = await asyncio.wait_for(ws.recv(), timeout)
    frame: dict[str, Any] = msgspec.json.decode(text)
    return frame


async def nothing_within(ws: ClientConnection, seconds: float = 0.3) -> None:
    """No frame arrives in a short window (used after a later frame proved delivery works)."""
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.recv(), seconds)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.02)


def send(type_: str, body: dict[str, Any], ref: str | None = None) -> str:
    frame: dict[str, Any] = {"type": type_, "body": body}
    if ref is not None:
        frame["ref"] = ref
    return msgspec.json.encode(frame).decode()


async def acked(ws: ClientConnection, ref: str) -> dict[str, Any]:
    """The ack of ``ref`` (hints arriving meanwhile are skipped)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        frame = await next_frame(ws, max(0.01, deadline - time.monotonic()))
        if frame["type"] == "ack" and frame["body"]["ref"] == ref:
            body: dict[str, Any] = frame["body"]
            return body


@dataclass
class Agent:
    id: str
    pak: str


@dataclass
class Fleet:
    """REST set-up through the in-process client of the served app."""

    api: Api
    base: str

    async def agent(self, name: str, *, active: bool = True) -> Agent:
        agent, pak = await self.api.create_agent(name)
        if active:
            response = await self.api.client.put(
                f"/api/v1/agents/{agent['id']}", json={"status": "ACTIVE"}, headers=self.api.admin
            )
            assert response.status_code == 200, response.text
        return Agent(agent["id"], pak)

    async def stack(self, name: str) -> str:
        _, generator_pak = await self.api.create_generator(f"gen-{name}")
        stack: dict[str, Any] = await create_stack(self.api, generator_pak, name)
        return str(stack["id"])

    async def target(self, agent: Agent, stack_id: str) -> None:
        await target(self.api, agent.id, stack_id)

    async def post_object(self, stack_id: str, name: str = "settings") -> str:
        return str((await post_object(self.api, stack_id, name))["id"])

    async def label(self, kind: str, resource_id: str, label: str) -> None:
        response = await self.api.client.post(
            f"/api/v1/{kind}/{resource_id}/labels", json={"label": label}, headers=self.api.admin
        )
        assert response.status_code == 201, response.text

    def dial(self, agent: Agent) -> Any:
        return dial(self.base, agent.pak)


@pytest.fixture
async def fleet(api: Api, ws_base: str) -> Fleet:
    return Fleet(api=api, base=ws_base)
