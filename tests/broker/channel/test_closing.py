"""Connections end when the agent loses its right to one: its PAK rotated (4401), the agent
deleted (4401: its PAK goes with it) or deactivated (4403); other agents stay connected."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.broker.channel.conftest import Agent, Fleet, acked, next_frame, send

Change = Callable[[Fleet, Agent], Awaitable[httpx.Response]]


async def rotate(fleet: Fleet, agent: Agent) -> httpx.Response:
    return await fleet.api.client.post(
        f"/api/v1/agents/{agent.id}/rotate-pak", headers=fleet.api.admin
    )


async def delete(fleet: Fleet, agent: Agent) -> httpx.Response:
    return await fleet.api.client.delete(f"/api/v1/agents/{agent.id}", headers=fleet.api.admin)


async def deactivate(fleet: Fleet, agent: Agent) -> httpx.Response:
    return await fleet.api.client.put(
        f"/api/v1/agents/{agent.id}", json={"status": "INACTIVE"}, headers=fleet.api.admin
    )


@pytest.mark.parametrize(("change", "code"), [(rotate, 4401), (delete, 4401), (deactivate, 4403)])
async def test_connection_closes_when_the_agent_loses_its_right(
    fleet: Fleet, change: Change, code: int
) -> None:
    agent, other = await fleet.agent("edge-1"), await fleet.agent("edge-2")
    async with fleet.dial(agent) as ws, fleet.dial(other) as ws2:
        response = await change(fleet, agent)
        assert response.status_code < 300, response.text
        with pytest.raises(ConnectionClosed) as closed:
            await next_frame(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == code
        await ws2.send(
            send("heartbeat", {"agent_id": other.id, "sent_at": "2025-01-01T00:00:00Z"}, ref="o")
        )
        assert (await acked(ws2, "o"))["ok"] is True
